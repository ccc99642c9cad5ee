"""Stage ``search_train@<benchmark>-<variant>``: train the search-query DETR retriever (thesis §3.4–§3.5).

Protocol: a variant with ``train_queries: caption`` trains one model on the caption training split of the
benchmark's dataset (``data/canonical/<dataset>.jsonl``, text features ``data/features/text/<dataset>``);
``train_queries: search`` is the oracle: one model per search level, trained on that level's training split
(``data/benchmarks/<dataset>/<level>/search.jsonl``, text features ``data/features/text_search/<dataset>/<level>``).
Video features (``data/features/<dataset>/<backbone>/<split>``) are shared by both.

One model is trained per seed of ``search_vmr.seeds`` (the seed sets the weight init, the data order and the
dropout / query-dropout draws), as SADA does. Outputs under ``--out``: ``model/seed_<k>/model.pt`` (caption) or
``model/seed_<k>/<level>/model.pt`` (oracle), checkpoints of ``pipeline.core.training.fit`` that carry their config;
and ``curves/seed_<k>/[<level>/]`` with the dvclive training curves. Resume state lives in ``--work`` (default
``<out.parent>/_work/<out.name>``, outside the DVC outputs, see ``pipeline.core.work``): a killed run, rerun by
hand or by ``dvc repro``, continues every model after its last finished epoch and writes the same bytes as an
uninterrupted run; the folder is removed once every model is in place.

Under ``torchrun --nproc_per_node N`` (gloo on CPU, nccl on CUDA) every rank trains its share of each global batch
and only rank 0 writes; ``tests/test_search_ddp.py`` checks that 2 processes give the weights of 1.

Usage::

    python -m pipeline.search_vmr.train --benchmark synth_captions --variant base --out data/search_vmr/synth_captions-base \
        [--params params.yaml] [--canonical-dir data/canonical] [--features-dir data/features] \
        [--benchmarks-dir data/benchmarks]
"""
from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline.core.cli import stage_main
from pipeline.core.params import RuntimeConfig, load_block, spec_entry
from pipeline.core.runtime import apply_runtime
from models.search_detr_config import SearchDETRConfig
from pipeline.search_vmr.params import SearchVMRConfig, SearchVMRVariant
from pipeline.datasets.schema import read_records
from pipeline.core.io import InputError, atomic_path
from pipeline.core.work import default_work_root, open_work
from pipeline.search_vmr.data import SearchVMRDataset, collate, queries_of
from pipeline.features.container import FeatureContainer, container_paths


@dataclass(frozen=True)
class SearchPaths:
    """Where a benchmark's inputs live (each a CLI argument, so paths are written only in dvc.yaml)."""

    canonical_dir: Path  # data/canonical
    features_dir: Path  # data/features
    benchmarks_dir: Path  # data/benchmarks

    def canonical(self, dataset: str) -> Path:
        return self.canonical_dir / f"{dataset}.jsonl"

    def video_prefix(self, dataset: str, backbone: str, split: str) -> Path:
        return self.features_dir / dataset / backbone / split

    def text_prefix(self, queryset: str, split: str) -> Path:
        return self.features_dir / "text" / queryset / split

    def video(self, dataset: str, backbone: str, split: str) -> FeatureContainer:
        return FeatureContainer(self.video_prefix(dataset, backbone, split))

    def text(self, queryset: str, split: str) -> FeatureContainer:
        return FeatureContainer(self.text_prefix(queryset, split))

    def search_text(self, dataset: str, level: str, split: str) -> FeatureContainer:
        """Token features of a level's search queries: ``data/features/text_search/<dataset>/<level>/<split>``
        (their own root, so a search stage depends on its benchmark's text only)."""
        return FeatureContainer(self.features_dir / "text_search" / dataset / level / split)

    def level_dir(self, dataset: str, level: str) -> Path:
        return self.benchmarks_dir / dataset / level


