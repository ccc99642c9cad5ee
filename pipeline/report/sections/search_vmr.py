"""Report section for search-query VMR (thesis Ch. 3), from ``reports/metrics/search_vmr/<benchmark>/<variant>.json``
and ``reports/plots/search_vmr/<benchmark>/<variant>.json`` (written by ``pipeline.search_vmr.evaluate``).

Variants are recognised by the settings the evaluate stage echoes (``config``: self_attention, qd_rate,
num_queries, oracle), not by their names: the reference query count is the most common one, the reference QD
rate the most common positive one. Tables: Tab 3.2 (original and every level: base, -SA+QD, oracle), the
single/multi dissection (Fig. 3.6/3.8 as numbers), Tab 3.7 (-SA/+QD ablation), Tab 3.8 (QD rate), Tab 3.5-style
active-query statistics; when their variants have run, Tab 3.5 (matchers, augmentation), Tab 3.6 (matchers on
-SA+QD) and Tab 3.9 (calibration), told apart by the ``matcher`` / ``augment`` / ``actionness`` / ``label_loss``
settings (the plain tables ignore runs that set any). Figures (PNG under ``reports/figures/``): active queries vs moments (Fig. 3.7) and the
query-count sweep (Fig. 3.9), per-query regression quality vs confidence (Fig. 3.10). Ablations use level ``S2`` when present (the thesis' HD-EPIC-S2), else the
middle level.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.report.sections.tables import fmt, load_metrics, markdown_table, save_figure

METRICS = ("R_m", "mAP_m", "mAP")


def _load(reports_dir: Path) -> dict[str, list[dict]]:
    """``{benchmark: [{"name", "cfg", "metrics", "plot"}]}`` for every metrics file present."""
    root = reports_dir / "metrics" / "search_vmr"
    out: dict[str, list[dict]] = {}
    for path in sorted(root.glob("*/*.json")) if root.is_dir() else []:
        m = load_metrics(path)
        plot_path = reports_dir / "plots" / "search_vmr" / path.parent.name / path.name
        plot = load_metrics(plot_path) if plot_path.exists() else []
        out.setdefault(path.parent.name, []).append({"name": path.stem, "cfg": m.get("config", {}), "metrics": m,
                                                     "plot": plot})
    return out


# Tab 3.5 / 3.6 / 3.9 switches and their defaults (older metrics files lack the keys: defaults)
SWITCHES = {"matcher": "one_to_one", "actionness": 0, "label_loss": "ce", "augment": 0.0}


def _switched(run: dict) -> dict:
    """The Tab 3.5 / 3.6 / 3.9 switches a run sets away from their defaults."""
    c = run["cfg"]
    return {k: c.get(k, d) for k, d in SWITCHES.items() if c.get(k, d) != d}


def _pick(runs: list[dict], **want: Any) -> dict | None:
    """The first run without Tab 3.5/3.6/3.9 switches whose config matches every ``want`` item (floats compared
    with a tolerance)."""
    for r in runs:
        if not _switched(r) and all(abs(float(r["cfg"].get(k, -1)) - float(v)) < 1e-9 for k, v in want.items()):
            return r
    return None


def _refs(runs: list[dict]) -> tuple[int, float]:
    nq = Counter(r["cfg"].get("num_queries") for r in runs).most_common()
    qd = Counter(r["cfg"].get("qd_rate") for r in runs if r["cfg"].get("qd_rate", 0) > 0).most_common()
    return (nq[0][0] if nq else 10), (qd[0][0] if qd else 0.25)


def _levels(runs: list[dict]) -> list[str]:
    return sorted({k for r in runs for k, v in r["metrics"].items() if isinstance(v, dict) and "search" in v})


def _pm(mean: Any, std: Any, digits: int = 2) -> Any:
    """``mean ± std`` (std over seeds) when the metrics file has a std, else the plain value."""
    if mean is None or std is None:
        return mean
    return f"{fmt(mean, digits)} ± {fmt(std, digits)}"


def _block_cells(block: dict | None, ious: list[str], metrics=METRICS, digits: int = 2) -> list:
    """One cell per (metric, IoU): the mean over seeds ± the std over seeds (``<metric>_std``)."""
    if not block:
        return [None] * (len(ious) * len(metrics))
    return [_pm(block.get(m, {}).get(t), block.get(f"{m}_std", {}).get(t), digits) for m in metrics for t in ious]


def _active(block: dict | None, digits: int) -> str:
    """#active decoder queries: mean over seeds ± std over seeds (older single-seed files: ± std over queries)."""
    a = (block or {}).get("active")
    if not a:
        return "—"
    std = (block.get("active_std") or {}).get("active_mean", a["active_std"])
    return f"{fmt(a['active_mean'], digits)} ± {fmt(std, digits)}"


