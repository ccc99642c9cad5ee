"""EPIC-KITCHENS-100 action segments → canonical TAL records (verb classes), for SADA.

Files (names are options, relative to the dataset root; absolute paths work too):

* one action-segment CSV per split (``EPIC_100_train.csv``, ``EPIC_100_validation.csv``) with the 15 official
  columns; used here: ``narration_id, participant_id, video_id, start_timestamp, stop_timestamp`` (or
  ``start_frame, stop_frame``) and ``verb_class``;
* ``EPIC_100_verb_classes.csv`` (``id,key,...``): the label of a segment is the key of its verb class;
* ``EPIC_100_video_info.csv`` (``video_id,duration,fps,...``): duration and fps of every video;
* optionally a participant list ``participant_id,counter_colour[,more columns]`` supplied by the user (the
  thesis' counter colours are not part of EPIC): ``VideoRecord.domain`` = the counter colour, and every other
  column is copied into ``extra`` under its name (the synthetic world adds ``viewpoint``).

Decisions:

* Classes: only the ``top_k_verbs`` most frequent verb classes of the ``count_split`` split are kept (thesis
  §2.4.1: the 10 majority verbs; ranked on the segments that survive the bad-row policy, ties by name), or
  exactly ``keep_verbs`` when given; ``label_id`` is the rank (0 = most frequent) or the position in
  ``keep_verbs``. Segments of other verbs are counted as ``filtered``, not as bad rows.
* Collection: ``extra["collection"]`` is ``old`` for EK55 videos (``P01_11``: 2-digit suffix) and ``new`` for
  the EK100 extension (``P01_101``: 3-digit suffix); a video id of another shape gets None (counted in
  ``info``). The synthetic world names its videos the same way, so its acquisition shift reads the same.
* Scenarios select videos by ``domain`` and ``extra.collection`` (see ``pipeline/datasets/scenarios.py``):
  thesis S1 = dark old → white + other old, S2 = white old → rest old, S3/S4 the same on new videos,
  S5 = old → new, S6 = new → old.
* Times come from the ``HH:MM:SS.ff`` timestamps (default) or from frames / the video's fps; with frames, a
  video whose timestamp/frame pairs imply another frame rate than video_info is converted with that
  implied rate and named in a warning (``_frame_fps``). ``VideoRecord.fps`` stays video_info's.
* Videos that keep no moment are counted by name (``videos_lost``: all dropped or all filtered).
"""
from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pipeline.datasets.badrows import TOLERANCE, BadRowReport
from pipeline.datasets.common import parse_hms, parse_seconds, read_class_csv, read_csv, select_verbs, video_path
from pipeline.datasets.schema import Moment, VideoRecord
from pipeline.core.io import InputError
from pipeline.core.params import PositiveInt

_VIDEO_ID = re.compile(r"^P\d+_(\d+)$")
_FPS_SAME = 5e-4  # relative: implied frame rates closer than this to video_info's are estimation noise
_FPS_NAMED = 0.01  # relative: beyond this a video's frames are at another rate altogether (29.97 vs 60)


@dataclass(frozen=True)
class Options:
    """``datasets.sources.<name>.options`` of an ``epic_kitchens_100`` source."""

    splits: dict[str, str] = field(
        default_factory=lambda: {"train": "EPIC_100_train.csv", "val": "EPIC_100_validation.csv"}
    )  # canonical split -> action-segment CSV
    verb_classes: str = "EPIC_100_verb_classes.csv"
    video_info: str = "EPIC_100_video_info.csv"
    top_k_verbs: PositiveInt | None = 10  # keep the k majority verb classes (None = all classes)
    keep_verbs: list[str] | None = None  # explicit verb keys to keep, in label order (overrides top_k_verbs)
    count_split: str = "train"  # split whose segments rank the verb classes
    participants: str | None = None  # CSV participant_id,counter_colour[,more columns → extra]
    default_domain: str | None = None  # domain of participants missing from that list (None = unknown)
    time_from: Literal["timestamps", "frames"] = "timestamps"
    video_pattern: str | None = None  # video file relative to root, e.g. "videos/{video_id}.mp4"


@dataclass
class _Segment:
    narration_id: str
    video_id: str
    participant: str
    split: str
    start: float
    end: float
    verb: str


def _read_video_info(path: Path) -> dict[str, tuple[float, float]]:
    """video → (duration s, fps) of ``EPIC_100_video_info.csv``; a bad row is an error naming its line."""
    out = {}
    for line, row in read_csv(path, ("video_id", "duration", "fps")):
        vid = row["video_id"].strip()
        try:
            duration, fps = parse_seconds(row["duration"]), parse_seconds(row["fps"])
        except ValueError:
            raise InputError(f"{path}: line {line}: duration/fps of {vid!r} not numbers") from None
        if not vid or duration <= 0 or fps <= 0:
            raise InputError(f"{path}: line {line}: needs a video_id and a positive duration and fps, "
                             f"got {vid!r}, {row['duration']!r}, {row['fps']!r}")
        out[vid] = (duration, fps)
    return out


