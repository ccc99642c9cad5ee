"""Temporal action localization mAP@tIoU, identical to ActionFormer's ``ANETdetection``.

* GT: segments shorter than 1e-3 s are dropped; so is a segment whose start and end are both within 1e-3 s
  of an already kept segment of the same label in the same video (input order decides which is kept).
* Classes = the sorted unique GT labels. A class with GT but no predictions has AP 0 and still counts.
* Per class: predictions over all videos sorted by descending score; greedy GT locking per video (IoU ≥
  threshold, GTs tried in descending IoU, ties → the GT listed later first); recall over the class's GT
  count; all-point interpolated AP. mAP@thr = mean over classes; ``average_mAP`` = mean over thresholds.
* Thresholds default to ``numpy.linspace(0.1, 0.5, 5)`` **as floats**: the third is 0.30000000000000004,
  so an IoU of exactly 0.3 fails it, as in the reference.
* Values are fractions (multiply by 100 to report).

Documented rules where the reference is ambiguous or buggy:
  * tied scores keep input order (stable sort). The reference uses numpy's default ``argsort()[::-1]``,
    whose order on ties depends on the array size and the CPU's SIMD sort, so it is not reproducible;
  * predictions whose label is absent from the GT are dropped and counted in ``dropped``. The reference
    remaps labels with ``Series.replace`` and leaves unknown ids unchanged, so such a prediction can collide
    with another class's remapped index and add false positives there;
  * a GT segment with start > end is an error (the reference keeps it and gives it negative length); so
    are a negative start and a boolean where a number belongs (in GT and predictions);
  * IoU of two zero-length segments is 0 (the reference gets NaN, which its loop counts as a match).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from pipeline.core.io import InputError
from pipeline.metrics import _core

TAL_THRESHOLDS = tuple(np.linspace(0.1, 0.5, 5).tolist())
GT_TOLERANCE = 1e-3
GT_FIELDS = ("video-id", "t-start", "t-end", "label")
PRED_FIELDS = ("video-id", "t-start", "t-end", "label", "score")


def load_anet_ground_truth(
    data: Mapping,
    subset: str | None = None,
    label_field: str = "label_id",
    src: str = "ground truth",
) -> list[dict]:
    """GT rows ``{"video-id", "t-start", "t-end", "label"}`` from an ActivityNet-style JSON.

    Args:
        data: the parsed JSON, ``{"database": {vid: {"subset": str, "annotations": [{"segment": [s, e],
            "label_id": int, ...}]}}}`` (the bare ``database`` mapping is accepted too).
        subset: keep only videos whose ``subset`` equals it, case-insensitively (None = all videos).
        label_field: annotation key holding the class (``label_id`` as ActionFormer; ``label`` for names).
        src: how error messages name the input.
    Rows come in file order (video order, then annotation order), which fixes the GT tie-break order.
    """
    db = data.get("database", data) if isinstance(data, Mapping) else None
    if not isinstance(db, Mapping):
        raise InputError(f"{src}: expected an object with a 'database' mapping")
    rows = []
    for vid, video in db.items():
        where = f"{src}: database[{vid!r}]"
        if not isinstance(video, Mapping) or not isinstance(video.get("annotations"), list):
            raise InputError(f"{where}: expected an object with an 'annotations' list")
        if subset is not None:
            if not isinstance(video.get("subset"), str):
                raise InputError(f"{where}: missing 'subset' (needed to filter by subset {subset!r})")
            if video["subset"].lower() != subset.lower():
                continue
        for j, ann in enumerate(video["annotations"]):
            seg = ann.get("segment") if isinstance(ann, Mapping) else None
            if not isinstance(seg, (list, tuple)) or len(seg) != 2:
                raise InputError(f"{where}.annotations[{j}]: expected 'segment': [start, end]")
            if label_field not in ann:
                raise InputError(f"{where}.annotations[{j}]: missing '{label_field}'")
            _check_segment(seg, f"{where}.annotations[{j}].segment")
            rows.append({"video-id": str(vid), "t-start": seg[0], "t-end": seg[1], "label": ann[label_field]})
    return rows


def _check_segment(seg: Sequence[Any], where: str) -> None:
    """A GT ``[start, end]`` of finite, non-boolean numbers with 0 ≤ start ≤ end, else an error at ``where``
    (checked here so that the message names the video and annotation rather than a flattened row).
    Zero-length segments pass: the reference's clean-up drops and counts them."""
    for name, v in zip(("start", "end"), seg):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise InputError(f"{where}: {name} must be a number, got {v!r}")
        if not np.isfinite(v):
            raise InputError(f"{where}: {name} is NaN or infinite")
    if seg[0] < 0:
        raise InputError(f"{where}: negative start {seg[0]}")
    if seg[0] > seg[1]:
        raise InputError(f"{where}: start {seg[0]} > end {seg[1]}")


