"""Stage ``sdst_train@<dataset>-<variant>``: train one SDST side-tuner with the generic loop.

Reads ``sdst.seeds``, ``sdst.K``, ``sdst.layers``, ``sdst.order``, ``sdst.variant_specs.<variant>``,
``sdst.dataset_specs.<dataset>``, ``sdst.model``, ``sdst.train`` and ``runtime`` (``runtime.seed`` is not
used: every model's seed comes from ``sdst.seeds``). Trains one model per seed (weight init, data order and
dropout all follow the seed) and writes, per seed ``k``, ``<out>/seed_<k>/model.pt`` (checkpoint carrying
the full model config incl. the backbone layers per level) and ``<out>/seed_<k>/live/`` (dvclive curves).
Resume state lives in ``--work`` (default ``<out.parent>/_work/<out.name>``, outside the DVC output, see
``pipeline.core.work``): a killed run, rerun by hand or by ``dvc repro``, continues each seed after its last
finished epoch and writes the same bytes as an uninterrupted run; the folder is removed once every seed is
done. Runs under ``torchrun`` unchanged.

    python -m pipeline.sdst.train --dataset synth_qvh --variant sdst --canonical data/canonical/synth_qvh.jsonl \\
        --video-features data/features/synth_qvh/internvideo2 --text-features data/features/text/synth_qvh \\
        --out data/sdst/synth_qvh/sdst/model         # → seed_<k>/{model.pt,live/} per sdst.seeds
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from pathlib import Path

import torch

from models.sdst_config import SDSTConfig, SDSTModelConfig
from pipeline.core.cli import stage_main
from pipeline.core.params import RuntimeConfig, TrainConfig, build, load_block, spec_entry, to_dict
from pipeline.core.runtime import apply_runtime
from pipeline.core.work import default_work_root, open_work
from pipeline.features.container import container_paths
from pipeline.sdst.params import SDSTDatasetSpec, SDSTParams, SDSTVariant
from pipeline.sdst.data import SDSTDataset, collate, container_layers, seed_dir, select_layers


def variant_model_config(params: SDSTParams, variant: str, dataset: str | None = None) -> SDSTModelConfig:
    """``sdst.model`` with the dataset's overrides (if ``dataset``) and then the variant's applied, validated."""
    spec = _variant(params, variant)
    ds_over = _dataset(params, dataset).model if dataset is not None else {}
    merged = {**dataclasses.asdict(params.model), **ds_over, **spec.model}
    where = f"sdst.dataset_specs.{dataset}.model / " if dataset else ""
    return build(SDSTModelConfig, merged, f"{where}sdst.variant_specs.{variant}.model")


def _variant(params: SDSTParams, variant: str) -> SDSTVariant:
    return spec_entry(params.variant_specs, variant, "sdst.variant_specs", "variant")


def _dataset(params: SDSTParams, dataset: str) -> SDSTDatasetSpec:
    return spec_entry(params.dataset_specs, dataset, "sdst.dataset_specs", "dataset")


def train_config(params: SDSTParams, dataset: str) -> TrainConfig:
    """``sdst.train`` with the dataset's overrides (Tab 4.1: epochs, batch size, lr, step) applied, validated."""
    spec = _dataset(params, dataset)
    merged = {**dataclasses.asdict(params.train), **spec.train}
    return build(TrainConfig, merged, f"sdst.dataset_specs.{dataset}.train")


def build_model_config(params: SDSTParams, dataset: str, variant: str, video_prefix: Path, text_prefix: Path,
                       video_dim: int, text_dim: int) -> SDSTConfig:
    """The full :class:`SDSTConfig` for one (dataset, variant): layers chosen against what is stored."""
    spec = _variant(params, variant)
    v_layers, _ = container_layers(video_prefix)
    t_layers, _ = container_layers(text_prefix)
    choice = select_layers(v_layers, t_layers, spec.K if spec.K is not None else params.K,
                           params.layers if spec.K is None else [], spec.last_layer_only, params.order,
                           where=f"{video_prefix} / {text_prefix}")
    return SDSTConfig(video_dim=video_dim, text_dim=text_dim, num_queries=_dataset(params, dataset).num_queries,
                      video_layers=choice.video, text_layers=choice.text,
                      model=variant_model_config(params, variant, dataset))


