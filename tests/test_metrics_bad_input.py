"""Issue 16, item 7: ``python -m pipeline.evaluate`` refuses broken inputs with one line naming the file, the
row (or CSV line / annotation) and the field, instead of a nameless failure or a silently computed number."""

import json
import os
import re

import pytest

from pipeline.core.io import InputError
from pipeline.evaluate import main
from pipeline.metrics import grounding_eval, qvhighlights_eval, search_eval, tal_map


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def _fails(argv, capsys, pattern):
    code, out, err = _run(argv, capsys)
    assert code == 2 and out == "", err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert re.search(pattern, err), err


QVH_GT = {
    "qid": 1,
    "vid": "a",
    "duration": 8,
    "relevant_windows": [[0, 4]],
    "relevant_clip_ids": [0, 1],
    "saliency_scores": [[4, 4, 4], [2, 2, 2]],
}
QVH_SUB = {"qid": 1, "pred_relevant_windows": [[0, 4, 0.9]], "pred_saliency_scores": [0.9, 0.5, 0.1, 0.0]}


@pytest.mark.parametrize("task, suffix", [("grounding", ".jsonl"), ("search", ".json"), ("tal", ".json")])
def test_random_bytes_name_the_file(tmp_path, capsys, task, suffix):
    junk = tmp_path / f"junk{suffix}"
    junk.write_bytes(bytes([0x97, 0xFF, 0x00, 0xC3]) + os.urandom(200))
    ok = _jsonl(tmp_path / "p.jsonl", [{"qid": 1, "pred_relevant_windows": [[0, 1, 0.5]]}])
    _fails([task, "--ground-truth", str(junk), "--predictions", ok], capsys, rf"{re.escape(str(junk))}: not UTF-8")


def test_random_bytes_as_csv_predictions_name_the_file(tmp_path, capsys):
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"database": {"v": {"annotations": [{"segment": [0, 1], "label_id": 1}]}}}))
    junk = tmp_path / "p.csv"
    junk.write_bytes(bytes([0x97, 0xFF]) + os.urandom(200))
    _fails(["tal", "--ground-truth", str(gt), "--predictions", str(junk)], capsys, r"p\.csv: not UTF-8")
    # a decodable but binary-looking file: one 200 kB field trips the csv module's field size limit
    junk.write_bytes(b"video-id,t-start,t-end,label,score\n" + b'"' + b"a" * 200_000 + b'"\n')
    _fails(["tal", "--ground-truth", str(gt), "--predictions", str(junk)], capsys, r"p\.csv: not a readable CSV")


@pytest.mark.parametrize(
    "gt_windows, pred_windows, pattern",
    [
        ([[-1, 4]], [[0, 4, 0.9]], r"gt\.jsonl: row 1 \(qid 1\): window \[-1, 4\] in 'relevant_windows' has a negat"),
        ([[4, 4]], [[0, 4, 0.9]], r"gt\.jsonl: row 1 \(qid 1\): window \[4, 4\] in 'relevant_windows' has zero length"),
        ([[True, 4]], [[0, 4, 0.9]], r"gt\.jsonl: row 1 \(qid 1\): .*'relevant_windows' holds a non-number True"),
        ([[0, 4]], [[-2, 4, 0.9]], r"p\.jsonl: row 1 \(qid 1\): .*'pred_relevant_windows' has a negative start"),
        ([[0, 4]], [[0, 4, True]], r"p\.jsonl: row 1 \(qid 1\): .*'pred_relevant_windows' holds a non-number True"),
        ([[0, 4]], [[0, False, 0.5]], r"p\.jsonl: row 1 \(qid 1\): .*holds a non-number False"),
    ],
)
@pytest.mark.parametrize("task", ["grounding", "search"])
def test_query_windows_negative_zero_length_and_bools(tmp_path, capsys, task, gt_windows, pred_windows, pattern):
    gt = _jsonl(tmp_path / "gt.jsonl", [{"qid": 1, "relevant_windows": gt_windows}])
    pred = _jsonl(tmp_path / "p.jsonl", [{"qid": 1, "pred_relevant_windows": pred_windows}])
    _fails([task, "--ground-truth", gt, "--predictions", pred], capsys, pattern)


