"""Stage ``querygen_benchmark@<dataset>-<level>``: search-query benchmark files + Table 3.1 statistics.

    python -m pipeline.querygen.assemble --dataset synth_captions --level S1 \\
        --source data/querygen/synth_captions/source.jsonl --validated data/querygen/synth_captions/S1/validate \\
        --aggregated data/querygen/synth_captions/S1/aggregate --out data/benchmarks/synth_captions/S1 \\
        --metrics reports/metrics/querygen/synth_captions_S1.json

Writes ``<out>/search.jsonl``, ``caption.jsonl`` and ``splits.json`` (see ``querygen.benchmark``) and the
metrics: Table 3.1 columns for the search and the caption set (``all`` and per split) plus the validator's and
aggregator's counts (flagged, fallback, dropped, overridden, ...). Params read: none.
"""
from __future__ import annotations

import sys
from pathlib import Path

from pipeline.datasets.schema import read_records, write_records
from pipeline.core.io import atomic_path, read_json, read_jsonl, write_json
from pipeline.querygen.benchmark import SearchQuery, build_sets, stats_by_split
from pipeline.querygen.common import ROWS, SUMMARY


def load_queries(path: Path) -> list[SearchQuery]:
    """Kept (non-dropped) search queries of the aggregate stage."""
    return [SearchQuery(r["query_id"], r["video_id"], r["text"], tuple(r["members"]))
            for r in read_jsonl(path) if r["text"] is not None]


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--level", required=True)
    p.add_argument("--source", required=True, type=Path)
    p.add_argument("--validated", required=True, type=Path)
    p.add_argument("--aggregated", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--metrics", required=True, type=Path)
    args = p.parse_args(argv)
    records = read_records(args.source)
    search, caption, splits = build_sets(records, load_queries(args.aggregated / ROWS["aggregate"]))
    with atomic_path(args.out) as tmp:
        tmp.mkdir(parents=True)
        write_records(tmp / "search.jsonl", search)
        write_records(tmp / "caption.jsonl", caption)
        write_json(tmp / "splits.json", splits)
    metrics = {
        "dataset": args.dataset, "level": args.level,
        "search": stats_by_split(search),
        "caption": stats_by_split(caption),
        "validation": read_json(args.validated / SUMMARY),
        "aggregation": read_json(args.aggregated / SUMMARY),
        "source_moments": sum(len(r.moments) for r in records),
    }
    write_json(args.metrics, metrics)
    s = metrics["search"]["all"]
    print(f"[querygen_benchmark] {args.dataset} {args.level}: {s['videos']} videos, {s['queries']} search queries, "
          f"{s['moments_per_query']:.2f} moments/query, {s['multi_pct']:.1f}% multi, "
          f"{s['words_per_query_mean']:.2f}±{s['words_per_query_std']:.2f} words")
    return 0


if __name__ == "__main__":
    sys.exit(main())