def work_params(params: SDSTParams, runtime: RuntimeConfig, dataset: str, variant: str) -> dict:
    """What one seed's training reads from params (the key of its resume state; ``sdst.seeds`` is not in it:
    each seed has its own state, so adding a seed after a kill does not discard the others')."""
    return {"dataset": dataset, "variant": variant, "K": params.K, "layers": list(params.layers),
            "order": params.order, "video_features": params.video_features,
            "variant_spec": to_dict(_variant(params, variant)), "dataset_spec": to_dict(_dataset(params, dataset)),
            "model": to_dict(params.model), "train": to_dict(params.train), "runtime": to_dict(runtime)}


def train(params: SDSTParams, runtime: RuntimeConfig, dataset: str, variant: str, canonical: Path,
          video_dir: Path, text_dir: Path, out: Path, resume: bool = True, seeds: list[int] | None = None,
          work_root: Path | None = None):
    """Train SDST for ``dataset`` × ``variant`` once per seed (``seeds``, default ``sdst.seeds``) into
    ``out/seed_<k>`` with resume state under ``work_root`` (default :func:`default_work_root` of ``out``);
    returns ``{seed: pipeline.core.training.FitResult}``."""
    from models.side_tuners import build_side_tuner
    from pipeline.core.training import dist_info, fit

    spec = _dataset(params, dataset)
    split = spec.train_split
    # layer choice first (cheap, and a K larger than stored fails before any data is read)
    probe = build_model_config(params, dataset, variant, video_dir / split, text_dir / split, 0, 0)
    from pipeline.sdst.data import LayerChoice

    ds = SDSTDataset(canonical, split, video_dir, text_dir,
                     LayerChoice(probe.video_layers, probe.text_layers), spec.clip_len, require_windows=True)
    config = dataclasses.replace(probe, video_dim=ds.video_dim, text_dim=ds.text_dim)
    apply_runtime(runtime)
    stats = None
    if config.model.standardize_inputs:
        from pipeline.sdst.data import feature_stats

        stats = [torch.as_tensor(x) for x in feature_stats(ds)]
    cfg = train_config(params, dataset)
    seeds = list(params.seeds if seeds is None else seeds)
    inputs = [canonical, *container_paths(video_dir / split), *container_paths(text_dir / split)]
    work = open_work(default_work_root(out) if work_root is None else work_root, "pipeline.sdst.train",
                     work_params(params, runtime, dataset, variant), inputs)
    results = {}
    for seed in seeds:
        torch.manual_seed(seed)  # model initialisation follows the seed, not only the data order
        model = build_side_tuner(config)  # sdst.model.architecture: SDST or the R2-Tuning baseline
        if stats is not None:
            model.set_input_stats(*stats)
        print(f"[sdst_train] {dataset}/{variant} seed {seed}: {len(ds)} queries ({ds.skipped_without_windows} "
              f"without windows skipped), levels video {config.video_layers} text {config.text_layers}, "
              f"{sum(p.numel() for p in model.parameters() if p.requires_grad)} trainable params")
        results[seed] = fit(model, ds, functools.partial(collate, min_len=spec.min_len), cfg, seed_dir(out, seed),
                            device=runtime.device, precision=runtime.precision, seed=seed, workers=runtime.workers,
                            resume=resume, work_dir=work.sub(f"seed_{seed}"))
    if dist_info().is_main:  # every model is in place (fit ends with a barrier): nothing left to resume
        work.remove()
    return results


@stage_main()
def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring); bad params or input → exit code 2."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--canonical", required=True, type=Path)
    parser.add_argument("--video-features", required=True, type=Path, help="container dir (holds <split>.npy/json)")
    parser.add_argument("--text-features", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--work", type=Path, help="resume state folder (default <out.parent>/_work/<out.name>)")
    parser.add_argument("--no-resume", action="store_true", help="ignore the resume state in --work")
    args = parser.parse_args(argv)
    from pipeline.core.training import shutdown_distributed

    try:
        params = load_block(SDSTParams, args.params)
        runtime = load_block(RuntimeConfig, args.params)
        train(params, runtime, args.dataset, args.variant, args.canonical, args.video_features,
              args.text_features, args.out, resume=not args.no_resume, work_root=args.work)
    finally:
        shutdown_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
