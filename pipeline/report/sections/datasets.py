"""Report section "Datasets": the synthetic worlds, dataset statistics (thesis Tab 2.1 / Tab 3.1 shape) and
ingest accounting.

Reads ``reports/metrics/synth/summary.json`` (``synth``: ``<world>_<field>`` keys),
``reports/metrics/ingest/<name>.json`` (bad-row summary written by ``ingest``) and
``reports/metrics/dataset_stats/<name>.json`` (written by ``dataset_stats``).
"""
from __future__ import annotations

from pathlib import Path

from pipeline.report.sections.tables import load_metrics, markdown_table


def _synth_table(metrics_dir: Path, digits: int = 2) -> str:
    """One row per synthetic world; columns are the summary's ``<world>_<field>`` fields in file order."""
    path = metrics_dir / "synth" / "summary.json"
    if not path.is_file():
        return ""
    m = load_metrics(path)
    worlds = [k[: -len("_videos")] for k in m if k.endswith("_videos")]
    fields: list[str] = []
    for world in worlds:
        fields += [k[len(world) + 1 :] for k in m if k.startswith(world + "_") and k[len(world) + 1 :] not in fields]
    rows = [[w, *[m.get(f"{w}_{f}") for f in fields]] for w in worlds]
    return ("### Synthetic worlds\n\nVideos the stage `synth` generated, per world (the datasets below are "
            "ingested from them):\n\n" + markdown_table(["world", *[f.replace("_", " ") for f in fields]], rows,
                                                          digits))


def _ingest_table(metrics_dir: Path) -> str:
    rows = []
    for path in sorted((metrics_dir / "ingest").glob("*.json")):
        m = load_metrics(path)
        mom = m.get("moments", {})
        bad = ", ".join(f"{cat} {v['count']}" for cat, v in sorted(m.get("bad", {}).items())) or "none"
        rows.append([path.stem, m.get("policy"), mom.get("read"), mom.get("kept"), mom.get("dropped"),
                     mom.get("filtered"), bad])
    if not rows:
        return ""
    return "### Ingest (bad rows per category)\n\n" + markdown_table(
        ["dataset", "policy", "moments read", "kept", "dropped", "filtered", "bad rows"], rows
    )


def _stats_table(metrics_dir: Path) -> str:
    rows, class_parts = [], []
    for path in sorted((metrics_dir / "dataset_stats").glob("*.json")):
        m = load_metrics(path)
        for split, s in sorted(m.get("splits", {}).items()):
            words = None
            if s.get("mean_query_words") is not None:
                words = f"{s['mean_query_words']:.2f} ± {s.get('std_query_words') or 0:.2f}"
            rows.append([m.get("dataset", path.stem), split, s.get("videos"), s.get("moments"), s.get("queries"),
                         s.get("mean_video_duration"), s.get("mean_moment_length"), words,
                         s.get("multi_query_pct")])
        classes = m.get("all", {}).get("classes") or {}
        if classes:
            class_parts.append(f"- `{m.get('dataset', path.stem)}`: " + ", ".join(f"{k} {v}" for k, v in classes.items()))
        for name, sc in sorted(m.get("scenarios", {}).items()):
            for role in ("source", "target"):
                for split, s in sorted(sc.get(role, {}).items()):
                    class_parts.append(
                        f"- scenario `{name}` {role} / {split}: {s['videos']} videos, {s['moments']} moments"
                    )
    if not rows:
        return ""
    out = "### Statistics\n\n" + markdown_table(
        ["dataset", "split", "videos", "moments", "queries", "mean video s", "mean moment s",
         "words / query", "% multi-moment queries"],
        rows,
    )
    if class_parts:
        out += "\n\nPer-class moment counts and scenario sizes (Tab 2.1 / 2.2):\n\n" + "\n".join(class_parts)
    return out


def render(reports_dir: Path, digits: int = 2) -> str:
    """Markdown of the dataset section, or "" when no dataset metrics exist."""
    metrics_dir = Path(reports_dir) / "metrics"
    return "\n\n".join(p for p in (_synth_table(metrics_dir, digits), _stats_table(metrics_dir),
                                   _ingest_table(metrics_dir)) if p)
