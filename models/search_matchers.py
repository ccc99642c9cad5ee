"""Query–moment assignments for the search DETR: the 1-to-1 Hungarian matcher and the alternatives of thesis
Tab 3.5 / 3.6 (``search_vmr.model.matcher``), written from the cited papers' descriptions.

* ``one_to_one`` (DETR [94], the default): Hungarian matching, each GT moment supervises exactly one query.
* ``one_to_k`` (the "1-to-5" / "1-to-k" rows, [129]/[178]): replaces the 1-to-1 matcher; every GT moment takes
  its ``match_k`` lowest-cost queries (``match_k`` 0 = every query), a query claimed by several moments keeps
  the cheapest one.
* ``group`` (Group DETR [150]): the queries are split into ``match_groups`` contiguous groups and each group is
  matched 1-to-1 on its own, so every moment supervises one query per group. Difference from the paper: the
  groups are the model's own queries (all of them predict at inference and the decoder self-attention is not
  made group-wise); Group DETR adds training-only query groups.
* ``hybrid`` (H-DETR [155]): the 1-to-1 loss plus ``o2m_weight`` × a one-to-many loss whose assignment is the
  Hungarian matching against the GT moments repeated ``match_k`` times (at most as many copies as fit in the
  queries). Difference: H-DETR's one-to-many branch has its own training-only queries; here it acts on the
  same queries (H-DETR's "hybrid layer" reading).
* ``mixed`` (MS-DETR [201]): the 1-to-1 loss plus ``o2m_weight`` × a one-to-many loss with the ``one_to_k``
  assignment on the same queries' predictions (MS-DETR's mixed supervision of the primary decoder; its
  separate one-to-many heads and IoU-aware selection are not reproduced).

Every function returns ``(query indices, target indices)`` numpy arrays, as :func:`models.common.hungarian_match`.
"""
from __future__ import annotations

import numpy as np
import torch

from models.common import hungarian_match

MATCHERS = ("one_to_one", "one_to_k", "group", "hybrid", "mixed")


def _np(cost: torch.Tensor | np.ndarray) -> np.ndarray:
    return cost.detach().float().cpu().numpy() if isinstance(cost, torch.Tensor) else np.asarray(cost, np.float64)


def top_k_assignment(cost: torch.Tensor | np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each target (column) takes its ``k`` lowest-cost queries (``k`` ≤ 0: all); a query claimed by several
    targets keeps the one with the lowest cost. Rows sorted."""
    c = _np(cost)
    Q, n = c.shape
    if c.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    k = Q if k <= 0 else min(k, Q)
    claim = np.full((Q, n), np.inf)
    for j in range(n):
        rows = np.argsort(c[:, j], kind="stable")[:k]
        claim[rows, j] = c[rows, j]
    rows = np.flatnonzero(np.isfinite(claim).any(1))
    return rows.astype(np.int64), claim[rows].argmin(1).astype(np.int64)


def group_assignment(cost: torch.Tensor | np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """1-to-1 Hungarian matching inside each of ``groups`` contiguous query groups (Group DETR)."""
    c = _np(cost)
    qi, ti = [], []
    for chunk in np.array_split(np.arange(c.shape[0]), max(1, groups)):
        if len(chunk) == 0:
            continue
        r, t = hungarian_match(c[chunk])
        qi.append(chunk[r])
        ti.append(t)
    if not qi:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    q, t = np.concatenate(qi), np.concatenate(ti)
    order = np.argsort(q, kind="stable")
    return q[order].astype(np.int64), t[order].astype(np.int64)


def repeated_assignment(cost: torch.Tensor | np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian matching against the targets repeated ``k`` times (H-DETR's one-to-many assignment), capped at
    ``Q // n`` copies so every copy can be matched; target indices map back to the original targets."""
    c = _np(cost)
    Q, n = c.shape
    if c.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    reps = max(1, min(k if k > 0 else Q, Q // n))
    r, t = hungarian_match(np.tile(c, (1, reps)))
    return r, (t % n).astype(np.int64)


def primary_assignment(cost: torch.Tensor | np.ndarray, matcher: str, k: int, groups: int):
    """The assignment of the main set loss for ``matcher`` (1-to-1 for ``hybrid`` / ``mixed``)."""
    if matcher == "one_to_k":
        return top_k_assignment(cost, k)
    if matcher == "group":
        return group_assignment(cost, groups)
    if matcher in ("one_to_one", "hybrid", "mixed"):
        return hungarian_match(cost)
    raise ValueError(f"unknown matcher {matcher!r} (one of {', '.join(MATCHERS)})")


def one_to_many_assignment(cost: torch.Tensor | np.ndarray, matcher: str, k: int):
    """The assignment of the extra one-to-many loss of ``hybrid`` / ``mixed`` (None for the other matchers)."""
    if matcher == "hybrid":
        return repeated_assignment(cost, k)
    if matcher == "mixed":
        return top_k_assignment(cost, k)
    return None