def _read_participants(path: Path) -> dict[str, dict[str, str]]:
    """participant → {"counter_colour": ..., other columns...} of the user's participant list."""
    out: dict[str, dict[str, str]] = {}
    for line, row in read_csv(path, ("participant_id", "counter_colour")):
        pid = row["participant_id"].strip()
        if pid in out:
            raise InputError(f"{path}: line {line}: participant {pid!r} listed twice")
        out[pid] = {k: (v or "").strip() for k, v in row.items() if k and k != "participant_id"}
    return out


def _frame_rates(rows: list[tuple[int, dict[str, str]]], info: dict[str, tuple[float, float]]
                 ) -> dict[str, float]:
    """Per video, the frame rate its frame numbers imply: the median of ``frame / seconds`` over its start/stop
    (timestamp, frame) pairs at ≥ 30 s (the 0.01-s timestamps make the ratio precise to 0.03 %), or at ≥ 1 s
    for a video without such pairs; videos without any pair are left out."""
    ratios: dict[str, tuple[list[float], list[float]]] = {}
    for _, row in rows:
        vid = (row["video_id"] or "").strip()
        if vid not in info:
            continue
        for stamp, frame in (("start_timestamp", "start_frame"), ("stop_timestamp", "stop_frame")):
            try:
                seconds, frames = parse_hms(row.get(stamp) or ""), int(row[frame])
            except (ValueError, TypeError):
                continue
            if seconds >= 1.0:
                late, early = ratios.setdefault(vid, ([], []))
                (late if seconds >= 30.0 else early).append(frames / seconds)
    return {vid: statistics.median(late or early) for vid, (late, early) in ratios.items()}


def _frame_fps(fname: str, opts: Options, rows: list[tuple[int, dict[str, str]]],
               info: dict[str, tuple[float, float]], report: BadRowReport) -> dict[str, float]:
    """The fps that turns each video's frame numbers into seconds (``time_from: frames``).

    Rule: video_info's fps, unless the video's own timestamp/frame pairs imply a rate more than
    ``_FPS_SAME`` (relative) away from it; then the implied rate, so that frame times agree with the
    timestamps. The real files need it twice: the validation CSV numbers the frames of P09_07, P09_08, P17_02,
    P18_02 and P18_09 at ≈ 60 fps while video_info lists 29.97, 47.95 or 90 (named in a warning: beyond
    ``_FPS_NAMED``), and the videos listed at 59.94 fps have frame numbers at 60 fps (0.1 %, 3.6 s at the end
    of an hour: counted in the same warning).
    """
    fps = {vid: rate for vid, (_, rate) in info.items()}
    named, small = [], []
    for vid, implied in sorted(_frame_rates(rows, info).items()):
        diff = abs(implied - fps[vid]) / fps[vid]
        if diff > _FPS_NAMED:
            named.append(f"{vid} ({opts.video_info}: {fps[vid]:.3f} fps, frame numbers at {implied:.3f} fps)")
        elif diff > _FPS_SAME:
            small.append(vid)
        else:
            continue
        fps[vid] = implied
    if named or small:
        listed = f"{len(named)} video(s) at another frame rate: {'; '.join(named) or 'none'}"
        if small:
            listed += (f"; {len(small)} more differ by {100 * _FPS_SAME:g}-{100 * _FPS_NAMED:g} % (e.g. 59.94 vs 60 "
                       f"fps): {', '.join(small[:10])}{' …' if len(small) > 10 else ''}")
        report.warn(f"{fname}: time_from frames: frame numbers disagree with {opts.video_info}: {listed}. Rule: "
                    "the frames of these videos are converted with the rate their own start/stop timestamp and "
                    "frame pairs imply (median frame/second), all other videos with the video_info fps; "
                    "time_from: timestamps avoids frame rates altogether")
    return fps


