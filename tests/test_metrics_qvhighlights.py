"""QVHighlights MR/HD: hand-computed cases for every rule of moment_detr's evaluator we reproduce."""

import warnings

import numpy as np
import pytest

from pipeline.core.io import InputError
from pipeline.metrics import MetricsWarning, qvhighlights_eval
from pipeline.metrics.qvhighlights import highlight_average_precision

pytestmark = pytest.mark.filterwarnings("ignore::pipeline.metrics.MetricsWarning")


def gt_row(qid, windows, duration=150, clips=None, scores=None):
    row = {"qid": qid, "vid": f"v{qid}", "duration": duration, "relevant_windows": windows}
    if clips is not None:
        row["relevant_clip_ids"] = clips
        row["saliency_scores"] = scores
    return row


def mr(windows_gt, windows_pred):
    return qvhighlights_eval([{"qid": 1, "pred_relevant_windows": windows_pred}], [gt_row(1, windows_gt)])


def test_perfect_prediction_and_output_layout():
    # one query per length bucket, so that no bucket is empty
    windows = [[0, 8], [10, 30], [40, 100]]
    sub = [
        {"qid": i, "pred_relevant_windows": [[s, e, 0.9]], "pred_saliency_scores": [1.0, 0.0, 0.0]}
        for i, (s, e) in enumerate(windows)
    ]
    gt = [gt_row(i, [w], duration=6, clips=[0], scores=[[4, 4, 4]]) for i, w in enumerate(windows)]
    res = qvhighlights_eval(sub, gt)
    assert list(res) == ["brief", "HL-min-Fair", "HL-min-Good", "HL-min-VeryGood", "full", "long", "middle", "short"]
    assert list(res["brief"]) == [
        "MR-full-R1@0.5",
        "MR-full-R1@0.7",
        "MR-full-mAP",
        "MR-full-mAP@0.5",
        "MR-full-mAP@0.75",
        "MR-long-mAP",
        "MR-middle-mAP",
        "MR-short-mAP",
        "HL-min-Fair-mAP",
        "HL-min-Fair-Hit1",
        "HL-min-Good-mAP",
        "HL-min-Good-Hit1",
        "HL-min-VeryGood-mAP",
        "HL-min-VeryGood-Hit1",
    ]
    assert list(res["full"]["MR-mAP"]) == [str(t) for t in (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)] + [
        "average"
    ]
    assert list(res["full"]["MR-R1"])[:3] == ["0.3", "0.35", "0.4"] and len(res["full"]["MR-R1"]) == 14
    assert set(res["brief"].values()) == {100.0}


def test_r1_uses_the_first_listed_window_and_map_the_scores():
    res = mr([[0, 10]], [[50, 60, 0.1], [0, 10, 0.9]])
    assert res["full"]["MR-R1"]["0.5"] == 0.0  # first listed is wrong, whatever its score
    assert res["full"]["MR-mAP"]["0.5"] == 100.0  # the stable score sort puts the TP first


def test_only_the_first_ten_listed_windows_count():
    fps = [[100 + 3 * i, 101 + 3 * i, 0.5] for i in range(10)]
    # TP listed 11th with the best score: cut before sorting → AP 0.
    assert mr([[0, 10]], fps + [[0, 10, 0.99]])["full"]["MR-mAP"]["0.5"] == 0.0
    # TP listed 10th with the lowest score: ranked last of 10 → AP = 1/10.
    assert mr([[0, 10]], fps[:9] + [[0, 10, 0.01]])["full"]["MR-mAP"]["0.5"] == 10.0


def test_iou_exactly_half_passes_half():
    res = mr([[0, 5]], [[0, 10, 1.0]])  # IoU 5/10
    assert res["full"]["MR-mAP"]["0.5"] == 100.0 and res["full"]["MR-mAP"]["0.55"] == 0.0
    assert res["full"]["MR-R1"]["0.5"] == 100.0 and res["full"]["MR-R1"]["0.55"] == 0.0
    assert res["full"]["MR-mAP"]["average"] == 10.0


def test_tied_scores_keep_list_order():
    assert mr([[0, 10]], [[50, 60, 0.5], [0, 10, 0.5]])["full"]["MR-mAP"]["0.5"] == 50.0
    assert mr([[0, 10]], [[0, 10, 0.5], [50, 60, 0.5]])["full"]["MR-mAP"]["0.5"] == 100.0


def test_equal_iou_tries_the_later_gt_first():
    # [1, 11] overlaps both GTs with IoU 9/11; it must lock the later GT [2, 12], leaving [0, 10] to the
    # second prediction. Locking the first GT instead would give AP 0.5 at IoU 0.7.
    res = mr([[0, 10], [2, 12]], [[1, 11, 0.9], [0, 10, 0.8]])
    assert res["full"]["MR-mAP"]["0.7"] == 100.0
    assert res["full"]["MR-mAP"]["0.8"] == 100.0  # 9/11 = 0.818 still passes
    assert res["full"]["MR-mAP"]["0.85"] == 25.0  # FP then TP, recall 1/2 at precision 1/2


