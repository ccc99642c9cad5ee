"""Search-query benchmark sets (thesis §3.3.2.2, §3.4.1) and their Table 3.1 statistics.

From the caption records and the aggregated groups of one level:

* ``search`` — the same videos; every moment of a kept caption appears exactly once (``moment_id`` kept) with
  ``query_id``/``text`` replaced by its group's search query, so one search query owns all its moments;
* ``caption`` — the same videos and moments with their original caption queries;
* ``splits`` — ``{"search": {"single": [...], "multi": [...]}, "caption": {...}}``: a search query is ``multi``
  when it has more than one moment; a caption query is in the partition of the search query its moments
  went to, so both sets' ``single``/``multi`` subsets hold the same moments (thesis §3.4.1).

Captions dropped by the review policy are absent from both sets. Videos left without moments are omitted.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from pipeline.datasets.schema import VideoRecord, iter_queries
from pipeline.core.io import InputError


@dataclass(frozen=True)
class SearchQuery:
    """One aggregated group: its search query id and text, and the caption query ids it covers."""

    query_id: str
    video_id: str
    text: str
    members: tuple[str, ...]


def build_sets(records: list[VideoRecord], queries: list[SearchQuery]
               ) -> tuple[list[VideoRecord], list[VideoRecord], dict]:
    """``(search records, caption records, splits)`` for one level (see the module docstring)."""
    owner: dict[str, SearchQuery] = {}
    for sq in queries:
        for qid in sq.members:
            if qid in owner:
                raise InputError(f"caption query {qid!r} is in two search queries: "
                                 f"{owner[qid].query_id!r} and {sq.query_id!r}")
            owner[qid] = sq
    rec_by_vid = {r.video_id: r for r in records}
    moments_of: dict[str, int] = {}
    for sq in queries:
        rec = rec_by_vid.get(sq.video_id)
        if rec is None:
            raise InputError(f"search query {sq.query_id!r}: video {sq.video_id!r} is not in the caption records")
        for qid in sq.members:
            n = sum(m.query_id == qid for m in rec.moments)
            if n == 0:
                raise InputError(f"search query {sq.query_id!r}: caption {qid!r} has no moment in {sq.video_id!r}")
            moments_of[sq.query_id] = moments_of.get(sq.query_id, 0) + n
    search, caption = [], []
    for rec in records:
        kept = [m for m in rec.moments if m.query_id in owner]
        if not kept:
            continue
        search_moments = [dataclasses.replace(m, query_id=owner[m.query_id].query_id, text=owner[m.query_id].text)
                          for m in kept]
        search.append(dataclasses.replace(rec, moments=search_moments, saliency={}))
        caption.append(dataclasses.replace(rec, moments=kept,
                                           saliency={k: v for k, v in rec.saliency.items() if k in owner}))
    splits = {"search": {"single": [], "multi": []}, "caption": {"single": [], "multi": []}}
    for sq in sorted(queries, key=lambda s: s.query_id):
        part = "multi" if moments_of[sq.query_id] > 1 else "single"
        splits["search"][part].append(sq.query_id)
        splits["caption"][part].extend(sq.members)
    for side in splits.values():
        for part in side.values():
            part.sort()
    return search, caption, splits


def table_stats(records: list[VideoRecord]) -> dict[str, float]:
    """Table 3.1 columns of a query set: videos, queries, duration, moments per query (all / multi),
    number and percentage of multi-moment queries, words per query (mean and std)."""
    qs = list(iter_queries(records))
    n_mom = np.array([len(q.windows) for q in qs], dtype=float)
    multi = n_mom[n_mom > 1]
    n_words = np.array([len(q.text.split()) for q in qs], dtype=float)
    return {
        "videos": len(records),
        "queries": len(qs),
        "moments": int(n_mom.sum()),
        "duration_per_video": float(np.mean([r.duration for r in records])) if records else 0.0,
        "moments_per_query": float(n_mom.mean()) if len(qs) else 0.0,
        "moments_per_query_multi": float(multi.mean()) if len(multi) else 0.0,
        "multi_queries": len(multi),
        "multi_pct": float(100.0 * len(multi) / len(qs)) if len(qs) else 0.0,
        "words_per_query_mean": float(n_words.mean()) if len(qs) else 0.0,
        "words_per_query_std": float(n_words.std()) if len(qs) else 0.0,
    }


def stats_by_split(records: list[VideoRecord]) -> dict[str, dict[str, float]]:
    """``table_stats`` over all records (``all``) and per split."""
    out = {"all": table_stats(records)}
    for split in sorted({r.split for r in records}):
        out[split] = table_stats([r for r in records if r.split == split])
    return out
