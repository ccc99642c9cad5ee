"""Caption-VMR adapters on tiny fixtures in the real formats: ActivityNet Captions, TACoS, YouCook2,
Charades-STA, HD-EPIC (narrations and recipe steps)."""
import pytest

from fixtures_realformats import write_anc, write_charades_sta, write_hd_epic, write_tacos, write_youcook2
from pipeline.datasets import activitynet_captions, charades_sta, hd_epic, tacos, youcook2
from pipeline.core.io import InputError


def test_activitynet_captions_clip(tmp_path):
    root = write_anc(tmp_path / "anc")
    recs, rep = activitynet_captions.load(root, activitynet_captions.Options(), "clip", "anc")
    assert rep.counts == {"start_ge_end": 1, "past_duration": 1, "malformed_timestamp": 1,
                          "unknown_video": 1, "malformed_row": 1}
    assert rep.summary()["moments"] == {"read": 8, "kept": 4, "dropped": 4, "filtered": 0}
    by = {r.video_id: r for r in recs}
    assert set(by) == {"v_a", "v_b", "v_c"} and by["v_c"].split == "val"
    a = by["v_a"].moments
    assert [(m.start, m.end, m.text) for m in a] == [(1.0, 5.5, "A man opens a door."),
                                                      (40.0, 50.0, "He leaves the room.")]
    assert a[1].moment_id == a[1].query_id == "train/v_a/2"
    assert rep.rows("unknown_video")[0] == {"file": "val_1.json", "row": "v_d",
                                            "detail": "no usable duration: could not convert string to float: 'long'",
                                            "action": "dropped"}


def test_activitynet_captions_drop_and_fail(tmp_path):
    root = write_anc(tmp_path / "anc")
    recs, rep = activitynet_captions.load(root, activitynet_captions.Options(), "drop")
    assert [m.end for r in recs if r.video_id == "v_a" for m in r.moments] == [5.5]
    with pytest.raises(InputError, match=r"train\.json: v_a\.timestamps\[1\]: start_ge_end"):
        activitynet_captions.load(root, activitynet_captions.Options(), "fail")


def test_tacos_frames_to_seconds(tmp_path):
    root = write_tacos(tmp_path / "tacos")
    opts = tacos.Options(splits={"train": "train.json"})
    recs, rep = tacos.load(root, opts, "clip")
    (rec,) = recs
    assert (rec.video_id, rec.duration, rec.fps) == ("s1-d1", 10.0, 25.0)
    assert [(m.start, m.end) for m in rec.moments] == [(1.0, 3.0), (8.0, 10.0)]
    assert rep.counts == {"past_duration": 1}
    recs, rep = tacos.load(root, opts, "drop")
    assert len(recs[0].moments) == 1


def test_youcook2(tmp_path):
    root = write_youcook2(tmp_path / "yc2")
    opts = youcook2.Options(subset_to_split={"training": "train", "validation": "val"})
    recs, rep = youcook2.load(root, opts, "clip")
    assert rep.counts == {"past_duration": 1, "malformed_timestamp": 1}
    assert rep.summary()["filtered"] == {"subset_testing": 1}
    by = {r.video_id: r for r in recs}
    assert by["yc_a"].split == "train" and by["yc_a"].fps == 30.0 and by["yc_a"].extra == {"recipe_type": "113"}
    assert [(m.start, m.end) for m in by["yc_a"].moments] == [(5.0, 20.0), (30.0, 45.0), (90.0, 100.0)]
    assert by["yc_a"].moments[0].query_id == "train/yc_a/0" and by["yc_b"].moments == []


def test_charades_sta(tmp_path):
    root = write_charades_sta(tmp_path / "sta")
    opts = charades_sta.Options(splits={"train": "charades_sta_train.txt"}, durations=["Charades_v1_train.csv"])
    recs, rep = charades_sta.load(root, opts, "clip")
    assert rep.counts == {"past_duration": 1, "malformed_row": 1, "unknown_video": 1}
    by = {r.video_id: r for r in recs}
    assert by["AB12C"].duration == 30.5
    assert [(m.start, m.end, m.text) for m in by["AB12C"].moments] == [
        (1.2, 5.8, "person opens the door."), (10.0, 15.0, "a person sits down.")]
    assert [(m.start, m.end) for m in by["XY34Z"].moments] == [(12.0, 20.0)]
    with pytest.raises(InputError, match="line 3: past_duration"):
        charades_sta.load(root, opts, "fail")


def test_hd_epic_narrations_and_split(tmp_path):
    root = write_hd_epic(tmp_path / "hd")
    opts = hd_epic.Options(narrations="HD_EPIC_Narrations.csv", train_fraction=0.5)
    recs, rep = hd_epic.load(root, opts, "drop")
    assert rep.counts == {"unknown_video": 1, "past_duration": 1}
    assert {r.video_id: r.split for r in recs} == {"P01-20240201-100000": "train", "P01-20240205-100000": "test"}
    m = recs[0].moments[0] if recs[0].video_id.endswith("01-100000") else recs[1].moments[0]
    assert m.query_id == "P01-20240201-100000-1" and m.text.startswith("Open the upper cupboard")
    assert hd_epic.chronological_split([f"P01-{i}" for i in range(5)] + ["P02-0"], 0.8) == {
        "P01-0": "train", "P01-1": "train", "P01-2": "train", "P01-3": "train", "P01-4": "test", "P02-0": "train"}


def test_hd_epic_recipe_steps_are_multi_moment_queries(tmp_path):
    root = write_hd_epic(tmp_path / "hd")
    recs, rep = hd_epic.load(root, hd_epic.Options(annotations="recipe_steps"), "clip")
    assert rep.counts == {"unknown_class": 1}
    (rec,) = recs
    assert [(m.query_id, m.start, m.end) for m in rec.moments] == [
        ("P01_R01_S01/c0/P01-20240201-100000", 1.0, 2.0), ("P01_R01_S01/c0/P01-20240201-100000", 5.0, 6.5)]


def test_hd_epic_pickle(tmp_path):
    pd = pytest.importorskip("pandas")
    root = write_hd_epic(tmp_path / "hd")
    pd.read_csv(root / "HD_EPIC_Narrations.csv").to_pickle(root / "HD_EPIC_Narrations.pkl")
    recs, rep = hd_epic.load(root, hd_epic.Options(), "clip")
    assert sum(len(r.moments) for r in recs) == 3 and rep.rows("unknown_video")[0]["row"] == "row 2"
