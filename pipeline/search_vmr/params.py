"""``search_vmr`` params block: benchmarks, variants, data, training and inference of the search DETR."""
from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

from models.search_detr_config import SearchDETRConfig
from pipeline.core.params import Fraction, NonNegInt, PositiveInt, TrainConfig


@dataclasses.dataclass(frozen=True)
class SearchVMRVariant:
    """One entry of ``search_vmr.variant_specs``: a label for tables, what to train on, model overrides.

    ``train_queries: search`` is the oracle (one model per search level, trained on that level's train split).
    A null override keeps the ``search_vmr.model`` value.
    """

    label: str
    train_queries: Literal["caption", "search"] = "caption"
    self_attention: bool | None = None
    qd_rate: float | None = None
    num_queries: int | None = None
    architecture: Literal["hybrid", "cgdetr"] | None = None  # base model (search_vmr.model.architecture)
    anchor_init: Literal["random", "uniform"] | None = None
    # thesis Tab 3.5 / 3.6 (matchers, models/search_matchers.py) and Tab 3.9 (calibration) switches
    matcher: Literal["one_to_one", "one_to_k", "group", "hybrid", "mixed"] | None = None
    match_k: NonNegInt | None = None
    match_groups: PositiveInt | None = None
    actionness: bool | None = None
    label_loss: Literal["ce", "focal"] | None = None
    # Tab 3.5 data augmentation: probability that a training GT window is copied to a free place of its video
    # (pipeline.search_vmr.data.replicate_moments); training only, null = 0
    augment: Fraction | None = None


@dataclasses.dataclass(frozen=True)
class SearchVMRBenchmark:
    """One entry of ``search_vmr.benchmark_specs``, keyed by the caption dataset's canonical name.

    Reads ``data/canonical/<dataset>.jsonl``, ``data/features/<dataset>/<backbone>/<split>``,
    ``data/features/text/<dataset>/<split>`` (captions), ``data/features/text_search/<dataset>/<level>/<split>`` and ``data/benchmarks/<dataset>/<level>/``.
    """

    backbone: str
    levels: list[str]
    train_split: str
    eval_split: str
    iou_thresholds: list[float]


@dataclasses.dataclass(frozen=True)
class SearchVMRData:
    """``search_vmr.data``: how features become model inputs (``layer`` indexes the stored layers, -1 = last)."""

    video_layer: int
    text_layer: int
    max_video_len: int  # longer videos are average-pooled down to this many rows
    max_text_len: int  # longer token sequences are truncated
    normalize: bool  # L2-normalise every feature row (Moment-DETR does)
    use_tef: bool  # append (start, end)/duration of each row to the video features


@dataclasses.dataclass(frozen=True)
class SearchVMRInference:
    """``search_vmr.inference``: prediction post-processing (changing it reruns predict, not train)."""

    batch_size: int
    nms_threshold: float | None  # true temporal IoU; null = no NMS
    max_windows: int  # windows kept per query after NMS
    # which models get NMS: no_sa = only decoders without self-attention (thesis §3.4.2.2 introduces NMS as part
    # of -SA, Eq. 3.18; CG-DETR's own default is no NMS), all = every variant, none = no variant
    nms_policy: Literal["no_sa", "all", "none"] = "no_sa"

    def nms_for(self, self_attention: bool) -> float | None:
        """The NMS IoU threshold a model with/without decoder self-attention gets (None = no NMS)."""
        if self.nms_policy == "none" or (self.nms_policy == "no_sa" and self_attention):
            return None
        return self.nms_threshold


@dataclasses.dataclass(frozen=True)
class SearchVMRConfig:
    """``search_vmr``: search-query VMR (thesis Ch. 3). ``benchmarks`` × ``variants`` is the DVC matrix; every
    run trains, predicts and evaluates one model per entry of ``seeds`` (metrics: mean, ``*_std``, per seed)."""

    BLOCK: ClassVar[str] = "search_vmr"

    benchmarks: list[str]
    variants: list[str]
    seeds: list[int]
    benchmark_specs: dict[str, SearchVMRBenchmark]
    variant_specs: dict[str, SearchVMRVariant]
    data: SearchVMRData
    model: SearchDETRConfig
    train: TrainConfig
    inference: SearchVMRInference
    active_threshold: float  # see active_rule
    # relative: a decoder query is active when its foreground probability ≥ active_threshold × the query's top
    # one; absolute: when it is ≥ active_threshold (pipeline/search_vmr/active.py says why relative)
    active_rule: Literal["relative", "absolute"] = "relative"