def _parse_rows(root: Path, fname: str, split: str, opts: Options, classes: dict[int, str],
                info: dict[str, tuple[float, float]], report: BadRowReport, seen: set[tuple[str, str]]
                ) -> list[_Segment]:
    """Valid segments of one CSV; every bad row is reported (and clipped or dropped) on the way. ``seen``
    collects the (split, video) of every row that names a video, so that videos left empty are counted."""
    by_stamp = opts.time_from == "timestamps"
    time_cols = ("start_timestamp", "stop_timestamp") if by_stamp else ("start_frame", "stop_frame")
    required = ("narration_id", "participant_id", "video_id", "verb_class") + time_cols

    # all rows first (frame rates need them), short ones kept in place as (line, detail) so that the rows
    # are reported in file order (policy fail stops at the first bad row of the file)
    rows: list[tuple[int, dict[str, str] | str]] = []
    rows.extend(read_csv(root / fname, required, bad=lambda line, detail: rows.append((line, detail))))
    report.begin_split(split, fname)
    fps_of = {} if by_stamp else _frame_fps(fname, opts, [r for r in rows if isinstance(r[1], dict)], info, report)
    out = []
    for line, row in rows:
        report.read()
        where = f"line {line}"
        if isinstance(row, str):
            report.flag("malformed_row", fname, where, row)
            continue
        vid, nid = row["video_id"].strip(), row["narration_id"].strip()
        if not vid or not nid:
            report.flag("malformed_row", fname, where, "empty video_id or narration_id")
            continue
        seen.add((split, vid))
        if vid not in info:
            report.flag("unknown_video", fname, where, f"video {vid!r} not in {opts.video_info}")
            continue
        duration = info[vid][0]
        try:
            if by_stamp:
                start, end = parse_hms(row["start_timestamp"]), parse_hms(row["stop_timestamp"])
            else:
                start, end = int(row["start_frame"]) / fps_of[vid], int(row["stop_frame"]) / fps_of[vid]
        except (ValueError, TypeError) as exc:
            report.flag("malformed_timestamp", fname, where, str(exc))
            continue
        try:
            verb_id = int(row["verb_class"])
        except (ValueError, TypeError):
            report.flag("malformed_row", fname, where, f"verb_class {row['verb_class']!r} is not an integer")
            continue
        if verb_id not in classes:
            report.flag("unknown_class", fname, where, f"verb_class {verb_id} not in {opts.verb_classes}")
            continue
        window = report.window(start, end, duration, fname, where)
        if window is None:
            continue
        out.append(_Segment(nid, vid, row["participant_id"].strip(), split, window[0], window[1], classes[verb_id]))
    return out


def collection_of(video_id: str) -> str | None:
    """``old`` (EK55, ``P01_11``) or ``new`` (EK100 extension, ``P01_101``); None for other id shapes."""
    m = _VIDEO_ID.match(video_id)
    if not m:
        return None
    return "old" if len(m.group(1)) == 2 else "new"


def load(root: Path, options: Options, policy: str = "clip", dataset: str = "epic_kitchens_100",
         tolerance: float = TOLERANCE) -> tuple[list[VideoRecord], BadRowReport]:
    """Read the configured EPIC-KITCHENS-100 splits into one record per (split, video)."""
    root = Path(root)
    report = BadRowReport(policy, root, tolerance)
    classes = read_class_csv(root / options.verb_classes)
    info = _read_video_info(root / options.video_info)
    participants = _read_participants(root / options.participants) if options.participants else {}

    segments: list[_Segment] = []
    seen: set[tuple[str, str]] = set()
    for split, fname in options.splits.items():
        segments.extend(_parse_rows(root, fname, split, options, classes, info, report, seen))

    kept = select_verbs(options.keep_verbs, classes.values(),
                        lambda: Counter(s.verb for s in segments if s.split == options.count_split),
                        options.top_k_verbs, options.count_split, options.splits, root, root / options.verb_classes)
    label_id = {verb: i for i, verb in enumerate(kept)}
    report.info["classes"] = kept

    by_video: dict[tuple[str, str], list[_Segment]] = {}
    for seg in segments:
        if seg.verb not in label_id:
            report.filtered("verb_not_kept")
            continue
        by_video.setdefault((seg.split, seg.video_id), []).append(seg)

    records, no_domain, no_collection = [], set(), set()
    for (split, vid), segs in by_video.items():
        first = segs[0]
        entry = participants.get(first.participant, {})
        domain = entry.get("counter_colour") or options.default_domain
        collection = collection_of(vid)
        if domain is None:
            no_domain.add(vid)
        if collection is None:
            no_collection.add(vid)
        duration, fps = info[vid]
        segs = sorted(segs, key=lambda s: (s.start, s.end, s.narration_id))
        moments = [Moment(moment_id=s.narration_id, start=s.start, end=s.end, label=s.verb,
                          label_id=label_id[s.verb]) for s in segs]
        records.append(VideoRecord(
            video_id=vid, dataset=dataset, split=split, duration=duration, fps=fps, domain=domain,
            participant=first.participant,
            video_path=video_path(root, options.video_pattern, video_id=vid, participant=first.participant),
            moments=moments,
            extra={"collection": collection, **{k: v for k, v in entry.items() if k != "counter_colour"}},
        ))
    valid = {(s.split, s.video_id) for s in segments}
    for split, vid in sorted(seen - set(by_video)):
        report.video_lost(f"{split}/{vid}", "all_moments_filtered" if (split, vid) in valid else "all_moments_dropped")
    report.info["videos_without_domain"] = len(no_domain)
    report.info["videos_without_collection"] = len(no_collection)
    return records, report
