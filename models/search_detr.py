"""DETR retriever for (search-query) video moment retrieval, with the thesis Ch. 3 variants.

A Moment-DETR/CG-DETR-family model (``vmr_sdst_notes.md`` §2–§3):

* input projections: two ``LayerNorm → Dropout → Linear`` layers per modality (ReLU after the first);
* encoder: post-norm transformer over the concatenation ``[video; text]``, sine positions on the video tokens
  (zeros on the text tokens), added to queries and keys only;
* saliency head: a linear score per video token of the encoder memory (hinge loss, margin 0.2);
* decoder: ``num_queries`` learnable queries over a zero target; each layer is ``SA → CA → FFN`` (post-norm),
  every layer's output goes through one shared LayerNorm. ``query_type="embed"`` (Moment-DETR): a learnable
  embedding per query is its positional query, added to the attention queries. ``query_type="anchor"``
  (CG-DETR/DAB-DETR, the default): a learnable (c, w) anchor per query and Conditional-DETR attention. The
  anchor's sine embedding through an MLP is the positional query (added to q/k of the self-attention with
  separate content/positional projections, and to the content query of the first cross-attention); the sine of
  its centre, in the same basis as the memory's row positions, is the *spatial query*: per head the
  cross-attention query is ``[content ; spatial]`` and the key ``[content ; row position]``, so half of each
  logit compares the anchor with each row's position. The spatial query is scaled by an MLP of the content
  (layers > 0) and by ``predicted width / anchor width`` (DAB's modulated attention). The span head (last layer
  zero-initialised) predicts a logit-space offset added to the layer's (detached) reference, and the refined
  span is the next layer's reference, so queries own temporal regions;
* heads: a 2-way classifier (index 0 = foreground, 1 = background) and an MLP predicting normalised
  ``(center, width)`` through a sigmoid;
* Hungarian matching per sample and per decoder layer with cost
  ``cost_span·L1(cw) − cost_giou·GIoU(se) − cost_class·p_fg``; losses span L1, 1 − GIoU, weighted CE with the
  background class weighted ``eos_coef``, saliency hinge; auxiliary losses on every earlier decoder layer.

Variants (thesis §3.4.2.2):

* ``self_attention=False`` (-SA): the decoder layers are built **without** the self-attention sub-block and its
  dropout/norm, so each query is refined only by cross-attention and the FFN (Eq. 3.18).
* ``qd_rate > 0`` (+QD): in training, each query slot is zeroed independently with probability ``qd_rate``
  (Eq. 3.19); the mask is drawn once per iteration and shared by every sample of the batch. Never in eval.
  With anchors, a dropped slot's positional query and spatial query (all it draws from its anchor inside the
  decoder layers) are zeroed.
  ``qd_mode="zero"`` is the literal Eq. 3.19; ``"zero_unmatched"`` additionally keeps dropped slots out of
  the Hungarian matching (they are supervised as background), the alternative reading the notes mention.
* NMS with true temporal IoU (``nms_threshold``) in :meth:`SearchDETR.predict` when set; the predict stage sets
  it per ``search_vmr.inference.nms_policy`` (default: only for -SA models, as thesis §3.4.2.2).
* ``anchor_init``: ``random`` (CG-DETR's default, N(0, 1) anchor logits) or ``uniform`` (evenly spread centres,
  width ``uniform_width``), :func:`init_anchors`.

Why anchors are the default (measured with the earlier anchor decoder on the feature-level world of
``tests/_search_world.py``, one seed):
with Moment-DETR query embeddings, +QD (with or without SA, either ``qd_mode``) stopped the caption task from
being learned (caption R_m@0.5 5-24 % vs 79 % for base): a slot is matched in some iterations and trained as
background in others for the same input, and without anchors nothing ties a slot to a temporal region, so its
confidence stops ranking its predictions. With anchors each slot owns a region, QD only hands a moment to a
neighbour for that step, and -SA+QD behaves as the thesis reports (more active queries, better multi-moment
R_m / mAP_m).

Why the conditional spatial query (issue 11, measured on oracle features, ``tests/test_search_oracle.py``): in the
first anchor decoder the anchor entered only as an MLP embedding *added* to the cross-attention query, against
keys ``memory + positions``; at init that left the attention almost uniform over the rows, so a slot's output
carried (nearly) no information about its own anchor (relative spread of the first-layer outputs across slots
0.008), every slot predicted its anchor and the constant p_fg that minimises the label loss, and the model only
escaped that plateau after ~250-300 AdamW steps at lr 1e-3, beyond the default 40 epochs. With the anchor
compared to row positions in a separate per-head positional channel the spread is 0.05-0.08 at init and the
default budget localises: oracle caption R_m@0.5 61.5 ± 12.2 (base) and 62.8 ± 8.4 (-SA+QD) after 40 epochs,
3 seeds, against 6.4 ± 2.2 and 8.5 ± 3.2 before.

``config`` is a :class:`models.search_detr_config.SearchDETRConfig` (input dims included), so ``SearchDETR(config)``
rebuilds the architecture from a checkpoint alone (``pipeline.core.checkpoints.load_model``); this module does not
import ``pipeline``. The layers it is built from live in :mod:`models.search_detr_layers`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.common import (
    MLP,
    inverse_sigmoid,
    nms_1d,
    pairwise_generalized_temporal_iou,
    pairwise_temporal_iou,
    span_cw_to_se,
)
from models.search_matchers import one_to_many_assignment, primary_assignment
from models.search_detr_layers import (
    AnchorDecoderLayer,
    DecoderLayer,
    EncoderLayer,
    input_projection,
    padded_sine_positions,
    position_sine,
    span_sine_embedding,
)

# ----------------------------------------------------------------------------- model


def init_anchors(anchor_embed: nn.Embedding, cfg: Any) -> None:
    """Initialise the (c, w) anchor logits per ``cfg.anchor_init``: ``random`` keeps nn.Embedding's N(0, 1)
    (CG-DETR's default: centres and widths scattered around 0.5, drawn from the torch seed); ``uniform`` spreads
    the centres evenly (one jittered cell per query) with width ``cfg.uniform_width``."""
    if getattr(cfg, "anchor_init", "uniform") == "random":
        return
    n = anchor_embed.num_embeddings
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        centers = (torch.arange(n) + torch.rand(n, generator=g)) / n
        anchor_embed.weight[:, 0] = inverse_sigmoid(centers.clamp(0.02, 0.98))
        anchor_embed.weight[:, 1] = inverse_sigmoid(torch.full((n,), float(getattr(cfg, "uniform_width", 0.1))))


_EMPTY = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))  # the assignment of a sample without targets


class SearchDETR(nn.Module):
    """Moment-DETR-style retriever with the -SA / +QD switches; see the module docstring.

    ``forward(batch)`` returns the loss dict in training mode (``"loss"`` plus named sub-losses) and the raw
    outputs in eval mode; ``predict(batch)`` returns moment_detr-format prediction rows.

    Batch keys (see ``pipeline.search_vmr.data.collate``): ``video`` [B, T, Dv], ``video_mask`` [B, T] (True =
    valid), ``text`` [B, L, Dt], ``text_mask`` [B, L], ``spans`` (list of [n_i, 2] normalised (c, w) tensors),
    ``saliency_pos`` [B, T] (True where a video row lies inside a GT window), and for ``predict`` the lists
    ``qid``, ``vid``, ``duration``.
    """

    def __init__(self, config: Any):
        super().__init__()
        if config.video_dim <= 0 or config.text_dim <= 0:
            raise ValueError("SearchDETR: config.video_dim and config.text_dim must be set (> 0)")
        self.config = config
        cfg = config
        d = cfg.hidden_dim
        self.video_proj = input_projection(cfg.video_dim, d, cfg.input_dropout)
        self.text_proj = input_projection(cfg.text_dim, d, cfg.input_dropout)
        self.encoder = nn.ModuleList(EncoderLayer(d, cfg.num_heads, cfg.ffn_dim, cfg.dropout) for _ in range(cfg.enc_layers))
        if cfg.query_type == "embed":
            self.decoder = nn.ModuleList(
                DecoderLayer(d, cfg.num_heads, cfg.ffn_dim, cfg.dropout, cfg.self_attention)
                for _ in range(cfg.dec_layers)
            )
        else:
            self.decoder = nn.ModuleList(
                AnchorDecoderLayer(d, cfg.num_heads, cfg.ffn_dim, cfg.dropout, cfg.self_attention, first=i == 0)
                for i in range(cfg.dec_layers)
            )
        self.decoder_norm = nn.LayerNorm(d)
        if cfg.query_type == "embed":
            # Moment-DETR: the learnable query IS the positional query of a zero target
            self.query_embed = nn.Embedding(cfg.num_queries, d)
        else:
            # CG-DETR/DAB-style: a learnable (c, w) anchor per query; its sine embedding through an MLP is the
            # positional query (self-attention, first cross-attention), the sine of its centre is the spatial
            # query of every cross-attention, and every layer refines the anchor (detached between layers)
            self.anchor_embed = nn.Embedding(cfg.num_queries, 2)
            init_anchors(self.anchor_embed, cfg)
            self.ref_point_head = MLP(d, d, d, 2)
            self.query_scale = MLP(d, d, d, 2)  # content-dependent scaling of the spatial query (layers > 0)
            self.ref_width_head = MLP(d, d, 1, 2)  # DAB width modulation: (predicted width / anchor width)
        self.class_embed = nn.Linear(d, 2)
        self.span_embed = MLP(d, d, 2, 3)
        self.saliency_proj = nn.Linear(d, 1)
        self.register_buffer("class_weight", torch.tensor([1.0, cfg.eos_coef]), persistent=False)
        # Xavier on every transformer matrix, as DETR does; embeddings and heads keep torch's defaults.
        for mod in (*self.encoder, *self.decoder):
            for p in mod.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)
        if cfg.query_type == "anchor":
            # CG-DETR/DAB: the offset head starts at zero, so every slot starts at its own anchor
            nn.init.zeros_(self.span_embed.layers[-1].weight)
            nn.init.zeros_(self.span_embed.layers[-1].bias)
        if cfg.actionness:  # built last, so the other modules' init draws are those of the model without it
            self.actionness_head = MLP(d, d, 1, 2)

    # ------------------------------------------------------------------ query dropout

    def query_keep_mask(self, device: torch.device | None = None) -> torch.Tensor:
        """[num_queries] float mask: all ones in eval or at ``qd_rate`` 0; in training each slot is kept
        independently with probability ``1 - qd_rate`` (one draw per iteration, shared by the batch)."""
        n = self.config.num_queries
        if not self.training or self.config.qd_rate <= 0:
            return torch.ones(n, device=device)
        return (torch.rand(n, device=device) >= self.config.qd_rate).float()

    # ------------------------------------------------------------------ forward

    def encode(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encoder memory [B, T+L, d], its positions and its padding mask (True = padding)."""
        video, text = batch["video"], batch["text"]
        vmask, tmask = batch["video_mask"], batch["text_mask"]
        B, T, _ = video.shape
        x = torch.cat([self.video_proj(video), self.text_proj(text)], dim=1)
        vpos = padded_sine_positions(vmask.sum(1).cpu(), T, self.config.hidden_dim).to(x)
        pos = torch.cat([vpos, torch.zeros(B, text.shape[1], self.config.hidden_dim, device=x.device, dtype=x.dtype)], 1)
        pad = ~torch.cat([vmask, tmask], dim=1)
        for layer in self.encoder:
            x = layer(x, pos, pad)
        return x, pos, pad

    def encode_all(self, batch: dict) -> dict:
        """What the decoder reads: ``memory`` [B, M, d], its ``pos`` and ``pad`` mask, the per-row ``saliency``
        [B, T], and ``extras`` (outputs other losses need; none here). Subclasses replace the encoder here."""
        memory, pos, pad = self.encode(batch)
        T = batch["video"].shape[1]
        saliency = self.saliency_proj(memory[:, :T]).squeeze(-1)
        return {"memory": memory, "pos": pos, "pad": pad, "saliency": saliency, "extras": {}}

    def extra_losses(self, out: dict, batch: dict) -> dict:
        """``{name: (weight, loss)}`` added to the total by :meth:`compute_losses` (none for this model)."""
        return {}

    def forward_outputs(self, batch: dict) -> dict:
        """Raw outputs: per decoder layer ``logits`` [B, Q, 2] and ``spans`` [B, Q, 2] (sigmoid c, w), the
        final layer's as ``pred_logits``/``pred_spans``, ``saliency`` [B, T], and ``query_keep`` [Q]."""
        enc = self.encode_all(batch)
        memory, pos, pad = enc["memory"], enc["pos"], enc["pad"]
        B, T = batch["video"].shape[:2]
        keep = self.query_keep_mask(memory.device)
        d = self.config.hidden_dim
        tgt = memory.new_zeros(B, self.config.num_queries, d)
        layers, spans = [], []
        if self.config.query_type == "embed":
            query_pos = (self.query_embed.weight * keep[:, None]).unsqueeze(0).expand(B, -1, -1)
            for layer in self.decoder:
                tgt = layer(tgt, query_pos, memory, pos, pad)
                layers.append(self.decoder_norm(tgt))
            hs = torch.stack(layers)  # [layers, B, Q, d]
            spans = self.span_embed(hs).sigmoid()
        else:
            ref = self.anchor_embed.weight.sigmoid().unsqueeze(0).expand(B, -1, -1)
            slot_keep = keep[None, :, None]
            for i, layer in enumerate(self.decoder):
                # QD zeroes the dropped slots' positional queries, i.e. everything a slot draws from its anchor
                # inside the layer (the F-dim learnable query of Eq. 3.19)
                query_pos = self.ref_point_head(span_sine_embedding(ref, d)) * slot_keep
                spatial = position_sine(ref[..., 0], d)
                if i > 0:
                    spatial = spatial * self.query_scale(tgt)
                # sharper positional attention for narrower anchors (DAB-DETR's modulated attention)
                spatial = spatial * (self.ref_width_head(tgt).sigmoid() / ref[..., 1:].clamp(min=1e-3))
                tgt = layer(tgt, query_pos, spatial * slot_keep, memory, pos, pad)
                h = self.decoder_norm(tgt)
                span = (self.span_embed(h) + inverse_sigmoid(ref)).sigmoid()
                layers.append(h)
                spans.append(span)
                ref = span.detach()
            hs = torch.stack(layers)
            spans = torch.stack(spans)
        logits = self.class_embed(hs)
        if self.config.actionness:
            enc["extras"]["pred_actionness"] = self.actionness_head(hs[-1]).sigmoid().squeeze(-1)
        return {
            **enc["extras"],
            "layer_logits": logits,
            "layer_spans": spans,
            "pred_logits": logits[-1],
            "pred_spans": spans[-1],
            "saliency": enc["saliency"],
            "query_keep": keep,
        }

    def forward(self, batch: dict) -> dict:
        """Training: ``{"loss", "loss_span", "loss_giou", "loss_label", "loss_saliency", ...}`` (aux-layer losses
        are included in ``loss`` and reported as ``loss_aux``). Eval: the raw outputs of :meth:`forward_outputs`."""
        out = self.forward_outputs(batch)
        if not self.training:
            return out
        return self.compute_losses(out, batch)

    # ------------------------------------------------------------------ matching and losses

    @torch.no_grad()
    def match_costs(self, logits: torch.Tensor, spans: torch.Tensor, targets: list[torch.Tensor],
                    keep: torch.Tensor) -> list:
        """Per sample the [Q, n] matching cost ``cost_span``·L1(cw) − ``cost_giou``·GIoU(se) − ``cost_class``·p_fg
        (None without targets). With ``qd_mode="zero_unmatched"`` dropped slots get a prohibitive cost (unless too
        few slots remain)."""
        cfg = self.config
        prob_fg = logits.softmax(-1)[..., 0]
        costs = []
        for b, tgt in enumerate(targets):
            if len(tgt) == 0:
                costs.append(None)
                continue
            cost = (
                cfg.cost_span * torch.cdist(spans[b], tgt, p=1)
                - cfg.cost_giou * pairwise_generalized_temporal_iou(span_cw_to_se(spans[b]), span_cw_to_se(tgt))
                - cfg.cost_class * prob_fg[b][:, None]
            )
            if cfg.qd_mode == "zero_unmatched" and int(keep.sum()) >= len(tgt):
                cost = cost + (1.0 - keep[:, None]) * 1e6
            costs.append(cost)
        return costs

    def match(self, logits: torch.Tensor, spans: torch.Tensor, targets: list[torch.Tensor], keep: torch.Tensor) -> list:
        """Per sample (query indices, target indices) numpy pairs of the main set loss: Hungarian 1-to-1 by
        default, or the ``matcher`` of :mod:`models.search_matchers` (thesis Tab 3.5 / 3.6)."""
        return self._primary(self.match_costs(logits, spans, targets, keep))

    def _primary(self, costs: list) -> list:
        """The main set loss' assignment of each sample's cost matrix (``_EMPTY`` without targets)."""
        cfg = self.config
        return [_EMPTY if c is None else primary_assignment(c, cfg.matcher, cfg.match_k, cfg.match_groups)
                for c in costs]

    def _assigned_losses(self, indices: list, logits: torch.Tensor, spans: torch.Tensor,
                         targets: list[torch.Tensor]) -> dict:
        """Span L1, GIoU and label losses (unweighted) of one assignment."""
        B, Q, _ = logits.shape
        labels = torch.ones(B, Q, dtype=torch.long, device=logits.device)  # 1 = background
        src, tgt = [], []
        for b, (qi, ti) in enumerate(indices):
            labels[b, torch.as_tensor(qi, dtype=torch.long)] = 0
            src.append(spans[b, torch.as_tensor(qi, dtype=torch.long)])
            tgt.append(targets[b][torch.as_tensor(ti, dtype=torch.long)])
        src_spans = torch.cat(src) if src else spans.new_zeros(0, 2)
        tgt_spans = torch.cat(tgt).to(src_spans) if tgt else spans.new_zeros(0, 2)
        loss_label = self.label_loss(logits, labels)
        if len(src_spans):
            loss_span = F.l1_loss(src_spans, tgt_spans)
            giou = pairwise_generalized_temporal_iou(span_cw_to_se(src_spans), span_cw_to_se(tgt_spans)).diagonal()
            loss_giou = (1 - giou).mean()
        else:
            loss_span = loss_giou = spans.sum() * 0.0
        return {"loss_span": loss_span, "loss_giou": loss_giou, "loss_label": loss_label}

    def label_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Class-weighted CE averaged over all queries (Moment-DETR: not a weighted mean); with
        ``label_loss: focal`` each query's term is scaled by ``(1 − p_true)^focal_gamma`` (focal loss, the
        calibration of thesis Tab 3.9's +SFL [186])."""
        ce = F.cross_entropy(logits.transpose(1, 2), labels, weight=self.class_weight, reduction="none")
        if self.config.label_loss == "focal":
            p_true = logits.softmax(-1).gather(-1, labels[..., None]).squeeze(-1)
            ce = ce * (1 - p_true).pow(self.config.focal_gamma)
        return ce.mean()

    def set_losses(self, logits: torch.Tensor, spans: torch.Tensor, targets: list[torch.Tensor], keep: torch.Tensor) -> dict:
        """Span L1, GIoU and label losses of one decoder layer (unweighted); ``hybrid`` / ``mixed`` matchers add
        ``loss_o2m``, their one-to-many set loss (already weighted by the span / GIoU / label weights)."""
        cfg = self.config
        costs = self.match_costs(logits, spans, targets, keep)
        losses = self._assigned_losses(self._primary(costs), logits, spans, targets)
        if cfg.matcher in ("hybrid", "mixed"):
            o2m = [_EMPTY if c is None else one_to_many_assignment(c, cfg.matcher, cfg.match_k) for c in costs]
            extra = self._assigned_losses(o2m, logits, spans, targets)
            losses["loss_o2m"] = (cfg.loss_span * extra["loss_span"] + cfg.loss_giou * extra["loss_giou"]
                                  + cfg.loss_label * extra["loss_label"])
        return losses

    def saliency_loss(self, saliency: torch.Tensor, batch: dict) -> torch.Tensor:
        """Hinge ``max(0, margin + s_neg − s_pos)`` over ``saliency_pairs`` random (inside, outside) row pairs
        per sample; samples whose video has no row inside or none outside the GT windows are skipped."""
        pos_mask = batch["saliency_pos"] & batch["video_mask"]
        neg_mask = ~batch["saliency_pos"] & batch["video_mask"]
        losses = []
        n = self.config.saliency_pairs
        for b in range(saliency.shape[0]):
            pos_idx = pos_mask[b].nonzero().squeeze(1)
            neg_idx = neg_mask[b].nonzero().squeeze(1)
            if len(pos_idx) == 0 or len(neg_idx) == 0:
                continue
            p = pos_idx[torch.randint(len(pos_idx), (n,), device=saliency.device)]
            q = neg_idx[torch.randint(len(neg_idx), (n,), device=saliency.device)]
            losses.append(F.relu(self.config.saliency_margin + saliency[b, q] - saliency[b, p]).mean())
        return torch.stack(losses).mean() if losses else saliency.sum() * 0.0

    def compute_losses(self, out: dict, batch: dict) -> dict:
        """Weighted sum of the final-layer losses, the auxiliary-layer losses and the saliency hinge."""
        cfg = self.config
        targets = [t.to(out["pred_spans"]) for t in batch["spans"]]
        weights = {"loss_span": cfg.loss_span, "loss_giou": cfg.loss_giou, "loss_label": cfg.loss_label,
                   "loss_o2m": cfg.o2m_weight}
        n_layers = out["layer_logits"].shape[0]
        layer_ids = range(n_layers) if cfg.aux_loss else [n_layers - 1]
        result: dict[str, torch.Tensor] = {}
        total = out["pred_spans"].sum() * 0.0
        aux = total.clone()
        for li in layer_ids:
            losses = self.set_losses(out["layer_logits"][li], out["layer_spans"][li], targets, out["query_keep"])
            weighted = sum(weights[k] * v for k, v in losses.items())
            total = total + weighted
            if li == n_layers - 1:
                result.update({k: v.detach() for k, v in losses.items()})
            else:
                aux = aux + weighted.detach()
        loss_sal = self.saliency_loss(out["saliency"], batch)
        total = total + cfg.loss_saliency * loss_sal
        for name, (w, value) in {**self.extra_losses(out, batch), **self.actionness_loss(out, targets)}.items():
            total = total + w * value
            result[name] = value.detach()
        result.update({"loss_saliency": loss_sal.detach(), "loss_aux": aux, "loss": total})
        return result

    def actionness_loss(self, out: dict, targets: list[torch.Tensor]) -> dict:
        """``{"loss_actionness": (weight, L1)}`` with ``actionness`` on (TadTR [134], thesis Tab 3.9): every
        query's actionness regresses the temporal IoU of its (detached) final-layer span with the closest GT."""
        if not self.config.actionness:
            return {}
        spans = out["pred_spans"].detach()
        target = torch.zeros_like(out["pred_actionness"])
        for b, tgt in enumerate(targets):
            if len(tgt):
                target[b] = pairwise_temporal_iou(span_cw_to_se(spans[b]), span_cw_to_se(tgt)).max(1).values
        return {"loss_actionness": (self.config.loss_actionness, F.l1_loss(out["pred_actionness"], target))}

    # ------------------------------------------------------------------ inference

    @torch.no_grad()
    def predict(self, batch: dict) -> list[dict]:
        """moment_detr-format rows: ``pred_relevant_windows`` = NMS-filtered ``[start, end, score]`` (seconds,
        descending score, at most ``max_windows``), ``pred_saliency_scores`` per video row, and the raw
        per-slot ``pred_query_windows`` (slot order, before NMS) for the active-query statistics."""
        was_training = self.training
        self.eval()
        try:
            out = self.forward_outputs(batch)
        finally:
            self.train(was_training)
        scores = out["pred_logits"].softmax(-1)[..., 0]
        if "pred_actionness" in out:  # TadTR: confidence = class score × predicted IoU
            scores = scores * out["pred_actionness"]
        scores = scores.cpu().numpy()
        se = span_cw_to_se(out["pred_spans"]).clamp(0, 1).cpu().numpy()
        sal = out["saliency"].cpu().numpy()
        lengths = batch["video_mask"].sum(1).tolist()
        rows = []
        for b, qid in enumerate(batch["qid"]):
            dur = float(batch["duration"][b])
            windows = se[b] * dur
            raw = [[round(float(s), 4), round(float(e), 4), round(float(c), 6)] for (s, e), c in zip(windows, scores[b])]
            if self.config.nms_threshold is not None:
                keep = nms_1d(windows, scores[b], self.config.nms_threshold, max_keep=self.config.max_windows)
            else:
                keep = np.argsort(-scores[b], kind="stable")[: self.config.max_windows]
            rows.append(
                {
                    "qid": qid,
                    "vid": batch["vid"][b],
                    "pred_relevant_windows": [raw[i] for i in keep],
                    "pred_saliency_scores": [round(float(x), 4) for x in sal[b, : lengths[b]]],
                    "pred_query_windows": raw,
                }
            )
        return rows
