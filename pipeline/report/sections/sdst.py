"""Report section for SDST (thesis Ch. 4), built only from the metrics files under ``reports/metrics/sdst/``.

* ``<dataset>/<variant>.json`` (stage ``sdst_evaluate``) → one results table per dataset (MR R1@0.5/0.7,
  mAP@0.5/0.75/avg; HD mAP/HIT@1 when the dataset has saliency), each cell the mean ± std over the file's
  ``seeds`` (``metrics`` / ``metrics_std``; a file without ``metrics_std`` shows the mean alone);
* the K sweep (thesis Fig. 4.4): variants without model overrides, grouped by their number of levels —
  intermediate layers (red curve) vs last layer only (blue curve) — as a table and a mermaid line chart;
* Tab 4.14: MR mAP by GT-window length (``MR-mAP-short`` / ``-middle`` / ``-long`` of the same files) per
  variant, next to the thesis' rows;
* the ablation tables (Tab 4.8's R2-Tuning baseline, Tab 4.12, 4.15, 4.16, 4.18): the same files, one row per
  variant of :data:`ABLATIONS` that has run, next to the thesis' numbers; a table whose only run is the
  reference ``sdst`` is left out (each variant runs by a README ``dvc exp run -S`` recipe);
* Fig 4.5: the ``sampling_offsets`` of the same files (per level and head, the weighted offset Σ_p A·Δ
  averaged over queries) drawn into ``figures/sdst/offsets_<dataset>.png`` and embedded;
* ``efficiency/<variant>.json`` (stage ``sdst_efficiency``) → the Tab 4.19-style efficiency table with the
  thesis' parameter count each row compares with (4.10 M shared, 12.43 M unshared; Tab 4.8's 2.70 M
  "w/o tuning" is R2-Tuning's own count, shown beside SDST's own K = 1 count).
"""
from __future__ import annotations

from pathlib import Path

from models.sdst_budget import THESIS_SHARED_M, THESIS_UNSHARED_M, THESIS_WO_TUNING_M
from pipeline.report.sections.tables import fmt, load_metrics, markdown_table, save_figure

MR_KEYS = ["MR-R1@0.5", "MR-R1@0.7", "MR-mAP@0.5", "MR-mAP@0.75", "MR-mAP"]
HD_KEYS = ["HD-mAP", "HD-HIT@1"]
LENGTH_KEYS = ["MR-mAP-short", "MR-mAP-middle", "MR-mAP-long", "MR-mAP"]
# Tab 4.14 (QVHighlights val): mAP short / middle / long / all
THESIS_TAB_4_14 = {"Stand. CA": (3.31, 45.92, 51.17, 42.72), "Def. CA": (17.64, 57.68, 56.92, 54.27),
                   "RDSA (ours)": (18.38, 58.15, 59.76, 55.60)}