def _ious(runs: list[dict]) -> list[str]:
    for r in runs:
        for v in r["metrics"].values():
            if isinstance(v, dict) and "R_m" in v:
                return list(v["R_m"])
            if isinstance(v, dict) and "search" in v:
                return list(v["search"]["all"]["R_m"])
    return []


def _figure_active_vs_moments(runs: list[tuple[str, dict]], level: str, path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    drawn = False
    for label, run in runs:
        rows = sorted((r for r in run["plot"] if r.get("level") == level), key=lambda r: r["moments"])
        if rows:
            ax.errorbar([r["moments"] for r in rows], [r["active_mean"] for r in rows], marker="o", label=label,
                        yerr=[r.get("active_mean_std", 0.0) for r in rows], capsize=3)  # std over seeds
            drawn = True
    if not drawn:
        plt.close(fig)
        return False
    ax.set_xlabel("moments per search query")
    ax.set_ylabel("active decoder queries")
    ax.set_title(f"Active queries vs moments ({level})")
    ax.legend()
    save_figure(fig, path)
    return True


def _figure_query_sweep(series: dict[str, list[tuple[int, float, float]]], level: str, iou: str, path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not any(len(v) > 1 for v in series.values()):
        return False
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.2))
    for label, pts in series.items():
        pts = sorted(pts)
        a1.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        a2.plot([p[0] for p in pts], [p[2] for p in pts], marker="o", label=label)
    a1.set_xlabel("decoder queries")
    a1.set_ylabel("active decoder queries")
    a2.set_xlabel("decoder queries")
    a2.set_ylabel(f"mAP_m@{iou} ({level}, search)")
    a1.legend()
    save_figure(fig, path)
    return True


def _stat_row(label: str, run: dict, level: str, ious: list[str], digits: int) -> list:
    """One Tab 3.5-layout row: R_m / mAP_m per IoU, #active, %match P, %match GT of ``level``'s search queries."""
    blk = run["metrics"][level]["search"]["all"]
    a = blk.get("active", {})
    return [label, *_block_cells(blk, ious, ("R_m", "mAP_m"), digits), _active(blk, digits), a.get("match_p_mean"),
            a.get("match_gt_mean")]


def _switch_tables(runs: list[dict], base: dict | None, ours: dict | None, nq: int, qd: float, level: str,
                   ious: list[str], digits: int) -> list[str]:
    """Tab 3.5 (matchers and augmentation on base), Tab 3.6 (matchers on -SA+QD) and Tab 3.9 (calibration),
    each only when one of its variants has run."""
    def rows_for(sa: int, q: float, keys: tuple[str, ...]) -> list[dict]:
        return [r for r in runs if r["cfg"].get("self_attention") == sa and abs(r["cfg"].get("qd_rate", 0) - q) < 1e-9
                and not r["cfg"].get("oracle") and r["cfg"].get("num_queries") == nq and level in r["metrics"]
                and _switched(r) and set(_switched(r)) <= set(keys)]

    head = ["Variant", *[f"{m}@{t}" for m in ("R_m", "mAP_m") for t in ious], "#active", "%match P", "%match GT"]
    out: list[str] = []
    tables = (
        ("Alternative ways to activate more decoder queries (Tab 3.5; matchers of `models/search_matchers.py`, "
         "data augmentation = GT windows copied elsewhere in the video)", rows_for(1, 0, ("matcher", "augment")),
         (("base", base), ("-SA+QD (ours)", ours))),
        ("1-to-1 matching and diversity (Tab 3.6; the matchers on -SA+QD)", rows_for(0, qd, ("matcher",)),
         (("-SA+QD (ours)", ours),)),
        ("Confidence calibration (Tab 3.9; +actionness = TadTR's IoU head, score × actionness; +SFL = focal label "
         "loss)", rows_for(1, 0, ("actionness", "label_loss")), (("base", base), ("-SA+QD (ours)", ours))),
    )
    for title, extra, refs in tables:
        if not extra:
            continue
        first = [(lbl, r) for lbl, r in refs[:1] if r and level in r["metrics"]]
        last = [(lbl, r) for lbl, r in refs[1:] if r and level in r["metrics"]]
        rows = [_stat_row(lbl, r, level, ious, digits)
                for lbl, r in [*first, *((r["cfg"].get("label", r["name"]), r) for r in extra), *last]]
        out += [f"**{title}**; {level} search queries.", "", markdown_table(head, rows, digits), ""]
    return out


