"""``search_vmr`` params block: benchmarks, variants, data, training and inference of the search DETR."""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

from models.search_detr_config import SearchDETRConfig
from pipeline.core.params import TrainConfig


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
    active_threshold: float  # a decoder query is "active" when its foreground probability ≥ this
