"""Adversarial anchor alignment: SADA's local + background terms and the global (DANN) term (Eq. 2.4–2.9).

Per pyramid level, anchors pass a gradient-reversal layer and then a discriminator MLP that predicts the
domain (0 = source, 1 = target). The semantic discriminator sees ``[anchor ‖ e_c]`` with a learnable class
embedding ``e_c`` (``e_0`` = background); the global one sees the anchor alone. Each BCE term is the mean over
one (class, domain) group, summed over the groups present, exactly as Eq. 2.7/2.8 write it.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from models.common import MLP, grad_reverse

ALIGN_TERMS = ("local", "global", "bkg")
CLASS_EMBEDS = ("learnable", "onehot", "random", "sinusoidal")  # thesis Tab. 2.10


def sinusoidal_table(rows: int, dim: int) -> torch.Tensor:
    """Transformer sinusoidal encoding [68] of positions ``0 … rows-1``: ``sin`` on even, ``cos`` on odd
    channels, wavelengths ``10000^(2i/dim)``."""
    pos = torch.arange(rows, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    table = torch.zeros(rows, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table


class ClassEmbedding(nn.Module):
    """``e_i`` of Eq. 2.7/2.8 for classes ``0 … C`` (0 = background), ``kind`` one of :data:`CLASS_EMBEDS`:
    ``learnable`` (the thesis' choice, an ``nn.Embedding``), or a fixed table — ``onehot`` (width C + 1, so
    ``dim`` is ignored), ``random`` (N(0, 1) drawn once at construction, stored as a buffer) or
    ``sinusoidal`` (class index as position)."""

    def __init__(self, rows: int, dim: int, kind: str = "learnable"):
        super().__init__()
        if kind not in CLASS_EMBEDS:
            raise ValueError(f"unknown class embedding {kind!r}; expected one of {CLASS_EMBEDS}")
        self.kind = kind
        self.weight = None
        if kind == "learnable":  # initialised exactly as nn.Embedding (same parameter name in checkpoints)
            self.weight = nn.Parameter(torch.empty(rows, dim))
            nn.init.normal_(self.weight)
        elif kind == "onehot":
            self.register_buffer("table", torch.eye(rows))
        elif kind == "random":
            self.register_buffer("table", torch.randn(rows, dim))
        elif kind == "sinusoidal":
            self.register_buffer("table", sinusoidal_table(rows, dim))

    @property
    def dim(self) -> int:
        return (self.weight if self.weight is not None else self.table).shape[1]

    def forward(self, classes: torch.Tensor) -> torch.Tensor:
        return F.embedding(classes, self.weight) if self.weight is not None else self.table[classes]


def pseudo_labels(logits: torch.Tensor, alpha: float) -> torch.Tensor:
    """Hard pseudo-labels (Eq. 2.4): ``1 + argmax_i p_i`` where ``max_i p_i > alpha``, else 0 (background)."""
    probs = torch.sigmoid(logits.detach())
    best, cls = probs.max(dim=-1)
    return torch.where(best > alpha, cls + 1, torch.zeros_like(cls))


def grouped_bce(logits: torch.Tensor, domains: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Σ over (group, domain) cells present of the mean BCE of that cell's domain predictions.

    Args:
        logits: ``[N]`` discriminator logits; domains: ``[N]`` in {0, 1}; groups: ``[N]`` non-negative ids.
    """
    if logits.numel() == 0:
        return logits.sum()
    bce = F.binary_cross_entropy_with_logits(logits, domains.to(logits.dtype), reduction="none")
    cell = groups.long() * 2 + domains.long()
    size = int(cell.max()) + 1
    sums = torch.zeros(size, dtype=bce.dtype, device=bce.device).index_add(0, cell, bce)
    counts = torch.bincount(cell, minlength=size).to(bce.dtype)
    present = counts > 0
    return (sums[present] / counts[present]).sum()