def test_duplicates_are_false_positives():
    assert mr([[0, 10], [20, 30]], [[0, 10, 0.9], [0, 10, 0.8], [20, 30, 0.7]])["full"]["MR-mAP"]["0.5"] == 83.33


def test_unsorted_list_is_sorted_by_score():
    res = mr([[0, 10], [20, 30]], [[70, 80, 0.2], [20, 30, 0.7], [40, 50, 0.5], [0, 10, 0.9]])
    assert res["full"]["MR-mAP"]["0.5"] == 100.0
    assert res["full"]["MR-R1"]["0.5"] == 0.0


def test_length_buckets_keep_only_in_bucket_windows():
    sub = [
        {"qid": 1, "pred_relevant_windows": [[0, 5, 0.9], [20, 40, 0.8]]},  # short GT [0,5], middle GT [20,40]
        {"qid": 2, "pred_relevant_windows": [[0, 100, 0.9]]},  # long GT only
    ]
    gt = [gt_row(1, [[0, 5], [20, 40]]), gt_row(2, [[0, 100]])]
    res = qvhighlights_eval(sub, gt)
    assert res["full"]["MR-mAP"]["0.5"] == 100.0
    assert res["short"]["MR-mAP"]["0.5"] == 100.0  # [20,40] is a FP ranked after the TP
    assert res["middle"]["MR-mAP"]["0.5"] == 50.0  # FP first, then the TP
    assert res["long"]["MR-mAP"]["0.5"] == 100.0
    assert res["middle"]["MR-R1"]["0.5"] == 0.0  # first listed window [0,5] vs middle GT


def test_empty_bucket_is_nan_with_a_warning():
    with pytest.warns(MetricsWarning, match="bucket 'long'"):
        res = mr([[0, 5]], [[0, 5, 1.0]])
    assert np.isnan(res["long"]["MR-mAP"]["average"]) and np.isnan(res["brief"]["MR-long-mAP"])


def test_query_without_predictions_scores_zero_and_warns():
    sub = [{"qid": 1, "pred_relevant_windows": []}, {"qid": 2, "pred_relevant_windows": [[0, 10, 1.0]]}]
    with pytest.warns(MetricsWarning, match="no predicted window"):
        res = qvhighlights_eval(sub, [gt_row(1, [[0, 10]]), gt_row(2, [[0, 10]])])
    assert res["full"]["MR-mAP"]["0.5"] == 50.0 and res["full"]["MR-R1"]["0.5"] == 50.0


def test_rounding_is_correctly_rounded_formatting():
    # 1/8 → 12.5 exactly; 1/3 → 33.33; AP over 3 queries = (1 + 0.5 + 0) / 3 → 50.0.
    res = qvhighlights_eval(
        [
            {"qid": i, "pred_relevant_windows": w}
            for i, w in enumerate([[[0, 10, 1]], [[50, 60, 1], [0, 10, 0.5]], [[50, 60, 1]]])
        ],
        [gt_row(i, [[0, 10]]) for i in range(3)],
    )
    assert res["full"]["MR-mAP"]["0.5"] == 50.0
    assert res["full"]["MR-R1"]["0.5"] == 33.33


# ----------------------------------------------------------------------------- highlight detection


def hd(labels_per_annotator, scores, duration=None):
    """One query whose annotator ratings are given per clip (list of [a0, a1, a2])."""
    n = len(labels_per_annotator)
    clips = [i for i in range(n) if any(labels_per_annotator[i])]
    gt = gt_row(1, [[0, 2]], duration=duration or 2 * n, clips=clips, scores=[labels_per_annotator[i] for i in clips])
    return qvhighlights_eval([{"qid": 1, "pred_saliency_scores": scores}], [gt])


def test_hd_all_positive_and_all_negative_annotators():
    # annotator 0 rates every clip 4 (AP 1), annotators 1 and 2 rate none ≥ 2 (AP 0).
    res = hd([[4, 0, 0], [4, 1, 0], [4, 0, 1]], [0.1, 0.9, 0.5])
    assert res["HL-min-VeryGood"]["HL-mAP"] == 33.33
    assert res["HL-min-VeryGood"]["HL-Hit1"] == 100.0  # clip 1 is positive for annotator 0


def test_hd_short_saliency_list_is_zero_padded():
    # 4 clips, positive only at clip 3; scores padded to [0.5, 0.4, 0, 0] → clip 3 ties with clip 2 at 0.
    res = hd([[0, 0, 0], [0, 0, 0], [0, 0, 0], [4, 4, 4]], [0.5, 0.4])
    assert res["HL-min-VeryGood"]["HL-mAP"] == 25.0
    assert res["HL-min-VeryGood"]["HL-Hit1"] == 0.0


def test_hd_long_saliency_list_is_truncated_and_far_argmax_misses():
    res = hd([[4, 4, 4], [0, 0, 0]], [0.9, 0.1, 0.5, 5.0])
    assert res["HL-min-VeryGood"]["HL-mAP"] == 100.0  # truncated to [0.9, 0.1]
    assert res["HL-min-VeryGood"]["HL-Hit1"] == 0.0  # argmax 3 is beyond the 2 clips