def _calibration_figure(base: dict | None, ours: dict | None, level: str, path: Path, digits: int) -> list[str]:
    """Fig 3.10: per decoder-query index, the share of queries its window matches a GT (IoU ≥ 0.1) against its
    mean confidence, with the Pearson correlation per variant; empty without ``slot_quality`` in the metrics."""
    import numpy as np

    pts = []
    for label, run in (("base", base), ("-SA+QD", ours)):
        sq = ((run or {}).get("metrics", {}).get(level, {}).get("search", {}).get("all", {})).get("slot_quality")
        if sq and len(sq["match_ratio"]) > 1:
            pts.append((label, np.asarray(sq["confidence"]), np.asarray(sq["match_ratio"])))
    if not pts:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    rows = []
    for label, conf, ratio in pts:
        ax.scatter(conf, ratio, label=label)
        r = float(np.corrcoef(conf, ratio)[0, 1]) if conf.std() > 0 and ratio.std() > 0 else None
        rows.append([label, len(conf), r, float(conf.max()), float(ratio.max())])
    ax.set_xlabel("mean confidence of the decoder query")
    ax.set_ylabel("share of queries matched (IoU ≥ 0.1)")
    ax.set_title(f"Regression quality vs confidence ({level})")
    ax.legend()
    save_figure(fig, path)
    return [f"**Regression quality vs confidence per decoder query** (Fig. 3.10; {level} search queries; a high "
            "correlation means low-confidence queries really regress worse, i.e. calibration is not the problem).", "",
            markdown_table(["Variant", "decoder queries", "Pearson r", "max confidence", "max match share"], rows,
                           digits), "",
            f"![Per decoder query: match share vs confidence (thesis Fig. 3.10)](figures/{path.name})", ""]


def _base_model(run: dict) -> str:
    """The base model a run was trained with (older metrics files: the hybrid with uniform anchors)."""
    c = run["cfg"]
    arch = {"cgdetr": "CG-DETR", "hybrid": "hybrid"}.get(c.get("architecture", "hybrid"), c.get("architecture"))
    return f"{arch}, {c.get('anchor_init', 'uniform')} anchors"


def render_benchmark(name: str, runs: list[dict], reports_dir: Path, digits: int = 2) -> str:
    """Markdown for one benchmark's runs, one set of tables per base model (architecture × anchor init)."""
    groups: dict[str, list[dict]] = {}
    for r in runs:
        groups.setdefault(_base_model(r), []).append(r)
    parts = []
    for i, (model, group) in enumerate(sorted(groups.items(), key=lambda kv: not kv[0].startswith("CG-DETR, random"))):
        tag = name if i == 0 else f"{name}_{model.replace(', ', '_').replace(' ', '_').replace('-', '').lower()}"
        body = _render_group(name, tag, group, reports_dir, digits)
        if body:
            parts.append(body.replace(f"### {name}\n", f"### {name} — {model}\n", 1))
    return "\n\n".join(parts)


