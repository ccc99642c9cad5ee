"""Raw SDST predictions for the evaluation split, one file per seed (the first half of ``sdst_evaluate``).

Rebuilds each seed's model from its checkpoint alone (``<models>/seed_<k>/model.pt``: config + backbone layers
per level) for every ``k`` in ``sdst.seeds``, reads the ``sdst.dataset_specs.<dataset>`` split / clip settings and
``sdst.predict_batch_size``, and writes ``<out>/seed_<k>.jsonl``: one row per query in the moment_detr submission
format: ``qid``, ``vid``, ``pred_relevant_windows`` (all M windows, ``[start_s, end_s, score]``, score =
√(p·actionness), or p alone when ``w_act`` is 0; descending) and ``pred_saliency_scores`` (one per ``clip_len``-second clip). No NMS here: the
evaluate step applies it to these raw rows. The output directory appears atomically.
"""
from __future__ import annotations

import functools
from pathlib import Path

import torch
from tqdm import tqdm

from models.side_tuners import MODEL_CLASSES
from pipeline.core.io import InputError, atomic_path, write_jsonl
from pipeline.sdst.data import LayerChoice, SDSTDataset, collate, prediction_path, seed_checkpoints


def predict(checkpoint: Path, canonical: Path, video_dir: Path, text_dir: Path, split: str, clip_len: float,
            min_len: int, batch_size: int, device: str = "cpu") -> list[dict]:
    """Prediction rows for every query of ``split`` (queries without windows included)."""
    from pipeline.core.checkpoints import load_model

    model, _ = load_model(checkpoint, device, models=MODEL_CLASSES)
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


def predict_seeds(models: Path, seeds: list[int], canonical: Path, video_dir: Path, text_dir: Path, split: str,
                  clip_len: float, min_len: int, batch_size: int, device: str, out: Path) -> dict[int, list[dict]]:
    """Predict with every seed's model of ``models`` and write ``<out>/seed_<k>.jsonl`` (the directory appears
    atomically); returns ``{seed: rows}``."""
    rows = {seed: predict(ckpt, canonical, video_dir, text_dir, split, clip_len, min_len, batch_size, device)
            for seed, ckpt in seed_checkpoints(models, seeds).items()}
    with atomic_path(out) as tmp:
        for seed, seed_rows in rows.items():
            write_jsonl(prediction_path(tmp, seed), seed_rows)
    return rows
