"""Building blocks of the search-DETR retriever (:class:`models.search_detr.SearchDETR`): input projections,
the post-norm encoder layer, the Moment-DETR decoder layer, and the anchor decoder layer with the
Conditional/DAB-DETR attentions (separate content / positional projections, conditional spatial query), plus the
sine embeddings of spans, padded sequences and normalised positions they use.

Module and parameter names are part of SearchDETR's checkpoints; the model's docstring explains the design.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.common import sine_position_encoding


class LinearLayer(nn.Module):
    """``LayerNorm → Dropout → Linear`` with an optional ReLU (Moment-DETR's input projection unit)."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float, relu: bool):
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(in_dim, out_dim)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(self.dropout(self.norm(x)))
        return F.relu(x) if self.relu else x


def input_projection(in_dim: int, hidden: int, dropout: float) -> nn.Sequential:
    """Two stacked :class:`LinearLayer` (ReLU after the first only), the first with ``dropout``."""
    return nn.Sequential(LinearLayer(in_dim, hidden, dropout, relu=True), LinearLayer(hidden, hidden, 0.0, relu=False))


class DropoutFFN(nn.Module):
    """Transformer feed-forward block ``linear2(Dropout(ReLU(linear1(x))))`` with dropout between the layers
    (unlike SDST's dropout-free, Kaiming-initialised :class:`models.sdst.KaimingFFN`)."""

    def __init__(self, dim: int, ffn_dim: int, dropout: float):
        super().__init__()
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.dropout(F.relu(self.linear1(x))))


class EncoderLayer(nn.Module):
    """Post-norm self-attention + FFN; positions are added to queries and keys, not values."""

    def __init__(self, dim: int, heads: int, ffn_dim: int, dropout: float):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.ffn = DropoutFFN(dim, ffn_dim, dropout)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        q = k = x + pos
        x = self.norm1(x + self.dropout1(self.self_attn(q, k, x, key_padding_mask=pad_mask, need_weights=False)[0]))
        return self.norm2(x + self.dropout2(self.ffn(x)))


