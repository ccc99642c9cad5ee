"""``datasets`` params block: raw dataset sources and TAL adaptation scenarios."""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

from pipeline.core.params import ConfigError


@dataclasses.dataclass(frozen=True)
class DatasetSource:
    """One ``datasets.sources.<name>`` entry: which adapter reads it, from where, with which options.

    ``format`` names an adapter module of ``pipeline/datasets`` (see ``pipeline.datasets.ingest.ADAPTERS``);
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

    BLOCK: ClassVar[str] = "datasets"

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
