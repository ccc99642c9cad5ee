"""Decode videos in DataLoader workers while the main process runs the backbone.

``ClipStream`` is an ``IterableDataset`` over a list of :class:`VideoJob`; worker ``w`` of ``n`` decodes jobs
``w, w + n, ...`` and yields, per job, its clip batches in order and then one end item. A decoding failure
ends the job with an error item instead (``reason`` set), so the main process decides what to do (skip or
fail) and never sees half a video as complete. Items are plain dicts:
``{"job": int, "frames": uint8 [U, size, size, 3] | None, "index": int64 [b, frames] | None, "end": bool,
"reason": str | None}`` — the clips of a batch are ``frames[index]`` (overlapping windows ship shared frames
once; the gather runs where the model runs).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from pipeline.features.decode import ClipPlan, VideoError, iter_clips


@dataclass(frozen=True)
class VideoJob:
    """One video to decode: file path, its sampling plan, and how to scale frames."""

    path: str
    plan: ClipPlan
    size: int
    resize: str = "squash"
    interpolation: str = "bilinear"


class ClipStream(IterableDataset):
    """Clip batches of every job (see module docstring); ``batch`` windows per item."""

    def __init__(self, jobs: list[VideoJob], batch: int, seek_gap: float, max_missing: float, threads: int = 0):
        super().__init__()
        self.jobs, self.batch = jobs, batch
        self.seek_gap, self.max_missing, self.threads = seek_gap, max_missing, threads

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        wid, n = (info.id, info.num_workers) if info is not None else (0, 1)
        for j in range(wid, len(self.jobs), n):
            job = self.jobs[j]
            try:
                for cb in iter_clips(job.path, job.plan, job.size, self.batch, job.resize, job.interpolation,
                                     self.seek_gap, self.max_missing, self.threads):
                    yield {"job": j, "frames": torch.from_numpy(cb.frames), "index": torch.from_numpy(cb.index),
                           "end": False, "reason": None}
            except VideoError as exc:
                yield {"job": j, "frames": None, "index": None, "end": True, "reason": exc.reason}
                continue
            yield {"job": j, "frames": None, "index": None, "end": True, "reason": None}


def _collate(item: dict) -> dict:
    return item


def clip_loader(stream: ClipStream, workers: int, pin_memory: bool = False) -> DataLoader:
    """A DataLoader passing ``stream`` items through unchanged, decoding in ``workers`` processes."""
    return DataLoader(stream, batch_size=None, num_workers=workers, collate_fn=_collate, pin_memory=pin_memory,
                      prefetch_factor=4 if workers > 0 else None, persistent_workers=False)
