"""Counting and handling bad annotation rows, so that nothing an adapter reads disappears silently.

Every adapter reads its annotation files row by row (a CSV line, a JSON window, a JSONL query) and reports
each problem it finds to a ``BadRowReport`` under one category, with the file (relative to the dataset root)
and the row (``line 12``, ``v_abc.timestamps[3]``, ...). The policy decides what happens to the row:

=====================  ==========================================  ==============  =========
category               meaning                                     ``clip``        ``drop``
=====================  ==========================================  ==============  =========
``start_ge_end``       window with start >= end                    dropped         dropped
``past_duration``      window outside [0, duration]                clipped [#]_    dropped
``unknown_class``      class id/name absent from the class list    dropped         dropped
``malformed_timestamp`` time that does not parse                   dropped         dropped
``unknown_video``      no duration/metadata for the video          dropped         dropped
``malformed_row``      missing field, wrong type, bad structure    dropped         dropped
``bad_saliency``       saliency scores inconsistent with clips     saliency only   saliency only
=====================  ==========================================  ==============  =========

.. [#] clipped to ``[0, duration]``; a window that is empty after clipping is dropped (same category).
   Excesses below ``EPS`` (1 µs, float noise of the JSON files) are snapped to the bounds and not counted.
   Excesses up to ``tolerance`` (``datasets.tolerance``, default 0.01 s: real files round times and
   durations differently, e.g. a window ending at 10.004 s in a 10.0-s video) are clamped to the bounds under
   every policy, ``fail`` included, and counted under ``clamped`` (not a bad row).

Policy ``fail`` raises ``InputError`` at the first bad row, naming the file, the row and the category.
Rows left out on purpose by an option (e.g. EPIC verbs outside the 10 majority classes) are not bad rows:
they are counted under ``filtered`` with a reason. ``summary()`` is the metrics file the ingest stage writes;
its moment counts always add up: ``read == kept + dropped + filtered``. Besides the rows, the report keeps
the videos that lost every moment (``video_lost``, by reason and name), the split files read (``begin_split``,
so that ingest can name a split left empty) and free-text ``warnings`` (e.g. an EPIC fps mismatch).
"""
from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from pipeline.core.io import InputError

POLICIES = ("clip", "drop", "fail")
CATEGORIES = (
    "start_ge_end",
    "past_duration",
    "unknown_class",
    "malformed_timestamp",
    "unknown_video",
    "malformed_row",
    "bad_saliency",
)
EPS = 1e-6  # seconds: float noise (70.29 vs 70.28999999999999), snapped to the bounds without a report
TOLERANCE = 0.01  # seconds: rounding excess of real files, clamped and counted (``datasets.tolerance``)
MAX_LISTED = 100  # bad rows listed (with file and row) per category in the summary; all are counted


