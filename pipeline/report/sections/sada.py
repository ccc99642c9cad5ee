"""Report section for SADA (thesis Ch. 2), built only from files the SADA stages wrote under ``reports/``.

* ``metrics/sada/<scenario>/<variant>.json`` (stage ``sada_evaluate``) →
  - per scenario, a Tab 2.4-style table: target-domain mAP at tIoU 0.1…0.5 and the average (mean ± std over
    seeds), with the source-domain average as the in-domain reference (the gap is the domain shift);
  - the Tab 2.7-style ablation: Local / Global / Bkg switches with mAP {10, 30, 50} and the average;
  - Tab 2.4 (ActionFormer / TriDet ± SADA), Tab 2.6 (DANN / WDGRL / MSTN / SADA), Tab 2.8 (``target_bkg_masked``: background anchors masked at
    inference) and Tab 2.10 (``class_embed`` variants), each from whatever variants ran, or the ``dvc exp run``
    recipe that fills it;
  - per-class AP (Tab 2.11/2.12) and the anchor-mixing statistic (kNN neighbours from the other domain,
    relative to chance);
* ``plots/sada/<scenario>/<variant>/tsne.json`` → one figure per scenario, t-SNE of source (red) and target
  (blue) anchors per class and background, one row per variant (Fig. 2.11), saved as
  ``figures/sada/tsne_<scenario>.png`` next to the report.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.report.sections.tables import fmt, load_metrics, markdown_table, save_figure

ORDER = ["source_only", "global", "bkg", "global_bkg", "local", "local_global", "sada",  # Tab 2.7 row order
         "sada_onehot", "sada_random", "sada_sinusoidal", "actionformer", "actionformer_sada", "mstn", "wdgrl"]
TAB27_TERMS = {"local", "global", "bkg"}  # Tab 2.7's switches; other terms are Tab 2.6 baselines
DA_METHODS = ["global", "wdgrl", "mstn", "sada"]  # Tab 2.6 rows that exist here, in the thesis' order
EMBED_LABELS = {"onehot": "One-hot", "random": "Random emb", "sinusoidal": "Sinusoidal [68]", "learnable": "Learnable"}
RECIPES = {  # the run that fills a table whose metrics are absent (README "Experiments and comparisons")
    "2.4": "dvc exp run -S 'sada.variants=[source_only,global,sada,actionformer,actionformer_sada]'",
    "2.8": "dvc exp run -S sada.eval.mask_bkg=true   (on by default; source_only and sada variants)",
    "2.10": "dvc exp run -S 'sada.variants=[source_only,global,sada,sada_onehot,sada_random,sada_sinusoidal]'",
    "2.6": "dvc exp run -S 'sada.variants=[source_only,global,sada,mstn,wdgrl]'",
}
TAB_KEYS = ["0.1", "0.2", "0.3", "0.4", "0.5"]


def variant_rank(name: str) -> tuple[int, str]:
    """Sort key: the thesis Tab 2.7 row order, unknown variants last by name."""
    return (ORDER.index(name) if name in ORDER else len(ORDER), name)


def _load(metrics_dir: Path) -> dict[str, list[dict]]:
    by_scenario: dict[str, list[dict]] = {}
    for path in sorted(metrics_dir.glob("*/*.json")):
        data = load_metrics(path)
        if isinstance(data, dict) and "target" in data and "variant" in data:
            by_scenario.setdefault(path.parent.name, []).append(data)
    for rows in by_scenario.values():
        rows.sort(key=lambda r: variant_rank(r["variant"]))
    return by_scenario


def _pm(mean, std) -> str:
    return "—" if mean is None else f"{fmt(float(mean))} ± {fmt(float(std or 0.0))}"


def _thr(metrics: dict, key: str):
    """The mAP at tIoU ``key`` ("0.3" matches the evaluator's 0.30000000000000004 key)."""
    for k, v in metrics.get("mAP", {}).items():
        if abs(float(k) - float(key)) < 1e-6:
            return v
    return None


def _main_table(rows: list[dict]) -> str:
    header = ["variant", "seeds"] + [f"mAP@{k}" for k in TAB_KEYS] + ["Avg (target)", "Avg (source, in-domain)"]
    body = []
    for r in rows:
        t, s = r["target"], r.get("source") or {}
        body.append([r.get("label", r["variant"]), len(r.get("seeds", []))] + [_thr(t, k) for k in TAB_KEYS]
                    + [_pm(t.get("avg"), t.get("avg_std")), _pm(s.get("avg"), s.get("avg_std"))])
    return markdown_table(header, body)


def _ablation_table(rows: list[dict]) -> str:
    header = ["Local", "Global", "Bkg", "variant", "mAP@0.1", "mAP@0.3", "mAP@0.5", "Avg"]
    body = []
    for r in rows:  # Tab 2.7 = the TriDet base with learnable class embeddings
        if (r.get("detector", "tridet") != "tridet" or r.get("class_embed", "learnable") != "learnable"
                or not set(r.get("align", [])) <= TAB27_TERMS):
            continue
        align = set(r.get("align", []))
        t = r["target"]
        body.append(["✓" if "local" in align else "", "✓" if "global" in align else "",
                     "✓" if "bkg" in align else "", r.get("label", r["variant"]), _thr(t, "0.1"), _thr(t, "0.3"),
                     _thr(t, "0.5"), _pm(t.get("avg"), t.get("avg_std"))])
    return markdown_table(header, body)


def _is_sada(r: dict) -> bool:
    return set(r.get("align", [])) == {"local", "bkg"}


def _detector_table(rows: list[dict]) -> str:
    """Tab 2.4: each base detector source-only and + SADA (learnable embeddings); "" without ActionFormer rows."""
    if not any(r.get("detector") == "actionformer" for r in rows):
        return ""
    keep = [r for r in rows if r.get("class_embed", "learnable") == "learnable" and (not r.get("align") or _is_sada(r))]
    keep.sort(key=lambda r: (r.get("detector", "tridet") != "actionformer", bool(r.get("align"))))
    header = ["detector", "SADA"] + [f"mAP@{k}" for k in TAB_KEYS] + ["Avg"]
    body = [[r.get("detector", "tridet"), "✓" if r.get("align") else "", *[_thr(r["target"], k) for k in TAB_KEYS],
             _pm(r["target"].get("avg"), r["target"].get("avg_std"))] for r in keep]
    return markdown_table(header, body)


def _bkg_mask_table(rows: list[dict]) -> str:
    """Tab 2.8: the same models with and without the background anchors masked at inference; "" if none."""
    body = []
    for r in rows:
        masked = r.get("target_bkg_masked")
        if not masked or r.get("detector", "tridet") != "tridet" or r.get("class_embed", "learnable") != "learnable":
            continue
        t = r["target"]
        gap = None if masked.get("avg") is None or t.get("avg") is None else float(masked["avg"]) - float(t["avg"])
        label = r.get("label", r["variant"])
        body.append([label, "", _thr(t, "0.1"), _thr(t, "0.3"), _thr(t, "0.5"), _pm(t.get("avg"), t.get("avg_std")), "—"])
        body.append([label, "✓", _thr(masked, "0.1"), _thr(masked, "0.3"), _thr(masked, "0.5"),
                     _pm(masked.get("avg"), masked.get("avg_std")), gap])
    if not body:
        return ""
    return markdown_table(["variant", "mask bkg anchors", "mAP@0.1", "mAP@0.3", "mAP@0.5", "Avg", "Perf. gap"], body)


def _class_embed_table(rows: list[dict]) -> str:
    """Tab 2.10: SADA (TriDet) with each class embedding; "" unless a non-learnable one was run."""
    keep = [r for r in rows if _is_sada(r) and r.get("detector", "tridet") == "tridet"]
    if not any(r.get("class_embed", "learnable") != "learnable" for r in keep):
        return ""
    order = list(EMBED_LABELS)
    keep.sort(key=lambda r: order.index(r.get("class_embed", "learnable")))
    body = [[EMBED_LABELS[r.get("class_embed", "learnable")], *[_thr(r["target"], k) for k in TAB_KEYS],
             _pm(r["target"].get("avg"), r["target"].get("avg_std"))] for r in keep]
    return markdown_table(["class embedding e_i"] + [f"mAP@{k}" for k in TAB_KEYS] + ["Avg"], body)


def _da_methods_table(rows: list[dict]) -> str:
    """Tab 2.6: DANN, WDGRL, MSTN and SADA on the same TriDet anchors; "" unless MSTN or WDGRL ran."""
    by_name = {r["variant"]: r for r in rows}
    if not {"mstn", "wdgrl"} & set(by_name):
        return ""
    body = [[by_name[n].get("label", n), _thr(by_name[n]["target"], "0.1"), _thr(by_name[n]["target"], "0.3"),
             _thr(by_name[n]["target"], "0.5"), _pm(by_name[n]["target"].get("avg"), by_name[n]["target"].get("avg_std"))]
            for n in DA_METHODS if n in by_name]
    return markdown_table(["method", "mAP@0.1", "mAP@0.3", "mAP@0.5", "Avg"], body)


def _optional_tables(rows: list[dict]) -> list[str]:
    """Tab 2.4 / 2.8 / 2.10 blocks: the table when its metrics exist, else the recipe that fills it."""
    parts: list[str] = []
    for tab, title, table in (
        ("2.4", "Base detectors ± SADA, target mAP (%) (thesis Tab. 2.4):", _detector_table(rows)),
        ("2.6", "Other UDA methods on the same anchors (thesis Tab. 2.6; DANN = global, MSTN = DANN + moving "
                "class centroids, WDGRL = Wasserstein critic):", _da_methods_table(rows)),
        ("2.8", "Background anchors masked at inference (an oracle: the target GT picks the anchors; thesis "
                "Tab. 2.8); Perf. gap = masked − unmasked Avg:", _bkg_mask_table(rows)),
        ("2.10", "Class embedding e_i of the SADA discriminator (thesis Tab. 2.10):", _class_embed_table(rows)),
    ):
        parts += ["", title, "", table if table else f"(no metrics yet: `{RECIPES[tab]}` fills it)"]
    return parts


def _per_class_table(rows: list[dict]) -> str:
    classes: list[str] = []
    for r in rows:
        classes += [c for c in r["target"].get("per_class", {}) if c not in classes]
    if not classes:
        return ""
    body = [[r.get("label", r["variant"])] + [r["target"].get("per_class", {}).get(c) for c in classes] for r in rows]
    return markdown_table(["variant"] + classes, body)


def _alignment_table(rows: list[dict]) -> str:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r.get("alignment", {}) if k not in keys]
    if not keys:
        return ""
    keys = [k for k in keys if k not in ("background", "all_actions")] + [k for k in ("all_actions", "background") if k in keys]
    body = [[r.get("label", r["variant"])] + [r.get("alignment", {}).get(k) for k in keys] for r in rows]
    return markdown_table(["variant"] + keys, body)


