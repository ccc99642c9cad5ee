"""HD-EPIC windowing (thesis §3.5.2.3): long videos cut into fixed windows that become independent instances.

Each video is cut into consecutive windows of ``frames`` frames at ``fps`` (default 500 frames at 3 fps =
166.7 s; the last window is shorter). A moment belongs to the window holding its midpoint — so every moment
lands in exactly one window — and is clipped to that window, with times made relative to the window start.
Windows without any moment are discarded. A window keeps its video's split (HD-EPIC's 80-20 per-participant
split is made by the adapter, ``pipeline.datasets.hd_epic.chronological_split``) and participant, and records
its source video and offset in ``extra`` (``source_video``, ``offset``), so predictions map back to the video.
Window ids are ``<video_id>_w<k>`` with ``k`` the 0-based window index in the video.
"""
from __future__ import annotations

import dataclasses
import math

from pipeline.datasets.schema import Moment, VideoRecord


def window_record(rec: VideoRecord, frames: int = 500, fps: float = 3.0) -> list[VideoRecord]:
    """The non-empty windows of one video."""
    if frames <= 0 or fps <= 0:
        raise ValueError(f"window frames and fps must be positive, got {frames} and {fps}")
    span = frames / fps
    n_win = max(1, math.ceil(rec.duration / span - 1e-9))
    buckets: list[list[Moment]] = [[] for _ in range(n_win)]
    for m in rec.moments:
        k = min(n_win - 1, max(0, int(((m.start + m.end) / 2) // span)))
        buckets[k].append(m)
    out = []
    for k, ms in enumerate(buckets):
        if not ms:
            continue  # windows without ground truth are discarded (thesis §3.5.2.3)
        t0 = k * span
        length = min(span, rec.duration - t0)
        moved = [dataclasses.replace(m, start=round(max(m.start, t0) - t0, 6), end=round(min(m.end, t0 + span) - t0, 6))
                 for m in ms]
        out.append(dataclasses.replace(
            rec, video_id=f"{rec.video_id}_w{k}", duration=round(length, 6), moments=moved,
            saliency={}, extra={**rec.extra, "source_video": rec.video_id, "offset": round(t0, 6)}))
    return out


def window_records(records: list[VideoRecord], frames: int = 500, fps: float = 3.0) -> list[VideoRecord]:
    """Windows of every record (see the module docstring)."""
    return [w for rec in records for w in window_record(rec, frames, fps)]
