"""Query-level datasets for search-query VMR: features + windows → tensors for ``models/search_detr.py``.

An item pairs one query (a caption, or a search query with all its moments) with the video-feature rows of its
video and the token features of its text:

* video: ``[T, L, D]`` container rows of layer ``data.video_layer`` (time step/window from the container's
  meta), optionally L2-normalised, average-pooled to at most ``data.max_video_len`` rows, with the optional
  TEF (start, end of each row / duration) appended;
* text: ``[tokens, L, D]`` rows of layer ``data.text_layer``, truncated to ``data.max_text_len`` tokens;
* targets: every window as normalised ``(center, width)`` (clipped to the video), and ``saliency_pos`` = rows
  whose centre lies inside a window (the positives of the saliency hinge).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from pipeline.datasets.schema import Query, VideoRecord, iter_queries
from pipeline.core.io import InputError
from pipeline.features.container import FeatureContainer


def queries_of(records: Sequence[VideoRecord], split: str, where: str) -> list[Query]:
    """Query-level view of the records of one split; an empty result is an error naming ``where``."""
    queries = list(iter_queries(r for r in records if r.split == split))
    if not queries:
        raise InputError(f"{where}: no queries in split {split!r}")
    return queries


def check_coverage(queries: Sequence[Query], video: FeatureContainer, text: FeatureContainer) -> None:
    """Every query's video and text must have features; the error lists the first missing ids."""
    missing_v = sorted({q.vid for q in queries if q.vid not in video})
    missing_t = sorted({q.qid for q in queries if q.qid not in text})
    if missing_v:
        raise InputError(f"{video.prefix}: no features for {len(missing_v)} video(s), e.g. {missing_v[:3]}")
    if missing_t:
        raise InputError(f"{text.prefix}: no features for {len(missing_t)} query id(s), e.g. {missing_t[:3]}")


def _layer(arr: np.ndarray, layer: int, where: str, rows: int | None = None) -> np.ndarray:
    """Rows ``[:rows]`` of one stored layer of a ``[rows, layers, dim]`` item as a new float32 array.

    Only that slice is copied out of the memory map (as float16) and only it is converted; the conversion goes
    through torch because numpy's float16 → float32 cast is scalar (0.8 ms for a 500 × 768 slice vs ~0.05 ms;
    both are exact, so the values are the same).
    """
    if arr.ndim != 3:
        raise InputError(f"{where}: expected a [rows, layers, dim] array, got shape {arr.shape}")
    if not -arr.shape[1] <= layer < arr.shape[1]:
        raise InputError(f"{where}: layer index {layer} out of range for {arr.shape[1]} stored layer(s)")
    sl = np.array(arr[:rows, layer], order="C")  # always a copy: never hand out the read-only map
    return torch.from_numpy(sl).to(torch.float32).numpy()


