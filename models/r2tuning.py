"""R2-Tuning (Liu et al., ECCV 2024): the reversed-recurrent side-tuning baseline of thesis Tab 4.8, on SDST's
batches and stages.

Written from the paper's design (no code taken over). Over the last K layers of a frozen encoder, from the
deepest to the shallowest, one R² block (shared weights) refines a single temporal state:

* modality maps ``F_v`` / ``F_t`` as in SDST (LN → Dropout → Linear → ReLU → LN → Dropout → Linear); the video map
  sees two extra temporal-endpoint features (TEF: ``[t/T, (t+1)/T]``);
* query-modulated spatial pooling: every text token attends over the frame's spatial tokens (maps ``v_map`` /
  ``q_map``), the attended frame plus the token is max-pooled over tokens and added to the frame's pooled token
  with a zero-initialised ``tanh`` scale per layer. The pipeline's containers hold one pooled token per frame
  (InternVideo2's own attention pooling), so the attention is over one token and ``v_map`` / ``q_map`` are inert
  (kept for the paper's parameter count); the modulation still adds the max-pooled text to every frame;
* recurrence: from the second step on, ``x = β x + (1 − β) state`` with ``β = sigmoid(g)`` (zero-initialised);
* temporal refinement: a post-norm decoder layer (CA to the text with sine positions on the frames → SA → FFN,
  DropPath 0.1), whose output is the new state.

Heads (anchor-free, as in the paper): a temporal pyramid of the final state (strides 1, 2, 4, 8: k2/s2 convs +
LN + ReLU), shared conv heads for the point's class (focal) and its distances to the start / end (``exp`` ×
a learned scale per pyramid level, L1 with weight 0.2), targets by centre sampling (radius 1.5 strides) and
the pyramid level's regression range; saliency = cosine(state, AdaPool(text of the last step)) trained with
SampledNCE, and the video-level / layer-wise InfoNCE alignment of every step's mapped clips and pooled text —
the same two losses as SDST (:mod:`models.sdst_losses`). Inference: the 50 best point windows by class score
(NMS in the evaluate stage, like SDST); HD score = the max over pyramid levels of the class score at the clip ×
the cosine saliency.

Parameter count (``python -m models.sdst_budget``): 2,836,242 at CLIP ViT-B/32 dims (video 768, text 512,
K = 4, hidden 256) — 2.84 M in 10^6 units, 2.70 in 2^20 units: the paper's and Tab 4.8's "2.7 M" (2,968,338 at
the thesis' InternVideo2 / BERT-large dims 768 / 1024).

It reads ``sdst.model``'s hidden, heads, ffn_ratio, dropout, text_drop_first_token, the class / saliency /
alignment weights, focal settings and temperature; the batch is :func:`pipeline.sdst.data.collate`'s (see
:mod:`models.sdst`) and :meth:`R2Tuning.predict` returns SDST's prediction rows.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.common import sigmoid_focal_loss, sine_position_encoding
from models.sdst import KaimingFFN, PostNorm, input_map
from models.sdst_attention import xavier_mha
from models.sdst_config import SDSTConfig
from models.sdst_losses import alignment_losses, attention_pool, rows_to_clips, sample_positive, sampled_nce

STRIDES = (1, 2, 4, 8)  # temporal pyramid (paper)
SAMPLE_RADIUS = 1.5  # centre sampling, in strides (paper)
REG_WEIGHT = 0.2  # L1 boundary loss weight (paper)
DROPPATH = 0.1  # in the temporal decoder layer (paper)
MAX_MOMENTS = 50  # windows kept per query before NMS (paper)


class R2Block(nn.Module):
    """One reversed-recurrent step (shared by all K steps): maps, query-modulated pooling, temporal layer."""

    def __init__(self, config: SDSTConfig):
        super().__init__()
        cfg, k, d = config.model, config.num_levels, config.model.hidden
        self.video_map = input_map(config.video_dim + 2, d, cfg.dropout)  # +2: TEF
        self.text_map = input_map(config.text_dim, d, cfg.dropout)
        self.gate = nn.Parameter(torch.zeros(k - 1)) if k > 1 else None
        self.v_map, self.q_map = nn.Linear(d, d), nn.Linear(d, d)
        self.scale = nn.Parameter(torch.zeros(k))
        self.ca, self.sa = xavier_mha(d, cfg.heads), xavier_mha(d, cfg.heads)
        self.ffn = KaimingFFN(d, cfg.ffn_ratio)
        self.norms = nn.ModuleList(PostNorm(d, DROPPATH) for _ in range(3))

    def modulate(self, v: torch.Tensor, q: torch.Tensor, tmask: torch.Tensor, step: int) -> torch.Tensor:
        """Query-modulated spatial pooling of frames ``v [B, T, P, d]`` (P spatial tokens, the first pooled) by
        text tokens ``q [B, L, d]`` → ``[B, T, d]``. Padded text tokens are left out of the max."""
        d = v.shape[-1]
        att = torch.einsum("bld,btpd->btlp", self.q_map(q), self.v_map(v)) / math.sqrt(d)
        pooled = torch.einsum("btlp,btpd->btld", att.softmax(-1), v) + q[:, None]
        pooled = pooled.masked_fill(~tmask[:, None, :, None], float("-inf")).amax(2)
        return v[:, :, 0] + pooled * self.scale[step].tanh()

    def temporal(self, x, t, vmask, tmask, pos):
        """Post-norm decoder layer: CA(frames → text) → SA → FFN."""
        x = self.norms[0](x, self.ca(x + pos, t, t, key_padding_mask=~tmask, need_weights=False)[0])
        q = x + pos
        x = self.norms[1](x, self.sa(q, q, x, key_padding_mask=~vmask, need_weights=False)[0])
        return self.norms[2](x, self.ffn(x))


class ConvHead(nn.Module):
    """Conv1d k3 → ReLU → Conv1d k3 over ``[B, T, d]`` → ``[B, T, out]`` (shared over pyramid levels)."""

    def __init__(self, dim: int, out: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(dim, dim, 3, padding=1), nn.ReLU(), nn.Conv1d(dim, out, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.transpose(1, 2)).transpose(1, 2)


class _Down(nn.Module):
    """Conv1d k2 s2 → LN → ReLU over ``[B, T, d]`` (one halving of the pyramid)."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv, self.norm = nn.Conv1d(dim, dim, 2, stride=2), nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x.transpose(1, 2)).transpose(1, 2)))


