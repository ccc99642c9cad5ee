"""Report appendix: the files the report drew from, with the stage that wrote each and where it is shown.

Lists every JSON file under ``reports/metrics/`` and the plot files the figures are drawn from
(``plots/sada/<scenario>/<variant>/tsne.json``, ``plots/search_vmr/<benchmark>/<variant>.json``), each with its
writer stage, the report chapter that shows it and its top-level keys, so every number in the report can be
traced to a file without the report repeating the files' contents. ``SOURCES`` is checked against dvc.yaml's
metrics/outs by ``tests/test_report_build.py``.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.report.sections.tables import load_metrics, markdown_table

# (path prefix under reports/, writer stage as named in dvc.yaml, chapter showing it); first match wins, so a
# longer prefix comes before the prefix it extends. ``<backbone>`` stands for the stage's per-backbone suffix;
# ``[_fixed_k]``: the SDST variants that set their own K are written by the ``*_fixed_k`` copy of the stage.
SOURCES = [
    ("metrics/claims/", "claims", "Summary; each method's claim"),
    ("metrics/sada/", "sada_evaluate", "SADA"),
    ("plots/sada/", "sada_evaluate", "SADA (t-SNE figure)"),
    ("metrics/querygen/oracle/", "querygen_oracle", "Search-query VMR › query generation"),
    ("metrics/querygen/", "querygen_build", "Search-query VMR › query generation"),
    ("metrics/search_vmr/", "search_evaluate", "Search-query VMR › retrieval"),
    ("plots/search_vmr/", "search_evaluate", "Search-query VMR › retrieval (figures)"),
    ("metrics/sdst/efficiency/", "sdst_efficiency[_fixed_k]", "SDST › efficiency"),
    ("metrics/sdst/", "sdst_evaluate[_fixed_k]", "SDST"),
    ("metrics/pretrain/", "pretrain", "Are the features informative? › pretraining"),
    ("metrics/features/", "merge_features_<backbone>", "Are the features informative? › extraction"),
    ("metrics/probes/", "probe_features_<backbone>", "Are the features informative? › probes"),
    ("metrics/synth/", "synth", "Datasets › synthetic worlds"),
    ("metrics/dataset_stats/", "dataset_stats", "Datasets › statistics"),
    ("metrics/ingest/", "ingest", "Datasets › ingest"),
]
PLOT_GLOBS = ("plots/sada/*/*/tsne.json", "plots/search_vmr/*/*.json")
MAX_KEYS = 8  # top-level keys shown per file; the rest are elided


def source_of(rel: str) -> tuple[str, str]:
    """``(writer stage, chapter)`` of a path relative to ``reports/`` (``("—", "not shown")`` when unknown)."""
    for prefix, stage, chapter in SOURCES:
        if rel.startswith(prefix):
            return stage, chapter
    return "—", "not shown"


def _keys(data) -> str:
    if isinstance(data, list):
        first = data[0] if data and isinstance(data[0], dict) else {}
        return "rows of " + _keys(first) if first else "list"
    if not isinstance(data, dict):
        return type(data).__name__
    keys = [f"`{k}`" for k in data]
    return ", ".join(keys[:MAX_KEYS]) + (", …" if len(keys) > MAX_KEYS else "")


def files(reports_dir: Path) -> list[Path]:
    """The files the report reads, sorted: every metrics JSON, then the plot files behind the figures."""
    reports_dir = Path(reports_dir)
    out = sorted((reports_dir / "metrics").rglob("*.json"))
    for pattern in PLOT_GLOBS:
        out += sorted(reports_dir.glob(pattern))
    return out


def render(reports_dir: Path) -> str:
    """The appendix table, or "" when no file exists."""
    reports_dir = Path(reports_dir)
    rows, previous = [], None
    for path in files(reports_dir):
        rel = path.relative_to(reports_dir).as_posix()
        stage, chapter = source_of(rel)
        keys = _keys(load_metrics(path))
        # sibling files share their layout: name the keys once per run of equal layouts
        rows.append([f"`{(reports_dir / rel).as_posix()}`", f"`{stage}`" if stage != "—" else stage, chapter,
                     "as above" if keys == previous else keys])
        previous = keys
    if not rows:
        return ""
    return ("Every measured number above is read from one of these files, which hold all the numbers the stages "
            "wrote:\n\n" + markdown_table(["file", "written by", "shown in", "top-level keys"],
                                                            rows))