def _tsne_figure(reports_dir: Path, scenario: str) -> str:
    """Draw the scenario's t-SNE panels (one row per variant) and return the markdown image link."""
    files = sorted((reports_dir / "plots" / "sada" / scenario).glob("*/tsne.json"),
                   key=lambda p: variant_rank(p.parent.name))
    data = [load_metrics(p) for p in files]
    data = [d for d in data if d.get("panels")]
    if not data:
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = max(len(d["panels"]) for d in data)
    fig, axes = plt.subplots(len(data), cols, figsize=(3 * cols, 3 * len(data)), squeeze=False)
    for i, d in enumerate(data):
        for j in range(cols):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(d["panels"]):
                ax.axis("off")
                continue
            panel = d["panels"][j]
            for dom, colour, name in ((0, "tab:red", "source"), (1, "tab:blue", "target")):
                idx = [k for k, v in enumerate(panel["domain"]) if v == dom]
                ax.scatter([panel["x"][k] for k in idx], [panel["y"][k] for k in idx], s=5, c=colour, alpha=0.6,
                           label=name)
            ax.set_title(f"{d.get('label', d['variant'])}: {panel['class']}", fontsize=8)
    axes[0][0].legend(fontsize=7, loc="best")
    out = reports_dir / "figures" / "sada" / f"tsne_{scenario}.png"
    save_figure(fig, out)
    return f"![t-SNE of anchor embeddings, {scenario}](figures/sada/tsne_{scenario}.png)"


