"""The canonical record every adapter produces and every later stage reads.

One ``VideoRecord`` per video (JSON line in ``data/canonical/<name>.jsonl``). Times are seconds.

* TAL datasets: each ``Moment`` has a ``label`` (class name) and ``label_id``; ``query_id``/``text`` are None.
* Caption VMR datasets: each moment has its own ``query_id`` and ``text`` (the caption).
* Search-query / QVHighlights-style data: several moments share one ``query_id`` (one query, many windows);
  per-query 2-s clip saliency lives in ``VideoRecord.saliency[query_id]``.

``iter_queries`` turns records into the query-level view (qid, vid, text, windows) that VMR models train on.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from pipeline.core.io import InputError, read_jsonl, write_jsonl


@dataclass(frozen=True)
class Moment:
    """One annotated temporal segment."""

    moment_id: str
    start: float
    end: float
    label: str | None = None  # action class name (TAL)
    label_id: int | None = None  # dense class index (TAL)
    text: str | None = None  # caption or query text (VMR)
    query_id: str | None = None  # moments with the same query_id answer the same query


@dataclass(frozen=True)
class Saliency:
    """QVHighlights-style saliency of one query: 2-s clip ids and one score (0–4) per annotator per clip."""

    clip_ids: list[int]
    scores: list[list[int]]


@dataclass(frozen=True)
class VideoRecord:
    """One video with all its moments, in seconds."""

    video_id: str
    dataset: str
    split: str  # "train" | "val" | "test"
    duration: float
    fps: float | None = None
    domain: str | None = None  # visual domain for domain adaptation (e.g. counter colour, ego/third-person)
    participant: str | None = None
    video_path: str | None = None  # path of the video file, relative to the repository root
    moments: list[Moment] = field(default_factory=list)
    saliency: dict[str, Saliency] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # dataset-specific facts (e.g. EPIC "old"/"new" collection)


@dataclass(frozen=True)
class Query:
    """Query-level view of VMR data: one text and all the windows that answer it."""

    qid: str
    vid: str
    text: str
    duration: float
    windows: list[tuple[float, float]]
    saliency: Saliency | None = None


def record_to_dict(rec: VideoRecord) -> dict:
    """Plain JSON-ready dict of a record."""
    return dataclasses.asdict(rec)


def record_from_dict(data: dict, where: str = "record") -> VideoRecord:
    """Rebuild a record from its dict; a missing or unknown key raises ``InputError`` naming ``where``."""
    try:
        moments = [Moment(**m) for m in data.get("moments", [])]
        saliency = {k: Saliency(**v) for k, v in (data.get("saliency") or {}).items()}
        rest = {k: v for k, v in data.items() if k not in ("moments", "saliency")}
        return VideoRecord(**rest, moments=moments, saliency=saliency)
    except TypeError as exc:
        raise InputError(f"{where}: not a canonical record: {exc}") from None


def write_records(path: str | Path, records: Iterable[VideoRecord]) -> None:
    """Atomically write records as JSONL, sorted by (split, video_id) so the bytes are deterministic."""
    recs = sorted(records, key=lambda r: (r.split, r.video_id))
    write_jsonl(path, [record_to_dict(r) for r in recs])


def read_records(path: str | Path, split: str | None = None) -> list[VideoRecord]:
    """Read canonical records, optionally only one split."""
    rows = read_jsonl(path)
    recs = [record_from_dict(row, f"{path}: line {i + 1}") for i, row in enumerate(rows)]
    return [r for r in recs if split is None or r.split == split]


def iter_queries(records: Iterable[VideoRecord]) -> Iterator[Query]:
    """Group each record's moments by ``query_id`` (moments without one are skipped), in first-seen order."""
    for rec in records:
        order: list[str] = []
        by_q: dict[str, list[Moment]] = {}
        for m in rec.moments:
            if m.query_id is None:
                continue
            if m.query_id not in by_q:
                order.append(m.query_id)
                by_q[m.query_id] = []
            by_q[m.query_id].append(m)
        for qid in order:
            ms = by_q[qid]
            yield Query(
                qid=qid,
                vid=rec.video_id,
                text=ms[0].text or "",
                duration=rec.duration,
                windows=[(m.start, m.end) for m in ms],
                saliency=rec.saliency.get(qid),
            )
