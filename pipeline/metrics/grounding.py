"""Single-moment grounding metrics (Charades-STA, TACoS style): R@k at IoU thresholds and mIoU.

* The top-1 prediction is the highest-scored window (stable: tied scores keep list order); windows given
  without a score (``[s, e]``) keep their listed order.
* R{k}@τ = fraction of queries where one of the top-k windows has IoU ≥ τ with a GT window (≥, so an IoU
  of exactly τ passes). mIoU = mean IoU of the top-1 window.
* A query with several GT windows uses the best-overlapping one; IoU uses the hull union (moment_detr's R1
  formula, identical to inter / union for overlapping windows).
* A query with no predicted window scores IoU 0 (``MetricsWarning``).
* Numbers are percentages rounded like the QVHighlights evaluator, ``float(f"{100 * x:.2f}")``.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from pipeline.core.io import InputError
from pipeline.metrics import _core, _inputs

GROUNDING_THRESHOLDS = (0.3, 0.5, 0.7)


def ranked_best_iou(gt: _inputs.Windows, pred: _inputs.Windows) -> tuple[np.ndarray, np.ndarray]:
    """Best IoU of each predicted window with its query's GT windows, and the window's rank in its query
    (descending score, stable, when scored; listed order otherwise). Both arrays follow the ranked table,
    whose rows (``pred.ptr``/``pred.cnt``) are those of ``pred``."""
    if pred.score is not None:
        pred, rank = _inputs.sort_by_score(pred, None)
    else:
        rank = pred.local()
    row = pred.row_of()
    pair_pred, pair_gt, _ = _core.segment_pairs(row, gt.ptr, gt.cnt)
    iou = _core.iou_hull(pred.start[pair_pred], pred.end[pair_pred], gt.start[pair_gt], gt.end[pair_gt])
    best = np.zeros(len(row))
    np.maximum.at(best, pair_pred, iou)
    return best, rank


def grounding_eval(
    ground_truth: Iterable[Any],
    predictions: Iterable[Any],
    ious: Sequence[float] = GROUNDING_THRESHOLDS,
    top_k: Sequence[int] = (1,),
    *,
    ground_truth_name: str = "ground truth",
    predictions_name: str = "predictions",
) -> dict:
    """R{k}@IoU and mIoU of moment grounding predictions.

    Args:
        ground_truth: one row per query: ``{"qid", "relevant_windows": [[s, e], ...]}`` (or ``schema.Query``).
        predictions: one row per query: ``{"qid", "pred_relevant_windows": [[s, e, score], ...]}`` or
            ``[[s, e], ...]`` (ranked as listed). The qid sets must match.
        ious: IoU thresholds. top_k: the k of R{k} (1 = R1).
    Returns:
        ``{"R1@0.3": x, "R1@0.5": x, "R1@0.7": x, ..., "mIoU": x, "num_queries": n}`` in percent.
    Raises:
        InputError: malformed rows or qid sets that differ (naming the row).
    """
    if not ious or any(not (0 <= float(t) <= 1) for t in ious):
        raise InputError(f"IoU thresholds must lie in [0, 1], got {list(ious)}")
    if not top_k or any(int(k) < 1 for k in top_k):
        raise InputError(f"top_k values must be ≥ 1, got {list(top_k)}")
    qids, gt, pred = _inputs.paired_windows(ground_truth, predictions, ground_truth_name, predictions_name, (2, 3))
    n_q = len(qids)
    n_empty = int((pred.cnt == 0).sum())
    if n_empty:
        _core.warn(f"{n_empty} quer{'y' if n_empty == 1 else 'ies'} with no predicted window: IoU 0")
    best, rank = ranked_best_iou(gt, pred)
    row = pred.row_of()
    out: dict[str, Any] = {}
    for k in top_k:
        top = np.zeros(n_q)
        sel = rank < int(k)
        np.maximum.at(top, row[sel], best[sel])
        for t in ious:
            out[f"R{int(k)}@{_core.thr_key(t)}"] = _core.pct(np.mean(top >= float(t)))
    top1 = np.zeros(n_q)
    first = rank == 0
    top1[row[first]] = best[first]
    out["mIoU"] = _core.pct(np.mean(top1))
    out["num_queries"] = n_q
    return out
