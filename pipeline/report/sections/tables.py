"""Markdown helpers shared by the report sections."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Sequence

from pipeline.core.io import InputError


def fmt(value: Any, digits: int = 2) -> str:
    """Format a table cell: floats with ``digits`` decimals, None as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], digits: int = 2) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(fmt(v, digits) for v in row) + " |")
    return "\n".join(lines)


def demote_headings(markdown: str, levels: int = 1) -> str:
    """``markdown`` with every heading ``levels`` deeper (``### a`` → ``#### a``), code fences left alone.

    Lets the report nest a section renderer's output under a method's chapter without the renderer knowing where
    it is placed."""
    out, fenced = [], False
    for line in markdown.split("\n"):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            line = "#" * levels + line
        out.append(line)
    return "\n".join(out)


def inline(obj: Any, digits: int = 2) -> str:
    """A small dict as one table cell, ``key value, key value`` (nested dicts in parentheses, lists joined)."""
    if isinstance(obj, dict):
        return ", ".join(f"{k} {inline(v, digits)}" if not isinstance(v, dict) else f"{k} ({inline(v, digits)})"
                         for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return "/".join(inline(v, digits) for v in obj)
    return fmt(obj, digits)


def load_metrics(path: Path) -> Any:
    """Read one metrics JSON file (a file that is not JSON → :class:`InputError` naming it)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not a JSON metrics file ({exc})") from exc



def save_figure(fig: Any, path: Path) -> None:
    """Lay out ``fig``, write it to ``path`` (PNG, 100 dpi; folders created) and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