def resolve(cfg: SearchVMRConfig, benchmark: str, variant: str):
    """(benchmark spec, variant spec, model config with the variant's overrides) — unknown names are errors."""
    bench = spec_entry(cfg.benchmark_specs, benchmark, "search_vmr.benchmark_specs", "benchmark")
    var = spec_entry(cfg.variant_specs, variant, "search_vmr.variant_specs", "variant")
    return bench, var, variant_model_config(cfg.model, var)


VARIANT_OVERRIDES = ("self_attention", "qd_rate", "num_queries", "architecture", "anchor_init", "matcher", "match_k",
                     "match_groups", "actionness", "label_loss")


def variant_model_config(model: SearchDETRConfig, var: SearchVMRVariant) -> SearchDETRConfig:
    """The ``search_vmr.model`` block with the variant's non-null overrides applied."""
    over = {k: getattr(var, k) for k in VARIANT_OVERRIDES if getattr(var, k) is not None}
    return dataclasses.replace(model, **over)


def model_class(model_cfg: SearchDETRConfig) -> type:
    """The retriever class of ``model.architecture``: ``cgdetr`` (CG-DETR, the thesis' base) or ``hybrid``."""
    from models.search_cgdetr import CGDETR
    from models.search_detr import SearchDETR

    return CGDETR if model_cfg.architecture == "cgdetr" else SearchDETR


def training_sets(cfg: SearchVMRConfig, benchmark: str, variant: str, paths: SearchPaths) -> dict[str, SearchVMRDataset]:
    """``{"": dataset}`` for caption training, ``{level: dataset}`` per level for the oracle."""
    bench, var, _ = resolve(cfg, benchmark, variant)
    video = paths.video(benchmark, bench.backbone, bench.train_split)
    if var.train_queries == "caption":
        path = paths.canonical(benchmark)
        queries = queries_of(read_records(path), bench.train_split, str(path))
        return {"": SearchVMRDataset(queries, video, paths.text(benchmark, bench.train_split), cfg.data,
                                     augment=var.augment or 0.0)}
    sets = {}
    for level in bench.levels:
        path = paths.level_dir(benchmark, level) / "search.jsonl"
        queries = queries_of(read_records(path), bench.train_split, str(path))
        text = paths.search_text(benchmark, level, bench.train_split)
        sets[level] = SearchVMRDataset(queries, video, text, cfg.data, augment=var.augment or 0.0)
    return sets


def training_inputs(cfg: SearchVMRConfig, benchmark: str, variant: str, paths: SearchPaths) -> list[Path]:
    """The files :func:`training_sets` reads (their identity keys the resume state)."""
    bench, var, _ = resolve(cfg, benchmark, variant)
    files = list(container_paths(paths.video_prefix(benchmark, bench.backbone, bench.train_split)))
    if var.train_queries == "caption":
        return [paths.canonical(benchmark), *files,
                *container_paths(paths.text_prefix(benchmark, bench.train_split))]
    for level in bench.levels:
        files += [paths.level_dir(benchmark, level) / "search.jsonl",
                  *container_paths(paths.text_prefix(f"{benchmark}_{level}", bench.train_split))]
    return files


def train_one(dataset: SearchVMRDataset, model_cfg: SearchDETRConfig, cfg: SearchVMRConfig, runtime: RuntimeConfig,
              out_dir: Path, work_dir: Path, seed: int | None = None, progress: bool = True):
    """Build the model for ``dataset``'s input widths and fit it, resuming from (and saving) the state in
    ``work_dir``; returns ``pipeline.core.training.FitResult``."""
    from pipeline.core.training import fit

    model_cfg = dataclasses.replace(model_cfg, video_dim=dataset.video_dim(), text_dim=dataset.text_dim())
    seed = runtime.seed if seed is None else seed
    torch.manual_seed(seed)
    model = model_class(model_cfg)(model_cfg)
    return fit(model, dataset, collate, cfg.train, out_dir, device=runtime.device, precision=runtime.precision,
               seed=seed, workers=runtime.workers, progress=progress, work_dir=work_dir)


