"""benchmarks/rehearsal.py at tiny dims: every method runs its real model through its loader and reports."""
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import rehearsal  # noqa: E402

KEYS = {"step_samples_per_s", "loader_samples_per_s", "peak_memory_gb", "projected_hours", "containers",
        "shapes", "batch_size", "iterations", "notes", "index_scale_open", "loader_over_step"}

TINY = {
    "sdst": dict(videos=4, rows=(8, 12), video_dim=16, text_dim=12, tokens=5, val_videos=3, val_queries_per_video=2),
    "search_vmr": dict(videos=4, rows=(20, 30), video_dim=16, text_dim=12, tokens=5, val_videos=2,
                       val_queries_per_video=6),
    "sada": dict(videos=4, rows=(40, 70), video_dim=16, queries_per_video=3, val_videos=3, val_queries_per_video=4),
}
PREDICT_KEYS = {"val_items", "predict_items", "predict_samples_per_s", "predict_s", "evaluate_s",
                "predict_projected_full_s", "val_write_s", "val_containers", "val_metrics",
                "peak_memory_with_predict_gb"}
# val items of the TINY shapes: SDST queries, SADA videos, search queries (every 4th moment joins the previous
# one's query: 6 moments → 4 queries per window)
VAL_ITEMS = {"sdst": 6, "sada": 3, "search_vmr": 8}


@pytest.mark.parametrize("method", rehearsal.METHODS)
def test_rehearse_tiny_writes_report(tmp_path, method):
    shapes = dataclasses.replace(rehearsal.SHAPES[method], **TINY[method])
    r = rehearsal.rehearse(method, iters=2, out=tmp_path, shapes=shapes, batch=2, reads=5, scale_items=50)
    on_disk = json.loads((tmp_path / f"{method}.json").read_text())
    assert KEYS | PREDICT_KEYS <= set(on_disk)
    assert on_disk["val_items"] == on_disk["predict_items"] == VAL_ITEMS[method]
    assert on_disk["predict_samples_per_s"] > 0 and on_disk["evaluate_s"] > 0
    assert on_disk["predict_projected_full_s"] == pytest.approx(on_disk["predict_s"])
    assert on_disk["step_samples_per_s"] > 0 and on_disk["loader_samples_per_s"] > 0
    assert on_disk["projected_hours"] == pytest.approx(
        r["thesis_epochs"] * r["thesis_train_items"] / r["step_samples_per_s"] / 3600)
    assert on_disk["containers"]["video"]["shape"][1:] == [len(shapes.video_layers), shapes.video_dim]
    assert on_disk["index_scale_open"]["items"] == 50
    assert on_disk["batch_size"] == 2 and on_disk["iterations"] == 2
    assert r["last_loss"] == r["last_loss"]  # finite training loss (not NaN)


def test_val_limit_predicts_fewer_and_projects_the_full_split(tmp_path):
    shapes = dataclasses.replace(rehearsal.SHAPES["sdst"], **TINY["sdst"])
    r = rehearsal.rehearse("sdst", iters=2, out=None, shapes=shapes, batch=2, reads=5, scale_items=0, val_limit=2)
    assert (r["predict_items"], r["val_items"], r["evaluate_items"]) == (2, 6, 6)
    assert r["predict_projected_full_s"] == pytest.approx(r["predict_s"] * 3)
    assert r["val_metrics"]["num_queries"] == 6  # the evaluator ran over the full split


def test_cover_fills_every_id_from_the_predicted_rows():
    from rehearsal_eval import cover

    rows = [{"qid": "a", "vid": "v1", "s": 1}, {"qid": "b", "vid": "v2", "s": 2}]
    out = cover(rows, ["a", "b", "c", "d", "e"], "qid", lambda r, q: {**r, "vid": "v_" + q})
    assert [(r["qid"], r["vid"], r["s"]) for r in out] == [("a", "v1", 1), ("b", "v2", 2), ("c", "v_c", 1),
                                                           ("d", "v_d", 2), ("e", "v_e", 1)]
    assert cover(rows, ["a", "b"], "qid") is rows
    # TAL rows: several per video, copied as a group
    tal = [{"video-id": "x", "score": 1}, {"video-id": "x", "score": 2}]
    assert [r["video-id"] for r in cover(tal, ["x", "y"], "video-id")] == ["x", "x", "y", "y"]