class BadRowReport:
    """Counts of bad rows per category (with file and row) and of filtered rows, under one policy."""

    def __init__(self, policy: str, root: str | Path = ".", tolerance: float = TOLERANCE) -> None:
        if policy not in POLICIES:
            raise ValueError(f"bad-row policy must be one of {POLICIES}, got {policy!r}")
        if not tolerance >= 0:
            raise ValueError(f"tolerance must be >= 0 seconds, got {tolerance!r}")
        self.policy = policy
        self.root = Path(root)
        self.tolerance = tolerance
        self.moments_read = 0
        self.warnings: list[str] = []
        self.splits: dict[str, dict[str, Any]] = {}  # split → {"file": name, "read": moments read from it}
        self._split: str | None = None
        self._clamped: list[dict[str, str]] = []
        self._lost: dict[str, list[str]] = defaultdict(list)
        self.moments_dropped = 0
        self._filtered: Counter[str] = Counter()
        self._rows: dict[str, list[dict[str, str]]] = defaultdict(list)
        self.info: dict[str, Any] = {}  # adapter-specific facts for the summary (e.g. the kept class list)

    # ---- recording -----------------------------------------------------------------------------------
    def begin_split(self, split: str, file: str) -> None:
        """Start reading the file of one split: later ``read`` counts are attributed to it."""
        self._split = split
        self.splits.setdefault(split, {"file": file, "read": 0})

    def read(self, n: int = 1) -> None:
        """Count ``n`` annotated moments (windows) read from the source files."""
        self.moments_read += n
        if self._split is not None:
            self.splits[self._split]["read"] += n

    def warn(self, message: str) -> None:
        """Record a warning for the summary (ingest also prints it)."""
        self.warnings.append(message)

    def video_lost(self, video: str, reason: str) -> None:
        """Record a video that is not written because it kept no moment (``all_moments_dropped``: every
        moment was a bad row; ``all_moments_filtered``: its valid moments were all left out by an option)."""
        self._lost[reason].append(video)

    def flag(self, category: str, file: str, row: str, detail: str, action: str = "dropped", moments: int = 1) -> None:
        """Record one bad row; under policy ``fail`` raise ``InputError`` instead.

        ``action`` says what the adapter does with it (``dropped``, ``clipped``, ``saliency_dropped``, or
        ``kept`` for an inconsistency resolved without loss, e.g. a QVHighlights video whose lines disagree on
        its duration) and ``moments`` how many read moments that action removes (0 unless ``dropped``).
        """
        if category not in CATEGORIES:
            raise ValueError(f"unknown bad-row category {category!r}; known: {CATEGORIES}")
        if self.policy == "fail":
            raise InputError(f"{self.root / file}: {row}: {category}: {detail} (datasets policy 'fail')")
        self._rows[category].append({"file": file, "row": row, "detail": detail, "action": action})
        if action == "dropped":
            self.moments_dropped += moments

    def filtered(self, reason: str, n: int = 1) -> None:
        """Count ``n`` valid moments left out on purpose (by an option), under ``reason``."""
        if n:
            self._filtered[reason] += n

    def window(
        self, start: float, end: float, duration: float, file: str, row: str
    ) -> tuple[float, float] | None:
        """Check one window against its video's duration; return it (clipped if needed) or None if dropped."""
        if start >= end:
            self.flag("start_ge_end", file, row, f"start {start:g} >= end {end:g}")
            return None
        if -EPS < start < 0:
            start = 0.0
        if duration < end < duration + EPS:
            end = duration
        # EPS on top: an excess of exactly the tolerance (1821.75 s in a 1821.74-s video) is 0.0100000000001 in floats
        slack = self.tolerance + EPS
        if (start < 0 or end > duration) and start >= -slack and end <= duration + slack:
            s, e = max(start, 0.0), min(end, duration)
            if s < e:
                # rounding of the source file, not a bad window: kept under every policy, but counted
                self._clamped.append({"file": file, "row": row, "detail": f"window [{start:g}, {end:g}] "
                                      f"clamped to [{s:g}, {e:g}] (video [0, {duration:g}])"})
                return s, e
        if start < 0 or end > duration:
            detail = f"window [{start:g}, {end:g}] outside video [0, {duration:g}]"
            if self.policy == "clip":
                s, e = max(start, 0.0), min(end, duration)
                if s < e:
                    self.flag("past_duration", file, row, detail, action="clipped")
                    return s, e
                self.flag("past_duration", file, row, detail + " (empty after clipping)")
                return None
            self.flag("past_duration", file, row, detail)
            return None
        return start, end

    # ---- reading back --------------------------------------------------------------------------------
    @property
    def counts(self) -> dict[str, int]:
        """Number of bad rows per category (categories with none are left out)."""
        return {c: len(self._rows[c]) for c in CATEGORIES if self._rows.get(c)}

    @property
    def videos_lost(self) -> dict[str, list[str]]:
        """Videos not written because they kept no moment, by reason, in reporting order."""
        return {reason: list(v) for reason, v in sorted(self._lost.items())}

    @property
    def moments_filtered(self) -> int:
        return sum(self._filtered.values())

    @property
    def moments_kept(self) -> int:
        return self.moments_read - self.moments_dropped - self.moments_filtered

    def rows(self, category: str) -> list[dict[str, str]]:
        """Every bad row of ``category`` (file, row, detail, action), in reading order."""
        return list(self._rows.get(category, []))

    def summary(self, max_listed: int = MAX_LISTED) -> dict[str, Any]:
        """JSON-ready summary: moment accounting, per-category counts by action and file, listed rows."""
        bad: dict[str, Any] = {}
        for cat in CATEGORIES:
            rows = self._rows.get(cat)
            if not rows:
                continue
            bad[cat] = {
                "count": len(rows),
                "by_action": dict(sorted(Counter(r["action"] for r in rows).items())),
                "by_file": dict(sorted(Counter(r["file"] for r in rows).items())),
                "rows": rows[:max_listed],
                "rows_not_listed": max(0, len(rows) - max_listed),
            }
        return {
            "policy": self.policy,
            "moments": {
                "read": self.moments_read,
                "kept": self.moments_kept,
                "dropped": self.moments_dropped,
                "filtered": self.moments_filtered,
            },
            "bad_rows": sum(len(r) for r in self._rows.values()),
            "bad": bad,
            "filtered": dict(sorted(self._filtered.items())),
            "clamped": {"count": len(self._clamped), "tolerance": self.tolerance,
                        "rows": self._clamped[:max_listed],
                        "rows_not_listed": max(0, len(self._clamped) - max_listed)},
            "videos_lost": {reason: {"count": len(v), "videos": v[:max_listed],
                                     "videos_not_listed": max(0, len(v) - max_listed)}
                            for reason, v in self.videos_lost.items()},
            "warnings": list(self.warnings),
            "info": self.info,
        }
