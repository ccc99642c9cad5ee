"""Charades-STA → canonical caption-VMR records (single-moment grounding, R1@IoU / mIoU).

Format: one text file per split (``charades_sta_train.txt``, ``charades_sta_test.txt``) with lines
``<video_id> <start> <end>##<sentence>`` (seconds). Durations are the ``length`` column of the Charades CSVs
(``Charades_v1_train.csv``, ``Charades_v1_test.csv``: ``id,...,length``). Moment/query ids are
``<split>/<video>/<line>``. A line without ``##`` or without three fields is ``malformed_row``; a video
absent from the duration CSVs is ``unknown_video``. A video all of whose lines are dropped is counted by
name (``videos_lost``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.datasets.badrows import TOLERANCE, BadRowReport
from pipeline.datasets.common import moment_key, parse_seconds, read_csv, text_lines, video_path
from pipeline.datasets.schema import Moment, VideoRecord


@dataclass(frozen=True)
class Options:
    """``datasets.sources.<name>.options`` of a ``charades_sta`` source."""

    splits: dict[str, str] = field(
        default_factory=lambda: {"train": "charades_sta_train.txt", "test": "charades_sta_test.txt"}
    )
    durations: list[str] = field(default_factory=lambda: ["Charades_v1_train.csv", "Charades_v1_test.csv"])
    video_pattern: str | None = None  # e.g. "videos/{video_id}.mp4"


def _read_durations(root: Path, files: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for fname in files:
        for line, row in read_csv(root / fname, ("id", "length")):
            try:
                out[row["id"].strip()] = parse_seconds(row["length"])
            except (ValueError, TypeError):
                # left out of the table: its queries are then reported as unknown_video
                continue
    return out


def load(root: Path, options: Options, policy: str = "clip", dataset: str = "charades_sta",
         tolerance: float = TOLERANCE) -> tuple[list[VideoRecord], BadRowReport]:
    """Read the configured Charades-STA split files into one record per (split, video)."""
    root = Path(root)
    report = BadRowReport(policy, root, tolerance)
    durations = _read_durations(root, options.durations)
    videos: dict[tuple[str, str], list[Moment]] = {}
    seen: set[tuple[str, str]] = set()  # (split, video) of every well-formed line
    for split, fname in options.splits.items():
        report.begin_split(split, fname)
        for lineno, line in text_lines(root / fname):
            if not line.strip():
                continue
            where = f"line {lineno}"
            report.read()
            head, sep, text = line.partition("##")
            parts = head.split()
            text = text.strip()
            if not sep or len(parts) != 3 or not text:
                report.flag("malformed_row", fname, where, f"expected 'vid start end##sentence', got {line!r}")
                continue
            vid = parts[0]
            seen.add((split, vid))
            try:
                start, end = parse_seconds(parts[1]), parse_seconds(parts[2])
            except ValueError:
                report.flag("malformed_timestamp", fname, where, f"times {parts[1]!r}, {parts[2]!r} are not numbers")
                continue
            if vid not in durations:
                report.flag("unknown_video", fname, where, f"video {vid} has no length in {options.durations}")
                continue
            window = report.window(start, end, durations[vid], fname, where)
            if window is None:
                continue
            mid = moment_key(split, vid, lineno)
            videos.setdefault((split, vid), []).append(
                Moment(moment_id=mid, start=window[0], end=window[1], text=text, query_id=mid))
    records = [
        VideoRecord(video_id=vid, dataset=dataset, split=split, duration=durations[vid],
                    video_path=video_path(root, options.video_pattern, video_id=vid), moments=moments)
        for (split, vid), moments in videos.items()
    ]
    for split, vid in sorted(seen - set(videos)):
        report.video_lost(f"{split}/{vid}", "all_moments_dropped")
    return records, report
