"""QVHighlights moment retrieval (MR) and highlight detection (HD), identical to moment_detr's
``standalone_eval/eval.py`` (``eval_submission``): same numbers, same nested dict, same rounding.

Moment retrieval
  * mAP at IoU 0.5, 0.55, …, 0.95 over each query's first 10 windows **as listed**, sorted by descending
    score with a stable sort; greedy GT locking (``_core.greedy_match``); per-query all-point AP; mean over
    queries; ``average`` = mean of the 10 unrounded values.
  * R1 at IoU 0.3, 0.35, …, 0.95 from the **first listed** window (whatever its score) against the GT window
    it overlaps most; IoU with the hull union, as the reference.
  * Length buckets short (0, 10], middle (10, 30], long (30, 150] (GT window length, s): a query keeps only
    its in-bucket GT windows and leaves the bucket when none is left; ``full`` keeps everything.
Highlight detection (``pred_saliency_scores``, one score per 2-s clip)
  * GT matrix ``int(duration / 2)`` clips × annotators (3 in QVHighlights; any number, the same for every clip),
    binarised at ≥ 2 (Fair), ≥ 3 (Good), ≥ 4 (VeryGood).
  * HL-mAP: per query and annotator, the score list truncated / zero-padded to the clip count; AP as the
    video2gif/sklearn recipe (tied scores are one threshold; interpolated precision averaged over the distinct
    positive recall levels); all-negative labels → 0, all-positive → 1; mean over query × annotator pairs.
  * HL-Hit1: argmax of the raw score list (first index on ties); a hit if any annotator's binary label is 1
    there; an index beyond the clip count misses.
Every number is ``float(f"{100 * x:.2f}")``.

Documented rules where the reference is ambiguous or breaks (see also ``pipeline/metrics/__init__.py``):
  * empty ``pred_relevant_windows``: reference skips the query in mAP and crashes in R1 → scores 0 in both
    (``MetricsWarning``); empty ``pred_saliency_scores``: reference crashes in Hit1 → a miss, and AP is taken
    on an all-zero score list;
  * an empty length bucket: reference crashes → every number of that bucket is NaN (``MetricsWarning``);
  * the qid sets must match (the reference asserts); duplicate qids are an error (the reference silently
    merges the windows of both rows in mAP and keeps the last row in R1/HD);
  * MR is evaluated when any submission row has ``pred_relevant_windows`` (then every row must), HD likewise
    (the reference looks at the first row only and then raises ``KeyError``);
  * GT clip ids ≥ ``int(duration / 2)`` and a duration under 2 s are errors (the reference raises
    ``IndexError`` / fails an assertion);
  * the mean over queries is taken in submission order; the reference's worker pool returns per-query APs in
    completion order, so its last bit is not deterministic either.
"""

from __future__ import annotations

import itertools
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from pipeline.core.io import InputError
from pipeline.metrics import _core, _inputs
from pipeline.metrics._inputs import Windows

MR_MAP_THRESHOLDS = tuple(float(f"{t:.2f}") for t in np.linspace(0.5, 0.95, 10))
MR_R1_THRESHOLDS = tuple(float(f"{t:.2f}") for t in np.linspace(0.3, 0.95, 14))
LENGTH_BUCKETS = {"short": (0.0, 10.0), "middle": (10.0, 30.0), "long": (30.0, 150.0), "full": (0.0, 150.0)}
HD_LEVELS = {"Fair": 2, "Good": 3, "VeryGood": 4}  # increasing: eval_highlight relies on it
CLIP_LENGTH = 2.0
MAX_PRED_WINDOWS = 10


# ----------------------------------------------------------------------------- moment retrieval