def _columns(rows: Any, fields: Sequence[str], src: str) -> dict[str, np.ndarray]:
    """Rows (dicts with ``fields`` or sequences in that order) or a dict of columns → arrays, validated."""
    if isinstance(rows, Mapping) and all(f in rows for f in fields):
        cols = {f: list(rows[f]) if not isinstance(rows[f], np.ndarray) else rows[f] for f in fields}
        n = {len(c) for c in cols.values()}
        if len(n) > 1:
            raise InputError(f"{src}: columns {list(fields)} have different lengths {sorted(n)}")
    else:
        rows = list(rows)
        for i, r in enumerate(rows):
            if isinstance(r, Mapping):
                missing = [f for f in fields if f not in r]
                if missing:
                    raise InputError(f"{src}: row {i + 1}: missing {missing}")
            elif not isinstance(r, (list, tuple)) or len(r) != len(fields):
                raise InputError(f"{src}: row {i + 1}: expected {len(fields)} fields {list(fields)}, got {r!r}")
        cols = {f: [r[f] if isinstance(r, Mapping) else r[k] for r in rows] for k, f in enumerate(fields)}
    out: dict[str, np.ndarray] = {}
    for f in fields:
        if f in ("video-id", "label"):
            out[f] = np.asarray(cols[f])
            continue
        col = cols[f]
        try:
            arr = np.asarray(col, dtype=np.float64)
            ok = arr.ndim == 1 and (not isinstance(col, list) or not any(isinstance(v, (str, bool)) for v in col))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            i = next(
                (
                    k
                    for k, v in enumerate(col)
                    if isinstance(v, (str, bool)) or not isinstance(v, (int, float, np.integer, np.floating))
                ),
                None,
            )
            where = f"{src}: row {i + 1}" if i is not None else src
            raise InputError(f"{where}: '{f}' must be a number, got {col[i] if i is not None else col!r}")
        bad = ~np.isfinite(arr)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"{src}: row {i + 1}: '{f}' is NaN or infinite")
        out[f] = arr
    bad = out["t-start"] < 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{src}: row {i + 1}: 't-start' is negative ({out['t-start'][i]})")
    bad = out["t-start"] > out["t-end"]
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{src}: row {i + 1}: start {out['t-start'][i]} > end {out['t-end'][i]}")
    for f in ("video-id", "label"):
        if len(out[f]) and (out[f].ndim != 1 or out[f].dtype.kind not in "iuUS"):
            raise InputError(f"{src}: '{f}' values must be integers or strings (one kind for the whole input)")
    return out


def _dedup_ground_truth(
    vid: np.ndarray, label: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, int, int]:
    """Keep mask after dropping short segments and near-duplicates (see module docstring)."""
    keep = (end - start) >= GT_TOLERANCE
    n_short = int((~keep).sum())
    kept_by_key: dict[tuple, list[tuple[float, float]]] = {}
    n_dup = 0
    for i in np.flatnonzero(keep):
        key = (vid[i], label[i])
        s, e = start[i], end[i]
        kept = kept_by_key.setdefault(key, [])
        if any(abs(s - ks) <= GT_TOLERANCE and abs(e - ke) <= GT_TOLERANCE for ks, ke in kept):
            keep[i] = False
            n_dup += 1
        else:
            kept.append((s, e))
    return keep, n_short, n_dup


