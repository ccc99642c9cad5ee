"""Stage ``querygen_rewrite@<dataset>-<level>``: the rewriter agent under-specifies every caption.

    python -m pipeline.querygen.rewrite --dataset synth_captions --level S1 \\
        --source data/querygen/synth_captions/source.jsonl --out data/querygen/synth_captions/S1/rewrite

Writes ``<out>/rewrites.jsonl`` (``qid, video_id, split, caption, rewrite``). Prompts come from the dataset's
prompt set (``querygen.sources.<dataset>.prompts``); answers are cached on disk (``querygen.llm``), so a rerun
only generates what changed. Params read: ``querygen.llm``, ``querygen.rewriter``,
``querygen.sources.<dataset>.prompts``, ``runtime.device``, ``runtime.threads``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from pipeline.querygen.params import QuerygenConfig
from pipeline.datasets.schema import read_records
from pipeline.core.io import atomic_path, write_jsonl
from pipeline.querygen import agents
from pipeline.querygen.common import (
    ROWS,
    base_parser,
    caption_items,
    check_dataset,
    load_configs,
    setup_torch,
)
from pipeline.querygen.llm import CachedLLM, GenParams, build_llm
from pipeline.querygen.prompts import load_prompt


def rewrite_items(items: list[dict], cfg: QuerygenConfig, dataset: str, level: str, llm: CachedLLM) -> list[dict]:
    """``items`` with their ``rewrite``."""
    prompt = load_prompt(cfg.sources[dataset].prompts, "rewrite", level)
    texts = agents.rewrite(llm, prompt, [it["caption"] for it in items], GenParams(cfg.rewriter.max_new_tokens),
                           desc=f"rewrite {dataset} {level}")
    return [{**it, "rewrite": t} for it, t in zip(items, texts)]


def main(argv: list[str] | None = None) -> int:
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--source", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    cfg, runtime = load_configs(args.params)
    check_dataset(cfg, args.dataset, args.level)
    load_prompt(cfg.sources[args.dataset].prompts, "rewrite", args.level)  # fail before loading any model
    device = setup_torch(runtime)
    t0 = time.perf_counter()
    items = caption_items(read_records(args.source))
    llm = build_llm(cfg.llm, device)
    rows = rewrite_items(items, cfg, args.dataset, args.level, llm)
    with atomic_path(args.out) as tmp:
        tmp.mkdir(parents=True)
        write_jsonl(tmp / ROWS["rewrite"], rows)
    print(f"[querygen_rewrite] {args.dataset} {args.level}: {len(rows)} rewrites, cache hits {llm.counts.hits}, "
          f"generated {llm.counts.misses}, {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
