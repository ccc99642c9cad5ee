"""TAL mAP@tIoU: hand-computed cases for ActionFormer's ANETdetection rules."""

import pytest

from pipeline.core.io import InputError
from pipeline.metrics import TAL_THRESHOLDS, MetricsWarning, load_anet_ground_truth, tal_map

pytestmark = pytest.mark.filterwarnings("ignore::pipeline.metrics.MetricsWarning")


def g(vid, s, e, label):
    return {"video-id": vid, "t-start": s, "t-end": e, "label": label}


def p(vid, s, e, label, score):
    return {"video-id": vid, "t-start": s, "t-end": e, "label": label, "score": score}


def test_thresholds_are_linspace_floats():
    assert TAL_THRESHOLDS[2] == 0.30000000000000004 and len(TAL_THRESHOLDS) == 5


def test_iou_exactly_point_three_fails_the_linspace_threshold():
    res = tal_map([g("v", 0, 10, 1)], [p("v", 0, 3, 1, 0.9)])  # IoU 3/10
    assert list(res["mAP"].values()) == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert res["average_mAP"] == pytest.approx(0.4)
    # with a literal 0.3 the same IoU passes
    assert tal_map([g("v", 0, 10, 1)], [p("v", 0, 3, 1, 0.9)], thresholds=[0.3])["mAP"]["0.3"] == 1.0


def test_hand_computed_ap_across_videos():
    gt = [g("a", 0, 10, 1), g("b", 5, 15, 1)]
    preds = [p("a", 0, 10, 1, 0.9), p("a", 0, 9, 1, 0.8), p("c", 0, 10, 1, 0.75), p("b", 5, 15, 1, 0.7)]
    # TP, FP (GT locked), FP (video without GT of the class), TP → AP = 1/2·1 + 1/2·2/4
    res = tal_map(gt, preds, thresholds=[0.5])
    assert res["mAP"]["0.5"] == 0.75


def test_tied_scores_keep_input_order():
    gt = [g("a", 0, 10, 1)]
    assert tal_map(gt, [p("b", 0, 10, 1, 0.5), p("a", 0, 10, 1, 0.5)], [0.5])["mAP"]["0.5"] == 0.5
    assert tal_map(gt, [p("a", 0, 10, 1, 0.5), p("b", 0, 10, 1, 0.5)], [0.5])["mAP"]["0.5"] == 1.0


def test_unsorted_predictions_are_ranked_by_score():
    gt = [g("a", 0, 10, 1)]
    assert tal_map(gt, [p("b", 0, 10, 1, 0.1), p("a", 0, 10, 1, 0.9)], [0.5])["mAP"]["0.5"] == 1.0


def test_class_without_predictions_counts_as_zero_and_absent_labels_are_dropped():
    gt = [g("a", 0, 10, 1), g("a", 20, 30, 2)]
    preds = [p("a", 0, 10, 1, 0.9), p("a", 20, 30, 7, 0.95)]  # label 7 has no GT
    with pytest.warns(MetricsWarning, match="absent from the ground truth"):
        res = tal_map(gt, preds, [0.5])
    assert res["per_class_AP"] == {"1": {"0.5": 1.0}, "2": {"0.5": 0.0}}
    assert res["mAP"]["0.5"] == 0.5
    assert res["dropped"]["predictions_absent_class"] == 1 and res["num_predictions"] == 1


def test_duplicate_predictions_are_false_positives():
    gt = [g("a", 0, 10, 1)]
    res = tal_map(gt, [p("a", 0, 10, 1, 0.9), p("a", 0, 10, 1, 0.8), p("a", 0, 10, 1, 0.7)], [0.5])
    assert res["mAP"]["0.5"] == 1.0  # recall 1 reached at precision 1; later FPs do not lower AP


def test_gt_cleanup_drops_short_segments_and_near_duplicates():
    gt = [g("a", 0, 10, 1), g("a", 0.0009, 10.001, 1), g("a", 0, 10, 2), g("a", 4, 4.0005, 1)]
    res = tal_map(gt, [p("a", 0, 10, 1, 0.9)], [0.5])
    assert res["dropped"] == {"gt_short": 1, "gt_duplicate": 1, "predictions_absent_class": 0}
    assert res["num_ground_truth"] == 2  # the same segment with another label is not a duplicate
    assert res["per_class_AP"]["1"]["0.5"] == 1.0
    no_dedup = tal_map(gt, [p("a", 0, 10, 1, 0.9)], [0.5], dedup=False)
    assert no_dedup["per_class_AP"]["1"]["0.5"] == pytest.approx(1 / 3)


def test_equal_iou_tries_the_later_gt_first():
    gt = [g("a", 0, 10, 1), g("a", 2, 12, 1)]
    preds = [p("a", 1, 11, 1, 0.9), p("a", 0, 10, 1, 0.8)]  # first pred: IoU 9/11 with both GTs
    assert tal_map(gt, preds, [0.7])["mAP"]["0.7"] == 1.0


def test_string_labels_and_columns_input():
    cols = {
        "video-id": ["a", "a"],
        "t-start": [0.0, 20.0],
        "t-end": [10.0, 30.0],
        "label": ["cut", "wash"],
        "score": [0.9, 0.8],
    }
    gt = [g("a", 0, 10, "cut"), g("a", 20, 30, "wash")]
    assert tal_map(gt, cols)["average_mAP"] == 1.0


def test_load_anet_ground_truth_filters_subset():
    data = {
        "database": {
            "v1": {"subset": "Validation", "annotations": [{"segment": [0, 5], "label_id": 3}]},
            "v2": {"subset": "training", "annotations": [{"segment": [1, 2], "label_id": 4}]},
        }
    }
    assert load_anet_ground_truth(data, "validation") == [g("v1", 0, 5, 3)]
    assert len(load_anet_ground_truth(data)) == 2


@pytest.mark.parametrize(
    "gt, preds, match",
    [
        ([g("a", 0, 10, 1)], [p("a", 5, 1, 1, 0.9)], r"predictions: row 1: start 5.0 > end 1.0"),
        ([g("a", 0, 10, 1)], [p("a", 0, 1, 1, 0.9), p("a", 0, 1, 1, float("nan"))], r"row 2: 'score' is NaN"),
        ([g("a", 0, 10, 1)], [{"video-id": "a", "t-start": 0, "t-end": 1, "label": 1}], r"row 1: missing \['score'\]"),
        ([g("a", 0, 10, 1)], [p("a", "x", 1, 1, 0.9)], r"row 1: 't-start' must be a number"),
        ([g("a", 0, 10, 1)], [p("a", 0, 1, "1", 0.9)], r"labels are strings but ground truth labels are integers"),
        ([g("a", 9, 1, 1)], [], r"ground truth: row 1: start 9.0 > end 1.0"),
    ],
)
def test_malformed_rows_name_the_row(gt, preds, match):
    with pytest.raises(InputError, match=match):
        tal_map(gt, preds)