# (title, [(variant, thesis row: R1@0.7, MR mAP, HD mAP or None)], note). The reference row "sdst" is the
# thesis' "Ours" (73.68 / 60.90 R1@0.5/0.7, 55.60 mAP, 44.00 HD mAP).
_OURS = (60.90, 55.60, 44.00)
ABLATIONS = [
    ("R2-Tuning on the same features (thesis Tab 4.8)",
     [("r2tuning", None), ("wo_tuning", None), ("sdst", None)],
     "R2-Tuning (models/r2tuning.py) is trained and evaluated by the sdst stages on the same features; the "
     "thesis' Tab 4.8 row is R2-Tuning's published CLIP result (2.70 M params), not a rerun on InternVideo2."),
    ("Attention strategy and decoder-query initialisation (thesis Tab 4.12)",
     [("standard_ca", (51.74, 42.72, 43.16)), ("deformable_ca", (58.19, 54.27, 43.26)),
      ("def_ca_pure", (57.87, 52.92, 43.19)), ("def_ca_mixed", (58.71, 54.94, 43.10)), ("sdst", _OURS)],
     "PureInit / MixedInit: DINO's query selection from the first-level dense tokens (references and latents "
     "/ references only), sdst.model.query_init."),
    ("Sparse-stream module removal (thesis Tab 4.15)",
     [("wo_ca", (57.74, 54.47, 43.53)), ("wo_sa", (58.71, 54.32, 43.28)), ("wo_rdsa", (30.71, 29.09, 43.58)),
      ("wo_ffn", (59.29, 55.72, 43.85)), ("sdst", _OURS)],
     "The thesis' tick marks did not survive extraction; rows are assigned from its text (CA matters for R1, SA "
     "for mAP, RDSA is critical, the FFN matters least), sdst.model.sparse_order."),
    ("Conditioning signal of the sparse stream (thesis Tab 4.16)",
     [("cond_raw", (56.37, 50.74, 44.13)), ("cond_ca", (58.39, 54.83, 43.64)),
      ("cond_ca_sa", (58.32, 54.94, 43.78)), ("sdst", _OURS)],
     "What the sparse video attention reads: V, the dense stream after CA / CA+SA, or after the FFN (D); "
     "sdst.model.sparse_condition."),
    ("Sparse-stream module order (thesis Tab 4.18)",
     [("perm_sa_ca_def", (56.13, 53.81, 43.36)), ("perm_sa_def_ca", (57.29, 53.74, 43.06)),
      ("perm_def_sa_ca", (57.61, 53.91, 43.16)), ("perm_def_ca_sa", (58.71, 54.98, 44.04)),
      ("perm_ca_def_sa", (59.42, 54.94, 43.46)), ("sdst", _OURS)],
     "sdst.model.sparse_order; the FFN stays last, as in the thesis."),
]
ABLATION_KEYS = ["MR-R1@0.5", "MR-R1@0.7", "MR-mAP", "HD-mAP", "HD-HIT@1"]


def _ablation_tables(rows: list[dict]) -> list[str]:
    """One markdown block per :data:`ABLATIONS` table with at least one run besides ``sdst`` (empty list if
    none ran); missing metrics are "—", never NaN."""
    by_variant = {r["variant"]: r for r in rows}
    blocks = []
    for title, spec, note in ABLATIONS:
        present = [(v, thesis) for v, thesis in spec if v in by_variant]
        if not any(v != "sdst" for v, _ in present):
            continue
        keys = [k for k in ABLATION_KEYS if any(k in by_variant[v]["metrics"] for v, _ in present)]
        header = ["variant", "params"] + keys + ["thesis R1@0.7 / mAP / HD mAP"]
        body = []
        for v, thesis in present:
            r = by_variant[v]
            ref = " / ".join(f"{x:.2f}" for x in thesis) if thesis else "—"
            body.append([f"{r.get('label', v)} (`{v}`)", r.get("trainable_params")] + [_pm(r, k) for k in keys]
                        + [ref])
        blocks.append(f"{title} (mean ± std over seeds):\n\n{markdown_table(header, body)}\n\n{note}")
    return blocks


