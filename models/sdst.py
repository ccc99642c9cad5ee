"""SDST: Sparse-Dense Side-Tuner for moment retrieval + highlight detection (thesis Ch. 4, Eq. 4.1–4.22).

Frozen backbone features arrive per level: video ``[B, K, T, Fv]`` and text ``[B, K, L, Ft]`` (level ``ℓ`` =
backbone layer ``config.video_layers[ℓ-1]``). For ℓ = 1..K one SDST layer (shared weights unless
``shared=False``) updates three states (Eq. 4.1):

* dense stream (Eq. 4.2–4.4): ``V = F_v(Ṽ)``, ``T = F_t(T̃)`` (LN → Dropout → Linear → ReLU → LN → Dropout →
  Linear); ``D := β D + (1 − β) V`` with ``β = sigmoid(g_ℓ)``, ``g`` zero-initialised, ``D⁰ = 0``;
  ``D ← FFN(SA(CA(D, T, T)))`` — post-norm, residual + DropPath on every sub-block, sine positions on D.
* sparse stream (Eq. 4.5–4.6): M recurrent queries = references ``R`` (sigmoid (c, w)) + latents ``H``:
  ``H ← FFN(VIDEO(SA(CA(H, T, T))))`` with ``VIDEO`` = RDSA over ``D^{ℓ+1}`` (or deformable / standard CA,
  Tab 4.12); then ``R ← sigmoid(logit(R) + Reg(H))``, detached before the next level (iterative refinement).
* RDSA (Eq. 4.11–4.13): ``X̂ = CNN(D^{ℓ+1})[l, c, r]`` by linear interpolation at ``c − w/2, c, c + w/2``
  (``sampling_points`` picks which), MLP → 64-d, two linear heads → per head ``deform_points`` offsets Δ and
  softmaxed weights A; keys/values = ``value_proj(D^{ℓ+1})`` sampled at ``c + Δ · w / 2`` (Δ = ±1 are the
  current boundaries); ``output_proj`` of the weighted sum.

Heads (shared over levels): saliency = cosine(D^K, AdaPool(T^K)) (Eq. 4.14); class = Linear (focal, Eq. 4.15);
the regression MLP (depth 3) predicts the reference deltas (L1 + IoU, Eq. 4.16–4.17); actionness = 1-D
RoIAlign (``roi_size`` bins on the ``roi_expand``×-expanded, detached segment) of ``D^{ℓ+1}`` → MLP depth 3 →
sigmoid, L1 to the max IoU with any GT (Eq. 4.18). Alignment: video-level InfoNCE across the batch and
layer-wise InfoNCE across levels on (mapped clip at a positive clip, AdaPool(T^ℓ)) (Eq. 4.19–4.20).
Inference score ``sqrt(p · actionness)`` (Eq. 4.22; ``p`` alone when ``w_act`` is 0, since the actionness head
is then never trained); Soft-NMS is applied by the evaluate stage.

Decisions where the thesis is silent: level ℓ = 1 is the shallowest selected layer (Eq. 4.14 names the last
level's text T^K); the RDSA CNN is Conv1d k3 → LN → ReLU → Conv1d k3 (depthwise by default, see below) and its
MLP to 64-d has 2 layers; query positions are a parameter-free sine embedding of (c, w); the focal class loss
is normalised by the number of GT moments (Deformable-DETR / TadTR), not by M (Eq. 4.15), because with 1/M the
29 unmatched queries swamp the matched one; matching costs class 2 / L1 5 / IoU 2. Optional
``standardize_inputs`` z-scores features with training-split statistics kept as buffers (not in the thesis;
off by default).

Actionness loss (``act_loss``): Eq. 4.18 is an L1 between the sigmoid output and each query's max IoU with
any GT, over all M queries. Most queries overlap no GT (target 0), so L1 (whose minimiser is the median)
drives the head's pre-activation far negative within ~30 steps, where the sigmoid's gradient vanishes: the
head dies (actionness < 1e-3 for every query, uncorrelated with IoU) and the score √(p·actionness) ranks
windows by the dead head's noise. At K = 1 (``w/o tuning``) this left MR R1@0.5 at 0 on oracle features
(ranking by p alone gave 26); at K = 4 it cost MR mAP too (43.9 vs 53.8 by p alone). The default ``bce``
regresses the same target with a soft-label binary cross-entropy on the logit (gradient σ(x) − IoU, never
vanishing; minimiser the conditional mean), which keeps the head alive in both arms; ``l1`` is Eq. 4.18
literally.

Parameter budget: :mod:`models.sdst_budget` (``python -m models.sdst_budget``; real-dim defaults 4,149,764 vs
the thesis' 4.10 M, unshared 12,833,348 vs 12.43 M; ``cnn: depthwise`` is the RDSA-CNN reading that fits both).

Ablation switches (``sdst.model``): ``query_init`` pure / mixed = DINO query selection from the first-level
dense tokens (Tab 4.12; :meth:`SDST.select_queries`, its proposals get their own matching loss);
``sparse_order`` = which sparse sub-blocks run in which order (Tab 4.15 removal, Tab 4.18 permutations; the
norms keep their canonical indices); ``sparse_condition`` = what the video attention reads (V, D after CA,
after CA + SA, or D, Tab 4.16). Fig 4.5: :func:`weighted_offsets` (Σ_p A·Δ per level and head) rides on the
prediction rows. The R2-Tuning baseline (``architecture: r2tuning``) is :mod:`models.r2tuning`.

Batch (see ``pipeline.sdst.data.collate``): ``video [B,K,T,Fv]``, ``video_mask [B,T]`` (True = valid),
``text [B,K,L,Ft]``, ``text_mask [B,L]``, ``saliency [B,T]`` (≥ 0, 0 on padding), ``windows`` (list of
``[n_i, 2]`` normalised (start, end)), ``meta`` (list of dicts with ``qid``, ``vid``, ``duration``, ``time_step``,
``clip_len``).

The video attentions of the sparse stream (RDSA / deformable / standard CA) and the 1-D sampler live in
:mod:`models.sdst_attention`; this module holds the rest of the network, its losses and its inference.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.common import (
    MLP,
    hungarian_match,
    inverse_sigmoid,
    sigmoid_focal_loss,
    sine_position_encoding,
    span_cw_to_se,
    span_se_to_cw,
)
from models.sdst_attention import DeformableVideoAttention, StandardVideoAttention, sample_1d, xavier_mha
from models.sdst_budget import count_parameters, parameter_breakdown  # noqa: F401  (re-exported: one helper)
from models.sdst_config import SPARSE_BLOCKS, SDSTConfig, SDSTModelConfig
from models.sdst_losses import (
    alignment_losses,
    attention_pool,
    batched_iou,
    rows_to_clips,
    sample_positive,
    sampled_nce,
)

# ----------------------------------------------------------------------------- small pieces


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample with probability ``p`` in training (no
    learnable scale, unlike SADA's :class:`models.sada.backbone.AffineDropPath`)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


def input_map(in_dim: int, hidden: int, dropout: float) -> nn.Sequential:
    """LN → Dropout → Linear → ReLU → LN → Dropout → Linear (the R2-Tuning style modality map)."""
    return nn.Sequential(nn.LayerNorm(in_dim), nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.ReLU(),
                         nn.LayerNorm(hidden), nn.Dropout(dropout), nn.Linear(hidden, hidden))


class KaimingFFN(nn.Module):
    """Point-wise feed-forward network ``fc2(ReLU(fc1(x)))``, width ``dim · ratio``, Kaiming-initialised weights,
    zero biases and no dropout (unlike search-DETR's :class:`models.search_detr_layers.DropoutFFN`)."""

    def __init__(self, dim: int, ratio: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, dim * ratio), nn.Linear(dim * ratio, dim)
        for fc in (self.fc1, self.fc2):
            nn.init.kaiming_uniform_(fc.weight, nonlinearity="relu")
            nn.init.zeros_(fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x)))


