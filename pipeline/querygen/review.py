"""Review files and the failure policy shared by the validator and the aggregator.

Every item that fails a check is written to the stage's generated review file (JSONL, one row per item) with
its reasons, the generated answer and the fallback the policy would use::

    {"id": ..., "video_id": ..., "input": ..., "generated": ..., "reasons": [...], "fallback": ..., "final": null}

To correct items by hand, copy rows into the *user* review file (``data/querygen_reviews/<dataset>/<level>/
<agent>.jsonl``, tracked by git) and set ``"final": "<your text>"`` or ``"drop": true``. Rows there override
the generated answer whether or not the item was flagged; the stage reruns when that file changes.

Policy for flagged items without an override: ``fallback`` (use the fallback text: the original caption for a
rewrite, the group's medoid query stripped of words not shared by all members for a representative), ``drop`` (leave the item's moments out of both the
search and the caption benchmark), ``fail`` (stop the stage after writing the review file).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.core.io import InputError, read_jsonl

POLICIES = ("fallback", "drop", "fail")


class ReviewRequired(RuntimeError):
    """Policy ``fail`` met flagged items; the message names the review file to edit."""


@dataclass(frozen=True)
class Override:
    """A user's decision for one item."""

    final: str | None
    drop: bool


def load_overrides(path: str | Path | None) -> dict[str, Override]:
    """User overrides by item id; a missing file means none. Bad rows raise ``InputError`` naming the line."""
    if path is None or not Path(path).is_file():
        return {}
    out: dict[str, Override] = {}
    for i, row in enumerate(read_jsonl(path), start=1):
        if not isinstance(row, dict) or "id" not in row:
            raise InputError(f"{path}: line {i}: needs an 'id'")
        final = row.get("final")
        drop = bool(row.get("drop", False))
        if final is None and not drop:
            continue  # an untouched copy of a generated row: no decision yet
        if final is not None and (not isinstance(final, str) or not final.strip()):
            raise InputError(f"{path}: line {i}: 'final' must be a non-empty string")
        out[str(row["id"])] = Override(final.strip() if isinstance(final, str) else None, drop)
    return out


@dataclass(frozen=True)
class Decision:
    """What happens to one item: its final text (None = dropped) and a status for the counts."""

    text: str | None
    status: str  # ok | overridden | fallback | dropped | flagged (policy fail)


def decide(item_id: str, generated: str, fallback: str, reasons: list[str], policy: str,
           overrides: dict[str, Override]) -> Decision:
    """Apply an override or the policy to one item."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    ov = overrides.get(item_id)
    if ov is not None:
        return Decision(None, "dropped") if ov.drop else Decision(ov.final, "overridden")
    if not reasons:
        return Decision(generated, "ok")
    if policy == "fallback":
        return Decision(fallback, "fallback")
    if policy == "drop":
        return Decision(None, "dropped")
    return Decision(None, "flagged")


def status_counts(decisions: list[Decision], flagged: list[bool]) -> dict[str, int]:
    """Metric counts: items, flagged (failed a check), and each outcome."""
    counts = {"items": len(decisions), "flagged": sum(flagged)}
    for name in ("ok", "overridden", "fallback", "dropped"):
        counts[name] = sum(d.status == name for d in decisions)
    return counts


def raise_if_flagged(statuses: list[str], review_path: Path, user_path: Path) -> None:
    """Policy ``fail`` left ``flagged`` items: stop with a message telling the user where to put corrections."""
    n = sum(s == "flagged" for s in statuses)
    if n:
        raise ReviewRequired(
            f"{n} item(s) failed validation (policy 'fail'); see {review_path}. Copy rows to {user_path}, set "
            f"\"final\" (or \"drop\": true) and rerun.")
