"""Validation and packing of query-level inputs (QVHighlights / grounding / search JSONL rows).

Rows are dicts as in moment_detr's submission format. Every problem raises ``pipeline.core.io.InputError`` with
a message naming the source (a file path when the CLI passes one), the 1-based row and the qid. The fast
path converts all windows with one ``np.array`` call; only when that fails do we scan rows one by one to
find and name the culprit.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from pipeline.core.io import InputError


def _where(src: str, i: int, qid: Any = None) -> str:
    return f"{src}: row {i + 1}" + ("" if qid is None else f" (qid {qid!r})")


def as_query_rows(rows: Iterable[Any], src: str) -> list[Mapping]:
    """Accept dict rows or objects with ``qid`` and ``windows`` attributes (``schema.Query``)."""
    out = []
    for i, row in enumerate(rows):
        if isinstance(row, Mapping):
            out.append(row)
        elif hasattr(row, "qid") and hasattr(row, "windows"):
            out.append(
                {"qid": row.qid, "vid": getattr(row, "vid", None), "relevant_windows": [list(w) for w in row.windows]}
            )
        else:
            raise InputError(f"{_where(src, i)}: expected a JSON object, got {type(row).__name__}")
    return out


def qids_of(rows: Sequence[Mapping], src: str) -> list[Any]:
    """The qid of every row; a missing, unhashable or duplicated qid is an error naming the rows."""
    seen: dict[Any, int] = {}
    qids = []
    for i, row in enumerate(rows):
        if "qid" not in row:
            raise InputError(f"{_where(src, i)}: missing key 'qid'")
        qid = row["qid"]
        if not isinstance(qid, (int, str)) or isinstance(qid, bool):
            raise InputError(f"{_where(src, i)}: qid must be an int or a string, got {qid!r}")
        if qid in seen:
            raise InputError(f"{_where(src, i, qid)}: duplicate qid (also in row {seen[qid] + 1})")
        seen[qid] = i
        qids.append(qid)
    return qids


def check_same_qids(gt_qids: Sequence[Any], pred_qids: Sequence[Any], gt_src: str, pred_src: str) -> None:
    """The reference asserts that both files hold the same qids; we say which ones differ."""
    gt_set, pred_set = set(gt_qids), set(pred_qids)
    if gt_set == pred_set:
        return
    missing = [q for q in gt_qids if q not in pred_set]
    extra = [q for q in pred_qids if q not in gt_set]
    parts = []
    if missing:
        parts.append(f"{len(missing)} qid(s) of {gt_src} have no row in {pred_src} (first: {missing[:5]!r})")
    if extra:
        i = list(pred_qids).index(extra[0])
        parts.append(f"{len(extra)} qid(s) of {pred_src} are not in {gt_src} (first: {_where(pred_src, i, extra[0])})")
    raise InputError("qid sets differ: " + "; ".join(parts))


@dataclass
class Windows:
    """Ragged windows of many rows: row ``i`` owns ``start[ptr[i]:ptr[i] + cnt[i]]`` (and ``score``)."""

    start: np.ndarray
    end: np.ndarray
    score: np.ndarray | None
    ptr: np.ndarray
    cnt: np.ndarray

    def row_of(self) -> np.ndarray:
        """Row index of every window."""
        return np.repeat(np.arange(len(self.cnt)), self.cnt)

    def local(self) -> np.ndarray:
        """Listed position of every window inside its row."""
        return np.arange(len(self.start)) - np.repeat(self.ptr, self.cnt)

    def select(self, keep: np.ndarray) -> "Windows":
        """Windows where ``keep`` (per window) is True, rows preserved (possibly emptied)."""
        cnt = np.bincount(self.row_of()[keep], minlength=len(self.cnt))
        return Windows(
            self.start[keep],
            self.end[keep],
            None if self.score is None else self.score[keep],
            np.cumsum(cnt) - cnt,
            cnt,
        )

    def take_rows(self, rows: np.ndarray) -> "Windows":
        """The windows of ``rows`` (in that order) as a new table."""
        cnt = self.cnt[rows]
        idx = np.repeat(self.ptr[rows], cnt) + (np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt))
        return Windows(
            self.start[idx], self.end[idx], None if self.score is None else self.score[idx], np.cumsum(cnt) - cnt, cnt
        )


def _scan_windows(rows: Sequence[Mapping], key: str, widths: tuple[int, ...], src: str, qids: Sequence[Any]) -> None:
    """Slow path: find the first malformed window and raise naming its row."""
    for i, row in enumerate(rows):
        wins = row[key]
        if not isinstance(wins, (list, tuple)):
            raise InputError(f"{_where(src, i, qids[i])}: '{key}' must be a list of windows, got {wins!r}")
        for w in wins:
            if not isinstance(w, (list, tuple)) or len(w) not in widths:
                want = " or ".join(str(k) for k in widths)
                raise InputError(f"{_where(src, i, qids[i])}: window {w!r} in '{key}' must have {want} numbers")
            for v in w:
                if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
                    raise InputError(f"{_where(src, i, qids[i])}: window {w!r} in '{key}' holds a non-number {v!r}")
    raise InputError(f"{src}: windows in '{key}' must all have the same length ({' or '.join(map(str, widths))})")


def holds_bool(values: Iterable[Any]) -> bool:
    """True when a JSON ``true``/``false`` sits among ``values``: numpy would silently read it as 1/0."""
    return any(v.__class__ is bool or isinstance(v, np.bool_) for v in values)


def parse_windows(
    rows: Sequence[Mapping],
    key: str,
    src: str,
    qids: Sequence[Any],
    widths: tuple[int, ...],
    positive_length: bool = False,
) -> Windows:
    """Windows of ``rows[i][key]`` as flat arrays, validated.

    ``widths`` lists the allowed window lengths (2 = [s, e], 3 = [s, e, score]); all windows of one input
    must have the same length. Rejects: a missing key, a non-list, a non-number (booleans included), a NaN or
    infinite value, a negative start, and start > end — or start ≥ end with ``positive_length`` (ground truth:
    a zero-length GT window can never be matched, so it is a broken annotation, not a hard query). Each error
    names the row and qid.
    """
    for i, row in enumerate(rows):
        if key not in row:
            raise InputError(f"{_where(src, i, qids[i])}: missing key '{key}'")
    cnt = np.array([len(r[key]) if isinstance(r[key], (list, tuple)) else -1 for r in rows], dtype=np.int64)
    if (cnt < 0).any():
        _scan_windows(rows, key, widths, src, qids)
    flat = list(itertools.chain.from_iterable(r[key] for r in rows))
    if flat:
        try:
            arr = np.array(flat)
        except (ValueError, TypeError):
            arr = None
        if arr is None or arr.ndim != 2 or arr.shape[1] not in widths or arr.dtype.kind not in "iuf":
            _scan_windows(rows, key, widths, src, qids)
        if holds_bool(itertools.chain.from_iterable(flat)):
            _scan_windows(rows, key, widths, src, qids)
        arr = arr.astype(np.float64)
    else:
        arr = np.zeros((0, max(widths)), dtype=np.float64)
    ptr = np.cumsum(cnt) - cnt
    row_of = np.repeat(np.arange(len(rows)), cnt)
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        i = int(row_of[j])
        raise InputError(f"{_where(src, i, qids[i])}: window {flat[j]!r} in '{key}' holds NaN or infinity")
    # Times are seconds from the video's start: a negative start is a broken file (the reference models clip
    # their outputs to [0, duration] and no dataset annotates before 0), not something to score.
    bad = arr[:, 0] < 0
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        i = int(row_of[j])
        raise InputError(f"{_where(src, i, qids[i])}: window {flat[j]!r} in '{key}' has a negative start")
    bad = arr[:, 0] > arr[:, 1]
    if positive_length:
        bad |= arr[:, 0] == arr[:, 1]
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        i = int(row_of[j])
        problem = "has start > end"
        if arr[j, 0] == arr[j, 1]:
            problem = "has zero length (a ground-truth window needs end > start)"
        raise InputError(f"{_where(src, i, qids[i])}: window {flat[j]!r} in '{key}' {problem}")
    score = arr[:, 2].copy() if arr.shape[1] >= 3 else None
    return Windows(arr[:, 0].copy(), arr[:, 1].copy(), score, ptr, cnt)


def parse_numbers(rows: Sequence[Mapping], key: str, src: str, qids: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """``rows[i][key]`` (lists of finite numbers) as one flat float array and the per-row counts."""
    for i, row in enumerate(rows):
        if key not in row:
            raise InputError(f"{_where(src, i, qids[i])}: missing key '{key}'")
        if not isinstance(row[key], (list, tuple)):
            raise InputError(f"{_where(src, i, qids[i])}: '{key}' must be a list of numbers")
    cnt = np.array([len(r[key]) for r in rows], dtype=np.int64)
    flat = list(itertools.chain.from_iterable(r[key] for r in rows))
    try:
        arr = np.array(flat) if flat else np.zeros(0)
    except (ValueError, TypeError):
        arr = None
    if arr is None or arr.ndim != 1 or arr.dtype.kind not in "iuf" or holds_bool(flat):
        for i, row in enumerate(rows):
            bad = [v for v in row[key] if isinstance(v, bool) or not isinstance(v, (int, float))]
            if bad:
                raise InputError(f"{_where(src, i, qids[i])}: '{key}' must be a list of numbers, holds {bad[0]!r}")
        raise InputError(f"{src}: '{key}' must hold lists of numbers")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.repeat(np.arange(len(rows)), cnt)[np.flatnonzero(bad)[0]])
        raise InputError(f"{_where(src, i, qids[i])}: '{key}' holds NaN or infinity")
    return arr, cnt


def sort_by_score(w: Windows, max_windows: int | None) -> tuple[Windows, np.ndarray]:
    """Keep each row's first ``max_windows`` windows **as listed**, then sort each row by descending score
    with a stable sort (tied scores keep list order). Returns the new table and each window's rank."""
    if max_windows is not None:
        w = w.select(w.local() < max_windows)
    row = w.row_of()
    order = np.lexsort((-w.score, row))
    sorted_w = Windows(w.start[order], w.end[order], w.score[order], w.ptr, w.cnt)
    return sorted_w, sorted_w.local()


