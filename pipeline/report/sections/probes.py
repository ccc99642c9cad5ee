"""Report section "Are the features informative?": linear probes of every extracted (dataset, backbone).

Reads ``reports/metrics/probes/<dataset>-<backbone>.json`` (written by ``probe_features``): one table per file,
metrics as rows, the extracted ("pretrained") and random-init arms side by side, the majority-class baseline
of each accuracy as a column (it depends only on the labels, so it is the same for both arms).
"""
from __future__ import annotations

from pathlib import Path

from pipeline.report.sections.tables import load_metrics, markdown_table

# (metric key, its majority-baseline key or None, row label)
ROWS = [
    ("verb_acc", "majority_verb_acc", "verb accuracy (rows inside one event)"),
    ("event_acc", "majority_event_acc", "event vs idle accuracy"),
    ("retrieval_r1", None, "text → moment R@1"),
    ("retrieval_r5", None, "text → moment R@5"),
]


def _table(m: dict, digits: int = 3) -> str:
    pre, rnd = m.get("pretrained", {}), m.get("random_init", {})
    rows = []
    for key, base, label in ROWS:
        if key in pre or key in rnd:
            rows.append([label, pre.get(key), rnd.get(key), pre.get(base) if base else None])
    for name in sorted(set(pre.get("domain_acc", {})) | set(rnd.get("domain_acc", {}))):
        rows.append([f"domain accuracy, scenario {name} (source vs target)", pre.get("domain_acc", {}).get(name),
                     rnd.get("domain_acc", {}).get(name), pre.get("majority_domain_acc", {}).get(name)])
    first = "extracted (random init!)" if m.get("pretrained_is_random") else f"pretrained (`{m.get('checkpoint')}`)"
    table = markdown_table(["probe", first, "random init", "majority class"], rows, digits)
    v = m.get("videos", {}).get("pretrained", {})
    note = (f"Probes fitted on {v.get('train')} `{m.get('train_split')}` videos ({v.get('train_rows')} rows), scored "
            f"on {v.get('eval')} held-out `{m.get('eval_split')}` videos ({v.get('eval_rows')} rows); last stored "
            f"layer of {m.get('layers')}.")
    if "retrieval_candidates" in pre:
        note += (f" Retrieval ranks all {pre['retrieval_candidates']} held-out moments for each of "
                 f"{pre.get('retrieval_queries')} queries (chance R@1 ≈ {1 / max(1, pre['retrieval_candidates']):.3f}).")
    if m.get("pretrained_is_random"):
        note += " The container was extracted without a checkpoint, so both arms are random-init backbones."
    return table + "\n\n" + note


def render(reports_dir: Path) -> str:
    """Markdown of the probe section, or "" when no probe metrics exist."""
    parts = []
    for path in sorted((Path(reports_dir) / "metrics" / "probes").glob("*.json")):
        m = load_metrics(path)
        parts.append(f"### {m.get('dataset', path.stem)} / {m.get('backbone', '')}\n\n{_table(m)}")
    return "\n\n".join(parts)
