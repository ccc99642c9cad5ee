"""Tiny SADA fixtures: detector configs, hand-made batches and a two-domain TAL toy world on disk.

The toy world writes what the SADA stages read — ``data/canonical/<name>.jsonl`` and feature containers
``data/features/<name>/<backbone>/<split>`` with ``[T, 1, D]`` arrays — with no video decoding: feature rows
inside an action carry a class pattern, and the target domain shifts every row by a fixed offset.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pipeline.sada.params import SadaData, SadaScenario, SadaVariant
from models.sada.config import SadaDetectorConfig, SadaInferenceConfig, SadaModelConfig, SadaWeights
from pipeline.core.params import TrainConfig
from pipeline.datasets.schema import Moment, VideoRecord, write_records
from pipeline.features.container import write_container

EPIC_RANGES = [(0, 4), (2, 8), (4, 16), (8, 32), (16, 64), (32, 10000)]
TIME_STEP, WINDOW = 0.5, 1.0


def model_config(dim: int = 32, loc_loss: str = "mse", droppath: float = 0.1) -> SadaModelConfig:
    return SadaModelConfig(
        embed_dim=dim, arch=(2, 2, 5), sgp_window=5, sgp_k=2.0, sgp_mlp_dim=2 * dim, sgp_init_std=0.0,
        droppath=droppath, head_dim=dim, head_layers=3, head_kernel=3, regression_ranges=list(EPIC_RANGES),
        center_sample_radius=1.5, loc_loss=loc_loss, cls_prior_prob=0.01, label_smoothing=0.0, focal_alpha=0.25,
        focal_gamma=2.0, init_loss_norm=20.0, loss_norm_momentum=0.9, disc_hidden=32, disc_layers=2,
        class_embed_dim=0, grl_coeff=1.0, grl_warmup_iters=0,
    )


def inference_config(**overrides) -> SadaInferenceConfig:
    values = {"pre_nms_thresh": 0.001, "pre_nms_topk": 5000, "duration_thresh": 0.05, "nms_sigma": 0.4,
              "min_score": 0.001, "max_seg_per_class": 2000, "max_seg_per_video": 2000}
    values.update(overrides)
    return SadaInferenceConfig(**values)


def weights(alpha: float = 0.5, lambda_sada: float = 1.0) -> SadaWeights:
    return SadaWeights(lambda_levels=[1.0] * 6, alpha=alpha, lambda_cls=1.0, lambda_reg=1.0, lambda_task=1.0,
                       lambda_sada=lambda_sada)


def detector_config(align=("local", "bkg"), dim: int = 32, input_dim: int = 16, classes: int = 3,
                    loc_loss: str = "mse", alpha: float = 0.5) -> SadaDetectorConfig:
    return SadaDetectorConfig(model=model_config(dim, loc_loss), weights=weights(alpha), align=list(align),
                              input_dim=input_dim, class_names=[f"c{i}" for i in range(classes)],
                              inference=inference_config())


def random_batch(input_dim: int = 16, length: int = 64, seed: int = 0) -> dict:
    """2 source videos with GT + 2 target videos (no GT), the second source video shorter (padding)."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(4, 1, length, dtype=torch.bool)
    mask[1, 0, 40:] = False
    empty = torch.zeros(0, 2)
    return {
        "feats": torch.randn(4, input_dim, length, generator=g) * mask,
        "mask": mask,
        "domain": torch.tensor([0, 0, 1, 1]),
        "segments": [torch.tensor([[10.0, 30.0], [40.0, 52.0]]), torch.tensor([[5.0, 9.0]]), empty, empty],
        "labels": [torch.tensor([1, 2]), torch.tensor([0]), torch.zeros(0, dtype=torch.long),
                   torch.zeros(0, dtype=torch.long)],
        "video_ids": ["s0", "s1", "t0", "t1"],
        "durations": torch.tensor([32.5, 20.5, 32.5, 32.5], dtype=torch.float64),
        "time_step": TIME_STEP,
        "window": WINDOW,
    }