class R2Tuning(nn.Module):
    """The R2-Tuning baseline; ``R2Tuning(config)`` rebuilds it (``pipeline.core.training`` contract)."""

    def __init__(self, config: SDSTConfig):
        super().__init__()
        cfg = config.model
        if cfg.architecture != "r2tuning":
            raise ValueError(f"R2Tuning: sdst.model.architecture is {cfg.architecture!r}, expected 'r2tuning'")
        if cfg.hidden % cfg.heads:
            raise ValueError(f"R2Tuning: hidden {cfg.hidden} is not divisible by heads {cfg.heads}")
        if cfg.standardize_inputs:
            raise ValueError("R2Tuning: sdst.model.standardize_inputs is not supported (the paper has none)")
        self.config = config
        d = cfg.hidden
        self.block = R2Block(config)
        self.pyramid = nn.ModuleList(nn.Sequential(*(_Down(d) for _ in range(int(math.log2(s)))))
                                     for s in STRIDES)
        self.text_pool = nn.Linear(d, 1, bias=False)  # AdaPooling scorer
        self.class_head, self.coord_head = ConvHead(d, 1), ConvHead(d, 2)
        self.coef = nn.Parameter(torch.ones(len(STRIDES)))
        # deepest layer first ("reversed"), whatever order the levels arrive in
        self.steps = sorted(range(config.num_levels), key=lambda i: -config.video_layers[i])

    def adapool(self, t: torch.Tensor, tmask: torch.Tensor) -> torch.Tensor:
        """Learnable attention pooling of tokens ``[B, L, d]`` → ``[B, d]``."""
        return attention_pool(self.text_pool, t, tmask)

    def run(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The K reversed steps, the pyramid and the heads."""
        cfg = self.config.model
        video, vmask = batch["video"], batch["video_mask"].bool()
        text, tmask = batch["text"], batch["text_mask"].bool()
        if cfg.text_drop_first_token and text.shape[2] > 1:
            text, tmask = text[:, :, 1:], tmask[:, 1:]
        b, k, t_len, _ = video.shape
        if k != self.config.num_levels:
            raise ValueError(f"R2Tuning: batch has {k} feature levels, model expects {self.config.num_levels}")
        n = vmask.sum(1, keepdim=True).clamp(min=1).to(video.dtype)
        start = torch.arange(t_len, device=video.device, dtype=video.dtype)[None] / n
        tef = torch.stack([start, start + 1 / n], -1) * vmask[..., None]
        pos = sine_position_encoding(t_len, cfg.hidden, normalize=True).to(video)[None]
        state, steps = None, []
        for step, i in enumerate(self.steps):
            v = self.block.video_map(torch.cat([video[:, i], tef], -1))
            q = self.block.text_map(text[:, i])
            steps.append({"video": v, "text_pool": self.adapool(q, tmask)})
            x = self.block.modulate(v[:, :, None], q, tmask, step)
            if state is not None:
                beta = self.block.gate[step - 1].sigmoid()
                x = beta * x + (1 - beta) * state
            state = self.block.temporal(x, q, vmask, tmask, pos)
        levels, masks, classes, coords = [], [], [], []
        for j, (s, down) in enumerate(zip(STRIDES, self.pyramid)):
            if t_len < s:
                continue
            feat = F.relu(state) if s == 1 else down(state)
            mask = vmask if s == 1 else F.max_pool1d(vmask[:, None].float(), s, s)[:, 0].bool()
            levels.append(s)
            masks.append(mask)
            classes.append(self.class_head(feat).squeeze(-1))
            coords.append(self.coord_head(feat).exp() * self.coef[j])
        saliency = F.cosine_similarity(state, steps[-1]["text_pool"][:, None], dim=-1).masked_fill(~vmask, 0.0)
        return {"steps": steps, "strides": levels, "masks": masks, "classes": classes, "coords": coords,
                "saliency": saliency, "video_mask": vmask}

    # ------------------------------------------------------------------ training

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Training losses: ``loss`` plus its terms (unweighted) for logging."""
        cfg = self.config.model
        out = self.run(batch)
        vmask = out["video_mask"]
        logits = torch.cat(out["classes"], 1)
        coords = torch.cat(out["coords"], 1)
        valid = torch.cat(out["masks"], 1)
        cls_t, reg_t = self.targets(out, batch["windows"], vmask.sum(1))
        focal = sigmoid_focal_loss(logits, cls_t, cfg.focal_alpha, cfg.focal_gamma, reduction="none")
        l_cls = (focal * valid).sum() / valid.sum().clamp(min=1)
        pos = cls_t > 0
        l_reg = ((coords - reg_t).abs() * pos[..., None]).sum() / (2 * pos.sum()).clamp(min=1)
        sal = batch["saliency"].to(out["saliency"]) * vmask
        pos_idx = sample_positive(sal, vmask)
        l_sal = sampled_nce(out["saliency"], sal, vmask, pos_idx, cfg.temperature)
        l_av, l_al = alignment_losses(out["steps"], pos_idx, cfg.temperature)
        loss = (cfg.w_cls * l_cls + REG_WEIGHT * l_reg + cfg.w_sal * l_sal + cfg.w_align_video * l_av
                + cfg.w_align_layer * l_al)
        return {"loss": loss, "loss_cls": l_cls, "loss_reg": l_reg, "loss_sal": l_sal, "loss_align_video": l_av,
                "loss_align_layer": l_al}

    @staticmethod
    def points(out: dict, device, dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every pyramid point's position (rows), stride and regression range ``[lo, hi]`` → ``[N]``, ``[N]``,
        ``[N, 2]`` (range of stride s: from the previous stride to s's successor; the last is unbounded)."""
        strides = out["strides"]
        bounds = list(STRIDES[1:]) + [float("inf")]
        pos, stride, rng = [], [], []
        for s, cls in zip(strides, out["classes"]):
            j = STRIDES.index(s)
            n = cls.shape[1]
            pos.append(torch.arange(n, device=device, dtype=dtype) * s)
            stride.append(torch.full((n,), float(s), device=device, dtype=dtype))
            lo = 0.0 if j == 0 else float(STRIDES[j])
            rng.append(torch.tensor([[lo, bounds[j]]], device=device, dtype=dtype).expand(n, 2))
        return torch.cat(pos), torch.cat(stride), torch.cat(rng)

    def targets(self, out: dict, windows: list[torch.Tensor], lengths: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Class targets ``[B, N]`` (centre sampling within ``SAMPLE_RADIUS`` strides and the level's range;
        a point inside several moments takes the shortest) and distance targets ``[B, N, 2]`` in strides."""
        ref = out["classes"][0]
        p, s, rng = self.points(out, ref.device, ref.dtype)
        cls_t, reg_t = [], []
        for bi, w in enumerate(windows):
            gt = w.to(ref).reshape(-1, 2) * lengths[bi].to(ref.dtype)  # rows
            if len(gt) == 0:
                cls_t.append(p.new_zeros(len(p)))
                reg_t.append(p.new_zeros(len(p), 2))
                continue
            d_s, d_e = p[:, None] - gt[None, :, 0], gt[None, :, 1] - p[:, None]  # [N, G]
            centre = gt.mean(1)[None]
            lo_c = torch.maximum(centre - s[:, None] * SAMPLE_RADIUS, gt[None, :, 0])
            hi_c = torch.minimum(centre + s[:, None] * SAMPLE_RADIUS, gt[None, :, 1])
            inside = (p[:, None] >= lo_c) & (p[:, None] <= hi_c)
            reach = torch.maximum(d_s, d_e)
            in_range = (reach >= rng[:, :1]) & (reach <= rng[:, 1:])
            length = (gt[:, 1] - gt[:, 0])[None].expand_as(d_s).masked_fill(~(inside & in_range), float("inf"))
            best, idx = length.min(1)
            cls_t.append(torch.isfinite(best).to(ref.dtype))
            ar = torch.arange(len(p), device=p.device)
            reg_t.append(torch.stack([d_s[ar, idx], d_e[ar, idx]], -1) / s[:, None])
        return torch.stack(cls_t), torch.stack(reg_t)

    # ------------------------------------------------------------------ inference

    @torch.no_grad()
    def predict(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        """SDST's prediction rows: the best ``MAX_MOMENTS`` point windows in seconds (descending class score)
        and one saliency score per ``clip_len``-second clip."""
        out = self.run(batch)
        vmask = out["video_mask"]
        probs = [c.float().sigmoid() for c in out["classes"]]
        score = torch.cat(probs, 1)
        coords = torch.cat(out["coords"], 1).float()
        valid = torch.cat(out["masks"], 1)
        p, s, _ = self.points(out, score.device, score.dtype)
        t_len = vmask.shape[1]
        # HD: per row, the max over pyramid levels of the class score covering it, × the cosine saliency
        per_row = torch.stack([_to_rows(pr, st, t_len) for pr, st in zip(probs, out["strides"])]).amax(0)
        hd = (per_row * out["saliency"].float()).masked_fill(~vmask, 0.0)
        lengths = vmask.sum(1)
        rows = []
        for bi, meta in enumerate(batch["meta"]):
            n = int(lengths[bi])
            keep = valid[bi].nonzero().squeeze(1)
            start = (p[keep] - coords[bi, keep, 0] * s[keep]).clamp(0, n)
            end = (p[keep] + coords[bi, keep, 1] * s[keep]).clamp(0, n)
            sc = score[bi, keep]
            order = torch.argsort(-sc, stable=True)[:MAX_MOMENTS]
            ts = meta["time_step"]
            windows = [[round(min(float(start[i]) * ts, meta["duration"]), 4),
                        round(min(float(end[i]) * ts, meta["duration"]), 4), round(float(sc[i]), 6)]
                       for i in order.tolist()]
            rows.append({"qid": meta["qid"], "vid": meta["vid"], "pred_relevant_windows": windows,
                         "pred_saliency_scores": rows_to_clips(hd[bi, :n].cpu().numpy().astype(np.float64), meta)})
        return rows


def _to_rows(scores: torch.Tensor, stride: int, t_len: int) -> torch.Tensor:
    """Pyramid-level scores ``[B, T/stride]`` → per row ``[B, t_len]`` (each point covers ``stride`` rows; rows
    past the last point take its score)."""
    up = scores.repeat_interleave(stride, dim=1)
    if up.shape[1] < t_len:
        up = torch.cat([up, up[:, -1:].expand(-1, t_len - up.shape[1])], 1)
    return up[:, :t_len]
