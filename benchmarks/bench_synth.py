"""Benchmark of the synthetic world: per-frame costs, whole-stage time, and a learnability probe.

    python benchmarks/bench_synth.py [--params params.yaml] [--stage] [--probe DIR]

* per-frame CPU cost of rendering, RGB → YUV conversion and H.264 encoding (one TAL video);
* ``--stage``: generate the whole world into a temporary directory and print wall and CPU time;
* ``--probe DIR``: on an existing ``data/raw`` (e.g. the synth stage output), decode every TAL event clip,
  describe it with crude hand-made motion/colour statistics and fit a linear classifier (train split) of the
  verb, scored on the validation split. Far above the 10 % chance level ⇒ the verbs are visually distinct.
"""
from __future__ import annotations

import argparse
import csv
import resource
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.synth import generate as synth
from pipeline.core.params import load_block
from pipeline.synth.params import SynthConfig
from pipeline.synth import writers
from pipeline.synth.render import Renderer


def per_frame(cfg) -> None:
    """Print per-frame CPU ms of render / yuv / encode on the first TAL video."""
    plan = synth.plan_tal(cfg, 0)[0]
    renderer = Renderer(plan, cfg.resolution, cfg.acquisition[plan.acquisition], cfg.idle_amplitude,
                        cfg.idle_period)
    t0 = time.process_time()
    frames = list(renderer.frames())
    t1 = time.process_time()
    for f in frames:
        writers.rgb_to_yuv420p(f)
    t2 = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        writers.encode_video(Path(tmp) / "v.mp4", iter(frames), plan.fps, cfg.resolution, cfg.crf, plan.fps)
    t3 = time.process_time()
    n = len(frames)
    print(f"per frame ({cfg.resolution}px, {n} frames): render {1e3 * (t1 - t0) / n:.3f} ms, "
          f"yuv {1e3 * (t2 - t1) / n:.3f} ms, encode incl. yuv {1e3 * (t3 - t2) / n:.3f} ms")


def stage(cfg, workers: int) -> None:
    """Print wall and CPU seconds of the whole stage."""
    with tempfile.TemporaryDirectory() as tmp:
        w0, c0 = time.perf_counter(), time.process_time()
        manifest = synth.synthesize(cfg, 0, Path(tmp) / "synth", workers=workers)
        wall = time.perf_counter() - w0
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = time.process_time() - c0 + children.ru_utime + children.ru_stime
        size = sum(p.stat().st_size for p in (Path(tmp) / "synth").rglob("*") if p.is_file())
    frames = sum(c["frames"] for c in manifest["counts"].values())
    print(f"stage: {frames} frames, wall {wall:.1f} s, CPU {cpu:.1f} s (workers={workers}), {size / 2**20:.1f} MiB")


def _clip_features(frames: np.ndarray) -> np.ndarray:
    """Crude descriptor of a clip: per 3x3 cell and 4 time bins, mean |frame difference| and mean colour
    change, plus the global colour-histogram change between the first and last frame."""
    x = frames.astype(np.float32)
    t, h, w, _ = x.shape
    diff = np.abs(np.diff(x, axis=0)).mean(axis=3)  # [t-1, h, w]
    cells = diff.reshape(t - 1, 3, h // 3, 3, w // 3).mean(axis=(2, 4))  # [t-1, 3, 3]
    bins = np.array_split(np.arange(t - 1), 4)
    motion = np.stack([cells[b].mean(axis=0) for b in bins]).ravel()
    peak = np.stack([cells[b].max(axis=0) for b in bins]).ravel()
    colour = (x[-1] - x[0]).reshape(3, h // 3, 3, w // 3, 3).mean(axis=(1, 3)).ravel()
    centre = diff.mean(axis=(1, 2))
    profile = np.array([c.mean() for c in np.array_split(centre, 8)])
    return np.concatenate([motion, peak, colour, profile, [np.std(centre), t / 30.0]])


def probe(root: Path) -> None:
    """Linear verb classifier on crude clip features: train split → validation accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = {}
    for split, name in (("train", "EPIC_100_train.csv"), ("val", "EPIC_100_validation.csv")):
        rows = list(csv.DictReader((root / "synth_tal" / name).open()))
        cache: dict[str, np.ndarray] = {}
        feats, labels = [], []
        for r in rows:
            vid = r["video_id"]
            if vid not in cache:
                with av.open(str(root / "synth_tal/videos" / f"{vid}.mp4")) as c:
                    cache[vid] = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
            clip = cache[vid][int(r["start_frame"]): int(r["stop_frame"]) + 1]
            feats.append(_clip_features(clip))
            labels.append(r["verb"])
        data[split] = (np.stack(feats), np.array(labels))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(*data["train"])
    acc = float((model.predict(data["val"][0]) == data["val"][1]).mean())
    n_cls = len(set(data["train"][1]))
    print(f"probe: linear verb classifier on crude clip features, val accuracy {100 * acc:.1f} % "
          f"({len(data['val'][1])} clips, chance {100 / n_cls:.1f} %)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--stage", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--probe", type=Path)
    args = ap.parse_args()
    cfg = load_block(SynthConfig, args.params)
    per_frame(cfg)
    if args.stage:
        stage(cfg, args.workers)
    if args.probe:
        probe(args.probe)


if __name__ == "__main__":
    main()