def _offsets_figure(reports_dir: Path, dataset: str, rows: list[dict]) -> str:
    """Fig 4.5: the per-level, per-head weighted sampling offsets of every variant that has them, drawn into
    ``figures/sdst/offsets_<dataset>.png``; returns the markdown that embeds it ("" when none has offsets)."""
    rows = [r for r in rows if (r.get("sampling_offsets") or {}).get("mean")]
    if not rows:
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(4, len(rows))
    grid = -(-len(rows) // cols)
    fig, axes = plt.subplots(grid, cols, figsize=(3.6 * cols, 2.8 * grid), squeeze=False)
    flat = [ax for line in axes for ax in line]
    for ax in flat[len(rows):]:
        ax.axis("off")
    for ax, r in zip(flat, rows):
        off = r["sampling_offsets"]
        mean, spread = off["mean"], off.get("std_over_queries")
        levels = list(range(1, len(mean) + 1))
        for h in range(len(mean[0])):
            ys = [lvl[h] for lvl in mean]
            ax.plot(levels, ys, marker="o", linewidth=1, label=f"head {h}")
            if spread:
                sd = [lvl[h] for lvl in spread]
                ax.fill_between(levels, [y - e for y, e in zip(ys, sd)], [y + e for y, e in zip(ys, sd)], alpha=0.1)
        for y in (-1, 1):
            ax.axhline(y, color="grey", linestyle="--", linewidth=0.8)
        ax.set_xticks(levels)
        ax.set_xlabel("refinement level")
        ax.set_title(r.get("label", r["variant"]), fontsize=9)
    for line in axes:
        line[0].set_ylabel("Σ A·Δ (±1 = boundaries)")
    flat[0].legend(fontsize=6, loc="best", ncol=2)
    out = Path(reports_dir) / "figures" / "sdst" / f"offsets_{dataset}.png"
    save_figure(fig, out)
    return f"![weighted sampling offsets per head and level, {dataset}](figures/sdst/offsets_{dataset}.png)"


def _results(metrics_dir: Path) -> dict[str, list[dict]]:
    by_ds: dict[str, list[dict]] = {}
    for path in sorted(metrics_dir.glob("*/*.json")):
        if path.parent.name == "efficiency":
            continue
        data = load_metrics(path)
        if "metrics" in data and "variant" in data:
            by_ds.setdefault(data.get("dataset", path.parent.name), []).append(data)
    return by_ds


def _pm(row: dict, key: str) -> str:
    """``mean ± std`` of one metric of a results file (the mean alone without ``metrics_std``)."""
    mean = row["metrics"].get(key)
    std = (row.get("metrics_std") or {}).get(key)
    if mean is None:
        return fmt(None)
    return fmt(float(mean)) + ("" if std is None else f" ± {fmt(float(std))}")


def _results_table(rows: list[dict]) -> str:
    has_hd = any("HD-mAP" in r["metrics"] for r in rows)
    keys = MR_KEYS + (HD_KEYS if has_hd else [])
    header = ["variant", "levels", "video layers", "params", "seeds"] + keys
    body = [[r.get("label", r["variant"]), r.get("levels"), ",".join(map(str, r.get("video_layers", []))),
             r.get("trainable_params"), len(r.get("seeds") or [r.get("seed")])] + [_pm(r, k) for k in keys]
            for r in rows]
    return markdown_table(header, body)


def _length_table(rows: list[dict]) -> str:
    """Tab 4.14: MR mAP per GT-length bucket for every variant whose file has the buckets ("" if none has)."""
    rows = [r for r in rows if any(k in r["metrics"] for k in LENGTH_KEYS[:3])]
    if not rows:
        return ""
    header = ["variant", "attention", "mAP short (≤ 10 s)", "mAP middle (10–30 s)", "mAP long (> 30 s)", "mAP"]
    body = [[r.get("label", r["variant"]), r.get("attention")] + [_pm(r, k) for k in LENGTH_KEYS] for r in rows]
    thesis = "; ".join(f"{name} {' / '.join(f'{v:.2f}' for v in vals)}" for name, vals in THESIS_TAB_4_14.items())
    return (markdown_table(header, body) + "\n\nThesis Tab 4.14 (QVHighlights val, short / middle / long / all): "
            + thesis + ". — = no GT window of that length in the split.")


def _k_sweep(rows: list[dict]) -> str:
    curves: dict[str, dict[int, dict]] = {"intermediate layers": {}, "last layer only": {}}
    for r in rows:
        if r.get("model_overrides") or "levels" not in r:
            continue
        name = "last layer only" if r.get("last_layer_only") else "intermediate layers"
        curves[name][int(r["levels"])] = r["metrics"]
    # K = 1 is the same model in both curves (one level on the last layer)
    if 1 in curves["intermediate layers"]:
        curves["last layer only"].setdefault(1, curves["intermediate layers"][1])
    ks = sorted(set(curves["intermediate layers"]) | set(curves["last layer only"]))
    if len(ks) < 2:
        return ""
    table_rows = []
    for k in ks:
        row = [k]
        for name in curves:
            m = curves[name].get(k, {})
            row += [m.get("MR-mAP"), m.get("HD-mAP")]
        table_rows.append(row)
    header = ["K", "MR mAP (intermediate)", "HD mAP (intermediate)", "MR mAP (last only)", "HD mAP (last only)"]
    # (means over seeds; the results table above has their std)
    lines = [markdown_table(header, table_rows), "", "```mermaid", "xychart-beta",
             '    title "MR mAP vs number of refinement levels K (intermediate layers, then last layer only)"',
             f"    x-axis [{', '.join(str(k) for k in ks)}]", '    y-axis "MR mAP"']
    for name in curves:
        vals = [curves[name].get(k, {}).get("MR-mAP") for k in ks]
        if all(v is not None for v in vals) and len(curves[name]) >= 2:
            lines.append(f"    line [{', '.join(fmt(float(v)) for v in vals)}]")
    lines.append("```")
    return "\n".join(lines)


def _thesis_params(e: dict) -> str:
    """The thesis' parameter count an efficiency row compares with ("—" where the thesis gives none)."""
    if e.get("architecture") == "r2tuning":
        return f"{THESIS_WO_TUNING_M:.2f} (R2-Tuning, at CLIP ViT-B/32 dims)"
    if e.get("levels") == 1:
        return f"{THESIS_WO_TUNING_M:.2f} (R2-Tuning's count)"
    if e.get("levels") != 4 or e.get("attention", "rdsa") != "rdsa":
        return "—"
    return f"{THESIS_UNSHARED_M:.2f}" if e.get("shared") is False else f"{THESIS_SHARED_M:.2f}"


def _efficiency(metrics_dir: Path) -> str:
    rows, wo_tuning = [], []
    for path in sorted((metrics_dir / "efficiency").glob("*.json")):
        e = load_metrics(path)
        rows.append([e.get("label", e.get("variant")), e.get("trainable_params"), e.get("trainable_params_M"),
                     e.get("trainable_params_Mi"), _thesis_params(e), e.get("peak_train_memory_gb"),
                     e.get("memory_kind"), e.get("iters_per_sec"), e.get("batch_size"), e.get("device")])
        if e.get("levels") == 1 and e.get("trainable_params") is not None:
            wo_tuning.append(f"{e.get('label', e.get('variant'))} {e['trainable_params'] / 1e6:.2f} M")
    if not rows:
        return ""
    header = ["variant", "trainable params", "params (10^6)", "params (2^20)", "thesis (M)",
              "peak train memory (GB)", "memory measured as", "it/s", "batch", "device"]
    own = ", ".join(wo_tuning) if wo_tuning else "not measured in this run"
    return markdown_table(header, rows, digits=3) + (
        f"\n\nThesis Tab 4.19: SDST 4.1 M params, 3.4 GB, 4.16 it/s at batch 32 (RTX 6000, fp16); Tab 4.17: "
        f"{THESIS_SHARED_M:.2f} M shared, {THESIS_UNSHARED_M:.2f} M unshared. Tab 4.8's w/o tuning "
        f"{THESIS_WO_TUNING_M:.2f} M is R2-Tuning's own count (a different model; its R2-Tuning row has the same "
        f"figure), not SDST's: SDST's own w/o-tuning count (K = 1, the same network minus 3 gates): {own}.")


def render(reports_dir: Path) -> str:
    """The SDST section as markdown ("" when no SDST metrics exist)."""
    metrics_dir = Path(reports_dir) / "metrics" / "sdst"
    if not metrics_dir.exists():
        return ""
    parts = []
    for ds, rows in _results(metrics_dir).items():
        rows = sorted(rows, key=lambda r: (r.get("model_overrides") != {}, r.get("last_layer_only", False),
                                           -int(r.get("levels", 0)), r["variant"]))
        parts += [f"**{ds}** (evaluation split; QVHighlights metrics, HD at VeryGood; mean ± std over seeds):", "",
                  _results_table(rows)]
        lengths = _length_table(rows)
        if lengths:
            parts += ["", f"MR mAP by moment length on {ds} (thesis Tab 4.14; mean ± std over seeds):", "", lengths]
        sweep = _k_sweep(rows)
        if sweep:
            parts += ["", f"K sweep on {ds} (thesis Fig. 4.4):", "", sweep]
        for block in _ablation_tables(rows):
            parts += ["", f"**{ds}** — {block}"]
        figure = _offsets_figure(reports_dir, ds, rows)
        if figure:
            parts += ["", f"Learned sampling offsets on {ds} (thesis Fig. 4.5: per head, the attention-weighted "
                      "offset averaged over the decoder queries and the evaluation queries, mean over seeds; the "
                      "band is ± the std over queries; −1 / +1 are the reference's boundaries; heads are "
                      "initialised alternately towards the left / right boundary):", "", figure]
        parts.append("")
    eff = _efficiency(metrics_dir)
    if eff:
        parts += ["**Efficiency** (thesis Tab 4.19; real dims, random inputs):", "", eff]
    return "\n".join(parts).strip()
