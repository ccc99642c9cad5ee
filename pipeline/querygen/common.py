"""What the querygen stage modules share: the one ``main()`` skeleton, output file names, user review paths.

Every querygen stage (``generate``, ``build``, ``oracle_score``) is ``run_stage(doc, add_arguments, body)``:
the common arguments (``--dataset``, ``--level``, ``--params``), the ``querygen`` and ``runtime`` blocks read
with ``load_block`` and validated before any work, the dataset/level checked against them, torch threads set
(``pipeline.core.runtime``), and bad input or params turned into one line ``error: …`` on stderr and exit code 2
(``pipeline.core.cli``; here also prompt-file errors and policy ``fail`` with flagged items).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from pipeline.core.cli import run_main
from pipeline.core.params import ConfigError, RuntimeConfig, load_block, spec_entry
from pipeline.core.runtime import apply_runtime
from pipeline.querygen.params import QuerygenConfig
from pipeline.querygen.prompts import PromptError
from pipeline.querygen.review import ReviewRequired

# file names inside the stage output folders data/querygen/<dataset>/<level>/{generate,build}/
SOURCE = "source.jsonl"  # generate: the prepared caption records
VALIDATED = "validated.jsonl"  # generate: one row per caption with its rewrite and final query
GROUPS = "groups.json"  # build: {video_id: [[qid, ...], ...]}
QUERIES = "queries.jsonl"  # build: one row per group with its representative search query
REVIEW = "review.jsonl"  # both: flagged items with their reasons
SUMMARY = "summary.json"  # both: counts

Body = Callable[[argparse.Namespace, QuerygenConfig, str], None]


def check_dataset(cfg: QuerygenConfig, dataset: str, level: str) -> None:
    """Fail early when ``dataset`` has no ``querygen.sources`` entry or ``level`` is not configured."""
    spec_entry(cfg.sources, dataset, "querygen.sources", "dataset")
    if level not in cfg.levels:
        raise ConfigError(f"querygen.levels: level {level!r} is not in {cfg.levels}")


def run_stage(doc: str, add_arguments: Callable[[argparse.ArgumentParser], None], body: Body,
              argv: list[str] | None = None) -> int:
    """The ``main()`` of every querygen stage (see the module docstring); returns the exit code.

    ``body(args, cfg, device)`` does the stage's work; bad input raises ``ConfigError``, ``InputError``,
    ``FileNotFoundError``, ``PromptError`` or ``ReviewRequired``.
    """
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--dataset", required=True, help="canonical dataset name (a querygen.sources key)")
    p.add_argument("--level", required=True, help="under-specification level (one of querygen.levels)")
    p.add_argument("--params", default="params.yaml", type=Path)
    add_arguments(p)
    args = p.parse_args(argv)

    def stage() -> None:
        cfg = load_block(QuerygenConfig, args.params)
        runtime = load_block(RuntimeConfig, args.params)
        check_dataset(cfg, args.dataset, args.level)
        apply_runtime(runtime)
        body(args, cfg, runtime.device)

    return run_main(stage, PromptError, ReviewRequired)


def user_review_path(reviews_dir: str | Path, dataset: str, level: str, agent: str) -> Path:
    """Where a user puts corrections for one agent's items (see ``review``)."""
    return Path(reviews_dir) / dataset / level / f"{agent}.jsonl"


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
