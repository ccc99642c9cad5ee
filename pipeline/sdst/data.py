"""SDST inputs: query-level items from canonical records + multi-layer video/text feature containers.

* Video container ``<video_dir>/<split>`` rows = time steps, array ``[T, L, D]``; meta ``layers`` (1-based
  backbone layer ids along axis 1) and ``time_step`` (seconds between rows). Text container
  ``<text_dir>/<split>`` items = qid, array ``[tokens, L, D]``, meta ``layers``.
* :func:`select_layers` turns ``sdst.K`` / ``sdst.layers`` / the variant into the backbone layer ids per level.
* :class:`SDSTDataset` yields one item per query; :func:`collate` pads to the longest video / text in the batch
  (at least ``min_len`` rows) and returns the batch dict :class:`models.sdst.SDST` documents.
* :func:`seed_dir` / :func:`seed_checkpoints` / :func:`prediction_path`: the per-seed file layout the three
  stages share (``<models>/seed_<k>/model.pt``, ``<predictions>/seed_<k>.jsonl``).

Targets: windows are normalised by the feature span ``T · time_step`` (the model works in [0, 1] of the rows
it sees). Saliency per row: QVHighlights-style annotations (sum over annotators of the ``clip_len`` clip that
holds the row centre) when the query has them, else 1 inside any window and 0 outside (as the thesis does for
TACoS / Charades-STA).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from pipeline.datasets.schema import Query, iter_queries, read_records
from pipeline.core.io import InputError
from pipeline.features.container import FeatureContainer, container_paths


@dataclass(frozen=True)
class LayerChoice:
    """Backbone layer ids feeding each refinement level (level 1 first)."""

    video: list[int]
    text: list[int]


def select_layers(video_layers: Sequence[int], text_layers: Sequence[int], K: int, layers: Sequence[int],
                  last_layer_only: bool, order: str, where: str) -> LayerChoice:
    """Pick the layers SDST refines over.

    ``layers`` (explicit 1-based video layer ids, Tab 4.11) wins over ``K`` (the last K stored); text always
    uses its last ``n`` stored layers. ``last_layer_only`` feeds the deepest selected layer to all ``n`` levels
    (Fig 4.4 blue curve; ``K=1`` + this is the ``w/o tuning`` baseline). ``order``: ``shallow_to_deep`` (level
    K = the last layer, thesis Eq. 4.14) or ``deep_to_shallow`` (R2-Tuning's order). ``where`` names the
    containers in errors.
    """
    video_layers, text_layers = list(video_layers), list(text_layers)
    if layers:
        missing = [l for l in layers if l not in video_layers]
        if missing:
            raise InputError(f"{where}: sdst.layers asks for layers {missing} but the video features store only "
                             f"{video_layers}")
        chosen = sorted(layers)
    else:
        if K < 1:
            raise InputError(f"{where}: sdst.K must be ≥ 1, got {K}")
        if K > len(video_layers):
            raise InputError(f"{where}: sdst.K={K} asks for the last {K} layers but the video features store only "
                             f"{len(video_layers)} ({video_layers}); extract more layers or lower K")
        chosen = sorted(video_layers)[-K:]
    n = len(chosen)
    if n > len(text_layers):
        raise InputError(f"{where}: {n} levels need {n} text layers but the text features store only "
                         f"{len(text_layers)} ({text_layers})")
    text = sorted(text_layers)[-n:]
    if last_layer_only:
        chosen, text = [chosen[-1]] * n, [text[-1]] * n
    if order == "deep_to_shallow":
        chosen, text = chosen[::-1], text[::-1]
    elif order != "shallow_to_deep":
        raise ValueError(f"unknown level order {order!r}")
    return LayerChoice(video=chosen, text=text)


def container_layers(prefix: str | Path) -> tuple[list[int], dict]:
    """The ``layers`` list and meta of a container (reads only the index)."""
    from pipeline.core.io import read_json

    _, idx = container_paths(prefix)
    if not idx.exists():
        raise InputError(f"{idx}: feature container index not found")
    meta = read_json(idx).get("meta", {})
    if "layers" not in meta:
        raise InputError(f"{idx}: meta has no 'layers' (1-based backbone layer ids along axis 1)")
    return [int(x) for x in meta["layers"]], meta


def _row_saliency(q: Query, n_rows: int, time_step: float, clip_len: float) -> np.ndarray:
    centres = (np.arange(n_rows) + 0.5) * time_step
    sal = np.zeros(n_rows, dtype=np.float32)
    if q.saliency is not None and q.saliency.clip_ids:
        per_clip = {int(c): float(sum(s)) for c, s in zip(q.saliency.clip_ids, q.saliency.scores)}
        clip_of_row = np.floor(centres / clip_len).astype(int)
        sal = np.array([per_clip.get(int(c), 0.0) for c in clip_of_row], dtype=np.float32)
    else:
        for s, e in q.windows:
            sal[(centres >= s) & (centres < e)] = 1.0
    return sal


class SDSTDataset(torch.utils.data.Dataset):
    """One item per query of ``split``; features read lazily from the memory-mapped containers."""

    def __init__(self, canonical: str | Path, split: str, video_dir: str | Path, text_dir: str | Path,
                 layers: LayerChoice, clip_len: float, require_windows: bool):
        self.video = FeatureContainer(Path(video_dir) / split)
        self.text = FeatureContainer(Path(text_dir) / split)
        self.v_idx = self._layer_index(self.video, layers.video)
        self.t_idx = self._layer_index(self.text, layers.text)
        if "time_step" not in self.video.meta:
            raise InputError(f"{self.video.prefix}: meta has no 'time_step'")
        self.time_step = float(self.video.meta["time_step"])
        self.clip_len = clip_len
        self.queries: list[Query] = []
        skipped = 0
        for q in iter_queries(read_records(canonical, split=split)):
            if q.vid not in self.video:
                raise InputError(f"{self.video.prefix}: no features for video {q.vid!r} (query {q.qid})")
            if q.qid not in self.text:
                raise InputError(f"{self.text.prefix}: no features for query {q.qid!r}")
            if require_windows and not q.windows:
                skipped += 1
                continue
            self.queries.append(q)
        self.skipped_without_windows = skipped
        if not self.queries:
            raise InputError(f"{canonical}: split {split!r} has no usable queries")

    @staticmethod
    def _layer_index(container: FeatureContainer, wanted: list[int]) -> list[int]:
        stored = [int(x) for x in container.meta.get("layers", [])]
        if container.array.ndim != 3:
            raise InputError(f"{container.prefix}: expected a [rows, L, D] array, got shape {container.array.shape}")
        missing = [l for l in wanted if l not in stored]
        if missing:
            raise InputError(f"{container.prefix}: layers {missing} not stored (stored: {stored})")
        return [stored.index(l) for l in wanted]

    @property
    def video_dim(self) -> int:
        return int(self.video.array.shape[-1])

    @property
    def text_dim(self) -> int:
        return int(self.text.array.shape[-1])

    def __len__(self) -> int:
        return len(self.queries)

    def __getitem__(self, i: int) -> dict[str, Any]:
        q = self.queries[i]
        video = np.asarray(self.video[q.vid][:, self.v_idx], dtype=np.float32)  # [T, K, D]
        text = np.asarray(self.text[q.qid][:, self.t_idx], dtype=np.float32)
        n = video.shape[0]
        span = n * self.time_step
        windows = np.array([[max(0.0, s) / span, min(e, span) / span] for s, e in q.windows],
                           dtype=np.float32).reshape(-1, 2)
        windows = windows[windows[:, 1] > windows[:, 0]]
        return {"video": video, "text": text, "windows": windows,
                "saliency": _row_saliency(q, n, self.time_step, self.clip_len),
                "meta": {"qid": q.qid, "vid": q.vid, "duration": float(q.duration), "time_step": self.time_step,
                         "clip_len": self.clip_len}}


def feature_stats(ds: SDSTDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-level mean / std (``[K, D]``) of the selected layers over every row of the dataset's videos (each
    video once) and every token of its queries; streamed, so memory stays at one item."""

    def moments(arrays) -> tuple[np.ndarray, np.ndarray]:
        n, total, total_sq = 0, 0.0, 0.0
        for a in arrays:
            a = np.asarray(a, dtype=np.float64)
            n, total, total_sq = n + a.shape[0], total + a.sum(0), total_sq + (a * a).sum(0)
        mean = total / n
        return mean, np.sqrt(np.maximum(total_sq / n - mean * mean, 0.0))

    vids = sorted({q.vid for q in ds.queries})
    v_mean, v_std = moments(ds.video[v][:, ds.v_idx] for v in vids)
    t_mean, t_std = moments(ds.text[q.qid][:, ds.t_idx] for q in ds.queries)
    return v_mean, v_std, t_mean, t_std


def collate(items: list[dict[str, Any]], min_len: int = 5) -> dict[str, Any]:
    """Pad a list of items into the SDST batch dict (masks True on valid rows / tokens)."""
    b = len(items)
    t_max = max(min_len, max(it["video"].shape[0] for it in items))
    l_max = max(it["text"].shape[0] for it in items)
    k, dv = items[0]["video"].shape[1:]
    dt = items[0]["text"].shape[2]
    video = torch.zeros(b, k, t_max, dv)
    text = torch.zeros(b, k, l_max, dt)
    vmask = torch.zeros(b, t_max, dtype=torch.bool)
    tmask = torch.zeros(b, l_max, dtype=torch.bool)
    sal = torch.zeros(b, t_max)
    for i, it in enumerate(items):
        n, m = it["video"].shape[0], it["text"].shape[0]
        video[i, :, :n] = torch.from_numpy(it["video"]).transpose(0, 1)
        text[i, :, :m] = torch.from_numpy(it["text"]).transpose(0, 1)
        vmask[i, :n], tmask[i, :m] = True, True
        sal[i, :n] = torch.from_numpy(it["saliency"])
    return {"video": video, "video_mask": vmask, "text": text, "text_mask": tmask, "saliency": sal,
            "windows": [torch.from_numpy(it["windows"]) for it in items], "meta": [it["meta"] for it in items]}


# ----------------------------------------------------------------------------- per-seed file layout


def seed_dir(out: str | Path, seed: int) -> Path:
    """Where the model of one seed lives inside an ``sdst_train`` output directory."""
    return Path(out) / f"seed_{seed}"


def seed_checkpoints(models: Path, seeds: list[int]) -> dict[int, Path]:
    """``{seed: <models>/seed_<seed>/model.pt}`` for ``seeds``; a missing one is an ``InputError``."""
    out = {seed: seed_dir(models, seed) / "model.pt" for seed in seeds}
    missing = [str(path) for path in out.values() if not path.exists()]
    if missing:
        raise InputError(f"{models}: no checkpoint for sdst.seeds {seeds}: missing {missing} (rerun sdst_train)")
    return out


def prediction_path(out: Path, seed: int) -> Path:
    """Where one seed's predictions live inside a predict stage's output directory."""
    return Path(out) / f"seed_{seed}.jsonl"
