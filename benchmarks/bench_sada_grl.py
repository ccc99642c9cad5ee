"""GRL schedule check on the embedded world: source-only vs SADA target mAP under two GRL settings.

    python benchmarks/bench_sada_grl.py [--scenario S1] [--seeds 0 1 2] [--out /tmp/sada_grl] [--threads 1]

Runs the real stage functions (``pipeline.sada.train.train_run`` → ``pipeline.sada.predict.predict_run`` →
``pipeline.sada.evaluate.score_role``) on the extracted features ``data/features/<sada.dataset>/<sada.backbone>``
with ``params.yaml``'s ``sada`` block, changing only the GRL keys of ``sada.model``:

* ``embedded``: the params.yaml values (``grl_coeff``, ``grl_schedule``, ``grl_warmup_iters``);
* ``dann``: standard DANN, ``grl_coeff`` 1 ramped by ``2 / (1 + exp(-10 p)) - 1`` over the whole run.

Source-only does not read the GRL keys, so it is trained once. Prints and writes (``<out>/grl.json``) the target
Avg mAP (mean ± std over seeds) of every (setting × arm).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.core.params import RuntimeConfig, load_block, load_params  # noqa: E402
from pipeline.datasets.params import DatasetsConfig  # noqa: E402
from pipeline.sada.data import resolve_scenario  # noqa: E402
from pipeline.sada.evaluate import score_role  # noqa: E402
from pipeline.sada.params import SadaConfig  # noqa: E402
from pipeline.sada.predict import predict_run  # noqa: E402
from pipeline.sada.train import load_run_config, train_run  # noqa: E402

SETTINGS = {
    "embedded": None,  # params.yaml as it is
    "dann": {"grl_coeff": 1.0, "grl_schedule": "dann"},
}


def run_arm(cfg: SadaConfig, datasets: DatasetsConfig, runtime: RuntimeConfig, scenario_name: str, variant: str,
            grl: dict | None, seeds: list[int], out: Path) -> dict:
    """Train + predict + score one arm; returns the target score dict of ``score_role``."""
    run = load_run_config(cfg, datasets.scenarios, scenario_name, variant)
    run["seeds"] = seeds
    if grl:
        run["model"] = dataclasses.replace(run["model"], **grl)
    canonical = Path(f"data/canonical/{cfg.dataset}.jsonl")
    features = Path(f"data/features/{cfg.dataset}/{cfg.backbone}")
    scenario = resolve_scenario(scenario_name, run["selectors"], run["scenario"], canonical)
    train_run(scenario, run["variant"], run, features, out / "model", runtime, progress=False,
              work_root=out / "_work", canonical=canonical)
    predict_run(run["selectors"], run["scenario"], canonical, features, out / "model", out / "predictions",
                cfg.data.layer, cfg.inference, cfg.eval.tsne_level, cfg.eval.tsne_points, runtime.device)
    return score_role(out / "predictions", "target", seeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="S1")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("/tmp/sada_grl"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params = load_params(args.params)
    cfg = load_block(SadaConfig, args.params, params)
    datasets = load_block(DatasetsConfig, args.params, params)
    runtime = dataclasses.replace(load_block(RuntimeConfig, args.params, params), device="cpu", workers=0)
    results: dict = {"scenario": args.scenario, "seeds": args.seeds, "embedded_model": {
        k: getattr(cfg.model, k) for k in ("grl_coeff", "grl_schedule", "grl_warmup_iters")}, "arms": {}}
    arms = [("source_only", "source_only", None)] + [(f"sada/{name}", "sada", grl) for name, grl in SETTINGS.items()]
    for key, variant, grl in arms:
        t0 = time.perf_counter()
        target = run_arm(cfg, datasets, runtime, args.scenario, variant, grl, args.seeds,
                         args.out / key.replace("/", "_"))
        per_seed = [target["per_seed_avg"][str(s)] for s in args.seeds]
        results["arms"][key] = {"avg": float(np.mean(per_seed)), "std": float(np.std(per_seed)),
                                "per_seed": per_seed, "seconds": round(time.perf_counter() - t0, 1)}
        print(f"{key:20s} target Avg mAP {np.mean(per_seed):6.2f} ± {np.std(per_seed):5.2f}  per seed "
              f"{[round(v, 2) for v in per_seed]}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "grl.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
