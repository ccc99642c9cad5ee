"""Seed study for search-query VMR: base vs -SA+QD (thesis Tab 3.2 / Fig. 3.7), mean ± std over seeds.

Trains, predicts and evaluates every (variant, seed) with the pipeline's own stage functions on the data the
default pipeline produced (canonical captions, features, search benchmarks), in a scratch directory, and
prints per level and split: mean #active decoder queries, R_m and mAP_m at the chosen IoU.

    python benchmarks/bench_search_vmr_seeds.py --benchmark synth_captions --variants base no_sa_qd \
        --seeds 0 1 2 --levels S2 S3 --iou 0.3 --work /tmp/search_seeds [--root .] [--params params.yaml]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.search_vmr import evaluate as search_evaluate
from pipeline.search_vmr import predict as search_predict
from pipeline.search_vmr import train as search_train  # noqa: E402
from pipeline.core.params import load_block
from pipeline.search_vmr.params import SearchVMRConfig
from pipeline.core.params import RuntimeConfig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--benchmark", default="synth_captions")
    ap.add_argument("--variants", nargs="+", default=["base", "no_sa_qd"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--levels", nargs="+", default=["S2", "S3"])
    ap.add_argument("--parts", nargs="+", default=["multi", "single", "all"])
    ap.add_argument("--iou", default="0.3")
    ap.add_argument("--root", default=".", type=Path, help="repository root holding data/")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--work", required=True, type=Path)
    args = ap.parse_args(argv)

    cfg = load_block(SearchVMRConfig, args.params)
    runtime = load_block(RuntimeConfig, args.params)
    data = args.root / "data"
    paths = search_train.SearchPaths(data / "canonical", data / "features", data / "benchmarks")
    results: dict = {}
    for variant in args.variants:
        for seed in args.seeds:
            out = args.work / f"{variant}-s{seed}"
            t0 = time.perf_counter()
            run_rt = dataclasses.replace(runtime, seed=seed)
            run_cfg = dataclasses.replace(cfg, seeds=[seed])  # one seed per run here; the stages loop cfg.seeds
            search_train.run(run_cfg, run_rt, args.benchmark, variant, paths, out, progress=False)
            search_predict.run(run_cfg, run_rt, args.benchmark, variant, paths, out / "model", out / "predictions")
            metrics, _ = search_evaluate.evaluate(run_cfg, args.benchmark, variant, data / "canonical",
                                                  data / "benchmarks", out / "predictions")
            (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
            results[(variant, seed)] = metrics
            print(f"[seeds] {variant} seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)

    def stat(values: list[float]) -> str:
        sd = statistics.pstdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):6.2f} ± {sd:5.2f}"

    print(f"\nmean ± std over seeds {args.seeds} (search queries; R_m / mAP_m at IoU {args.iou}; #active = decoder "
          f"queries with p_fg ≥ {cfg.active_threshold})")
    print(f"{'level':5} {'part':6} {'variant':10} {'#active':>15} {'R_m':>15} {'mAP_m':>15}")
    for level in args.levels:
        for part in args.parts:
            for variant in args.variants:
                blocks = [results[(variant, s)][level]["search"][part] for s in args.seeds]
                act = stat([b["active"]["active_mean"] for b in blocks])
                rm = stat([b["R_m"][args.iou] for b in blocks])
                apm = stat([b["mAP_m"][args.iou] for b in blocks])
                print(f"{level:5} {part:6} {variant:10} {act:>15} {rm:>15} {apm:>15}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