def test_no_predict_keeps_the_train_report(tmp_path):
    shapes = dataclasses.replace(rehearsal.SHAPES["sdst"], **TINY["sdst"])
    r = rehearsal.rehearse("sdst", iters=2, out=None, shapes=shapes, batch=2, reads=5, scale_items=0, predict=False)
    assert "predict_samples_per_s" not in r and r["step_samples_per_s"] > 0


def test_search_val_split_mixes_single_and_multi_moment_queries():
    from rehearsal_eval import val_shapes, with_multi_moment

    shapes = dataclasses.replace(rehearsal.SHAPES["search_vmr"], **TINY["search_vmr"])
    recs, _ = rehearsal._videos(val_shapes(shapes), "test", np.random.default_rng(0))
    counts = {}
    for m in with_multi_moment(recs)[0].moments:
        counts[m.query_id] = counts.get(m.query_id, 0) + 1
    assert sorted(counts.values()) == [1, 1, 2, 2]


def test_unknown_method_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown method"):
        rehearsal.rehearse("nope", iters=2, out=tmp_path)


def test_all_runs_each_method_in_its_own_process_args():
    # peak RSS is per process: --method all re-invokes the script once per method with that method
    argv = ["--method", "all", "--iters", "3"]
    assert rehearsal._replace_method(argv, "sada") == ["--iters", "3", "--method", "sada"]
    assert rehearsal._replace_method(["--method=all"], "sdst") == ["--method", "sdst"]


def _record(split, vid, duration, moments):
    from pipeline.datasets.schema import Moment, VideoRecord

    return VideoRecord(vid, "x", split, duration, moments=[Moment(f"{vid}_{i}", 0.0, 1.0, query_id=q, label=lab)
                                                           for i, (q, lab) in enumerate(moments)])


def test_shapes_from_annotation_records_count_queries_segments_and_rows():
    from rehearsal_real import shapes_from_records

    records = [_record("train", "a", 20.0, [("q1", None), ("q1", None), ("q2", None)]),  # 2 queries (q1: 2 moments)
               _record("train", "b", 40.0, [("q3", None)]),
               _record("val", "c", 10.0, [("q4", None), ("q5", None), ("q6", None)])]
    vmr, notes = shapes_from_records(rehearsal.SHAPES["sdst"], records, "fixture")  # time_step 2 s
    assert (vmr.train_items, vmr.queries_per_video, vmr.val_videos, vmr.val_queries_per_video) == (3, 2, 1, 3)
    # rows = duration / 2 s → [10, 20]; 10th / 90th percentile = 11 / 19
    assert vmr.rows == (11, 19) and "fixture" in notes[0]
    tal, _ = shapes_from_records(rehearsal.SHAPES["sada"], records, "fixture")  # items = videos, val = segments
    assert (tal.train_items, tal.val_videos, tal.val_queries_per_video) == (2, 1, 3)
    fixed, _ = shapes_from_records(rehearsal.SHAPES["search_vmr"], records, "fixture")
    assert fixed.rows == rehearsal.SHAPES["search_vmr"].rows and fixed.train_items == 3
    with pytest.raises(ValueError, match="no train or val"):
        shapes_from_records(rehearsal.SHAPES["sdst"], [_record("test", "d", 5.0, [("q", None)])], "fixture")


def test_annotations_folder_is_read_with_the_real_profiles_adapter(tmp_path):
    """A QVHighlights JSONL in the real format → the counts of its lines (2 queries on 1 video in val)."""
    from rehearsal_real import read_records, shapes_from_records

    ann = tmp_path / "qvh"
    ann.mkdir()
    lines = [{"qid": q, "query": "a person cooks", "duration": 150, "vid": "v1_0_150", "relevant_windows": [[0, 10]],
              "relevant_clip_ids": [0, 1, 2, 3, 4], "saliency_scores": [[1, 2, 3]] * 5} for q in (1, 2)]
    (ann / "val.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    records = read_records(rehearsal.real_params(tmp_path), "qvhighlights", ann, {"val": "val.jsonl"})
    shapes, _ = shapes_from_records(rehearsal.SHAPES["sdst"], records, str(ann))
    assert (shapes.val_videos, shapes.val_queries_per_video) == (1, 2)
    assert shapes.train_items == rehearsal.SHAPES["sdst"].train_items  # no train file given: the thesis' count
