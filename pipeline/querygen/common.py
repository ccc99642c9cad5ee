"""Helpers shared by the querygen stage modules: params, runtime threads, file layout of the stage outputs."""
from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.querygen.params import QuerygenConfig
from pipeline.core.params import RuntimeConfig, load_block, load_params

# file names inside each stage's output folder data/querygen/<dataset>/<level>/<stage>/
ROWS = {"rewrite": "rewrites.jsonl", "validate": "validated.jsonl", "group": "groups.json",
        "aggregate": "queries.jsonl"}
REVIEW = "review.jsonl"
SUMMARY = "summary.json"


def load_configs(params_path: str | Path) -> tuple[QuerygenConfig, RuntimeConfig]:
    """Validated ``querygen`` and ``runtime`` blocks (before any work starts)."""
    params = load_params(params_path)
    return load_block(QuerygenConfig, params_path, params), load_block(RuntimeConfig, params_path, params)


def check_dataset(cfg: QuerygenConfig, dataset: str, level: str | None = None) -> None:
    """Fail early when ``dataset`` has no ``querygen.sources`` entry or ``level`` is not configured."""
    if dataset not in cfg.sources:
        raise SystemExit(f"params: querygen.sources has no entry {dataset!r} (has {sorted(cfg.sources)})")
    if level is not None and level not in cfg.levels:
        raise SystemExit(f"params: level {level!r} is not in querygen.levels {cfg.levels}")


def setup_torch(runtime: RuntimeConfig) -> str:
    """Apply ``runtime.threads``; return the device string."""
    import torch

    if runtime.threads > 0:
        torch.set_num_threads(runtime.threads)
    return runtime.device


def user_review_path(reviews_dir: str | Path, dataset: str, level: str, agent: str) -> Path:
    """Where a user puts corrections for one agent's items (see ``review``)."""
    return Path(reviews_dir) / dataset / level / f"{agent}.jsonl"


def base_parser(description: str, level: bool = True) -> argparse.ArgumentParser:
    """Arguments every querygen stage takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--dataset", required=True, help="canonical dataset name (a querygen.sources key)")
    if level:
        p.add_argument("--level", required=True, help="under-specification level (one of querygen.levels)")
    p.add_argument("--params", default="params.yaml", type=Path)
    return p


def caption_items(records) -> list[dict]:
    """One row per caption query: ``{qid, video_id, split, caption}`` in record/moment order."""
    items, seen = [], set()
    for rec in records:
        for m in rec.moments:
            if m.query_id is None or m.query_id in seen:
                continue
            seen.add(m.query_id)
            items.append({"qid": m.query_id, "video_id": rec.video_id, "split": rec.split, "caption": m.text or ""})
    return items
