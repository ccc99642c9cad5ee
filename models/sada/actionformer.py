"""ActionFormer's convTransformer pyramid (Zhang et al., ECCV 2022), the second encoder SADA's heads sit on
(thesis Tab. 2.4: ActionFormer and ActionFormer+SADA). Written from the paper and tal_detector_notes.md §1c.

Same embedding (``arch[0]`` masked k3 convs + channel LN + ReLU) and the same ``2 + 5`` layout as the SGP
pyramid, with pre-LN Transformer blocks instead of SGP blocks:

    out = pool_skip(x) + γ1·drop(LocalMHA(LN(x)))      (pool_skip = k3/s2 max-pool in downsampling blocks)
    out = out + γ2·drop(MLP(LN(out)))                  (MLP: 1×1 conv → GELU → 1×1 conv, hidden mlp_ratio·C)

The attention is local: a query attends to the keys within ``window // 2`` rows on either side (window 9 on
EPIC), 4 heads. Queries, keys and values each pass a depthwise k3 conv (stride 2 in downsampling blocks, so
the block halves the resolution) + channel LN, then a 1×1 projection; the output has a 1×1 projection too.
Layer-scale drop-path (γ init 1e-4) is in all blocks (stem included). As in ``models.sada.backbone``, every
sub-layer output is re-masked and padding never enters a max-pool or an attention window, so a video's
outputs do not depend on its batch's padding.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.sada.backbone import AffineDropPath, ChannelLayerNorm, MaskedConv1D, MaskedPyramid


class LocalMaskedMHA(nn.Module):
    """Multi-head self-attention restricted to a ``window``-row neighbourhood (odd ``window``)."""

    def __init__(self, dim: int, heads: int, window: int, stride: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"ActionFormer width {dim} does not split into {heads} heads")
        if window % 2 != 1:
            raise ValueError(f"ActionFormer attention window must be odd, got {window}")
        self.heads, self.half = heads, window // 2
        self.q_conv, self.k_conv, self.v_conv = (
            MaskedConv1D(dim, dim, 3, stride=stride, bias=False, groups=dim) for _ in range(3))
        self.q_norm, self.k_norm, self.v_norm = (ChannelLayerNorm(dim) for _ in range(3))
        self.query, self.key, self.value, self.proj = (nn.Conv1d(dim, dim, 1) for _ in range(4))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q, out_mask = self.q_conv(x, mask)
        k, _ = self.k_conv(x, mask)
        v, _ = self.v_conv(x, mask)
        q = self.query(self.q_norm(q))
        k = self.key(self.k_norm(k))
        v = self.value(self.v_norm(v))
        b, c, t = q.shape
        d = c // self.heads
        w = 2 * self.half + 1
        # [B, heads, T, d] queries; keys/values unfolded into [B, heads, T, window, d] neighbourhoods
        q = q.view(b, self.heads, d, t).transpose(2, 3)
        k = F.pad(k, (self.half, self.half)).view(b, self.heads, d, t + w - 1).unfold(3, w, 1).permute(0, 1, 3, 4, 2)
        v = F.pad(v, (self.half, self.half)).view(b, self.heads, d, t + w - 1).unfold(3, w, 1).permute(0, 1, 3, 4, 2)
        key_ok = F.pad(out_mask[:, 0].to(q.dtype), (self.half, self.half)).unfold(1, w, 1) > 0.5  # [B, T, window]
        scores = torch.einsum("bhtd,bhtwd->bhtw", q, k) / math.sqrt(d)
        # a finite fill, not -inf: a padded query sees no valid key and must not produce NaN (its output is
        # masked below); for a valid query the fill's exp underflows to exactly 0
        scores = scores.masked_fill(~key_ok[:, None], torch.finfo(scores.dtype).min)
        attn = torch.softmax(scores, dim=-1)
        out = torch.einsum("bhtw,bhtwd->bhtd", attn, v).transpose(2, 3).reshape(b, c, t)
        return self.proj(out) * out_mask.to(out.dtype), out_mask


class TransformerBlock(nn.Module):
    """Pre-LN local-attention block; ``downsample`` halves the resolution (strided q/k/v convs + max-pool skip)."""

    def __init__(self, dim: int, heads: int, window: int, mlp_ratio: int, downsample: bool, droppath: float):
        super().__init__()
        stride = 2 if downsample else 1
        self.ln1, self.ln2 = ChannelLayerNorm(dim), ChannelLayerNorm(dim)
        self.attn = LocalMaskedMHA(dim, heads, window, stride)
        self.pool = nn.MaxPool1d(3, stride=2, padding=1) if downsample else None
        self.mlp = nn.Sequential(nn.Conv1d(dim, mlp_ratio * dim, 1), nn.GELU(), nn.Conv1d(mlp_ratio * dim, dim, 1))
        self.drop_attn = AffineDropPath(dim, droppath) if droppath > 0 else None
        self.drop_mlp = AffineDropPath(dim, droppath) if droppath > 0 else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, out_mask = self.attn(self.ln1(x), mask)
        m = out_mask.to(x.dtype)
        skip = x
        if self.pool is not None:  # padding must never win the max
            skip = self.pool(x.masked_fill(~mask, float("-inf")))
            skip = torch.where(out_mask, skip, torch.zeros_like(skip))
        out = skip * m + (self.drop_attn(out) if self.drop_attn is not None else out)
        ffn = self.mlp(self.ln2(out)) * m
        out = out + (self.drop_mlp(ffn) if self.drop_mlp is not None else ffn)
        return out * m, out_mask


class ConvTransformerPyramid(MaskedPyramid):
    """Embedding convs + Transformer stem + downsampling Transformer branch → ``arch[2] + 1`` levels
    (same interface as :class:`models.sada.backbone.SGPPyramid`)."""

    def __init__(self, input_dim: int, dim: int, arch: tuple[int, int, int], heads: int, window: int,
                 mlp_ratio: int, droppath: float):
        super().__init__()
        n_embd, n_stem, n_branch = arch
        self._embedding(input_dim, dim, n_embd)
        self.stem = nn.ModuleList(
            TransformerBlock(dim, heads, window, mlp_ratio, False, droppath) for _ in range(n_stem))
        self.branch = nn.ModuleList(
            TransformerBlock(dim, heads, window, mlp_ratio, True, droppath) for _ in range(n_branch))
