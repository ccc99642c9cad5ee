"""The attention pieces of SDST (:mod:`models.sdst`): how the sparse queries read the dense video stream.

* :class:`DeformableVideoAttention` — 1-D deformable attention around each query's (c, w) reference, in the
  ``rdsa`` mode (offsets/weights from the CNN-refined dense embedding sampled at the reference's
  left/centre/right points, Eq. 4.11–4.13) or the ``deformable_ca`` mode (from the query latent, Eq. 4.10);
* :class:`StandardVideoAttention` — plain multi-head cross-attention over the whole sequence (Tab 4.12);
* :func:`context_cnn` — RDSA's context CNN (depthwise / full / none, ``sdst.model.cnn``);
* :func:`sample_1d` — differentiable linear interpolation of a sequence at normalised positions (deformable
  sampling here, 1-D RoIAlign in :meth:`models.sdst.SDST.roi_features`);
* :func:`xavier_mha` — the Xavier-initialised ``nn.MultiheadAttention`` every SDST attention sub-block uses.

Parameter names are those of the modules' attributes inside ``SDSTLayer.s_video`` and are part of SDST's
checkpoints.
"""
from __future__ import annotations

import torch
from torch import nn

from models.common import MLP
from models.sdst_config import SDSTModelConfig


def xavier_mha(dim: int, heads: int) -> nn.MultiheadAttention:
    """``nn.MultiheadAttention`` (batch-first, no dropout) with Xavier-uniform input and output projections."""
    att = nn.MultiheadAttention(dim, heads, dropout=0.0, batch_first=True)
    nn.init.xavier_uniform_(att.in_proj_weight)
    nn.init.xavier_uniform_(att.out_proj.weight)
    return att


def sample_1d(x: torch.Tensor, pos: torch.Tensor, lengths: torch.Tensor, padding: str = "zeros") -> torch.Tensor:
    """Linear interpolation of ``x [N, T, C]`` at normalised positions ``pos [N, P]`` → ``[N, P, C]``.

    Position 0 / 1 are the start / end of each item's valid length ``lengths [N]`` (row t covers
    ``[t/len, (t+1)/len]``). ``padding="zeros"`` treats rows outside ``[0, len)`` as zeros (grid_sample
    semantics, for deformable sampling and RoIAlign); ``"border"`` clamps the position into the video.
    Differentiable w.r.t. ``x`` and ``pos``.
    """
    n, t, c = x.shape
    length = lengths.to(pos.dtype)[:, None]
    idx = pos * length - 0.5
    if padding == "border":
        idx = torch.minimum(idx.clamp(min=0), length - 1)
    i0 = torch.floor(idx)
    w1 = idx - i0
    i0 = i0.long()
    i1 = i0 + 1
    out = 0
    for i, w in ((i0, 1 - w1), (i1, w1)):
        valid = (i >= 0) & (i < lengths[:, None])
        ic = i.clamp(0, t - 1)
        vals = torch.gather(x, 1, ic[..., None].expand(-1, -1, c))
        out = out + vals * (w * valid.to(w.dtype))[..., None]
    return out


