"""The search-VMR report section renders every table and figure from metrics files alone."""
from __future__ import annotations

import json
from pathlib import Path

from pipeline.report.sections.search_vmr import render

IOUS = ["0.1", "0.3", "0.5"]


def _block(score: float, active: float) -> dict:
    return {"num_queries": 4, "num_moments": 6, **{m: {t: score for t in IOUS} for m in ("R_m", "mAP_m", "mAP", "R1")},
            "active": {"active_mean": active, "active_std": 0.5, "match_p_mean": 0.2, "match_p_std": 0.1,
                       "match_gt_mean": 0.4, "match_gt_std": 0.1, "threshold": 0.1, "iou": 0.1,
                       "queries_without_active": 0}}


def _write(root: Path, variant: str, cfg: dict, score: float) -> None:
    active = 3.0 + 3 * (cfg["self_attention"] == 0) + cfg["num_queries"] / 10
    level = {"search": {p: _block(score, active) for p in ("all", "single", "multi")}}
    if not cfg["oracle"]:
        level["caption"] = {p: _block(score + 5, active) for p in ("all", "single", "multi")}
    m = {"config": {**cfg, "variant": variant, "label": variant}, "S1": level, "S2": level}
    if not cfg["oracle"]:
        m["original"] = _block(score + 10, active)
    (root / "metrics/search_vmr/synth").mkdir(parents=True, exist_ok=True)
    (root / "plots/search_vmr/synth").mkdir(parents=True, exist_ok=True)
    (root / f"metrics/search_vmr/synth/{variant}.json").write_text(json.dumps(m))
    rows = [{"variant": variant, "level": "S2", "moments": n, "queries": 3, "active_mean": active, "active_std": 0.1}
            for n in (1, 2, 3)]
    (root / f"plots/search_vmr/synth/{variant}.json").write_text(json.dumps(rows))


def test_render_tables_and_figures(tmp_path):
    runs = {
        "base": (1, 0.0, 0, 10, 20.0), "no_sa": (0, 0.0, 0, 10, 19.0), "qd": (1, 0.25, 0, 10, 21.0),
        "no_sa_qd": (0, 0.25, 0, 10, 25.0), "no_sa_qd50": (0, 0.5, 0, 10, 5.0), "oracle": (1, 0.0, 1, 10, 30.0),
        "base_q5": (1, 0.0, 0, 5, 18.0), "no_sa_qd_q20": (0, 0.25, 0, 20, 26.0),
    }
    for name, (sa, qd, oracle, nq, score) in runs.items():
        _write(tmp_path, name, {"self_attention": sa, "qd_rate": qd, "oracle": oracle, "num_queries": nq}, score)
    md = render(tmp_path)
    assert "Tab 3.2" in md and "Tab 3.7" in md and "Tab 3.8" in md and "Fig. 3.9" in md
    assert "| Original | base | 30.00" in md and "| S2 | base (oracle) | 30.00" in md
    assert "| 0.50 | 5.00" in md  # the QD-rate table has the 0.5 row
    assert (tmp_path / "figures/search_vmr_synth_active_vs_moments.png").stat().st_size > 0
    assert (tmp_path / "figures/search_vmr_synth_query_sweep.png").stat().st_size > 0


def test_render_without_metrics_is_empty(tmp_path):
    assert render(tmp_path) == ""


def test_render_shows_mean_and_std_over_seeds(tmp_path):
    from pipeline.search_vmr.evaluate import mean_over_seeds

    per_seed = []
    for score in (19.0, 21.0):
        level = {"search": {p: _block(score, 3.0 + score / 10) for p in ("all", "single", "multi")},
                 "caption": {p: _block(score, 3.0) for p in ("all", "single", "multi")}}
        per_seed.append({"S2": level, "original": _block(score, 3.0)})
    merged = mean_over_seeds(per_seed)
    blk = merged["S2"]["search"]["multi"]
    assert blk["R_m"]["0.3"] == 20.0 and blk["R_m_std"]["0.3"] == 1.0 and blk["num_queries"] == 4
    assert abs(blk["active"]["active_mean"] - 5.0) < 1e-9 and abs(blk["active_std"]["active_mean"] - 0.1) < 1e-9
    m = {"config": {"self_attention": 1, "qd_rate": 0.0, "oracle": 0, "num_queries": 10, "variant": "base",
                    "label": "base"}, "seeds": [0, 1], **merged, "per_seed": dict(zip("01", per_seed))}
    (tmp_path / "metrics/search_vmr/synth").mkdir(parents=True)
    (tmp_path / "metrics/search_vmr/synth/base.json").write_text(json.dumps(m))
    md = render(tmp_path)
    assert "| Original | base | 20.00 ± 1.00" in md and "5.00 ± 0.10" in md
