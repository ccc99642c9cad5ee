"""The SADA detector: SGP pyramid + heads trained on the source domain, aligned across domains by
:class:`~models.sada.adaptation.DomainAlignment` (thesis Eq. 2.10: ``λ_task·L_task + λ_sada·L_sada``).

Batch contract (built by ``pipeline.sada.data.collate_videos``)::

    feats     [B, D, T] float   features, channel-first, zero-padded to a multiple of 2**(levels-1)
    mask      [B, 1, T] bool    True on real rows
    domain    [B] long          0 = source (labelled), 1 = target (unlabelled)
    segments  list of [G, 2]    GT (start, end) in feature-grid units (empty for target videos)
    labels    list of [G]       GT class indices
    video_ids list of str;  durations [B] float (seconds);  time_step, window: float (feature recipe)

``forward`` returns the loss dict of the generic training loop; ``predict`` returns TAL prediction rows
``{"video-id", "t-start", "t-end", "label", "score"}`` in seconds.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from models.common import soft_nms_gaussian
from models.sada.actionformer import ConvTransformerPyramid
from models.sada.adaptation import DomainAlignment, pseudo_labels
from models.sada.backbone import DetectionHeads, IdentityNeck, SGPPyramid
from models.distributed import sum_over_ranks, world_size
from models.sada.targets import LossNormalizer, anchor_points, assign_labels, task_losses


def grid_to_seconds(grid: np.ndarray, time_step: float, window: float, duration: float) -> np.ndarray:
    """Feature-grid position → seconds: rows sit at the centre of their window, then clamp to the video."""
    return np.clip(np.asarray(grid, dtype=np.float64) * time_step + 0.5 * window, 0.0, duration)


def seconds_to_grid(seconds: np.ndarray, time_step: float, window: float) -> np.ndarray:
    """Inverse of :func:`grid_to_seconds` (small negative values are allowed, as in the reference)."""
    return (np.asarray(seconds, dtype=np.float64) - 0.5 * window) / time_step


class SadaDetector(nn.Module):
    """TriDet-style detector with optional adversarial anchor alignment.

    ``config`` is a :class:`models.sada.config.SadaDetectorConfig` (this module does not import ``pipeline``):
    ``model`` (architecture, assignment, losses, discriminators), optional ``inference`` (pre-NMS filter,
    Soft-NMS, caps; the predict stage passes its own), ``weights`` (the scenario's α, λ_l, λ_cls, λ_reg, λ_task, λ_sada — thesis Tab. 2.3), ``align``
    (subset of ``local``, ``global``, ``bkg``; empty = source-only), ``input_dim`` and ``class_names``.
    ``SadaDetector(config)`` rebuilds the same architecture, which is how checkpoints are reloaded.
    """

    def __init__(self, config: Any):
        super().__init__()
        if config.input_dim <= 0 or not config.class_names:
            raise ValueError("SadaDetector: config.input_dim and config.class_names must be set")
        self.config = config
        model_cfg, weights = config.model, config.weights
        self.cfg = model_cfg
        self.weights = weights
        self.inference = config.inference
        self.class_names = list(config.class_names)
        num_classes = len(self.class_names)
        dim = model_cfg.embed_dim
        if model_cfg.detector == "actionformer":  # thesis Tab. 2.4's other base detector
            self.pyramid = ConvTransformerPyramid(config.input_dim, dim, tuple(model_cfg.arch), model_cfg.af_heads,
                                                  model_cfg.af_window, model_cfg.af_mlp_ratio, model_cfg.droppath)
        else:
            self.pyramid = SGPPyramid(
                config.input_dim,
                dim,
                tuple(model_cfg.arch),
                model_cfg.sgp_window,
                model_cfg.sgp_k,
                model_cfg.sgp_mlp_dim,
                model_cfg.droppath,
                model_cfg.sgp_init_std,
            )
        levels = self.pyramid.num_levels
        if len(model_cfg.regression_ranges) != levels:
            raise ValueError(f"sada.model.regression_ranges: need {levels} ranges (one per level)")
        if len(weights.lambda_levels) != levels:
            raise ValueError(f"lambda_levels: need {levels} values (one per level), got {len(weights.lambda_levels)}")
        self.neck = IdentityNeck(dim, levels)
        self.heads = DetectionHeads(
            dim, model_cfg.head_dim, num_classes, levels, model_cfg.head_layers, model_cfg.head_kernel,
            model_cfg.cls_prior_prob,
        )
        self.alignment = DomainAlignment(
            dim,
            num_classes,
            levels,
            config.align,
            model_cfg.class_embed_dim or dim,
            model_cfg.disc_hidden,
            model_cfg.disc_layers,
            model_cfg.grl_coeff,
            model_cfg.class_embed,
        )
        self.loss_norm = LossNormalizer(model_cfg.init_loss_norm, model_cfg.loss_norm_momentum)
        # training iterations seen (a buffer: saved in checkpoints, so a resumed run keeps its GRL ramp)
        self.register_buffer("train_steps", torch.zeros((), dtype=torch.long))

    @property
    def num_levels(self) -> int:
        return self.pyramid.num_levels

    def grl_coeff(self) -> float:
        """Gradient-reversal coefficient now: ``grl_coeff · (2 / (1 + exp(-10 p)) - 1)`` (DANN [34]).

        ``grl_schedule`` ``dann``: p = iterations so far / ``config.total_iters`` (the whole run, as DANN);
        ``warmup``: p over the first ``grl_warmup_iters`` iterations, then ``grl_coeff`` (constant when 0).
        """
        if self.cfg.grl_schedule == "dann":
            span = int(getattr(self.config, "total_iters", 0))
            if span <= 0:
                raise ValueError("grl_schedule dann needs config.total_iters > 0 (set by the train stage)")
        else:
            span = self.cfg.grl_warmup_iters
            if span <= 0:
                return self.cfg.grl_coeff
        progress = min(1.0, float(self.train_steps) / span)
        return self.cfg.grl_coeff * (2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0)

    @property
    def pad_multiple(self) -> int:
        """Inputs must be padded to a multiple of this so every level's max-pool and mask lengths agree."""
        return 2 ** (self.num_levels - 1)

    # ------------------------------------------------------------------------------------------ encoding
    def encode(self, feats: torch.Tensor, mask: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        """Pyramid → neck anchors ``(B, F, T_l)``, level masks, class logits and offsets per level."""
        if feats.shape[-1] % self.pad_multiple:
            raise ValueError(f"feature length {feats.shape[-1]} is not a multiple of {self.pad_multiple}")
        levels, masks = self.pyramid(feats, mask)
        anchors = self.neck(levels, masks)
        logits, offsets = self.heads(anchors, masks)
        return {"anchors": anchors, "masks": masks, "logits": logits, "offsets": offsets}

    def targets(
        self, level_lengths: list[int], segments: list[torch.Tensor], labels: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stacked ``cls [B, P, C]``, ``reg [B, P, 2]`` and ``anchor_class [B, P]`` for the given videos."""
        device = segments[0].device if segments else torch.device("cpu")
        points = anchor_points(level_lengths, self.cfg.regression_ranges).to(device)
        if not segments:
            n, c = points.shape[0], len(self.class_names)
            return points.new_zeros(0, n, c), points.new_zeros(0, n, 2), torch.zeros(0, n, dtype=torch.long)
        out = [
            assign_labels(points, seg.float(), lab, len(self.class_names), self.cfg.center_sample_radius)
            for seg, lab in zip(segments, labels)
        ]
        return tuple(torch.stack(parts) for parts in zip(*out))  # type: ignore[return-value]

    # ------------------------------------------------------------------------------------------ training
    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        """Task loss on the source videos plus, when enabled and target videos are present, the SADA loss."""
        enc = self.encode(batch["feats"], batch["mask"])
        lengths = [a.shape[-1] for a in enc["anchors"]]
        logits = torch.cat(enc["logits"], 1)
        offsets = torch.cat(enc["offsets"], 1)
        valid = torch.cat([m.squeeze(1) for m in enc["masks"]], 1)
        domain = batch["domain"]
        src = (domain == 0).nonzero().flatten()
        tgt = (domain == 1).nonzero().flatten()

        cls_t, reg_t, anchor_cls = self.targets(
            lengths, [batch["segments"][i] for i in src.tolist()], [batch["labels"][i] for i in src.tolist()]
        )
        src_valid = valid[src]
        num_pos = int(((cls_t.sum(-1) > 0) & src_valid).sum())
        world = world_size() if self.training else 1
        if world > 1:  # DDP: normalise by the global batch's positives, so the ranks' shares add up exactly
            num_pos = int(sum_over_ranks(torch.tensor(float(num_pos))).item())
        norm = (self.loss_norm.update(num_pos) if self.training else self.loss_norm.value) / world
        cls_loss, reg_loss = task_losses(
            logits[src].flatten(0, 1),
            offsets[src].flatten(0, 1),
            cls_t.flatten(0, 1),
            reg_t.flatten(0, 1),
            src_valid.flatten(),
            norm,
            self.cfg.loc_loss,
            self.cfg.focal_alpha,
            self.cfg.focal_gamma,
            self.cfg.label_smoothing,
        )
        if self.training:
            self.train_steps += 1
        w = self.weights
        task = w.lambda_cls * cls_loss + w.lambda_reg * reg_loss
        out = {"loss_cls": cls_loss.detach(), "loss_reg": reg_loss.detach(), "num_pos": torch.tensor(float(num_pos))}
        loss = w.lambda_task * task
        if self.alignment.enabled and len(tgt) > 0 and len(src) > 0:
            classes = torch.zeros(valid.shape, dtype=torch.long, device=valid.device)
            classes[src] = anchor_cls
            classes[tgt] = pseudo_labels(logits[tgt], w.alpha)
            coeff = self.grl_coeff()
            sada, parts = self.alignment(
                *self._level_anchor_sets(enc, classes, valid, domain), list(w.lambda_levels), coeff, world > 1
            )
            out["grl_coeff"] = torch.tensor(coeff)
            loss = loss + w.lambda_sada * sada
            out["loss_sada"] = sada.detach()
            out.update({f"loss_{k}": v.detach() for k, v in parts.items()})
            out["pseudo_fg_frac"] = (classes[tgt][valid[tgt]] > 0).float().mean().detach()
        out["loss"] = loss
        return out

    def _level_anchor_sets(
        self, enc: dict, classes: torch.Tensor, valid: torch.Tensor, domain: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """Per level: the valid anchors ``[N_l, F]`` of all videos, their classes and domains."""
        anchors, cls, dom = [], [], []
        offset = 0
        for a in enc["anchors"]:
            length = a.shape[-1]
            keep = valid[:, offset : offset + length]
            anchors.append(a.transpose(1, 2)[keep])
            cls.append(classes[:, offset : offset + length][keep])
            dom.append(domain[:, None].expand(-1, length)[keep])
            offset += length
        return anchors, cls, dom

    # ------------------------------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict(self, batch: dict, inference: Any = None, mask_background: bool = False) -> list[dict]:
        """Decode every video of the batch into Soft-NMS'd segments in seconds (notes §4).

        ``inference`` (a ``SadaInferenceConfig``) defaults to ``config.inference``. ``mask_background``
        (thesis Tab. 2.8, an oracle analysis): the *background anchors* — those label assignment matches to
        no GT segment of the batch's ``segments``/``labels`` — score 0, so only action anchors are decoded.
        """
        inference = inference if inference is not None else self.inference
        if inference is None:
            raise ValueError("SadaDetector.predict: no inference settings (pass sada.inference)")
        enc = self.encode(batch["feats"], batch["mask"])
        keep = None
        if mask_background:
            lengths = [a.shape[-1] for a in enc["anchors"]]
            keep = self.targets(lengths, list(batch["segments"]), list(batch["labels"]))[2] > 0  # [B, P]
        rows: list[dict] = []
        for b, video_id in enumerate(batch["video_ids"]):
            segs, scores, classes = self._decode_video(enc, b, inference, None if keep is None else keep[b])
            segs, scores, classes = self._soft_nms(segs, scores, classes, inference)
            seconds = grid_to_seconds(segs, batch["time_step"], batch["window"], float(batch["durations"][b]))
            for (start, end), score, cls in zip(seconds, scores, classes):
                rows.append(
                    {
                        "video-id": video_id,
                        "t-start": float(start),
                        "t-end": float(end),
                        "label": self.class_names[int(cls)],
                        "score": float(score),
                    }
                )
        return rows

    def _decode_video(self, enc: dict, b: int, inf: Any, point_keep: torch.Tensor | None = None,
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidate segments of video ``b``; ``point_keep`` ([P] bool over all levels' points) zeroes the others."""
        num_classes = len(self.class_names)
        segs, scores, classes = [], [], []
        start_point = 0
        for level, (logit, offset, mask) in enumerate(zip(enc["logits"], enc["offsets"], enc["masks"])):
            valid = mask[b, 0]
            if point_keep is not None:
                valid = valid & point_keep[start_point : start_point + valid.shape[0]].to(valid.device)
            start_point += valid.shape[0]
            prob = (torch.sigmoid(logit[b]) * valid[:, None]).flatten()
            keep = (prob > inf.pre_nms_thresh).nonzero().flatten()
            top = prob[keep].argsort(descending=True, stable=True)[: inf.pre_nms_topk]
            keep = keep[top]
            point, cls = keep // num_classes, keep % num_classes
            stride = float(2**level)
            t = point.float() * stride
            start = t - offset[b, point, 0] * stride
            end = t + offset[b, point, 1] * stride
            ok = (end - start) > inf.duration_thresh
            segs.append(torch.stack([start, end], 1)[ok])
            scores.append(prob[keep][ok])
            classes.append(cls[ok])
        return (
            torch.cat(segs).cpu().numpy().astype(np.float64),
            torch.cat(scores).cpu().numpy().astype(np.float64),
            torch.cat(classes).cpu().numpy(),
        )

    def _soft_nms(
        self, segs: np.ndarray, scores: np.ndarray, classes: np.ndarray, inf: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gaussian Soft-NMS per class, a per-class cap, then the top per-video segments by score."""
        out_s, out_p, out_c = [], [], []
        for cls in np.unique(classes):
            idx = np.flatnonzero(classes == cls)
            kept, decayed = soft_nms_gaussian(segs[idx], scores[idx], inf.nms_sigma, inf.min_score, inf.max_seg_per_class)
            out_s.append(segs[idx][kept])
            out_p.append(decayed)
            out_c.append(np.full(len(kept), cls))
        if not out_s:
            return np.zeros((0, 2)), np.zeros(0), np.zeros(0, dtype=np.int64)
        segs, scores, classes = np.concatenate(out_s), np.concatenate(out_p), np.concatenate(out_c)
        order = np.argsort(-scores, kind="stable")[: inf.max_seg_per_video]
        return segs[order], scores[order], classes[order]