def tal_map(
    ground_truth: Iterable[Any] | Mapping[str, Sequence],
    predictions: Iterable[Any] | Mapping[str, Sequence],
    thresholds: Sequence[float] = TAL_THRESHOLDS,
    *,
    dedup: bool = True,
    ground_truth_name: str = "ground truth",
    predictions_name: str = "predictions",
) -> dict:
    """Mean average precision at temporal IoU thresholds, as ActionFormer's ``ANETdetection``.

    Args:
        ground_truth: rows ``{"video-id", "t-start", "t-end", "label"}`` (or tuples in that order, or a dict
            of equal-length columns with those keys), e.g. from ``load_anet_ground_truth``.
        predictions: rows ``{"video-id", "t-start", "t-end", "label", "score"}`` (same three shapes).
            Labels must be of the same kind as the GT's (all integers or all strings).
        thresholds: tIoU thresholds; keep the default's exact floats to match published numbers.
        dedup: apply the reference's GT clean-up (short segments, near-duplicates).
        ground_truth_name, predictions_name: how error messages name the inputs.

    Returns:
        ``{"thresholds": [...], "mAP": {"0.1": ap, ...}, "average_mAP": x, "per_class_AP": {label: {"0.1":
        ap, ...}}, "num_classes", "num_ground_truth", "num_predictions", "dropped": {"gt_short",
        "gt_duplicate", "predictions_absent_class"}}`` — fractions, unrounded.

    Raises:
        InputError: a missing field, a non-number, NaN/inf, start > end (the message names the row), or
            GT/prediction labels of different kinds.
    """
    thr = np.asarray([float(t) for t in thresholds], dtype=np.float64)
    if len(thr) == 0 or not np.all(np.isfinite(thr)):
        raise InputError(f"thresholds must be a non-empty list of finite numbers, got {list(thresholds)}")
    gt = _columns(ground_truth, GT_FIELDS, ground_truth_name)
    pr = _columns(predictions, PRED_FIELDS, predictions_name)
    if len(gt["label"]) == 0:
        raise InputError(f"{ground_truth_name}: no ground-truth segment")
    if len(pr["label"]) and (gt["label"].dtype.kind in "iu") != (pr["label"].dtype.kind in "iu"):
        raise InputError(
            f"{predictions_name}: labels are {'integers' if pr['label'].dtype.kind in 'iu' else 'strings'} but "
            f"{ground_truth_name} labels are {'integers' if gt['label'].dtype.kind in 'iu' else 'strings'}"
        )
    gt_vid = gt["video-id"].astype(str)
    n_short = n_dup = 0
    if dedup:
        keep, n_short, n_dup = _dedup_ground_truth(gt_vid, gt["label"], gt["t-start"], gt["t-end"])
        gt = {k: v[keep] for k, v in gt.items()}
        gt_vid = gt_vid[keep]
    if len(gt["label"]) == 0:
        raise InputError(f"{ground_truth_name}: every ground-truth segment is shorter than {GT_TOLERANCE} s")

    classes = np.unique(gt["label"])
    gt_cls = np.searchsorted(classes, gt["label"])
    pr_cls = np.searchsorted(classes, pr["label"]) if len(pr["label"]) else np.zeros(0, dtype=np.int64)
    known = pr_cls < len(classes)
    known[known] = classes[pr_cls[known]] == pr["label"][known]
    n_absent = int((~known).sum())
    if n_absent:
        absent = sorted({str(x) for x in pr["label"][~known]})[:10]
        _core.warn(f"{n_absent} prediction(s) of labels absent from the ground truth dropped: {absent}")
    pr = {k: v[known] for k, v in pr.items()}
    pr_cls = pr_cls[known]
    pr_vid = pr["video-id"].astype(str)

    videos, vid_idx = np.unique(np.concatenate([gt_vid, pr_vid]), return_inverse=True)
    gt_v, pr_v = vid_idx[: len(gt_vid)], vid_idx[len(gt_vid) :]
    n_vid = len(videos)

    # GT grouped by (class, video), listed order inside each group.
    gt_gid = gt_cls.astype(np.int64) * n_vid + gt_v
    g_order = np.argsort(gt_gid, kind="stable")
    gt_gid_sorted = gt_gid[g_order]
    uniq, g_ptr, g_cnt = np.unique(gt_gid_sorted, return_index=True, return_counts=True)
    g_ptr = np.r_[g_ptr, 0]
    g_cnt = np.r_[g_cnt, 0]  # the last group is "no GT here"

    # Predictions sorted by class, then descending score (stable: ties keep input order).
    p_order = np.lexsort((-pr["score"], pr_cls))
    p_cls = pr_cls[p_order]
    p_gid = p_cls.astype(np.int64) * n_vid + pr_v[p_order]
    pos = np.searchsorted(uniq, p_gid)
    has_gt = pos < len(uniq)
    has_gt[has_gt] = uniq[pos[has_gt]] == p_gid[has_gt]
    p_group = np.where(has_gt, pos, len(uniq))
    tp = _core.greedy_match(
        p_group,
        _core.rank_within_groups(p_group),
        pr["t-start"][p_order],
        pr["t-end"][p_order],
        g_ptr,
        g_cnt,
        gt["t-start"][g_order],
        gt["t-end"][g_order],
        thr,
    )

    n_cls = len(classes)
    ap = np.zeros((len(thr), n_cls))
    c_bounds = np.searchsorted(p_cls, np.arange(n_cls + 1))
    npos = np.bincount(gt_cls, minlength=n_cls)
    for c in range(n_cls):
        lo, hi = c_bounds[c], c_bounds[c + 1]
        if hi == lo:
            continue
        ap[:, c] = _core.ap_rows(tp[lo:hi].T, np.full(len(thr), hi - lo), np.full(len(thr), npos[c]))
    m_ap = ap.mean(axis=1)
    keys = [_core.thr_key(t) for t in thr]
    return {
        "thresholds": thr.tolist(),
        "mAP": dict(zip(keys, m_ap.tolist())),
        "average_mAP": float(m_ap.mean()),
        "per_class_AP": {_label_key(c): dict(zip(keys, ap[:, k].tolist())) for k, c in enumerate(classes)},
        "num_classes": n_cls,
        "num_ground_truth": int(len(gt_cls)),
        "num_predictions": int(len(pr_cls)),
        "dropped": {"gt_short": n_short, "gt_duplicate": n_dup, "predictions_absent_class": n_absent},
    }


def _label_key(label: Any) -> str:
    return str(label.item() if hasattr(label, "item") else label)
