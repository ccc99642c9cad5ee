"""``sdst`` params block: datasets, variants, evaluation and efficiency runs (model config: ``models/sdst_config.py``)."""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

from pipeline.core.params import ConfigError, Fraction, NonNegFloat, NonNegInt, PositiveFloat, PositiveInt, TrainConfig
from models.sdst_config import SDSTModelConfig


@dataclasses.dataclass(frozen=True)
class SDSTDatasetSpec:
    """One ``sdst.dataset_specs`` entry (Tab 4.1 per dataset); ``train`` / ``model`` override fields of
    ``sdst.train`` / ``sdst.model`` for this dataset.

    Reads ``data/canonical/<name>.jsonl``, ``data/features/<name>/<sdst.video_features>/<split>`` and
    ``data/features/text/<name>/<split>``. ``clip_len``: seconds per saliency clip (QVHighlights 2 s).
    ``min_len``: videos shorter than this many feature rows are padded (masked) up to it.
    """

    train_split: str
    eval_split: str
    num_queries: PositiveInt
    clip_len: PositiveFloat = 2.0
    min_len: PositiveInt = 5
    train: dict[str, Any] = dataclasses.field(default_factory=dict)  # overrides of sdst.train fields
    model: dict[str, Any] = dataclasses.field(default_factory=dict)  # overrides of sdst.model (e.g. a smaller


@dataclasses.dataclass(frozen=True)
class SDSTVariant:
    """One ``sdst.variant_specs`` entry. ``K`` null = ``sdst.K`` (and ``sdst.layers``; a variant with its own
    ``K`` takes the last K stored layers); ``last_layer_only`` feeds the deepest selected
    layer to every level (Fig 4.4 blue; ``K: 1`` + it = the ``w/o tuning`` baseline); ``model`` overrides
    fields of ``sdst.model`` (e.g. ``{attention: deformable_ca}``, ``{shared: false}``, ``{sparse_order: ca-sa-ffn}``;
    ``{architecture: r2tuning}`` trains the R2-Tuning baseline instead of SDST)."""

    label: str
    K: PositiveInt | None = None
    last_layer_only: bool = False
    model: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class SDSTEvalConfig:
    """``sdst.eval`` (read only by the evaluate stage): post-processing of the raw predictions."""

    nms: Literal["soft", "hard", "none"] = "soft"
    soft_nms_sigma: PositiveFloat = 0.4
    nms_threshold: Fraction = 0.7  # for nms: hard
    min_score: NonNegFloat = 0.0001
    max_windows: PositiveInt = 10  # windows kept per query after NMS (QVHighlights scores the top 10)


@dataclasses.dataclass(frozen=True)
class SDSTEfficiencyConfig:
    """``sdst.efficiency``: Tab 4.19 at real dims on random inputs (trainable params, peak memory, it/s)."""

    variants: list[str] = dataclasses.field(default_factory=lambda: ["sdst"])  # foreach axis; specs without K
    fixed_k_variants: list[str] = dataclasses.field(default_factory=lambda: ["wo_tuning"])  # specs that set K
    batch_size: PositiveInt = 32
    iterations: PositiveInt = 10
    warmup: NonNegInt = 2
    video_len: PositiveInt = 75  # rows (QVHighlights: 150 s at 0.5 fps)
    text_len: PositiveInt = 32
    video_dim: PositiveInt = 768
    text_dim: PositiveInt = 1024
    num_queries: PositiveInt = 30


@dataclasses.dataclass(frozen=True)
class SDSTParams:
    """``sdst``: the SDST side-tuner (thesis Ch. 4). ``datasets`` × ``variants`` is the DVC matrix.

    ``K`` selects the last K layers stored by extraction; ``layers`` (1-based ids, non-empty) picks them
    explicitly instead (Tab 4.11). ``video_features`` is the container directory under
    ``data/features/<dataset>/`` (pooling variants of Tab 4.10 are separate containers).
    """

    BLOCK: ClassVar[str] = "sdst"

    datasets: list[str]
    variants: list[str]  # variants that follow sdst.K / sdst.layers (spec K null)
    fixed_k_variants: list[str]  # variants whose spec sets K; their stages never read sdst.K / sdst.layers
    seeds: list[int]  # one model per seed in every sdst_train stage (metrics: mean ± std over them)
    K: PositiveInt
    layers: list[PositiveInt]  # 1-based backbone layer ids
    order: Literal["shallow_to_deep", "deep_to_shallow"]
    video_features: str
    dataset_specs: dict[str, SDSTDatasetSpec]
    variant_specs: dict[str, SDSTVariant]
    model: SDSTModelConfig
    train: TrainConfig
    eval: SDSTEvalConfig
    efficiency: SDSTEfficiencyConfig
    predict_batch_size: PositiveInt = 32

    def __post_init__(self):
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"sdst.seeds: expected a non-empty list of distinct seeds, got {self.seeds}")
        # A variant's K silently replacing sdst.K would make `-S sdst.K=...` lie about what ran, and a stage that
        # does not list sdst.K must never read it: so which list a variant is in must agree with its spec.
        for where, global_k, fixed_k in (("sdst", self.variants, self.fixed_k_variants),
                                          ("sdst.efficiency", self.efficiency.variants,
                                           self.efficiency.fixed_k_variants)):
            both = sorted(set(global_k) & set(fixed_k))
            if both:
                raise ConfigError(f"{where}.variants and {where}.fixed_k_variants both list {both}")
            for name in global_k:
                if name in self.variant_specs and self.variant_specs[name].K is not None:
                    raise ConfigError(f"{where}.variants: {name!r} sets its own K "
                                      f"(sdst.variant_specs.{name}.K: {self.variant_specs[name].K}); "
                                      f"list it under {where}.fixed_k_variants")
            for name in fixed_k:
                if name in self.variant_specs and self.variant_specs[name].K is None:
                    raise ConfigError(f"{where}.fixed_k_variants: {name!r} has no K in sdst.variant_specs.{name} "
                                      f"(it would follow sdst.K); list it under {where}.variants")
