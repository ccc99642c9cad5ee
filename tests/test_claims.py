"""The ``claims`` stage on hand-made metrics files: the "holds" rule, margins in units of the pooled std, the
mean ± std reader on each layout the evaluate stages write, and the errors for missing files and keys."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from pipeline.report.claims import main, read_stat, run
from pipeline.sada.params import SadaConfig
from pipeline.sdst.params import SDSTParams
from pipeline.search_vmr.params import SearchVMRConfig
from pipeline.report.params import ClaimsConfig, ClaimsSada, ClaimsSdst, ClaimsSearch
from pipeline.core.params import load_block
from pipeline.querygen.params import QuerygenConfig
from pipeline.core.io import InputError
from pipeline.profiles import apply_profile


def _write(root: Path, rel: str, data: dict) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def _sada(avg: float, std: float, label: str) -> dict:
    """SADA evaluate layout: ``target.avg`` / ``target.avg_std`` / ``target.per_seed_avg``, ``seeds``."""
    return {"label": label, "seeds": [0, 1, 2], "target": {"avg": avg, "avg_std": std, "per_seed_avg": {}}}


def _search(r_m: list[float], map_m: list[float], active: float, label: str) -> dict:
    """Search evaluate layout with seeds: means at the old keys, the seeds' own trees under ``per_seed``."""
    def block(r, m, a):
        return {"S2": {"search": {"multi": {"num_queries": 10, "num_moments": 30, "R_m": {"0.1": 0.0, "0.3": r},
                                            "mAP_m": {"0.1": 0.0, "0.3": m}, "active": {"active_mean": a}}}}}
    mean = block(sum(r_m) / 3, sum(map_m) / 3, active)
    return {"config": {"label": label}, "seeds": [0, 1, 2], **mean,
            "per_seed": {str(s): block(r_m[s], map_m[s], active) for s in range(3)}}


def _sdst(mr: float, mr_std: float, hd: float, hd_std: float, label: str) -> dict:
    """SDST evaluate layout with seeds: ``metrics`` (means) + ``metrics_std``."""
    return {"label": label, "seeds": [0, 1, 2], "metrics": {"MR-mAP": mr, "HD-mAP": hd},
            "metrics_std": {"MR-mAP": mr_std, "HD-mAP": hd_std}}


CFG = ClaimsConfig(
    sada=ClaimsSada(scenarios=["S1", "S5"], beside=["global"]),
    search_vmr=ClaimsSearch(benchmark="bench", levels=["S2"], metrics=["R_m", "mAP_m"], iou=0.3),
    sdst=ClaimsSdst(datasets=["qvh"], metrics=["MR-mAP", "HD-mAP"]),
)


@pytest.fixture
def metrics(tmp_path) -> Path:
    root = tmp_path / "metrics"
    _write(root, "sada/S1/sada.json", _sada(14.0, 1.0, "SADA"))
    _write(root, "sada/S1/source_only.json", _sada(11.0, 2.0, "source-only"))
    _write(root, "sada/S1/global.json", _sada(12.0, 1.0, "DANN"))
    _write(root, "sada/S5/sada.json", _sada(10.0, 0.5, "SADA"))
    _write(root, "sada/S5/source_only.json", _sada(9.0, 1.5, "source-only"))
    _write(root, "sada/S5/global.json", _sada(8.0, 1.0, "DANN"))
    _write(root, "search_vmr/bench/no_sa_qd.json", _search([10.0, 12.0, 14.0], [20.0, 20.0, 20.0], 6.0, "-SA+QD"))
    _write(root, "search_vmr/bench/base.json", _search([8.0, 8.0, 8.0], [21.0, 21.0, 21.0], 1.5, "base"))
    _write(root, "sdst/qvh/sdst.json", _sdst(20.0, 2.0, 50.0, 1.0, "SDST"))
    _write(root, "sdst/qvh/wo_tuning.json", _sdst(22.0, 2.0, 45.0, 1.0, "w/o tuning"))
    return root


