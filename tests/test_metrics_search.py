"""Search-query metrics (R_m, mAP_m, mAP, active queries) and single-moment grounding, hand-computed."""

import math

import pytest

from pipeline.datasets.schema import Query
from pipeline.core.io import InputError
from pipeline.metrics import MetricsWarning, grounding_eval, search_eval

pytestmark = pytest.mark.filterwarnings("ignore::pipeline.metrics.MetricsWarning")

GT1, GT2, FP = [0, 10], [50, 60], [20, 25]


def one(preds, gts=(GT1, GT2), **kw):
    """Evaluate one query; ``preds`` are windows in descending score order."""
    rows = [[s, e, 1.0 - 0.1 * i] for i, (s, e) in enumerate(preds)]
    return search_eval([{"qid": 1, "relevant_windows": list(gts)}], [{"qid": 1, "pred_relevant_windows": rows}], **kw)[
        "all"
    ]


@pytest.mark.parametrize(
    "preds, r_m, r1",
    [
        ([GT1, FP, GT2], 50.0, 100.0),  # Fig. 3.3 left: GT2 comes after a false positive
        ([GT1, GT2, FP], 100.0, 100.0),  # Fig. 3.3 middle: GT1's prediction is ignored for GT2
        ([FP, GT1, GT2], 0.0, 0.0),  # Fig. 3.3 right: a false positive on top
    ],
)
def test_fig_3_3_rm_versus_r1(preds, r_m, r1):
    res = one(preds, ious=[0.5])
    assert res["R_m"]["0.5"] == r_m and res["R1"]["0.5"] == r1


def test_fig_3_4_map_versus_map_m():
    res = one([GT1, FP, FP, FP, GT2], ious=[0.5])
    assert res["mAP"]["0.5"] == 70.0
    assert res["mAP_m"]["0.5"] == 62.5  # (1 + 1/4) / 2
    assert res["num_moments"] == 2


def test_single_moment_queries_reduce_to_r1_and_map():
    for preds in ([FP, GT1], [GT1, FP], [FP, FP, FP], [FP, [2, 8], GT1], []):
        res = one(preds, gts=[GT1], ious=[0.3, 0.5, 0.75])
        assert res["R_m"] == res["R1"] and res["mAP_m"] == res["mAP"]


def test_a_prediction_matching_two_gts_counts_for_both():
    # [0, 12] overlaps GT [0, 10] and [2, 12] with IoU 10/12 each
    res = one([[0, 12]], gts=[[0, 10], [2, 12]], ious=[0.5])
    assert res["R_m"]["0.5"] == 100.0 and res["mAP_m"]["0.5"] == 100.0
    assert res["mAP"]["0.5"] == 50.0  # standard mAP locks one GT per prediction


def test_duplicates_are_not_ignored_for_their_own_moment():
    res = one([GT1, GT1, GT2], ious=[0.5])
    assert res["R_m"]["0.5"] == 100.0  # the duplicate matches GT1 only: skipped for GT2
    assert res["mAP_m"]["0.5"] == 100.0
    assert res["mAP"]["0.5"] == 83.33


def test_iou_boundaries_and_threshold_keys():
    res = one([[0, 5]], gts=[GT1], ious=[0.5, 0.75])  # IoU exactly 0.5
    assert res["R_m"] == {"0.5": 100.0, "0.75": 0.0}


def test_max_windows_cuts_listed_windows_and_accepts_schema_queries():
    preds = [[100 + 2 * i, 101 + 2 * i, 0.9] for i in range(10)] + [[0, 10, 0.95]]
    gt = [Query(qid="q", vid="v", text="t", duration=200.0, windows=[(0.0, 10.0)])]
    pred = [{"qid": "q", "pred_relevant_windows": preds}]
    assert search_eval(gt, pred, [0.5])["all"]["R_m"]["0.5"] == 0.0
    assert search_eval(gt, pred, [0.5], max_windows=None)["all"]["R_m"]["0.5"] == 100.0


