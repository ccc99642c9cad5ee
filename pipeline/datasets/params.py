"""``datasets`` params block: raw dataset sources and TAL adaptation scenarios."""
from __future__ import annotations

import dataclasses
from typing import Annotated, Any, ClassVar, Literal

from pipeline.core.params import ConfigError, Range
from pipeline.datasets.badrows import TOLERANCE

# seconds a window may overshoot its video (or start before 0) and still count as rounding: clamped and counted,
# not a bad row; a whole second is no longer rounding
Tolerance = Annotated[float, Range(low=0, high=1)]


@dataclasses.dataclass(frozen=True)
class DatasetSource:
    """One ``datasets.sources.<name>`` entry: which adapter reads it, from where, with which options.

    ``format`` names an adapter module of ``pipeline/datasets`` (see ``pipeline.datasets.ingest.ADAPTERS``);
    ``options`` are that adapter's own ``Options`` fields, validated strictly by the ingest stage before any
    file is read. ``policy`` and ``tolerance`` override ``datasets.policy`` and ``datasets.tolerance`` for this
    source.
    """

    format: str
    root: str
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    policy: Literal["clip", "drop", "fail"] | None = None
    tolerance: Tolerance | None = None


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
    """``datasets``: the sources ingested (every entry of ``sources`` is one ``ingest@<name>`` stage) into
    ``data/canonical/<name>.jsonl`` and how bad rows are handled (``clip | drop | fail``, see
    ``pipeline/datasets/badrows.py``; ``tolerance``: rounding excess in seconds, clamped and counted under every
    policy); domain-shift scenarios as data."""

    BLOCK: ClassVar[str] = "datasets"

    policy: Literal["clip", "drop", "fail"]
    sources: dict[str, DatasetSource]
    scenarios: dict[str, DatasetScenario] = dataclasses.field(default_factory=dict)
    tolerance: Tolerance = TOLERANCE

    def __post_init__(self) -> None:
        for name, sc in self.scenarios.items():
            if sc.dataset not in self.sources:
                raise ConfigError(f"datasets.scenarios.{name}.dataset: {sc.dataset!r} is not in datasets.sources")
            for role in ("source", "target"):
                for field in getattr(sc, role):
                    if not (field.startswith("extra.") or field in ("domain", "participant", "split", "dataset")):
                        raise ConfigError(f"datasets.scenarios.{name}.{role}.{field}: not a selector field "
                                          "(domain, participant, split, dataset, extra.<key>)")
