"""Domain-shift scenarios as data: which canonical videos form the source and the target domain.

A scenario (``datasets.scenarios.<name>`` in params.yaml) names a canonical dataset and two *selectors*.
A selector maps a record field to the accepted values; a record matches when every listed field has one of
them (compared as strings). Fields: ``domain``, ``participant``, ``split``, ``dataset`` or ``extra.<key>``
(e.g. ``extra.collection`` = EK55 ``old`` / EK100 ``new``). Example, thesis S1 on EPIC-KITCHENS-100:

    S1: {dataset: epic_kitchens_100,
         source: {domain: [dark], extra.collection: [old]},
         target: {domain: [white, other], extra.collection: [old]}}

The same convention is used by the SADA stages (``sada.scenario_specs``).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from pipeline.datasets.schema import VideoRecord

FIELDS = ("domain", "participant", "split", "dataset")


def record_value(rec: VideoRecord, field: str) -> Any:
    """Value of selector ``field`` on ``rec``; ValueError for a field that is not a selector field."""
    if field.startswith("extra."):
        return rec.extra.get(field[len("extra."):])
    if field in FIELDS:
        return getattr(rec, field)
    raise ValueError(f"selector field {field!r} is not one of {', '.join(FIELDS)}, extra.<key>")


def matches(rec: VideoRecord, selector: Mapping[str, Sequence[str]]) -> bool:
    """True when every field of ``selector`` has one of its accepted values on ``rec``."""
    for field, values in selector.items():
        value = record_value(rec, field)
        if value is None or str(value) not in {str(v) for v in values}:
            return False
    return True


def select(records: Iterable[VideoRecord], selector: Mapping[str, Sequence[str]]) -> list[VideoRecord]:
    """The records matching ``selector``, in input order."""
    return [r for r in records if matches(r, selector)]