def test_zero_length_prediction_window_is_still_scored():
    """Only GT windows need a positive length: a degenerate predicted window is a (bad) prediction."""
    res = grounding_eval([{"qid": 1, "relevant_windows": [[0, 4]]}], [{"qid": 1, "pred_relevant_windows": [[2, 2]]}])
    assert res["mIoU"] == 0.0


@pytest.mark.parametrize(
    "gt_change, sub_change, pattern",
    [
        ({"relevant_windows": [[3, 3]]}, {}, r"gt\.jsonl: row 1 \(qid 1\): .*'relevant_windows' has zero length"),
        ({"relevant_clip_ids": [0, True]}, {}, r"gt\.jsonl: row 1 \(qid 1\): 'relevant_clip_ids' must be integers"),
        ({"saliency_scores": [[4, True, 4], [2, 2, 2]]}, {}, r"gt\.jsonl: row 1 \(qid 1\): 'saliency_scores' must"),
        ({}, {"pred_saliency_scores": [True, 0.5]}, r"p\.jsonl: row 1 \(qid 1\): 'pred_saliency_scores' .*True"),
        ({}, {"pred_relevant_windows": [[-0.5, 4, 0.9]]}, r"p\.jsonl: row 1 \(qid 1\): .*negative start"),
    ],
)
def test_qvhighlights_bad_values(tmp_path, capsys, gt_change, sub_change, pattern):
    gt = _jsonl(tmp_path / "gt.jsonl", [{**QVH_GT, **gt_change}])
    sub = _jsonl(tmp_path / "p.jsonl", [{**QVH_SUB, **sub_change}])
    _fails(["qvhighlights", "--ground-truth", gt, "--predictions", sub], capsys, pattern)


def test_qvhighlights_refuses_grounding_format_ground_truth(tmp_path, capsys):
    gt = _jsonl(tmp_path / "gt.jsonl", [{"qid": 1, "relevant_windows": [[0, 4]]}])
    sub = _jsonl(tmp_path / "p.jsonl", [{"qid": 1, "pred_relevant_windows": [[0, 4, 0.9]]}])
    _fails(
        ["qvhighlights", "--ground-truth", gt, "--predictions", sub],
        capsys,
        r"gt\.jsonl: row 1 \(qid 1\): highlight \(saliency\) field\(s\) \['duration', 'relevant_clip_ids', "
        r"'saliency_scores'\] missing.*grounding or search task",
    )


def test_qvhighlights_mr_only_submission_warns_that_hl_is_skipped(tmp_path, capsys):
    gt = _jsonl(tmp_path / "gt.jsonl", [QVH_GT])
    sub = _jsonl(tmp_path / "p.jsonl", [{"qid": 1, "pred_relevant_windows": [[0, 4, 0.9]]}])
    code, out, err = _run(["qvhighlights", "--ground-truth", gt, "--predictions", sub], capsys)
    assert code == 0 and "HL-min-Fair" not in json.loads(out)
    assert "no row has 'pred_saliency_scores': highlight scores (HL-*) are not computed" in err


def _anet(tmp_path, segments):
    gt = tmp_path / "gt.json"
    anns = [{"segment": s, "label_id": 1} for s in segments]
    gt.write_text(json.dumps({"database": {"v1": {"subset": "validation", "annotations": anns}}}))
    return str(gt)