class PostNorm(nn.Module):
    """``LN(x + DropPath(sublayer_out))`` — the post-norm residual wrapper used by every sub-block."""

    def __init__(self, dim: int, droppath: float):
        super().__init__()
        self.norm, self.drop = nn.LayerNorm(dim), DropPath(droppath)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.drop(y))


def reference_position(ref: torch.Tensor, dim: int) -> torch.Tensor:
    """Parameter-free sine embedding of (c, w) references ``[B, M, 2]`` → ``[B, M, dim]``."""
    half = dim // 2
    freq = 10000 ** (2 * (torch.arange(half // 2, device=ref.device, dtype=ref.dtype)) / half)
    parts = []
    for coord in ref.unbind(-1):
        ang = coord[..., None] * 2 * math.pi / freq
        parts += [ang.sin(), ang.cos()]
    return torch.cat(parts, dim=-1)


# ----------------------------------------------------------------------------- one SDST level


class SDSTLayer(nn.Module):
    """One refinement level: modality maps + dense stream + sparse stream (shared across levels by default)."""

    MAPS = ("video_map", "text_map")  # the groups ``unshared_modules`` picks from
    STREAMS = ("d_ca", "d_sa", "d_ffn", "d_norms", "s_ca", "s_sa", "s_ffn", "s_video", "s_norms")

    def __init__(self, cfg: SDSTModelConfig, video_dim: int, text_dim: int):
        super().__init__()
        d = cfg.hidden
        self.order = cfg.sparse_order.split("-")  # the sparse sub-blocks in order (Tab 4.15 / 4.18)
        # one post-norm per present block, numbered in the canonical ca/sa/def/ffn order (the default keeps
        # its checkpoint names s_norms.0-3); absent blocks are not built (no dead parameters)
        present = [blk for blk in SPARSE_BLOCKS if blk in self.order]
        self.norm_index = {blk: i for i, blk in enumerate(present)}
        self.video_map = input_map(video_dim, d, cfg.dropout)
        self.text_map = input_map(text_dim, d, cfg.dropout)
        # dense stream: CA(text) → SA → FFN
        self.d_ca, self.d_sa = xavier_mha(d, cfg.heads), xavier_mha(d, cfg.heads)
        self.d_ffn = KaimingFFN(d, cfg.ffn_ratio)
        self.d_norms = nn.ModuleList(PostNorm(d, cfg.droppath) for _ in range(3))
        # sparse stream (default CA(text) → SA → video attention → FFN); construction order fixed (seeded init)
        self.s_ca = xavier_mha(d, cfg.heads) if "ca" in present else None
        self.s_sa = xavier_mha(d, cfg.heads) if "sa" in present else None
        self.s_ffn = KaimingFFN(d, cfg.ffn_ratio) if "ffn" in present else None
        if "def" not in present:
            self.s_video = None
        elif cfg.attention == "standard_ca":
            self.s_video = StandardVideoAttention(cfg)
        else:
            self.s_video = DeformableVideoAttention(cfg, cfg.attention)
        self.s_norms = nn.ModuleList(PostNorm(d, cfg.droppath) for _ in present)

    def map_inputs(self, video: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.video_map(video), self.text_map(text)

    def dense(self, d, t, vmask, tmask, pos):
        """The dense update; returns (D after FFN, after CA, after CA + SA) — the latter two for Tab 4.16."""
        d_ca = self.d_norms[0](d, self.d_ca(d + pos, t, t, key_padding_mask=~tmask, need_weights=False)[0])
        q = d_ca + pos
        d_sa = self.d_norms[1](d_ca, self.d_sa(q, q, d_ca, key_padding_mask=~vmask, need_weights=False)[0])
        return self.d_norms[2](d_sa, self.d_ffn(d_sa)), d_ca, d_sa

    def sparse(self, h, ref, d, t, vmask, tmask, dense_pos):
        """The sparse update of the latents ``h`` over the video signal ``d``; returns (h, offsets Δ
        ``[B, M, H, P]``, their attention weights A) — both None without a deformable video attention."""
        qpos = reference_position(ref, h.shape[-1])
        offsets = weights = None
        for blk in self.order:
            norm = self.s_norms[self.norm_index[blk]]
            if blk == "ca":
                h = norm(h, self.s_ca(h + qpos, t, t, key_padding_mask=~tmask, need_weights=False)[0])
            elif blk == "sa":
                q = h + qpos
                h = norm(h, self.s_sa(q, q, h, need_weights=False)[0])
            elif blk == "def":
                if isinstance(self.s_video, StandardVideoAttention):
                    out, offsets, weights = self.s_video(h, ref, d, vmask, qpos, dense_pos)
                else:
                    out, offsets, weights = self.s_video(h + qpos, ref, d, vmask)
                h = norm(h, out)
            else:
                h = norm(h, self.s_ffn(h))
        return h, offsets, weights


# ----------------------------------------------------------------------------- the model


class SDST(nn.Module):
    """The side-tuner; ``SDST(config)`` rebuilds it (``pipeline.core.training`` contract)."""

    def __init__(self, config: SDSTConfig):
        super().__init__()
        if len(config.video_layers) != len(config.text_layers) or not config.video_layers:
            raise ValueError(f"SDST: video_layers {config.video_layers} and text_layers {config.text_layers} "
                             "must be non-empty and of equal length (one per level)")
        self.config = config
        cfg = config.model
        if cfg.architecture != "sdst":
            raise ValueError(f"SDST: sdst.model.architecture is {cfg.architecture!r}; build it with "
                             "models.side_tuners.build_side_tuner")
        if cfg.hidden % cfg.heads:
            raise ValueError(f"SDST: hidden {cfg.hidden} is not divisible by heads {cfg.heads}")
        d, k, m = cfg.hidden, config.num_levels, config.num_queries
        n_copies = 1 if cfg.shared else k  # unshared: K independently initialised layers (Tab 4.17)
        self.levels = nn.ModuleList(SDSTLayer(cfg, config.video_dim, config.text_dim) for _ in range(n_copies))
        if n_copies > 1 and cfg.unshared_modules != "layer":
            # the modules that stay shared are level 0's, referenced by every level (counted and trained once)
            keep = SDSTLayer.MAPS if cfg.unshared_modules == "streams" else SDSTLayer.STREAMS
            for layer in self.levels[1:]:
                for name in keep:
                    setattr(layer, name, getattr(self.levels[0], name))
        self.gate = nn.Parameter(torch.zeros(k))  # β = sigmoid(g), zero-initialised (Eq. 4.3)
        self.query_latent = nn.Parameter(torch.randn(m, d) * 0.02)
        c = torch.rand(m)
        w = 0.05 + 0.45 * torch.rand(m)
        self.query_ref = nn.Parameter(inverse_sigmoid(torch.stack([c, w], -1)))  # R⁰ in logit space
        self.text_pool = nn.Linear(d, 1, bias=False)  # AdaPooling scorer
        self.cls_head = MLP(d, d, 1, 1)
        self.reg_head = MLP(d, d, 2, 3)
        nn.init.zeros_(self.reg_head.layers[-1].weight)  # refinement starts as the identity
        nn.init.zeros_(self.reg_head.layers[-1].bias)
        nn.init.constant_(self.cls_head.layers[-1].bias, -math.log((1 - 0.01) / 0.01))
        self.act_head = MLP(cfg.roi_size * d, d, 1, 3)
        # per-level feature statistics (buffers: saved in checkpoints, never trained); identity until set
        self.register_buffer("video_mean", torch.zeros(k, config.video_dim))
        self.register_buffer("video_std", torch.ones(k, config.video_dim))
        self.register_buffer("text_mean", torch.zeros(k, config.text_dim))
        self.register_buffer("text_std", torch.ones(k, config.text_dim))
        if cfg.query_init != "static":  # built last: the static default's seeded initialisation is unchanged
            self.proposal_cls = nn.Linear(d, 1)  # scores every first-level dense token (DINO query selection)
            self.proposal_reg = MLP(d, d, 2, 3)  # its (c, w) proposal around the token
            nn.init.constant_(self.proposal_cls.bias, -math.log((1 - 0.01) / 0.01))

    def set_input_stats(self, video_mean: torch.Tensor, video_std: torch.Tensor, text_mean: torch.Tensor,
                        text_std: torch.Tensor) -> None:
        """Training-split mean / std per level and dim (``[K, D]``), used when ``standardize_inputs`` is on."""
        for name, value in (("video_mean", video_mean), ("video_std", video_std), ("text_mean", text_mean),
                            ("text_std", text_std)):
            buf = getattr(self, name)
            buf.copy_(value.to(buf).reshape(buf.shape))

    # ------------------------------------------------------------------ forward pieces

    def _level(self, i: int) -> SDSTLayer:
        return self.levels[i if len(self.levels) > 1 else 0]

    def adapool(self, t: torch.Tensor, tmask: torch.Tensor) -> torch.Tensor:
        """Learnable attention pooling of tokens ``[B, L, d]`` → ``[B, d]``."""
        return attention_pool(self.text_pool, t, tmask)

    def roi_features(self, dense: torch.Tensor, spans_cw: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """1-D RoIAlign: ``roi_size`` bin-centre samples of ``dense`` over each expanded span → ``[B, M, roi·d]``."""
        cfg = self.config.model
        b, m, _ = spans_cw.shape
        c, w = spans_cw.detach().unbind(-1)
        w = w * cfg.roi_expand
        frac = (torch.arange(cfg.roi_size, device=dense.device, dtype=dense.dtype) + 0.5) / cfg.roi_size
        pos = (c - w / 2)[..., None] + w[..., None] * frac  # [B, M, roi]
        feats = sample_1d(dense * mask[..., None], pos.reshape(b, -1), mask.sum(1), padding="zeros")
        return feats.reshape(b, m, -1)

    def run(self, batch: dict[str, Any]) -> dict[str, Any]:
        """All levels; returns per-level predictions and what the losses need."""
        cfg = self.config.model
        video, vmask = batch["video"], batch["video_mask"].bool()
        text, tmask = batch["text"], batch["text_mask"].bool()
        if cfg.standardize_inputs:
            video = (video - self.video_mean[None, :, None]) / self.video_std[None, :, None].clamp(min=1e-6)
            text = (text - self.text_mean[None, :, None]) / self.text_std[None, :, None].clamp(min=1e-6)
        if cfg.text_drop_first_token and text.shape[2] > 1:
            text, tmask = text[:, :, 1:], tmask[:, 1:]
        b, k, t_len, _ = video.shape
        if k != self.config.num_levels:
            raise ValueError(f"SDST: batch has {k} feature levels, model expects {self.config.num_levels}")
        d_dim = cfg.hidden
        pos = sine_position_encoding(t_len, d_dim, normalize=False).to(video)[None]
        dense = video.new_zeros(b, t_len, d_dim)
        latent = self.query_latent[None].expand(b, -1, -1)
        ref = self.query_ref.sigmoid()[None].expand(b, -1, -1)
        levels, proposals = [], None
        for i in range(k):
            layer = self._level(i)
            v, t = layer.map_inputs(video[:, i], text[:, i])
            beta = self.gate[i].sigmoid()
            dense = beta * dense + (1 - beta) * v
            dense, after_ca, after_sa = layer.dense(dense, t, vmask, tmask, pos)
            if i == 0 and cfg.query_init != "static":
                latent, ref, proposals = self.select_queries(dense, vmask, latent, ref)
            signal = {"ffn": dense, "ca": after_ca, "ca_sa": after_sa, "raw": v}[cfg.sparse_condition]
            latent, offsets, weights = layer.sparse(latent, ref, signal, t, vmask, tmask, pos)
            new_ref = (inverse_sigmoid(ref) + self.reg_head(latent)).sigmoid()
            logits = self.cls_head(latent).squeeze(-1)
            act_logit = self.act_head(self.roi_features(dense, new_ref, vmask)).squeeze(-1)
            levels.append({"spans": new_ref, "logits": logits, "actionness": act_logit.sigmoid(),
                           "act_logit": act_logit, "offsets": offsets, "offset_weights": weights,
                           "video": v, "text_pool": self.adapool(t, tmask)})
            ref = new_ref.detach()
        t_pool = levels[-1]["text_pool"]
        saliency = F.cosine_similarity(dense, t_pool[:, None], dim=-1).masked_fill(~vmask, 0.0)
        return {"levels": levels, "saliency": saliency, "dense": dense, "video_mask": vmask, "proposals": proposals}

    def select_queries(self, dense: torch.Tensor, vmask: torch.Tensor, latent: torch.Tensor, ref: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """DINO-style query selection (Tab 4.12 PureInit / MixedInit) from the first-level dense tokens.

        Every valid token gets a score and a (c, w) proposal (centre = the row's centre shifted by the
        regression head, width from a 0.05 prior); the top-M tokens' detached proposals become the references,
        and their detached features the latents (``pure``) or the learned latents stay (``mixed``). Where a
        video has fewer valid rows than M, the remaining queries keep the static ones. Returns (latents,
        references, proposals of the selected tokens with gradients: ``spans`` / ``logits`` for the loss)."""
        b, t_len, _ = dense.shape
        m = latent.shape[1]
        lengths = vmask.sum(1, keepdim=True).to(dense.dtype)
        centre = (torch.arange(t_len, device=dense.device, dtype=dense.dtype)[None] + 0.5) / lengths
        prior = torch.stack([centre.clamp(1e-3, 1 - 1e-3), torch.full_like(centre, 0.05)], -1)
        spans = (inverse_sigmoid(prior) + self.proposal_reg(dense)).sigmoid()  # [B, T, 2]
        score = self.proposal_cls(dense).squeeze(-1).masked_fill(~vmask, float("-inf"))
        n = min(m, t_len)
        top, idx = score.topk(n, dim=1)
        valid = torch.isfinite(top)
        pad = m - n  # a batch shorter than M rows: the last queries stay static
        sel_spans = spans.gather(1, idx[..., None].expand(-1, -1, 2))
        new_ref = torch.where(valid[..., None], sel_spans.detach(), ref[:, :n])
        new_ref = torch.cat([new_ref, ref[:, n:]], 1) if pad else new_ref
        if self.config.model.query_init == "pure":
            sel = dense.gather(1, idx[..., None].expand(-1, -1, dense.shape[-1])).detach()
            new_latent = torch.where(valid[..., None], sel, latent[:, :n])
            latent = torch.cat([new_latent, latent[:, n:]], 1) if pad else new_latent
        logits = top.masked_fill(~valid, -1e4)  # invalid picks: a confident "no moment" for the focal loss
        return latent, new_ref, {"spans": sel_spans, "logits": logits}

    # ------------------------------------------------------------------ training

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Training losses: ``loss`` plus the weighted-sum's terms (unweighted) for logging."""
        cfg = self.config.model
        out = self.run(batch)
        windows = [w.to(out["saliency"]).reshape(-1, 2) for w in batch["windows"]]
        num_gt = max(1, sum(len(w) for w in windows))
        levels = out["levels"] if cfg.aux_loss else out["levels"][-1:]
        mr = {"cls": 0.0, "l1": 0.0, "iou": 0.0, "act": 0.0}
        for lvl in levels:
            for key, val in self._mr_losses(lvl, windows, num_gt).items():
                mr[key] = mr[key] + val / len(levels)
        vmask = out["video_mask"]
        sal = batch["saliency"].to(out["saliency"]) * vmask
        pos_idx = sample_positive(sal, vmask)
        l_sal = self._sampled_nce(out["saliency"], sal, vmask, pos_idx)
        l_av, l_al = self._alignment(out["levels"], pos_idx)
        loss = (cfg.w_cls * mr["cls"] + cfg.w_l1 * mr["l1"] + cfg.w_iou * mr["iou"] + cfg.w_act * mr["act"]
                + cfg.w_sal * l_sal + cfg.w_align_video * l_av + cfg.w_align_layer * l_al)
        losses = {"loss_cls": mr["cls"], "loss_l1": mr["l1"], "loss_iou": mr["iou"], "loss_act": mr["act"],
                  "loss_sal": l_sal, "loss_align_video": l_av, "loss_align_layer": l_al}
        if out["proposals"] is not None:  # query selection: the selected proposals' own matching loss (DINO)
            prop = self._mr_losses(out["proposals"], windows, num_gt)
            losses["loss_proposal"] = cfg.w_cls * prop["cls"] + cfg.w_l1 * prop["l1"] + cfg.w_iou * prop["iou"]
            loss = loss + losses["loss_proposal"]
        return {"loss": loss, **losses}

    def _mr_losses(self, lvl: dict, windows: list[torch.Tensor], num_gt: int) -> dict[str, torch.Tensor]:
        """Focal / L1 / IoU on Hungarian-matched queries and actionness L1 on all queries, for one level.

        Costs are computed for the whole batch on the model's device and copied to the CPU once per level;
        only the tiny per-sample assignments run in scipy."""
        cfg = self.config.model
        spans, logits = lvl["spans"], lvl["logits"]
        b = spans.shape[0]
        g = max(1, max(len(w) for w in windows))
        gt = spans.new_zeros(b, g, 2)
        gt_valid = torch.zeros(b, g, dtype=torch.bool, device=spans.device)
        for bi, w in enumerate(windows):
            gt[bi, : len(w)] = w
            gt_valid[bi, : len(w)] = True
        gt_cw = span_se_to_cw(gt)
        with torch.no_grad():
            p = logits.detach().float().sigmoid()
            a, gam = cfg.focal_alpha, cfg.focal_gamma
            cls_cost = a * (1 - p) ** gam * -(p + 1e-8).log() - (1 - a) * p**gam * -(1 - p + 1e-8).log()
            s_det = spans.detach().float()
            iou_all = batched_iou(span_cw_to_se(s_det), gt.float())  # [B, M, G]
            cost = (cfg.cost_class * cls_cost[..., None] + cfg.cost_l1 * torch.cdist(s_det, gt_cw.float(), p=1)
                    - cfg.cost_iou * iou_all).cpu().numpy()
        bidx, ridx, cidx = [], [], []
        for bi, w in enumerate(windows):
            rows, cols = hungarian_match(cost[bi, :, : len(w)])
            bidx += [bi] * len(rows)
            ridx += rows.tolist()
            cidx += cols.tolist()
        bidx_t, ridx_t, cidx_t = (torch.as_tensor(x, dtype=torch.long, device=spans.device) for x in (bidx, ridx, cidx))
        target_cls = torch.zeros_like(logits)
        target_cls[bidx_t, ridx_t] = 1.0
        pred, tgt = spans[bidx_t, ridx_t], gt_cw[bidx_t, cidx_t]
        l1 = (pred - tgt).abs().sum()
        ious = batched_iou(span_cw_to_se(pred)[:, None], span_cw_to_se(tgt)[:, None])[:, 0, 0]
        iou = (1 - ious).sum()
        best = iou_all.masked_fill(~gt_valid[:, None, :], 0.0).max(-1).values  # 0 for samples without GT
        if "act_logit" not in lvl:  # query-selection proposals have no actionness
            act_loss = spans.sum() * 0
        elif cfg.act_loss == "bce":
            act_loss = F.binary_cross_entropy_with_logits(lvl["act_logit"], best.to(spans.dtype))
        else:  # Eq. 4.18 literally
            act_loss = (lvl["actionness"] - best.to(spans.dtype)).abs().mean()
        cls = sigmoid_focal_loss(logits, target_cls, cfg.focal_alpha, cfg.focal_gamma, reduction="sum") / num_gt
        return {"cls": cls, "l1": l1 / num_gt, "iou": iou / num_gt, "act": act_loss}

    def _sampled_nce(self, scores: torch.Tensor, sal: torch.Tensor, vmask: torch.Tensor,
                     pos_idx: torch.Tensor) -> torch.Tensor:
        """SampledNCE (:func:`models.sdst_losses.sampled_nce`) at ``sdst.model.temperature``."""
        return sampled_nce(scores, sal, vmask, pos_idx, self.config.model.temperature)

    def _alignment(self, levels: list[dict], pos_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Video-level and layer-wise InfoNCE (:func:`models.sdst_losses.alignment_losses`)."""
        return alignment_losses(levels, pos_idx, self.config.model.temperature)

    # ------------------------------------------------------------------ inference

    @torch.no_grad()
    def predict(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        """Raw predictions per query: all M windows in seconds with score √(p·actionness) (descending; p alone
        when ``w_act`` is 0), and one saliency score per ``clip_len``-second clip. NMS happens in the evaluate
        stage."""
        out = self.run(batch)
        last = out["levels"][-1]
        score = last["logits"].float().sigmoid()
        if self.config.model.w_act != 0:  # w_act = 0: the actionness head is never trained, so p alone ranks
            score = (score * last["actionness"].float()).clamp(min=0).sqrt()
        spans = span_cw_to_se(last["spans"].float()).clamp(0, 1)
        lengths = out["video_mask"].sum(1)
        offsets = weighted_offsets(out["levels"])
        rows = []
        for bi, meta in enumerate(batch["meta"]):
            n = int(lengths[bi])
            span_sec = (spans[bi] * n * meta["time_step"]).clamp(max=meta["duration"]).cpu().numpy()
            sc = score[bi].cpu().numpy()
            order = np.argsort(-sc, kind="stable")
            windows = [[round(float(span_sec[i, 0]), 4), round(float(span_sec[i, 1]), 4), round(float(sc[i]), 6)]
                       for i in order]
            sal_rows = out["saliency"][bi, :n].float().cpu().numpy()
            row = {"qid": meta["qid"], "vid": meta["vid"], "pred_relevant_windows": windows,
                   "pred_saliency_scores": rows_to_clips(sal_rows, meta)}
            if offsets is not None:  # Fig 4.5: per level and head, Σ_p A·Δ averaged over the M queries
                row["weighted_offsets"] = [[round(float(v), 5) for v in lvl] for lvl in offsets[bi]]
            rows.append(row)
        return rows


def weighted_offsets(levels: list[dict]) -> torch.Tensor | None:
    """Fig 4.5's weighted offset ``d_q = Σ_p A_{q,p} Δ_{q,p}`` per level and head, averaged over the M queries
    → ``[B, K, H]`` (in half-widths: ±1 = the reference's boundaries); None without deformable attention."""
    if any(lvl.get("offsets") is None or lvl.get("offset_weights") is None for lvl in levels):
        return None
    return torch.stack([(lvl["offsets"] * lvl["offset_weights"]).sum(-1).float().mean(1) for lvl in levels], 1)
