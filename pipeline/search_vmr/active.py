"""Which decoder queries are *active* (thesis §3.4.2.1, Tab 3.5, Fig 3.7): the rule behind ``#active``.

The thesis counts, per evaluated query, the decoder queries "whose confidence does not vanish". Two rules
(``search_vmr.active_rule``), both applied to the raw per-slot predictions (``pred_query_windows``: one window
and foreground probability per decoder query, slot order, before NMS):

* ``relative`` (default): slot ``i`` is active for an eval query when ``p_i ≥ active_threshold · max_j p_j``
  (default 0.5: at least half as confident as that query's best slot).
* ``absolute``: ``p_i ≥ active_threshold`` (the earlier rule, kept for comparison).

Why relative: the label loss weights background by ``eos_coef`` (0.1), so a slot that is matched in a share
``f`` of the training samples settles near ``p = f / (f + eos_coef·(1 − f))`` and a never-matched slot decays
only slowly; the absolute level of ``p`` therefore tracks calibration and training length, and differs between
variants (QD changes ``f`` per slot), while "does not vanish" is a statement about a slot's score next to the
ones that win. A fixed small threshold counted every slot of an undertrained model as active (#active = Q for
every variant); the relative rule gives ≈ 1 for a model whose one slot dominates (collapse) and several for one
whose slots compete. A model whose slots are all equally unsure also counts Q — it has not collapsed, it has not
learnt; the R_m / mAP_m columns beside #active tell the two apart.

Index collapse (a fixed subset of slot *indices* doing all the work) is a property of the eval set, not of one
query: :func:`slot_usage` gives each slot's share of eval queries on which it is active and ``slots_used``, the
number of slots active on at least :data:`SLOT_SHARE` of them.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from pipeline.core.io import InputError

RULES = ("relative", "absolute")
SLOT_SHARE = 0.05  # a slot index is "used" when it is active on at least 5 % of the eval queries


def active_windows(windows: Sequence[Sequence[float]], rule: str, threshold: float) -> list[list[float]]:
    """The per-slot ``[start, end, score]`` rows with the score replaced by what ``threshold`` compares:
    ``score / max score`` of the query (``relative``) or the score itself (``absolute``), so the metric's
    ``score ≥ threshold`` test applies the rule."""
    if rule not in RULES:
        raise InputError(f"search_vmr.active_rule: {rule!r} is not one of {list(RULES)}")
    if rule == "absolute" or not windows:
        return [list(w) for w in windows]
    top = max(float(w[2]) for w in windows)
    if top <= 0:
        return [[w[0], w[1], 0.0] for w in windows]
    return [[w[0], w[1], float(w[2]) / top] for w in windows]


def active_mask(windows: Sequence[Sequence[float]], rule: str, threshold: float) -> np.ndarray:
    """[num_slots] bool: which slots of one query are active under ``rule``."""
    scored = active_windows(windows, rule, threshold)
    return np.array([w[2] >= threshold for w in scored], dtype=bool)


def slot_usage(qids: Sequence[str], preds: Mapping[str, dict], rule: str, threshold: float) -> dict:
    """``{"slots_used", "slot_share"}`` over the eval queries ``qids``: per slot index the share of queries on
    which it is active, and how many slots reach :data:`SLOT_SHARE` (index collapse shows as few)."""
    masks = [active_mask(preds[q]["pred_query_windows"], rule, threshold) for q in qids]
    if not masks:
        return {"slots_used": 0, "slot_share": []}
    n = max(len(m) for m in masks)
    share = np.zeros(n)
    for m in masks:
        share[: len(m)] += m
    share /= len(masks)
    return {"slots_used": int((share >= SLOT_SHARE).sum()), "slot_share": [round(float(s), 4) for s in share]}
