"""Stage ``sdst_predict@<dataset>-<variant>``: raw SDST predictions for the evaluation split, one file per seed.

Rebuilds each seed's model from its checkpoint alone (``<models>/seed_<k>/model.pt``: config + backbone layers
per level) for every ``k`` in ``sdst.seeds``, reads the ``sdst.dataset_specs.<dataset>`` split / clip settings and
``sdst.predict_batch_size``, and writes ``<out>/seed_<k>.jsonl``: one row per query in the moment_detr submission
format: ``qid``, ``vid``, ``pred_relevant_windows`` (all M windows, ``[start_s, end_s, score]``, score =
√(p·actionness), descending) and ``pred_saliency_scores`` (one per ``clip_len``-second clip). No NMS here: the
evaluate stage applies it, so NMS settings don't retrain or repredict. The output directory appears atomically.

    python -m pipeline.sdst.predict --dataset synth_qvh --models data/models/sdst/synth_qvh/sdst \
        --canonical ... --video-features ... --text-features ... --out data/predictions/sdst/synth_qvh/sdst
"""
from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from models.sdst import SDST
from pipeline.core.cli import stage_main
from pipeline.core.params import RuntimeConfig, load_block, spec_entry
from pipeline.core.runtime import apply_runtime
from pipeline.sdst.params import SDSTParams
from pipeline.core.io import InputError, atomic_path, write_jsonl
from pipeline.sdst.data import LayerChoice, SDSTDataset, collate, prediction_path, seed_checkpoints


def predict(checkpoint: Path, canonical: Path, video_dir: Path, text_dir: Path, split: str, clip_len: float,
            min_len: int, batch_size: int, device: str = "cpu") -> list[dict]:
    """Prediction rows for every query of ``split`` (queries without windows included)."""
    from pipeline.core.checkpoints import load_model

    model, _ = load_model(checkpoint, device, models=(SDST,))
    cfg = model.config
    ds = SDSTDataset(canonical, split, video_dir, text_dir, LayerChoice(cfg.video_layers, cfg.text_layers),
                     clip_len, require_windows=False)
    if (ds.video_dim, ds.text_dim) != (cfg.video_dim, cfg.text_dim):
        raise InputError(f"{video_dir} / {text_dir}: feature dims {(ds.video_dim, ds.text_dim)} differ from the "
                         f"checkpoint's {(cfg.video_dim, cfg.text_dim)} ({checkpoint})")
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False,
                                         collate_fn=functools.partial(collate, min_len=min_len))
    rows: list[dict] = []
    for batch in tqdm(loader, desc="sdst predict", leave=False):
        from pipeline.core.training import move_to_device

        rows.extend(model.predict(move_to_device(batch, torch.device(device))))
    return rows


@stage_main()
def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring); bad params or input → exit code 2."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--models", required=True, type=Path, help="sdst_train output dir (holds seed_<k>/model.pt)")
    parser.add_argument("--canonical", required=True, type=Path)
    parser.add_argument("--video-features", required=True, type=Path)
    parser.add_argument("--text-features", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    params = load_block(SDSTParams, args.params)
    runtime = load_block(RuntimeConfig, args.params)
    spec = spec_entry(params.dataset_specs, args.dataset, "sdst.dataset_specs", "dataset")
    apply_runtime(runtime)
    rows = {seed: predict(ckpt, args.canonical, args.video_features, args.text_features, spec.eval_split,
                          spec.clip_len, spec.min_len, params.predict_batch_size, runtime.device)
            for seed, ckpt in seed_checkpoints(args.models, params.seeds).items()}
    with atomic_path(args.out) as tmp:
        for seed, seed_rows in rows.items():
            write_jsonl(prediction_path(tmp, seed), seed_rows)
    print(f"[sdst_predict] {len(rows)} seed(s) × {len(next(iter(rows.values())))} queries → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
