"""``features`` params block: backbones, clip recipes, text towers, pretraining and probes."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pipeline.core.params import (
    ConfigError,
    Fraction,
    NonNegFloat,
    NonNegInt,
    PositiveFloat,
    PositiveInt,
    Range,
)


VIDEO_BACKBONES = ("slowfast", "i3d", "internvideo2", "clip")


@dataclasses.dataclass(frozen=True)
class ClipRecipe:
    """How a backbone samples a video (``pipeline.features.decode``): a grid at ``fps`` (point k at (k+0.5)/fps),
    windows of ``frames`` grid points every ``stride`` points, frames scaled to ``size``² (``squash``) or short
    side → ``size`` then centre crop (``crop``). Feature row r covers [r·stride/fps, r·stride/fps + frames/fps]."""

    fps: PositiveFloat
    frames: PositiveInt
    stride: PositiveInt
    size: Annotated[int, Range(low=8)]
    resize: Literal["squash", "crop"] = "squash"
    interpolation: Literal["bilinear", "bicubic", "area", "fast_bilinear"] = "bilinear"

    def __post_init__(self):
        if self.fps <= 0 or self.frames < 1 or self.stride < 1 or self.size < 8:
            raise ConfigError(f"recipe: need fps > 0, frames ≥ 1, stride ≥ 1, size ≥ 8; got {self}")


@dataclasses.dataclass(frozen=True)
class RecipeOverride:
    """``features.<backbone>.recipe_by_dataset.<dataset>``: the timing of one dataset's clips, merged over the
    backbone's ``recipe`` (unset keys keep it). Timing only: ``size``/``resize``/``interpolation`` are the
    checkpoint's input format, the same for every dataset. ``frames`` also sizes the built backbone
    (InternVideo2's temporal position embeddings), so change it only where the checkpoint allows."""

    fps: PositiveFloat | None = None
    frames: PositiveInt | None = None
    stride: PositiveInt | None = None

    def apply(self, recipe: ClipRecipe) -> ClipRecipe:
        """``recipe`` with the keys set here replaced (validated like any recipe)."""
        changes = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        return dataclasses.replace(recipe, **changes)


RecipeTable = dict[str, RecipeOverride]  # dataset → override; every key must be a dataset the backbone extracts


def _no_overrides() -> RecipeTable:
    return {}


@dataclasses.dataclass(frozen=True)
class SlowFastFeatures:
    """``features.slowfast``: pytorchvideo SlowFast-R50 (width 64, beta 8, alpha 4 = the hub model)."""

    recipe: ClipRecipe
    checkpoint: str | None = None  # local .pyth (state dict under model_state); None = random init
    width: PositiveInt = 64  # stem width of the slow pathway; feature dim = 32·width + 32·width/beta
    beta: PositiveInt = 8  # slow/fast channel ratio
    alpha: PositiveInt = 4  # slow/fast frame-rate ratio
    recipe_by_dataset: RecipeTable = dataclasses.field(default_factory=_no_overrides)  # see RecipeOverride


@dataclasses.dataclass(frozen=True)
class I3DFeatures:
    """``features.i3d``: pytorchvideo I3D-R50 (width 64 = the hub model; feature dim 32·width)."""

    recipe: ClipRecipe
    checkpoint: str | None = None
    width: PositiveInt = 64
    recipe_by_dataset: RecipeTable = dataclasses.field(default_factory=_no_overrides)


@dataclasses.dataclass(frozen=True)
class InternVideo2Arch:
    """Vision-tower dimensions (image size and frames come from the recipe). Official 1B: see IV2_1B."""

    patch_size: PositiveInt
    embed_dim: PositiveInt
    depth: PositiveInt
    num_heads: PositiveInt
    mlp_ratio: PositiveFloat
    clip_embed_dim: PositiveInt
    clip_teacher_embed_dim: PositiveInt
    clip_teacher_final_dim: PositiveInt
    clip_return_layer: NonNegInt  # distillation decoders of the pretraining heads (0 = none)
    attn_pool_num_heads: PositiveInt
    init_values: PositiveFloat  # LayerScale init; 0 would switch every residual branch off


@dataclasses.dataclass(frozen=True)
class InternVideo2Features:
    """``features.internvideo2``: 1-based ``layers`` to keep, each pooled by ``pooling`` (thesis Tab 4.10)."""

    recipe: ClipRecipe
    layers: list[PositiveInt]
    pooling: Literal["adaptive", "cls", "avg"]
    arch: InternVideo2Arch
    checkpoint: str | None = None  # local stage-2 .pt (vision_encoder.* is loaded); None = random init
    recipe_by_dataset: RecipeTable = dataclasses.field(default_factory=_no_overrides)  # thesis: 0.5/1/3 fps rows

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
    layers: list[PositiveInt]  # 1-based
    pooling: Literal["cls", "avg", "embed"] = "cls"
    recipe_by_dataset: RecipeTable = dataclasses.field(default_factory=_no_overrides)


@dataclasses.dataclass(frozen=True)
class BertArch:
    """Text-tower BERT dimensions (InternVideo2 stage 2 = BERT-large with fusion_layer 19)."""

    vocab_size: PositiveInt
    hidden_size: PositiveInt
    num_layers: PositiveInt
    num_heads: PositiveInt
    intermediate_size: PositiveInt
    max_position: PositiveInt
    type_vocab_size: PositiveInt
    fusion_layer: NonNegInt
    encoder_width: PositiveInt


@dataclasses.dataclass(frozen=True)
class TextFeatures:
    """``features.text``: per-token states of ``layers`` (1-based) of the ``tower`` for every query."""

    tower: Literal["minilm", "internvideo2", "clip"]
    layers: list[PositiveInt]  # 1-based
    max_tokens: PositiveInt
    batch_size: PositiveInt
    bert: BertArch  # dims of the internvideo2 tower (random init unless features.internvideo2.checkpoint)
    vocab: str | None = None  # WordPiece vocab.txt for internvideo2; None = the MiniLM (bert-uncased) vocab


@dataclasses.dataclass(frozen=True)
class DecodeConfig:
    """``features.decode``: how videos are read and what happens to bad ones."""

    on_error: Literal["skip", "fail"]  # corrupt/truncated/too-short videos: list in metrics and go on, or stop
    max_missing: NonNegFloat  # seconds a video may end before the last needed frame (reuses its last frame)
    seek_gap: NonNegFloat  # seek instead of decoding through gaps longer than this (seconds)
    threads: NonNegInt  # codec threads per decoder (0 = single-threaded)
    # under on_error: skip, the share of a split's videos that may be skipped before extraction fails (a split
    # that loses every video always fails): a wrong data root or a broken download stops here, not in training
    max_skipped_share: Fraction = 0.05


@dataclasses.dataclass(frozen=True)
class ProbesConfig:
    """``features.probes``: linear probes of the extracted features (``pipeline/features/probes.py``). Probes
    are fitted on ``train_split`` videos and scored on ``eval_split`` videos; both arms (the extracted
    features and the same backbone at random init) use the same ``max_videos`` videos per split (evenly
    spaced over the sorted ids; 0 = all). ``C``: inverse L2 strength of the logistic regressions;
    ``ridge_alpha``: L2 strength of the text → video ridge map (retrieval)."""

    max_videos: NonNegInt = 8
    C: PositiveFloat = 1.0
    ridge_alpha: NonNegFloat = 1.0
    max_iter: PositiveInt = 500
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
    videos: PositiveInt
    heldout_videos: PositiveInt
    clips_per_video: PositiveInt
    steps: PositiveInt
    batch_size: Annotated[int, Range(low=2)]  # contrastive and balanced batches need two clips
    lr: PositiveFloat
    weight_decay: NonNegFloat
    idle_fraction: Annotated[float, Range(low=0, high=1, high_open=True)]
    checkpoint_every: PositiveInt
    warmup_steps: NonNegInt = 0
    log_every: PositiveInt = 10
    dropout: Annotated[float, Range(low=0, high=1, high_open=True)] = 0.0
    heads: list[Literal["verb", "shape", "color", "size"]] = dataclasses.field(
        default_factory=lambda: ["verb", "shape", "color", "size"])
    proj_dim: PositiveInt = 128
    temp: Annotated[float, Range(low=0, high=1, low_open=True, high_open=True)] = 0.07

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
    """``features.pretrain``: embedded backbone pretraining (``pipeline/features/pretrain.py``, DESIGN §4a).

    ``backbones`` lists the video backbones the pipeline pretrains (one DVC stage each; real mode: ``[]`` and
    real checkpoint paths). The corpus seed is ``runtime.seed + seed_offset``."""

    backbones: list[str]
    seed_offset: NonNegInt
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

    BLOCK: ClassVar[str] = "features"

    datasets: dict[str, list[str]]  # backbone → canonical datasets to extract with it
    num_shards: PositiveInt
    shards: list[int]  # = range(num_shards); the DVC matrix runs one extract stage per shard
    batch_size: PositiveInt  # clips per forward pass (each video is cut into batches of its own clips)
    decode: DecodeConfig
    slowfast: SlowFastFeatures
    i3d: I3DFeatures
    internvideo2: InternVideo2Features
    clip: ClipFeatures
    text: TextFeatures
    caption_sets: list[str]  # canonical datasets whose caption queries get text features (text/<dataset>);
    # search benchmarks get theirs for every querygen.datasets × querygen.levels (text_search/<dataset>/<level>)
    pretrain: PretrainConfig = dataclasses.field(  # none by default: configs built in code stay random-init
        default_factory=lambda: PretrainConfig(backbones=[], seed_offset=0))
    probes: ProbesConfig = dataclasses.field(default_factory=ProbesConfig)  # probe_features stages only

    def __post_init__(self):
        if self.num_shards < 1 or list(self.shards) != list(range(self.num_shards)):
            raise ConfigError(f"features.shards must be [0 .. num_shards-1] = {list(range(self.num_shards))}, "
                              f"got {self.shards}")
        unknown = sorted(set(self.datasets) - set(VIDEO_BACKBONES))
        if unknown:
            raise ConfigError(f"features.datasets: unknown backbone(s) {unknown}")
        for name in VIDEO_BACKBONES:  # an override for a dataset the backbone never extracts is a typo
            listed = self.datasets.get(name, [])
            for dataset in getattr(self, name).recipe_by_dataset:
                if dataset not in listed:
                    raise ConfigError(f"features.{name}.recipe_by_dataset.{dataset}: unknown dataset (not in "
                                      f"features.datasets.{name}: {listed})")

    def backbone(self, name: str) -> Any:
        """The config block of video backbone ``name``."""
        if name not in VIDEO_BACKBONES:
            raise ConfigError(f"unknown video backbone {name!r} (slowfast | i3d | internvideo2 | clip)")
        return getattr(self, name)

    def recipe(self, name: str, dataset: str) -> ClipRecipe:
        """The clip recipe backbone ``name`` uses on ``dataset``: its ``recipe`` with the dataset's
        ``recipe_by_dataset`` entry merged over it (the recipe itself when there is none)."""
        cfg = self.backbone(name)
        override = cfg.recipe_by_dataset.get(dataset)
        return override.apply(cfg.recipe) if override is not None else cfg.recipe

    def for_dataset(self, name: str, dataset: str) -> "FeaturesConfig":
        """``self`` with backbone ``name``'s block resolved for ``dataset``: ``recipe`` = ``self.recipe(name,
        dataset)`` and no per-dataset table left, so everything downstream (the built model, container meta,
        the resumable-work fingerprint) reads one recipe and no other dataset's override touches it."""
        cfg = dataclasses.replace(self.backbone(name), recipe=self.recipe(name, dataset), recipe_by_dataset={})
        return dataclasses.replace(self, **{name: cfg})

    def checkpoint_key(self, name: str) -> tuple[str, str | None]:
        """(dotted params key, value) of backbone ``name``'s weights file (CLIP keeps it under ``model``)."""
        cfg = self.backbone(name)
        if name == "clip":
            return "features.clip.model.checkpoint", cfg.model.checkpoint
        return f"features.{name}.checkpoint", cfg.checkpoint

    def text_files(self) -> list[tuple[str, str | None]]:
        """(dotted key, value) of every file the configured text tower loads."""
        files = [("features.text.vocab", self.text.vocab)]
        if self.text.tower == "internvideo2":
            files.append(self.checkpoint_key("internvideo2"))
        elif self.text.tower == "clip":
            files.append(self.checkpoint_key("clip"))
        return files


def require_files(settings: list[tuple[str, str | None]], where: str = "params.yaml") -> None:
    """Every set path of ``settings`` ((dotted key, path) pairs) must be an existing file: checked before any
    work, so a typo or a pretraining that never ran is one line naming the key, not a traceback mid-stage.
    ``where`` (the params file) prefixes the message; "" leaves it out."""
    for key, path in settings:
        if path is not None and not Path(path).is_file():
            state = "is a directory, not a file" if Path(path).is_dir() else "does not exist"
            raise ConfigError(f"{where + ': ' if where else ''}{key}: checkpoint file {path} {state}")