def _l2(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit L2 norm, IN PLACE (``x`` is the fresh copy :func:`_layer` returns)."""
    x /= np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-6)
    return x


def pool_rows(feats: np.ndarray, time_step: float, window: float, max_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average-pool ``[T, D]`` rows into at most ``max_len`` bins; returns (features, start s, end s) per bin.

    Bin j covers rows ``floor(j·T/n)`` … ``ceil((j+1)·T/n) − 1`` (adaptive pooling); its time span runs from
    the first row's start to the last row's end (``start + window``).
    """
    T = feats.shape[0]
    starts = np.arange(T, dtype=np.float64) * time_step
    if T <= max_len:
        return feats, starts, starts + window
    n = max_len
    lo = np.floor(np.arange(n) * T / n).astype(int)
    hi = np.ceil((np.arange(n) + 1) * T / n).astype(int)
    pooled = np.stack([feats[a:b].mean(0) for a, b in zip(lo, hi)])
    return pooled, starts[lo], starts[hi - 1] + window


def replicate_moments(v: np.ndarray, start: np.ndarray, end: np.ndarray, win: np.ndarray, rate: float,
                      duration: float) -> tuple[np.ndarray, np.ndarray]:
    """Thesis Tab 3.5's data augmentation (simulated multi-moment queries): each GT window is, with probability
    ``rate``, copied to a random place of the video that overlaps no GT window: its rows (centres inside the
    window) overwrite as many rows there, and the copy's time span joins the windows. Draws come from torch's
    RNG (seeded per rank and DataLoader worker by the training loop); ``v`` is the pooled ``[n, D]`` video."""
    centers = (start + end) / 2
    inside = (centers[:, None] >= win[None, :, 0]) & (centers[:, None] <= win[None, :, 1])  # [n, windows]
    busy = inside.any(1)
    v, extra = v.copy(), []
    for j in range(win.shape[0]):
        rows = np.flatnonzero(inside[:, j])
        if len(rows) == 0 or float(torch.rand(())) >= rate:
            continue
        length = rows[-1] - rows[0] + 1
        free = [a for a in range(len(v) - length + 1) if not busy[a : a + length].any()]
        if not free:
            continue
        a = free[int(torch.randint(len(free), ()))]
        v[a : a + length] = v[rows[0] : rows[-1] + 1]
        busy[a : a + length] = True
        extra.append([start[a], end[a + length - 1]])
    if extra:
        win = np.concatenate([win, np.clip(np.asarray(extra, dtype=np.float64), 0.0, duration)])
    return v, win


class SearchVMRDataset(torch.utils.data.Dataset):
    """Map-style dataset of queries over two feature containers (see the module docstring)."""

    def __init__(self, queries: Sequence[Query], video: FeatureContainer, text: FeatureContainer, data_cfg: Any,
                 augment: float = 0.0):
        check_coverage(queries, video, text)
        for key in ("time_step", "window"):
            if key not in video.meta:
                raise InputError(f"{video.prefix}.json: meta lacks {key!r} (needed to place rows in time)")
        self.queries = list(queries)
        self.video, self.text, self.cfg = video, text, data_cfg
        self.time_step = float(video.meta["time_step"])
        self.window = float(video.meta["window"])
        self.augment = float(augment)  # training only: see replicate_moments

    def __len__(self) -> int:
        return len(self.queries)

    def video_dim(self) -> int:
        """Width of the video input (feature dim + 2 with TEF)."""
        return int(self.video.array.shape[-1]) + (2 if self.cfg.use_tef else 0)

    def text_dim(self) -> int:
        return int(self.text.array.shape[-1])

    def __getitem__(self, i: int) -> dict:
        q = self.queries[i]
        cfg = self.cfg
        v = _layer(self.video[q.vid], cfg.video_layer, f"{self.video.prefix}[{q.vid}]")
        t = _layer(self.text[q.qid], cfg.text_layer, f"{self.text.prefix}[{q.qid}]", rows=cfg.max_text_len)
        if len(v) == 0 or len(t) == 0:
            raise InputError(f"query {q.qid}: empty video ({len(v)} rows) or text ({len(t)} tokens) features")
        if cfg.normalize:
            v, t = _l2(v), _l2(t)
        v, start, end = pool_rows(v, self.time_step, self.window, cfg.max_video_len)
        dur = float(q.duration)
        if not dur > 0:
            raise InputError(f"query {q.qid}: video {q.vid} has non-positive duration {dur}")
        win = np.clip(np.asarray(q.windows, dtype=np.float64).reshape(-1, 2), 0.0, dur)
        if self.augment > 0:  # before the TEF: a copy keeps the time stamps of the place it lands on
            v, win = replicate_moments(v, start, end, win, self.augment, dur)
        if cfg.use_tef:
            tef = np.stack([np.clip(start / dur, 0, 1), np.clip(end / dur, 0, 1)], axis=1)
            v = np.concatenate([v, tef.astype(np.float32)], axis=1)
        spans = np.stack([(win[:, 0] + win[:, 1]) / 2 / dur, (win[:, 1] - win[:, 0]) / dur], axis=1)
        centers = (start + end) / 2
        pos = ((centers[:, None] >= win[None, :, 0]) & (centers[:, None] <= win[None, :, 1])).any(1)
        return {
            "qid": q.qid,
            "vid": q.vid,
            "duration": dur,
            "windows": [list(map(float, w)) for w in q.windows],
            "video": torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)),
            "text": torch.from_numpy(np.ascontiguousarray(t, dtype=np.float32)),
            "spans": torch.from_numpy(spans.astype(np.float32)),
            "saliency_pos": torch.from_numpy(pos),
        }


def _pad(seqs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    n = max(len(s) for s in seqs)
    out = seqs[0].new_zeros((len(seqs), n, *seqs[0].shape[1:]))
    mask = torch.zeros(len(seqs), n, dtype=torch.bool)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
        mask[i, : len(s)] = True
    return out, mask


def collate(items: list[dict]) -> dict:
    """Pad videos/texts of a list of items into one batch (masks: True = valid); lists stay lists."""
    video, vmask = _pad([it["video"] for it in items])
    text, tmask = _pad([it["text"] for it in items])
    sal, _ = _pad([it["saliency_pos"] for it in items])
    return {
        "video": video,
        "video_mask": vmask,
        "text": text,
        "text_mask": tmask,
        "saliency_pos": sal.bool() & vmask,
        "spans": [it["spans"] for it in items],
        "qid": [it["qid"] for it in items],
        "vid": [it["vid"] for it in items],
        "duration": [it["duration"] for it in items],
        "windows": [it["windows"] for it in items],
    }


def batches(dataset: SearchVMRDataset, batch_size: int) -> Any:
    """Yield collated batches in dataset order (for prediction)."""
    for i in range(0, len(dataset), batch_size):
        yield collate([dataset[j] for j in range(i, min(len(dataset), i + batch_size))])


def num_batches(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)
