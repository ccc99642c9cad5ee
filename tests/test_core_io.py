"""Atomic writes, JSONL errors, canonical records and feature containers."""
import json

import numpy as np
import pytest

from pipeline.datasets.schema import Moment, Saliency, VideoRecord, iter_queries, read_records, write_records
from pipeline.core.io import InputError, atomic_path, read_jsonl, write_json
from pipeline.features.container import FeatureContainer, container_paths, write_container


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_write_json_turns_nan_into_null(tmp_path):
    write_json(tmp_path / "m.json", {"x": float("nan"), "y": [1.0, float("inf")]})
    assert json.loads((tmp_path / "m.json").read_text()) == {"x": None, "y": [1.0, None]}


def test_read_jsonl_names_the_bad_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n\n{"a": \n')
    with pytest.raises(InputError, match=r"a.jsonl: line 3"):
        read_jsonl(path)


def test_records_round_trip_and_query_view(tmp_path):
    rec = VideoRecord(
        video_id="v1",
        dataset="d",
        split="val",
        duration=30.0,
        moments=[
            Moment("m1", 0.0, 4.0, text="a red circle", query_id="q1"),
            Moment("m2", 10.0, 12.0, text="a red circle", query_id="q1"),
            Moment("m3", 5.0, 6.0, label="spin", label_id=2),
        ],
        saliency={"q1": Saliency(clip_ids=[0, 1], scores=[[1, 2, 3], [0, 0, 4]])},
    )
    write_records(tmp_path / "c.jsonl", [rec])
    back = read_records(tmp_path / "c.jsonl")
    assert back == [rec]
    (q,) = list(iter_queries(back))
    assert q.qid == "q1" and q.windows == [(0.0, 4.0), (10.0, 12.0)] and q.saliency.clip_ids == [0, 1]


def test_container_round_trip_and_no_half_container(tmp_path):
    items = [("a", np.arange(6, dtype=np.float32).reshape(3, 1, 2)), ("b", np.ones((2, 1, 2)))]
    write_container(tmp_path / "train", items, meta={"time_step": 2.0})
    fc = FeatureContainer(tmp_path / "train")
    assert fc.meta["time_step"] == 2.0 and len(fc) == 2
    np.testing.assert_array_equal(fc["a"], items[0][1].astype(np.float16))
    assert fc["b"].shape == (2, 1, 2)
    with pytest.raises(KeyError, match="'c'"):
        fc["c"]
    with pytest.raises(ValueError, match="trailing shapes"):
        write_container(tmp_path / "bad", [("a", np.zeros((1, 2))), ("b", np.zeros((1, 3)))])
    assert not container_paths(tmp_path / "bad")[1].exists()
    with pytest.raises(InputError, match="not found"):
        FeatureContainer(tmp_path / "bad")