def seed_dir(root: Path, seed: int) -> Path:
    """Where the models (or curves, predictions) of one seed live under a stage output."""
    return root / f"seed_{seed}"


def run(cfg: SearchVMRConfig, runtime: RuntimeConfig, benchmark: str, variant: str, paths: SearchPaths,
        out: Path, progress: bool = True, work_root: Path | None = None) -> None:
    """Train every model of one (benchmark, variant), once per seed of ``cfg.seeds``, into
    ``out/model/seed_<k>`` and ``out/curves/seed_<k>`` atomically; resume state under ``work_root`` (default
    :func:`default_work_root` of ``out``), keyed by what the models read (``search_vmr.seeds`` aside: each
    model has its own state)."""
    bench, var, model_cfg = resolve(cfg, benchmark, variant)
    if not cfg.seeds:
        raise InputError("search_vmr.seeds: needs at least one seed")
    sets = training_sets(cfg, benchmark, variant, paths)
    apply_runtime(runtime)
    key = {"benchmark": benchmark, "variant": variant, "benchmark_spec": bench, "variant_spec": var,
           "model": model_cfg, "data": cfg.data, "train": cfg.train, "runtime": runtime}
    work = open_work(default_work_root(out) if work_root is None else work_root, "pipeline.search_vmr.train",
                     key, training_inputs(cfg, benchmark, variant, paths))
    from pipeline.core.training import dist_info

    if not dist_info().is_main:  # under torchrun only rank 0 writes (fit's contract): the others just train
        with tempfile.TemporaryDirectory(prefix="search_train_rank_") as scratch:
            for seed in cfg.seeds:
                for name, ds in sets.items():
                    state = work.sub(f"seed_{seed}", name) if name else work.sub(f"seed_{seed}")
                    train_one(ds, model_cfg, cfg, runtime, Path(scratch) / f"seed_{seed}" / name, state,
                              seed=seed, progress=False)
        return
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob(".model.*.tmp"), *out.glob(".curves.*.tmp")]:  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    with atomic_path(out / "model") as model_dir, atomic_path(out / "curves") as curves_dir:
        for seed in cfg.seeds:
            for name, ds in sets.items():
                where = seed_dir(model_dir, seed) / name if name else seed_dir(model_dir, seed)
                t0 = time.perf_counter()
                state = work.sub(f"seed_{seed}", name) if name else work.sub(f"seed_{seed}")
                train_one(ds, model_cfg, cfg, runtime, where, state, seed=seed, progress=progress)
                print(f"[search_train] {benchmark}-{variant}{' ' + name if name else ''} seed {seed}: {len(ds)} "
                      f"queries, {time.perf_counter() - t0:.1f} s")
                dest = seed_dir(curves_dir, seed) / name if name else seed_dir(curves_dir, seed)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(where / "live" / "plots" / "metrics"), dest)
                shutil.rmtree(where / "live")
    work.remove()  # every model is in place (fit ends with a barrier): nothing left to resume


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """The params file and input folders every search stage reads (see :class:`SearchPaths`)."""
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--canonical-dir", default="data/canonical", type=Path)
    parser.add_argument("--features-dir", default="data/features", type=Path)
    parser.add_argument("--benchmarks-dir", default="data/benchmarks", type=Path)


def paths_from(args: argparse.Namespace) -> SearchPaths:
    """The :class:`SearchPaths` of arguments added by :func:`add_input_arguments`."""
    return SearchPaths(args.canonical_dir, args.features_dir, args.benchmarks_dir)


@stage_main()
def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring); bad params or input → exit code 2."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--work", type=Path, help="resume state folder (default <out.parent>/_work/<out.name>)")
    add_input_arguments(parser)
    args = parser.parse_args(argv)
    from pipeline.core.training import shutdown_distributed

    try:
        cfg = load_block(SearchVMRConfig, args.params)
        runtime = load_block(RuntimeConfig, args.params)
        run(cfg, runtime, args.benchmark, args.variant, paths_from(args), args.out, work_root=args.work)
    finally:
        shutdown_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
