"""Summaries over training seeds (pure functions, no io)."""
from __future__ import annotations

from typing import Sequence


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation of per-seed values (0 for a single value, NaN for none)."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    m = sum(values) / n
    return m, (sum((v - m) ** 2 for v in values) / n) ** 0.5
