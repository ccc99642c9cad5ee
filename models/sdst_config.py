"""Configuration dataclasses of the SDST side-tuner (torch-free, so ``pipeline.core.params`` can embed them).

``SDSTModelConfig`` is the ``sdst.model`` block of ``params.yaml``: architecture switches and loss weights.
Defaults are the thesis' choices (Tab 4.1, DESIGN §9, Tab 4.22 "chosen" loss weights).
``SDSTConfig`` is what :class:`models.sdst.SDST` is built from: ``SDSTModelConfig`` plus the facts that come
from the data (input dims, number of queries, which backbone layers feed which level). Checkpoints store it,
so prediction rebuilds the model and selects the same feature layers from the checkpoint alone.
"""
from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class SDSTModelConfig:
    """Architecture and loss settings of SDST (``sdst.model``)."""

    # which network: the SDST side-tuner, or the R2-Tuning baseline (models.r2tuning, Tab 4.8) trained and
    # evaluated by the same stages on the same features (it reads hidden/heads/ffn_ratio/dropout, the saliency
    # and alignment weights, temperature and focal settings; the SDST-only switches are ignored)
    architecture: Literal["sdst", "r2tuning"] = "sdst"
    hidden: int = 256
    heads: int = 8
    ffn_ratio: int = 4
    dropout: float = 0.5  # inside the video/text input maps
    droppath: float = 0.25
    attention: Literal["rdsa", "deformable_ca", "standard_ca"] = "rdsa"  # sparse-stream video injection (Tab 4.12)
    sampling_points: Literal["c", "l-r", "l-c-r"] = "l-c-r"  # RDSA query embedding points (Tab 4.13)
    # RDSA context CNN over the dense embedding (Tab 4.13; thesis §4.5.1: "a 2-layer CNN with a hidden dimension
    # of 256, a learnable LayerNorm, and a non-linearity"): two k3 convs with LN + ReLU between, either depthwise
    # (256 channels, one filter each: the reading that lands on the thesis' 4.10 M / 12.43 M, see
    # models.sdst_budget) or full 256→256 convs (394,240 params, +10.8 % over 4.10 M), or no CNN.
    cnn: Literal["depthwise", "full", "none"] = "depthwise"
    shared: bool = True  # one set of side-tuner weights for all K levels (Tab 4.17)
    # what shared=False gives each level its own copy of: the whole SDST layer (modality maps F_v/F_t + dense and
    # sparse streams; Tab 4.17's "independent SD side-tuners"), the two streams only (maps shared), or the
    # maps only (streams shared). Gates β^ℓ are per level and the heads / queries shared in every case.
    unshared_modules: Literal["layer", "streams", "maps"] = "layer"
    # initial sparse queries (Tab 4.12, DINO [145] query selection): static = learned references + latents;
    # pure = references and latents from the top-M first-level dense tokens; mixed = references from them,
    # latents learned (static)
    query_init: Literal["static", "pure", "mixed"] = "static"
    # the sparse stream's sub-blocks in order (Tab 4.15 removes one, Tab 4.18 permutes): "-"-joined subset of
    # ca (text cross-attention), sa (self-attention), def (the video attention: RDSA / Def. CA / Stand. CA), ffn
    sparse_order: str = "ca-sa-def-ffn"
    # the video signal the sparse stream's video attention reads (Tab 4.16): raw = the level's mapped video V,
    # ca / ca_sa = the dense stream after its CA / CA + SA, ffn = the full dense update D (the thesis' choice)
    sparse_condition: Literal["raw", "ca", "ca_sa", "ffn"] = "ffn"
    deform_points: int = 4  # sampled keys per head
    rdsa_latent: int = 64
    roi_size: int = 16
    roi_expand: float = 1.5
    text_drop_first_token: bool = True  # the text CA does not see the CLS token (thesis §4.3.3.2)
    aux_loss: bool = True  # MR losses at every level (deep supervision), else the last level only
    standardize_inputs: bool = False  # z-score each feature dim with training-split statistics (model buffers)
    # loss weights (Tab 4.22 "chosen")
    w_l1: float = 1.0
    w_iou: float = 1.0
    w_cls: float = 1.0
    w_act: float = 1.0
    act_loss: Literal["bce", "l1"] = "bce"  # actionness regression of the max IoU (see models.sdst docstring)
    w_sal: float = 0.1
    w_align_video: float = 0.1
    w_align_layer: float = 0.1
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    temperature: float = 0.07  # SampledNCE / InfoNCE
    # Hungarian matching costs (Deformable-DETR / TadTR convention)
    cost_class: float = 2.0
    cost_l1: float = 5.0
    cost_iou: float = 2.0

    def __post_init__(self):
        blocks = self.sparse_order.split("-")
        if not blocks or len(set(blocks)) != len(blocks) or not set(blocks) <= set(SPARSE_BLOCKS):
            raise ValueError(f"sdst.model.sparse_order: expected distinct blocks of {'/'.join(SPARSE_BLOCKS)} "
                             f"joined by '-', got {self.sparse_order!r}")


SPARSE_BLOCKS = ("ca", "sa", "def", "ffn")  # the sparse stream's sub-blocks (sdst.model.sparse_order)


@dataclasses.dataclass(frozen=True)
class SDSTConfig:
    """Everything :class:`models.sdst.SDST` needs. ``video_layers[i]`` / ``text_layers[i]`` are the 1-based
    backbone layer ids fed to refinement level ``i + 1`` (repeated ids = last-layer-only refinement)."""

    video_dim: int
    text_dim: int
    num_queries: int
    video_layers: list[int]
    text_layers: list[int]
    model: SDSTModelConfig = dataclasses.field(default_factory=SDSTModelConfig)

    @property
    def num_levels(self) -> int:
        return len(self.video_layers)