def query_average_precision(
    pred: Windows,
    gt: Windows,
    thresholds: Sequence[float],
    max_windows: int | None = MAX_PRED_WINDOWS,
) -> np.ndarray:
    """Per-query AP ``[Q, T]`` of moment_detr's MR mAP (unrounded fractions).

    ``pred`` and ``gt`` hold the same Q rows in the same order (``pred.score`` required). ``max_windows``:
    how many windows of each row to keep, in listed order, before the stable descending score sort (None =
    all). A query without GT windows is an error of the caller; a query without predictions has AP 0.
    """
    thr = np.asarray(thresholds, dtype=np.float64)
    n_q = len(gt.cnt)
    sp, rank = _inputs.sort_by_score(pred, max_windows)
    row = sp.row_of()
    tp = _core.greedy_match(row, rank, sp.start, sp.end, gt.ptr, gt.cnt, gt.start, gt.end, thr)
    width = int(sp.cnt.max()) if n_q and len(sp.start) else 0
    table = np.zeros((n_q, len(thr), width), dtype=bool)
    table[row, :, rank] = tp
    length = np.repeat(sp.cnt, len(thr))
    npos = np.repeat(gt.cnt, len(thr))
    return _core.ap_rows(table.reshape(n_q * len(thr), width), length, npos).reshape(n_q, len(thr))


def first_window_iou(pred: Windows, gt: Windows) -> np.ndarray:
    """IoU of each query's first listed window with the GT window it overlaps most (moment_detr's R1 input).

    The best GT is chosen with the sum-union IoU (first one on ties), the reported IoU uses the hull union,
    as the reference does. A query without predictions gets IoU 0.
    """
    n_q = len(gt.cnt)
    has = pred.cnt > 0
    first = np.where(has, pred.ptr, 0)
    ps = pred.start[first] if len(pred.start) else np.zeros(n_q)
    pe = pred.end[first] if len(pred.end) else np.zeros(n_q)
    g_row = gt.row_of()
    cross = _core.iou_sum(ps[g_row], pe[g_row], gt.start, gt.end)
    width = int(gt.cnt.max()) if n_q else 0
    table = np.full((n_q, width), -np.inf)
    table[g_row, gt.local()] = cross
    best = gt.ptr + (table.argmax(axis=1) if width else 0)
    out = _core.iou_hull(ps, pe, gt.start[best], gt.end[best]) if width else np.zeros(n_q)
    return np.where(has, out, 0.0)


def _mr_bucket(pred: Windows, gt: Windows, name: str) -> dict:
    iou_keys = [str(t) for t in MR_MAP_THRESHOLDS]
    r1_keys = [str(t) for t in MR_R1_THRESHOLDS]
    if len(gt.cnt) == 0:
        _core.warn(f"QVHighlights length bucket '{name}' holds no query: its numbers are NaN")
        nan = float("nan")
        return {"MR-mAP": {**{k: nan for k in iou_keys}, "average": nan}, "MR-R1": {k: nan for k in r1_keys}}
    ap = query_average_precision(pred, gt, MR_MAP_THRESHOLDS)
    ap_thds = ap.mean(0)
    mr_map = dict(zip(iou_keys, ap_thds))
    mr_map["average"] = np.mean(ap_thds)
    iou = first_window_iou(pred, gt)
    r1 = {k: np.mean(iou >= t) for k, t in zip(r1_keys, MR_R1_THRESHOLDS)}
    return {"MR-mAP": {k: _core.pct(v) for k, v in mr_map.items()}, "MR-R1": {k: _core.pct(v) for k, v in r1.items()}}


def eval_moment_retrieval(pred: Windows, gt: Windows) -> dict:
    """``{"short"|"middle"|"long"|"full": {"MR-mAP": {...}, "MR-R1": {...}}}`` for aligned rows."""
    out = {}
    lengths = gt.end - gt.start
    for name, (lo, hi) in LENGTH_BUCKETS.items():
        if name == "full":
            out[name] = _mr_bucket(pred, gt, name)
            continue
        g = gt.select((lengths > lo) & (lengths <= hi))
        rows = np.flatnonzero(g.cnt > 0)
        out[name] = _mr_bucket(pred.take_rows(rows), g.take_rows(rows), name)
    return out


