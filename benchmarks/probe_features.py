"""Linear probe: do the embedded (tiny, random-init) backbones' features carry colour, shape and motion?

Renders synthetic clips (one coloured shape moving left or right on a noisy background, random height),
extracts features with each configured backbone exactly as extraction does (uint8 clips → model), and
fits a logistic-regression probe per factor with 5-fold cross-validation. Prints accuracy vs chance.

    OMP_NUM_THREADS=1 python benchmarks/probe_features.py [--clips 240] [--params params.yaml]
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

COLOURS = [(220, 40, 40), (40, 200, 60), (40, 70, 220), (230, 210, 40)]


def render_clip(frames: int, size: int, colour: int, shape: int, direction: int, rng) -> np.ndarray:
    """uint8 [frames, size, size, 3]: a square (shape 0) or disc (1) crossing the frame left→right or back."""
    yy, xx = np.mgrid[0:size, 0:size]
    r = max(2, size // 10)
    cy = rng.integers(r + 1, size - r - 1)
    bg = rng.integers(20, 120)
    out = np.empty((frames, size, size, 3), dtype=np.uint8)
    for k in range(frames):
        p = k / max(1, frames - 1)
        cx = r + 1 + p * (size - 2 * r - 2)
        if direction:
            cx = size - 1 - cx
        if shape == 0:
            mask = (np.abs(xx - cx) <= r) & (np.abs(yy - cy) <= r)
        else:
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        img = np.full((size, size, 3), bg, dtype=np.int16) + rng.integers(-10, 11, (size, size, 3))
        img[mask] = COLOURS[colour]
        out[k] = np.clip(img, 0, 255)
    return out


def probe(feats: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    return float(cross_val_score(clf, feats, labels, cv=5).mean())


def main() -> int:
    import torch

    from pipeline.core.params import load_block
    from pipeline.core.params import RuntimeConfig
    from pipeline.features.params import FeaturesConfig
    from pipeline.features.extract import build_backbone

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=240)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--backbones", nargs="*", default=["slowfast", "internvideo2"])
    args = ap.parse_args()
    features = load_block(FeaturesConfig, args.params)
    runtime = dataclasses.replace(load_block(RuntimeConfig, args.params), device="cpu", precision="fp32", threads=1)
    rng = np.random.default_rng(0)
    factors = {"colour": rng.integers(0, 4, args.clips), "shape": rng.integers(0, 2, args.clips),
               "motion": rng.integers(0, 2, args.clips)}
    for name in args.backbones:
        recipe = features.backbone(name).recipe
        model = build_backbone(name, features, runtime)
        clips = np.stack([render_clip(recipe.frames, recipe.size, c, s, d, rng)
                          for c, s, d in zip(factors["colour"], factors["shape"], factors["motion"])])
        with torch.inference_mode():
            feats = torch.cat([model(torch.from_numpy(clips[i:i + 16])) for i in range(0, len(clips), 16)])
        feats = feats.float().numpy()  # [N, L, D]
        print(f"{name}: features {tuple(feats.shape[1:])}, |x| mean {np.abs(feats).mean():.3f}, "
              f"max {np.abs(feats).max():.2f}")
        for li, layer in enumerate(model.layers):
            accs = {k: probe(feats[:, li], v) for k, v in factors.items()}
            print(f"  layer {layer}: " + ", ".join(f"{k} {a:.2f}" for k, a in accs.items())
                  + "  (chance 0.25 / 0.50 / 0.50)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
