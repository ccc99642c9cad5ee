"""Each seed's EMA model on the evaluation split (the first half of stage ``sada_evaluate@<scenario>-<variant>``).

For the target domain (the scored one) and the source domain (an in-domain reference, which shows the size of
the domain gap) of ``eval_split``, writes into the output directory:

* ``<role>_seed<k>.jsonl`` — TAL prediction rows ``video-id, t-start, t-end, label, score`` (seconds);
* ``target_bkgmasked_seed<k>.jsonl`` (when ``sada.eval.mask_bkg``) — the same model's target rows with
  the background anchors masked out at inference (thesis Tab. 2.8; an oracle: it reads the target GT);
* ``gt_<role>.json`` — ActivityNet-style ground truth ``{"database": {vid: {subset, duration,
  annotations: [{segment, label}]}}}`` restricted to the model's classes;
* ``anchors.npz`` — level-``sada.eval.tsne_level`` anchor embeddings of the first seed's model for the t-SNE
  of thesis Fig. 2.11: ``emb [N, F]``, ``cls [N]`` (GT class + 1 from label assignment, 0 = background),
  ``domain [N]`` (0 source, 1 target), at most ``sada.eval.tsne_points`` per (class, domain).

Videos are decoded one at a time (batch size 1, as the reference detectors do).
The seeds and classes come from the train output (``summary.json``, the checkpoints). The rows are the
detector's own decoding (``sada.inference``: per-level top-k, score threshold, Soft-NMS), as the reference TAL
detectors emit them; the evaluate half scores them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from models.sada.detector import SadaDetector
from pipeline.datasets.params import DatasetScenario
from models.sada.config import SadaInferenceConfig
from pipeline.sada.params import SadaScenario
from pipeline.datasets.schema import VideoRecord, read_records
from pipeline.core.io import atomic_path, read_json, write_json, write_jsonl
from pipeline.sada.data import (
    BKG_MASKED,
    SOURCE,
    TARGET,
    FeatureRecipe,
    TalVideo,
    collate_videos,
    load_videos,
    open_features,
    select,
)
ROLES = {"target": TARGET, "source": SOURCE}


def ground_truth(records: list[VideoRecord], class_names: list[str]) -> dict:
    """ActivityNet-style GT of ``records`` keeping only moments of ``class_names``."""
    keep = set(class_names)
    return {
        "database": {
            r.video_id: {
                "subset": r.split,
                "duration": r.duration,
                "annotations": [
                    {"segment": [m.start, m.end], "label": m.label} for m in r.moments if m.label in keep
                ],
            }
            for r in records
        }
    }


def _batch(model, video: TalVideo, recipe: FeatureRecipe) -> dict:
    from pipeline.core.training import move_to_device

    device = next(model.parameters()).device
    return move_to_device(collate_videos([video], model.pad_multiple, recipe), device)


def predict_videos(model, videos: list[TalVideo], recipe: FeatureRecipe, inference, progress: str = "",
                   mask_background: bool = False) -> list[dict]:
    """Prediction rows of every video, decoded one video per batch on the model's device
    (``mask_background``: the Tab. 2.8 oracle, see ``SadaDetector.predict``)."""
    rows: list[dict] = []
    for video in tqdm(videos, desc=progress, disable=not progress, leave=False):
        rows.extend(model.predict(_batch(model, video, recipe), inference, mask_background=mask_background))
    return rows


def anchor_sample(model, videos: list[TalVideo], recipe: FeatureRecipe, level: int, per_group: int, seed: int = 0) -> dict:
    """Level-``level`` anchors of ``videos`` with their GT-assigned classes, ≤ ``per_group`` per (class, domain)."""
    embs, classes, domains = [], [], []
    level = min(level, model.num_levels - 1)
    for video in videos:
        batch = _batch(model, video, recipe)
        with torch.no_grad():
            enc = model.encode(batch["feats"], batch["mask"])
        lengths = [a.shape[-1] for a in enc["anchors"]]
        _, _, anchor_cls = model.targets(lengths, batch["segments"], batch["labels"])
        start = sum(lengths[:level])
        valid = enc["masks"][level][0, 0]
        embs.append(enc["anchors"][level][0].T[valid].cpu().numpy())
        classes.append(anchor_cls[0, start : start + lengths[level]][valid].cpu().numpy())
        domains.append(np.full(int(valid.sum()), video.domain))
    emb, cls, dom = np.concatenate(embs), np.concatenate(classes), np.concatenate(domains)
    rng = np.random.default_rng(seed)
    keep = []
    for key in sorted(set(zip(cls.tolist(), dom.tolist()))):
        idx = np.flatnonzero((cls == key[0]) & (dom == key[1]))
        keep.append(np.sort(rng.choice(idx, size=min(per_group, len(idx)), replace=False)))
    keep = np.concatenate(keep) if keep else np.zeros(0, dtype=np.int64)
    return {"emb": emb[keep].astype(np.float32), "cls": cls[keep].astype(np.int64), "domain": dom[keep].astype(np.int64)}


def predict_run(
    selectors: DatasetScenario,
    spec: SadaScenario,
    canonical: Path,
    features_dir: Path,
    train_dir: Path,
    out_dir: Path,
    layer: int,
    inference: SadaInferenceConfig,
    tsne_level: int,
    tsne_points: int,
    device: str = "cpu",
    mask_bkg: bool = False,
) -> dict:
    """Predictions of every seed's model on both domains' ``eval_split`` videos into ``out_dir`` (which appears
    atomically); returns video counts."""
    seeds = [int(s) for s in read_json(train_dir / "summary.json")["seeds"]]
    records = read_records(canonical)
    container, recipe = open_features(features_dir / spec.eval_split)
    with atomic_path(out_dir) as tmp:
        return _predict_into(tmp, seeds, records, container, recipe, selectors, spec, train_dir, layer, inference,
                             tsne_level, tsne_points, device, mask_bkg)


def _predict_into(out_dir: Path, seeds, records, container, recipe, selectors, spec, train_dir, layer, inference,
                  tsne_level, tsne_points, device, mask_bkg=False) -> dict:
    from pipeline.core.checkpoints import load_model

    out_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    anchors = None
    for i, seed in enumerate(seeds):
        model, _ = load_model(train_dir / f"seed_{seed}" / "model.pt", device=device, models=(SadaDetector,))
        class_names = list(model.class_names)
        role_videos = {}
        for role, domain in ROLES.items():
            selector = selectors.target if domain == TARGET else selectors.source
            recs = select(records, selector, spec.eval_split)
            if i == 0:
                write_json(out_dir / f"gt_{role}.json", ground_truth(recs, class_names))
                counts[f"{role}_videos"] = len(recs)
            videos, _ = load_videos(recs, container, recipe, class_names, layer, domain)
            role_videos[role] = videos
            rows = predict_videos(model, videos, recipe, inference, progress=f"seed {seed} {role}")
            write_jsonl(out_dir / f"{role}_seed{seed}.jsonl", rows)
            if mask_bkg and role == "target":  # Tab. 2.8: the same model with background anchors masked out
                rows = predict_videos(model, videos, recipe, inference, mask_background=True)
                write_jsonl(out_dir / f"{role}_{BKG_MASKED}_seed{seed}.jsonl", rows)
        if i == 0:
            anchors = anchor_sample(model, role_videos["source"] + role_videos["target"], recipe, tsne_level, tsne_points)
    if anchors is not None:
        with atomic_path(out_dir / "anchors.npz", suffix=".npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **anchors)
    return counts
