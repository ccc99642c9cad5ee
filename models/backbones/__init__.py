"""Frozen feature backbones, built from their ``features.*`` config blocks through plain builder dicts.

Video backbones map uint8 clips [B, T, H, W, 3] to features [B, L, D] and expose ``dim`` (D), ``layers``
(the 1-based layer ids along L) and ``pooling``. Text towers (``build_text_tower``) map strings to per-token
arrays [tokens, L, D]. Configs are duck-typed: any object with the documented attributes works.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

from torch import nn


def _plain(obj: Any) -> Any:
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else dict(obj or {})


def _slowfast(cfg) -> nn.Module:
    from models.backbones.pyvideo import build_slowfast

    return build_slowfast(cfg.width, cfg.beta, cfg.alpha, cfg.checkpoint)


def _i3d(cfg) -> nn.Module:
    from models.backbones.pyvideo import build_i3d

    return build_i3d(cfg.width, cfg.checkpoint)


def _internvideo2(cfg) -> nn.Module:
    from models.backbones.internvideo2 import InternVideo2VisionEncoder, InternVideo2Video
    from models.backbones.internvideo2_checkpoint import load_vision_checkpoint, read_checkpoint

    encoder = InternVideo2VisionEncoder(img_size=cfg.recipe.size, num_frames=cfg.recipe.frames, **_plain(cfg.arch))
    if cfg.checkpoint:
        load_vision_checkpoint(encoder, read_checkpoint(cfg.checkpoint), where=cfg.checkpoint)
    else:
        encoder.init_for_random_features()
    return InternVideo2Video(encoder, cfg.layers, cfg.pooling)


def _clip(cfg) -> nn.Module:
    from models.backbones.clip import ClipVideo, build_clip

    model = build_clip(cfg.model.name, cfg.model.checkpoint, cfg.model.arch)
    return ClipVideo(model, cfg.layers, cfg.pooling)


VIDEO_BUILDERS: dict[str, Callable[[Any], nn.Module]] = {
    "slowfast": _slowfast,
    "i3d": _i3d,
    "internvideo2": _internvideo2,
    "clip": _clip,
}


def build_video_backbone(name: str, cfg) -> nn.Module:
    """The frozen video backbone ``name`` (eval mode) from its config block."""
    if name not in VIDEO_BUILDERS:
        raise ValueError(f"unknown video backbone {name!r}; known: {', '.join(VIDEO_BUILDERS)}")
    return VIDEO_BUILDERS[name](cfg).eval().requires_grad_(False)


def build_text_tower(cfg, internvideo2_checkpoint: str | None = None, clip_model=None):
    """The frozen text tower ``cfg.tower`` (``minilm`` | ``internvideo2`` | ``clip``) from ``features.text``."""
    from models.backbones import text

    if cfg.tower == "minilm":
        return text.build_minilm(cfg.layers, cfg.max_tokens)
    if cfg.tower == "internvideo2":
        return text.build_internvideo2_text(_plain(cfg.bert), cfg.layers, cfg.max_tokens,
                                            internvideo2_checkpoint, cfg.vocab)
    if cfg.tower == "clip":
        if clip_model is None:
            raise ValueError("the clip text tower needs the features.clip.model block")
        return text.build_clip_text(clip_model.name, clip_model.checkpoint, clip_model.arch, cfg.layers,
                                    cfg.max_tokens)
    raise ValueError(f"unknown text tower {cfg.tower!r} (minilm | internvideo2 | clip)")