def render(reports_dir: Path) -> str:
    """The SADA section as markdown ("" when no SADA metrics exist)."""
    reports_dir = Path(reports_dir)
    metrics_dir = reports_dir / "metrics" / "sada"
    if not metrics_dir.exists():
        return ""
    parts = []
    for scenario, rows in _load(metrics_dir).items():
        intro = ("Target-domain mAP (%) on the evaluation split, mean over seeds (thesis Tab. 2.4); the last column "
                 "is the same models on the source domain's evaluation videos:")
        parts += [f"### Scenario {scenario}", "", intro, "", _main_table(rows), "",
                  "Ablation of the alignment terms (thesis Tab. 2.7):", "", _ablation_table(rows)]
        parts += _optional_tables(rows)
        per_class = _per_class_table(rows)
        if per_class:
            parts += ["", "Per-class target AP (%), averaged over tIoU 0.1–0.5 (thesis Tab. 2.11/2.12):", "", per_class]
        mixing = _alignment_table(rows)
        if mixing:
            note = ("Anchor mixing (first seed, evaluation videos, GT-assigned classes): share of each anchor's "
                    "10 nearest neighbours from the other domain relative to chance (1 = fully mixed, 0 = separated):")
            parts += ["", note, "", mixing]
        figure = _tsne_figure(reports_dir, scenario)
        if figure:
            note = ("t-SNE of source (red) and target (blue) anchor embeddings per class and background "
                    "(thesis Fig. 2.11):")
            parts += ["", note, "", figure]
        parts.append("")
    return "\n".join(parts).strip()
