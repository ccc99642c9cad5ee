"""SADA data: scenario resolution (which videos are source/target, which classes), feature loading with GT in
feature-grid units, source/target paired training items, random crops and collation into model batches.

Domains are data, not code: a scenario's selectors (``datasets.scenarios.<name>``, matched by
``pipeline.datasets.scenarios``) pick records by field values (``domain``, ``participant``, ``extra.<key>``),
so the same code serves the synthetic world, EPIC S1–S6 and CharadesEgo. Grid ↔ seconds uses the feature container's ``time_step`` and ``window`` (a row sits at the
centre of the window it covers): ``grid = (seconds - window / 2) / time_step``.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.core.params import ConfigError
from pipeline.datasets.params import DatasetScenario
from pipeline.sada.params import SadaConfig, SadaScenario
from pipeline.datasets.scenarios import matches
from pipeline.datasets.schema import VideoRecord, read_records
from pipeline.core.io import InputError
from pipeline.features.container import FeatureContainer, container_paths

SOURCE, TARGET = 0, 1
BKG_MASKED = "bkgmasked"  # file infix of the Tab. 2.8 predictions: target_bkgmasked_seed<k>.jsonl


# ----------------------------------------------------------------------------- scenario resolution

def select(records: Sequence[VideoRecord], selector: Mapping[str, Sequence[str]], split: str) -> list[VideoRecord]:
    """Records of ``split`` that match ``selector``, sorted by video id (deterministic order)."""
    return sorted((r for r in records if r.split == split and matches(r, selector)), key=lambda r: r.video_id)


def class_names_for(spec: SadaScenario, source_train: Sequence[VideoRecord]) -> list[str]:
    """The scenario's classes: explicit ``classes``, else the ``num_classes`` most frequent source labels
    (ties broken by name, so the order is deterministic); index = class id."""
    if spec.classes:
        return list(spec.classes)
    counts = Counter(m.label for r in source_train for m in r.moments if m.label is not None)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [name for name, _ in ranked[: spec.num_classes]]


def check_config(cfg: SadaConfig, scenarios: Mapping[str, DatasetScenario]) -> None:
    """Cross-field checks the dataclass types cannot express; errors name the dotted key.

    ``scenarios`` is ``datasets.scenarios`` (the selectors every SADA scenario name refers to).
    """
    for name in cfg.scenarios:
        if name not in cfg.scenario_specs:
            raise ConfigError(f"sada.scenarios: {name!r} has no entry in sada.scenario_specs")
        check_scenario_dataset(name, scenarios.get(name), cfg.dataset)
    for name in cfg.variants:
        if name not in cfg.variant_specs:
            raise ConfigError(f"sada.variants: {name!r} has no entry in sada.variant_specs")
    levels = cfg.model.arch[2] + 1
    if len(cfg.model.regression_ranges) != levels:
        raise ConfigError(f"sada.model.regression_ranges: need {levels} ranges for arch {cfg.model.arch}")
    for name, spec in cfg.scenario_specs.items():
        if len(spec.weights.lambda_levels) != levels:
            raise ConfigError(f"sada.scenario_specs.{name}.weights.lambda_levels: need {levels} values")


def check_scenario_dataset(name: str, selectors: DatasetScenario | None, dataset: str) -> DatasetScenario:
    """The selectors of scenario ``name``; it must exist in ``datasets.scenarios`` and be defined on ``dataset``."""
    if selectors is None:
        raise ConfigError(f"sada.scenarios: {name!r} has no entry in datasets.scenarios (its source/target selectors)")
    if selectors.dataset != dataset:
        raise ConfigError(
            f"datasets.scenarios.{name} is defined on {selectors.dataset!r} but sada.dataset is {dataset!r}: "
            f"set sada.dataset (and sada.backbone) to run it"
        )
    return selectors


@dataclass
class Scenario:
    """A resolved scenario: its records per role and its class list."""

    name: str
    spec: SadaScenario
    class_names: list[str]
    source_train: list[VideoRecord]
    target_train: list[VideoRecord]
    source_eval: list[VideoRecord]
    target_eval: list[VideoRecord]


def resolve_scenario(name: str, selectors: DatasetScenario, spec: SadaScenario, canonical: str | Path) -> Scenario:
    """Read the canonical records and split them into the scenario's four video sets.

    Raises ``InputError`` naming the file when a role selects no video (a typo in a domain value).
    """
    records = read_records(canonical)
    sets = {
        "source_train": select(records, selectors.source, spec.train_split),
        "target_train": select(records, selectors.target, spec.train_split),
        "source_eval": select(records, selectors.source, spec.eval_split),
        "target_eval": select(records, selectors.target, spec.eval_split),
    }
    for role in ("source_train", "target_train", "target_eval"):
        if not sets[role]:
            domain = selectors.source if role.startswith("source") else selectors.target
            split = spec.train_split if role.endswith("train") else spec.eval_split
            raise InputError(f"{canonical}: scenario {name!r} selects no {split!r} video for {role} ({domain})")
    classes = class_names_for(spec, sets["source_train"])
    if not classes:
        raise InputError(f"{canonical}: scenario {name!r}: the source training videos carry no labelled moment")
    return Scenario(name, spec, classes, **sets)


# ----------------------------------------------------------------------------- videos


_OPEN_MAPS: dict[tuple[str, int], np.ndarray] = {}  # (path, mtime) → memory map, for unpickled FeatureRows


class FeatureRows:
    """One layer of one item of a feature container, read lazily: a ``[rows, dim]`` float16 view of the
    container's memory map that slices along rows without reading anything.

    ``np.asarray(rows)`` is the float32 copy (the values the eager loader used to hold: float16 → float32 is
    exact); :meth:`raw` is the float16 view. Pickling keeps only the file path and the row range (a
    ``DataLoader`` worker started by ``spawn`` reopens the memory map instead of receiving a copy of the video).
    """

    __slots__ = ("path", "start", "stop", "layer", "_array")

    def __init__(self, array: np.ndarray, path: Path, start: int, stop: int, layer: int):
        self.path, self.start, self.stop, self.layer, self._array = Path(path), start, stop, layer, array

    @property
    def shape(self) -> tuple[int, int]:
        return (self.stop - self.start, int(self._map().shape[-1]))

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, rows: slice) -> "FeatureRows":
        if not isinstance(rows, slice) or rows.step not in (None, 1):
            raise TypeError("FeatureRows only slices contiguous row ranges")
        lo, hi, _ = rows.indices(len(self))
        return FeatureRows(self._array, self.path, self.start + lo, self.start + max(lo, hi), self.layer)

    def raw(self) -> np.ndarray:
        """The rows as stored (float16, a view of the memory map: nothing is read until it is used)."""
        return self._map()[self.start : self.stop, self.layer, :]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = torch.from_numpy(np.array(self.raw())).float().numpy()  # torch converts float16 ~3x faster
        return out if dtype is None else out.astype(dtype, copy=False)

    def _map(self) -> np.ndarray:
        if self._array is None:  # unpickled in a worker: one map per file and process, not one per video
            key = (str(self.path), self.path.stat().st_mtime_ns)
            if key not in _OPEN_MAPS:
                _OPEN_MAPS[key] = np.load(self.path, mmap_mode="r")
            self._array = _OPEN_MAPS[key]
        return self._array

    def __getstate__(self):
        return (self.path, self.start, self.stop, self.layer)

    def __setstate__(self, state) -> None:
        self.path, self.start, self.stop, self.layer = state
        self._array = None


@dataclass
class TalVideo:
    """One video as the detector sees it: features ``[T, D]`` (:class:`FeatureRows` from a container, or an
    array), GT in grid units, class ids, its domain."""

    video_id: str
    feats: "FeatureRows | np.ndarray"
    segments: np.ndarray  # [G, 2] float, feature-grid units
    labels: np.ndarray  # [G] int
    duration: float
    domain: int


@dataclass(frozen=True)
class FeatureRecipe:
    """How feature rows map to seconds (from the container's ``meta``)."""

    time_step: float
    window: float

    def to_grid(self, seconds: np.ndarray) -> np.ndarray:
        return (np.asarray(seconds, dtype=np.float64) - 0.5 * self.window) / self.time_step


def open_features(prefix: str | Path) -> tuple[FeatureContainer, FeatureRecipe]:
    """Open a feature container and read its ``time_step``/``window`` meta (an error names the file)."""
    container = FeatureContainer(prefix)
    meta = container.meta
    for key in ("time_step", "window"):
        if not isinstance(meta.get(key), (int, float)) or meta[key] <= 0:
            raise InputError(f"{prefix}.json: meta.{key} must be a positive number, got {meta.get(key)!r}")
    return container, FeatureRecipe(float(meta["time_step"]), float(meta["window"]))


def load_videos(
    records: Sequence[VideoRecord],
    container: FeatureContainer,
    recipe: FeatureRecipe,
    class_names: Sequence[str],
    layer: int,
    domain: int,
) -> tuple[list[TalVideo], int]:
    """Features + GT of ``records``; moments of other classes are left out (returns how many).

    Features stay in the container's memory map (:class:`FeatureRows`, float16 on disk): only the rows a
    crop uses are read and converted to float32, in :func:`collate_videos`, so memory does not grow with the
    number of videos.
    """
    index = {name: i for i, name in enumerate(class_names)}
    array = container.array
    if array.ndim != 3:
        raise InputError(f"{container.prefix}: expected a [rows, layers, dim] array, got {array.shape}")
    if not -array.shape[1] <= layer < array.shape[1]:
        raise InputError(f"{container.prefix}: layer position {layer} out of range: it holds {array.shape[1]} "
                         f"layer(s) (sada.data.layer)")
    npy_path = container_paths(container.prefix)[0]
    videos, skipped = [], 0
    for rec in records:
        if rec.video_id not in container:
            raise InputError(f"{container.prefix}: no features for video {rec.video_id!r} (split {rec.split!r})")
        off, n = container.items[rec.video_id]
        feats = FeatureRows(array, npy_path, off, off + n, layer % array.shape[1])
        kept = [m for m in rec.moments if m.label in index]
        skipped += len(rec.moments) - len(kept)
        segs = np.array([[m.start, m.end] for m in kept], dtype=np.float64).reshape(-1, 2)
        videos.append(
            TalVideo(
                video_id=rec.video_id,
                feats=feats,
                segments=recipe.to_grid(segs).astype(np.float32),
                labels=np.array([index[m.label] for m in kept], dtype=np.int64),
                duration=float(rec.duration),
                domain=domain,
            )
        )
    return videos, skipped


def random_crop(video: TalVideo, max_len: int, crop_ratio: Sequence[float], trunc_thresh: float) -> TalVideo:
    """Training crop (TriDet ``truncate_feats``): a random window of ``min(max_len, ratio·T)`` rows.

    GTs are clipped to the window and kept only if ≥ ``trunc_thresh`` of their length stays inside; up to
    200 draws are tried to keep at least one GT. Uses torch's RNG (seeded by the training loop and per
    DataLoader worker).
    """
    length = video.feats.shape[0]
    lo, hi = crop_ratio
    if length > max_len:
        target = max_len
    else:
        target = round(length * (lo + (hi - lo) * float(torch.rand(()))))
        target = max(1, min(length, target))
    if target == length:
        return video
    segs, labels = video.segments, video.labels
    best = None
    for _ in range(200):
        start = int(torch.randint(0, length - target + 1, ()))
        clipped = np.clip(segs, start, start + target)
        inside = (clipped[:, 1] - clipped[:, 0]) / np.maximum(segs[:, 1] - segs[:, 0], 1e-6)
        keep = inside >= trunc_thresh
        best = (start, clipped[keep] - start, labels[keep])
        if keep.any() or len(segs) == 0:
            break
    start, segs, labels = best
    return TalVideo(video.video_id, video.feats[start : start + target], segs.astype(np.float32), labels,
                    video.duration, video.domain)


class PairedDomainDataset(torch.utils.data.Dataset):
    """Item ``i`` = (source video, target video); the smaller domain repeats (index modulo its size).

    ``len`` = the larger domain's size, so one epoch sees every video of both domains at least once
    (thesis §2.5.2); with a batch size of 2 pairs a batch is 2 source + 2 target videos. Batches are drawn
    from a fresh permutation of the items every epoch, so the videos a batch groups together change.
    """

    def __init__(self, source: Sequence[TalVideo], target: Sequence[TalVideo], max_len: int,
                 crop_ratio: Sequence[float], trunc_thresh: float):
        if not source or not target:
            raise ValueError("PairedDomainDataset needs at least one source and one target video")
        self.source, self.target = list(source), list(target)
        self.max_len, self.crop_ratio, self.trunc_thresh = max_len, tuple(crop_ratio), trunc_thresh

    def __len__(self) -> int:
        return max(len(self.source), len(self.target))

    def __getitem__(self, i: int) -> tuple[TalVideo, TalVideo]:
        src = self.source[i % len(self.source)]
        tgt = self.target[i % len(self.target)]
        crop = (self.max_len, self.crop_ratio, self.trunc_thresh)
        return random_crop(src, *crop), random_crop(tgt, *crop)


def collate_videos(videos: Sequence[TalVideo], pad_multiple: int, recipe: FeatureRecipe) -> dict:
    """Stack videos into a model batch (see ``models.sada.detector``), zero-padding to a multiple of
    ``pad_multiple`` rows."""
    longest = max(v.feats.shape[0] for v in videos)
    length = max(pad_multiple, math.ceil(longest / pad_multiple) * pad_multiple)
    dim = videos[0].feats.shape[1]
    # Rows are filled as stored ([T, D]: a contiguous float16 → float32 copy) and the batch is transposed once.
    rows = torch.zeros(len(videos), length, dim)
    mask = torch.zeros(len(videos), 1, length, dtype=torch.bool)
    for b, v in enumerate(videos):
        n = v.feats.shape[0]
        if isinstance(v.feats, FeatureRows):
            rows[b, :n].copy_(torch.from_numpy(np.array(v.feats.raw())))
        else:
            rows[b, :n].numpy()[...] = v.feats
        mask[b, 0, :n] = True
    return {
        "feats": rows.transpose(1, 2).contiguous(),
        "mask": mask,
        "domain": torch.tensor([v.domain for v in videos], dtype=torch.long),
        "segments": [torch.from_numpy(np.asarray(v.segments, dtype=np.float32)).reshape(-1, 2) for v in videos],
        "labels": [torch.from_numpy(np.asarray(v.labels, dtype=np.int64)) for v in videos],
        "video_ids": [v.video_id for v in videos],
        "durations": torch.tensor([v.duration for v in videos], dtype=torch.float64),
        "time_step": recipe.time_step,
        "window": recipe.window,
    }


class PairCollate:
    """``collate`` for :class:`PairedDomainDataset`: all source videos first, then all target videos.

    A class (not a closure) so DataLoader workers can pickle it.
    """

    def __init__(self, pad_multiple: int, recipe: FeatureRecipe):
        self.pad_multiple, self.recipe = pad_multiple, recipe

    def __call__(self, pairs: Sequence[tuple[TalVideo, TalVideo]]) -> dict:
        videos = [p[0] for p in pairs] + [p[1] for p in pairs]
        return collate_videos(videos, self.pad_multiple, self.recipe)
