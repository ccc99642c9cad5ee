"""Numerical core shared by every metric: IoU, greedy GT locking, all-point AP, rounding.

Everything here is vectorised numpy and written so that each float is produced by the same operations, in
the same order, as the public reference evaluators (moment_detr's ``standalone_eval`` and ActionFormer's
``ANETdetection``). Where summation order matters for the last bit (numpy's pairwise ``np.sum``), sums are
taken over arrays laid out exactly like the reference's (see ``sum_compact``).

This module keeps its own numpy IoU instead of ``models.common.temporal_iou_np`` on purpose: metrics must
import without torch, and the references define IoU slightly differently from the training helper (a
zero-length union gives 0 here, never a division by a clamped epsilon).
"""

from __future__ import annotations

import warnings

import numpy as np


class MetricsWarning(UserWarning):
    """Something in the inputs was scored by a documented rule that differs from the reference's crash/skip."""


def warn(message: str) -> None:
    """Emit a ``MetricsWarning`` (the CLI prints these to stderr)."""
    warnings.warn(message, MetricsWarning, stacklevel=3)


def pct(x: float) -> float:
    """``100 * x`` rounded to 2 decimals with Python's correctly rounded formatting, as the reference prints.

    ``np.round`` rounds half-way binary values differently, so it must not be used for reported numbers.
    """
    return float(f"{100 * x:.2f}")


def thr_key(t: float) -> str:
    """Dictionary key of an IoU threshold: ``0.30000000000000004`` → ``"0.3"``, ``0.75`` → ``"0.75"``."""
    return repr(round(float(t), 10))


# ----------------------------------------------------------------------------- IoU


def iou_sum(ps: np.ndarray, pe: np.ndarray, gs: np.ndarray, ge: np.ndarray) -> np.ndarray:
    """Elementwise IoU with union = len_pred + len_gt − inter (the references' mAP formula).

    Broadcasts like numpy. A zero union (two zero-length windows) gives 0; the references give NaN there,
    which their matching loop then counts as a match — we treat it as no overlap.
    """
    inter = np.clip(np.minimum(pe, ge) - np.maximum(ps, gs), 0, None)
    union = (pe - ps) + (ge - gs) - inter
    out = np.zeros(np.broadcast(inter, union).shape, dtype=np.float64)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def iou_hull(ps: np.ndarray, pe: np.ndarray, gs: np.ndarray, ge: np.ndarray) -> np.ndarray:
    """Elementwise IoU with union = convex hull length (moment_detr's R1 formula; equal to ``iou_sum`` for
    overlapping windows up to the last bit, and 0 for disjoint ones). A zero hull gives 0."""
    inter = np.maximum(0, np.minimum(pe, ge) - np.maximum(ps, gs))
    union = np.maximum(pe, ge) - np.minimum(ps, gs)
    out = np.zeros(np.broadcast(inter, union).shape, dtype=np.float64)
    np.divide(inter, union, out=out, where=union != 0)
    return out


# ----------------------------------------------------------------------------- grouping helpers


def rank_within_groups(group: np.ndarray) -> np.ndarray:
    """0-based position of each element among the elements of its group, in array order."""
    n = len(group)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(group, kind="stable")
    g_sorted = group[order]
    starts = np.r_[True, g_sorted[1:] != g_sorted[:-1]]
    start_pos = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - start_pos
    return rank


