"""TACoS (2D-TAN moment-retrieval split) JSON → canonical caption-VMR records, frames → seconds.

Format: ``{"s13-d21.avi": {"timestamps": [[start_frame, end_frame], ...], "sentences": [...], "fps": 29.4,
"num_frames": n}}`` per split file (``train.json``, ``val.json``, ``test.json``). Every time is divided by the
file's own ``fps``; the duration is ``num_frames / fps``, so windows past ``num_frames`` are ``past_duration``.
Video ids drop the ``.avi`` suffix of the keys (``strip_suffix``); the same window often appears with several
sentences, each its own query.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.datasets.badrows import TOLERANCE, BadRowReport
from pipeline.datasets.common import caption_split_records, parse_seconds
from pipeline.datasets.schema import VideoRecord


@dataclass(frozen=True)
class Options:
    """``datasets.sources.<name>.options`` of a ``tacos`` source."""

    splits: dict[str, str] = field(
        default_factory=lambda: {"train": "train.json", "val": "val.json", "test": "test.json"}
    )
    strip_suffix: str = ".avi"  # removed from the JSON keys to form video ids
    video_pattern: str | None = None  # e.g. "videos/{video_id}.avi"


def frame_timing(entry: dict) -> tuple[float, float, float]:
    """(duration s, frames per second, fps) of a TACoS entry; ValueError when fps/num_frames are unusable."""
    fps = parse_seconds(entry["fps"])
    if fps <= 0:
        raise ValueError(f"fps {fps} <= 0")
    return parse_seconds(entry["num_frames"]) / fps, fps, fps


def load(root: Path, options: Options, policy: str = "clip", dataset: str = "tacos",
         tolerance: float = TOLERANCE) -> tuple[list[VideoRecord], BadRowReport]:
    """Read the configured TACoS split files."""
    return caption_split_records(root, options.splits, policy, dataset, options.video_pattern, frame_timing,
                                 strip_suffix=options.strip_suffix, tolerance=tolerance)