class DeformableVideoAttention(nn.Module):
    """1-D deformable attention of queries into the dense sequence around their (c, w) reference.

    ``mode="rdsa"``: offsets/weights come from the CNN-refined dense embedding sampled at the reference's
    left/centre/right points (Eq. 4.12–4.13). ``mode="deformable_ca"``: from the query latent (Eq. 4.10).
    """

    def __init__(self, cfg: SDSTModelConfig, mode: str):
        super().__init__()
        d, h, p = cfg.hidden, cfg.heads, cfg.deform_points
        self.mode, self.heads, self.points = mode, h, p
        if mode == "rdsa":
            self.cnn = context_cnn(cfg.cnn, d)
            self.point_ids = {"c": [1], "l-r": [0, 2], "l-c-r": [0, 1, 2]}[cfg.sampling_points]
            self.query_mlp = MLP(d * len(self.point_ids), cfg.rdsa_latent, cfg.rdsa_latent, 2)
            q_dim = cfg.rdsa_latent
        else:
            q_dim = d
        self.offsets = nn.Linear(q_dim, h * p)
        self.weights = nn.Linear(q_dim, h * p)
        self.value_proj, self.output_proj = nn.Linear(d, d), nn.Linear(d, d)
        nn.init.zeros_(self.offsets.weight)
        # heads alternate towards the left / right boundary, points spread to ±w/2 (TadTR's 1-D init)
        sign = torch.tensor([1.0 if i % 2 == 0 else -1.0 for i in range(h)])
        steps = torch.arange(1, p + 1, dtype=torch.float32) / p
        with torch.no_grad():
            self.offsets.bias.copy_((sign[:, None] * steps[None, :]).flatten())
        nn.init.zeros_(self.weights.weight)
        nn.init.zeros_(self.weights.bias)
        for lin in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, query: torch.Tensor, ref: torch.Tensor, dense: torch.Tensor, mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``query [B,M,d]``, ``ref [B,M,2]`` (c, w), ``dense [B,T,d]``, ``mask [B,T]`` → (out [B,M,d], offsets Δ
        ``[B,M,H,P]`` in half-widths, attention weights A ``[B,M,H,P]``; Fig 4.5 plots Σ_p A Δ per head)."""
        b, m, _ = query.shape
        lengths = mask.sum(1)
        dense = dense * mask[..., None]
        if self.mode == "rdsa":
            ctx = dense if self.cnn is None else self.cnn(dense.transpose(1, 2)).transpose(1, 2) * mask[..., None]
            c, w = ref.unbind(-1)
            pts = torch.stack([c - w / 2, c, c + w / 2], dim=-1)[..., self.point_ids]  # [B, M, n]
            sampled = sample_1d(ctx, pts.flatten(1), lengths, padding="border")  # [B, M*n, d]
            q = self.query_mlp(sampled.reshape(b, m, -1))
        else:
            q = query
        h, p = self.heads, self.points
        offsets = self.offsets(q).view(b, m, h, p)
        attn = self.weights(q).view(b, m, h, p).softmax(-1)
        loc = ref[..., 0, None, None] + offsets * ref[..., 1, None, None] / 2  # [B, M, H, P]
        value = self.value_proj(dense) * mask[..., None]
        dh = value.shape[-1] // h
        value = value.view(b, -1, h, dh).permute(0, 2, 1, 3).reshape(b * h, -1, dh)
        loc = loc.permute(0, 2, 1, 3).reshape(b * h, m * p)
        vals = sample_1d(value, loc, lengths.repeat_interleave(h), padding="zeros")  # [B*H, M*P, dh]
        vals = vals.view(b, h, m, p, dh)
        out = (vals * attn.permute(0, 2, 1, 3)[..., None]).sum(3)  # [B, H, M, dh]
        out = out.permute(0, 2, 1, 3).reshape(b, m, h * dh)
        return self.output_proj(out), offsets, attn


def context_cnn(kind: str, dim: int) -> nn.Sequential | None:
    """RDSA's context CNN (``sdst.model.cnn``): Conv1d k3 → channel LN → ReLU → Conv1d k3 over ``[B, dim, T]``.

    ``"depthwise"``: each conv filters every channel on its own (``groups=dim``; 2·(3·dim + dim) + 2·dim
    parameters, 2,560 at dim 256); ``"full"``: dense dim→dim convs (394,240 at dim 256); ``"none"``: no CNN
    (returns None). The thesis fixes the depth (2), width (256), LayerNorm and non-linearity but not the conv
    type; only the depthwise reading lands on its 4.10 M / 12.43 M totals (:mod:`models.sdst_budget`).
    """
    if kind == "none":
        return None
    if kind not in ("depthwise", "full"):
        raise ValueError(f"SDST: sdst.model.cnn must be depthwise | full | none, got {kind!r}")
    groups = dim if kind == "depthwise" else 1
    return nn.Sequential(nn.Conv1d(dim, dim, 3, padding=1, groups=groups), _ChannelLN(dim), nn.ReLU(),
                         nn.Conv1d(dim, dim, 3, padding=1, groups=groups))


class _ChannelLN(nn.Module):
    """LayerNorm over channels of a ``[B, C, T]`` tensor."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class StandardVideoAttention(nn.Module):
    """Plain multi-head cross-attention of queries over the whole dense sequence (Tab 4.12 "Stand. CA")."""

    def __init__(self, cfg: SDSTModelConfig):
        super().__init__()
        self.att = xavier_mha(cfg.hidden, cfg.heads)

    def forward(self, query, ref, dense, mask, query_pos, dense_pos):
        out = self.att(query + query_pos, dense + dense_pos, dense, key_padding_mask=~mask, need_weights=False)[0]
        return out, None, None
