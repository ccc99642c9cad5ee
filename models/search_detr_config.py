"""Config of the search DETR retriever (``search_vmr.model`` in params; torch-free, also its checkpoint config)."""
from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class SearchDETRConfig:
    """``search_vmr.model``: the DETR retriever of ``models/search_detr.py`` (also its checkpoint config).

    Costs/losses follow Moment-DETR (span 10, GIoU 1, class/label 4, background weight ``eos_coef`` 0.1).
    ``self_attention: false`` is the -SA variant; ``qd_rate > 0`` the +QD variant (``qd_mode``: ``zero`` =
    thesis Eq. 3.19, ``zero_unmatched`` = dropped slots also leave the Hungarian matching). The last four
    fields are not params of this block: ``nms_threshold``/``max_windows`` come from ``search_vmr.inference``
    at predict time, ``video_dim``/``text_dim`` from the feature containers at train time.
    """

    hidden_dim: int
    num_heads: int
    enc_layers: int
    dec_layers: int
    ffn_dim: int
    dropout: float
    input_dropout: float
    num_queries: int
    query_type: Literal["embed", "anchor"]  # Moment-DETR embeddings | CG-DETR/DAB (c, w) anchors
    self_attention: bool
    qd_rate: float
    qd_mode: Literal["zero", "zero_unmatched"]
    aux_loss: bool
    cost_span: float
    cost_giou: float
    cost_class: float
    loss_span: float
    loss_giou: float
    loss_label: float
    loss_saliency: float
    eos_coef: float
    saliency_margin: float
    saliency_pairs: int
    # CG-DETR's default anchor init is "random": nn.Embedding's N(0, 1) in logit space, i.e. centres and widths
    # spread around 0.5 (its public code never re-initialises query_embed); "uniform" = centres evenly spread,
    # width ``uniform_width`` (the earlier default of this project). Defaults here keep old checkpoints loadable.
    anchor_init: Literal["random", "uniform"] = "uniform"
    uniform_width: float = 0.1
    # "hybrid" = models/search_detr.py (Moment-DETR joint encoder + DAB/CG anchor decoder); "cgdetr" =
    # models/search_cgdetr.py (CG-DETR's adaptive cross-attention with dummy tokens and clip-word correlation)
    architecture: Literal["hybrid", "cgdetr"] = "hybrid"
    num_dummies: int = 45
    dummy_layers: int = 2
    sent_layers: int = 1
    moment_layers: int = 1
    t2v_layers: int = 2
    total_prompts: int = 10
    loss_wattn: float = 1.0
    loss_ms_align: float = 1.0
    loss_distill: float = 1.0
    # thesis Tab 3.5 / 3.6: the query–moment assignment of the set loss (models/search_matchers.py says what each
    # is); match_k: queries per moment (one_to_k, mixed) or moment copies (hybrid), 0 = all; o2m_weight: weight
    # of the one-to-many loss of hybrid / mixed
    matcher: Literal["one_to_one", "one_to_k", "group", "hybrid", "mixed"] = "one_to_one"
    match_k: int = 5
    match_groups: int = 2
    o2m_weight: float = 1.0
    # thesis Tab 3.9 calibration: +actionness (TadTR: an IoU-regression head, score = p_fg × actionness) and
    # +SFL (focal label loss, [186])
    actionness: bool = False
    loss_actionness: float = 1.0
    label_loss: Literal["ce", "focal"] = "ce"
    focal_gamma: float = 2.0
    nms_threshold: float | None = 0.7
    max_windows: int = 10
    video_dim: int = 0
    text_dim: int = 0
