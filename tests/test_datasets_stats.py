"""Dataset statistics (thesis Tab 2.1 / 3.1 shape) and scenario selection on hand-made records."""
import pytest

from pipeline.datasets.params import DatasetScenario
from pipeline.datasets.stats import dataset_stats, split_stats
from pipeline.datasets.scenarios import matches, select
from pipeline.datasets.schema import Moment, Saliency, VideoRecord


def _tal():
    def rec(vid, split, domain, coll, moments):
        return VideoRecord(vid, "tal", split, 100.0, domain=domain, extra={"collection": coll},
                           moments=[Moment(f"{vid}_{i}", s, e, label=l) for i, (s, e, l) in enumerate(moments)])
    return [
        rec("P01_01", "train", "dark", "old", [(0, 2, "take"), (5, 9, "put"), (10, 11, "take")]),
        rec("P02_01", "train", "white", "old", [(0, 1, "take")]),
        rec("P01_101", "train", "dark", "new", [(3, 4, "put")]),
        rec("P02_02", "val", "white", "old", [(1, 3, "put")]),
    ]


def test_split_stats_vmr_hand_case():
    ms = [Moment("a", 0, 10, text="a red circle slides", query_id="q1"),
          Moment("b", 20, 30, text="a red circle slides", query_id="q1"),
          Moment("c", 40, 45, text="it spins", query_id="q2")]
    recs = [VideoRecord("v1", "x", "train", 60.0, moments=ms, saliency={"q2": Saliency([20], [[1, 2, 3]])}),
            VideoRecord("v2", "x", "train", 120.0, moments=[Moment("d", 0, 5, text="one two three", query_id="q3")])]
    s = split_stats(recs)
    assert (s["videos"], s["moments"], s["queries"]) == (2, 4, 3)
    assert s["mean_video_duration"] == 90.0 and s["hours"] == pytest.approx(0.05)
    assert s["mean_moment_length"] == 7.5
    assert s["mean_query_words"] == 3.0 and s["std_query_words"] == pytest.approx((2 / 3) ** 0.5)
    assert s["moments_per_query"] == pytest.approx(4 / 3) and s["moments_per_multi_query"] == 2.0
    assert (s["multi_queries"], s["multi_query_pct"]) == (1, pytest.approx(100 / 3))
    assert s["queries_with_saliency"] == 1 and s["classes"] == {} and s["domains"] == {}


def test_dataset_and_scenario_stats_tal_hand_case():
    recs = _tal()
    s1 = DatasetScenario("tal", source={"domain": ["dark"], "extra.collection": ["old"]},
                         target={"domain": ["white", "other"], "extra.collection": ["old"]})
    other = DatasetScenario("elsewhere", source={}, target={})
    st = dataset_stats("tal", recs, {"S1": s1, "X": other})
    assert st["all"]["classes"] == {"put": 3, "take": 3}  # ties by name
    assert st["splits"]["train"]["classes"] == {"take": 3, "put": 2}
    assert st["splits"]["train"]["domains"] == {"dark": {"videos": 2, "moments": 4},
                                                "white": {"videos": 1, "moments": 1}}
    assert st["all"]["queries"] == 0 and st["all"]["mean_query_words"] is None
    assert set(st["scenarios"]) == {"S1"}
    src, tgt = st["scenarios"]["S1"]["source"], st["scenarios"]["S1"]["target"]
    assert src["train"] == {"videos": 1, "moments": 3, "mean_moment_length": pytest.approx(7 / 3),
                            "classes": {"take": 2, "put": 1}}
    assert src["val"]["videos"] == 0 and tgt["val"]["moments"] == 1 and tgt["train"]["classes"] == {"take": 1}


def test_selectors():
    rec = _tal()[0]
    assert matches(rec, {"domain": ["dark"], "extra.collection": ["old"], "split": ["train"]})
    assert not matches(rec, {"extra.viewpoint": ["wide"]})  # absent extra key never matches
    assert [r.video_id for r in select(_tal(), {"extra.collection": ["new"]})] == ["P01_101"]
    with pytest.raises(ValueError, match="selector field"):
        matches(rec, {"colour": ["dark"]})


def test_video_in_two_splits_counts_once_overall():
    recs = [VideoRecord("v", "x", s, 10.0, moments=[Moment(f"{s}/v/0", 0, 1, text="a b", query_id=f"{s}/v/0")])
            for s in ("val", "test")]
    st = dataset_stats("x", recs, {})
    assert st["all"]["videos"] == 1 and st["all"]["queries"] == 2 and st["splits"]["val"]["videos"] == 1
