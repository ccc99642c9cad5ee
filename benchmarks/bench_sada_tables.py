"""Thesis Tab. 2.4 / 2.8 / 2.10 on the embedded world without DVC: the real SADA stage functions for a list of
variants of one scenario, then the report section rendered from the metrics they wrote.

    python benchmarks/bench_sada_tables.py [--scenario S1] [--variants source_only sada sada_onehot ...]
                                           [--seeds 0 1 2] [--out /tmp/sada_tables] [--threads 1]

Per variant: ``train_run`` (skipped when ``<out>/<variant>/model/summary.json`` exists, so models can be
reused) → ``predict_run`` with ``sada.eval.mask_bkg`` on → ``evaluate_run`` into
``<out>/reports/metrics/sada/<scenario>/<variant>.json``; then prints ``pipeline.report.sections.sada.render``.
Same results as ``dvc exp run -S 'sada.variants=[...]'`` (README recipes), minus DVC's caching.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.core.params import RuntimeConfig, load_block, load_params  # noqa: E402
from pipeline.datasets.params import DatasetsConfig  # noqa: E402
from pipeline.report.sections import sada as section  # noqa: E402
from pipeline.sada.data import resolve_scenario  # noqa: E402
from pipeline.sada.evaluate import evaluate_run  # noqa: E402
from pipeline.sada.params import SadaConfig  # noqa: E402
from pipeline.sada.predict import predict_run  # noqa: E402
from pipeline.sada.train import load_run_config, train_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="S1")
    parser.add_argument("--variants", nargs="+", default=["source_only", "sada", "sada_onehot", "sada_random",
                                                           "sada_sinusoidal", "actionformer", "actionformer_sada"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("/tmp/sada_tables"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params = load_params(args.params)
    cfg = load_block(SadaConfig, args.params, params)
    datasets = load_block(DatasetsConfig, args.params, params)
    runtime = dataclasses.replace(load_block(RuntimeConfig, args.params, params), device="cpu", workers=0)
    canonical = Path(f"data/canonical/{cfg.dataset}.jsonl")
    features = Path(f"data/features/{cfg.dataset}/{cfg.backbone}")
    reports = args.out / "reports"
    for variant in args.variants:
        t0 = time.perf_counter()
        run = load_run_config(cfg, datasets.scenarios, args.scenario, variant)
        run["seeds"] = args.seeds
        scenario = resolve_scenario(args.scenario, run["selectors"], run["scenario"], canonical)
        model_dir = args.out / variant / "model"
        if not (model_dir / "summary.json").exists():
            train_run(scenario, run["variant"], run, features, model_dir, runtime, progress=False,
                      work_root=args.out / variant / "_work", canonical=canonical)
        predict_run(run["selectors"], run["scenario"], canonical, features, model_dir, args.out / variant / "pred",
                    cfg.data.layer, cfg.inference, cfg.eval.tsne_level, cfg.eval.tsne_points, "cpu", mask_bkg=True)
        metrics = evaluate_run(args.out / variant / "pred", model_dir, variant, [], cfg.eval.tsne_classes,
                               reports / "metrics" / "sada" / args.scenario / f"{variant}.json",
                               reports / "plots" / "sada" / args.scenario / variant)
        t = metrics["target"]
        print(f"{variant:18s} target Avg {t['avg']:6.2f} ± {t['avg_std']:5.2f}  masked-bkg "
              f"{metrics['target_bkg_masked']['avg']:6.2f}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(section.render(reports))


if __name__ == "__main__":
    main()
