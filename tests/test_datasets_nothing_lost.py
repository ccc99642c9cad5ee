"""Nothing lost, nothing silent: frame-rate mismatches, videos that lose every moment, rounding tolerance,
empty splits and missing video files at ingest, range-checked params of the datasets and synth blocks."""
import json

import pytest
import yaml

from fixtures_realformats import write_anc, write_charades_sta, write_epic, write_epic_frames_at, write_hd_epic
from pipeline.core.io import InputError
from pipeline.core.params import ConfigError, build
from pipeline.datasets import charades_sta, epic_kitchens_100, hd_epic, ingest
from pipeline.datasets.badrows import BadRowReport
from pipeline.datasets.params import DatasetsConfig, DatasetSource


def test_epic_frames_at_another_rate_than_video_info_warn_and_use_the_implied_rate(tmp_path):
    root = write_epic_frames_at(tmp_path / "epic", frame_fps=60)  # P02_01: video_info 50 fps, frames at 60
    opts = epic_kitchens_100.Options(keep_verbs=["take", "wash"], splits={"val": "EPIC_100_validation.csv"},
                                     count_split="val", time_from="frames")
    recs, rep = epic_kitchens_100.load(root, opts, "fail")  # nothing past the 80-s video: no error
    (rec,) = recs
    assert [(m.start, m.end) for m in rec.moments] == [(10.0, 12.0), (30.0, 35.0), (61.0, 64.0)]
    assert rec.fps == 50.0  # the record keeps the video's own rate
    (warning,) = rep.warnings
    assert warning.startswith("EPIC_100_validation.csv: time_from frames: frame numbers disagree with "
                              "EPIC_100_video_info.csv: 1 video(s) at another frame rate: P02_01 "
                              "(EPIC_100_video_info.csv: 50.000 fps, frame numbers at 60.000 fps)")
    assert "Rule: the frames of these videos are converted with the rate their own start/stop timestamp" in warning
    assert rep.summary()["warnings"] == [warning]
    consistent = write_epic_frames_at(tmp_path / "ok", frame_fps=50)
    _, rep = epic_kitchens_100.load(consistent, opts, "fail")
    assert rep.warnings == []


def test_videos_that_lose_every_moment_are_counted_by_name(tmp_path):
    root = write_epic(tmp_path / "epic")
    _, rep = epic_kitchens_100.load(root, epic_kitchens_100.Options(top_k_verbs=2), "drop")
    # P09_01: its only row names an unknown video
    assert rep.videos_lost == {"all_moments_dropped": ["train/P09_01"]}
    _, rep = epic_kitchens_100.load(root, epic_kitchens_100.Options(keep_verbs=["wash"]), "drop")
    assert rep.videos_lost == {"all_moments_dropped": ["train/P09_01"], "all_moments_filtered": ["train/P01_01"]}

    sta = write_charades_sta(tmp_path / "sta")
    opts = charades_sta.Options(splits={"train": "charades_sta_train.txt"}, durations=["Charades_v1_train.csv"])
    _, rep = charades_sta.load(sta, opts, "drop")  # XY34Z: its one window is past the 20-s video
    assert rep.videos_lost == {"all_moments_dropped": ["train/QQ11Q", "train/XY34Z"]}
    assert rep.summary()["videos_lost"]["all_moments_dropped"]["count"] == 2

    hd = write_hd_epic(tmp_path / "hd")
    _, rep = hd_epic.load(hd, hd_epic.Options(narrations="HD_EPIC_Narrations.csv"), "drop")
    assert rep.videos_lost == {"all_moments_dropped": ["P02-20240301-090000", "P09-20240101-000000"]}


def test_rounding_excess_within_tolerance_is_clamped_and_counted_under_every_policy():
    for policy in ("fail", "drop", "clip"):
        rep = BadRowReport(policy, tolerance=0.01)
        assert rep.window(1.0, 10.004, 10.0, "a.json", "v.timestamps[0]") == (1.0, 10.0)
        assert rep.window(-0.01, 2.0, 10.0, "a.json", "v.timestamps[1]") == (0.0, 2.0)
        assert rep.window(1820.75, 1821.75, 1821.74, "a.csv", "line 3") == (1820.75, 1821.74)  # exactly 0.01 s
        assert rep.counts == {} and rep.moments_dropped == 0
        clamped = rep.summary()["clamped"]
        assert clamped["count"] == 3 and clamped["tolerance"] == 0.01
        assert clamped["rows"][0] == {"file": "a.json", "row": "v.timestamps[0]",
                                      "detail": "window [1, 10.004] clamped to [1, 10] (video [0, 10])"}
    with pytest.raises(InputError, match="past_duration"):
        BadRowReport("fail", tolerance=0.01).window(1.0, 10.02, 10.0, "a.json", "r")
    with pytest.raises(InputError, match="past_duration"):
        BadRowReport("fail", tolerance=0.0).window(1.0, 10.004, 10.0, "a.json", "r")


def _anc_root(tmp_path, val: dict):
    root = write_anc(tmp_path / "anc")
    (root / "train.json").write_text(json.dumps({"v_c": {"duration": 20.0, "timestamps": [[2, 6]],
                                                         "sentences": ["A cat jumps."]}}))
    (root / "val_1.json").write_text(json.dumps(val))
    return root