def _render_group(name: str, tag: str, runs: list[dict], reports_dir: Path, digits: int = 2) -> str:
    """Markdown for the runs of one base model (figures named by ``tag``)."""
    ious = _ious(runs)
    levels = _levels(runs)
    if not ious or not levels:
        return ""
    nq, qd = _refs(runs)
    base = _pick(runs, self_attention=1, qd_rate=0, oracle=0, num_queries=nq)
    ours = _pick(runs, self_attention=0, qd_rate=qd, oracle=0, num_queries=nq)
    oracle = _pick(runs, oracle=1, num_queries=nq)
    ab_level = "S2" if "S2" in levels else levels[len(levels) // 2]
    head = [f"{m}@{t}" for m in METRICS for t in ious]
    out = [f"### {name}", ""]

    # Tab 3.2
    rows = []
    for label, run in (("base", base), ("-SA+QD", ours)):
        if run and "original" in run["metrics"]:
            rows.append(["Original", label, *_block_cells(run["metrics"]["original"], ious, digits=digits)])
    for level in levels:
        for label, run in (("base", base), ("-SA+QD", ours), ("base (oracle)", oracle)):
            if run and level in run["metrics"]:
                rows.append([level, label, *_block_cells(run["metrics"][level]["search"]["all"], ious, digits=digits)])
    out += [f"**Caption-trained retrieval on search queries** (Tab 3.2 layout; {nq} queries, QD rate {qd}; "
            "oracle = trained on the level's search queries).", "",
            markdown_table(["Input", "Variant", *head], rows, digits), ""]

    # single / multi dissection (Fig 3.6 / 3.8 as numbers)
    t = "0.3" if "0.3" in ious else ious[0]
    rows = []
    for level in levels:
        for label, run in (("base", base), ("-SA+QD", ours)):
            if not run or level not in run["metrics"]:
                continue
            lv = run["metrics"][level]
            cells = []
            for qs in ("caption", "search"):
                for part in ("single", "multi"):
                    blk = lv.get(qs, {}).get(part)
                    cells += [_pm(blk["R_m"][t], blk.get("R_m_std", {}).get(t), digits) if blk else None,
                              _pm(blk["mAP_m"][t], blk.get("mAP_m_std", {}).get(t), digits) if blk else None]
            rows.append([level, label, *cells, _active(lv["search"]["multi"], digits)])
    head_sm = [f"{qs} {part} {m}@{t}" for qs in ("caption", "search") for part in ("single", "multi")
               for m in ("R_m", "mAP_m")]
    out += ["**Single vs multi-moment queries** (same moments with their captions vs the search query; thesis "
            "Fig. 3.6/3.8).", "", markdown_table(["Level", "Variant", *head_sm, "#active (multi)"], rows, digits), ""]

    # Tab 3.7 and Tab 3.5-style active statistics
    rows = []
    for sa, q in ((1, 0), (0, 0), (1, qd), (0, qd)):
        run = _pick(runs, self_attention=sa, qd_rate=q, oracle=0, num_queries=nq)
        if not run or ab_level not in run["metrics"]:
            continue
        blk = run["metrics"][ab_level]["search"]["all"]
        a = blk.get("active", {})
        rows.append(["" if sa else "✓", "✓" if q else "", *_block_cells(blk, ious, ("R_m", "mAP_m"), digits),
                     _active(blk, digits), a.get("match_p_mean"), a.get("match_gt_mean"),
                     (blk.get("slots") or {}).get("slots_used")])
    if rows:
        out += [f"**Ablation of -SA and +QD** (Tab 3.7 with Tab 3.5's active statistics; {ab_level} search queries; "
                "slots used = decoder-query indices active on ≥ 5 % of the queries, index collapse shows as few).",
                "", markdown_table(["-SA", "+QD", *[f"{m}@{t}" for m in ("R_m", "mAP_m") for t in ious],
                                    "#active", "%match P", "%match GT", "slots used"], rows, digits), ""]

    out += _switch_tables(runs, base, ours, nq, qd, ab_level, ious, digits)

    # Tab 3.8
    qd_runs = sorted((r for r in runs if r["cfg"].get("self_attention") == 0 and not r["cfg"].get("oracle")
                      and not _switched(r)
                      and r["cfg"].get("num_queries") == nq and ab_level in r["metrics"]),
                     key=lambda r: r["cfg"].get("qd_rate", 0))
    if len(qd_runs) > 1:
        rows = [[r["cfg"]["qd_rate"],
                 *_block_cells(r["metrics"][ab_level]["search"]["all"], ious, ("R_m", "mAP_m"), digits),
                 _active(r["metrics"][ab_level]["search"]["all"], digits)] for r in qd_runs]
        out += [f"**Query-dropout rate** (Tab 3.8; -SA models, {ab_level} search queries).", "",
                markdown_table(["QD rate", *[f"{m}@{t}" for m in ("R_m", "mAP_m") for t in ious], "#active"], rows,
                               digits), ""]

    # Fig 3.7, Fig 3.9 and Fig 3.10
    fig_dir = reports_dir / "figures"
    out += _calibration_figure(base, ours, ab_level, fig_dir / f"search_vmr_{tag}_slot_calibration.png", digits)
    fig1 = fig_dir / f"search_vmr_{tag}_active_vs_moments.png"
    pairs = [(lbl, r) for lbl, r in (("base", base), ("-SA+QD", ours)) if r]
    if _figure_active_vs_moments(pairs, ab_level, fig1):
        out += [f"![Active decoder queries vs moments per query ({ab_level}, thesis Fig. 3.7)](figures/{fig1.name})", ""]
    iou_sweep = "0.1" if "0.1" in ious else ious[0]
    series: dict[str, list] = {}
    sweep_rows = []
    for label, sa, q in (("base", 1, 0), ("-SA+QD", 0, qd)):
        for r in runs:
            c = r["cfg"]
            if c.get("oracle") or c.get("self_attention") != sa or abs(c.get("qd_rate", 0) - q) > 1e-9 \
                    or _switched(r):
                continue
            if ab_level not in r["metrics"]:
                continue
            blk = r["metrics"][ab_level]["search"]["all"]
            series.setdefault(label, []).append((c["num_queries"], blk["active"]["active_mean"],
                                                 blk["mAP_m"][iou_sweep]))
            sweep_rows.append([label, c["num_queries"], _active(blk, digits),
                               _pm(blk["mAP_m"][iou_sweep], blk.get("mAP_m_std", {}).get(iou_sweep), digits)])
    fig2 = fig_dir / f"search_vmr_{tag}_query_sweep.png"
    if _figure_query_sweep(series, ab_level, iou_sweep, fig2):
        sweep_rows.sort(key=lambda r: (r[0], r[1]))
        out += [f"**Number of decoder queries** (Fig. 3.9; {ab_level} search queries).", "",
                markdown_table(["Variant", "queries", "#active", f"mAP_m@{iou_sweep}"], sweep_rows, digits), "",
                f"![Active queries and mAP_m vs number of decoder queries (thesis Fig. 3.9)](figures/{fig2.name})", ""]
    return "\n".join(out)


def render(reports_dir: Path) -> str:
    """The search-VMR section (empty when no search_vmr metrics exist)."""
    reports_dir = Path(reports_dir)
    parts = [render_benchmark(name, runs, reports_dir) for name, runs in sorted(_load(reports_dir).items())]
    parts = [p for p in parts if p]
    if not parts:
        return ""
    intro = ("Models are trained on caption queries and evaluated on the caption test set and on each search "
             "level (R_m, mAP_m, mAP in %, thesis §3.3.3); `single`/`multi` partition the same moments "
             "(§3.4.1). #active = decoder queries per search query whose foreground probability reaches "
             "`search_vmr.active_threshold` × that query's top one (`active_rule: relative`; `absolute`: the "
             "threshold itself), mean ± std. NMS only for -SA models (`search_vmr.inference.nms_policy`, thesis "
             "§3.4.2.2). Every cell is the mean ± std over the seeds `search_vmr.seeds` "
             "(one model per seed).")
    return "\n\n".join([intro, *parts])
