"""Property tests: the vectorised metrics equal literal one-prediction-at-a-time implementations of the
reference rules (written here from the evaluator notes, bit for bit), plus invariances and ranges."""

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.metrics import qvhighlights_eval, search_eval, tal_map
from pipeline.metrics._inputs import Windows, parse_windows
from pipeline.metrics.qvhighlights import MR_MAP_THRESHOLDS, query_average_precision
from pipeline.metrics.search import per_moment_scores

pytestmark = pytest.mark.filterwarnings("ignore::pipeline.metrics.MetricsWarning")
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)

# ----------------------------------------------------------------------------- literal oracles


def iou(a, b):
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


def hull_iou(a, b):
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union != 0 else 0.0


def interpolated_ap(prec, rec):
    mprec = np.hstack([[0.0], prec, [0.0]])
    mrec = np.hstack([[0.0], rec, [1.0]])
    for i in range(len(mprec) - 2, -1, -1):
        mprec[i] = max(mprec[i], mprec[i + 1])
    idx = np.where(mrec[1:] != mrec[:-1])[0] + 1
    return np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx])


def detection_ap(gts, preds, thresholds):
    """gts: [(vid, s, e)]; preds: [(vid, s, e, score)] already ranked. Greedy locking, one pass per pred."""
    ap = np.zeros(len(thresholds))
    if not preds:
        return ap
    tp = np.zeros((len(thresholds), len(preds)))
    fp = np.zeros_like(tp)
    lock = -np.ones((len(thresholds), len(gts)))
    for i, (vid, s, e, _) in enumerate(preds):
        cand = [j for j, g in enumerate(gts) if g[0] == vid]
        if not cand:
            fp[:, i] = 1
            continue
        ious = np.array([iou((s, e), gts[j][1:]) for j in cand])
        order = np.argsort(ious, kind="stable")[::-1]
        for t, thr in enumerate(thresholds):
            for k in order:
                if ious[k] < thr:
                    fp[t, i] = 1
                    break
                if lock[t, cand[k]] >= 0:
                    continue
                tp[t, i] = 1
                lock[t, cand[k]] = i
                break
            if not tp[t, i] and not fp[t, i]:
                fp[t, i] = 1
    tpc, fpc = np.cumsum(tp, axis=1), np.cumsum(fp, axis=1)
    for t in range(len(thresholds)):
        ap[t] = interpolated_ap(tpc[t] / (tpc[t] + fpc[t]), tpc[t] / len(gts))
    return ap


def ranked(windows, max_windows=10):
    kept = windows[:max_windows] if max_windows else list(windows)
    return sorted(kept, key=lambda w: -w[2])


# ----------------------------------------------------------------------------- strategies

coord = st.integers(0, 16).map(lambda x: x / 2)
score = st.sampled_from([0.1, 0.2, 0.5, 0.7, 0.9])


@st.composite
def gt_window(draw):
    a, b = draw(coord), draw(coord)
    return [min(a, b), max(a, b) + 0.5]


@st.composite
def pred_window(draw):
    a, b = draw(coord), draw(coord)
    return [min(a, b), max(a, b), draw(score)]


@st.composite
def queries(draw, max_gt=4, max_pred=13):
    n = draw(st.integers(1, 5))
    gts, preds = [], []
    for q in range(n):
        gts.append({"qid": q, "relevant_windows": draw(st.lists(gt_window(), min_size=1, max_size=max_gt))})
        preds.append({"qid": q, "pred_relevant_windows": draw(st.lists(pred_window(), max_size=max_pred))})
    return gts, preds


def windows(rows, key) -> Windows:
    return parse_windows(rows, key, "test", [r["qid"] for r in rows], (2, 3))


# ----------------------------------------------------------------------------- equality with the oracles


@SETTINGS
@given(queries())
def test_mr_average_precision_equals_literal_reference(data):
    gts, preds = data
    ours = query_average_precision(
        windows(preds, "pred_relevant_windows"), windows(gts, "relevant_windows"), MR_MAP_THRESHOLDS
    )
    for q, (g, p) in enumerate(zip(gts, preds)):
        ref = detection_ap(
            [(0, *w) for w in g["relevant_windows"]],
            [(0, *w) for w in ranked(p["pred_relevant_windows"])],
            MR_MAP_THRESHOLDS,
        )
        assert np.array_equal(ours[q], ref)


