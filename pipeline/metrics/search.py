"""Metrics for search queries that map to several moments (thesis §3.3.3; DESIGN §8).

Per IoU threshold τ (default 0.1, 0.3, 0.5, 0.75), over each query's ranked predictions (first
``max_windows`` as listed, then stable descending score — the moment_detr rule):

* **R_m** (§3.3.3.4): for each GT moment g_j, walk the ranking skipping predictions that match another GT of
  the query but not g_j (IoU ≥ τ); g_j scores 1 iff the first prediction not skipped matches g_j. The printed
  Eq. 3.7/3.8 have sign typos; this is the intended meaning (Fig. 3.3).
* **mAP_m** (§3.3.3.5): for each g_j, drop the predictions that match another GT but not g_j; in what is
  left the first prediction matching g_j is the TP, everything else is FP (later matches are duplicates);
  all-point AP with one GT, which is exactly 1 / (rank of that TP) or 0.
  Both are averaged over **all GT moments** of the evaluated queries (each moment weighs the same).
* **mAP**: moment_detr's per-query AP (greedy GT locking) averaged over queries. **R1**: the top-ranked
  prediction matches any GT. On single-moment queries R_m == R1 and mAP_m == mAP exactly.
* **Active decoder queries** (§3.4.2): on *all* predictions of a query (no truncation), the active ones have
  score ≥ ``active_threshold``; per query: #active, %match P = fraction of active predictions with IoU ≥
  ``active_iou`` (0.1) to some GT, %match GT = fraction of GT moments with IoU ≥ ``active_iou`` to some
  active prediction. Reported as mean and (population) std over queries, as fractions like the thesis
  tables; a query with no active prediction has no %match P (left out of that mean) and %match GT 0.

IoU is inter / (len_p + len_g − inter) throughout (the mAP formula of the reference evaluators).
R_m, mAP_m, mAP and R1 are percentages rounded like the QVHighlights evaluator.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from pipeline.core.io import InputError
from pipeline.metrics import _core, _inputs
from pipeline.metrics.qvhighlights import query_average_precision

SEARCH_THRESHOLDS = (0.1, 0.3, 0.5, 0.75)
ACTIVE_IOU = 0.1


def per_moment_scores(gt: _inputs.Windows, pred: _inputs.Windows, thresholds: np.ndarray, max_windows: int | None):
    """``(R_m, AP_m)`` of every GT moment, each ``[n_gt, T]`` (0/1 and fractions), GT table order.

    Closed form of the definitions: with ``fp_before`` = the number of predictions ranked before g_j's first
    match that match no GT at all, R_m = [fp_before == 0] and AP_m = 1 / (1 + fp_before) (0 without a match).
    """
    n_gt, n_t = len(gt.start), len(thresholds)
    sp, rank = _inputs.sort_by_score(pred, max_windows)  # flat order = (query, rank)
    row = sp.row_of()
    if len(row) == 0:
        return np.zeros((n_gt, n_t)), np.zeros((n_gt, n_t))
    pair_pred, pair_gt, _ = _core.segment_pairs(row, gt.ptr, gt.cnt)
    iou = _core.iou_sum(sp.start[pair_pred], sp.end[pair_pred], gt.start[pair_gt], gt.end[pair_gt])
    match = iou[:, None] >= thresholds[None, :]  # [pairs, T]
    n_match = np.zeros((len(row), n_t), dtype=np.int64)
    np.add.at(n_match, pair_pred, match)
    pure_fp = (n_match == 0).astype(np.int64)
    fp_before = np.cumsum(pure_fp, axis=0) - pure_fp  # exclusive, then made per query below
    fp_before -= np.vstack([np.zeros((1, n_t), np.int64), np.cumsum(pure_fp, axis=0)])[sp.ptr][row]
    first = np.full((n_gt, n_t), np.iinfo(np.int64).max)
    p_idx, t_idx = np.nonzero(match)
    np.minimum.at(first, (pair_gt[p_idx], t_idx), pair_pred[p_idx])
    found = first < np.iinfo(np.int64).max
    before = np.where(found, fp_before[np.where(found, first, 0), np.arange(n_t)[None, :]], 0)
    r_m = (found & (before == 0)).astype(np.float64)
    ap_m = np.where(found, 1.0 / (1.0 + before), 0.0)
    return r_m, ap_m


def top1_hits(
    gt: _inputs.Windows, pred: _inputs.Windows, thresholds: np.ndarray, max_windows: int | None
) -> np.ndarray:
    """``[Q, T]`` booleans: the top-ranked prediction matches some GT of its query."""
    sp, rank = _inputs.sort_by_score(pred, max_windows)
    row = sp.row_of()
    top = np.flatnonzero(rank == 0)
    best = np.zeros(len(gt.cnt))
    pair_pred, pair_gt, _ = _core.segment_pairs(row[top], gt.ptr, gt.cnt)
    iou = _core.iou_sum(sp.start[top][pair_pred], sp.end[top][pair_pred], gt.start[pair_gt], gt.end[pair_gt])
    best_top = np.zeros(len(top))
    np.maximum.at(best_top, pair_pred, iou)
    has = np.zeros(len(gt.cnt), dtype=bool)
    has[row[top]] = True
    best[row[top]] = best_top
    return has[:, None] & (best[:, None] >= thresholds[None, :])


def active_query_stats(
    gt: _inputs.Windows, pred: _inputs.Windows, threshold: float, iou_thr: float
) -> dict[str, np.ndarray]:
    """Per-query arrays ``n_active``, ``match_p`` (NaN without active predictions) and ``match_gt``."""
    n_q = len(gt.cnt)
    active = pred.score >= threshold
    a = pred.select(active)
    a_row = a.row_of()
    n_active = np.bincount(a_row, minlength=n_q).astype(np.float64)
    pair_pred, pair_gt, _ = _core.segment_pairs(a_row, gt.ptr, gt.cnt)
    hit = _core.iou_sum(a.start[pair_pred], a.end[pair_pred], gt.start[pair_gt], gt.end[pair_gt]) >= iou_thr
    p_hit = np.zeros(len(a_row), dtype=bool)
    p_hit[pair_pred[hit]] = True
    g_hit = np.zeros(len(gt.start), dtype=bool)
    g_hit[pair_gt[hit]] = True
    with np.errstate(invalid="ignore", divide="ignore"):
        match_p = np.bincount(a_row, weights=p_hit, minlength=n_q) / n_active
    match_gt = np.bincount(gt.row_of(), weights=g_hit, minlength=n_q) / gt.cnt
    return {"n_active": n_active, "match_p": match_p, "match_gt": match_gt}


def _mean_std(x: np.ndarray) -> tuple[float, float]:
    x = x[~np.isnan(x)]
    return (float(np.mean(x)), float(np.std(x))) if len(x) else (float("nan"), float("nan"))


def search_eval(
    gt_queries: Iterable[Any],
    predictions: Iterable[Mapping],
    ious: Sequence[float] = SEARCH_THRESHOLDS,
    splits: Mapping[str, Sequence[Any]] | None = None,
    active_threshold: float | None = None,
    *,
    max_windows: int | None = 10,
    active_iou: float = ACTIVE_IOU,
    ground_truth_name: str = "ground truth",
    predictions_name: str = "predictions",
) -> dict:
    """R_m, mAP_m, mAP and R1 of search-query predictions, overall and per split, plus active-query stats.

    Args:
        gt_queries: one row per query: ``{"qid", "relevant_windows": [[s, e], ...]}`` (``vid`` ignored), or
            ``schema.Query`` objects (``qid``, ``windows``). Every query needs at least one window.
        predictions: one row per query: ``{"qid", "pred_relevant_windows": [[s, e, score], ...]}``; the qid
            set must equal the GT's.
        ious: IoU thresholds τ.
        splits: optional ``{"single": [qids], "multi": [qids], ...}`` (e.g. one entry of ``splits.json``);
            each named subset gets its own block. Every listed qid must be in the GT.
        active_threshold: score at which a prediction (decoder query) counts as active; None skips the stats.
        max_windows: windows kept per query (first ones as listed) for the ranking metrics; None keeps all.
        active_iou: IoU for %match P / %match GT.
    Returns:
        ``{"all": block, "<split>": block, ...}`` with ``block = {"num_queries", "num_moments", "R_m": {"0.1":
        pct, ...}, "mAP_m": {...}, "mAP": {...}, "R1": {...}}`` and, when ``active_threshold`` is set,
        ``block["active"] = {"threshold", "iou", "active_mean", "active_std", "match_p_mean",
        "match_p_std", "match_gt_mean", "match_gt_std", "queries_without_active"}``.
    Raises:
        InputError: malformed rows, qid sets that differ, or split qids missing from the GT.
    """
    thr = np.asarray([float(t) for t in ious], dtype=np.float64)
    if len(thr) == 0 or not ((thr >= 0) & (thr <= 1)).all():
        raise InputError(f"IoU thresholds must be a non-empty list in [0, 1], got {list(ious)}")
    if max_windows is not None and max_windows < 1:
        raise InputError(f"max_windows must be ≥ 1 or None, got {max_windows}")
    qids, gt, pred = _inputs.paired_windows(gt_queries, predictions, ground_truth_name, predictions_name, (3,))
    n_empty = int((pred.cnt == 0).sum())
    if n_empty:
        _core.warn(f"{n_empty} quer{'y' if n_empty == 1 else 'ies'} with no predicted window: scored 0")

    ap_q = query_average_precision(pred, gt, thr, max_windows)  # [Q, T]
    r1_q = top1_hits(gt, pred, thr, max_windows).astype(np.float64)
    r_m, ap_m = per_moment_scores(gt, pred, thr, max_windows)
    stats = None if active_threshold is None else active_query_stats(gt, pred, float(active_threshold), active_iou)
    gt_row = gt.row_of()

    subsets: dict[str, np.ndarray] = {"all": np.arange(len(qids))}
    index = {q: i for i, q in enumerate(qids)}
    for name, members in (splits or {}).items():
        if name == "all":
            raise InputError("splits: the name 'all' is reserved for the whole set")
        missing = [q for q in members if q not in index]
        if missing:
            raise InputError(
                f"splits[{name!r}]: {len(missing)} qid(s) not in {ground_truth_name} (first: {missing[0]!r})"
            )
        subsets[name] = np.unique(np.array([index[q] for q in members], dtype=np.int64))

    keys = [_core.thr_key(t) for t in thr]
    out = {}
    for name, rows in subsets.items():
        in_set = np.zeros(len(qids), dtype=bool)
        in_set[rows] = True
        moments = in_set[gt_row]
        block: dict[str, Any] = {"num_queries": int(len(rows)), "num_moments": int(moments.sum())}
        for metric, values in (
            ("R_m", r_m[moments]),
            ("mAP_m", ap_m[moments]),
            ("mAP", ap_q[rows]),
            ("R1", r1_q[rows]),
        ):
            means = values.mean(axis=0) if len(values) else np.full(len(thr), np.nan)
            block[metric] = {k: _core.pct(v) for k, v in zip(keys, means)}
        if stats is not None:
            mean_a, std_a = _mean_std(stats["n_active"][rows])
            mean_p, std_p = _mean_std(stats["match_p"][rows])
            mean_g, std_g = _mean_std(stats["match_gt"][rows])
            block["active"] = {
                "threshold": float(active_threshold),
                "iou": float(active_iou),
                "active_mean": mean_a,
                "active_std": std_a,
                "match_p_mean": mean_p,
                "match_p_std": std_p,
                "match_gt_mean": mean_g,
                "match_gt_std": std_g,
                "queries_without_active": int((stats["n_active"][rows] == 0).sum()),
            }
        if not len(rows):
            _core.warn(f"split {name!r} holds no query: its numbers are NaN")
        out[name] = block
    return out
