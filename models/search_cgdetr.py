"""CG-DETR (Moon et al., "Correlation-Guided Query-Dependency Calibration for Video Temporal Grounding") as a
search-VMR retriever, written from the paper and the behaviour of its public code (``wjun0830/CGDETR``).

What makes it CG-DETR, on top of the anchor decoder, heads, matching and set losses shared with
:class:`models.search_detr.SearchDETR` (``config.architecture = "cgdetr"``):

* **Dummy tokens** (``num_dummies``, 45): learnable tokens encoded together with the query words by
  ``dummy_layers`` self-attention layers, so they are query-dependent.
* **Adaptive cross-attention** (``t2v_layers``, 2): every video clip attends over ``[dummies; words]``; the softmax
  runs over both, but the output only sums the *word* values, so the mass a clip gives the dummies is the part
  of the query it does not match — a clip unrelated to the query takes (almost) nothing from the text. The
  word mass per clip (``t2v_values`` in [0, 1]) is the clip–query correlation.
* **Clip–word correlation learning**: (a) ``loss_wattn``: the word mass is supervised as saliency (hinge on
  inside/outside pairs + BCE to the inside-a-window label); (b) ``loss_ms_align``: a moment token summarising the
  clips inside the GT windows (``moment_layers``) is contrasted with a sentence token of the words and pushed
  from the one of the dummies (``sent_layers``), plus a BCE between the moment token and every clip;
  (c) ``loss_distill``: on moment clips, the adaptive attention over ``[dummies; words]`` is distilled (KL) from
  the softmax of the clip–token similarities of the moment encoder; (d) an orthogonality loss on the dummy
  tokens and on the saliency prompts (weight ``loss_distill``, as the public code).
* **Saliency from a global token**: the mean clip (context) plus the saliency prompt (of ``total_prompts``) most
  similar to the importance-weighted clips goes through the cross-attention (no dummy discarding) and the video
  encoder as a leading token; saliency = ``proj1(clip) · proj2(global) / √d``; the decoder reads the encoded
  clips plus the global token, video only (the text enters through the cross-attention).

Not implemented (differences from the public code): the negative-pair saliency losses (a second forward with
another sample's text), the rank-contrastive saliency term (needs graded saliency labels; this pipeline has
binary inside/outside rows), PReLU in the dummy/sentence encoders (ReLU here), and only the top-1 prompt
(``num_prompts`` 1, the public default).
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.distributed import gather_global_batch, global_mean, global_positions, max_over_ranks, world_size
from models.search_detr import SearchDETR
from models.search_detr_layers import DropoutFFN, EncoderLayer, padded_sine_positions


class AdaptiveCrossAttention(nn.Module):
    """Clips attend over ``[dummies; words]`` (CG-DETR's T2V layer): softmax over every key, output from the
    word values only when ``discard_dummies`` (the clip's dummy mass is dropped); post-norm FFN block."""

    def __init__(self, dim: int, heads: int, ffn_dim: int, dropout: float, num_dummies: int):
        super().__init__()
        self.heads, self.num_dummies = heads, num_dummies
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)
        self.attn_dropout = nn.Dropout(dropout)
        self.ffn = DropoutFFN(dim, ffn_dim, dropout)

    def forward(self, x: torch.Tensor, x_pos: torch.Tensor, keys: torch.Tensor, k_pos: torch.Tensor,
                k_pad: torch.Tensor, discard_dummies: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` [B, T, d] clips, ``keys`` [B, K, d] = dummies then words, ``k_pad`` [B, K] True = padding;
        returns the new clips and the head-averaged attention [B, T, K]."""
        B, T, d = x.shape
        h = self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(B, t.shape[1], h, d // h).transpose(1, 2)

        q, k, v = split(self.q(x + x_pos)), split(self.k(keys + k_pos)), split(self.v(keys))
        logits = q @ k.transpose(-1, -2) / math.sqrt(d // h)
        attn = logits.masked_fill(k_pad[:, None, None, :], float("-inf")).softmax(-1)
        a = self.attn_dropout(attn)
        if discard_dummies:
            n = self.num_dummies
            out = a[..., n:] @ v[:, :, n:]
        else:
            out = a @ v
        y = x + self.dropout1(self.out(out.transpose(1, 2).reshape(B, T, d)))
        y = self.norm2(y + self.dropout2(self.ffn(self.norm1(y))))
        return y, attn.mean(1)


def _run(layers: nn.ModuleList, x: torch.Tensor, pos: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
    for layer in layers:
        x = layer(x, pos, pad)
    return x


class CGDETR(SearchDETR):
    """CG-DETR on the shared anchor decoder; see the module docstring. ``-SA`` / ``+QD`` / ``anchor_init`` act on
    the decoder exactly as in :class:`SearchDETR`."""

    def __init__(self, config: Any):
        super().__init__(config)
        cfg, d = config, config.hidden_dim
        del self.saliency_proj  # CG-DETR scores saliency against its global token
        nd = cfg.num_dummies

        def enc(n: int) -> nn.ModuleList:
            return nn.ModuleList(EncoderLayer(d, cfg.num_heads, cfg.ffn_dim, cfg.dropout) for _ in range(n))

        self.token_type = nn.Embedding(2, d)
        nn.init.normal_(self.token_type.weight, std=0.02)
        self.dummy_tokens = nn.Parameter(torch.randn(nd, d))
        self.dummy_pos = nn.Parameter(torch.randn(nd, d))
        self.dummy_encoder = enc(cfg.dummy_layers)
        self.t2v = nn.ModuleList(AdaptiveCrossAttention(d, cfg.num_heads, cfg.ffn_dim, cfg.dropout, nd)
                                 for _ in range(cfg.t2v_layers))
        self.global_prompts = nn.Parameter(torch.randn(cfg.total_prompts, d))
        self.global_pos = nn.Parameter(torch.randn(1, d))
        self.sent_token, self.sent_pos = nn.Parameter(torch.randn(d)), nn.Parameter(torch.randn(d))
        self.sent_encoder = enc(cfg.sent_layers)
        self.moment_token, self.moment_pos = nn.Parameter(torch.randn(d)), nn.Parameter(torch.randn(d))
        self.moment_encoder = enc(cfg.moment_layers)
        self.saliency_proj1, self.saliency_proj2 = nn.Linear(d, d), nn.Linear(d, d)
        for mod in (*self.dummy_encoder, *self.t2v, *self.sent_encoder, *self.moment_encoder):
            for p in mod.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)

    # ------------------------------------------------------------------ encoder

    def encode_all(self, batch: dict) -> dict:
        """Dummy encoding → adaptive cross-attention → global token → video encoder (module docstring)."""
        d, nd = self.config.hidden_dim, self.config.num_dummies
        video, text, vmask, tmask = batch["video"], batch["text"], batch["video_mask"], batch["text_mask"]
        B, T, _ = video.shape
        v = self.video_proj(video) + self.token_type.weight[1]
        t = self.text_proj(text) + self.token_type.weight[0]
        vpos = padded_sine_positions(vmask.sum(1).cpu(), T, d).to(v)
        tpos = torch.zeros_like(t)
        dpos = self.dummy_pos.unsqueeze(0).expand(B, -1, -1)
        kpos = torch.cat([dpos, tpos], 1)
        kpad = ~torch.cat([tmask.new_ones(B, nd), tmask], 1)
        encoded = _run(self.dummy_encoder, torch.cat([self.dummy_tokens.unsqueeze(0).expand(B, -1, -1), t], 1),
                       kpos, kpad)
        dummies = encoded[:, :nd]
        keys = torch.cat([dummies, t], 1)
        h, attn = v, None
        for layer in self.t2v:
            h, attn = layer(h, vpos, keys, kpos, kpad)
        valid = vmask.float()
        t2v_values = (attn[..., nd:].sum(-1) * valid).clamp(0, 1)  # clip–query correlation [B, T]
        # global token: context (mean clip) + the saliency prompt the importance-weighted clips resemble most
        ctx = ((v * valid[..., None]).sum(1) / valid.sum(1, keepdim=True).clamp(min=1)).detach()
        sim = (F.normalize(v - ctx[:, None], dim=-1) @ F.normalize(self.global_prompts, dim=-1).T).softmax(-1)
        imp = t2v_values.detach() * valid
        imp = imp / imp.sum(1, keepdim=True).clamp(min=1e-6) * T
        score = (sim * imp[..., None]).mean(1)  # [B, P]
        top_val, top_idx = score.max(1)
        g = (top_val[:, None] * self.global_prompts[top_idx] + ctx)[:, None]
        gpos = self.global_pos.unsqueeze(0).expand(B, -1, -1)
        for layer in self.t2v:
            g, _ = layer(g, gpos, keys, kpos, kpad, discard_dummies=False)
        mem = _run(self.encoder, torch.cat([g, h], 1), torch.cat([gpos, vpos], 1),
                   ~torch.cat([vmask.new_ones(B, 1), vmask], 1))
        glob, local = mem[:, 0], mem[:, 1:] + mem[:, :1]
        saliency = (self.saliency_proj1(local) * self.saliency_proj2(glob)[:, None]).sum(-1) / math.sqrt(d)
        extras = {"t2v_values": t2v_values, "t2v_attn": attn, "cg_video": v, "cg_vpos": vpos, "cg_text": t,
                  "cg_dummies": dummies, "cg_key_pad": kpad}
        return {"memory": local, "pos": vpos, "pad": ~vmask, "saliency": saliency, "extras": extras}

    # ------------------------------------------------------------------ losses

    def _token_encode(self, layers: nn.ModuleList, token: torch.Tensor, token_pos: torch.Tensor, x: torch.Tensor,
                      pos: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode ``[token; x]`` with only the rows ``keep`` [B, N] visible; (token out [B, d], rows [B, N, d])."""
        B = x.shape[0]
        out = _run(layers, torch.cat([token.expand(B, 1, -1), x], 1), torch.cat([token_pos.expand(B, 1, -1), pos], 1),
                   ~torch.cat([keep.new_ones(B, 1), keep], 1))
        return out[:, 0], out[:, 1:]

    def extra_losses(self, out: dict, batch: dict) -> dict:
        """CG-DETR's clip–word correlation losses (module docstring): ``loss_wattn``, ``loss_ms_align``,
        ``loss_distill``, ``loss_ortho``, each ``(weight, value)``."""
        cfg, nd = self.config, self.config.num_dummies
        vmask, tmask = batch["video_mask"], batch["text_mask"]
        inside = batch["saliency_pos"] & vmask
        outside = ~batch["saliency_pos"] & vmask
        B = vmask.shape[0]
        # Under torchrun (training only: an eval pass runs on one rank) every batch-wide normaliser and the
        # in-batch negatives cover the GLOBAL batch (models/distributed.py), so N processes train as one.
        ddp = self.training and world_size() > 1
        mean = global_mean if ddp else (lambda total, count: total / count.clamp(min=1))
        tv = out["t2v_values"]
        valid = vmask.float()
        bce = F.binary_cross_entropy(tv.clamp(1e-6, 1 - 1e-6), inside.float(), reduction="none")
        loss_wattn = self.saliency_loss(tv, batch) + mean((bce * valid).sum(), valid.sum())
        # moment / non-moment tokens, sentence tokens of the words and of the dummies
        v, vpos = out["cg_video"], out["cg_vpos"]
        m_tok, m_rows = self._token_encode(self.moment_encoder, self.moment_token, self.moment_pos, v, vpos, inside)
        n_tok, n_rows = self._token_encode(self.moment_encoder, self.moment_token, self.moment_pos, v, vpos, outside)
        zeros_t = torch.zeros_like(out["cg_text"])
        s_tok, s_words = self._token_encode(self.sent_encoder, self.sent_token, self.sent_pos, out["cg_text"], zeros_t,
                                            tmask)
        dummies = out["cg_dummies"]
        sd_tok, sd_words = self._token_encode(self.sent_encoder, self.sent_token, self.sent_pos, dummies,
                                              self.dummy_pos.unsqueeze(0).expand(B, -1, -1), tmask.new_ones(B, nd))
        m, n = F.normalize(m_tok, dim=-1), F.normalize(n_tok, dim=-1)
        # every sentence of the global batch is a negative (in batch order; gradients reach each rank's own rows)
        s = gather_global_batch(F.normalize(s_tok, dim=-1)) if ddp else F.normalize(s_tok, dim=-1)
        sd = gather_global_batch(F.normalize(sd_tok, dim=-1)) if ddp else F.normalize(sd_tok, dim=-1)
        idx = global_positions(B, m.device) if ddp else torch.arange(B, device=m.device)
        rows = torch.tensor(float(B), device=m.device)
        loss_ms = mean(F.cross_entropy(torch.cat([m @ s.T, n @ s.T], 1), idx, reduction="sum"), rows)
        # the public code's dummy term: a moment's target column is the first that is not its own sentence's
        # dummy summary (0, or 1 for sample 0), i.e. the moment is pushed away from its own dummy sentence
        dummy_target = (idx == 0).long()
        loss_ms = loss_ms + mean(F.cross_entropy(torch.cat([m @ sd.T, n @ sd.T], 1), dummy_target, reduction="sum"),
                                 rows)
        frames = torch.where(inside[..., None], m_rows, n_rows)
        logit = torch.sigmoid((m_tok[:, None] * frames).sum(-1))
        # a mean over the padded [B, T] grid: one process pads to the global batch's longest video
        cells = rows * (max_over_ranks(inside.shape[1]) if ddp else inside.shape[1])
        loss_ms = loss_ms + mean((F.binary_cross_entropy(logit.clamp(1e-6, 1 - 1e-6), inside.float(),
                                                         reduction="none") * valid).sum(), cells)
        # distillation of the adaptive attention from the moment clips' similarity to [dummies; words]
        tokens = torch.cat([sd_words, s_words], 1)
        sim = (m_rows @ tokens.transpose(1, 2)).masked_fill(out["cg_key_pad"][:, None], float("-inf"))
        target = sim.softmax(-1).detach()
        attn = out["t2v_attn"]
        kl = (target * (torch.log(target.clamp(min=1e-12)) - torch.log(attn + 1e-6))).sum(-1)
        loss_distill = mean((kl * inside).sum(), inside.sum().float())
        loss_ortho = _offdiag_abs_cos(dummies) + _offdiag_abs_cos(self.global_prompts[None])
        return {"loss_wattn": (cfg.loss_wattn, loss_wattn), "loss_ms_align": (cfg.loss_ms_align, loss_ms),
                "loss_distill": (cfg.loss_distill, loss_distill), "loss_ortho": (cfg.loss_distill, loss_ortho)}


def _offdiag_abs_cos(x: torch.Tensor) -> torch.Tensor:
    """Mean |cosine| between distinct rows of ``x`` [B, N, d] (CG-DETR's orthogonality loss, one side detached)."""
    xn = F.normalize(x, dim=-1)
    sim = xn @ xn.detach().transpose(1, 2)
    eye = torch.eye(x.shape[1], dtype=torch.bool, device=x.device)
    return sim.masked_fill(eye, 0).abs().mean()
