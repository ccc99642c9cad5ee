"""Evaluation metrics: pure numpy functions, no torch. The CLI is ``python -m pipeline.evaluate``.

Public functions (see each docstring for the exact input rows and output dict):

* ``tal_map(ground_truth, predictions, thresholds=TAL_THRESHOLDS) -> dict`` — TAL mAP@tIoU, identical to
  ActionFormer's ``ANETdetection`` (fractions); ``load_anet_ground_truth(json, subset)`` reads its GT.
* ``qvhighlights_eval(submission, ground_truth) -> dict`` — MR/HD, the nested dict of moment_detr's
  ``eval_submission`` (percentages, same rounding).
* ``grounding_eval(ground_truth, predictions, ious=(0.3, 0.5, 0.7)) -> dict`` — R1@IoU and mIoU.
* ``search_eval(gt_queries, predictions, ious, splits=None, active_threshold=None) -> dict`` — R_m, mAP_m,
  mAP, R1 per split, plus active decoder-query statistics.

Where the reference evaluators are ambiguous or buggy, these rules hold (each module repeats its own):

1. Ties in prediction scores keep input order (stable sort) everywhere. moment_detr does this already;
   ActionFormer's ``argsort()[::-1]`` puts ties in an order that depends on array size and CPU.
2. Equal IoUs of one prediction with several GTs: the GT listed later is tried first (what
   ``argsort()[::-1]`` does on the small arrays of both references), made deterministic with a stable sort.
3. Two zero-length windows have IoU 0 (the references compute 0/0 = NaN, which then counts as a match).
4. TAL predictions of a label absent from the GT are dropped and counted (ActionFormer's ``Series.replace``
   remap can make them collide with another class's index).
5. A QVHighlights query with an empty window list scores 0 in mAP and R1 (the reference skips it in mAP
   and crashes in R1); an empty saliency list is a Hit1 miss and its AP is taken on zeros (the reference
   crashes). Both raise a ``MetricsWarning``.
6. An empty QVHighlights length bucket gives NaN numbers and a warning (the reference crashes).
7. Duplicate qids are an error (moment_detr merges the rows' windows in mAP and keeps the last in R1/HD);
   differing qid sets are an error naming the qids (the reference asserts).
8. Malformed input (missing key, non-number — JSON ``true``/``false`` included, which numpy would read as
   1/0 —, NaN/inf, a negative start, start > end, a query GT window with start ≥ end, clip id beyond the
   video, duration under one clip) raises ``pipeline.core.io.InputError`` naming the row and qid. The
   references accept all of these and score them; none occurs in a well-formed file (their models clip
   outputs to [0, duration]). TAL GT segments shorter than 1e-3 s are dropped and counted instead (rule 12).
9. Means over queries are taken in input order; moment_detr's worker pool returns per-query APs in
   completion order, so its last bit is not deterministic (never visible at 2 decimals in practice).
10. TAL thresholds are ``numpy.linspace(0.1, 0.5, 5)``'s floats (0.3 is 0.30000000000000004, so IoU 0.3
    fails it); QVHighlights thresholds are the exact two-decimal values (IoU 0.5 passes 0.5).
11. QVHighlights ``MR-R1`` lists 0.3…0.95 (moment_detr's current evaluator and its forks); older
    moment_detr commits list only 0.5…0.95 — the shared keys have identical values.
12. TAL GT clean-up follows current ActionFormer (drop segments shorter than 1e-3 s, then near-duplicates
    within 1e-3 s of a kept segment of the same label). Its first release dropped only duplicates;
    TriDet/OpenTAD drop only zero-length segments. ``tal_map(dedup=False)`` skips the clean-up.
13. A GT relevant clip id at or beyond ``int(duration / 2)``, or a duration under 2 s, is an error (the
    reference raises ``IndexError`` / fails an assertion). HD accepts any number of annotators per clip as
    long as every clip has the same number (QVHighlights has 3; the reference hard-codes 3).
"""

from pipeline.metrics._core import MetricsWarning, pct
from pipeline.metrics.grounding import GROUNDING_THRESHOLDS, grounding_eval
from pipeline.metrics.qvhighlights import MR_MAP_THRESHOLDS, MR_R1_THRESHOLDS, qvhighlights_eval
from pipeline.metrics.search import SEARCH_THRESHOLDS, search_eval
from pipeline.metrics.tal import TAL_THRESHOLDS, load_anet_ground_truth, tal_map

__all__ = [
    "GROUNDING_THRESHOLDS",
    "MR_MAP_THRESHOLDS",
    "MR_R1_THRESHOLDS",
    "MetricsWarning",
    "SEARCH_THRESHOLDS",
    "TAL_THRESHOLDS",
    "grounding_eval",
    "load_anet_ground_truth",
    "pct",
    "qvhighlights_eval",
    "search_eval",
    "tal_map",
]
