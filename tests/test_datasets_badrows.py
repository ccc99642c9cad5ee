"""Bad-row policy semantics (clip / drop / fail) and the summary's moment accounting."""
import pytest

from pipeline.datasets.badrows import BadRowReport
from pipeline.core.io import InputError


def test_window_checks_per_policy():
    clip, drop = BadRowReport("clip"), BadRowReport("drop")
    for rep in (clip, drop):
        assert rep.window(1.0, 2.0, 10.0, "f.json", "r0") == (1.0, 2.0)
        assert rep.window(3.0, 3.0, 10.0, "f.json", "r1") is None  # start >= end: dropped by both
    assert clip.window(8.0, 12.0, 10.0, "f.json", "r2") == (8.0, 10.0)
    assert clip.window(-1.0, 2.0, 10.0, "f.json", "r3") == (0.0, 2.0)
    assert clip.window(11.0, 12.0, 10.0, "f.json", "r4") is None  # empty after clipping
    assert drop.window(8.0, 12.0, 10.0, "f.json", "r2") is None
    assert [r["action"] for r in clip.rows("past_duration")] == ["clipped", "clipped", "dropped"]
    assert clip.counts == {"start_ge_end": 1, "past_duration": 3}
    assert drop.counts == {"start_ge_end": 1, "past_duration": 1}


def test_float_noise_is_snapped_not_counted():
    rep = BadRowReport("drop")
    assert rep.window(57.64, 70.29, 70.28999999999999, "a.json", "v.timestamps[2]") == (57.64, 70.28999999999999)
    assert rep.counts == {}


def test_fail_names_file_row_and_category(tmp_path):
    rep = BadRowReport("fail", tmp_path)
    with pytest.raises(InputError, match=r"train\.csv: line 7: start_ge_end"):
        rep.window(5.0, 4.0, 10.0, "train.csv", "line 7")


def test_summary_accounting_and_listing():
    rep = BadRowReport("clip")
    rep.read(6)
    rep.flag("unknown_class", "a.csv", "line 2", "class 9")
    rep.flag("unknown_video", "a.csv", "line 3", "video x", moments=2)
    rep.flag("bad_saliency", "b.jsonl", "line 1", "lengths", action="saliency_dropped", moments=0)
    rep.filtered("verb_not_kept")
    s = rep.summary(max_listed=1)
    assert s["moments"] == {"read": 6, "kept": 2, "dropped": 3, "filtered": 1}
    assert s["bad_rows"] == 3
    assert s["bad"]["unknown_class"]["rows"] == [
        {"file": "a.csv", "row": "line 2", "detail": "class 9", "action": "dropped"}]
    assert s["bad"]["bad_saliency"]["by_action"] == {"saliency_dropped": 1}
    assert s["bad"]["unknown_video"]["by_file"] == {"a.csv": 1}
    with pytest.raises(ValueError):
        BadRowReport("ignore")
    with pytest.raises(ValueError):
        rep.flag("typo", "a", "b", "c")