@pytest.mark.parametrize("val, why", [({}, "the file has no annotation rows"),
                                      ({"v_x": {"duration": 5.0, "timestamps": [[6, 7]], "sentences": ["x"]}},
                                       "none of its 1 moments was kept")])
def test_ingest_empty_split_is_an_error_under_fail_and_a_warning_otherwise(tmp_path, val, why):
    root = _anc_root(tmp_path, val)
    msg = f"{root / 'val_1.json'}: split 'val' has no video with a moment ({why})"
    if not val:  # under fail a dropped window is an error of its own before the split check
        with pytest.raises(InputError) as err:
            ingest.ingest("anc", DatasetSource("activitynet_captions", str(root)), "fail", tmp_path / "o.jsonl",
                          tmp_path / "r.json")
        assert str(err.value) == msg + " (datasets policy 'fail')"
        assert not (tmp_path / "o.jsonl").exists()
    summary = ingest.ingest("anc", DatasetSource("activitynet_captions", str(root)), "drop", tmp_path / "o.jsonl",
                            tmp_path / "r.json")
    assert summary["empty_splits"] == ["val"] and summary["warnings"] == [msg]
    assert json.loads((tmp_path / "r.json").read_text())["warnings"] == [msg]


def test_ingest_names_videos_without_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    root = write_anc(tmp_path / "anc")
    (root / "videos").mkdir()
    (root / "videos" / "v_a.mp4").write_bytes(b"\0")
    params = tmp_path / "params.yaml"
    source = {"format": "activitynet_captions", "root": "anc", "options": {"video_pattern": "videos/{video_id}.mp4"}}
    params.write_text(yaml.safe_dump({"datasets": {"policy": "clip", "sources": {"anc": source}}}))
    assert ingest.main(["anc", "--out", "o.jsonl", "--report", "r.json", "--params", str(params)]) == 0
    msg = "anc: 2 video(s) have no file at video_pattern 'videos/{video_id}.mp4': train/v_b, val/v_c"
    assert capsys.readouterr().err == f"warning: {msg}\n"
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["videos_without_file"] == {"count": 2, "videos": ["train/v_b", "val/v_c"]} and rep["warnings"] == [msg]

    (root / "train.json").write_text(json.dumps({"v_a": {"duration": 9.0, "timestamps": [[1, 2]], "sentences": ["a"]},
                                                 "v_b": {"duration": 9.0, "timestamps": [[1, 2]], "sentences": ["b"]}}))
    (root / "val_1.json").write_text(json.dumps({"v_a": {"duration": 9.0, "timestamps": [[3, 4]], "sentences": ["c"]}}))
    params.write_text(yaml.safe_dump({"datasets": {"policy": "fail", "sources": {"anc": source}}}))
    assert ingest.main(["anc", "--out", "o2.jsonl", "--report", "r2.json", "--params", str(params)]) == 2
    assert capsys.readouterr().err == ("error: anc: 1 video(s) have no file at video_pattern "
                                       "'videos/{video_id}.mp4': train/v_b (datasets policy 'fail')\n")
    assert not (tmp_path / "o2.jsonl").exists()


def test_tolerance_param_is_range_checked_and_reaches_the_adapter(tmp_path):
    base = {"policy": "fail", "sources": {"a": {"format": "activitynet_captions", "root": "r"}}}
    assert build(DatasetsConfig, base, "datasets").tolerance == 0.01
    with pytest.raises(ConfigError, match=r"datasets\.tolerance: must be ≥ 0, got -0\.1"):
        build(DatasetsConfig, {**base, "tolerance": -0.1}, "datasets")
    with pytest.raises(ConfigError, match=r"datasets\.sources\.a\.tolerance: must be ≤ 1, got 5"):
        build(DatasetsConfig, {**base, "sources": {"a": {**base["sources"]["a"], "tolerance": 5}}}, "datasets")
    root = _anc_root(tmp_path, {"v_x": {"duration": 5.0, "timestamps": [[1, 5.02]], "sentences": ["x"]}})
    src = DatasetSource("activitynet_captions", str(root))
    with pytest.raises(InputError, match="past_duration"):
        ingest.ingest("anc", src, "fail", tmp_path / "o.jsonl", tmp_path / "r.json")
    summary = ingest.ingest("anc", src, "fail", tmp_path / "o.jsonl", tmp_path / "r.json", tolerance=0.05)
    assert summary["clamped"]["count"] == 1 and summary["moments"]["kept"] == 2


@pytest.mark.parametrize("fmt, options, key", [
    ("epic_kitchens_100", {"top_k_verbs": 0}, "top_k_verbs: must be ≥ 1, got 0"),
    ("charades_ego", {"top_k_verbs": -3}, "top_k_verbs: must be ≥ 1, got -3"),
    ("hd_epic", {"train_fraction": 1.5}, "train_fraction: must be ≤ 1, got 1.5"),
    ("qvhighlights", {"max_score": 0}, "max_score: must be ≥ 1, got 0"),
])
def test_adapter_option_ranges(fmt, options, key):
    with pytest.raises(ConfigError, match=rf"datasets\.sources\.s\.options\.{key}"):
        ingest.adapter_for("s", DatasetSource(fmt, "r", options))
    assert ingest.adapter_for("s", DatasetSource(fmt, "r", {}))[1] is not None

