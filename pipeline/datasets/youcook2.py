"""YouCook2 JSON → canonical caption-VMR records (one query per recipe-step caption).

Format: ``youcookii_annotations_trainval.json`` = ``{"database": {"<youtube_id>": {"duration": s,
"subset": "training" | "validation", "recipe_type": "113", "annotations": [{"id": int, "segment": [s, e],
"sentence": str}]}}}`` (segments in integer seconds). The split of a video is its ``subset`` through
``subset_to_split``; subsets not listed there are counted as ``filtered``. The optional header-less
``yc2_duration_frame.csv`` (``youtube_id,duration,num_frames``) gives each video's fps = frames / duration;
a bad row there is a ``malformed_row`` (that video gets no fps), not a stop of the ingest.
``extra["recipe_type"]`` keeps the recipe type.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.datasets.badrows import TOLERANCE, BadRowReport
from pipeline.datasets.common import (id_text, load_json, moment_key, parse_seconds, parse_window, read_csv,
                                      text_field, video_path)
from pipeline.datasets.schema import Moment, VideoRecord
from pipeline.core.io import InputError


@dataclass(frozen=True)
class Options:
    """``datasets.sources.<name>.options`` of a ``youcook2`` source."""

    annotations: str = "youcookii_annotations_trainval.json"
    subset_to_split: dict[str, str] = field(
        default_factory=lambda: {"training": "train", "validation": "val", "testing": "test"}
    )
    durations: str | None = "yc2_duration_frame.csv"  # header-less id,duration,num_frames (fps); None = skip
    video_pattern: str | None = None  # e.g. "videos/{video_id}.mp4"


def _read_fps(root: Path, fname: str, report: BadRowReport) -> dict[str, float]:
    """video → fps of the optional duration CSV. A bad row (short, not numbers, not positive) is a
    ``malformed_row`` under the policy: its video only lacks an fps, so no moment is lost."""
    def bad(line: int, detail: str) -> None:
        report.flag("malformed_row", fname, f"line {line}", detail, moments=0)

    out = {}
    for line, row in read_csv(root / fname, (), header=False, fieldnames=["video_id", "duration", "num_frames"],
                              bad=bad):
        vid = row["video_id"].strip()
        try:
            duration, frames = parse_seconds(row["duration"]), parse_seconds(row["num_frames"])
        except ValueError:
            bad(line, f"duration/num_frames {row['duration']!r}, {row['num_frames']!r} are not numbers")
            continue
        if not vid or duration <= 0 or frames <= 0:
            bad(line, f"needs a video id and a positive duration and frame count, got {vid!r}, {duration:g}, "
                f"{frames:g}")
            continue
        out[vid] = frames / duration
    return out


def load(root: Path, options: Options, policy: str = "clip", dataset: str = "youcook2",
         tolerance: float = TOLERANCE) -> tuple[list[VideoRecord], BadRowReport]:
    """Read the YouCook2 annotation file into one record per video."""
    root = Path(root)
    report = BadRowReport(policy, root, tolerance)
    fname = options.annotations
    data = load_json(root / fname)
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise InputError(f"{root / fname}: expected {{'database': {{video: ...}}}}")
    fps = _read_fps(root, options.durations, report) if options.durations else {}
    records = []
    for vid, entry in data["database"].items():
        anns = entry.get("annotations") if isinstance(entry, dict) else None
        if not isinstance(anns, list):
            report.flag("malformed_row", fname, vid, "needs an 'annotations' list", moments=0)
            continue
        report.read(len(anns))
        split = options.subset_to_split.get(entry.get("subset"))
        if split is None:
            report.filtered(f"subset_{entry.get('subset')}", len(anns))
            continue
        try:
            duration = parse_seconds(entry.get("duration"))
        except (ValueError, TypeError):
            report.flag("unknown_video", fname, vid, f"duration {entry.get('duration')!r} is not a number",
                        moments=len(anns))
            continue
        moments = []
        for i, ann in enumerate(anns):
            where = f"{vid}.annotations[{i}]"
            if not isinstance(ann, dict):
                report.flag("malformed_row", fname, where, "annotation is not an object")
                continue
            try:
                start, end = parse_window(ann.get("segment"))
            except ValueError as exc:
                report.flag("malformed_timestamp", fname, where, str(exc))
                continue
            text = text_field(ann.get("sentence"))
            if text is None:
                report.flag("malformed_row", fname, where, "empty or non-string sentence")
                continue
            ann_id = id_text(ann["id"]) if "id" in ann else str(i)
            if ann_id is None:
                report.flag("malformed_row", fname, where, f"id {ann['id']!r} is not an integer or string")
                continue
            window = report.window(start, end, duration, fname, where)
            if window is None:
                continue
            mid = moment_key(split, vid, ann_id)
            moments.append(Moment(moment_id=mid, start=window[0], end=window[1], text=text, query_id=mid))
        records.append(VideoRecord(
            video_id=vid, dataset=dataset, split=split, duration=duration, fps=fps.get(vid),
            video_path=video_path(root, options.video_pattern, video_id=vid), moments=moments,
            extra={"recipe_type": entry.get("recipe_type")},
        ))
    return records, report
