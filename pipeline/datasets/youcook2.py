"""YouCook2 JSON → canonical caption-VMR records (one query per recipe-step caption).

Format: ``youcookii_annotations_trainval.json`` = ``{"database": {"<youtube_id>": {"duration": s,
"subset": "training" | "validation", "recipe_type": "113", "annotations": [{"id": int, "segment": [s, e],
"sentence": str}]}}}`` (segments in integer seconds). The split of a video is its ``subset`` through
``subset_to_split``; subsets not listed there are counted as ``filtered``. The optional header-less
``yc2_duration_frame.csv`` (``youtube_id,duration,num_frames``) gives each video's fps = frames / duration.
``extra["recipe_type"]`` keeps the recipe type.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.datasets.badrows import BadRowReport
from pipeline.datasets.common import moment_key, parse_seconds, parse_window, read_csv, video_path
from pipeline.datasets.schema import Moment, VideoRecord
from pipeline.core.io import InputError, read_json


@dataclass(frozen=True)
class Options:
    """``datasets.sources.<name>.options`` of a ``youcook2`` source."""

    annotations: str = "youcookii_annotations_trainval.json"
    subset_to_split: dict[str, str] = field(
        default_factory=lambda: {"training": "train", "validation": "val", "testing": "test"}
    )
    durations: str | None = "yc2_duration_frame.csv"  # header-less id,duration,num_frames (fps); None = skip
    video_pattern: str | None = None  # e.g. "videos/{video_id}.mp4"


def _read_fps(path: Path) -> dict[str, float]:
    out = {}
    for line, row in read_csv(path, (), header=False, fieldnames=["video_id", "duration", "num_frames"]):
        try:
            duration, frames = float(row["duration"]), float(row["num_frames"])
        except (TypeError, ValueError):
            raise InputError(f"{path}: line {line}: duration/num_frames are not numbers") from None
        if duration > 0:
            out[row["video_id"].strip()] = frames / duration
    return out


def load(root: Path, options: Options, policy: str = "clip", dataset: str = "youcook2"
         ) -> tuple[list[VideoRecord], BadRowReport]:
    """Read the YouCook2 annotation file into one record per video."""
    root = Path(root)
    report = BadRowReport(policy, root)
    fname = options.annotations
    data = read_json(root / fname)
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise InputError(f"{root / fname}: expected {{'database': {{video: ...}}}}")
    fps = _read_fps(root / options.durations) if options.durations else {}
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
            text = ann.get("sentence").strip() if isinstance(ann.get("sentence"), str) else ""
            if not text:
                report.flag("malformed_row", fname, where, "empty or non-string sentence")
                continue
            window = report.window(start, end, duration, fname, where)
            if window is None:
                continue
            mid = moment_key(split, vid, ann.get("id", i))
            moments.append(Moment(moment_id=mid, start=window[0], end=window[1], text=text, query_id=mid))
        records.append(VideoRecord(
            video_id=vid, dataset=dataset, split=split, duration=duration, fps=fps.get(vid),
            video_path=video_path(root, options.video_pattern, video_id=vid), moments=moments,
            extra={"recipe_type": entry.get("recipe_type")},
        ))
    return records, report
