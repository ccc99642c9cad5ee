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

Parameter budget (:mod:`models.sdst_budget`, ``python -m models.sdst_budget``): at real dims (video 768,
text 1024, M 30, K 4) the defaults have 4,149,764 trainable parameters (thesis 4.10 M: +1.2 % in 10^6 units,
−3.5 % in 2^20) and ``shared=False`` 12,833,348 (thesis 12.43 M: +3.2 % / −1.5 %). The thesis' two totals put
≈ 2.78 M in each level and ≈ 1.32 M outside them; the code's part outside the levels (actionness MLP on the
flattened 16×256 RoI 1,114,881 — TadTR's head, as the thesis says —, regression 132,098, queries 7,740, gates +
AdaPool + class head 517) already matches, so the former surplus (4,541,444 / 14,400,068) was per level: the
RDSA context CNN with full 256→256 k3 convs (394,240). The thesis describes it as "a 2-layer CNN with a hidden
dimension of 256, a learnable LayerNorm, and a non-linearity" without the conv type; ``cnn: depthwise`` (2,560)
is the reading that fits both totals, ``full`` keeps the former network, ``none`` drops it (Tab 4.13's
extracted ticks even put the best row without a CNN, against the text). ``shared=False`` duplicates what
``unshared_modules`` says (default the whole layer: maps + both streams). ``w/o tuning`` is the same network
at K = 1 (4,149,761); the thesis' 2.70 M w/o-tuning figure is R2-Tuning's count, a different model.

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
from models.sdst_config import SDSTConfig, SDSTModelConfig

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
        self.video_map = input_map(video_dim, d, cfg.dropout)
        self.text_map = input_map(text_dim, d, cfg.dropout)
        # dense stream: CA(text) → SA → FFN
        self.d_ca, self.d_sa = xavier_mha(d, cfg.heads), xavier_mha(d, cfg.heads)
        self.d_ffn = KaimingFFN(d, cfg.ffn_ratio)
        self.d_norms = nn.ModuleList(PostNorm(d, cfg.droppath) for _ in range(3))
        # sparse stream: CA(text) → SA → video attention → FFN
        self.s_ca, self.s_sa = xavier_mha(d, cfg.heads), xavier_mha(d, cfg.heads)
        self.s_ffn = KaimingFFN(d, cfg.ffn_ratio)
        if cfg.attention == "standard_ca":
            self.s_video = StandardVideoAttention(cfg)
        else:
            self.s_video = DeformableVideoAttention(cfg, cfg.attention)
        self.s_norms = nn.ModuleList(PostNorm(d, cfg.droppath) for _ in range(4))

    def map_inputs(self, video: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.video_map(video), self.text_map(text)

    def dense(self, d, t, vmask, tmask, pos):
        d = self.d_norms[0](d, self.d_ca(d + pos, t, t, key_padding_mask=~tmask, need_weights=False)[0])
        q = d + pos
        d = self.d_norms[1](d, self.d_sa(q, q, d, key_padding_mask=~vmask, need_weights=False)[0])
        return self.d_norms[2](d, self.d_ffn(d))

    def sparse(self, h, ref, d, t, vmask, tmask, dense_pos):
        qpos = reference_position(ref, h.shape[-1])
        h = self.s_norms[0](h, self.s_ca(h + qpos, t, t, key_padding_mask=~tmask, need_weights=False)[0])
        q = h + qpos
        h = self.s_norms[1](h, self.s_sa(q, q, h, need_weights=False)[0])
        if isinstance(self.s_video, StandardVideoAttention):
            out, offsets = self.s_video(h, ref, d, vmask, qpos, dense_pos)
        else:
            out, offsets = self.s_video(h + qpos, ref, d, vmask)
        h = self.s_norms[2](h, out)
        return self.s_norms[3](h, self.s_ffn(h)), offsets


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
        score = self.text_pool(t).squeeze(-1).masked_fill(~tmask, float("-inf"))
        return (score.softmax(-1)[..., None] * t).sum(1)

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
        levels = []
        for i in range(k):
            layer = self._level(i)
            v, t = layer.map_inputs(video[:, i], text[:, i])
            beta = self.gate[i].sigmoid()
            dense = beta * dense + (1 - beta) * v
            dense = layer.dense(dense, t, vmask, tmask, pos)
            latent, offsets = layer.sparse(latent, ref, dense, t, vmask, tmask, pos)
            new_ref = (inverse_sigmoid(ref) + self.reg_head(latent)).sigmoid()
            logits = self.cls_head(latent).squeeze(-1)
            act_logit = self.act_head(self.roi_features(dense, new_ref, vmask)).squeeze(-1)
            levels.append({"spans": new_ref, "logits": logits, "actionness": act_logit.sigmoid(),
                           "act_logit": act_logit, "offsets": offsets,
                           "video": v, "text_pool": self.adapool(t, tmask)})
            ref = new_ref.detach()
        t_pool = levels[-1]["text_pool"]
        saliency = F.cosine_similarity(dense, t_pool[:, None], dim=-1).masked_fill(~vmask, 0.0)
        return {"levels": levels, "saliency": saliency, "dense": dense, "video_mask": vmask}

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
        pos_idx = _sample_positive(sal, vmask)
        l_sal = self._sampled_nce(out["saliency"], sal, vmask, pos_idx)
        l_av, l_al = self._alignment(out["levels"], pos_idx)
        loss = (cfg.w_cls * mr["cls"] + cfg.w_l1 * mr["l1"] + cfg.w_iou * mr["iou"] + cfg.w_act * mr["act"]
                + cfg.w_sal * l_sal + cfg.w_align_video * l_av + cfg.w_align_layer * l_al)
        return {"loss": loss, "loss_cls": mr["cls"], "loss_l1": mr["l1"], "loss_iou": mr["iou"],
                "loss_act": mr["act"], "loss_sal": l_sal, "loss_align_video": l_av, "loss_align_layer": l_al}

    def _mr_losses(self, lvl: dict, windows: list[torch.Tensor], num_gt: int) -> dict[str, torch.Tensor]:
        """Focal / L1 / IoU on Hungarian-matched queries and actionness L1 on all queries, for one level.

        Costs are computed for the whole batch on the model's device and copied to the CPU once per level;
        only the tiny per-sample assignments run in scipy."""
        cfg = self.config.model
        spans, logits, act = lvl["spans"], lvl["logits"], lvl["actionness"]
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
            iou_all = _batched_iou(span_cw_to_se(s_det), gt.float())  # [B, M, G]
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
        ious = _batched_iou(span_cw_to_se(pred)[:, None], span_cw_to_se(tgt)[:, None])[:, 0, 0]
        iou = (1 - ious).sum()
        best = iou_all.masked_fill(~gt_valid[:, None, :], 0.0).max(-1).values  # 0 for samples without GT
        if cfg.act_loss == "bce":
            act_loss = F.binary_cross_entropy_with_logits(lvl["act_logit"], best.to(act.dtype))
        else:  # Eq. 4.18 literally
            act_loss = (act - best.to(act.dtype)).abs().mean()
        cls = sigmoid_focal_loss(logits, target_cls, cfg.focal_alpha, cfg.focal_gamma, reduction="sum") / num_gt
        return {"cls": cls, "l1": l1 / num_gt, "iou": iou / num_gt, "act": act_loss}

    def _sampled_nce(self, scores: torch.Tensor, sal: torch.Tensor, vmask: torch.Tensor,
                     pos_idx: torch.Tensor) -> torch.Tensor:
        """SampledNCE (R2-Tuning): rank one positive clip above lower-saliency clips of its video (row term)
        and above the same clip index of the other videos (column term)."""
        tau = self.config.model.temperature
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

    def _alignment(self, levels: list[dict], pos_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Video-level InfoNCE (across the batch, per level) and layer-wise InfoNCE (across levels, per sample)."""
        tau = self.config.model.temperature
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
        rows = []
        for bi, meta in enumerate(batch["meta"]):
            n = int(lengths[bi])
            span_sec = (spans[bi] * n * meta["time_step"]).clamp(max=meta["duration"]).cpu().numpy()
            sc = score[bi].cpu().numpy()
            order = np.argsort(-sc, kind="stable")
            windows = [[round(float(span_sec[i, 0]), 4), round(float(span_sec[i, 1]), 4), round(float(sc[i]), 6)]
                       for i in order]
            sal_rows = out["saliency"][bi, :n].float().cpu().numpy()
            rows.append({"qid": meta["qid"], "vid": meta["vid"], "pred_relevant_windows": windows,
                         "pred_saliency_scores": _rows_to_clips(sal_rows, meta)})
        return rows


# ----------------------------------------------------------------------------- helpers


def _batched_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of (start, end) spans ``a [B, N, 2]`` × ``b [B, G, 2]`` → ``[B, N, G]``."""
    inter = (torch.min(a[..., :, None, 1], b[..., None, :, 1]) - torch.max(a[..., :, None, 0], b[..., None, :, 0]))
    inter = inter.clamp(min=0)
    union = (a[..., :, None, 1] - a[..., :, None, 0]) + (b[..., None, :, 1] - b[..., None, :, 0]) - inter
    return inter / union.clamp(min=1e-6)


def _sample_positive(sal: torch.Tensor, vmask: torch.Tensor) -> torch.Tensor:
    """One random clip with saliency > 0 per sample (−1 when there is none)."""
    pos = (sal > 0) & vmask
    rnd = torch.rand(sal.shape, device=sal.device).masked_fill(~pos, -1.0)
    idx = rnd.argmax(-1)
    return torch.where(pos.any(-1), idx, torch.full_like(idx, -1))


def _rows_to_clips(rows: np.ndarray, meta: dict) -> list[float]:
    """Feature-row saliency → one score per ``clip_len``-second clip (nearest row to each clip centre)."""
    ts, clip = float(meta["time_step"]), float(meta.get("clip_len", meta["time_step"]))
    n_clips = max(1, int(math.ceil(meta["duration"] / clip - 1e-6)))
    centres = (np.arange(n_clips) + 0.5) * clip
    idx = np.clip(np.floor(centres / ts).astype(int), 0, len(rows) - 1)
    return [round(float(v), 6) for v in rows[idx]]
