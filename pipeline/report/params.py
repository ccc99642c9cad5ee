"""``report`` and ``claims`` params blocks (validated by :func:`pipeline.core.params.load_block`)."""
from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar, Literal

from pipeline.core.params import Fraction, Range


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    """``report``: presentation of ``reports/report.md`` (never its numbers)."""

    BLOCK: ClassVar[str] = "report"

    title: str
    digits: Annotated[int, Range(low=0, high=6)]  # decimals shown for every number


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
    iou: Fraction
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
    """``claims``: which runs the stage ``claims`` compares (``pipeline/report/claims.py``; its rule is there)."""

    BLOCK: ClassVar[str] = "claims"

    sada: ClaimsSada
    search_vmr: ClaimsSearch
    sdst: ClaimsSdst
