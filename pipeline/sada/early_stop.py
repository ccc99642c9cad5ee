"""Early stopping on held-out SOURCE training videos (thesis §2.5.2: "we mitigate overfitting by using early
stopping"; its hyper-parameters were chosen on the source validation data, never on target labels).

``sada.early_stop``: ``heldout_fraction`` of the scenario's source training videos (a fixed, seed-independent
choice by a hash of the video id) leave the training set; after every epoch the EMA model is scored on them
(``metric`` ``loss`` = the task loss per positive anchor, lower is better; ``map`` = their TAL Avg mAP over
tIoU 0.1:0.5 with :data:`SELECTION_INFERENCE` decoding, higher is better). Training stops once ``patience`` epochs pass without a better score, and the
saved ``model.pt`` holds the best epoch's weights. ``heldout_fraction`` 0 = off (plain ``fit``).

The driver runs ``fit`` one epoch per call (``stop_after_epochs=1``): each call resumes from the work folder's
``last.pt``, so the epochs are exactly those of an uninterrupted run, a killed run resumes as before, and the
best weights so far (``best.pt`` beside ``last.pt``) survive a kill too.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from models.sada.config import SadaInferenceConfig
from pipeline.core.checkpoints import save_checkpoint
from pipeline.datasets.schema import VideoRecord
from pipeline.metrics.tal import load_anet_ground_truth, tal_map
from pipeline.sada.data import FeatureRecipe, TalVideo, collate_videos
from pipeline.sada.params import SadaEarlyStop


# The held-out mAP decodes with the TriDet/ActionFormer EPIC test settings (tal_detector_notes.md §4), fixed
# here rather than read from sada.inference: post-processing params must never retrain a model.
SELECTION_INFERENCE = SadaInferenceConfig(pre_nms_thresh=0.001, pre_nms_topk=5000, duration_thresh=0.05,
                                          nms_sigma=0.4, min_score=0.001, max_seg_per_class=2000,
                                          max_seg_per_video=2000)


def split_heldout(records: Sequence[VideoRecord], fraction: float) -> tuple[list[VideoRecord], list[VideoRecord]]:
    """``(train, held_out)``: the ``round(fraction · n)`` records (≥ 1 when ``fraction`` > 0, < n) whose
    sha1(video id) sorts first are held out, so the choice depends neither on the seed nor on record order."""
    if fraction <= 0:
        return list(records), []
    n = len(records)
    k = min(n - 1, max(1, round(fraction * n)))
    if k <= 0:
        return list(records), []
    order = sorted(records, key=lambda r: hashlib.sha1(r.video_id.encode("utf-8")).hexdigest())
    held = {r.video_id for r in order[:k]}
    return [r for r in records if r.video_id not in held], [r for r in records if r.video_id in held]


class HeldoutScorer:
    """``fit``'s ``evaluate`` callback: the held-out score of the (EMA) model; remembers its weights so the
    driver can keep the best epoch's. Returns ``{"heldout_<metric>": value}``."""

    def __init__(self, videos: list[TalVideo], recipe: FeatureRecipe, metric: str):
        if not videos:
            raise ValueError("early stopping needs at least one held-out source video")
        self.videos, self.recipe, self.metric = videos, recipe, metric
        self.last_state: dict[str, torch.Tensor] | None = None

    @property
    def key(self) -> str:
        return f"heldout_{self.metric}"

    def __call__(self, model) -> dict[str, float]:
        value = self.loss(model) if self.metric == "loss" else self.avg_map(model)
        self.last_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return {self.key: value}

    def _batch(self, model, video: TalVideo) -> dict:
        from pipeline.core.training import move_to_device

        device = next(model.parameters()).device
        return move_to_device(collate_videos([video], model.pad_multiple, self.recipe), device)

    @torch.no_grad()
    def loss(self, model) -> float:
        """Σ task loss · normaliser / Σ positives over the held-out videos (the normaliser is the model's
        running EMA, which drifts between epochs; per positive anchor the score is comparable across epochs)."""
        total, positives = 0.0, 0.0
        for video in self.videos:
            out = model(self._batch(model, video))
            total += float(out["loss"]) * float(model.loss_norm.value)
            positives += float(out["num_pos"])
        return total / max(positives, 1.0)

    @torch.no_grad()
    def avg_map(self, model) -> float:
        """TAL Avg mAP (×100) of the model's decoded predictions on the held-out videos."""
        rows: list[dict] = []
        gt: dict = {"database": {}}
        for video in self.videos:
            rows.extend(model.predict(self._batch(model, video), SELECTION_INFERENCE))
            seconds = video.segments.astype(np.float64) * self.recipe.time_step + 0.5 * self.recipe.window
            gt["database"][video.video_id] = {"subset": "heldout", "duration": video.duration, "annotations": [
                {"segment": [float(s), float(e)], "label": model.class_names[int(c)]}
                for (s, e), c in zip(seconds, video.labels)]}
        truth = load_anet_ground_truth(gt, label_field="label", src="held-out source videos")
        if not truth:
            return 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return 100.0 * float(tal_map(truth, rows)["average_mAP"])


def best_epoch(history: list[dict], key: str, metric: str) -> int:
    """0-based index of the best ``eval/<key>`` entry of ``history`` (first one on ties), -1 if none."""
    values = [h.get(f"eval/{key}") for h in history]
    best, best_i = None, -1
    for i, v in enumerate(values):
        if v is None or not math.isfinite(v):
            continue
        if best is None or (v < best if metric == "loss" else v > best):
            best, best_i = v, i
    return best_i


def fit_early_stopping(fit: Callable[..., Any], model, dataset, collate, train_cfg, out_dir: Path, work_dir: Path,
                       scorer: HeldoutScorer, es: SadaEarlyStop, **fit_kwargs) -> Any:
    """Run ``fit`` epoch by epoch with ``scorer`` until ``es.patience`` epochs bring no better held-out score
    (or the last epoch); write ``out_dir/model.pt`` with the best epoch's weights. Returns the last
    ``FitResult`` with ``history`` covering every epoch run and ``best_epoch`` (1-based) set on it."""
    cfg = dataclasses.replace(train_cfg, eval_every=1)
    best_path = Path(work_dir) / "best.pt"
    while True:
        result = fit(model, dataset, collate, cfg, out_dir, evaluate=scorer, stop_after_epochs=1,
                     work_dir=work_dir, **fit_kwargs)
        history = result.history
        best = best_epoch(history, scorer.key, es.metric)
        if history and best == len(history) - 1 and scorer.last_state is not None:
            save_checkpoint({"epoch": best + 1, "state_dict": scorer.last_state}, best_path)
        if result.finished or len(history) - 1 - best >= es.patience:
            break
    state = torch.load(best_path, map_location="cpu", weights_only=True) if best_path.exists() else None
    last = torch.load(Path(work_dir) / "last.pt", map_location="cpu", weights_only=True)
    header = {k: last[k] for k in ("format", "model_class", "config_class", "model_config", "train_config",
                                   "runtime") if k in last}
    weights = state["state_dict"] if state is not None else model.state_dict()
    save_checkpoint({**header, "state_dict": weights, "epoch": len(history), "best_epoch": best + 1,
                     "history": history}, Path(out_dir) / "model.pt")
    model.load_state_dict(weights)
    result.best_epoch = best + 1
    result.checkpoint = Path(out_dir) / "model.pt"
    return result