# ----------------------------------------------------------------------------- highlight detection


def _hd_ground_truth(gt_rows: Sequence[Mapping], qids: Sequence[Any], src: str) -> tuple[np.ndarray, np.ndarray]:
    """GT ratings ``[Q, A, C_max]`` (0 outside relevant clips, A annotators) and the clip count per query."""
    where = lambda i: f"{src}: row {i + 1} (qid {qids[i]!r})"  # noqa: E731
    n_clips = np.zeros(len(gt_rows), dtype=np.int64)
    for i, row in enumerate(gt_rows):
        for key in ("duration", "relevant_clip_ids", "saliency_scores"):
            if key not in row:
                raise InputError(f"{where(i)}: missing key '{key}' (needed for highlight detection)")
        duration = _inputs.finite_number(row["duration"], where(i), "duration")
        n_clips[i] = int(duration / CLIP_LENGTH)  # the reference's clip count
        if n_clips[i] <= 0:
            raise InputError(f"{where(i)}: duration {duration} s holds no {CLIP_LENGTH:g}-s clip")
        ids, scores = row["relevant_clip_ids"], row["saliency_scores"]
        if not isinstance(ids, list) or not isinstance(scores, list):
            raise InputError(f"{where(i)}: 'relevant_clip_ids' and 'saliency_scores' must be lists")
        if len(ids) != len(scores):
            raise InputError(f"{where(i)}: {len(ids)} relevant_clip_ids but {len(scores)} saliency_scores")
    cnt = np.array([len(r["relevant_clip_ids"]) for r in gt_rows], dtype=np.int64)
    row_of = np.repeat(np.arange(len(gt_rows)), cnt)
    ids = list(itertools.chain.from_iterable(r["relevant_clip_ids"] for r in gt_rows))
    scores = list(itertools.chain.from_iterable(r["saliency_scores"] for r in gt_rows))
    try:
        ids_arr = np.array(ids) if ids else np.zeros(0, np.int64)
        sc_arr = np.array(scores) if scores else np.zeros((0, 3))
        ok = ids_arr.ndim == 1 and ids_arr.dtype.kind in "iu" and sc_arr.ndim == 2 and sc_arr.dtype.kind in "iuf"
    except (ValueError, TypeError):
        ok = False
    # numpy reads a JSON true/false among numbers as 1/0: send such rows to the slow path, which names them
    ok = ok and not _inputs.holds_bool(itertools.chain(ids, itertools.chain.from_iterable(scores)))
    if not ok:
        for i, row in enumerate(gt_rows):
            if any(isinstance(v, bool) or not isinstance(v, int) for v in row["relevant_clip_ids"]):
                raise InputError(f"{where(i)}: 'relevant_clip_ids' must be integers")
            lens = {len(s) if isinstance(s, list) else -1 for s in row["saliency_scores"]}
            numbers = all(
                isinstance(v, (int, float)) and not isinstance(v, bool)
                for s in row["saliency_scores"]
                if isinstance(s, list)
                for v in s
            )
            if -1 in lens or len(lens) > 1 or not numbers:
                raise InputError(f"{where(i)}: 'saliency_scores' must hold one list of numeric ratings per clip")
        raise InputError(f"{src}: every clip must have the same number of annotator ratings")
    sc_arr = sc_arr.astype(np.float64)
    if not np.isfinite(sc_arr).all():
        i = int(row_of[np.flatnonzero(~np.isfinite(sc_arr).all(axis=1))[0]])
        raise InputError(f"{where(i)}: 'saliency_scores' holds NaN or infinity")
    bad = (ids_arr < 0) | (ids_arr >= n_clips[row_of])
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        i = int(row_of[j])
        raise InputError(
            f"{where(i)}: relevant_clip_ids must lie in [0, {n_clips[i]}) for duration "
            f"{gt_rows[i]['duration']} s, got {ids_arr[j]}"
        )
    n_ann = sc_arr.shape[1]
    ratings = np.zeros((len(gt_rows), n_ann, int(n_clips.max()) if len(gt_rows) else 0))
    ratings[row_of[:, None], np.arange(n_ann)[None, :], ids_arr[:, None]] = sc_arr
    return ratings, n_clips