def test_sada_claim_holds_with_hand_computed_margins(metrics, tmp_path):
    out = run(CFG, metrics, tmp_path / "claims")
    sada = json.loads((tmp_path / "claims" / "sada.json").read_text())
    assert sada == json.loads(json.dumps(out["sada"]))
    assert sada["holds"] is True and sada["exceeds_std"] is False and sada["comparisons_held"] == 2
    s1, s5 = sada["comparisons"]
    # S1: 14 - 11 = 3, pooled sqrt((1 + 4) / 2) = 1.5811 → 1.897 std; S5: 10 - 9 = 1, sqrt((0.25 + 2.25) / 2)
    assert s1["margin"] == pytest.approx(3.0) and s1["pooled_std"] == pytest.approx(math.sqrt(2.5))
    assert s1["margin_in_std"] == pytest.approx(3 / math.sqrt(2.5)) and s1["exceeds_std"] is True
    assert s5["margin_in_std"] == pytest.approx(1 / math.sqrt(1.25)) and s5["exceeds_std"] is False
    assert sada["margin"] == pytest.approx(1.0)  # the weakest comparison
    arm = sada["arms"]["S1/sada"]
    assert (arm["mean"], arm["std"], arm["seeds"], arm["label"], arm["role"]) == (14.0, 1.0, 3, "SADA", "method")
    assert sada["arms"]["S5/global"]["role"] == "beside" and sada["arms"]["S5/global"]["mean"] == 8.0
    assert sada["sentence"].startswith("holds:") and "+3.00" in s1["sentence"]
    assert s1["sentence"].endswith(": +3.00 Avg mAP, 1.9× the pooled std.")


def test_search_claim_reads_per_seed_trees_and_reports_collapse(metrics, tmp_path):
    search = run(CFG, metrics, tmp_path / "claims")["search_vmr"]
    r_m, map_m = search["comparisons"]
    # R_m: mean 12 (per seed 10, 12, 14: population std sqrt(8/3)) vs 8 ± 0 → holds; mAP_m: 20 vs 21 → does not
    assert search["arms"]["S2/no_sa_qd"]["std"] == pytest.approx(math.sqrt(8 / 3))
    assert r_m["margin"] == pytest.approx(4.0) and r_m["holds"] is True
    assert r_m["margin_in_std"] == pytest.approx(4.0 / math.sqrt(4 / 3))
    assert map_m["margin"] == pytest.approx(-1.0) and map_m["holds"] is False
    assert search["holds"] is False and search["sentence"].startswith("does not hold: the method wins 1 of 2")
    collapse = search["active_queries"]["S2"]
    assert collapse["moments_per_query"] == 3.0 and collapse["base_collapses"] is True
    assert collapse["method_active_mean"] == 6.0 and "base collapses" in search["sentence"]


def test_sdst_claim_does_not_hold_when_one_metric_loses(metrics, tmp_path):
    sdst = run(CFG, metrics, tmp_path / "claims")["sdst"]
    mr, hd = sdst["comparisons"]
    assert mr["margin"] == pytest.approx(-2.0) and mr["holds"] is False
    assert mr["sentence"].startswith("qvh MR-mAP: does not hold: SDST 20.00 ± 2.00 vs w/o tuning 22.00 ± 2.00")
    assert hd["margin_in_std"] == pytest.approx(5.0) and hd["holds"] is True
    assert sdst["holds"] is False and sdst["metric"] == "MR-mAP" and sdst["arms"]["qvh/sdst"]["std"] == 2.0


def test_single_seed_file_has_zero_std_and_no_ratio(tmp_path):
    data = {"seed": 0, "metrics": {"MR-mAP": 3.0}}
    stat = read_stat(data, ["metrics", "MR-mAP"], "f.json")
    assert (stat.mean, stat.std, stat.seeds) == (3.0, 0.0, 1)


def test_null_metric_is_not_testable(metrics, tmp_path):
    data = json.loads((metrics / "search_vmr/bench/base.json").read_text())
    data["S2"]["search"]["multi"]["R_m"]["0.3"] = None  # what the stage writes for an empty split
    (metrics / "search_vmr/bench/base.json").write_text(json.dumps(data))
    r_m = run(CFG, metrics, tmp_path / "claims")["search_vmr"]["comparisons"][0]
    assert r_m["testable"] is False and r_m["holds"] is False and "not testable" in r_m["sentence"]


