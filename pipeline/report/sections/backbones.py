"""Report tables on the backbones the probes judge: embedded pretraining and feature extraction.

Reads ``reports/metrics/pretrain/<backbone>.json`` (stage ``pretrain``: objective, steps, losses, corpus and
held-out scores) and ``reports/metrics/features/<dataset>-<backbone>.json`` (stages ``merge_features_<backbone>``:
videos extracted or skipped, feature dim, stored layers, time step, rows per split). Cells are the files'
values; nested groups (corpus, held-out, splits) are shown inline as ``key value`` lists.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.report.sections.tables import inline, load_metrics, markdown_table


def _pretrain(metrics_dir: Path, digits: int) -> str:
    rows = []
    for path in sorted((metrics_dir / "pretrain").glob("*.json")):
        m = load_metrics(path)
        rows.append([m.get("backbone", path.stem), m.get("objective"), m.get("steps"), m.get("first_loss"),
                     m.get("final_loss"), m.get("seconds"), inline(m.get("corpus", {}), digits),
                     inline(m.get("heldout", {}), digits)])
    if not rows:
        return ""
    return "### Backbone pretraining\n\n" + markdown_table(
        ["backbone", "objective", "steps", "first loss", "final loss", "seconds", "corpus", "held-out"], rows, digits)


def _extraction(metrics_dir: Path, digits: int) -> str:
    rows = []
    for path in sorted((metrics_dir / "features").glob("*.json")):
        m = load_metrics(path)
        splits = {s: v.get("rows") for s, v in m.get("splits", {}).items()}
        rows.append([m.get("dataset"), m.get("backbone"), m.get("videos"), m.get("extracted"),
                     m.get("skipped_count"), m.get("dim"), inline(m.get("layers", []), digits), m.get("time_step"),
                     m.get("window"), m.get("pooling"), inline(splits, digits)])
    if not rows:
        return ""
    return "### Feature extraction\n\n" + markdown_table(
        ["dataset", "backbone", "videos", "extracted", "skipped", "dim", "layers", "time step (s)", "window (s)",
         "pooling", "rows per split"], rows, digits)


def render(reports_dir: Path, digits: int = 2) -> str:
    """Pretraining and extraction tables, or "" when neither stage wrote metrics."""
    metrics_dir = Path(reports_dir) / "metrics"
    return "\n\n".join(p for p in (_pretrain(metrics_dir, digits), _extraction(metrics_dir, digits)) if p)