def test_splits_and_moment_weighting():
    gt = [{"qid": 1, "relevant_windows": [GT1, GT2]}, {"qid": 2, "relevant_windows": [GT1]}]
    pred = [
        {"qid": 1, "pred_relevant_windows": [[*GT1, 0.9], [*FP, 0.8], [*GT2, 0.7]]},
        {"qid": 2, "pred_relevant_windows": [[*GT1, 0.9]]},
    ]
    res = search_eval(gt, pred, [0.5], splits={"multi": [1], "single": [2]})
    assert res["all"]["R_m"]["0.5"] == pytest.approx(66.67)  # moments: 1, 0, 1
    assert res["all"]["R1"]["0.5"] == 100.0  # queries: 1, 1
    assert res["multi"]["R_m"]["0.5"] == 50.0 and res["single"]["R_m"]["0.5"] == 100.0
    assert (res["multi"]["num_queries"], res["multi"]["num_moments"]) == (1, 2)
    with pytest.raises(InputError, match=r"splits\['x'\].*qid\(s\) not in ground truth \(first: 3\)"):
        search_eval(gt, pred, [0.5], splits={"x": [3]})


def test_active_query_statistics():
    gt = [{"qid": 1, "relevant_windows": [GT1, GT2]}, {"qid": 2, "relevant_windows": [GT1]}]
    pred = [
        {"qid": 1, "pred_relevant_windows": [[0, 10, 0.9], [20, 30, 0.8], [52, 58, 0.3]]},
        {"qid": 2, "pred_relevant_windows": [[40, 50, 0.2]]},
    ]
    act = search_eval(gt, pred, [0.5], active_threshold=0.5)["all"]["active"]
    assert (act["active_mean"], act["active_std"]) == (1.0, 1.0)
    assert (act["match_p_mean"], act["match_p_std"]) == (0.5, 0.0)  # query 2 has no active prediction
    assert (act["match_gt_mean"], act["match_gt_std"]) == (0.25, 0.25)
    assert act["queries_without_active"] == 1


def test_query_without_predictions_warns():
    with pytest.warns(MetricsWarning, match="no predicted window"):
        res = one([], ious=[0.5])
    assert res["R_m"]["0.5"] == 0.0 and res["mAP"]["0.5"] == 0.0


# ----------------------------------------------------------------------------- grounding


def test_grounding_r1_miou_and_boundary():
    gt = [{"qid": 1, "relevant_windows": [GT1]}, {"qid": 2, "relevant_windows": [[20, 30]]}]
    pred = [
        {"qid": 1, "pred_relevant_windows": [[0, 10, 0.5], [0, 5, 0.9]]},  # top-1 by score: IoU 0.5
        {"qid": 2, "pred_relevant_windows": [[22, 30, 0.7]]},  # IoU 0.8
    ]
    res = grounding_eval(gt, pred, top_k=(1, 5))
    assert (res["R1@0.3"], res["R1@0.5"], res["R1@0.7"]) == (100.0, 100.0, 50.0)
    assert res["R5@0.7"] == 100.0
    assert res["mIoU"] == 65.0 and res["num_queries"] == 2


def test_grounding_unscored_windows_keep_list_order():
    res = grounding_eval(
        [{"qid": 1, "relevant_windows": [GT1]}], [{"qid": 1, "pred_relevant_windows": [[50, 60], GT1]}]
    )
    assert res["R1@0.5"] == 0.0 and res["mIoU"] == 0.0


@pytest.mark.parametrize(
    "gt, pred, match",
    [
        (
            [{"qid": 1, "relevant_windows": []}],
            [{"qid": 1, "pred_relevant_windows": []}],
            r"'relevant_windows' is empty",
        ),
        (
            [{"qid": 1, "relevant_windows": [GT1]}],
            [{"qid": 1, "pred_relevant_windows": [[3, 1, 0.5]]}],
            r"row 1 \(qid 1\).*start > end",
        ),
        (
            [{"qid": 1, "relevant_windows": [GT1]}],
            [{"qid": 1, "pred_relevant_windows": [[0, 1, math.inf]]}],
            r"NaN or infinity",
        ),
        ([{"qid": 1, "relevant_windows": [GT1]}], [{"qid": 2, "pred_relevant_windows": []}], r"qid sets differ"),
    ],
)
def test_malformed_search_input(gt, pred, match):
    with pytest.raises(InputError, match=match):
        search_eval(gt, pred)
    with pytest.raises(InputError, match=match):
        grounding_eval(gt, pred)
