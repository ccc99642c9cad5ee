"""Anchor points, center-sampling label assignment and the task losses (thesis Eq. 2.1–2.3, notes §2–§3).

Every time value here is in level-0 feature-grid units (row index of the input features); regression
outputs and targets are in units of the level's stride.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from models.common import sigmoid_focal_loss


def anchor_points(level_lengths: list[int], regression_ranges: list[tuple[float, float]]) -> torch.Tensor:
    """All pyramid points as rows ``(t, range_lo, range_hi, stride)``, level by level.

    Level ``l`` has stride ``2**l`` and its points sit at ``t = i · 2**l`` (no half-stride offset).
    """
    if len(regression_ranges) < len(level_lengths):
        raise ValueError(f"{len(level_lengths)} pyramid levels but only {len(regression_ranges)} regression ranges")
    rows = []
    for level, length in enumerate(level_lengths):
        stride = float(2**level)
        t = torch.arange(length, dtype=torch.float32) * stride
        lo, hi = regression_ranges[level]
        rows.append(torch.stack([t, torch.full_like(t, lo), torch.full_like(t, hi), torch.full_like(t, stride)], 1))
    return torch.cat(rows, 0)


def assign_labels(
    points: torch.Tensor,
    segments: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    center_radius: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Match every point to ground truth (ActionFormer/TriDet rule, notes §2 "Label assignment").

    A (point, GT) pair qualifies when the point lies strictly inside the GT's centre region
    ``(max(c - r·stride, s), min(c + r·stride, e))`` (strictly inside ``(s, e)`` when ``center_radius`` ≤ 0)
    and ``lo ≤ max(t - s, e - t) ≤ hi`` (inclusive). Among qualifying GTs the shortest wins; GTs within 1e-3
    of that length all add their class (multi-label).

    Args:
        points: ``[P, 4]`` rows from :func:`anchor_points`.
        segments: ``[G, 2]`` GT (start, end) in grid units.
        labels: ``[G]`` class indices in ``[0, num_classes)``.

    Returns:
        ``cls_targets [P, C]`` in {0, 1}, ``reg_targets [P, 2]`` (left, right) / stride (0 on negatives), and
        ``anchor_class [P]``: 1 + the class of the shortest matched GT, 0 for background anchors (SADA's
        ``c_z``; the first GT wins exact ties).
    """
    num_points = points.shape[0]
    if segments.numel() == 0:
        return (
            points.new_zeros(num_points, num_classes),
            points.new_zeros(num_points, 2),
            torch.zeros(num_points, dtype=torch.long, device=points.device),
        )
    t, lo, hi, stride = (points[:, i : i + 1] for i in range(4))
    start, end = segments[:, 0][None], segments[:, 1][None]
    left, right = t - start, end - t  # [P, G]
    if center_radius > 0:
        centre = 0.5 * (start + end)
        radius = center_radius * stride
        inside = torch.minimum(t - torch.maximum(centre - radius, start), torch.minimum(centre + radius, end) - t) > 0
    else:
        inside = torch.minimum(left, right) > 0
    reach = torch.maximum(left, right)
    in_range = (reach >= lo) & (reach <= hi)
    lengths = (end - start).expand(num_points, -1)
    lengths = torch.where(inside & in_range, lengths, torch.full_like(lengths, float("inf")))
    min_len, best = lengths.min(dim=1)
    positive = torch.isfinite(min_len)
    matched = (lengths <= min_len[:, None] + 1e-3) & torch.isfinite(lengths)
    one_hot = F.one_hot(labels.long(), num_classes).to(points.dtype)
    cls_targets = (matched.to(points.dtype) @ one_hot).clamp(max=1.0)
    idx = torch.arange(num_points, device=points.device)
    reg_targets = torch.stack([left[idx, best], right[idx, best]], 1) / stride
    reg_targets = reg_targets * positive[:, None].to(points.dtype)
    anchor_class = torch.where(positive, labels.long()[best] + 1, torch.zeros_like(best))
    return cls_targets, reg_targets, anchor_class


def diou_1d(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """1-D DIoU loss ``1 - IoU + (ρ / c)²`` between (left, right) offset pairs ``[N, 2]`` → ``[N]``."""
    lp, rp = pred[:, 0], pred[:, 1]
    lg, rg = target[:, 0], target[:, 1]
    inter = torch.minimum(lp, lg) + torch.minimum(rp, rg)
    union = (lp + rp) + (lg + rg) - inter
    iou = inter / union.clamp(min=eps)
    rho = 0.5 * ((rp - lp) - (rg - lg))
    enclosing = torch.maximum(lp, lg) + torch.maximum(rp, rg)
    return 1.0 - iou + (rho / enclosing.clamp(min=eps)) ** 2


class LossNormalizer:
    """EMA of the number of positive points, ``N ← m·N + (1 - m)·max(num_pos, 1)`` (notes §3).

    A plain Python float on purpose: it must stay out of the state dict and out of the model EMA.
    """

    def __init__(self, init: float, momentum: float):
        self.value = float(init)
        self.momentum = float(momentum)

    def update(self, num_pos: int) -> float:
        self.value = self.momentum * self.value + (1.0 - self.momentum) * max(int(num_pos), 1)
        return self.value


def task_losses(
    logits: torch.Tensor,
    offsets: torch.Tensor,
    cls_targets: torch.Tensor,
    reg_targets: torch.Tensor,
    valid: torch.Tensor,
    normalizer: float,
    loc_loss: str,
    focal_alpha: float,
    focal_gamma: float,
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sigmoid focal loss over every valid (point, class) entry and the localisation loss over positives.

    Both are sums divided by ``normalizer``. ``loc_loss`` is ``mse`` (thesis Eq. 2.2: mean squared error of
    the begin/end offsets of each action anchor) or ``diou`` (the TriDet/ActionFormer reference).

    Args:
        logits/cls_targets: ``[N, C]`` over the batch's concatenated points; offsets/reg_targets ``[N, 2]``.
        valid: ``[N]`` bool, False on padding.
    """
    positive = (cls_targets.sum(-1) > 0) & valid
    targets = cls_targets[valid]
    if label_smoothing > 0:
        targets = targets * (1 - label_smoothing) + label_smoothing / (targets.shape[-1] + 1)
    cls_loss = sigmoid_focal_loss(logits[valid], targets, focal_alpha, focal_gamma, reduction="sum") / normalizer
    if not positive.any():
        return cls_loss, offsets.sum() * 0.0
    pred, tgt = offsets[positive], reg_targets[positive]
    if loc_loss == "mse":
        reg = (pred - tgt).pow(2).mean(-1).sum()
    elif loc_loss == "diou":
        reg = diou_1d(pred, tgt).sum()
    else:
        raise ValueError(f"unknown localisation loss {loc_loss!r} (expected 'mse' or 'diou')")
    return cls_loss, reg / normalizer
