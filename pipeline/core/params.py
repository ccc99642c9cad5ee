"""``params.yaml`` blocks as frozen dataclasses, validated strictly before any work starts.

Each top-level block of ``params.yaml`` has one dataclass, kept in the package of the area that reads it
(``pipeline/<area>/params.py``; ``runtime`` and the shared ``TrainConfig`` live here). A block dataclass names
its block in a ``BLOCK`` class variable; :func:`load_block` builds it from the YAML mapping and rejects unknown
keys, missing keys and values of the wrong type with an error that names the dotted key, e.g.
``params.yaml: sdst.K: expected int, got str ('four')``.

Supported field types: ``bool``, ``int``, ``float`` (an int is accepted), ``str``, ``Literal[...]``,
``X | None``, ``list[X]``, ``tuple[X, ...]``, ``dict[str, X]`` and nested dataclasses. A field with a
default may be omitted from the YAML; every other field is required.

Numeric knobs carry their meaningful range in the annotation, ``Annotated[int, Range(low=1)]`` or one of the
aliases below (``PositiveInt``, ``NonNegInt``, ``PositiveFloat``, ``NonNegFloat``, ``Fraction``), so
``epochs: 0`` or ``lr: -1`` is refused before any work with ``params.yaml: sdst.train.epochs: must be ≥ 1, got 0``.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Mapping, TypeVar

import yaml

PARAMS_FILE = "params.yaml"

T = TypeVar("T")


class ConfigError(ValueError):
    """A params block does not match its dataclass; the message names the file and the dotted key."""


@dataclasses.dataclass(frozen=True)
class Range:
    """Allowed interval of a numeric params field, used as ``Annotated[int, Range(low=1)]``.

    ``low``/``high`` of None = unbounded on that side; ``low_open``/``high_open`` exclude the bound itself
    (a learning rate must be > 0, a dropout rate may be 0).
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def check(self, value: float, key: str) -> None:
        """Raise :class:`ConfigError` naming ``key`` when ``value`` lies outside the interval."""
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            raise ConfigError(f"{key}: must be {'>' if self.low_open else '≥'} {self.low:g}, got {value!r}")
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            raise ConfigError(f"{key}: must be {'<' if self.high_open else '≤'} {self.high:g}, got {value!r}")


PositiveInt = Annotated[int, Range(low=1)]
NonNegInt = Annotated[int, Range(low=0)]
PositiveFloat = Annotated[float, Range(low=0, low_open=True)]
NonNegFloat = Annotated[float, Range(low=0)]
Fraction = Annotated[float, Range(low=0, high=1)]  # probabilities, ratios, thresholds on [0, 1]


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and return it converted (lists → tuples stay lists)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin is Annotated:
        converted = _convert(value, args[0], key)
        for meta in args[1:]:
            if isinstance(meta, Range) and converted is not None:
                meta.check(converted, key)
        return converted
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
    hints = typing.get_type_hints(cls, include_extras=True)
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


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    """``runtime``: where and how every torch stage runs."""

    BLOCK: ClassVar[str] = "runtime"

    device: str  # "cpu", "cuda", "cuda:1", ... (checked against the machine by apply_runtime)
    seed: int
    workers: NonNegInt  # DataLoader worker processes
    precision: Literal["fp32", "fp16", "bf16"]
    threads: NonNegInt  # torch intra-op threads; 0 = torch's default


@dataclasses.dataclass(frozen=True)
class LaunchConfig:
    """``launch``: how dvc.yaml starts the three training stages (``<launch.train> -m pipeline.<method>.train …``).

    ``python`` (one process) or a torchrun prefix such as ``torchrun --standalone --nproc_per_node 8``. A block
    of its own, not a ``runtime`` key: stages that list ``runtime`` as a params dependency (extraction,
    pretraining) must not rerun when only the launcher changes; the training stages see it in their cmd.
    """

    BLOCK: ClassVar[str] = "launch"

    train: str = "python"

    def __post_init__(self):
        first = self.train.split()[0] if self.train.strip() else ""
        if not (first.startswith("python") or first == "torchrun"):
            raise ConfigError(f"launch.train: must start with python or torchrun, got {self.train!r}")


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

    epochs: PositiveInt
    batch_size: PositiveInt
    lr: PositiveFloat
    weight_decay: NonNegFloat = 1e-4
    schedule: Literal["constant", "step", "cosine"] = "step"
    step_epochs: PositiveInt = 20
    step_gamma: Annotated[float, Range(low=0, high=1, low_open=True)] = 0.1
    min_lr_ratio: Fraction = 0.0
    warmup_iters: NonNegInt = 0
    warmup_ratio: Fraction = 0.001
    grad_clip: NonNegFloat = 0.0
    ema_decay: Annotated[float, Range(low=0, high=1, high_open=True)] | None = None
    drop_last: bool = False
    eval_every: NonNegInt = 0


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




def load_block(schema: type, path: str | Path = PARAMS_FILE, params: Mapping[str, Any] | None = None) -> Any:
    """Validate and return block ``schema.BLOCK`` of the params file as the frozen dataclass ``schema``."""
    name = getattr(schema, "BLOCK", None)
    if not isinstance(name, str):
        raise ConfigError(f"{schema.__name__} is not a params block dataclass (no BLOCK name)")
    params = load_params(path) if params is None else params
    if name not in params:
        raise ConfigError(f"{path}: missing block {name!r}")
    try:
        return build(schema, params[name], name)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def spec_entry(specs: Mapping[str, T], name: str, key: str, what: str = "entry") -> T:
    """``specs[name]`` of a named-specs mapping (``sdst.dataset_specs``, ``search_vmr.variant_specs``, ...);
    a name with no entry is a :class:`ConfigError` naming the dotted ``key`` and the known names."""
    if name not in specs:
        raise ConfigError(f"{key}: no {what} {name!r} (known: {sorted(specs)})")
    return specs[name]


def to_dict(cfg: Any) -> Any:
    """A block dataclass back to plain data (for checkpoints and logs)."""
    return dataclasses.asdict(cfg)
