"""``python -m pipeline.evaluate``: public file formats in, JSON out; bad input → one clear line, status 2."""

import json
import re
import subprocess
import sys

import pytest

from pipeline.evaluate import main
from tests.conftest import REPO_ROOT


def write_jsonl(path, rows, raw_lines=()):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "".join(line + "\n" for line in raw_lines))
    return str(path)


@pytest.fixture()
def qvh(tmp_path):
    gt = [
        {
            "qid": 1,
            "vid": "a",
            "duration": 8,
            "relevant_windows": [[0, 4]],
            "relevant_clip_ids": [0, 1],
            "saliency_scores": [[4, 4, 4], [2, 2, 2]],
        },
        {
            "qid": 2,
            "vid": "b",
            "duration": 8,
            "relevant_windows": [[2, 6]],
            "relevant_clip_ids": [2],
            "saliency_scores": [[4, 3, 2]],
        },
    ]
    sub = [
        {"qid": 1, "vid": "a", "pred_relevant_windows": [[0, 4, 0.9]], "pred_saliency_scores": [0.9, 0.5, 0.1, 0.0]},
        {"qid": 2, "vid": "b", "pred_relevant_windows": [[2, 6, 0.8]], "pred_saliency_scores": [0.1, 0.2, 0.9, 0.0]},
    ]
    return tmp_path, gt, sub


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_qvhighlights_prints_and_writes_result(qvh, capsys):
    tmp, gt, sub = qvh
    out_file = tmp / "res" / "metrics.json"
    code, out, err = run(
        [
            "qvhighlights",
            "--ground-truth",
            write_jsonl(tmp / "gt.jsonl", gt),
            "--predictions",
            write_jsonl(tmp / "p.jsonl", sub),
            "--out",
            str(out_file),
        ],
        capsys,
    )
    assert code == 0
    printed = json.loads(out)
    assert printed["brief"]["MR-full-mAP"] == 100.0 and printed["brief"]["HL-min-VeryGood-Hit1"] == 100.0
    assert printed["long"]["MR-mAP"]["average"] is None  # empty bucket → NaN → null
    assert "warning: QVHighlights length bucket 'middle'" in err
    assert json.loads(out_file.read_text()) == printed


@pytest.mark.parametrize(
    "mutate, raw, match",
    [
        (lambda s: s[1].pop("qid"), (), r"p.jsonl: row 2: missing key 'qid'"),
        (
            lambda s: s[0].update(pred_relevant_windows=[[5, 1, 0.9]]),
            (),
            r"p.jsonl: row 1 \(qid 1\): window \[5, 1, 0.9\].*start > end",
        ),
        (lambda s: s.pop(), (), r"qid sets differ: 1 qid\(s\) of .*gt.jsonl have no row in .*p.jsonl \(first: \[2\]\)"),
        (lambda s: None, ('{"qid": 3, "pred_relevant_windows": [[0, 1, NaN]]}',), r"qid sets differ"),
        (
            lambda s: s.pop(),
            ('{"qid": 2, "pred_relevant_windows": [[0, 1, NaN]], "pred_saliency_scores": []}',),
            r"row 2 \(qid 2\).*NaN or infinity",
        ),
        (lambda s: None, ("{not json",), r"p.jsonl: line 3: invalid JSON"),
    ],
)
def test_qvhighlights_bad_input_exits_2_naming_the_row(qvh, capsys, mutate, raw, match):
    tmp, gt, sub = qvh
    mutate(sub)
    code, out, err = run(
        [
            "qvhighlights",
            "--ground-truth",
            write_jsonl(tmp / "gt.jsonl", gt),
            "--predictions",
            write_jsonl(tmp / "p.jsonl", sub, raw),
        ],
        capsys,
    )
    assert code == 2 and out == ""
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert re.search(match, err), err


def test_missing_file_and_misused_option(tmp_path, capsys):
    code, _, err = run(
        ["grounding", "--ground-truth", str(tmp_path / "nope.jsonl"), "--predictions", "x.jsonl"], capsys
    )
    assert code == 2 and "nope.jsonl: file not found" in err
    gt = write_jsonl(tmp_path / "gt.jsonl", [{"qid": 1, "relevant_windows": [[0, 1]]}])
    code, _, err = run(["qvhighlights", "--ground-truth", gt, "--predictions", gt, "--iou", "0.5"], capsys)
    assert code == 2 and "--iou does not apply" in err
    code, _, err = run(["grounding", "--ground-truth", gt, "--predictions", gt, "--iou", "1.5"], capsys)
    assert code == 2 and "[0, 1]" in err