def test_hd_tied_scores_form_one_threshold():
    res = hd([[4, 4, 4], [0, 0, 0], [4, 4, 4], [0, 0, 0]], [1.0, 1.0, 0.5, 0.5])
    assert res["HL-min-VeryGood"]["HL-mAP"] == 50.0
    # Hit1: first index of the max wins the tie → clip 0, a positive.
    assert res["HL-min-VeryGood"]["HL-Hit1"] == 100.0


def test_hd_levels_binarise_at_2_3_4():
    res = hd([[2, 2, 2], [3, 3, 3], [4, 4, 4], [0, 0, 0]], [0.1, 0.2, 0.3, 0.4])
    # ranking c3 (0), c2 (4), c1 (3), c0 (2); interpolated precision looks toward higher recall
    assert res["HL-min-Fair"]["HL-mAP"] == 75.0  # [-, +, +, +]: 3/4 at every positive
    assert res["HL-min-Good"]["HL-mAP"] == 66.67  # [-, +, +, -]: 2/3 at both positives
    assert res["HL-min-VeryGood"]["HL-mAP"] == 50.0  # the only positive ranked 2nd
    assert res["HL-min-Good"]["HL-Hit1"] == 0.0  # argmax = clip 3, rated 0


@pytest.mark.parametrize("tied", [True, False])
def test_hd_matches_sklearn_recipe_on_random_lists(tied):
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(50, 12)) / 4 if tied else rng.random((50, 12))
    labels = rng.random((50, 3, 12)) < 0.3
    n_clips = rng.integers(1, 13, size=50)
    ours = highlight_average_precision(scores, labels, n_clips)
    for q in range(50):
        for a in range(3):
            y, s = labels[q, a, : n_clips[q]].astype(float), scores[q, : n_clips[q]]
            if len(set(y)) == 1:
                ref = float(y[0] != 0)
            else:
                prec, rec, _ = sk.precision_recall_curve(y, s)
                rec = rec.astype(np.float32)
                for i in range(1, len(prec)):
                    prec[i] = max(prec[i - 1], prec[i])
                ref = np.mean(prec[np.where(np.diff(rec))])
            assert ours[q, a] == ref


# ----------------------------------------------------------------------------- input errors


@pytest.mark.parametrize(
    "sub, gt, match",
    [
        ([{"pred_relevant_windows": [[0, 1, 1]]}], [gt_row(1, [[0, 1]])], r"predictions: row 1: missing key 'qid'"),
        ([{"qid": 1, "pred_relevant_windows": [[5, 1, 1]]}], [gt_row(1, [[0, 1]])], r"row 1 \(qid 1\).*start > end"),
        ([{"qid": 1, "pred_relevant_windows": [[0, 1, float("nan")]]}], [gt_row(1, [[0, 1]])], r"qid 1.*NaN"),
        ([{"qid": 1, "pred_relevant_windows": [[0, 1]]}], [gt_row(1, [[0, 1]])], r"must have 3 numbers"),
        ([{"qid": 1, "pred_relevant_windows": [[0, "a", 1]]}], [gt_row(1, [[0, 1]])], r"non-number 'a'"),
        ([{"qid": 2, "pred_relevant_windows": [[0, 1, 1]]}], [gt_row(1, [[0, 1]])], r"qid sets differ"),
        (
            [{"qid": 1, "pred_relevant_windows": []}, {"qid": 1, "pred_relevant_windows": []}],
            [gt_row(1, [[0, 1]])],
            r"row 2 \(qid 1\): duplicate qid \(also in row 1\)",
        ),
        ([{"qid": 1, "pred_saliency_scores": [1]}], [gt_row(1, [[0, 1]])], r"missing key 'relevant_clip_ids'"),
        (
            [{"qid": 1, "pred_saliency_scores": [1]}],
            [gt_row(1, [[0, 1]], duration=4, clips=[2], scores=[[1, 1, 1]])],
            r"relevant_clip_ids must lie in \[0, 2\)",
        ),
        (
            [{"qid": 1, "pred_relevant_windows": [[0, 1, 1]]}, {"qid": 2}],
            [gt_row(1, [[0, 1]]), gt_row(2, [[0, 1]])],
            r"row 2 \(qid 2\): missing key",
        ),
    ],
)
def test_malformed_input_names_the_row(sub, gt, match):
    with pytest.raises(InputError, match=match):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MetricsWarning)
            qvhighlights_eval(sub, gt)


def test_ground_truth_errors_name_the_ground_truth_row():
    sub = [{"qid": 2, "pred_relevant_windows": [[0, 1, 1]]}, {"qid": 1, "pred_relevant_windows": [[0, 1, 1]]}]
    gt = [gt_row(1, [[0, 1]]), gt_row(2, [[4, 3]])]
    with pytest.raises(InputError, match=r"ground truth: row 2 \(qid 2\).*start > end"):
        qvhighlights_eval(sub, gt)
