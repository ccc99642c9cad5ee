"""Config of the search DETR retriever (``search_vmr.model`` in params; torch-free, also its checkpoint config)."""
from __future__ import annotations

import dataclasses
from typing import Any, Literal


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
    nms_threshold: float | None = 0.7
    max_windows: int = 10
    video_dim: int = 0
    text_dim: int = 0
