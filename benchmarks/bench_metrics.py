"""Speed of the metrics on large synthetic inputs (target: each under 2 s on one CPU core).

    python benchmarks/bench_metrics.py [--queries 10000] [--tal-predictions 100000] [--repeat 3]

* QVHighlights: N queries × 10 predicted windows, 1–4 GT windows, 150-s videos (75 clips) with saliency
  scores — the full ``qvhighlights_eval`` (4 length buckets of MR mAP/R1 + HD at 3 levels), from Python rows.
* TAL: M predictions over 10 classes and 200 videos (≈10 GT segments per video) — ``tal_map`` at the
  5 EPIC thresholds, from Python rows.
* Search: the same N queries through ``search_eval`` with single/multi splits and active statistics.
Prints the best wall time of ``--repeat`` runs for each.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from pipeline.metrics import MetricsWarning, qvhighlights_eval, search_eval, tal_map


def make_qvh(n: int, rng: np.random.Generator) -> tuple[list[dict], list[dict]]:
    gt, sub = [], []
    for q in range(n):
        n_gt = int(rng.integers(1, 5))
        starts = np.sort(rng.choice(np.arange(0, 140, 2), size=n_gt, replace=False))
        windows = [[float(s), float(min(150, s + 2 * rng.integers(1, 20)))] for s in starts]
        clips = sorted({c for s, e in windows for c in range(int(s) // 2, int(e) // 2)})
        gt.append(
            {
                "qid": q,
                "vid": f"v{q}",
                "duration": 150,
                "relevant_windows": windows,
                "relevant_clip_ids": clips,
                "saliency_scores": rng.integers(0, 5, size=(len(clips), 3)).tolist(),
            }
        )
        pred = []
        for k in range(10):
            if k < n_gt and rng.random() < 0.7:  # jitter a GT window
                s, e = windows[k]
                s, e = s + rng.normal(0, 2), e + rng.normal(0, 2)
            else:
                s = rng.uniform(0, 140)
                e = s + rng.uniform(2, 40)
            pred.append([float(min(s, e)), float(max(s, e)), float(rng.random())])
        pred.sort(key=lambda w: -w[2])
        sub.append(
            {
                "qid": q,
                "vid": f"v{q}",
                "pred_relevant_windows": pred,
                "pred_saliency_scores": rng.random(75).round(4).tolist(),
            }
        )
    return gt, sub


def make_tal(
    m: int, rng: np.random.Generator, n_videos: int = 200, n_classes: int = 10
) -> tuple[list[dict], list[dict]]:
    gt = []
    for v in range(n_videos):
        for _ in range(10):
            s = float(rng.uniform(0, 600))
            gt.append(
                {
                    "video-id": f"v{v}",
                    "t-start": s,
                    "t-end": s + float(rng.uniform(1, 30)),
                    "label": int(rng.integers(n_classes)),
                }
            )
    pick = rng.integers(len(gt), size=m)
    jitter = rng.normal(0, 3, size=(m, 2))
    rand_label = rng.random(m) < 0.3
    preds = []
    for i in range(m):
        g = gt[pick[i]]
        s, e = g["t-start"] + jitter[i, 0], g["t-end"] + jitter[i, 1]
        preds.append(
            {
                "video-id": g["video-id"],
                "t-start": float(min(s, e)),
                "t-end": float(max(s, e)),
                "label": int(rng.integers(n_classes)) if rand_label[i] else g["label"],
                "score": float(rng.random()),
            }
        )
    return gt, preds


class Timing:
    """Best wall-clock and CPU time of several runs (CPU time is what a shared, busy machine cannot inflate)."""

    def __init__(self, wall: float, cpu: float):
        self.wall, self.cpu = wall, cpu

    def __str__(self) -> str:
        return f"{self.wall:.3f} s wall, {self.cpu:.3f} s CPU"


def best_time(fn, repeat: int) -> tuple[Timing, object]:
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return Timing(min(walls), min(cpus)), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--tal-predictions", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore", MetricsWarning)
    rng = np.random.default_rng(0)

    gt, sub = make_qvh(args.queries, rng)
    t, res = best_time(lambda: qvhighlights_eval(sub, gt), args.repeat)
    print(
        f"qvhighlights_eval  {args.queries} queries x 10 windows + 75-clip saliency: {t} "
        f"(MR-full-mAP {res['brief']['MR-full-mAP']}, HL-min-VeryGood-mAP {res['brief']['HL-min-VeryGood-mAP']})"
    )
    mr_only = [{k: v for k, v in r.items() if k != "pred_saliency_scores"} for r in sub]
    t, _ = best_time(lambda: qvhighlights_eval(mr_only, gt), args.repeat)
    print(f"  of which MR only (4 buckets):                               {t}")

    splits = {
        "single": [r["qid"] for r in gt if len(r["relevant_windows"]) == 1],
        "multi": [r["qid"] for r in gt if len(r["relevant_windows"]) > 1],
    }
    t, res = best_time(lambda: search_eval(gt, sub, splits=splits, active_threshold=0.5), args.repeat)
    print(
        f"search_eval        {args.queries} queries x 10 windows, splits + active stats: {t} "
        f"(R_m@0.5 {res['all']['R_m']['0.5']}, mAP_m@0.5 {res['all']['mAP_m']['0.5']})"
    )

    tal_gt, tal_pred = make_tal(args.tal_predictions, rng)
    t, res = best_time(lambda: tal_map(tal_gt, tal_pred), args.repeat)
    print(
        f"tal_map            {args.tal_predictions} predictions, 10 classes, 200 videos, {len(tal_gt)} GT: {t} "
        f"(average mAP {res['average_mAP']:.4f})"
    )


if __name__ == "__main__":
    main()
