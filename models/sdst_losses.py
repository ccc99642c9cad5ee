"""Losses and small helpers shared by the SDST side-tuner (:mod:`models.sdst`) and the R2-Tuning baseline
(:mod:`models.r2tuning`), which train with the same saliency and alignment objectives on the same batches.

* :func:`sampled_nce` — R2-Tuning's SampledNCE saliency loss (row + column terms);
* :func:`alignment_losses` — video-level InfoNCE across the batch and layer-wise InfoNCE across levels;
* :func:`sample_positive` — one random positive clip per sample (shared by the two losses above);
* :func:`batched_iou` — IoU of (start, end) spans;
* :func:`rows_to_clips` — feature-row saliency to one score per annotated clip;
* :func:`attention_pool` — AdaPooling of text tokens with a learned scorer.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def batched_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of (start, end) spans ``a [B, N, 2]`` × ``b [B, G, 2]`` → ``[B, N, G]``."""
    inter = (torch.min(a[..., :, None, 1], b[..., None, :, 1]) - torch.max(a[..., :, None, 0], b[..., None, :, 0]))
    inter = inter.clamp(min=0)
    union = (a[..., :, None, 1] - a[..., :, None, 0]) + (b[..., None, :, 1] - b[..., None, :, 0]) - inter
    return inter / union.clamp(min=1e-6)


def sample_positive(sal: torch.Tensor, vmask: torch.Tensor) -> torch.Tensor:
    """One random clip with saliency > 0 per sample (−1 when there is none)."""
    pos = (sal > 0) & vmask
    rnd = torch.rand(sal.shape, device=sal.device).masked_fill(~pos, -1.0)
    idx = rnd.argmax(-1)
    return torch.where(pos.any(-1), idx, torch.full_like(idx, -1))


def sampled_nce(scores: torch.Tensor, sal: torch.Tensor, vmask: torch.Tensor, pos_idx: torch.Tensor,
                tau: float) -> torch.Tensor:
    """SampledNCE (R2-Tuning): rank one positive clip above lower-saliency clips of its video (row term)
    and above the same clip index of the other videos (column term); ``scores [B, T]`` are similarities."""
    logits = scores / tau
    has_pos = pos_idx >= 0
    if not has_pos.any():
        return scores.sum() * 0
    b = torch.arange(len(scores), device=scores.device)
    pi = pos_idx.clamp(min=0)
    pos_sal = sal[b, pi]
    # row term: negatives = clips of the same video with lower saliency than the positive
    row_mask = vmask & (sal < pos_sal[:, None])
    row_mask[b, pi] = True
    row = logits.masked_fill(~row_mask, float("-inf"))
    l_row = -(row.log_softmax(-1)[b, pi])
    # column term: the positive's clip index across the batch (only videos that have that clip)
    col_logits = logits[:, pi].T  # [B(anchor), B(other)]
    col_valid = vmask[:, pi].T & (sal[:, pi].T < pos_sal[:, None])
    col_valid[b, b] = True
    col = col_logits.masked_fill(~col_valid, float("-inf"))
    l_col = -(col.log_softmax(-1)[b, b])
    return ((l_row + l_col) * has_pos).sum() / has_pos.sum()


def alignment_losses(levels: list[dict], pos_idx: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Video-level InfoNCE (across the batch, per level) and layer-wise InfoNCE (across levels, per sample) of
    each level's mapped clip ``video [B, T, d]`` at the positive clip against its pooled text ``text_pool [B, d]``."""
    has_pos = pos_idx >= 0
    zero = levels[-1]["text_pool"].sum() * 0
    if not has_pos.any():
        return zero, zero
    b = torch.arange(len(pos_idx), device=pos_idx.device)[has_pos]
    v = torch.stack([F.normalize(lvl["video"][b, pos_idx[has_pos]], dim=-1) for lvl in levels], 1)
    q = torch.stack([F.normalize(lvl["text_pool"][b], dim=-1) for lvl in levels], 1)  # [B', K, d]
    l_video = zero
    if len(b) > 1:
        sim = torch.einsum("ikd,jkd->kij", v, q) / tau  # per level, batch × batch
        target = torch.arange(len(b), device=sim.device).expand(sim.shape[0], -1)
        l_video = 0.5 * (F.cross_entropy(sim.flatten(0, 1), target.flatten())
                         + F.cross_entropy(sim.transpose(1, 2).flatten(0, 1), target.flatten()))
    l_layer = zero
    if v.shape[1] > 1:
        sim = torch.einsum("bkd,bld->bkl", v, q) / tau  # per sample, level × level
        target = torch.arange(v.shape[1], device=sim.device).expand(sim.shape[0], -1)
        l_layer = 0.5 * (F.cross_entropy(sim.flatten(0, 1), target.flatten())
                         + F.cross_entropy(sim.transpose(1, 2).flatten(0, 1), target.flatten()))
    return l_video, l_layer


def attention_pool(scorer: torch.nn.Module, t: torch.Tensor, tmask: torch.Tensor) -> torch.Tensor:
    """Learnable attention pooling (AdaPooling) of tokens ``t [B, L, d]`` → ``[B, d]``: softmax over the valid
    tokens of ``scorer(t)`` (a ``d → 1`` layer)."""
    score = scorer(t).squeeze(-1).masked_fill(~tmask, float("-inf"))
    return (score.softmax(-1)[..., None] * t).sum(1)


def rows_to_clips(rows: np.ndarray, meta: dict) -> list[float]:
    """Feature-row saliency → one score per ``clip_len``-second clip (nearest row to each clip centre)."""
    ts, clip = float(meta["time_step"]), float(meta.get("clip_len", meta["time_step"]))
    n_clips = max(1, int(math.ceil(meta["duration"] / clip - 1e-6)))
    centres = (np.arange(n_clips) + 0.5) * clip
    idx = np.clip(np.floor(centres / ts).astype(int), 0, len(rows) - 1)
    return [round(float(v), 6) for v in rows[idx]]
