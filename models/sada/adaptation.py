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
from models.distributed import sum_over_ranks, world_size

ALIGN_TERMS = ("local", "global", "bkg", "centroid", "wasserstein")
# Tab. 2.6 baselines on the same anchors: "centroid" = MSTN's semantic loss [83] (with "global" it is MSTN),
# "wasserstein" = WDGRL's critic [80]. Their constants are the papers' (MSTN θ = 0.7; WDGRL γ = 10).
MSTN_THETA = 0.7
WDGRL_GP = 10.0
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


def gradient_penalty(critic: nn.Module, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """WDGRL's ``E[(‖∇ f(x̂)‖ − 1)²]`` on random interpolates ``x̂`` of (detached) source/target rows, paired in
    order after a random permutation of each side (``min`` of the two counts; torch's RNG)."""
    n = min(source.shape[0], target.shape[0])
    if n == 0:
        return source.new_zeros(())
    src = source.detach()[torch.randperm(source.shape[0], device=source.device)[:n]]
    tgt = target.detach()[torch.randperm(target.shape[0], device=target.device)[:n]]
    mix = torch.rand(n, 1, device=source.device, dtype=source.dtype)
    points = (mix * src + (1 - mix) * tgt).requires_grad_(True)
    grad, = torch.autograd.grad(critic(points).sum(), points, create_graph=True)
    return (grad.norm(dim=-1) - 1).pow(2).mean()


def grouped_bce(logits: torch.Tensor, domains: torch.Tensor, groups: torch.Tensor,
                sync_groups: int = 0) -> torch.Tensor:
    """Σ over (group, domain) cells present of the mean BCE of that cell's domain predictions.

    Args:
        logits: ``[N]`` discriminator logits; domains: ``[N]`` in {0, 1}; groups: ``[N]`` non-negative ids.
        sync_groups: under DDP, the number of group ids (``groups < sync_groups``): the cells' sizes are summed
            over the ranks and this rank's share is ``world · Σ_cells (its BCE sum / global cell size)``, so the
            gradient DDP averages equals the single-process one on the global batch. 0 = this batch alone.
    """
    if sync_groups:
        world = world_size()
        bce = F.binary_cross_entropy_with_logits(logits, domains.to(logits.dtype), reduction="none")
        cell = groups.long() * 2 + domains.long()
        sums = logits.new_zeros(2 * sync_groups).index_add(0, cell, bce)
        counts = sum_over_ranks(torch.bincount(cell, minlength=2 * sync_groups).to(bce.dtype))
        present = counts > 0
        return world * (sums[present] / counts[present]).sum()
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
        self.num_classes = num_classes
        self.semantic = None
        self.glob = None
        if self.align & {"local", "bkg"}:
            self.class_embed = ClassEmbedding(num_classes + 1, embed_dim, class_embed)
            width = anchor_dim + self.class_embed.dim
            self.semantic = nn.ModuleList(MLP(width, hidden, 1, layers) for _ in range(num_levels))
        if "global" in self.align:
            self.glob = nn.ModuleList(MLP(anchor_dim, hidden, 1, layers) for _ in range(num_levels))
        self.critic = None
        if "wasserstein" in self.align:  # WDGRL: a domain critic per level (the discriminator's shape)
            self.critic = nn.ModuleList(MLP(anchor_dim, hidden, 1, layers) for _ in range(num_levels))
        if "centroid" in self.align:  # MSTN: moving class centroids per level and domain (training state)
            self.register_buffer("centroids", torch.zeros(num_levels, 2, num_classes + 1, anchor_dim))
            self.register_buffer("centroid_seen", torch.zeros(num_levels, 2, num_classes + 1, dtype=torch.bool))

    @property
    def enabled(self) -> bool:
        return bool(self.align)

    def semantic_inputs(self, anchors: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """``[anchor ‖ e_class]`` rows fed to a semantic discriminator (exposed for tests and inspection)."""
        return torch.cat([anchors, self.class_embed(classes)], dim=-1)

    def level_loss(
        self, level: int, anchors: torch.Tensor, classes: torch.Tensor, domains: torch.Tensor,
        coeff: float | None = None, sync: bool = False,
    ) -> dict[str, torch.Tensor]:
        """The enabled terms of one level.

        Args:
            anchors: ``[N, F]`` valid anchors of both domains; classes: ``[N]`` (GT class for source,
                pseudo-label for target, 0 = background); domains: ``[N]`` (0 source, 1 target).
            sync: normalise the cell means by the cells' sizes over all DDP ranks (:func:`grouped_bce`).
        """
        groups = self.num_classes + 1 if sync else 0
        x = grad_reverse(anchors, self.grl_coeff if coeff is None else coeff)
        terms: dict[str, torch.Tensor] = {}
        if self.semantic is not None:
            use_local, use_bkg = "local" in self.align, "bkg" in self.align
            keep = (classes > 0) & use_local | (classes == 0) & use_bkg
            logits = self.semantic[level](self.semantic_inputs(x[keep], classes[keep])).squeeze(-1)
            cls_k, dom_k = classes[keep], domains[keep]
            if use_local:
                fg = cls_k > 0
                terms["local"] = grouped_bce(logits[fg], dom_k[fg], cls_k[fg], groups)
            if use_bkg:
                bg = cls_k == 0
                terms["bkg"] = grouped_bce(logits[bg], dom_k[bg], cls_k[bg], groups)
        if self.glob is not None:
            logits = self.glob[level](x).squeeze(-1)
            terms["global"] = grouped_bce(logits, domains, torch.zeros_like(domains), 1 if sync else 0)
        if self.critic is not None:
            terms["wasserstein"] = self.wasserstein_loss(level, x, domains)
        if "centroid" in self.align:
            ramp = self.grl_coeff if coeff is None else coeff
            terms["centroid"] = ramp * self.centroid_loss(level, anchors, classes, domains)
        return terms

    def wasserstein_loss(self, level: int, x: torch.Tensor, domains: torch.Tensor) -> torch.Tensor:
        """WDGRL [80] behind the GRL: ``−(E_s f − E_t f) + γ·GP``. Minimising it trains the critic ``f`` to
        estimate the Wasserstein-1 distance (Kantorovich dual, Lipschitz by the gradient penalty); the reversed
        gradient makes the anchors ``x`` descend that distance. One critic step per detector step (WDGRL
        trains the critic several inner steps; the shared training loop has one optimiser step)."""
        src, tgt = x[domains == 0], x[domains == 1]
        if src.shape[0] == 0 or tgt.shape[0] == 0:
            return x.sum() * 0.0
        critic = self.critic[level]
        distance = critic(src).mean() - critic(tgt).mean()
        return -distance + WDGRL_GP * gradient_penalty(critic, src, tgt)

    def centroid_loss(self, level: int, anchors: torch.Tensor, classes: torch.Tensor,
                      domains: torch.Tensor) -> torch.Tensor:
        """MSTN's semantic loss [83]: ``Σ_k ‖C_S^k − C_T^k‖²`` over the classes (background = class 0) whose
        moving centroids exist in both domains. A class in the batch updates its centroid as
        ``C ← θ C_old + (1 − θ) C_batch`` (θ = :data:`MSTN_THETA`; the first sighting takes ``C_batch``), the
        gradient flowing through ``C_batch`` only; target classes are the pseudo-labels. No GRL: the anchors
        minimise the distance directly. The stored centroids change only in training mode."""
        groups = self.centroids.shape[2]
        current, seen = [], []
        for d in (0, 1):
            sel = domains == d
            cls = classes[sel]
            sums = anchors.new_zeros(groups, anchors.shape[1]).index_add(0, cls, anchors[sel])
            counts = torch.bincount(cls, minlength=groups)
            present = counts > 0
            batch = sums / counts.clamp(min=1).to(sums.dtype)[:, None]
            theta = torch.where(self.centroid_seen[level, d], MSTN_THETA, 0.0).to(sums.dtype)[:, None]
            moved = torch.where(present[:, None], theta * self.centroids[level, d] + (1 - theta) * batch,
                                self.centroids[level, d])
            now_seen = self.centroid_seen[level, d] | present
            if self.training:
                self.centroids[level, d] = moved.detach()
                self.centroid_seen[level, d] = now_seen
            current.append(moved)
            seen.append(now_seen)
        both = seen[0] & seen[1]
        return (current[0] - current[1]).pow(2).sum(-1)[both].sum()

    def forward(
        self,
        anchors: list[torch.Tensor],
        classes: list[torch.Tensor],
        domains: list[torch.Tensor],
        level_weights: list[float],
        coeff: float | None = None,
        sync: bool = False,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``L_sada = Σ_l λ_l Σ_terms L_term^l`` (Eq. 2.9) and the λ-weighted total of each term (``sync``: see
        :meth:`level_loss`; every rank then evaluates every level, as the collectives require)."""
        total = anchors[0].new_zeros(())
        parts = {name: anchors[0].new_zeros(()) for name in sorted(self.align)}
        for level, (a, c, d) in enumerate(zip(anchors, classes, domains)):
            weight = level_weights[level]
            if weight == 0 or (a.shape[0] == 0 and not sync):
                continue
            for name, value in self.level_loss(level, a, c, d, coeff, sync).items():
                parts[name] = parts[name] + weight * value
                total = total + weight * value
        return total, parts
