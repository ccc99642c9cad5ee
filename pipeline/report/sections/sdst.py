"""Report section for SDST (thesis Ch. 4), built only from the metrics files under ``reports/metrics/sdst/``.

* ``<dataset>/<variant>.json`` (stage ``sdst_evaluate``) → one results table per dataset (MR R1@0.5/0.7,
  mAP@0.5/0.75/avg; HD mAP/HIT@1 when the dataset has saliency), each cell the mean ± std over the file's
  ``seeds`` (``metrics`` / ``metrics_std``; a file without ``metrics_std`` shows the mean alone);
* the K sweep (thesis Fig. 4.4): variants without model overrides, grouped by their number of levels —
  intermediate layers (red curve) vs last layer only (blue curve) — as a table and a mermaid line chart;
* Tab 4.14: MR mAP by GT-window length (``MR-mAP-short`` / ``-middle`` / ``-long`` of the same files) per
  variant, next to the thesis' rows;
* ``efficiency/<variant>.json`` (stage ``sdst_efficiency``) → the Tab 4.19-style efficiency table with the
  thesis' parameter count each row compares with (4.10 M shared, 12.43 M unshared; Tab 4.8's 2.70 M
  "w/o tuning" is R2-Tuning's own count, shown beside SDST's own K = 1 count).
"""
from __future__ import annotations

from pathlib import Path

from models.sdst_budget import THESIS_SHARED_M, THESIS_UNSHARED_M, THESIS_WO_TUNING_M
from pipeline.report.sections.tables import fmt, load_metrics, markdown_table

MR_KEYS = ["MR-R1@0.5", "MR-R1@0.7", "MR-mAP@0.5", "MR-mAP@0.75", "MR-mAP"]
HD_KEYS = ["HD-mAP", "HD-HIT@1"]
LENGTH_KEYS = ["MR-mAP-short", "MR-mAP-middle", "MR-mAP-long", "MR-mAP"]
# Tab 4.14 (QVHighlights val): mAP short / middle / long / all
THESIS_TAB_4_14 = {"Stand. CA": (3.31, 45.92, 51.17, 42.72), "Def. CA": (17.64, 57.68, 56.92, 54.27),
                   "RDSA (ours)": (18.38, 58.15, 59.76, 55.60)}


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
        parts.append("")
    eff = _efficiency(metrics_dir)
    if eff:
        parts += ["**Efficiency** (thesis Tab 4.19; real dims, random inputs):", "", eff]
    return "\n".join(parts).strip()