def test_tal_csv_and_activitynet_json(tmp_path, capsys):
    gt = {
        "database": {
            "v1": {
                "subset": "validation",
                "annotations": [{"segment": [0, 10], "label_id": 1}, {"segment": [20, 30], "label_id": 2}],
            },
            "v2": {"subset": "training", "annotations": [{"segment": [0, 10], "label_id": 5}]},
        }
    }
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "p.csv").write_text("video-id,t-start,t-end,label,score\nv1,0,10,1,0.9\nv1,20,23,2,0.8\n")
    code, out, _ = run(
        [
            "tal",
            "--ground-truth",
            str(tmp_path / "gt.json"),
            "--predictions",
            str(tmp_path / "p.csv"),
            "--subset",
            "validation",
        ],
        capsys,
    )
    assert code == 0
    res = json.loads(out)
    assert res["num_classes"] == 2 and res["per_class_AP"]["2"]["0.2"] == 1.0
    assert res["per_class_AP"]["2"]["0.3"] == 0.0  # IoU 3/10 fails linspace's 0.30000000000000004
    (tmp_path / "p.json").write_text(json.dumps({"results": {"v1": [{"segment": [0, 10], "label": 1, "score": 0.9}]}}))
    code, out, _ = run(
        [
            "tal",
            "--ground-truth",
            str(tmp_path / "gt.json"),
            "--predictions",
            str(tmp_path / "p.json"),
            "--subset",
            "validation",
            "--iou",
            "0.5",
        ],
        capsys,
    )
    assert code == 0 and json.loads(out)["mAP"] == {"0.5": 0.5}
    (tmp_path / "bad.csv").write_text("video-id,t-start,t-end,label,score\nv1,0,10,1,0.9\nv1,0,10,one,0.9\n")
    code, _, err = run(
        ["tal", "--ground-truth", str(tmp_path / "gt.json"), "--predictions", str(tmp_path / "bad.csv")], capsys
    )
    assert code == 2 and "bad.csv: line 3: label 'one' is not an integer class id" in err


def test_search_with_nested_splits(tmp_path, capsys):
    gt = write_jsonl(
        tmp_path / "gt.jsonl",
        [{"qid": "a", "relevant_windows": [[0, 10], [20, 30]]}, {"qid": "b", "relevant_windows": [[0, 10]]}],
    )
    pred = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"qid": "a", "pred_relevant_windows": [[0, 10, 0.9], [40, 50, 0.8], [20, 30, 0.7]]},
            {"qid": "b", "pred_relevant_windows": [[0, 10, 0.9]]},
        ],
    )
    (tmp_path / "splits.json").write_text(
        json.dumps({"search": {"single": ["b"], "multi": ["a"]}, "caption": {"single": [], "multi": []}})
    )
    args = ["search", "--ground-truth", gt, "--predictions", pred, "--splits", str(tmp_path / "splits.json")]
    code, _, err = run(args, capsys)
    assert code == 2 and "--splits-key" in err
    code, out, _ = run(args + ["--splits-key", "search", "--iou", "0.5", "--active-threshold", "0.5"], capsys)
    res = json.loads(out)
    assert code == 0 and res["multi"]["R_m"] == {"0.5": 50.0} and res["single"]["R_m"] == {"0.5": 100.0}
    assert res["all"]["active"]["active_mean"] == 2.0  # 3 active in a, 1 in b


def test_module_entry_point_runs_without_traceback(tmp_path):
    gt = write_jsonl(tmp_path / "gt.jsonl", [{"qid": 1, "relevant_windows": [[0, 10]]}])
    pred = write_jsonl(
        tmp_path / "p.jsonl", [{"qid": 1, "pred_relevant_windows": [[0, 10]]}, {"qid": 1, "pred_relevant_windows": []}]
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.evaluate", "grounding", "--ground-truth", gt, "--predictions", pred],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "row 2 (qid 1): duplicate qid (also in row 1)" in proc.stderr