def test_missing_file_key_and_std_are_errors_naming_them(metrics, tmp_path):
    (metrics / "sada/S5/global.json").unlink()
    with pytest.raises(InputError, match=r"sada/S5/global\.json: metrics file missing .*claims\.sada"):
        run(CFG, metrics, tmp_path / "claims")
    assert not (tmp_path / "claims").exists()  # nothing written when a claim cannot be read
    with pytest.raises(InputError, match=r"f\.json: missing numeric key 'metrics\.HD-mAP'"):
        read_stat({"seed": 0, "metrics": {"MR-mAP": 1.0}}, ["metrics", "HD-mAP"], "f.json")
    with pytest.raises(InputError, match=r"f\.json: 3 seeds but no std for key 'metrics\.MR-mAP'"):
        read_stat({"seeds": [0, 1, 2], "metrics": {"MR-mAP": 1.0}}, ["metrics", "MR-mAP"], "f.json")


def test_cli_reports_a_missing_file(metrics, tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    rc = main(["--metrics", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), "--params", str(params)])
    err = capsys.readouterr().err
    assert rc == 2 and "metrics file missing" in err and err.startswith("error: ") and err.count("\n") == 1


@pytest.mark.parametrize("profile", [None, "smoke"])
def test_claims_name_runs_the_pipeline_makes(tmp_path, profile):
    """Every scenario/variant/benchmark/level/dataset a claim reads is one the (profile's) pipeline produces."""
    if profile:
        params = apply_profile(REPO_ROOT / "params.yaml", REPO_ROOT / f"profiles/{profile}.yaml", tmp_path / "p.yaml")
    else:
        params = None
    path = tmp_path / "p.yaml" if profile else REPO_ROOT / "params.yaml"
    cfg = load_block(ClaimsConfig, path, params)
    sada, search, sdst = (load_block(b, path, params) for b in (SadaConfig, SearchVMRConfig, SDSTParams))
    querygen = load_block(QuerygenConfig, path, params)
    assert set(cfg.sada.scenarios) <= set(sada.scenarios)
    assert {cfg.sada.method, cfg.sada.baseline, *cfg.sada.beside} <= set(sada.variants)
    assert cfg.search_vmr.benchmark in search.benchmarks
    assert {cfg.search_vmr.method, cfg.search_vmr.baseline} <= set(search.variants)
    assert set(cfg.search_vmr.levels) <= set(search.benchmark_specs[cfg.search_vmr.benchmark].levels)
    assert set(cfg.search_vmr.levels) <= set(querygen.levels)
    assert cfg.search_vmr.iou in search.benchmark_specs[cfg.search_vmr.benchmark].iou_thresholds
    assert set(cfg.sdst.datasets) <= set(sdst.datasets)
    assert {cfg.sdst.method, cfg.sdst.baseline} <= set(sdst.variants) | set(sdst.fixed_k_variants)


def test_report_shows_each_claim_in_the_summary_and_in_full_in_its_chapter(metrics, tmp_path):
    from pipeline.report.build import build_report

    reports = tmp_path / "reports"
    run(CFG, metrics, reports / "metrics" / "claims")
    text = build_report(reports, "t", 2)
    chapters = {c.split("\n", 1)[0]: c for c in text.split("\n## ")[1:]}
    summary = chapters["Summary"]
    assert summary.count("| **holds** |") == 1 and summary.count("| **does not hold** |") == 2
    assert "| SADA > source-only on the target domain | **holds** | the method wins 2 of 2" in summary
    sada = chapters["SADA: domain-adaptive action localization (Ch. 2)"]
    assert "### Claim: SADA > source-only on the target domain" in sada
    assert "**holds**: the method wins 2 of 2" in sada and "| S1 | SADA | method | 14.00 ± 1.00 (3) |" in sada
    search = chapters["Search-query moment retrieval (Ch. 3)"]
    assert "**does not hold**" in search
    assert "| S2 | base | baseline | 8.00 ± 0.00 (3) | 21.00 ± 0.00 (3) | 1.50 ± 0.00 (3) |" in search
    assert "**does not hold**" in chapters["SDST: side-tuning InternVideo2 layers (Ch. 4)"]
