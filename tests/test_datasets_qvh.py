"""QVHighlights adapter on a tiny JSONL fixture: multi-window queries, saliency, malformed lines."""
import pytest

from fixtures_realformats import write_qvh
from pipeline.datasets import qvhighlights
from pipeline.datasets.schema import iter_queries
from pipeline.core.io import InputError

OPTS = qvhighlights.Options(splits={"train": "highlight_train_release.jsonl"})


def test_qvh_clip(tmp_path):
    root = write_qvh(tmp_path / "qvh")
    recs, rep = qvhighlights.load(root, OPTS, "clip", "qvh")
    assert rep.counts == {"past_duration": 1, "malformed_row": 2, "bad_saliency": 1}
    assert [r["row"] for r in rep.rows("malformed_row")] == ["line 4", "line 5"]
    assert rep.summary()["moments"] == {"read": 4, "kept": 4, "dropped": 0, "filtered": 0}
    by = {r.video_id: r for r in recs}
    abc = by["abc_0.0_150.0"]
    assert abc.duration == 150.0 and set(abc.saliency) == {"1", "2"}
    assert abc.saliency["1"].clip_ids == [0, 1, 5, 6] and abc.saliency["1"].scores[1] == [4, 4, 4]
    queries = {q.qid: q for q in iter_queries(recs)}
    assert queries["1"].windows == [(0.0, 4.0), (10.0, 14.0)] and queries["1"].text == "A girl cooks."
    assert queries["2"].windows == [(140.0, 150.0)]
    assert queries["3"].saliency is None  # inconsistent saliency dropped, window kept
    assert [m.moment_id for m in abc.moments] == ["1/0", "1/1", "2/0"]


def test_qvh_drop_and_fail(tmp_path):
    root = write_qvh(tmp_path / "qvh")
    recs, rep = qvhighlights.load(root, OPTS, "drop")
    abc = {r.video_id: r for r in recs}["abc_0.0_150.0"]
    assert [m.query_id for m in abc.moments] == ["1", "1"] and set(abc.saliency) == {"1"}
    with pytest.raises(InputError, match=r"release\.jsonl: line 2 relevant_windows\[0\]: past_duration"):
        qvhighlights.load(root, OPTS, "fail")
