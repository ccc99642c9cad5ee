"""``sada`` params block: scenarios, variants, data, evaluation (model configs: ``models/sada/config.py``)."""
from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar, Literal

from models.sada.config import SadaInferenceConfig, SadaModelConfig, SadaWeights
from pipeline.core.params import NonNegInt, PositiveInt, Range, TrainConfig


@dataclasses.dataclass(frozen=True)
class SadaScenario:
    """``sada.scenario_specs.<name>``: how SADA runs scenario ``datasets.scenarios.<name>`` (whose selectors
    say which videos are source and target). Classes: ``classes`` when given, else the ``num_classes`` most
    frequent labels of the source training videos. Training uses the labelled source and the unlabelled target
    videos of ``train_split``; evaluation is on the target videos of ``eval_split``."""

    num_classes: int
    weights: SadaWeights
    classes: list[str] | None = None
    train_split: str = "train"
    eval_split: str = "val"


@dataclasses.dataclass(frozen=True)
class SadaVariant:
    """One ``sada.variant_specs`` entry: a label for tables and the alignment terms it trains with
    (subset of ``local`` Eq. 2.7, ``global`` = DANN, ``bkg`` Eq. 2.8; empty = source-only; Tab. 2.6's
    baselines: ``centroid`` = MSTN's semantic centroid loss, ``wasserstein`` = WDGRL's critic). ``class_embed``
    (Tab. 2.10) and ``detector`` (Tab. 2.4), when set, override those keys of ``sada.model`` for this variant."""

    label: str
    align: list[Literal["local", "global", "bkg", "centroid", "wasserstein"]]
    class_embed: Literal["learnable", "onehot", "random", "sinusoidal"] | None = None
    detector: Literal["tridet", "actionformer"] | None = None

    def model_config(self, model: SadaModelConfig) -> SadaModelConfig:
        """``sada.model`` with this variant's overrides applied."""
        overrides = {k: v for k, v in (("class_embed", self.class_embed), ("detector", self.detector))
                     if v is not None}
        return dataclasses.replace(model, **overrides) if overrides else model


@dataclasses.dataclass(frozen=True)
class SadaData:
    """``sada.data``: training crops and feature layer. Videos longer than ``max_seq_len`` rows are randomly
    cropped to it; shorter ones are cropped to a random fraction in ``crop_ratio``; a crop keeps a GT only if
    ≥ ``trunc_thresh`` of it stays inside. ``layer`` indexes the stored backbone layers (-1 = last)."""

    max_seq_len: int
    crop_ratio: tuple[float, float]
    trunc_thresh: float
    layer: int


@dataclasses.dataclass(frozen=True)
class SadaEarlyStop:
    """``sada.early_stop`` (thesis §2.5.2): ``heldout_fraction`` of the SOURCE training videos (never target
    labels) leave training and score the EMA model after every epoch by ``metric`` (``loss``: task loss per
    positive anchor; ``map``: their Avg mAP, decoded with the EPIC test settings); training stops after
    ``patience`` epochs without a better score and keeps the best epoch's weights. 0 = off."""

    heldout_fraction: Annotated[float, Range(low=0, high=1, high_open=True)] = 0.0
    patience: PositiveInt = 5
    metric: Literal["loss", "map"] = "loss"


@dataclasses.dataclass(frozen=True)
class SadaEval:
    """``sada.eval``: the t-SNE of anchor embeddings (Fig. 2.11) for the variants in ``tsne_variants``:
    pyramid ``tsne_level``, the ``tsne_classes`` most frequent classes + background, at most ``tsne_points``
    anchors per (class, domain). mAP is always at tIoU 0.1:0.1:0.5 (the evaluator's exact thresholds).
    ``mask_bkg`` also scores the target with the background anchors masked at inference (Tab. 2.8, an oracle
    analysis that reads the target GT; metrics key ``target_bkg_masked``)."""

    tsne_variants: list[str]
    tsne_level: int
    tsne_classes: int
    tsne_points: int
    mask_bkg: bool = False


@dataclasses.dataclass(frozen=True)
class SadaConfig:
    """``sada``: SADA (thesis Ch. 2). ``scenarios`` × ``variants`` is the DVC matrix; every run trains one
    model per entry of ``seeds``. ``train.batch_size`` counts (source, target) video pairs. A scenario name
    refers to both ``datasets.scenarios.<name>`` (source/target selectors, shared with ``dataset_stats``) and
    ``sada.scenario_specs.<name>`` (classes, splits, Tab. 2.3 weights). ``dataset``/``backbone`` name the
    canonical file and features of the run scenarios: each must be defined on ``dataset`` (DVC paths cannot
    look inside a scenario). ``warmup_epochs`` (when set) replaces ``train.warmup_iters`` by that many epochs'
    iterations; ``early_stop``: :class:`SadaEarlyStop`."""

    BLOCK: ClassVar[str] = "sada"

    dataset: str
    backbone: str
    scenarios: list[str]
    variants: list[str]
    seeds: list[int]
    scenario_specs: dict[str, SadaScenario]
    variant_specs: dict[str, SadaVariant]
    data: SadaData
    model: SadaModelConfig
    inference: SadaInferenceConfig
    train: TrainConfig
    eval: SadaEval
    early_stop: SadaEarlyStop = SadaEarlyStop()
    # the thesis warms up for 5 EPOCHS; TrainConfig counts iterations, and iterations per epoch come from the data
    warmup_epochs: NonNegInt | None = None
