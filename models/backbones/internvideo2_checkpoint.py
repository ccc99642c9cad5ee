"""Strict loading of InternVideo2 stage-2 checkpoints into the towers of :mod:`models.backbones.internvideo2`
(vision) and :mod:`models.backbones.internvideo2_text` (BERT text).

:func:`read_checkpoint` reads a state dict from a ``.pt``/``.pth``/``.pyth``/``.safetensors`` file,
:func:`load_into` loads one prefixed part of it strictly (missing / unexpected / mis-shaped keys raise
:class:`CheckpointError`), :func:`load_vision_checkpoint` and :func:`load_text_checkpoint` load the
``vision_encoder.*`` / ``text_encoder.*`` towers (position tables are interpolated to the configured frames
and grid, like the official ``interpolate_pos_embed_internvideo2``).
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from models.backbones.internvideo2 import InternVideo2VisionEncoder
from models.backbones.internvideo2_text import BertTextEncoder


class CheckpointError(ValueError):
    """A checkpoint does not match the module: the message lists missing / unexpected / mis-shaped keys."""


def read_checkpoint(path: str) -> dict[str, torch.Tensor]:
    """A state dict from a ``.pt``/``.pth``/``.pyth``/``.safetensors`` file (``model``/``module``/``model_state``
    wrappers are unwrapped)."""
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(str(path))
    ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("model", "module", "model_state", "state_dict"):
        if isinstance(ckpt, dict) and key in ckpt and isinstance(ckpt[key], dict):
            return ckpt[key]
    return ckpt


def _interpolate_pos(table: torch.Tensor, frames: int, grid: int, old_grid: int) -> torch.Tensor:
    """Resize a [1, 1 + T·old_grid², D] position table to ``frames`` × ``grid``² (linear in time, bicubic in
    space, cls entry kept), like the official ``interpolate_pos_embed_internvideo2``."""
    d = table.shape[-1]
    cls, body = table[:, :1], table[:, 1:]
    t_old = body.shape[1] // (old_grid * old_grid)
    if t_old * old_grid * old_grid != body.shape[1]:
        raise CheckpointError(f"position table of {body.shape[1]} entries is not T x {old_grid}x{old_grid}")
    body = body.reshape(t_old, old_grid, old_grid, d)
    if old_grid != grid:
        x = F.interpolate(body.permute(0, 3, 1, 2).float(), size=(grid, grid), mode="bicubic", align_corners=False)
        body = x.permute(0, 2, 3, 1).to(table.dtype)
    if t_old != frames:
        x = body.reshape(t_old, -1).T[None].float()  # [1, g²·D, T]
        x = F.interpolate(x, size=frames, mode="linear", align_corners=False)
        body = x[0].T.to(table.dtype)
    return torch.cat([cls, body.reshape(1, frames * grid * grid, d)], dim=1)


def load_into(module: nn.Module, state: Mapping[str, torch.Tensor], prefix: str, ignore: Iterable[str] = (),
              optional: Iterable[str] = (), where: str = "checkpoint") -> dict[str, list[str]]:
    """Load the ``prefix``-ed entries of ``state`` into ``module`` strictly.

    Every module key must be present (except those in ``optional``, e.g. a derivable buffer) and every
    checkpoint key must either be consumed or start with one of ``ignore`` (other towers of the same
    checkpoint, heads the feature path never runs), else :class:`CheckpointError` lists the offending keys.
    Returns the consumed and ignored checkpoint keys.
    """
    ignore, optional = tuple(ignore), set(optional)
    own = module.state_dict()
    sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix) and not k.startswith(ignore)}
    stray = sorted(k for k in state if not k.startswith(prefix) and not k.startswith(ignore))
    missing = sorted(k for k in own if k not in sub and k not in optional)
    unexpected = sorted(k for k in sub if k not in own)
    shapes = sorted(f"{k} {tuple(sub[k].shape)} vs {tuple(own[k].shape)}"
                    for k in sub if k in own and tuple(sub[k].shape) != tuple(own[k].shape))
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected + stray), ("shape mismatch", shapes)):
        if keys:
            problems.append(f"{label} ({len(keys)}): {', '.join(prefix + k for k in keys[:8])}"
                            + (" ..." if len(keys) > 8 else ""))
    if problems:
        raise CheckpointError(f"{where}: does not match {type(module).__name__}: " + "; ".join(problems))
    module.load_state_dict(sub, strict=False)
    return {"consumed": sorted(prefix + k for k in sub), "ignored": sorted(k for k in state if k.startswith(ignore))}


VISION_PREFIX = "vision_encoder."
TEXT_PREFIX = "text_encoder."
OTHER_STAGE2_KEYS = ("temp", "vision_proj.", "text_proj.", "itm_head.")


def load_vision_checkpoint(encoder: InternVideo2VisionEncoder, state: Mapping[str, torch.Tensor],
                           where: str = "checkpoint") -> dict[str, list[str]]:
    """Load ``vision_encoder.*`` strictly; position tables are interpolated when frames or grid differ."""
    state = dict(state)
    grid, frames = encoder.patch_embed.grid, encoder.num_frames
    img_key = VISION_PREFIX + "img_pos_embed"
    old_grid = math.isqrt(state[img_key].shape[1] - 1) if img_key in state else grid
    for name in ("pos_embed", "clip_pos_embed", "img_pos_embed", "clip_img_pos_embed"):
        key = VISION_PREFIX + name
        target = getattr(encoder, name).shape
        if key in state and tuple(state[key].shape) != tuple(target) and state[key].shape[-1] == target[-1]:
            t = 1 if name.endswith("img_pos_embed") else frames
            state[key] = _interpolate_pos(state[key], t, grid, old_grid)
    return load_into(encoder, state, VISION_PREFIX, ignore=(TEXT_PREFIX, *OTHER_STAGE2_KEYS), where=where)


def load_text_checkpoint(text: BertTextEncoder, state: Mapping[str, torch.Tensor],
                         where: str = "checkpoint") -> dict[str, list[str]]:
    """Load ``text_encoder.*`` strictly (``bert.embeddings.position_ids`` may be absent: it is an arange).

    The MLM head ``text_encoder.cls.*`` is loaded when ``text`` has one and ignored otherwise (the feature
    path never uses it).
    """
    ignore = (VISION_PREFIX, *OTHER_STAGE2_KEYS)
    if not hasattr(text, "cls"):
        ignore += (TEXT_PREFIX + "cls.",)
    return load_into(text, state, TEXT_PREFIX, ignore=ignore, optional=("bert.embeddings.position_ids",),
                     where=where)