@pytest.mark.parametrize(
    "segments, pattern",
    [
        ([[-1, 10]], r"gt\.json: database\['v1'\]\.annotations\[0\]\.segment: negative start -1"),
        ([[0, 10], [0, True]], r"gt\.json: database\['v1'\]\.annotations\[1\]\.segment: end must be a number, got Tr"),
        ([[5, 2]], r"annotations\[0\]\.segment: start 5 > end 2"),
    ],
)
def test_tal_ground_truth_names_the_annotation(tmp_path, capsys, segments, pattern):
    pred = tmp_path / "p.csv"
    pred.write_text("video-id,t-start,t-end,label,score\nv1,0,10,1,0.9\n")
    _fails(["tal", "--ground-truth", _anet(tmp_path, segments), "--predictions", str(pred)], capsys, pattern)


@pytest.mark.parametrize(
    "body, pattern",
    [
        ("v1,-3,10,1,0.9\n", r"p\.csv: line 2: 't-start' is negative \(-3\)"),
        ("v1,0,10,1,0.9\nv1,8,4,1,0.5\n", r"p\.csv: line 3: 't-start' 8 > 't-end' 4"),
    ],
)
def test_tal_csv_predictions_name_the_line(tmp_path, capsys, body, pattern):
    pred = tmp_path / "p.csv"
    pred.write_text("video-id,t-start,t-end,label,score\n" + body)
    _fails(["tal", "--ground-truth", _anet(tmp_path, [[0, 10]]), "--predictions", str(pred)], capsys, pattern)


def test_tal_json_predictions_negative_and_bool(tmp_path, capsys):
    gt = _anet(tmp_path, [[0, 10]])
    pred = tmp_path / "p.json"
    row = {"video-id": "v1", "t-start": -1, "t-end": 10, "label": 1, "score": 0.9}
    pred.write_text(json.dumps([row]))
    _fails(["tal", "--ground-truth", gt, "--predictions", str(pred)], capsys, r"p\.json: row 1: 't-start' is negative")
    pred.write_text(json.dumps([{**row, "t-start": 0, "t-end": True}]))
    _fails(["tal", "--ground-truth", gt, "--predictions", str(pred)], capsys, r"p\.json: row 1: 't-end' must be a num")


def test_tal_csv_with_byte_order_mark_is_read(tmp_path, capsys):
    pred = tmp_path / "p.csv"
    pred.write_bytes("\ufeffvideo-id,t-start,t-end,label,score\nv1,0,10,1,0.9\n".encode("utf-8"))
    code, out, _ = _run(["tal", "--ground-truth", _anet(tmp_path, [[0, 10]]), "--predictions", str(pred)], capsys)
    assert code == 0 and json.loads(out)["average_mAP"] == 1.0


def test_tal_zero_length_ground_truth_is_dropped_as_the_reference_and_said(tmp_path, capsys):
    pred = tmp_path / "p.csv"
    pred.write_text("video-id,t-start,t-end,label,score\nv1,0,10,1,0.9\n")
    gt = _anet(tmp_path, [[5, 5], [0, 10]])
    code, out, err = _run(["tal", "--ground-truth", gt, "--predictions", str(pred)], capsys)
    assert code == 0 and json.loads(out)["dropped"]["gt_short"] == 1
    assert "1 ground-truth segment(s) shorter than 0.001 s (zero-length included) dropped" in err


def test_library_calls_check_too():
    """The stage code calls the library directly: the same checks hold there."""
    with pytest.raises(InputError, match=r"ground truth: row 1 \(qid 1\): .*negative start"):
        search_eval([{"qid": 1, "relevant_windows": [[-1, 2]]}], [{"qid": 1, "pred_relevant_windows": [[0, 1, 1]]}])
    with pytest.raises(InputError, match=r"ground truth: row 1: 't-start' is negative"):
        tal_map([{"video-id": "a", "t-start": -1, "t-end": 2, "label": 1}], [])
    with pytest.raises(InputError, match=r"ground truth: row 1 \(qid 1\): .*zero length"):
        qvhighlights_eval(
            [{"qid": 1, "pred_relevant_windows": [[0, 1, 1]]}], [{"qid": 1, "relevant_windows": [[1, 1]]}]
        )