@SETTINGS
@given(queries())
def test_mr_r1_and_map_dict_equal_literal_reference(data):
    gts, preds = data
    res = qvhighlights_eval(preds, gts)["full"]
    r1 = []
    for g, p in zip(gts, preds):
        if not p["pred_relevant_windows"]:
            r1.append(0.0)
            continue
        first = p["pred_relevant_windows"][0]
        best = int(np.argmax([iou(first, w) for w in g["relevant_windows"]]))
        r1.append(hull_iou(first, g["relevant_windows"][best]))
    for t in ("0.3", "0.5", "0.7", "0.95"):
        assert res["MR-R1"][t] == float(f"{100 * np.mean(np.array(r1) >= float(t)):.2f}")
    aps = np.array(
        [
            detection_ap(
                [(0, *w) for w in g["relevant_windows"]],
                [(0, *w) for w in ranked(p["pred_relevant_windows"])],
                MR_MAP_THRESHOLDS,
            )
            for g, p in zip(gts, preds)
        ]
    )
    assert res["MR-mAP"]["average"] == float(f"{100 * np.mean(aps.mean(0)):.2f}")


@st.composite
def tal_data(draw):
    gt = []
    for _ in range(draw(st.integers(1, 8))):
        w = draw(gt_window())
        gt.append(
            {"video-id": draw(st.sampled_from("ab")), "t-start": w[0], "t-end": w[1], "label": draw(st.integers(0, 2))}
        )
    preds = []
    for _ in range(draw(st.integers(0, 25))):
        w = draw(pred_window())
        preds.append(
            {
                "video-id": draw(st.sampled_from("abc")),
                "t-start": w[0],
                "t-end": w[1],
                "label": draw(st.integers(0, 2)),
                "score": w[2],
            }
        )
    return gt, preds


def tal_oracle(gt, preds, thresholds):
    kept = []
    for r in gt:  # reference GT clean-up
        if r["t-end"] - r["t-start"] < 1e-3:
            continue
        if any(
            k["video-id"] == r["video-id"]
            and k["label"] == r["label"]
            and abs(k["t-start"] - r["t-start"]) <= 1e-3
            and abs(k["t-end"] - r["t-end"]) <= 1e-3
            for k in kept
        ):
            continue
        kept.append(r)
    classes = sorted({r["label"] for r in kept})
    ap = np.zeros((len(thresholds), len(classes)))
    for c, label in enumerate(classes):
        g = [(r["video-id"], r["t-start"], r["t-end"]) for r in kept if r["label"] == label]
        p = sorted(
            [(r["video-id"], r["t-start"], r["t-end"], r["score"]) for r in preds if r["label"] == label],
            key=lambda x: -x[3],
        )
        ap[:, c] = detection_ap(g, p, thresholds)
    return ap


@SETTINGS
@given(tal_data())
def test_tal_equals_literal_reference(data):
    gt, preds = data
    from pipeline.metrics import TAL_THRESHOLDS

    res = tal_map(gt, preds)
    ref = tal_oracle(gt, preds, TAL_THRESHOLDS)
    ours = np.array([list(v.values()) for v in res["per_class_AP"].values()]).T
    assert np.array_equal(ours, ref)
    assert list(res["mAP"].values()) == ref.mean(axis=1).tolist()
    assert res["average_mAP"] == ref.mean(axis=1).mean()


def moment_oracle(gts, preds_ranked, thr):
    """R_m and AP_m of every GT moment straight from the thesis definitions."""
    out = []
    for j in range(len(gts)):
        match = lambda p, k: iou(p, gts[k]) >= thr  # noqa: E731
        kept = [p for p in preds_ranked if match(p, j) or not any(match(p, k) for k in range(len(gts)) if k != j)]
        r_m = float(bool(kept) and match(kept[0], j))
        tp = np.zeros(len(kept))
        first = next((i for i, p in enumerate(kept) if match(p, j)), None)
        if first is not None:
            tp[first] = 1
        tpc, fpc = np.cumsum(tp), np.cumsum(1 - tp)
        ap_m = interpolated_ap(tpc / (tpc + fpc), tpc) if len(kept) else 0.0
        out.append((r_m, ap_m))
    return out


@SETTINGS
@given(queries(max_gt=5, max_pred=8))
def test_search_per_moment_scores_equal_thesis_definitions(data):
    gts, preds = data
    thr = np.array([0.1, 0.3, 0.5, 0.75])
    r_m, ap_m = per_moment_scores(windows(gts, "relevant_windows"), windows(preds, "pred_relevant_windows"), thr, 10)
    row = 0
    for g, p in zip(gts, preds):
        for t_i, t in enumerate(thr):
            ref = moment_oracle(g["relevant_windows"], ranked(p["pred_relevant_windows"]), t)
            assert [(r_m[row + j, t_i], ap_m[row + j, t_i]) for j in range(len(ref))] == ref
        row += len(g["relevant_windows"])


