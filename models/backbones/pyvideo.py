"""SlowFast-R50 and I3D-R50 from ``pytorchvideo.models.hub`` as frozen clip-feature extractors.

Only ``pytorchvideo.models*`` is imported (``pytorchvideo.transforms`` is broken with current torchvision);
sampling, resizing and normalisation are ours. The feature is the pooled vector before the classifier:
the head's ``proj`` is replaced by ``Identity`` after the checkpoint is loaded, so the Kinetics ``.pyth``
(state dict under ``model_state``) loads strictly with its classifier keys. The head pooling is global
adaptive average pooling, which equals the hub's fixed AvgPool3d at the hub's input sizes (8/32 frames at
224²) and also works for other frame counts and sizes.

Tiny configurations keep the hub architecture (same blocks, same key names) with fewer channels:
``width`` is the stem width of the (slow) pathway (64 in R50), ``beta`` the slow/fast channel ratio (8).
Feature width: SlowFast ``32·width + 32·width/beta`` (2304 at R50), I3D ``32·width`` (2048 at R50).
Random init (no checkpoint) re-enables the residual branches (:func:`activate_residuals`).
"""
from __future__ import annotations

import warnings
from typing import Mapping

import torch
from torch import nn


def _hub():
    """``pytorchvideo.models.hub`` (its import scripts a helper with the deprecated ``torch.jit.script``)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
        from pytorchvideo.models import hub
    return hub

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)


def create_slowfast(width: int = 64, beta: int = 8, alpha: int = 4, num_classes: int = 400) -> nn.Module:
    """The hub's ``slowfast_r50`` (random init) with stem width ``width``, channel ratio ``beta``, speed ratio
    ``alpha``, ``num_classes`` head outputs (Kinetics 400); global-average head pooling."""
    if width % beta:
        raise ValueError(f"slowfast width {width} must be a multiple of beta {beta}")
    return _hub().slowfast_r50(
        pretrained=False,
        stem_dim_outs=(width, width // beta),
        slowfast_channel_reduction_ratio=(beta,),
        slowfast_fusion_conv_stride=(alpha, 1, 1),
        head_pool=nn.AdaptiveAvgPool3d,
        model_num_class=num_classes,
    )


def create_i3d(width: int = 64, num_classes: int = 400) -> nn.Module:
    """The hub's ``i3d_r50`` (random init) with stem width ``width``, ``num_classes`` head outputs;
    global-average head pooling."""
    return _hub().i3d_r50(pretrained=False, stem_dim_out=width, head_pool=nn.AdaptiveAvgPool3d,
                          model_num_class=num_classes)


def head_classes(state: Mapping[str, torch.Tensor], default: int = 400) -> int:
    """Output count of the classifier ``blocks.<last>.proj`` stored in a pytorchvideo state dict.

    Kinetics checkpoints have 400; others (the embedded pretraining's multi-head classifier, fine-tuned
    checkpoints) have their own. The classifier is dropped for features, so any count is accepted."""
    projs = sorted((k for k in state if k.startswith("blocks.") and k.endswith(".proj.weight")),
                   key=lambda k: int(k.split(".")[1]))
    return int(state[projs[-1]].shape[0]) if projs else default


def pyth_state(net: nn.Module, proj: nn.Linear) -> dict[str, torch.Tensor]:
    """pytorchvideo ``model_state`` of a feature net whose classifier was replaced by ``Identity``: the net's
    keys plus ``blocks.<last>.proj.{weight,bias}`` from ``proj`` (what :func:`load_pyth` expects back)."""
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    last = len(net.blocks) - 1
    state[f"blocks.{last}.proj.weight"] = proj.weight.detach().cpu().clone()
    state[f"blocks.{last}.proj.bias"] = proj.bias.detach().cpu().clone()
    return state


def activate_residuals(net: nn.Module) -> nn.Module:
    """Random-init only: set the zero-initialised last BatchNorm of every residual block to weight 1.

    pytorchvideo zero-inits those weights (a training trick that starts each block as the identity); in a
    frozen random network that would switch every residual branch off for good, leaving features that barely
    see colour or motion. With weight 1 the random branches contribute (see ``benchmarks/probe_features.py``).
    """
    for m in net.modules():
        if getattr(m, "block_final_bn", False) and isinstance(m, nn.modules.batchnorm._NormBase):
            nn.init.ones_(m.weight)
    return net


def load_pyth(net: nn.Module, state: Mapping[str, torch.Tensor], where: str = "checkpoint") -> None:
    """Load a pytorchvideo state dict strictly; a mismatch raises ``ValueError`` listing the keys."""
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shapes:
        raise ValueError(
            f"{where}: does not match the configured network: missing {missing[:6]}, unexpected "
            f"{unexpected[:6]}, shape mismatch {shapes[:6]} (check the width/beta/alpha params)"
        )
    net.load_state_dict(state, strict=True)


def read_pyth(path: str) -> dict[str, torch.Tensor]:
    """The ``model_state`` dict of a pytorchvideo ``.pyth`` checkpoint (or a bare state dict)."""
    ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
    if isinstance(ckpt, dict) and "model_state" in ckpt:
        return ckpt["model_state"]
    if isinstance(ckpt, dict) and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return ckpt
    raise ValueError(f"{path}: no 'model_state' in this checkpoint")


class PyVideoFeatures(nn.Module):
    """uint8 clips [B, T, H, W, 3] → pooled pre-classifier features [B, 1, D].

    For SlowFast (``alpha`` set) the fast pathway gets all T frames and the slow pathway T/alpha frames picked
    uniformly (the pytorchvideo PackPathway rule); I3D gets all T frames.
    """

    def __init__(self, net: nn.Module, dim: int, alpha: int | None):
        super().__init__()
        net.blocks[-1].proj = nn.Identity()
        self.net = net
        self.dim = dim
        self.alpha = alpha
        self.layers = (1,)
        self.pooling = "avg"
        self.register_buffer("mean", torch.tensor(KINETICS_MEAN).view(1, 3, 1, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(KINETICS_STD).view(1, 3, 1, 1, 1) * 255, persistent=False)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        dtype = next(self.net.parameters()).dtype
        x = clips.permute(0, 4, 1, 2, 3).float()  # [B, 3, T, H, W]
        x = ((x - self.mean) / self.std).to(dtype)
        if self.alpha is not None:
            t = x.shape[2]
            if t < self.alpha:
                raise ValueError(f"SlowFast needs at least alpha={self.alpha} frames per clip, got {t}")
            idx = torch.linspace(0, t - 1, t // self.alpha, device=x.device).long()
            x = [x.index_select(2, idx), x]
        return self.net(x).unsqueeze(1)


def build_slowfast(width: int = 64, beta: int = 8, alpha: int = 4, checkpoint: str | None = None) -> PyVideoFeatures:
    """SlowFast feature extractor; ``checkpoint`` is a local ``.pyth`` (None = random init)."""
    if checkpoint:
        state = read_pyth(checkpoint)
        net = create_slowfast(width, beta, alpha, head_classes(state))
        load_pyth(net, state, where=checkpoint)
    else:
        net = activate_residuals(create_slowfast(width, beta, alpha))
    return PyVideoFeatures(net, dim=32 * width + 32 * width // beta, alpha=alpha)


def build_i3d(width: int = 64, checkpoint: str | None = None) -> PyVideoFeatures:
    """I3D feature extractor; ``checkpoint`` is a local ``.pyth`` (None = random init)."""
    if checkpoint:
        state = read_pyth(checkpoint)
        net = create_i3d(width, head_classes(state))
        load_pyth(net, state, where=checkpoint)
    else:
        net = activate_residuals(create_i3d(width))
    return PyVideoFeatures(net, dim=32 * width, alpha=None)
