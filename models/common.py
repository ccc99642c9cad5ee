"""One copy each of the pieces the three methods share.

Spans are ``(start, end)`` or ``(center, width)`` along the last dim; ``*_cw`` helpers convert between them.
NMS and Soft-NMS work on numpy arrays (post-processing), everything else on torch tensors.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn

# ----------------------------------------------------------------------------- spans


def span_cw_to_se(spans: torch.Tensor) -> torch.Tensor:
    """(center, width) → (start, end) along the last dim."""
    c, w = spans.unbind(-1)
    return torch.stack([c - 0.5 * w, c + 0.5 * w], dim=-1)


def span_se_to_cw(spans: torch.Tensor) -> torch.Tensor:
    """(start, end) → (center, width) along the last dim."""
    s, e = spans.unbind(-1)
    return torch.stack([(s + e) * 0.5, e - s], dim=-1)


def pairwise_temporal_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of every (start, end) span in ``a`` [N, 2] with every span in ``b`` [M, 2] → [N, M]."""
    inter = (torch.min(a[:, None, 1], b[None, :, 1]) - torch.max(a[:, None, 0], b[None, :, 0])).clamp(min=0)
    union = (a[:, None, 1] - a[:, None, 0]) + (b[None, :, 1] - b[None, :, 0]) - inter
    return inter / union.clamp(min=1e-6)


def pairwise_generalized_temporal_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Generalized IoU (IoU − |hull \\ union| / |hull|) of (start, end) spans, [N, 2] × [M, 2] → [N, M]."""
    inter = (torch.min(a[:, None, 1], b[None, :, 1]) - torch.max(a[:, None, 0], b[None, :, 0])).clamp(min=0)
    union = (a[:, None, 1] - a[:, None, 0]) + (b[None, :, 1] - b[None, :, 0]) - inter
    iou = inter / union.clamp(min=1e-6)
    hull = torch.max(a[:, None, 1], b[None, :, 1]) - torch.min(a[:, None, 0], b[None, :, 0])
    return iou - (hull - union) / hull.clamp(min=1e-6)


def temporal_iou_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Numpy IoU of (start, end) spans, [N, 2] × [M, 2] → [N, M]."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 2)
    inter = np.clip(np.minimum(a[:, None, 1], b[None, :, 1]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    union = (a[:, None, 1] - a[:, None, 0]) + (b[None, :, 1] - b[None, :, 0]) - inter
    return inter / np.maximum(union, 1e-12)


# ----------------------------------------------------------------------------- matching / NMS


def hungarian_match(cost: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost one-to-one assignment of rows (predictions) to columns (targets) via scipy.

    Returns ``(row_indices, col_indices)`` sorted by row; with more rows than columns every column is used.
    """
    if isinstance(cost, torch.Tensor):
        cost = cost.detach().float().cpu().numpy()
    if cost.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rows, cols = linear_sum_assignment(cost)
    return rows.astype(np.int64), cols.astype(np.int64)


def nms_1d(spans: np.ndarray, scores: np.ndarray, iou_threshold: float, max_keep: int | None = None) -> np.ndarray:
    """Greedy temporal NMS with true IoU; returns kept indices in descending score (stable for ties)."""
    spans = np.asarray(spans, dtype=np.float64).reshape(-1, 2)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    keep: list[int] = []
    suppressed = np.zeros(len(order), dtype=bool)
    ious = temporal_iou_np(spans, spans)
    for pos, i in enumerate(order):
        if suppressed[pos]:
            continue
        keep.append(int(i))
        if max_keep is not None and len(keep) >= max_keep:
            break
        later = order[pos + 1 :]
        suppressed[pos + 1 :] |= ious[i, later] >= iou_threshold
    return np.asarray(keep, dtype=np.int64)


def soft_nms_gaussian(
    spans: np.ndarray,
    scores: np.ndarray,
    sigma: float = 0.4,
    min_score: float = 0.001,
    max_keep: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian Soft-NMS: repeatedly keep the best span and decay the others by ``exp(-iou² / sigma)``.

    Returns ``(kept indices, their decayed scores)`` in the order they were selected; spans whose decayed
    score falls below ``min_score`` are dropped.
    """
    spans = np.asarray(spans, dtype=np.float64).reshape(-1, 2)
    scores = np.asarray(scores, dtype=np.float64).copy()
    remaining = list(range(len(scores)))
    kept, kept_scores = [], []
    while remaining:
        best_pos = max(range(len(remaining)), key=lambda p: (scores[remaining[p]], -p))
        best = remaining.pop(best_pos)
        if scores[best] < min_score:
            break
        kept.append(best)
        kept_scores.append(scores[best])
        if max_keep is not None and len(kept) >= max_keep:
            break
        if remaining:
            rest = np.asarray(remaining)
            iou = temporal_iou_np(spans[best : best + 1], spans[rest])[0]
            scores[rest] *= np.exp(-(iou**2) / sigma)
    return np.asarray(kept, dtype=np.int64), np.asarray(kept_scores, dtype=np.float64)


# ----------------------------------------------------------------------------- layers


class _GradientReversalFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, coeff):
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.coeff * grad, None


def grad_reverse(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    """Identity in the forward pass, gradient multiplied by ``-coeff`` in the backward pass."""
    return _GradientReversalFn.apply(x, coeff)


class GradientReversal(nn.Module):
    """Module form of :func:`grad_reverse`."""

    def __init__(self, coeff: float = 1.0):
        super().__init__()
        self.coeff = coeff

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.coeff)


class MLP(nn.Module):
    """``num_layers`` linear layers with ReLU between them (none after the last)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int, dropout: float = 0.0):
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.dropout(F.relu(x))
        return x


def sine_position_encoding(length: int, dim: int, temperature: float = 10000.0, normalize: bool = True) -> torch.Tensor:
    """1-D sine/cosine position encoding [length, dim] (DETR style; positions normalised to (0, 2π])."""
    pos = torch.arange(1, length + 1, dtype=torch.float32)
    if normalize:
        pos = pos / (length + 1e-6) * 2 * math.pi
    half = dim // 2
    freq = temperature ** (2 * torch.arange(half, dtype=torch.float32) / dim)
    angles = pos[:, None] / freq[None, :]
    enc = torch.zeros(length, dim)
    enc[:, 0 : 2 * half : 2] = angles.sin()
    enc[:, 1 : 2 * half : 2] = angles.cos()
    return enc


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """logit(x) with clamping, used to refine (c, w) references additively in logit space."""
    x = x.clamp(eps, 1 - eps)
    return torch.log(x / (1 - x))


# ----------------------------------------------------------------------------- losses


def sigmoid_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0, reduction: str = "sum"
) -> torch.Tensor:
    """Sigmoid focal loss (RetinaNet); ``targets`` in [0, 1] with the shape of ``logits``."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    return loss
