"""Stage ``dataset_stats@<name>``: statistics of one canonical dataset, in the shape of thesis Tab 2.1 / Tab 3.1.

Per split and over all splits (``all``):

* ``videos`` (distinct video ids), ``moments``, ``queries`` (distinct query ids; 0 for TAL data), ``hours``,
  ``mean_video_duration`` (s, over distinct videos), ``mean_moment_length`` (s);
* query text (Tab 3.1): ``mean_query_words`` ± ``std_query_words`` (whitespace words of each query's text),
  ``moments_per_query``, ``moments_per_multi_query`` (mean over queries with > 1 moment), ``multi_queries``,
  ``multi_query_pct``, ``queries_with_saliency``;
* labels (Tab 2.1): ``classes`` = moments per label, most frequent first; ``domains`` = videos and moments
  per ``domain`` value.

And per scenario of ``datasets.scenarios`` on this dataset, for its source and target domain and each split:
``videos``, ``moments``, ``mean_moment_length`` and ``classes`` — exactly the columns of Tab 2.1 / Tab 2.2.
Output: ``reports/metrics/dataset_stats/<name>.json``. Params read: ``datasets.scenarios``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from typing import Any, Iterable, Mapping

from pipeline.core.cli import stage_main
from pipeline.core.params import load_block
from pipeline.datasets.params import DatasetsConfig
from pipeline.datasets.params import DatasetScenario
from pipeline.datasets.scenarios import select
from pipeline.datasets.schema import VideoRecord, iter_queries, read_records
from pipeline.core.io import write_json


def _mean(values: list[float]) -> float | None:
    # rounded so that float noise (2.3499999999999996) does not show in metrics or diffs
    return round(sum(values) / len(values), 6) if values else None


def _class_counts(records: Iterable[VideoRecord]) -> dict[str, int]:
    counts = Counter(m.label for r in records for m in r.moments if m.label is not None)
    return {label: counts[label] for label in sorted(counts, key=lambda k: (-counts[k], k))}


def split_stats(records: list[VideoRecord]) -> dict[str, Any]:
    """Statistics of one set of records (see the module docstring for the keys)."""
    moments = [m for r in records for m in r.moments]
    queries = list(iter_queries(records))
    # a video annotated in several splits (ActivityNet val_1 / val_2) counts once in video-level numbers
    durations = list({r.video_id: r.duration for r in records}.values())
    words = [len(q.text.split()) for q in queries]
    sizes = [len(q.windows) for q in queries]
    multi = [n for n in sizes if n > 1]
    domains: dict[str, Counter] = {}
    for r in records:
        if r.domain is not None:
            d = domains.setdefault(r.domain, Counter())
            d["videos"] += 1
            d["moments"] += len(r.moments)
    return {
        "videos": len(durations),
        "moments": len(moments),
        "queries": len(queries),
        "hours": round(sum(durations) / 3600.0, 6),
        "mean_video_duration": _mean(durations),
        "mean_moment_length": _mean([m.end - m.start for m in moments]),
        "mean_query_words": _mean(words),
        "std_query_words": round(statistics.pstdev(words), 6) if words else None,
        "moments_per_query": _mean(sizes),
        "moments_per_multi_query": _mean(multi),
        "multi_queries": len(multi),
        "multi_query_pct": round(100.0 * len(multi) / len(queries), 6) if queries else None,
        "queries_with_saliency": sum(q.saliency is not None for q in queries),
        "classes": _class_counts(records),
        "domains": {d: dict(c) for d, c in sorted(domains.items())},
    }


def scenario_stats(records: list[VideoRecord], scenario: DatasetScenario) -> dict[str, Any]:
    """Tab 2.1 / 2.2 row group of one scenario: per role (source, target) and split."""
    out: dict[str, Any] = {}
    splits = sorted({r.split for r in records})
    for role in ("source", "target"):
        chosen = select(records, getattr(scenario, role))
        out[role] = {}
        for split in splits:
            recs = [r for r in chosen if r.split == split]
            moments = [m for r in recs for m in r.moments]
            out[role][split] = {
                "videos": len(recs),
                "moments": len(moments),
                "mean_moment_length": _mean([m.end - m.start for m in moments]),
                "classes": _class_counts(recs),
            }
    return out


def dataset_stats(name: str, records: list[VideoRecord], scenarios: Mapping[str, DatasetScenario]) -> dict[str, Any]:
    """All statistics of dataset ``name``: per split, ``all``, and per scenario defined on it."""
    splits = sorted({r.split for r in records})
    return {
        "dataset": name,
        "splits": {s: split_stats([r for r in records if r.split == s]) for s in splits},
        "all": split_stats(records),
        "scenarios": {k: scenario_stats(records, sc) for k, sc in sorted(scenarios.items()) if sc.dataset == name},
    }


@stage_main(ValueError)
def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring); bad params or input → exit code 2."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="canonical dataset name (a key of datasets.sources)")
    parser.add_argument("--canonical", required=True, help="data/canonical/<name>.jsonl")
    parser.add_argument("--out", required=True, help="statistics JSON (metrics) to write")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    cfg = load_block(DatasetsConfig, args.params)
    stats = dataset_stats(args.name, read_records(args.canonical), cfg.scenarios)
    write_json(args.out, stats)
    a = stats["all"]
    print(f"dataset_stats {args.name}: {a['videos']} videos, {a['moments']} moments, {a['queries']} queries, "
          f"{len(stats['scenarios'])} scenario(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
