"""CLIP image/text features through open-clip-torch, for comparisons with image-domain side-tuners.

``build_clip(model_name, checkpoint, arch)``: with ``arch`` (a dict of ``open_clip.CLIP`` keyword arguments:
``embed_dim``, ``vision_cfg``, ``text_cfg``) the model is built directly, random init unless ``checkpoint``;
without it ``open_clip.create_model(model_name, pretrained=checkpoint)`` builds a named architecture and
loads a local checkpoint file (no download: ``checkpoint`` must be a path, or None for random init).

Video: each frame of a window goes through the image tower; per configured (1-based) block the frame's
``cls`` token or token mean (``avg``) is taken, or ``embed`` = the final projected image embedding (last block
only); the window's row is the mean over its frames. Text: per-token states of the configured blocks
(start token to end token).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn


def build_clip(model_name: str, checkpoint: str | None = None, arch: Mapping[str, Any] | None = None) -> nn.Module:
    """An open_clip ``CLIP`` model in eval mode."""
    import open_clip

    if arch:
        model = open_clip.CLIP(**dict(arch))
        if checkpoint:
            open_clip.load_checkpoint(model, checkpoint)
    else:
        model = open_clip.create_model(model_name, pretrained=checkpoint or None)
    return model.eval()


def clip_tokenizer(model_name: str, context_length: int):
    """open_clip's tokenizer for ``model_name`` (the bundled BPE vocabulary for the OpenAI-style models)."""
    import open_clip

    try:
        return open_clip.get_tokenizer(model_name, context_length=context_length)
    except Exception:  # an unregistered (tiny) architecture: the standard CLIP BPE tokenizer
        return open_clip.SimpleTokenizer(context_length=context_length)


def _depth(blocks: nn.Module) -> int:
    return len(blocks.resblocks)


class ClipVideo(nn.Module):
    """uint8 clips [B, T, H, W, 3] → [B, L, D]: per-frame CLIP image features averaged over the T frames."""

    def __init__(self, model: nn.Module, layers: Sequence[int], pooling: str = "cls"):
        super().__init__()
        import open_clip

        visual = model.visual
        depth = _depth(visual.transformer)
        if pooling not in ("cls", "avg", "embed"):
            raise ValueError(f"unknown CLIP pooling {pooling!r} (cls | avg | embed)")
        bad = [ly for ly in layers if not 1 <= ly <= depth]
        if bad or not layers:
            raise ValueError(f"CLIP image layers {list(layers)} must be non-empty and within 1..{depth}")
        if pooling == "embed" and tuple(layers) != (depth,):
            raise ValueError(f"CLIP pooling 'embed' is the final embedding: layers must be [{depth}]")
        self.visual = visual
        self.layers = tuple(int(x) for x in layers)
        self.pooling = pooling
        self.dim = visual.output_dim if pooling == "embed" else visual.transformer.width
        mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1) * 255
        std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1) * 255
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        b, t = clips.shape[:2]
        dtype = next(self.visual.parameters()).dtype
        x = clips.flatten(0, 1).permute(0, 3, 1, 2).float()  # [B·T, 3, H, W]
        x = ((x - self.mean) / self.std).to(dtype)
        if self.pooling == "embed":
            feats = self.visual(x)[:, None]  # [B·T, 1, D]
        else:
            out = self.visual.forward_intermediates(
                x, indices=[ly - 1 for ly in self.layers], intermediates_only=True, output_fmt="NLC",
                output_extra_tokens=True,
            )
            if self.pooling == "cls":
                feats = torch.stack([p[:, 0] for p in out["image_intermediates_prefix"]], dim=1)
            else:
                feats = torch.stack(
                    [torch.cat([p, s], dim=1).mean(1) for p, s in
                     zip(out["image_intermediates_prefix"], out["image_intermediates"])], dim=1)
        return feats.view(b, t, *feats.shape[1:]).mean(1)


class ClipTokens(nn.Module):
    """Token ids [B, ctx] → [B, L, ctx, width] states of the configured text blocks (causal CLIP text tower)."""

    def __init__(self, model: nn.Module, layers: Sequence[int]):
        super().__init__()
        depth = _depth(model.transformer)
        bad = [ly for ly in layers if not 1 <= ly <= depth]
        if bad or not layers:
            raise ValueError(f"CLIP text layers {list(layers)} must be non-empty and within 1..{depth}")
        self.model = model
        self.layers = tuple(int(x) for x in layers)
        self.dim = model.transformer.width

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out = self.model.forward_intermediates(text=tokens, text_indices=[ly - 1 for ly in self.layers],
                                               intermediates_only=True)
        return torch.stack(out["text_intermediates"], dim=1)
