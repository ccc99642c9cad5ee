"""The ingest and dataset_stats stage entry points on fixtures, and the datasets params block."""
import json

import pytest
import yaml

from conftest import REPO_ROOT
from fixtures_realformats import write_anc, write_epic, write_qvh
from pipeline.datasets import stats as dataset_stats
from pipeline.datasets import ingest
from pipeline.core.params import ConfigError, build, load_block
from pipeline.datasets.params import DatasetsConfig
from pipeline.datasets.schema import read_records


def _params(tmp_path, sources, enabled=None, scenarios=None):
    block = {"policy": "clip", "sources": sources,
             "scenarios": scenarios or {}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"datasets": block}))
    return path


def test_ingest_and_stats_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_epic(tmp_path / "data/raw/ek")
    write_anc(tmp_path / "data/raw/anc")
    params = _params(tmp_path, {
        "ek": {"format": "epic_kitchens_100", "root": "data/raw/ek", "policy": "drop",
               "options": {"top_k_verbs": 2, "participants": "participants.csv",
                           "video_pattern": "videos/{video_id}.mp4"}},
        "anc": {"format": "activitynet_captions", "root": "data/raw/anc"},
    }, scenarios={"S1": {"dataset": "ek", "source": {"domain": ["dark"]}, "target": {"domain": ["white"]}}})
    assert ingest.main(["ek", "--out", "c/ek.jsonl", "--report", "m/ek.json", "--params", str(params)]) == 0
    assert "ingest ek: train: 2 videos / 5 moments, val: 1 videos / 1 moments" in capsys.readouterr().out
    recs = read_records("c/ek.jsonl")
    assert [(r.split, r.video_id) for r in recs] == [("train", "P01_01"), ("train", "P01_101"), ("val", "P02_01")]
    assert recs[0].video_path == "data/raw/ek/videos/P01_01.mp4"
    rep = json.loads((tmp_path / "m/ek.json").read_text())
    assert rep["policy"] == "drop" and rep["moments"] == {"read": 14, "kept": 6, "dropped": 6, "filtered": 2}
    assert rep["splits"]["train"] == {"videos": 2, "moments": 5, "queries": 0, "videos_with_file": 1}
    assert rep["bad"]["unknown_video"]["rows"][0]["row"] == "line 12"

    assert ingest.main(["anc", "--out", "c/anc.jsonl", "--report", "m/anc.json", "--params", str(params)]) == 0
    anc = json.loads((tmp_path / "m/anc.json").read_text())
    # v_d (duration "long") lost its only caption: counted and named, not silently gone
    assert anc["policy"] == "clip" and anc["videos_without_moments"] == 1
    assert anc["videos_lost"] == {"all_moments_dropped": {"count": 1, "videos": ["val/v_d"], "videos_not_listed": 0}}

    assert dataset_stats.main(["ek", "--canonical", "c/ek.jsonl", "--out", "m/st.json", "--params", str(params)]) == 0
    st = json.loads((tmp_path / "m/st.json").read_text())
    assert st["splits"]["train"]["classes"] == {"take": 3, "put": 2}
    assert st["scenarios"]["S1"]["source"]["train"]["videos"] == 2


def test_ingest_writes_no_empty_dataset_and_names_bad_config(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_qvh(tmp_path / "qvh")
    params = _params(tmp_path, {
        "q": {"format": "qvhighlights", "root": "qvh"},  # default split files do not exist → error
        "bad": {"format": "qvhighlights", "root": "qvh", "options": {"splitz": {}}},
        "nope": {"format": "epic_kitchen", "root": "qvh"},
    })
    for name, msg in [("q", "highlight_val_release.jsonl: file not found"),
                      ("bad", "datasets.sources.bad.options: unknown key(s) datasets.sources.bad.options.splitz"),
                      ("nope", "datasets.sources.nope.format: unknown format 'epic_kitchen'")]:
        assert ingest.main([name, "--out", "o.jsonl", "--report", "r.json", "--params", str(params)]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "o.jsonl").exists()


def test_datasets_block_validation():
    base = {"policy": "clip", "sources": {"a": {"format": "tacos", "root": "r"}}}
    assert build(DatasetsConfig, base, "datasets").sources["a"].options == {}
    with pytest.raises(ConfigError, match="datasets.policy"):
        build(DatasetsConfig, {**base, "policy": "ignore"}, "datasets")
    bad_sc = {"S": {"dataset": "a", "source": {"colour": ["x"]}, "target": {}}}
    with pytest.raises(ConfigError, match="datasets.scenarios.S.source.colour: not a selector field"):
        build(DatasetsConfig, {**base, "scenarios": bad_sc}, "datasets")


def test_shipped_params_sources_validate():
    cfg = load_block(DatasetsConfig, REPO_ROOT / "params.yaml")
    assert list(cfg.sources) == ["synth_tal", "synth_captions", "synth_qvh"]
    for name, source in cfg.sources.items():
        ingest.adapter_for(name, source)  # every adapter option of the shipped params is valid
    assert all(sc.dataset in cfg.sources for sc in cfg.scenarios.values())


def test_real_profile_sources_are_valid(tmp_path):
    """The thesis datasets of profiles/real.yaml parse, live at data/raw/<name>, cover every adapter, and their
    options are valid adapter options."""
    from pipeline.profiles import apply_profile

    out = tmp_path / "params.yaml"
    apply_profile(REPO_ROOT / "params.yaml", REPO_ROOT / "profiles/real.yaml", out)
    cfg = load_block(DatasetsConfig, out)
    assert set(cfg.sources) == {"epic_kitchens_100", "charades_ego", "hdepic", "youcook2", "activitynet_captions",
                                "qvhighlights", "charades_sta", "tacos"}
    assert all(source.root == f"data/raw/{name}" for name, source in cfg.sources.items())
    assert {s.format for s in cfg.sources.values()} == set(ingest.ADAPTERS)
    for name, source in cfg.sources.items():
        ingest.adapter_for(name, source)
