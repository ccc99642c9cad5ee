"""TAL adapters on tiny fixtures in the real formats: EPIC-KITCHENS-100 and Charades-Ego."""
import pytest

from fixtures_realformats import write_charades_ego, write_epic
from pipeline.datasets import charades_ego, epic_kitchens_100
from pipeline.core.io import InputError

ALL_BAD = {"start_ge_end": 1, "past_duration": 1, "unknown_class": 1, "malformed_timestamp": 1,
           "unknown_video": 1, "malformed_row": 1}


def _epic(tmp_path, policy, **kw):
    root = write_epic(tmp_path / "epic")
    opts = epic_kitchens_100.Options(top_k_verbs=2, participants="participants.csv",
                                     video_pattern="videos/{video_id}.mp4", **kw)
    return epic_kitchens_100.load(root, opts, policy, "ek")


def test_epic_clip(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recs, rep = _epic(tmp_path, "clip")
    assert rep.counts == ALL_BAD
    assert rep.summary()["moments"] == {"read": 14, "kept": 7, "dropped": 5, "filtered": 2}
    assert [r["row"] for r in rep.rows("start_ge_end")] == ["line 8"]
    assert rep.rows("malformed_row")[0]["file"] == "EPIC_100_validation.csv"
    by = {(r.split, r.video_id): r for r in recs}
    assert set(by) == {("train", "P01_01"), ("train", "P01_101"), ("val", "P02_01")}
    old, new = by["train", "P01_01"], by["train", "P01_101"]
    assert (old.extra["collection"], new.extra["collection"]) == ("old", "new")
    assert old.domain == "dark" and old.extra["viewpoint"] == "wide" and by["val", "P02_01"].domain is None
    assert old.fps == 50.0 and old.duration == 100.0 and old.participant == "P01"
    assert old.video_path == "epic/videos/P01_01.mp4" and new.video_path is None
    assert [(m.label, m.label_id, m.start, m.end) for m in old.moments] == [
        ("take", 0, 1.0, 3.5), ("take", 0, 5.0, 6.0), ("put", 1, 7.0, 9.0), ("take", 0, 98.0, 100.0)]
    assert rep.info["classes"] == ["take", "put"]


def test_epic_drop_and_options(tmp_path):
    recs, rep = _epic(tmp_path, "drop", default_domain="other")
    assert rep.summary()["moments"] == {"read": 14, "kept": 6, "dropped": 6, "filtered": 2}
    assert {r.video_id: r.domain for r in recs}["P02_01"] == "other"
    recs, rep = _epic(tmp_path, "drop", keep_verbs=["wash"])
    assert [m.label for r in recs for m in r.moments] == ["wash", "wash"]
    frames, _ = _epic(tmp_path, "drop", time_from="frames")  # start_frame / fps: same windows here
    stamps, _ = _epic(tmp_path, "drop")
    f = {m.moment_id: (m.start, m.end) for r in frames for m in r.moments}
    t = {m.moment_id: (m.start, m.end) for r in stamps for m in r.moments}
    assert {k: f[k] for k in t} == t
    assert f["P01_01_5"] == (0.0, 12.0)  # the malformed start *timestamp* does not matter in frames mode


def test_epic_fail_names_the_row(tmp_path):
    with pytest.raises(InputError, match=r"EPIC_100_train\.csv: line 8: start_ge_end"):
        _epic(tmp_path, "fail")


def test_epic_missing_column_is_an_error(tmp_path):
    root = write_epic(tmp_path / "epic")
    text = (root / "EPIC_100_validation.csv").read_text().replace("verb_class", "verb_klass")
    (root / "EPIC_100_validation.csv").write_text(text)
    with pytest.raises(InputError, match="verb_class"):
        epic_kitchens_100.load(root, epic_kitchens_100.Options(), "clip")


def test_epic_collection_from_ids():
    assert epic_kitchens_100.collection_of("P01_11") == "old"
    assert epic_kitchens_100.collection_of("P22_101") == "new"
    assert epic_kitchens_100.collection_of("clip-7") is None


@pytest.mark.parametrize("policy", ["clip", "drop"])
def test_charades_ego(tmp_path, policy):
    root = write_charades_ego(tmp_path / "ce")
    recs, rep = charades_ego.load(root, charades_ego.Options(top_k_verbs=2), policy, "ce")
    assert rep.counts == {"past_duration": 1, "unknown_class": 1, "malformed_timestamp": 1, "malformed_row": 1}
    assert rep.info["classes"] == ["take", "hold"]  # hold and put tie at 1 under clip: ties go by name
    by = {r.video_id: r for r in recs}
    assert by["005BU"].domain == "third_person" and by["005BUEGO"].domain == "ego"
    assert by["005BUEGO"].extra["paired_video"] == "005BU" and by["006XY"].split == "val"
    labels = [(m.label, m.start, m.end) for m in by["005BUEGO"].moments]
    assert labels == [("take", 1.0, 4.0)]  # the put (past 20 s, clipped or dropped) is not a top-2 verb
    assert rep.summary()["moments"]["filtered"] == (1 if policy == "clip" else 0)
    assert [(m.label, m.label_id) for m in by["005BU"].moments] == [("hold", 1), ("take", 0)]


def test_charades_ego_fail(tmp_path):
    root = write_charades_ego(tmp_path / "ce")
    with pytest.raises(InputError, match=r"CharadesEgo_v1_train\.csv: line 2 action 2: unknown_class"):
        charades_ego.load(root, charades_ego.Options(), "fail")
