"""Configs of the SADA detector (``sada.model``, weights, inference; torch-free, also its checkpoint config)."""
from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class SadaModelConfig:
    """``sada.model``: the TriDet-style detector and its domain discriminators (thesis §2.3, §2.5.2).

    ``arch`` = (embedding convs, SGP stem blocks, max-pool SGP blocks): (2, 2, 5) gives 6 levels of strides
    1…32. SGP long kernel = ``round((sgp_window + 1)·sgp_k)`` made odd; ``sgp_init_std`` 0 = TriDet's zero
    init. ``regression_ranges`` (one ``[lo, hi]`` per level, level-0 grid units, inclusive) and
    ``center_sample_radius`` drive label assignment; ``loc_loss`` is ``mse`` (Eq. 2.2) or ``diou``. The loss
    normaliser is an EMA of the positive-point count. Discriminators: MLP of ``disc_layers`` layers, width
    ``disc_hidden``, on ``[anchor ‖ class embedding]`` (``class_embed_dim`` 0 = ``embed_dim``). The GRL
    coefficient follows DANN's ramp ``grl_coeff · (2 / (1 + exp(-10 p)) - 1)``: ``grl_schedule`` ``dann``
    = standard DANN [34], p = progress over the whole training run (``total_iters``); ``warmup`` = p over the
    first ``grl_warmup_iters`` iterations only, then constant (0 = constant from the start).
    """

    embed_dim: int
    arch: tuple[int, int, int]
    sgp_window: int
    sgp_k: float
    sgp_mlp_dim: int
    sgp_init_std: float
    droppath: float
    head_dim: int
    head_layers: int
    head_kernel: int
    regression_ranges: list[tuple[float, float]]
    center_sample_radius: float
    loc_loss: Literal["mse", "diou"]
    cls_prior_prob: float
    label_smoothing: float
    focal_alpha: float
    focal_gamma: float
    init_loss_norm: float
    loss_norm_momentum: float
    disc_hidden: int
    disc_layers: int
    class_embed_dim: int
    grl_coeff: float
    grl_warmup_iters: int
    grl_schedule: Literal["warmup", "dann"] = "warmup"
    class_embed: Literal["learnable", "onehot", "random", "sinusoidal"] = "learnable"  # e_i (Tab. 2.10)
    detector: Literal["tridet", "actionformer"] = "tridet"  # the encoder behind the heads (Tab. 2.4)
    af_heads: int = 4  # ActionFormer (detector: actionformer): attention heads, local window, MLP ratio (EPIC:
    af_window: int = 9  # 4 heads, window 9, 4×); arch, embed_dim and droppath are shared with the SGP pyramid
    af_mlp_ratio: int = 4


@dataclasses.dataclass(frozen=True)
class SadaInferenceConfig:
    """``sada.inference``: per-level score filter and top-k, tiny-segment filter (grid units), Gaussian
    Soft-NMS per class (σ, min score), then the per-class and per-video caps (notes §4)."""

    pre_nms_thresh: float
    pre_nms_topk: int
    duration_thresh: float
    nms_sigma: float
    min_score: float
    max_seg_per_class: int
    max_seg_per_video: int


@dataclasses.dataclass(frozen=True)
class SadaWeights:
    """A scenario's loss weights (thesis Tab. 2.3): ``lambda_levels`` = λ_l per pyramid level (Eq. 2.9),
    ``alpha`` = pseudo-label threshold (Eq. 2.4), ``lambda_cls``/``lambda_reg`` (Eq. 2.3),
    ``lambda_task``/``lambda_sada`` (Eq. 2.10)."""

    lambda_levels: list[float]
    alpha: float
    lambda_cls: float
    lambda_reg: float
    lambda_task: float
    lambda_sada: float


@dataclasses.dataclass(frozen=True)
class SadaDetectorConfig:
    """Checkpoint config of ``models.sada.detector.SadaDetector`` (built by the train stage, not a params block):
    the ``sada.model`` settings, the scenario's weights, the variant's alignment terms and the facts that come
    from the data (feature width, class names). Post-processing is not part of training: the predict stage
    hands ``sada.inference`` to ``predict``, so changing it never retrains."""

    model: SadaModelConfig
    weights: SadaWeights
    align: list[Literal["local", "global", "bkg", "centroid", "wasserstein"]]
    input_dim: int
    class_names: list[str]
    inference: SadaInferenceConfig | None = None  # the predict stage passes the current sada.inference
    total_iters: int = 0  # planned training iterations (epochs × iterations per epoch): the DANN GRL's p