@SETTINGS
@given(queries(max_gt=1))
def test_single_moment_queries_rm_equals_r1_and_mapm_equals_map(data):
    gts, preds = data
    res = search_eval(gts, preds)["all"]
    assert res["R_m"] == res["R1"] and res["mAP_m"] == res["mAP"]


# ----------------------------------------------------------------------------- invariances and ranges


def numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from numbers(v)
    elif isinstance(obj, float):
        yield obj


@SETTINGS
@given(queries(), st.randoms(use_true_random=False))
def test_query_order_and_gt_order_invariance(data, rnd):
    gts, preds = data
    base_q = qvhighlights_eval(preds, gts)
    base_s = search_eval(gts, preds)
    perm = list(range(len(gts)))
    rnd.shuffle(perm)
    gts2 = [gts[i] for i in perm]
    preds2 = [preds[i] for i in perm]
    for a, b in zip(numbers(base_q), numbers(qvhighlights_eval(preds2, gts2))):
        assert abs(a - b) <= 0.01 or (np.isnan(a) and np.isnan(b))
    # R_m and mAP_m are per-moment: the order of the GT windows inside a query does not matter
    gts3 = [{**g, "relevant_windows": rnd.sample(g["relevant_windows"], len(g["relevant_windows"]))} for g in gts2]
    moved = search_eval(gts3, preds2)["all"]
    for metric in ("R_m", "mAP_m", "R1"):
        for k, v in base_s["all"][metric].items():
            assert abs(moved[metric][k] - v) <= 0.01


@SETTINGS
@given(tal_data(), st.randoms(use_true_random=False))
def test_tal_prediction_order_invariance_with_distinct_scores(data, rnd):
    gt, preds = data
    preds = [{**p, "score": 1.0 - i * 1e-3} for i, p in enumerate(preds)]
    shuffled = rnd.sample(preds, len(preds))
    assert tal_map(gt, preds)["per_class_AP"] == tal_map(gt, shuffled)["per_class_AP"]


@SETTINGS
@given(queries())
def test_all_numbers_are_percentages(data):
    gts, preds = data
    for value in list(numbers(qvhighlights_eval(preds, gts))) + list(numbers(search_eval(gts, preds))):
        assert np.isnan(value) or 0.0 <= value <= 100.0


@SETTINGS
@given(
    st.lists(st.lists(gt_window(), min_size=1, max_size=10), min_size=1, max_size=5), st.randoms(use_true_random=False)
)
def test_perfect_predictions_score_100(gt_lists, rnd):
    gts = [{"qid": q, "relevant_windows": w} for q, w in enumerate(gt_lists)]
    preds = [
        {"qid": q, "pred_relevant_windows": [[s, e, 1.0 - 0.01 * i] for i, (s, e) in enumerate(w)]}
        for q, w in enumerate(gt_lists)
    ]
    full = qvhighlights_eval(preds, gts)["full"]
    assert set(full["MR-mAP"].values()) == {100.0} and set(full["MR-R1"].values()) == {100.0}
    res = search_eval(gts, preds)["all"]
    assert {v for m in ("R_m", "mAP_m", "mAP", "R1") for v in res[m].values()} == {100.0}
    tal_gt = [
        {"video-id": str(q), "t-start": s, "t-end": e, "label": rnd.randint(0, 2)}
        for q, w in enumerate(gt_lists)
        for s, e in w
    ]
    tal_pred = [{**r, "score": rnd.random()} for r in tal_gt]
    assert tal_map(tal_gt, tal_pred, dedup=False)["average_mAP"] == 1.0


def test_perfect_saliency_scores_100():
    rng = random.Random(0)
    gts, preds = [], []
    for q in range(20):
        n = rng.randint(2, 30)
        ratings = [rng.choice([0, 1, 2, 3, 4]) for _ in range(n)]
        ratings[rng.randrange(n)] = 4  # every level has a positive clip (else its AP is 0 by definition)
        clips = [i for i in range(n) if ratings[i]]
        gts.append(
            {
                "qid": q,
                "duration": 2 * n,
                "relevant_windows": [[0, 2]],
                "relevant_clip_ids": clips,
                "saliency_scores": [[ratings[i]] * 3 for i in clips],
            }
        )
        preds.append({"qid": q, "pred_saliency_scores": [r + rng.random() * 0.5 for r in ratings]})
    res = qvhighlights_eval(preds, gts)
    for level in ("Fair", "Good", "VeryGood"):
        assert res[f"HL-min-{level}"] == {"HL-mAP": 100.0, "HL-Hit1": 100.0}
