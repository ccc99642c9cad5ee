"""Stage ``querygen_build@<dataset>-<level>``: group, aggregate, and write the search benchmark + Table 3.1 metrics.

    python -m pipeline.querygen.build --dataset synth_captions --level S1 \\
        --generated data/querygen/synth_captions/S1/generate --reviews data/querygen_reviews \\
        --out data/querygen/synth_captions/S1/build --benchmark data/benchmarks/synth_captions/S1 \\
        --metrics reports/metrics/querygen/synth_captions_S1.json

Everything after the LLM rewrites (``querygen_generate``), in three steps:

1. group — per video, the validated queries (dropped ones excluded) are embedded (``querygen.embedder``),
   linked where cosine ≥ ``querygen.group_threshold`` and grouped as connected components by DFS
   (``querygen.grouping``); ``group_threshold`` is read here and nowhere upstream;
2. aggregate — one representative search query per group (``querygen.aggregation``), id
   ``<first member qid>#<level>``; rows of ``<reviews>/<dataset>/<level>/aggregate.jsonl`` override;
3. benchmark — ``<benchmark>/search.jsonl``, ``caption.jsonl`` and ``splits.json`` (``querygen.benchmark``) and
   the metrics: Table 3.1 columns for the search and the caption set (``all`` and per split) plus the
   validator's and aggregator's counts (flagged, fallback, dropped, overridden, ...).

Writes into ``<out>``: ``groups.json`` (``{video_id: [[qid, ...], ...]}``), ``queries.jsonl`` (``query_id,
video_id, split, text`` (null = dropped), ``members, kind, status, reasons, generated``), ``review.jsonl`` and
``summary.json`` (``grouping`` and ``aggregation`` counts). Policy ``fail`` with flagged representatives writes
these and stops with exit code 2 before the benchmark.
Params read: ``querygen.group_threshold``, ``querygen.embedder``, ``querygen.llm``, ``querygen.aggregator``,
``querygen.sources.<dataset>.prompts``, ``runtime.device``, ``runtime.threads``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pipeline.core.io import atomic_path, read_json, read_jsonl, write_json, write_jsonl
from pipeline.datasets.schema import VideoRecord, read_records, write_records
from pipeline.querygen.aggregation import aggregate_groups
from pipeline.querygen.benchmark import SearchQuery, build_sets, stats_by_split
from pipeline.querygen.common import (
    GROUPS,
    QUERIES,
    REVIEW,
    SOURCE,
    SUMMARY,
    VALIDATED,
    run_stage,
    user_review_path,
)
from pipeline.querygen.grouping import group_rows
from pipeline.querygen.llm import build_llm
from pipeline.querygen.params import QuerygenConfig
from pipeline.querygen.prompts import load_lexicon
from pipeline.querygen.review import load_overrides, raise_if_flagged


def group_summary(groups: dict[str, list[list[str]]]) -> dict[str, int]:
    """Counts of one level's groups: videos, grouped items, groups, multi-member groups, largest group."""
    sizes = [len(g) for gs in groups.values() for g in gs]
    return {"videos": len(groups), "items": sum(sizes), "groups": len(sizes),
            "multi_groups": sum(s > 1 for s in sizes), "largest_group": max(sizes, default=0)}


def kept_queries(rows: list[dict]) -> list[SearchQuery]:
    """The search queries of the aggregated rows that were not dropped."""
    return [SearchQuery(r["query_id"], r["video_id"], r["text"], tuple(r["members"]))
            for r in rows if r["text"] is not None]


def benchmark_metrics(dataset: str, level: str, records: list[VideoRecord], search: list[VideoRecord],
                      caption: list[VideoRecord], validation: dict, aggregation: dict) -> dict:
    """The ``reports/metrics/querygen/<dataset>_<level>.json`` document of one level."""
    return {
        "dataset": dataset, "level": level,
        "search": stats_by_split(search),
        "caption": stats_by_split(caption),
        "validation": validation,
        "aggregation": aggregation,
        "source_moments": sum(len(r.moments) for r in records),
    }


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--generated", required=True, type=Path, help="output folder of querygen_generate")
    p.add_argument("--reviews", required=True, type=Path, help="folder of user review files")
    p.add_argument("--out", required=True, type=Path, help="folder for the groups, queries and review file")
    p.add_argument("--benchmark", required=True, type=Path, help="folder for search/caption.jsonl, splits.json")
    p.add_argument("--metrics", required=True, type=Path)


def _build(args: argparse.Namespace, cfg: QuerygenConfig, device: str) -> None:
    load_lexicon(cfg.sources[args.dataset].prompts)  # a bad prompt set fails before any model loads
    user_file = user_review_path(args.reviews, args.dataset, args.level, "aggregate")
    overrides = load_overrides(user_file)
    records = read_records(args.generated / SOURCE)
    rows = read_jsonl(args.generated / VALIDATED)
    validation = read_json(args.generated / SUMMARY)
    t0 = time.perf_counter()
    groups = group_rows(rows, cfg.group_threshold, cfg.embedder.model, device, cfg.embedder.batch_size)
    grouping = group_summary(groups)
    print(f"[querygen_build] {args.dataset} {args.level} (threshold {cfg.group_threshold}): groups {grouping}")
    llm = build_llm(cfg.llm, device)
    out, review, counts = aggregate_groups(rows, groups, cfg, args.dataset, args.level, llm, overrides, device)
    with atomic_path(args.out) as tmp:
        tmp.mkdir(parents=True)
        write_json(tmp / GROUPS, groups)
        write_jsonl(tmp / QUERIES, out)
        write_jsonl(tmp / REVIEW, review)
        write_json(tmp / SUMMARY, {"grouping": grouping, "aggregation": counts})
    print(f"[querygen_build] {args.dataset} {args.level}: aggregation {counts}, LLM cache hits {llm.counts.hits}, "
          f"generated {llm.counts.misses}, {time.perf_counter() - t0:.1f} s")
    raise_if_flagged([o["status"] for o in out], args.out / REVIEW, user_file)
    search, caption, splits = build_sets(records, kept_queries(out))
    with atomic_path(args.benchmark) as tmp:
        tmp.mkdir(parents=True)
        write_records(tmp / "search.jsonl", search)
        write_records(tmp / "caption.jsonl", caption)
        write_json(tmp / "splits.json", splits)
    metrics = benchmark_metrics(args.dataset, args.level, records, search, caption, validation, counts)
    write_json(args.metrics, metrics)
    s = metrics["search"]["all"]
    print(f"[querygen_build] {args.dataset} {args.level}: {s['videos']} videos, {s['queries']} search queries, "
          f"{s['moments_per_query']:.2f} moments/query, {s['multi_pct']:.1f}% multi, "
          f"{s['words_per_query_mean']:.2f}±{s['words_per_query_std']:.2f} words")


def main(argv: list[str] | None = None) -> int:
    """Run the stage (see the module docstring); returns the exit code."""
    return run_stage(__doc__, _arguments, _build, argv)


if __name__ == "__main__":
    sys.exit(main())