def finite_number(value: Any, where: str, name: str) -> float:
    """``value`` as a finite float, else an error naming ``where`` and the field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{where}: '{name}' must be a finite number, got {value!r}")
    return float(value)


def paired_windows(
    ground_truth: Iterable[Any],
    predictions: Iterable[Any],
    gt_name: str,
    pred_name: str,
    pred_widths: tuple[int, ...],
) -> tuple[list[Any], Windows, Windows]:
    """Parse ``relevant_windows`` of the GT and ``pred_relevant_windows`` of the predictions, check the qid
    sets match, and return ``(qids, gt_windows, pred_windows)`` with both tables in GT row order.

    A GT row without any window is an error (recall would divide by zero).
    """
    gt = as_query_rows(ground_truth, gt_name)
    pred = as_query_rows(predictions, pred_name)
    if not gt:
        raise InputError(f"{gt_name}: no rows")
    gt_qids = qids_of(gt, gt_name)
    pred_qids = qids_of(pred, pred_name)
    check_same_qids(gt_qids, pred_qids, gt_name, pred_name)
    gt_w = parse_windows(gt, "relevant_windows", gt_name, gt_qids, (2,), positive_length=True)
    empty = np.flatnonzero(gt_w.cnt == 0)
    if len(empty):
        i = int(empty[0])
        raise InputError(f"{_where(gt_name, i, gt_qids[i])}: 'relevant_windows' is empty")
    pred_w = parse_windows(pred, "pred_relevant_windows", pred_name, pred_qids, pred_widths)
    index = {q: i for i, q in enumerate(pred_qids)}
    return gt_qids, gt_w, pred_w.take_rows(np.array([index[q] for q in gt_qids], dtype=np.int64))
