"""SGP feature pyramid, identity neck and shared conv heads of the TriDet-style detector (thesis §2.3.3–2.3.4).

All tensors are channel-first ``(B, C, T)``; masks are boolean ``(B, 1, T)``, True on real feature rows.
Deviations from the reference code (tal_detector_notes.md §1b): every sub-layer output is re-masked, and the
SGP instant-level gate and the FFN GroupNorm use statistics of the valid rows only, so a video's outputs do
not depend on how much padding its batch carries.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of a ``(B, C, T)`` tensor (biased variance, affine (1, C, 1))."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1, channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(dim=1, keepdim=True)
        var = (x - mu).pow(2).mean(dim=1, keepdim=True)
        return (x - mu) / torch.sqrt(var + self.eps) * self.weight + self.bias


def downsample_mask(mask: torch.Tensor, stride: int) -> torch.Tensor:
    """Nearest downsampling of a ``(B, 1, T)`` mask to ``T // stride`` (keeps every ``stride``-th row)."""
    if stride == 1:
        return mask
    return mask[:, :, ::stride][:, :, : mask.shape[-1] // stride]


class MaskedConv1D(nn.Module):
    """Conv1d with an odd kernel and ``k // 2`` padding whose output is zeroed outside the mask."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, bias: bool = True, groups: int = 1):
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"MaskedConv1D needs an odd kernel, got {kernel}")
        self.stride = stride
        self.conv = nn.Conv1d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=bias, groups=groups)
        if bias:
            nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = downsample_mask(mask, self.stride)
        return self.conv(x) * mask.to(x.dtype), mask


class MaskedGroupNorm(nn.Module):
    """GroupNorm whose statistics come from the valid rows only (``nn.GroupNorm`` would count padding).

    Deviation from the reference (which always pads to ``max_seq_len``, so its statistics are at least
    consistent): here batches are padded only to a multiple of the largest stride, so padding-free statistics
    keep a video's output independent of what it is batched with.
    """

    def __init__(self, groups: int, channels: int, eps: float = 1e-5):
        super().__init__()
        if channels % groups:
            raise ValueError(f"GroupNorm: {channels} channels do not split into {groups} groups")
        self.groups, self.eps = groups, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        xg = x.view(b, self.groups, c // self.groups, t)
        mg = m.view(b, 1, 1, t)
        count = (mg.sum(dim=(2, 3), keepdim=True) * (c // self.groups)).clamp(min=1.0)
        mean = (xg * mg).sum(dim=(2, 3), keepdim=True) / count
        var = ((xg - mean) * mg).pow(2).sum(dim=(2, 3), keepdim=True) / count
        y = ((xg - mean) / torch.sqrt(var + self.eps)).view(b, c, t)
        return y * self.weight[None, :, None] + self.bias[None, :, None]


class AffineDropPath(nn.Module):
    """Stochastic depth per sample (keep probability ``1 - p``, rescaled) after a learnable per-channel scale.

    The scale γ starts at ``1e-4`` (TriDet's AffineDropPath), so a fresh block is close to its skip path; the
    scale is what sets it apart from SDST's plain :class:`models.sdst.DropPath`.
    """

    def __init__(self, channels: int, p: float):
        super().__init__()
        self.p = p
        self.gamma = nn.Parameter(torch.full((1, channels, 1), 1e-4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gamma * x
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape[0], 1, 1, device=x.device, dtype=x.dtype) >= self.p
        return x * keep.to(x.dtype) / (1.0 - self.p)


def sgp_kernel(window: int, k: float) -> int:
    """The SGP window-level branch's long kernel: ``round((w + 1) · k)``, bumped to the next odd number."""
    kw = round((window + 1) * k)
    return kw + 1 if kw % 2 == 0 else kw


class SGPBlock(nn.Module):
    """One Scalable-Granularity Perception block: instant/window-level mixing, then a GroupNorm FFN.

    ``init_std`` = 0 reproduces TriDet's EPIC behaviour exactly: the mixing weights start (and, having zero
    gradient, stay) at 0, so the block reduces to ``x + γ·LN(x)`` followed by the FFN (notes §1b).
    """

    def __init__(
        self, dim: int, window: int, k: float, mlp_dim: int, downsample: bool, droppath: float, init_std: float
    ):
        super().__init__()
        if dim % 16 != 0:
            raise ValueError(f"SGP width must be a multiple of 16 (GroupNorm(16, C)); got {dim}")
        kw = sgp_kernel(window, k)
        self.pool = nn.MaxPool1d(3, stride=2, padding=1) if downsample else None
        self.ln = ChannelLayerNorm(dim)
        self.gn = MaskedGroupNorm(16, dim)
        self.psi = nn.Conv1d(dim, dim, window, padding=window // 2, groups=dim)
        self.fc = nn.Conv1d(dim, dim, 1, groups=dim)
        self.convw = nn.Conv1d(dim, dim, window, padding=window // 2, groups=dim)
        self.convkw = nn.Conv1d(dim, dim, kw, padding=kw // 2, groups=dim)
        self.global_fc = nn.Conv1d(dim, dim, 1, groups=dim)
        self.mlp = nn.Sequential(nn.Conv1d(dim, mlp_dim, 1), nn.GELU(), nn.Conv1d(mlp_dim, dim, 1))
        self.drop_mix = AffineDropPath(dim, droppath) if droppath > 0 else None
        self.drop_mlp = AffineDropPath(dim, droppath) if droppath > 0 else None
        for conv in (self.psi, self.fc, self.convw, self.convkw, self.global_fc):
            nn.init.normal_(conv.weight, 0.0, init_std) if init_std > 0 else nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.pool is not None:
            # padding must never win the max: pool over valid rows only (every kept row pools itself)
            x = self.pool(x.masked_fill(~mask, float("-inf")))
            mask = downsample_mask(mask, 2)
            x = torch.where(mask, x, torch.zeros_like(x))
        m = mask.to(x.dtype)
        z = self.ln(x)
        mean = (z * m).sum(-1, keepdim=True) / m.sum(-1, keepdim=True).clamp(min=1.0)
        phi = F.relu(self.global_fc(mean))
        y = self.fc(z) * phi + (self.convw(z) + self.convkw(z)) * self.psi(z) + z
        y = y * m
        h = x * m + (self.drop_mix(y) if self.drop_mix is not None else y)
        ffn = self.mlp(self.gn(h, m)) * m
        out = h + (self.drop_mlp(ffn) if self.drop_mlp is not None else ffn)
        return out * m, mask


class MaskedPyramid(nn.Module):
    """The skeleton both TAL backbones share: masked embedding convs (+ channel LayerNorm, ReLU) → ``stem``
    blocks at full resolution → ``branch`` blocks that each halve the length, one pyramid level per branch
    block plus the stem's output. Subclasses build ``embd``/``embd_norm`` with :meth:`_embedding` first and then
    their own ``stem`` and ``branch`` (that order keeps the seeded initialisation of each detector)."""

    embd: nn.ModuleList
    embd_norm: nn.ModuleList
    stem: nn.ModuleList
    branch: nn.ModuleList

    def _embedding(self, input_dim: int, dim: int, n_embd: int) -> None:
        self.embd = nn.ModuleList(
            MaskedConv1D(input_dim if i == 0 else dim, dim, 3, bias=False) for i in range(n_embd)
        )
        self.embd_norm = nn.ModuleList(ChannelLayerNorm(dim) for _ in range(n_embd))

    @property
    def num_levels(self) -> int:
        return len(self.branch) + 1

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        for conv, norm in zip(self.embd, self.embd_norm):
            x, mask = conv(x, mask)
            x = F.relu(norm(x)) * mask.to(x.dtype)  # re-mask: ReLU(LN bias) would leak into padding
        for block in self.stem:
            x, mask = block(x, mask)
        feats, masks = [x], [mask]
        for block in self.branch:
            x, mask = block(x, mask)
            feats.append(x)
            masks.append(mask)
        return feats, masks


class SGPPyramid(MaskedPyramid):
    """Embedding convs + SGP stem + max-pool-downsampling SGP branch → ``arch[2] + 1`` pyramid levels.

    ``arch = (embedding convs, stem blocks, branch blocks)``; TriDet/SADA use ``(2, 2, 5)`` = 6 levels with
    strides 1, 2, 4, …, 32. The stem uses window 1 and no drop-path, as in the reference.
    """

    def __init__(
        self,
        input_dim: int,
        dim: int,
        arch: tuple[int, int, int],
        window: int,
        k: float,
        mlp_dim: int,
        droppath: float,
        init_std: float,
    ):
        super().__init__()
        n_embd, n_stem, n_branch = arch
        self._embedding(input_dim, dim, n_embd)
        self.stem = nn.ModuleList(SGPBlock(dim, 1, k, mlp_dim, False, 0.0, init_std) for _ in range(n_stem))
        self.branch = nn.ModuleList(
            SGPBlock(dim, window, k, mlp_dim, True, droppath, init_std) for _ in range(n_branch)
        )
        for module in self.modules():  # the reference backbone zeroes every conv/linear bias
            if isinstance(module, (nn.Conv1d, nn.Linear)) and module.bias is not None:
                nn.init.zeros_(module.bias)


class IdentityNeck(nn.Module):
    """One affine channel LayerNorm per level; its outputs are the anchor embeddings SADA aligns."""

    def __init__(self, dim: int, num_levels: int):
        super().__init__()
        self.norms = nn.ModuleList(ChannelLayerNorm(dim) for _ in range(num_levels))

    def forward(self, feats: list[torch.Tensor], masks: list[torch.Tensor]) -> list[torch.Tensor]:
        return [norm(f) * m.to(f.dtype) for norm, f, m in zip(self.norms, feats, masks)]


class ConvHead(nn.Module):
    """Shared head: ``layers - 1`` × (masked conv → LN → ReLU), then a masked conv to ``out_dim`` channels."""

    def __init__(self, in_dim: int, head_dim: int, out_dim: int, layers: int, kernel: int):
        super().__init__()
        self.tower = nn.ModuleList(
            MaskedConv1D(in_dim if i == 0 else head_dim, head_dim, kernel, bias=False) for i in range(layers - 1)
        )
        self.norms = nn.ModuleList(ChannelLayerNorm(head_dim) for _ in range(layers - 1))
        self.out = MaskedConv1D(head_dim if layers > 1 else in_dim, out_dim, kernel, bias=True)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for conv, norm in zip(self.tower, self.norms):
            x, _ = conv(x, mask)
            x = F.relu(norm(x))
        out, _ = self.out(x, mask)
        return out


class DetectionHeads(nn.Module):
    """Classification head (sigmoid per class, prior-initialised bias) and begin/end offset head.

    The offset head outputs ``ReLU(s_l · conv)`` with one learnable scale ``s_l`` per level (ActionFormer),
    in units of the level's stride.
    """

    def __init__(
        self, dim: int, head_dim: int, num_classes: int, num_levels: int, layers: int, kernel: int, prior: float
    ):
        super().__init__()
        self.cls = ConvHead(dim, head_dim, num_classes, layers, kernel)
        self.reg = ConvHead(dim, head_dim, 2, layers, kernel)
        nn.init.constant_(self.cls.out.conv.bias, -math.log((1 - prior) / prior))
        self.scales = nn.Parameter(torch.ones(num_levels))

    def forward(
        self, feats: list[torch.Tensor], masks: list[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per level: class logits ``(B, T_l, C)`` and non-negative offsets ``(B, T_l, 2)``."""
        logits, offsets = [], []
        for level, (x, m) in enumerate(zip(feats, masks)):
            logits.append(self.cls(x, m).transpose(1, 2))
            offsets.append(F.relu(self.scales[level] * self.reg(x, m)).transpose(1, 2))
        return logits, offsets