def _rank_clips(scores: np.ndarray, n_clips: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Descending-score order of each row's first ``n_clips`` columns, the valid mask of the sorted
    positions, the last position of each tie group (a distinct score = one threshold) and, per position,
    the first position of its group."""
    width = scores.shape[1]
    pos = np.arange(width)
    valid = pos[None, :] < n_clips[:, None]
    order = np.argsort(np.where(valid, -scores, np.inf), axis=1, kind="stable")
    s = np.take_along_axis(scores, order, axis=1)
    differs = s[:, 1:] != s[:, :-1]
    last = np.ones_like(valid)
    last[:, :-1] = differs
    group_end = valid & (last | (pos[None, :] == n_clips[:, None] - 1))
    first = np.ones_like(valid)
    first[:, 1:] = differs
    group_start = np.maximum.accumulate(np.where(first, pos[None, :], 0), axis=1)
    return order, valid, group_end, group_start


def _hl_ap_sorted(y: np.ndarray, group_end: np.ndarray, group_start: np.ndarray, n_clips: np.ndarray) -> np.ndarray:
    """HL AP ``[Q, A]`` of binary labels ``y [Q, A, C]`` already in descending-score order (False past the
    clip count).

    sklearn's curve has one point per tie group; video2gif's AP is the plain mean, over the groups that
    contain a positive (where recall changes), of the precision interpolated toward higher recall, summed
    from the lowest-score group up. A group without positives never holds that maximum (its precision is
    below the previous group's), so only positive groups are materialised. All-negative → 0, all-positive → 1.
    """
    n_q, n_ann, width = y.shape
    tps = np.cumsum(y, axis=2, dtype=np.int32)
    if group_end.sum() == n_clips.sum():  # no tied scores anywhere: every clip is its own group
        included = y
    else:
        before = np.take_along_axis(tps, np.maximum(group_start - 1, 0)[:, None, :], axis=2)
        before = np.where((group_start > 0)[:, None, :], before, 0)
        included = group_end[:, None, :] & (tps > before)
    rows, cols = np.nonzero(included.reshape(-1, width))
    counts = np.bincount(rows, minlength=n_q * n_ann)
    k = np.arange(len(rows)) - (np.cumsum(counts) - counts)[rows]
    prec = tps.reshape(-1, width)[rows, cols] / (cols + 1.0)
    mat = np.zeros((n_q * n_ann, int(counts.max()) if len(rows) else 0))
    mat[rows, k] = prec
    interp = np.maximum.accumulate(mat[:, ::-1], axis=1)[:, ::-1]
    rev = np.zeros_like(mat)
    rev[rows, counts[rows] - 1 - k] = interp[rows, k]  # sklearn order: lowest-score group first
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = (_core.sum_prefixes(rev, counts) / counts).reshape(n_q, n_ann)
    n_pos = tps[:, :, -1] if width else np.zeros((n_q, n_ann))
    ap = np.where(n_pos == 0, 0.0, ap)
    return np.where(n_pos == n_clips[:, None], 1.0, ap)


def highlight_average_precision(scores: np.ndarray, labels: np.ndarray, n_clips: np.ndarray) -> np.ndarray:
    """HL AP ``[Q, A]`` (fractions) of clip scores ``[Q, C]`` and binary labels ``[Q, A, C]``; only the first
    ``n_clips[q]`` columns of row q count (the caller truncates / zero-pads the predicted list)."""
    order, valid, group_end, group_start = _rank_clips(scores, n_clips)
    y = np.take_along_axis(labels, order[:, None, :], axis=2) & valid[:, None, :]
    return _hl_ap_sorted(y, group_end, group_start, n_clips)


def eval_highlight(pred_scores: np.ndarray, pred_cnt: np.ndarray, ratings: np.ndarray, n_clips: np.ndarray) -> dict:
    """``{"HL-min-Fair"|"HL-min-Good"|"HL-min-VeryGood": {"HL-mAP": x, "HL-Hit1": y}}`` for aligned rows.

    ``pred_scores`` holds every query's raw score list back to back (``pred_cnt`` per query).
    """
    n_q, n_ann, width = ratings.shape
    row = np.repeat(np.arange(n_q), pred_cnt)
    local = np.arange(len(row)) - np.repeat(np.cumsum(pred_cnt) - pred_cnt, pred_cnt)
    keep = local < n_clips[row]  # truncate to the clip count; missing clips stay 0 (zero padding)
    padded = np.zeros((n_q, width))
    padded[row[keep], local[keep]] = pred_scores[keep]
    # Hit1: first index of the maximum of the raw list (not padded, not truncated)
    row_max = np.full(n_q, -np.inf)
    np.maximum.at(row_max, row, pred_scores)
    at_max = np.flatnonzero(pred_scores == row_max[row])
    first_rows, first_at = np.unique(row[at_max], return_index=True)
    top = np.full(n_q, -1)
    top[first_rows] = local[at_max[first_at]]
    in_range = (top >= 0) & (top < n_clips)

    order, valid, group_end, group_start = _rank_clips(padded, n_clips)
    # how many of the (increasing) levels each rating reaches, as int8: one cheap gather for all levels
    reached = np.zeros(ratings.shape, dtype=np.int8)
    for level in HD_LEVELS.values():
        reached += ratings >= level
    sorted_reached = np.take_along_axis(reached, order[:, None, :], axis=2)
    top_reached = reached[np.arange(n_q), :, np.clip(top, 0, max(width - 1, 0))]  # [Q, A]
    out = {}
    for k, name in enumerate(HD_LEVELS, start=1):
        ap = _hl_ap_sorted((sorted_reached >= k) & valid[:, None, :], group_end, group_start, n_clips)
        hit = in_range & (top_reached >= k).any(axis=1)
        out[f"HL-min-{name}"] = {
            "HL-mAP": _core.pct(np.mean(ap)),
            "HL-Hit1": _core.pct(np.mean(hit.astype(np.float64))),
        }
    return out


# ----------------------------------------------------------------------------- entry point


def qvhighlights_eval(
    submission: Iterable[Mapping],
    ground_truth: Iterable[Mapping],
    *,
    submission_name: str = "predictions",
    ground_truth_name: str = "ground truth",
) -> dict:
    """Evaluate a QVHighlights submission like moment_detr's ``eval_submission``.

    Args:
        submission: one dict per query: ``qid``, ``pred_relevant_windows`` ``[[start_s, end_s, score], ...]``
            (in the model's order) and/or ``pred_saliency_scores`` (one float per 2-s clip). Other keys
            (``vid``, ``query``) are ignored.
        ground_truth: one dict per query: ``qid``, ``relevant_windows`` ``[[s, e], ...]``; for HD also
            ``duration`` (s), ``relevant_clip_ids`` and ``saliency_scores`` (one list of annotator ratings,
            0–4, per relevant clip).
        submission_name, ground_truth_name: how error messages name the two inputs (the CLI passes paths).

    Returns:
        ``{"brief": {"MR-full-R1@0.5", "MR-full-R1@0.7", "MR-full-mAP", "MR-full-mAP@0.5",
        "MR-full-mAP@0.75", "MR-long-mAP", "MR-middle-mAP", "MR-short-mAP", "HL-min-Fair-mAP",
        "HL-min-Fair-Hit1", ..., "HL-min-VeryGood-Hit1"}, "HL-min-Fair": {"HL-mAP", "HL-Hit1"}, "HL-min-Good":
        ..., "HL-min-VeryGood": ..., "full": {"MR-mAP": {"0.5", ..., "0.95", "average"}, "MR-R1": {"0.3",
        ..., "0.95"}}, "long": ..., "middle": ..., "short": ...}`` — percentages with 2 decimals, keys in the
        reference's order. MR keys appear only when the submission has windows, HL keys only with saliency.

    Raises:
        InputError: malformed rows, duplicate qids, or qid sets that differ (the message names the row).
    """
    sub = _inputs.as_query_rows(submission, submission_name)
    gt = _inputs.as_query_rows(ground_truth, ground_truth_name)
    if not sub:
        raise InputError(f"{submission_name}: no rows")
    sub_qids = _inputs.qids_of(sub, submission_name)
    gt_qids = _inputs.qids_of(gt, ground_truth_name)
    _inputs.check_same_qids(gt_qids, sub_qids, ground_truth_name, submission_name)
    # GT is validated in its own row order (so errors name the right row), then aligned to the submission
    # order, which is the order the reference iterates in.
    by_qid = {q: i for i, q in enumerate(gt_qids)}
    align = np.array([by_qid[q] for q in sub_qids], dtype=np.int64)

    do_mr = any("pred_relevant_windows" in r for r in sub)
    do_hd = any("pred_saliency_scores" in r for r in sub)
    if not (do_mr or do_hd):
        raise InputError(f"{submission_name}: no row has 'pred_relevant_windows' or 'pred_saliency_scores'")
    metrics: dict[str, Any] = {}
    brief: dict[str, float] = {}
    if do_mr:
        pred_w = _inputs.parse_windows(sub, "pred_relevant_windows", submission_name, sub_qids, (3,))
        gt_w = _inputs.parse_windows(gt, "relevant_windows", ground_truth_name, gt_qids, (2,), positive_length=True)
        empty_gt = np.flatnonzero(gt_w.cnt == 0)
        if len(empty_gt):
            i = int(empty_gt[0])
            raise InputError(f"{ground_truth_name}: row {i + 1} (qid {gt_qids[i]!r}): 'relevant_windows' is empty")
        gt_w = gt_w.take_rows(align)
        n_empty = int((pred_w.cnt == 0).sum())
        if n_empty:
            _core.warn(
                f"{n_empty} quer{'y' if n_empty == 1 else 'ies'} with no predicted window: scored 0 in MR mAP and R1"
            )
        mr = eval_moment_retrieval(pred_w, gt_w)
        metrics.update(mr)
        brief_mr = {
            "MR-full-mAP": mr["full"]["MR-mAP"]["average"],
            "MR-full-mAP@0.5": mr["full"]["MR-mAP"]["0.5"],
            "MR-full-mAP@0.75": mr["full"]["MR-mAP"]["0.75"],
            "MR-short-mAP": mr["short"]["MR-mAP"]["average"],
            "MR-middle-mAP": mr["middle"]["MR-mAP"]["average"],
            "MR-long-mAP": mr["long"]["MR-mAP"]["average"],
            "MR-full-R1@0.5": mr["full"]["MR-R1"]["0.5"],
            "MR-full-R1@0.7": mr["full"]["MR-R1"]["0.7"],
        }
        brief.update(sorted(brief_mr.items()))
    if do_hd:
        scores, counts = _inputs.parse_numbers(sub, "pred_saliency_scores", submission_name, sub_qids)
        n_empty = int((counts == 0).sum())
        if n_empty:
            _core.warn(
                f"{n_empty} quer{'y' if n_empty == 1 else 'ies'} with no saliency score: a Hit1 miss, AP on zeros"
            )
        ratings, n_clips = _hd_ground_truth(gt, gt_qids, ground_truth_name)
        ratings, n_clips = ratings[align], n_clips[align]
        hd = eval_highlight(scores, counts, ratings, n_clips)
        metrics.update(hd)
        for k, v in hd.items():
            for sub_k, val in v.items():
                brief[f"{k}-{sub_k.split('-')[1]}"] = val
    result: dict[str, Any] = {"brief": brief}
    result.update(sorted(metrics.items()))
    return result
