"""ActivityNet Captions JSON → canonical caption-VMR records (one query per caption).

Format: one JSON object per split file, ``{"v_<id>": {"duration": s, "timestamps": [[s, e], ...],
"sentences": [str, ...]}}``, times in seconds, ``sentences`` parallel to ``timestamps``. The public splits
are ``train.json``, ``val_1.json`` and ``val_2.json``; val_1 and val_2 annotate the same videos, which is
why moment ids carry the split (``<split>/<video>/<index>``). Sentences are stripped (the files have leading
spaces). A caption whose window is dropped is not written; empty sentences are ``malformed_row``.
The synthetic world writes this format too (``data/raw/synth_captions``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.datasets.badrows import TOLERANCE, BadRowReport
from pipeline.datasets.common import caption_split_records, seconds_timing
from pipeline.datasets.schema import VideoRecord


@dataclass(frozen=True)
class Options:
    """``datasets.sources.<name>.options`` of an ``activitynet_captions`` source."""

    splits: dict[str, str] = field(default_factory=lambda: {"train": "train.json", "val": "val_1.json"})
    video_pattern: str | None = None  # e.g. "videos/{video_id}.mp4"


def load(root: Path, options: Options, policy: str = "clip", dataset: str = "activitynet_captions",
         tolerance: float = TOLERANCE) -> tuple[list[VideoRecord], BadRowReport]:
    """Read the configured ActivityNet-Captions split files."""
    return caption_split_records(root, options.splits, policy, dataset, options.video_pattern, seconds_timing,
                                 tolerance=tolerance)
