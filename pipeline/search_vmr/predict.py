"""Predictions of the trained retriever(s) on the eval split (the first half of stage ``search_evaluate``).

Writes moment_detr-format JSONL rows (``qid``, ``vid``, ``pred_relevant_windows`` after NMS,
``pred_saliency_scores``, and the raw per-slot ``pred_query_windows`` used by the active-query statistics):

* ``<out>/seed_<k>/caption.jsonl``: the caption queries of the eval split (``data/canonical/<dataset>.jsonl``), the
  "original" benchmark and the caption side of every level's single/multi partition (same qids);
* ``<out>/seed_<k>/<level>.jsonl``: the search queries of each level (``data/benchmarks/<dataset>/<level>/search.jsonl``);
* ``<out>/meta.json``: the variant's label and model settings (echoed into the metrics by the evaluate half).

NMS (``search_vmr.inference.nms_threshold``, true temporal IoU) and ``max_windows`` are applied here, as part
of the model's decoding; ``inference.nms_policy`` says which models get NMS (default ``no_sa``: only decoders
without self-attention, as the thesis introduces NMS with -SA, §3.4.2.2; base CG-DETR runs without NMS, as its
public code does). Changing them reruns the evaluate stage but not training.

The oracle (``train_queries: search``) has one model per level and predicts only its own level.

Every seed of ``search_vmr.seeds`` has its own models (``<models>/seed_<k>/``) and its own prediction files
(``<out>/seed_<k>/<name>.jsonl``); ``meta.json`` (one per run) lists the seeds.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from tqdm import tqdm

from models.search_cgdetr import CGDETR
from models.search_detr import SearchDETR
from pipeline.core.params import RuntimeConfig
from pipeline.core.runtime import apply_runtime
from pipeline.search_vmr.params import SearchVMRConfig
from pipeline.datasets.schema import read_records
from pipeline.core.io import InputError, atomic_path, write_json, write_jsonl
from pipeline.search_vmr.data import SearchVMRDataset, batches, num_batches, queries_of
from pipeline.search_vmr.train import SearchPaths, resolve, seed_dir


def predict_dataset(model: torch.nn.Module, dataset: SearchVMRDataset, batch_size: int, device: str,
                    desc: str = "predict") -> list[dict]:
    """Run ``model.predict`` over ``dataset`` in order; rows come back in query order."""
    from pipeline.core.training import move_to_device

    rows: list[dict] = []
    model.eval()
    for batch in tqdm(batches(dataset, batch_size), total=num_batches(len(dataset), batch_size), desc=desc,
                      leave=False):
        rows.extend(model.predict(move_to_device(batch, torch.device(device))))
    return rows


def eval_sets(cfg: SearchVMRConfig, benchmark: str, paths: SearchPaths) -> dict[str, SearchVMRDataset]:
    """``{"caption": ..., <level>: ...}`` datasets of the eval split of one benchmark."""
    bench = cfg.benchmark_specs[benchmark]
    video = paths.video(benchmark, bench.backbone, bench.eval_split)
    path = paths.canonical(benchmark)
    sets = {"caption": SearchVMRDataset(queries_of(read_records(path), bench.eval_split, str(path)), video,
                                        paths.text(benchmark, bench.eval_split), cfg.data)}
    for level in bench.levels:
        lpath = paths.level_dir(benchmark, level) / "search.jsonl"
        queries = queries_of(read_records(lpath), bench.eval_split, str(lpath))
        sets[level] = SearchVMRDataset(queries, video, paths.search_text(benchmark, level, bench.eval_split),
                                       cfg.data)
    return sets


def run(cfg: SearchVMRConfig, runtime: RuntimeConfig, benchmark: str, variant: str, paths: SearchPaths,
        models_dir: Path, out: Path) -> None:
    """Predict every query set of the benchmark with the variant's model(s) into ``out`` (atomically)."""
    from pipeline.core.checkpoints import load_model

    _, var, _ = resolve(cfg, benchmark, variant)
    if not cfg.seeds:
        raise InputError("search_vmr.seeds: needs at least one seed")
    apply_runtime(runtime)
    sets = eval_sets(cfg, benchmark, paths)
    meta: dict = {}
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        for seed in cfg.seeds:
            seed_models, seed_out = seed_dir(models_dir, seed), seed_dir(tmp, seed)
            seed_out.mkdir(parents=True)
            for name, ds in sets.items():
                if var.train_queries == "search":
                    if name == "caption":
                        continue  # the oracle is trained per level and only judged on its own level
                    ckpt = seed_models / name / "model.pt"
                else:
                    ckpt = seed_models / "model.pt"
                if not ckpt.exists():
                    raise InputError(f"{ckpt}: no model for seed {seed} (search_vmr.seeds changed? rerun search_train)")
                model, _ = load_model(ckpt, runtime.device, models=(SearchDETR, CGDETR))
                # post-processing is an inference param, not part of the trained model
                model.config = dataclasses.replace(
                    model.config, nms_threshold=cfg.inference.nms_for(model.config.self_attention),
                    max_windows=cfg.inference.max_windows)
                rows = predict_dataset(model, ds, cfg.inference.batch_size, runtime.device,
                                       desc=f"{variant} {name} seed {seed}")
                write_jsonl(seed_out / f"{name}.jsonl", rows)
                mc = model.config
                meta = {"label": var.label, "oracle": int(var.train_queries == "search"),
                        "num_queries": mc.num_queries, "qd_rate": mc.qd_rate, "self_attention": int(mc.self_attention),
                        "nms_threshold": mc.nms_threshold, "max_windows": mc.max_windows,
                        "architecture": mc.architecture, "anchor_init": mc.anchor_init,
                        # Tab 3.5 / 3.6 / 3.9 switches (the report tells the ablation rows apart by them)
                        "matcher": mc.matcher, "match_k": mc.match_k, "match_groups": mc.match_groups,
                        "actionness": int(mc.actionness), "label_loss": mc.label_loss,
                        "augment": float(var.augment or 0.0)}
                print(f"[search_evaluate] predicted {benchmark}-{variant} {name} seed {seed}: {len(rows)} queries")
        write_json(tmp / "meta.json", {**meta, "seeds": [int(s) for s in cfg.seeds]})
