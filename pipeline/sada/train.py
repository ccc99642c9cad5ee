"""Stage ``sada_train@<scenario>-<variant>``: train the SADA detector of one scenario × variant, once per seed.

Source videos (labelled) and target videos (their labels are dropped here, before the model sees them) of
the scenario's training split are paired item by item (:class:`pipeline.sada.data.PairedDomainDataset`);
``sada.train.batch_size`` pairs make a batch. Training is ``pipeline.core.training.fit`` (AdamW, warmup + cosine,
EMA, gradient clipping, dvclive curves). Output directory: ``seed_<k>/model.pt`` (+ ``live/``) per seed, and
``summary.json`` (classes, video and moment counts, final losses; no timings, so a resumed run writes the same
bytes). Resume state lives in ``--work`` (default ``<out.parent>/_work/<out.name>``, outside the DVC output,
see ``pipeline.core.work``): a killed run, rerun by hand or by ``dvc repro``, continues after the last
finished epoch; the folder is removed once every seed is done.

Reads params ``runtime``, ``datasets.scenarios.<scenario>``, ``sada.dataset``, ``sada.seeds``,
``sada.data``, ``sada.model``, ``sada.train``, ``sada.scenario_specs.<scenario>``, ``sada.variant_specs.<variant>``,
``sada.early_stop``, ``sada.warmup_epochs``.
With ``sada.early_stop.heldout_fraction`` > 0 a share of the source training videos is held out and training
stops early on their score (:mod:`pipeline.sada.early_stop`); the variant's ``class_embed`` / ``detector``
override ``sada.model`` (Tab. 2.10 / 2.4).
Under ``torchrun`` each process takes an equal share of every global batch; the detector sums its batch-wide loss
normalisers over the ranks, so N processes train as one up to float summation order when crops and drop-path
are deterministic (random crops and drop-path masks draw from each rank's own RNG: ``tests/test_sada_ddp.py``).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from pipeline.core.cli import stage_main
from pipeline.core.params import ConfigError, RuntimeConfig, load_block, load_params, spec_entry
from pipeline.core.runtime import apply_runtime
from pipeline.core.work import default_work_root, open_work
from pipeline.features.container import container_paths
from pipeline.datasets.params import DatasetsConfig, DatasetScenario
from pipeline.sada.early_stop import HeldoutScorer, fit_early_stopping, split_heldout
from pipeline.sada.params import SadaConfig, SadaData, SadaEarlyStop, SadaVariant
from models.sada.config import SadaDetectorConfig
from pipeline.core.io import write_json
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


def load_run_config(cfg: SadaConfig, scenarios: Mapping[str, DatasetScenario], scenario: str,
                    variant: str) -> dict[str, Any]:
    """The pieces of ``sada`` (and of ``datasets.scenarios``, passed as ``scenarios``) one scenario × variant
    run reads; a scenario or variant without its spec, or a scenario not defined on ``sada.dataset``, is a
    ``ConfigError``."""
    return {
        "dataset": cfg.dataset,
        "seeds": list(cfg.seeds),
        "selectors": check_scenario_dataset(scenario, scenarios.get(scenario), cfg.dataset),
        "scenario": spec_entry(cfg.scenario_specs, scenario, "sada.scenario_specs", "scenario"),
        "variant": spec_entry(cfg.variant_specs, variant, "sada.variant_specs", "variant"),
        "data": cfg.data,
        "model": cfg.model,
        "train": cfg.train,
        "early_stop": cfg.early_stop,
        "warmup_epochs": cfg.warmup_epochs,
    }


def build_training_set(scenario: Scenario, data: SadaData, features_dir: Path, heldout_fraction: float = 0.0,
                       ) -> tuple[PairedDomainDataset, Any, dict, list]:
    """Paired dataset, recipe, counts and the held-out source videos (``heldout_fraction`` of the source
    training videos, for early stopping; none when 0) for ``scenario`` from ``<features_dir>/<train_split>``."""
    container, recipe = open_features(features_dir / scenario.spec.train_split)
    source_recs, heldout_recs = split_heldout(scenario.source_train, heldout_fraction)
    source, skipped = load_videos(source_recs, container, recipe, scenario.class_names, data.layer, SOURCE)
    heldout, _ = load_videos(heldout_recs, container, recipe, scenario.class_names, data.layer, SOURCE)
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
        **({"heldout_source_videos": len(heldout)} if heldout else {}),
    }
    return dataset, recipe, counts, heldout


def iters_per_epoch(n_items: int, train: Any) -> int:
    """Global batches ``fit`` runs per epoch on ``n_items`` items (its own sampler's count)."""
    from pipeline.core.training import DistInfo, GlobalBatchSampler

    return len(GlobalBatchSampler(n_items, train.batch_size, 0, DistInfo(), drop_last=train.drop_last))


def epoch_plumbing(train: Any, n_items: int, warmup_epochs: int | None) -> tuple[Any, int]:
    """``(train config, planned iterations)``: ``warmup_iters`` = ``warmup_epochs`` × iterations per epoch
    when ``warmup_epochs`` is set; planned = epochs × iterations per epoch (the DANN GRL schedule's p)."""
    per_epoch = iters_per_epoch(n_items, train)
    if warmup_epochs is not None:
        train = dataclasses.replace(train, warmup_iters=warmup_epochs * per_epoch)
    return train, train.epochs * per_epoch


def train_run(
    scenario: Scenario,
    variant: SadaVariant,
    run: dict[str, Any],
    features_dir: Path,
    out_dir: Path,
    runtime: RuntimeConfig,
    progress: bool = True,
    work_root: Path | None = None,
    canonical: Path | None = None,
) -> dict:
    """Train one model per seed into ``out_dir/seed_<k>``; return the summary written to ``summary.json``.

    Resume state goes to ``work_root`` (default :func:`default_work_root` of ``out_dir``), keyed by ``run``
    (less ``seeds``: each seed has its own state), ``variant``, ``runtime`` and the identity of ``canonical``
    and the training feature container.
    """
    from models.sada.detector import SadaDetector
    from pipeline.core.training import dist_info, fit

    early_stop = run.get("early_stop") or SadaEarlyStop()
    dataset, recipe, counts, heldout = build_training_set(scenario, run["data"], features_dir,
                                                          early_stop.heldout_fraction)
    if early_stop.heldout_fraction > 0 and not heldout:
        print(f"sada_train: {scenario.name}: too few source videos to hold any out; early stopping is off")
    train_cfg, total_iters = epoch_plumbing(run["train"], len(dataset), run.get("warmup_epochs"))
    key = {"scenario": scenario.name, "variant": variant, "runtime": runtime,
           **{k: v for k, v in run.items() if k != "seeds"}}
    inputs = [*([canonical] if canonical is not None else []),
              *container_paths(features_dir / scenario.spec.train_split)]
    work = open_work(default_work_root(out_dir) if work_root is None else work_root, "pipeline.sada.train",
                     key, inputs)
    det_cfg = SadaDetectorConfig(
        model=variant.model_config(run["model"]),
        weights=scenario.spec.weights,
        align=list(variant.align),
        input_dim=counts["input_dim"],
        class_names=scenario.class_names,
        total_iters=total_iters,
    )
    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "variant": variant.label,
        "align": list(variant.align),
        "detector": det_cfg.model.detector,
        "class_embed": det_cfg.model.class_embed,
        "class_names": scenario.class_names,
        **counts,
        "seeds": {},
    }
    for seed in run["seeds"]:
        torch.manual_seed(seed)  # the weights' init depends on the seed, not only the data order
        model = SadaDetector(det_cfg)
        collate = PairCollate(model.pad_multiple, recipe)
        fit_args = dict(device=runtime.device, precision=runtime.precision, seed=seed, workers=runtime.workers,
                        progress=progress)
        if heldout:
            if dist_info().distributed:
                raise ConfigError("sada.early_stop.heldout_fraction > 0 runs in one process only (not torchrun)")
            scorer = HeldoutScorer(heldout, recipe, early_stop.metric)
            result = fit_early_stopping(fit, model, dataset, collate, train_cfg, out_dir / f"seed_{seed}",
                                        work.sub(f"seed_{seed}"), scorer, early_stop, **fit_args)
        else:
            result = fit(model, dataset, collate, train_cfg, out_dir / f"seed_{seed}",
                         work_dir=work.sub(f"seed_{seed}"), **fit_args)
        last = result.history[-1] if result.history else {}
        summary["seeds"][str(seed)] = {k: v for k, v in last.items() if k.startswith("train/")}
        if heldout:
            summary["seeds"][str(seed)].update(epochs_run=len(result.history), best_epoch=result.best_epoch)
        summary["parameters"] = int(sum(p.numel() for p in model.parameters()))
    write_json(out_dir / "summary.json", summary)
    if dist_info().is_main:
        work.remove()  # every model is in place: nothing left to resume
    return summary



@stage_main()
def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring); bad params or input → exit code 2."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--canonical", required=True, type=Path, help="data/canonical/<dataset>.jsonl")
    parser.add_argument("--features", required=True, type=Path, help="data/features/<dataset>/<backbone>")
    parser.add_argument("--out", required=True, type=Path, help="output directory of this run")
    parser.add_argument("--params", default="params.yaml", type=Path)
    parser.add_argument("--work", type=Path, help="resume state folder (default <out.parent>/_work/<out.name>)")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    runtime = load_block(RuntimeConfig, args.params, params)
    cfg = load_block(SadaConfig, args.params, params)
    datasets = load_block(DatasetsConfig, args.params, params)
    run = load_run_config(cfg, datasets.scenarios, args.scenario, args.variant)
    apply_runtime(runtime)
    scenario = resolve_scenario(args.scenario, run["selectors"], run["scenario"], args.canonical)
    summary = train_run(scenario, run["variant"], run, args.features, args.out, runtime, work_root=args.work,
                        canonical=args.canonical)
    print(f"sada_train: {args.scenario}/{args.variant}: {len(summary['seeds'])} seed(s) trained → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
