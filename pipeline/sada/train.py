"""Stage ``sada_train@<scenario>-<variant>``: train the SADA detector of one scenario × variant, once per seed.

Source videos (labelled) and target videos (their labels are dropped here, before the model sees them) of
the scenario's training split are paired item by item (:class:`pipeline.sada.data.PairedDomainDataset`);
``sada.train.batch_size`` pairs make a batch. Training is ``pipeline.core.training.fit`` (AdamW, warmup + cosine,
EMA, gradient clipping, dvclive curves). Output directory: ``seed_<k>/model.pt`` (+ ``last.pt``, ``live/``)
per seed, and ``summary.json`` (classes, video and moment counts, final losses).

Reads params ``runtime``, ``datasets.scenarios.<scenario>``, ``sada.dataset``, ``sada.seeds``,
``sada.data``, ``sada.model``, ``sada.train``, ``sada.scenario_specs.<scenario>``, ``sada.variant_specs.<variant>``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from pipeline.core.params import ConfigError, RuntimeConfig, TrainConfig, build, load_block, load_params
from pipeline.datasets.params import DatasetScenario
from pipeline.sada.params import SadaData, SadaScenario, SadaVariant
from models.sada.config import SadaDetectorConfig, SadaModelConfig
from pipeline.core.io import InputError, write_json
from pipeline.sada.data import (
    SOURCE,
    TARGET,
    PairCollate,
    PairedDomainDataset,
    Scenario,
    check_scenario_dataset,
    load_videos,
    open_features,
    resolve_scenario,
)


def sada_part(params: dict, *keys: str) -> Any:
    """``params['sada'][k1][k2]…`` with an error naming the dotted key when absent."""
    node: Any = params.get("sada")
    path = "sada"
    for key in keys:
        path += f".{key}"
        if not isinstance(node, dict) or key not in node:
            raise ConfigError(f"params.yaml: missing key {path}")
        node = node[key]
    return node


def scenario_selectors(params: dict, scenario: str, dataset: str) -> DatasetScenario:
    """``datasets.scenarios.<scenario>`` (source/target selectors), checked to be defined on ``dataset``."""
    raw = (params.get("datasets") or {}).get("scenarios") or {}
    selectors = build(DatasetScenario, raw[scenario], f"datasets.scenarios.{scenario}") if scenario in raw else None
    return check_scenario_dataset(scenario, selectors, dataset)


def load_run_config(params: dict, scenario: str, variant: str) -> dict[str, Any]:
    """The typed pieces of ``sada`` (and ``datasets.scenarios.<scenario>``) one scenario × variant run reads;
    nothing else is validated or used."""
    dataset = sada_part(params, "dataset")
    return {
        "dataset": dataset,
        "seeds": [int(s) for s in sada_part(params, "seeds")],
        "selectors": scenario_selectors(params, scenario, dataset),
        "scenario": build(SadaScenario, sada_part(params, "scenario_specs", scenario), f"sada.scenario_specs.{scenario}"),
        "variant": build(SadaVariant, sada_part(params, "variant_specs", variant), f"sada.variant_specs.{variant}"),
        "data": build(SadaData, sada_part(params, "data"), "sada.data"),
        "model": build(SadaModelConfig, sada_part(params, "model"), "sada.model"),
        "train": build(TrainConfig, sada_part(params, "train"), "sada.train"),
    }


def build_training_set(scenario: Scenario, data: SadaData, features_dir: Path) -> tuple[PairedDomainDataset, Any, dict]:
    """Paired dataset, recipe and counts for ``scenario`` from ``<features_dir>/<train_split>``."""
    container, recipe = open_features(features_dir / scenario.spec.train_split)
    source, skipped = load_videos(scenario.source_train, container, recipe, scenario.class_names, data.layer, SOURCE)
    target, _ = load_videos(scenario.target_train, container, recipe, scenario.class_names, data.layer, TARGET)
    for video in target:  # unsupervised domain adaptation: no target label may reach the model
        video.segments = video.segments[:0]
        video.labels = video.labels[:0]
    dataset = PairedDomainDataset(source, target, data.max_seq_len, data.crop_ratio, data.trunc_thresh)
    counts = {
        "source_videos": len(source),
        "target_videos": len(target),
        "source_moments": int(sum(len(v.labels) for v in source)),
        "source_moments_other_classes": skipped,
        "input_dim": int(source[0].feats.shape[1]),
    }
    return dataset, recipe, counts


def train_run(
    scenario: Scenario,
    variant: SadaVariant,
    run: dict[str, Any],
    features_dir: Path,
    out_dir: Path,
    runtime: RuntimeConfig,
    progress: bool = True,
) -> dict:
    """Train one model per seed into ``out_dir/seed_<k>``; return the summary written to ``summary.json``."""
    from models.sada import SadaDetector
    from pipeline.core.training import fit

    dataset, recipe, counts = build_training_set(scenario, run["data"], features_dir)
    det_cfg = SadaDetectorConfig(
        model=run["model"],
        weights=scenario.spec.weights,
        align=list(variant.align),
        input_dim=counts["input_dim"],
        class_names=scenario.class_names,
    )
    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "variant": variant.label,
        "align": list(variant.align),
        "class_names": scenario.class_names,
        **counts,
        "seeds": {},
    }
    for seed in run["seeds"]:
        torch.manual_seed(seed)  # the weights' init depends on the seed, not only the data order
        model = SadaDetector(det_cfg)
        collate = PairCollate(model.pad_multiple, recipe)
        result = fit(
            model,
            dataset,
            collate,
            run["train"],
            out_dir / f"seed_{seed}",
            device=runtime.device,
            precision=runtime.precision,
            seed=seed,
            workers=runtime.workers,
            progress=progress,
        )
        last = result.history[-1] if result.history else {}
        summary["seeds"][str(seed)] = {k: v for k, v in last.items() if k.startswith("train/")}
        summary["parameters"] = int(sum(p.numel() for p in model.parameters()))
    write_json(out_dir / "summary.json", summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--canonical", required=True, type=Path, help="data/canonical/<dataset>.jsonl")
    parser.add_argument("--features", required=True, type=Path, help="data/features/<dataset>/<backbone>")
    parser.add_argument("--out", required=True, type=Path, help="output directory of this run")
    parser.add_argument("--params", default="params.yaml", type=Path)
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        runtime = load_block(RuntimeConfig, args.params, params)
        run = load_run_config(params, args.scenario, args.variant)
        if runtime.threads > 0:
            torch.set_num_threads(runtime.threads)
        scenario = resolve_scenario(args.scenario, run["selectors"], run["scenario"], args.canonical)
        summary = train_run(scenario, run["variant"], run, args.features, args.out, runtime)
    except (ConfigError, InputError) as exc:
        print(f"sada_train: {exc}", file=sys.stderr)
        return 1
    print(f"sada_train: {args.scenario}/{args.variant}: {len(summary['seeds'])} seed(s) trained → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
