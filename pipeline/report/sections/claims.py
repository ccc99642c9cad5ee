"""The thesis' three claims, from ``reports/metrics/claims/<claim>.json`` (stage ``claims``,
``pipeline/report/claims.py``).

Two renderers: :func:`render_summary` is the opening summary's table, one row per claim with its verdict and
the sentence the stage wrote; :func:`render_one` is one claim in full for its method's chapter: the arms (mean ±
std over seeds of every metric, #active decoder queries for search VMR) and the comparisons with their margins in
units of the pooled std.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.report.sections.tables import fmt, load_metrics, markdown_table

# claim file stem → the claim as the thesis states it (also its heading in the method's chapter)
ORDER = (("sada", "SADA > source-only on the target domain"),
         ("search_vmr", "−SA+QD > base on multi-moment search queries"),
         ("sdst", "SDST > w/o tuning"))
TITLES = dict(ORDER)
RULE = ("Each claim is tested on the means over seeds: it holds when the method beats the baseline in every "
        "comparison; the margin is also given in units of the pooled std over seeds (rule and layouts: "
        "`pipeline/report/claims.py`).")


def _pm(stat: dict | None, digits: int) -> str:
    """``mean ± std (n)`` of a ``{"mean", "std", "seeds"}`` entry."""
    if not stat or stat.get("mean") is None:
        return "—"
    std = stat.get("std")
    spread = f" ± {fmt(float(std), digits)}" if std is not None and std == std else ""  # NaN: unknown std
    return f"{fmt(float(stat['mean']), digits)}{spread} ({stat.get('seeds', '?')})"


def _verdict(data: dict) -> tuple[str, str]:
    """``(verdict, sentence)``; the stage's sentence opens with the verdict, which is cut off so it shows once."""
    verdict = "holds" if data.get("holds") else "does not hold"
    sentence = str(data.get("sentence", ""))
    if sentence.startswith(verdict + ":"):
        sentence = sentence[len(verdict) + 1 :].strip()
    return verdict, sentence


def render_claim(data: dict, digits: int = 2) -> str:
    """One claim: verdict, arms table, comparisons table."""
    verdict, sentence = _verdict(data)
    lines = [f"*Claim:* {data.get('claim', '')}.", "", f"**{verdict}**: {sentence}", ""]
    arms = data.get("arms", {})
    metric_names = list(dict.fromkeys(m for a in arms.values() for m in a.get("metrics", {})))
    has_active = any("active" in a for a in arms.values())
    header = ["where", "arm", "role", *[f"{m} (seeds)" for m in metric_names]]
    header += ["#active (seeds)"] if has_active else []
    rows = []
    for arm in arms.values():
        row = [arm.get("where", ""), arm.get("label", arm.get("variant", "")), arm.get("role", "")]
        row += [_pm(arm.get("metrics", {}).get(m), digits) for m in metric_names]
        row += [_pm(arm.get("active"), digits)] if has_active else []
        rows.append(row)
    lines.append(markdown_table(header, rows, digits))
    comps = data.get("comparisons", [])
    if comps:
        lines += ["", markdown_table(
            ["where", "metric", "margin", "pooled std", "margin / std", "holds", "> std"],
            [[c.get("where"), c.get("metric"), c.get("margin"), c.get("pooled_std"), c.get("margin_in_std"),
              "yes" if c.get("holds") else "no", "yes" if c.get("exceeds_std") else "no"] for c in comps],
            digits)]
    return "\n".join(lines)


def _present(reports_dir: Path) -> list[tuple[str, str, Path]]:
    root = Path(reports_dir) / "metrics" / "claims"
    return [(name, title, root / f"{name}.json") for name, title in ORDER if (root / f"{name}.json").is_file()]


def render_summary(reports_dir: Path, digits: int = 2) -> str:
    """The claims table of the opening summary: claim, verdict, the stage's sentence ("" without claim files)."""
    rows = []
    for _name, title, path in _present(reports_dir):
        verdict, sentence = _verdict(load_metrics(path))
        rows.append([title, f"**{verdict}**", sentence.replace("|", "\\|")])
    if not rows:
        return ""
    return "\n\n".join([RULE + " Each method's chapter below gives the claim's arms and comparisons.",
                        markdown_table(["claim", "verdict", "evidence (margin and margin / pooled std)"], rows,
                                       digits)])


def render_one(reports_dir: Path, name: str, digits: int = 2) -> str:
    """Claim ``name`` (a key of :data:`ORDER`) in full under a ``###`` heading ("" without its file)."""
    path = Path(reports_dir) / "metrics" / "claims" / f"{name}.json"
    if not path.is_file():
        return ""
    return f"### Claim: {TITLES[name]}\n\n{render_claim(load_metrics(path), digits)}"
