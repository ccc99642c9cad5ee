"""Review files and the failure policy shared by the validator and the aggregator.

Every item that fails a check is written to the stage's generated review file (JSONL, one row per item) with
its reasons, the generated answer and the fallback the policy would use::

    {"id": ..., "video_id": ..., "input": ..., "generated": ..., "reasons": [...], "fallback": ..., "final": null}

To correct items by hand, copy rows into the *user* review file (``data/querygen_reviews/<dataset>/<level>/
<agent>.jsonl``, tracked by git) and set ``"final": "<your text>"`` or ``"drop": true``. Rows there override
the generated answer whether or not the item was flagged; the stage reruns when that file changes.

User files are read strictly, every mistake an ``InputError`` naming the file and line: ``drop`` must be a JSON
boolean (``"false"`` is an error, not a truthy string), ``id`` a non-empty string, ``final`` null or a
non-empty string, not both ``final`` and ``"drop": true``, no id twice, no keys beyond those of a generated row
(plus ``comment``/``note``), so a misspelt ``"Final"`` is not silently ignored. ``check_override_ids`` then
lists every id that matches no item of the stage, and ``check_override_texts`` rejects a ``final`` text that
fails the stage's own validation of LLM output (grounding and form, ``wellformed``), with the reasons.

Policy for flagged items without an override: ``fallback`` (use the fallback text: the original caption for a
rewrite, the group's medoid query stripped of words not shared by all members for a representative), ``drop`` (leave the item's moments out of both the
search and the caption benchmark), ``fail`` (stop the stage after writing the review file).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.io import InputError, read_jsonl

POLICIES = ("fallback", "drop", "fail")
# keys of a generated review row, plus the user's decision and free-text notes
OVERRIDE_KEYS = ("id", "video_id", "input", "generated", "reasons", "llm_verdict", "fallback", "final", "drop",
                 "comment", "note")


class ReviewRequired(RuntimeError):
    """Policy ``fail`` met flagged items; the message names the review file to edit."""


@dataclass(frozen=True)
class Override:
    """A user's decision for one item, with the file and line it came from (for error messages)."""

    final: str | None
    drop: bool
    path: str = ""
    line: int = 0

    @property
    def where(self) -> str:
        """``<file>: line <n>``."""
        return f"{self.path}: line {self.line}"


def _override(row, path: Path, line: int) -> Override | None:
    """One parsed row (None = an untouched copy: no decision yet); a malformed row raises ``InputError``."""
    where = f"{path}: line {line}"
    if not isinstance(row, dict):
        raise InputError(f"{where}: expected a JSON object with an 'id', got {type(row).__name__}")
    if "id" not in row:
        raise InputError(f"{where}: needs an 'id'")
    item_id = row["id"]
    if not isinstance(item_id, str) or not item_id.strip():
        raise InputError(f"{where}: 'id' must be a non-empty string (copy it from the review file), "
                         f"got {type(item_id).__name__} {item_id!r}")
    unknown = [k for k in row if k not in OVERRIDE_KEYS]
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
                         f"allowed: {', '.join(OVERRIDE_KEYS)}")
    drop = row.get("drop", False)
    if not isinstance(drop, bool):
        raise InputError(f"{where}: 'drop' must be true or false, got {type(drop).__name__} {drop!r}")
    final = row.get("final")
    if final is not None and (not isinstance(final, str) or not final.strip()):
        raise InputError(f"{where}: 'final' must be null or a non-empty string, got {type(final).__name__} {final!r}")
    if final is not None and drop:
        raise InputError(f"{where}: sets both 'final' and \"drop\": true; keep one")
    if final is None and not drop:
        return None
    return Override(final.strip() if final is not None else None, drop, str(path), line)


def load_overrides(path: str | Path | None) -> dict[str, Override]:
    """User overrides by item id; a missing file means none. Bad rows raise ``InputError`` naming the line."""
    if path is None or not Path(path).is_file():
        return {}
    path = Path(path)
    try:
        rows = read_jsonl(path)
        # read_jsonl skips blank lines: number the rows by the file's non-blank lines
        lines = [i for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1) if text.strip()]
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    out: dict[str, Override] = {}
    for line, row in zip(lines, rows):
        ov = _override(row, path, line)
        if ov is None:
            continue
        key = row["id"]
        if key in out:
            raise InputError(f"{path}: line {line}: id {key!r} already overridden on line {out[key].line}")
        out[key] = ov
    return out


def check_override_ids(overrides: dict[str, Override], known: Iterable[str], what: str) -> None:
    """Raise ``InputError`` listing every override whose id matches none of ``known`` (``what``: the items' kind)."""
    known = set(known)
    unknown = sorted((ov.line, item_id, ov.path) for item_id, ov in overrides.items() if item_id not in known)
    if unknown:
        listed = ", ".join(f"{item_id!r} (line {line})" for line, item_id, _ in unknown)
        raise InputError(f"{unknown[0][2]}: {len(unknown)} override id(s) match no {what}: {listed}")


def check_override_texts(overrides: dict[str, Override], reasons: dict[str, list[str]]) -> None:
    """Raise ``InputError`` naming file, line and reasons of every ``final`` text whose ``reasons`` are not empty."""
    bad = sorted(((ov.line, ov, item_id) for item_id, ov in overrides.items() if reasons.get(item_id)),
                 key=lambda t: t[0])
    if bad:
        raise InputError("; ".join(f"{ov.where}: 'final' {ov.final!r} of {item_id!r} fails validation: "
                                   f"{', '.join(reasons[item_id])}" for _, ov, item_id in bad))


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