class DomainAlignment(nn.Module):
    """Per-level domain discriminators behind a GRL, for any subset of ``{local, global, bkg}``.

    Args:
        anchor_dim: width F of the anchor embeddings (the neck output).
        num_classes: C action classes; the class-embedding table has C + 1 rows (row 0 = background).
        num_levels: pyramid levels (one discriminator per level and kind).
        align: the enabled terms; empty = source-only (no parameters are created).
        embed_dim: width of the class embeddings ``e_i``.
        hidden / layers: discriminator MLP width and depth (thesis: 512, 2).
        grl_coeff: gradient-reversal coefficient (callers may pass a ramped value per step instead).
        class_embed: how ``e_i`` is built (:class:`ClassEmbedding`; thesis Tab. 2.10).
    """

    def __init__(
        self,
        anchor_dim: int,
        num_classes: int,
        num_levels: int,
        align: Iterable[str],
        embed_dim: int,
        hidden: int,
        layers: int,
        grl_coeff: float,
        class_embed: str = "learnable",
    ):
        super().__init__()
        self.align = frozenset(align)
        unknown = self.align - set(ALIGN_TERMS)
        if unknown:
            raise ValueError(f"unknown alignment term(s) {sorted(unknown)}; expected a subset of {ALIGN_TERMS}")
        self.grl_coeff = grl_coeff
        self.semantic = None
        self.glob = None
        if self.align & {"local", "bkg"}:
            self.class_embed = ClassEmbedding(num_classes + 1, embed_dim, class_embed)
            width = anchor_dim + self.class_embed.dim
            self.semantic = nn.ModuleList(MLP(width, hidden, 1, layers) for _ in range(num_levels))
        if "global" in self.align:
            self.glob = nn.ModuleList(MLP(anchor_dim, hidden, 1, layers) for _ in range(num_levels))

    @property
    def enabled(self) -> bool:
        return bool(self.align)

    def semantic_inputs(self, anchors: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """``[anchor ‖ e_class]`` rows fed to a semantic discriminator (exposed for tests and inspection)."""
        return torch.cat([anchors, self.class_embed(classes)], dim=-1)

    def level_loss(
        self, level: int, anchors: torch.Tensor, classes: torch.Tensor, domains: torch.Tensor,
        coeff: float | None = None,
    ) -> dict[str, torch.Tensor]:
        """The enabled terms of one level.

        Args:
            anchors: ``[N, F]`` valid anchors of both domains; classes: ``[N]`` (GT class for source,
                pseudo-label for target, 0 = background); domains: ``[N]`` (0 source, 1 target).
        """
        x = grad_reverse(anchors, self.grl_coeff if coeff is None else coeff)
        terms: dict[str, torch.Tensor] = {}
        if self.semantic is not None:
            use_local, use_bkg = "local" in self.align, "bkg" in self.align
            keep = (classes > 0) & use_local | (classes == 0) & use_bkg
            logits = self.semantic[level](self.semantic_inputs(x[keep], classes[keep])).squeeze(-1)
            cls_k, dom_k = classes[keep], domains[keep]
            if use_local:
                fg = cls_k > 0
                terms["local"] = grouped_bce(logits[fg], dom_k[fg], cls_k[fg])
            if use_bkg:
                bg = cls_k == 0
                terms["bkg"] = grouped_bce(logits[bg], dom_k[bg], cls_k[bg])
        if self.glob is not None:
            logits = self.glob[level](x).squeeze(-1)
            terms["global"] = grouped_bce(logits, domains, torch.zeros_like(domains))
        return terms

    def forward(
        self,
        anchors: list[torch.Tensor],
        classes: list[torch.Tensor],
        domains: list[torch.Tensor],
        level_weights: list[float],
        coeff: float | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``L_sada = Σ_l λ_l Σ_terms L_term^l`` (Eq. 2.9) and the λ-weighted total of each term."""
        total = anchors[0].new_zeros(())
        parts = {name: anchors[0].new_zeros(()) for name in sorted(self.align)}
        for level, (a, c, d) in enumerate(zip(anchors, classes, domains)):
            weight = level_weights[level]
            if weight == 0 or a.shape[0] == 0:
                continue
            for name, value in self.level_loss(level, a, c, d, coeff).items():
                parts[name] = parts[name] + weight * value
                total = total + weight * value
        return total, parts