def segment_pairs(
    pred_group: np.ndarray, gt_ptr: np.ndarray, gt_cnt: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (prediction, GT) pairs that share a group.

    GTs of group ``g`` are rows ``gt_ptr[g] : gt_ptr[g] + gt_cnt[g]``. Returns ``(pair_pred, pair_gt,
    local)`` where ``local`` is the GT's position inside its group (its listed order).
    """
    counts = gt_cnt[pred_group]
    total = int(counts.sum())
    pair_pred = np.repeat(np.arange(len(pred_group)), counts)
    offsets = np.cumsum(counts) - counts
    local = np.arange(total) - offsets[pair_pred]
    pair_gt = gt_ptr[pred_group][pair_pred] + local
    return pair_pred, pair_gt, local


# ----------------------------------------------------------------------------- greedy matching


def greedy_match(
    pred_group: np.ndarray,
    pred_rank: np.ndarray,
    pred_start: np.ndarray,
    pred_end: np.ndarray,
    gt_ptr: np.ndarray,
    gt_cnt: np.ndarray,
    gt_start: np.ndarray,
    gt_end: np.ndarray,
    thresholds: np.ndarray,
) -> np.ndarray:
    """True-positive flags ``[N, T]`` of the reference's greedy GT-locking match, at every threshold.

    Predictions are processed group by group in ``pred_rank`` order (0 first). Each prediction tries the GTs
    of its group in descending IoU — equal IoUs: the GT listed later first (a stable ascending sort reversed,
    which is what ``argsort()[::-1]`` does in the references) — skipping GTs already locked at that threshold;
    the first one with IoU ≥ threshold becomes a true positive and is locked; otherwise the prediction is a
    false positive. Because the order is descending, "stop at the first IoU below threshold" and "take the
    first unlocked candidate at or above threshold" are the same rule.

    Vectorised across groups: all predictions of the same rank live in different groups, so they can be
    decided at once. Loop length = the largest number of overlapping predictions in one group.
    """
    n, n_t = len(pred_group), len(thresholds)
    tp = np.zeros((n, n_t), dtype=bool)
    if n == 0 or len(gt_start) == 0 or n_t == 0:
        return tp
    pair_pred, pair_gt, local = segment_pairs(pred_group, gt_ptr, gt_cnt)
    iou = iou_sum(pred_start[pair_pred], pred_end[pair_pred], gt_start[pair_gt], gt_end[pair_gt])
    keep = iou >= thresholds.min()  # pairs that can never match at any threshold are irrelevant
    pair_pred, pair_gt, local, iou = pair_pred[keep], pair_gt[keep], local[keep], iou[keep]
    if len(pair_pred) == 0:
        return tp
    order = np.lexsort((-local, -iou, pair_pred))
    c_pred, c_gt, c_iou = pair_pred[order], pair_gt[order], iou[order]
    c_cnt = np.bincount(c_pred, minlength=n)
    c_ptr = np.cumsum(c_cnt) - c_cnt

    # Dense rank among the predictions that have candidates, so the loop skips predictions that are false
    # positives whatever happens.
    active = np.flatnonzero(c_cnt > 0)
    active = active[np.lexsort((pred_rank[active], pred_group[active]))]
    dense = rank_within_groups(pred_group[active])
    by_rank = np.argsort(dense, kind="stable")
    bounds = np.searchsorted(dense[by_rank], np.arange(dense.max() + 2))

    locked = np.zeros((len(gt_start), n_t), dtype=bool)
    t_idx = np.arange(n_t)
    for r in range(len(bounds) - 1):
        rows = active[by_rank[bounds[r] : bounds[r + 1]]]
        cnt = c_cnt[rows]
        width = int(cnt.max())
        col = np.arange(width)
        valid = col[None, :] < cnt[:, None]
        idx = np.where(valid, c_ptr[rows][:, None] + col[None, :], 0)
        gts = c_gt[idx]
        ious = np.where(valid, c_iou[idx], -np.inf)
        avail = (ious[:, :, None] >= thresholds[None, None, :]) & ~locked[gts]
        first = avail.argmax(axis=1)  # [rows, T]
        hit = np.take_along_axis(avail, first[:, None, :], axis=1)[:, 0, :]
        tp[rows] = hit
        chosen = np.take_along_axis(gts, first, axis=1)
        locked[chosen[hit], np.broadcast_to(t_idx, hit.shape)[hit]] = True
    return tp


# ----------------------------------------------------------------------------- AP


def sum_prefixes(compact: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``np.sum(compact[r, :counts[r]])`` for every row r, bit-identical to summing that 1-D slice.

    numpy sums pairwise, so the last bit depends on the array the terms sit in; rows with the same count are
    summed together (numpy's row sums equal its 1-D sums bit for bit). A row with count 0 sums to 0.0.
    """
    sums = np.zeros(len(compact), dtype=np.float64)
    if len(counts) == 0 or counts.max() == 0:
        return sums
    by_count = np.argsort(counts, kind="stable")
    bounds = np.searchsorted(counts[by_count], np.arange(int(counts.max()) + 2))
    for m in range(1, len(bounds) - 1):
        if bounds[m + 1] > bounds[m]:
            sel = by_count[bounds[m] : bounds[m + 1]]
            sums[sel] = np.sum(compact[sel, :m], axis=1)
    return sums


def sum_compact(terms: np.ndarray, mask: np.ndarray, reverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Row sums of ``terms`` over ``mask``, bit-identical to ``np.sum`` of each row's selected terms laid
    out compactly in row order (or reversed) — which is how the reference evaluators sum them.
    Returns ``(sums, counts)``."""
    if reverse:
        terms, mask = terms[:, ::-1], mask[:, ::-1]
    counts = mask.sum(axis=1)
    if not counts.any():
        return np.zeros(len(terms), dtype=np.float64), counts
    rows, cols = np.nonzero(mask)  # row-major: selected columns in increasing order within each row
    starts = np.cumsum(counts) - counts
    compact = np.zeros((len(terms), int(counts.max())), dtype=np.float64)
    compact[rows, np.arange(len(rows)) - starts[rows]] = terms[rows, cols]
    return sum_prefixes(compact, counts), counts


def ap_rows(tp: np.ndarray, length: np.ndarray, npos: np.ndarray) -> np.ndarray:
    """All-point interpolated AP of each row of a ranked TP/FP table, exactly as the references compute it.

    ``tp[r, :length[r]]`` are the row's ranked predictions (True = TP, False = FP; later columns are
    padding), ``npos[r] > 0`` its number of GT. Precision = cumTP / (cumTP + cumFP), recall = cumTP / npos;
    pad precision with 0 at both ends and recall with 0 and 1, make precision non-increasing from the right,
    sum Δrecall × precision where recall changes. A row with no predictions has AP 0.
    """
    n_rows, width = tp.shape
    valid = np.arange(width)[None, :] < length[:, None]
    tp_f = (tp & valid).astype(np.float64)
    fp_f = (~tp & valid).astype(np.float64)
    tp_cum = np.cumsum(tp_f, axis=1)
    fp_cum = np.cumsum(fp_f, axis=1)
    rec = tp_cum / npos[:, None].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = np.where(valid, tp_cum / (tp_cum + fp_cum), 0.0)
    zeros = np.zeros((n_rows, 1))
    mprec = np.concatenate([zeros, prec, zeros], axis=1)
    mprec = np.maximum.accumulate(mprec[:, ::-1], axis=1)[:, ::-1]
    mrec = np.concatenate([zeros, rec, np.ones((n_rows, 1))], axis=1)
    change = mrec[:, 1:] != mrec[:, :-1]
    terms = (mrec[:, 1:] - mrec[:, :-1]) * mprec[:, 1:]
    sums, _ = sum_compact(terms, change)
    return sums