# ----------------------------------------------------------------------------- toy world on disk


def _video(rng: np.random.Generator, vid: str, split: str, domain: str, collection: str, patterns: np.ndarray,
           shift: np.ndarray, length: int, class_names: list[str]) -> tuple[VideoRecord, np.ndarray]:
    dim = patterns.shape[1]
    feats = rng.normal(0.0, 0.3, (length, dim))
    moments, t = [], int(rng.integers(1, 4))
    while t < length - 6:
        dur = int(rng.integers(3, 9))
        cls = int(rng.integers(len(class_names)))
        feats[t : t + dur] += patterns[cls]
        start, end = t * TIME_STEP + 0.5 * WINDOW, (t + dur) * TIME_STEP + 0.5 * WINDOW
        moments.append(Moment(moment_id=f"{vid}_{len(moments)}", start=start, end=end, label=class_names[cls],
                              label_id=cls))
        t += dur + int(rng.integers(3, 8))
    feats = feats + shift
    rec = VideoRecord(video_id=vid, dataset="toy_tal", split=split, duration=length * TIME_STEP + 0.5 * WINDOW,
                      fps=30.0, domain=domain, moments=moments, extra={"collection": collection})
    return rec, feats[:, None, :].astype(np.float32)


def write_toy_world(root: Path, name: str = "toy_tal", backbone: str = "slowfast", videos_per_domain: int = 6,
                    length: int = 64, dim: int = 16, classes: int = 3, shift: float = 1.0, seed: int = 0) -> dict:
    """Write canonical records + ``train``/``val`` containers; domains ``src`` and ``tgt`` (shifted)."""
    rng = np.random.default_rng(seed)
    class_names = [f"act{i}" for i in range(classes)]
    patterns = np.zeros((classes, dim))
    for c in range(classes):
        patterns[c, 2 * c : 2 * c + 2] = 2.0
    offsets = {"src": np.zeros(dim), "tgt": rng.normal(0.0, shift, dim)}
    records, arrays = [], {"train": [], "val": []}
    for split, n in (("train", videos_per_domain), ("val", max(2, videos_per_domain // 2))):
        for domain in ("src", "tgt"):
            for i in range(n):
                vid = f"{domain}_{split}_{i:02d}"
                rec, feats = _video(rng, vid, split, domain, "old" if domain == "src" else "new", patterns,
                                    offsets[domain], length, class_names)
                records.append(rec)
                arrays[split].append((vid, feats))
    write_records(root / "data" / "canonical" / f"{name}.jsonl", records)
    meta = {"backbone": backbone, "dim": dim, "layers": [1], "time_step": TIME_STEP, "window": WINDOW,
            "pooling": "avg"}
    for split, items in arrays.items():
        write_container(root / "data" / "features" / name / backbone / split, items, meta)
    return {"class_names": class_names, "records": records}


def toy_scenario() -> SadaScenario:
    return SadaScenario(num_classes=3, weights=weights(alpha=0.3, lambda_sada=0.3))


def toy_run(seeds=(0,), epochs: int = 2, align=("local", "bkg")) -> dict:
    """The typed pieces ``pipeline.sada.train.train_run`` expects, sized for tests."""
    return {
        "dataset": "toy_tal",
        "seeds": list(seeds),
        "scenario": toy_scenario(),
        "variant": SadaVariant(label="+".join(align) or "source-only", align=list(align)),
        "data": SadaData(max_seq_len=64, crop_ratio=(0.9, 1.0), trunc_thresh=0.3, layer=-1),
        "model": model_config(32),
        "train": TrainConfig(epochs=epochs, batch_size=2, lr=1e-3, weight_decay=0.05, schedule="cosine",
                             warmup_iters=2, grad_clip=1.0, ema_decay=0.9, drop_last=True),
    }