class DecoderLayer(nn.Module):
    """Post-norm ``[SA →] CA → FFN``; with ``self_attention=False`` the SA sub-block (attention, dropout and
    norm) is not constructed at all, so the queries never see each other (thesis Eq. 3.18)."""

    def __init__(self, dim: int, heads: int, ffn_dim: int, dropout: float, self_attention: bool):
        super().__init__()
        self.has_self_attention = self_attention
        if self_attention:
            self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
            self.dropout1 = nn.Dropout(dropout)
            self.norm1 = nn.LayerNorm(dim)
        self.cross_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.dropout2 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = DropoutFFN(dim, ffn_dim, dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.norm3 = nn.LayerNorm(dim)

    def forward(
        self, tgt: torch.Tensor, query_pos: torch.Tensor, memory: torch.Tensor, mem_pos: torch.Tensor, mem_pad: torch.Tensor
    ) -> torch.Tensor:
        if self.has_self_attention:
            q = k = tgt + query_pos
            tgt = self.norm1(tgt + self.dropout1(self.self_attn(q, k, tgt, need_weights=False)[0]))
        ca = self.cross_attn(tgt + query_pos, memory + mem_pos, memory, key_padding_mask=mem_pad, need_weights=False)[0]
        tgt = self.norm2(tgt + self.dropout2(ca))
        return self.norm3(tgt + self.dropout3(self.ffn(tgt)))


def span_sine_embedding(spans: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """Sine embedding [..., dim] of normalised (c, w) spans [..., 2]: ``dim/2`` interleaved sin/cos features of
    ``2π·c`` followed by the same for ``2π·w`` (the anchor embedding of DAB-DETR / CG-DETR)."""
    half = dim // 2
    freq = temperature ** (2 * (torch.arange(half, device=spans.device) // 2) / half)
    ang = spans[..., :, None] * 2 * torch.pi / freq  # [..., 2, half]
    emb = torch.stack([ang[..., 0::2].sin(), ang[..., 1::2].cos()], dim=-1).flatten(-2)
    return emb.flatten(-2)


def padded_sine_positions(lengths: torch.Tensor, max_len: int, dim: int) -> torch.Tensor:
    """Per-sample normalised sine positions [B, max_len, dim]; each sample is normalised by its own length
    (as Moment-DETR's cumsum over the valid mask) and padded rows are zero."""
    out = torch.zeros(len(lengths), max_len, dim)
    cache: dict[int, torch.Tensor] = {}
    for i, n in enumerate(lengths.tolist()):
        if n not in cache:
            cache[n] = sine_position_encoding(n, dim)
        out[i, :n] = cache[n]
    return out


def position_sine(x: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """Sine features [..., dim] of normalised positions ``x`` [...] in (0, 1], in the basis of the encoder's
    positions: ``position_sine((t + 1) / n, dim) == sine_position_encoding(n, dim)[t]``. The anchor decoder puts
    an anchor's centre and the video rows in this one basis, so their dot product depends on ``centre − row``."""
    if dim % 2:
        raise ValueError(f"position_sine: dim must be even, got {dim}")
    freq = temperature ** (2 * torch.arange(dim // 2, device=x.device, dtype=x.dtype) / dim)
    ang = x[..., None] * 2 * torch.pi / freq
    return torch.stack([ang.sin(), ang.cos()], dim=-1).flatten(-2)


def multihead_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int,
                        key_pad: torch.Tensor | None = None, dropout: float = 0.0) -> torch.Tensor:
    """Scaled dot-product attention over ``heads`` equal slices of q/k [B, N, Dqk] and v [B, M, Dv] (already
    projected), ``key_pad`` [B, M] True = padding; returns the merged heads [B, N, Dv]."""
    B, N, _ = q.shape

    def split(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)

    mask = None if key_pad is None else ~key_pad[:, None, None, :]
    out = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=mask, dropout_p=dropout)
    return out.transpose(1, 2).reshape(B, N, -1)


def concat_heads(content: torch.Tensor, positional: torch.Tensor, heads: int) -> torch.Tensor:
    """Per head, the content slice followed by the positional slice ([B, N, 2D]; Conditional DETR), so the
    attention logit is content·content + positional·positional with neither polluting the other."""
    B, N, D = content.shape
    return torch.cat([content.view(B, N, heads, D // heads), positional.view(B, N, heads, D // heads)], -1).view(B, N, 2 * D)


class ConditionalSelfAttention(nn.Module):
    """Decoder self-attention with separate content/positional projections (Conditional/DAB-DETR): q and k are
    ``content(tgt) + pos(query_pos)``, v is ``content(tgt)`` only."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q_content, self.q_pos = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.k_content, self.k_pos = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.v, self.out = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, tgt: torch.Tensor, query_pos: torch.Tensor) -> torch.Tensor:
        q = self.q_content(tgt) + self.q_pos(query_pos)
        k = self.k_content(tgt) + self.k_pos(query_pos)
        drop = self.dropout if self.training else 0.0
        return self.out(multihead_attention(q, k, self.v(tgt), self.heads, dropout=drop))


class ConditionalCrossAttention(nn.Module):
    """Cross-attention with a conditional spatial query (Conditional/DAB-DETR): per head, the query is
    ``[content(tgt) ; spatial(anchor)]`` and the key ``[content(memory) ; pos(memory positions)]``, so one half
    of the logit compares the query's anchor with each row's position. The first layer also adds the
    positional query/key to the content parts (the decoder target is still zero there)."""

    def __init__(self, dim: int, heads: int, dropout: float, first: bool):
        super().__init__()
        self.heads, self.dropout, self.first = heads, dropout, first
        self.q_content, self.q_spatial = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.k_content, self.k_pos = nn.Linear(dim, dim), nn.Linear(dim, dim)
        if first:
            self.q_pos = nn.Linear(dim, dim)
        self.v, self.out = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, tgt: torch.Tensor, query_pos: torch.Tensor, spatial: torch.Tensor, memory: torch.Tensor,
                mem_pos: torch.Tensor, mem_pad: torch.Tensor) -> torch.Tensor:
        q, k, k_pos = self.q_content(tgt), self.k_content(memory), self.k_pos(mem_pos)
        if self.first:
            q, k = q + self.q_pos(query_pos), k + k_pos
        q = concat_heads(q, self.q_spatial(spatial), self.heads)
        k = concat_heads(k, k_pos, self.heads)
        drop = self.dropout if self.training else 0.0
        return self.out(multihead_attention(q, k, self.v(memory), self.heads, mem_pad, drop))


class AnchorDecoderLayer(nn.Module):
    """Post-norm ``[SA →] CA → FFN`` of the anchor decoder (CG-DETR/DAB-DETR), with the conditional attentions
    above. As :class:`DecoderLayer`, ``self_attention=False`` builds no SA sub-block (attention, dropout, norm)."""

    def __init__(self, dim: int, heads: int, ffn_dim: int, dropout: float, self_attention: bool, first: bool):
        super().__init__()
        self.has_self_attention = self_attention
        if self_attention:
            self.self_attn = ConditionalSelfAttention(dim, heads, dropout)
            self.dropout1 = nn.Dropout(dropout)
            self.norm1 = nn.LayerNorm(dim)
        self.cross_attn = ConditionalCrossAttention(dim, heads, dropout, first)
        self.dropout2 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = DropoutFFN(dim, ffn_dim, dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, tgt: torch.Tensor, query_pos: torch.Tensor, spatial: torch.Tensor, memory: torch.Tensor,
                mem_pos: torch.Tensor, mem_pad: torch.Tensor) -> torch.Tensor:
        if self.has_self_attention:
            tgt = self.norm1(tgt + self.dropout1(self.self_attn(tgt, query_pos)))
        ca = self.cross_attn(tgt, query_pos, spatial, memory, mem_pos, mem_pad)
        tgt = self.norm2(tgt + self.dropout2(ca))
        return self.norm3(tgt + self.dropout3(self.ffn(tgt)))
