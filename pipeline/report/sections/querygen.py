"""Report section "Search-query generation": thesis Table 3.1 rows, validation counts, oracle scores.

Reads ``reports/metrics/querygen/<dataset>_<level>.json`` (``querygen_build``) and
``reports/metrics/querygen/oracle/<dataset>_<level>.json`` (``querygen_oracle``, synthetic world only).
"""
from __future__ import annotations

from pathlib import Path

from pipeline.report.sections.tables import load_metrics, markdown_table

_HEADER = ["benchmark", "# videos", "# queries", "duration/video (s)", "moments/query", "moments/query (multi)",
           "# multi", "% multi", "words/query"]


def _row(name: str, s: dict) -> list:
    return [name, s["videos"], s["queries"], s["duration_per_video"], s["moments_per_query"],
            s["moments_per_query_multi"], s["multi_queries"], s["multi_pct"],
            f"{s['words_per_query_mean']:.2f} ± {s['words_per_query_std']:.2f}"]


def _table31(files: list[Path]) -> str:
    rows, seen = [], set()
    for path in files:
        m = load_metrics(path)
        ds, level = m.get("dataset", path.stem), m.get("level", "")
        if ds not in seen:  # the caption set is the same for every level of a dataset
            seen.add(ds)
            rows.append(_row(ds, m["caption"]["all"]))
        rows.append(_row(f"{ds}-{level}", m["search"]["all"]))
    return "### Benchmark statistics (thesis Table 3.1)\n\n" + markdown_table(_HEADER, rows)


def _counts(files: list[Path]) -> str:
    rows = []
    for path in files:
        m = load_metrics(path)
        v, a = m.get("validation", {}), m.get("aggregation", {})
        rows.append([f"{m.get('dataset')}-{m.get('level')}", v.get("items"), v.get("flagged"), v.get("fallback"),
                     v.get("dropped"), v.get("overridden"), v.get("llm_rejected"), a.get("multi_groups"),
                     a.get("llm_groups"), a.get("flagged"), a.get("fallback")])
    return "### Validation and aggregation counts\n\n" + markdown_table(
        ["benchmark", "rewrites", "flagged", "fallback", "dropped", "overridden", "LLM said no",
         "multi groups", "aggregated by LLM", "repr. flagged", "repr. fallback"], rows)


def _oracle(files: list[Path]) -> str:
    rows = []
    for path in files:
        m = load_metrics(path)
        r, f, g, go = m["rewrite"], m["final"], m["grouping"], m["grouping_oracle_text"]
        rows.append([f"{m.get('dataset')}-{m.get('level')}", r["exact"], r["partial"], r["token_f1"], f["exact"],
                     g["ari"], g["ari_per_video_mean"], go["ari"]])
    if not rows:
        return ""
    return "### Scores against the synthetic world's oracle\n\n" + markdown_table(
        ["benchmark", "rewrite exact", "rewrite partial", "rewrite token F1", "final exact", "grouping ARI",
         "ARI per video", "ARI (oracle texts)"], rows, digits=3)


def render(reports_dir: Path) -> str:
    """Markdown of the query-generation section, or "" when its metrics are absent."""
    base = Path(reports_dir) / "metrics" / "querygen"
    files = sorted(base.glob("*.json"))
    if not files:
        return ""
    return "\n\n".join(p for p in (_table31(files), _counts(files), _oracle(sorted((base / "oracle").glob("*.json"))))
                       if p)
