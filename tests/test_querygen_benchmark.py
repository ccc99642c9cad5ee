"""Benchmark building: every moment once, consistent single/multi partition, Table 3.1 stats, HD-EPIC windows."""
import pytest

from pipeline.datasets.schema import Moment, VideoRecord, iter_queries
from pipeline.core.io import InputError
from pipeline.querygen.benchmark import SearchQuery, build_sets, table_stats
from pipeline.querygen.windows import window_record, window_records


def rec(vid, split, n, duration=60.0):
    ms = [Moment(moment_id=f"{vid}/m{i}", start=5.0 * i, end=5.0 * i + 3, text=f"caption {vid} {i}",
                 query_id=f"{vid}/q{i}") for i in range(n)]
    return VideoRecord(video_id=vid, dataset="toy", split=split, duration=duration, moments=ms)


@pytest.fixture()
def toy():
    records = [rec("a", "train", 4), rec("b", "val", 3)]
    queries = [
        SearchQuery("a/q0#S1", "a", "something moves", ("a/q0", "a/q2", "a/q3")),
        SearchQuery("a/q1#S1", "a", "a red circle", ("a/q1",)),
        SearchQuery("b/q0#S1", "b", "something spins", ("b/q0", "b/q1")),
        SearchQuery("b/q2#S1", "b", "a star", ("b/q2",)),
    ]
    return records, queries


def test_every_moment_exactly_once(toy):
    records, queries = toy
    search, caption, _ = build_sets(records, queries)
    src = sorted(m.moment_id for r in records for m in r.moments)
    assert sorted(m.moment_id for r in search for m in r.moments) == src
    assert sorted(m.moment_id for r in caption for m in r.moments) == src
    # one search query owns all its moments, with its text
    by_q = {q.qid: q for q in iter_queries(search)}
    assert len(by_q["a/q0#S1"].windows) == 3 and by_q["a/q0#S1"].text == "something moves"
    assert [r.split for r in search] == [r.split for r in caption]


def test_single_multi_partition_consistent(toy):
    records, queries = toy
    search, caption, splits = build_sets(records, queries)
    assert splits["search"] == {"single": ["a/q1#S1", "b/q2#S1"], "multi": ["a/q0#S1", "b/q0#S1"]}
    moments_of = {}
    for side, recs in (("search", search), ("caption", caption)):
        by_q = {}
        for r in recs:
            for m in r.moments:
                by_q.setdefault(m.query_id, set()).add(m.moment_id)
        for part in ("single", "multi"):
            moments_of[side, part] = set().union(*(by_q[q] for q in splits[side][part]))
    assert moments_of["search", "single"] == moments_of["caption", "single"]
    assert moments_of["search", "multi"] == moments_of["caption", "multi"]
    assert not moments_of["search", "single"] & moments_of["search", "multi"]


def test_dropped_captions_leave_both_sets(toy):
    records, queries = toy
    kept = [q for q in queries if q.query_id != "b/q2#S1"]
    search, caption, splits = build_sets(records, kept)
    assert "b/q2" not in {m.query_id for r in caption for m in r.moments}
    assert sum(len(r.moments) for r in search) == sum(len(r.moments) for r in caption) == 6
    assert "b/q2" not in splits["caption"]["single"]


def test_duplicate_membership_is_an_error(toy):
    records, queries = toy
    bad = queries + [SearchQuery("x#S1", "a", "dup", ("a/q1",))]
    with pytest.raises(InputError, match="two search queries"):
        build_sets(records, bad)


def test_table_stats(toy):
    records, queries = toy
    search, caption, _ = build_sets(records, queries)
    s = table_stats(search)
    assert s["videos"] == 2 and s["queries"] == 4 and s["moments"] == 7
    assert s["moments_per_query"] == pytest.approx(7 / 4)
    assert s["moments_per_query_multi"] == pytest.approx(2.5)
    assert s["multi_queries"] == 2 and s["multi_pct"] == pytest.approx(50.0)
    assert s["words_per_query_mean"] == pytest.approx((2 + 3 + 2 + 2) / 4)
    c = table_stats(caption)
    assert c["moments_per_query"] == 1.0 and c["multi_queries"] == 0


def test_hdepic_windows():
    # 500 frames at 3 fps = 166.67 s windows; a 400 s video has 3 windows, the middle one has no moment
    ms = [Moment("m0", 10.0, 20.0, text="x", query_id="q0"), Moment("m1", 160.0, 170.0, text="y", query_id="q1"),
          Moment("m2", 350.0, 360.0, text="z", query_id="q2")]
    r = VideoRecord(video_id="P01-1", dataset="hd", split="test", duration=400.0, participant="P01", moments=ms)
    wins = window_record(r, frames=500, fps=3.0)
    assert [w.video_id for w in wins] == ["P01-1_w0", "P01-1_w2"]  # window 1 has no GT: discarded
    w0, w2 = wins
    # m1's midpoint 165 s lies in window 0; it is clipped to the window end
    assert [(m.moment_id, m.start, m.end) for m in w0.moments] == [("m0", 10.0, 20.0), ("m1", 160.0, 166.666667)]
    assert w2.moments[0].start == pytest.approx(350 - 1000 / 3, abs=1e-5)
    assert w2.duration == pytest.approx(400 - 1000 / 3, abs=1e-5)
    assert all(w.split == "test" and w.participant == "P01" for w in wins)  # per-participant split is kept
    assert w2.extra["source_video"] == "P01-1" and w2.extra["offset"] == pytest.approx(1000 / 3, abs=1e-5)
    assert sorted(m.moment_id for w in window_records([r]) for m in w.moments) == ["m0", "m1", "m2"]
    with pytest.raises(ValueError):
        window_record(r, frames=0)


def test_report_section(tmp_path, toy):
    from pipeline.core.io import write_json
    from pipeline.querygen.benchmark import stats_by_split
    from pipeline.report.sections.querygen import render

    assert render(tmp_path) == ""
    records, queries = toy
    search, caption, _ = build_sets(records, queries)
    counts = {"items": 7, "flagged": 2, "fallback": 2, "dropped": 0, "overridden": 0, "llm_rejected": 1}
    write_json(tmp_path / "metrics/querygen/toy_S1.json",
               {"dataset": "toy", "level": "S1", "search": stats_by_split(search), "caption": stats_by_split(caption),
                "validation": counts, "aggregation": {"multi_groups": 2, "llm_groups": 1, "flagged": 0, "fallback": 0}})
    text = render(tmp_path)
    assert "| toy-S1 | 2 | 4 |" in text and "| toy | 2 | 7 |" in text and "Validation" in text
