"""Active decoder queries (pipeline/search_vmr/active.py; thesis §3.4.2.1, Tab 3.5, Fig 3.7): a collapsed model
counts ≈ 1 active query, a healthy one several, under the relative rule; the old absolute rule cannot tell them
apart when background scores have not vanished."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.io import InputError
from pipeline.search_vmr.active import active_mask, active_windows, slot_usage
from pipeline.search_vmr.evaluate import GTQuery, active_by_moments, score_queries

Q = 10


def toy_predictions(kind: str, n_queries: int = 32, seed: int = 0) -> tuple[list[GTQuery], dict]:
    """Eval queries with 1-4 GT moments and per-slot predictions of a toy model.

    ``collapsed``: slot 0 predicts the first moment with p≈0.9 for every query; the other slots sit at the
    p≈0.15-0.3 an undertrained background class leaves (above the old 0.1 threshold). ``healthy``: one slot per
    GT moment (slot indices rotating with the query) at p≈0.6-0.85, the rest at p≈0.02-0.1."""
    rng = np.random.default_rng(seed)
    queries, preds = [], {}
    for i in range(n_queries):
        k = 1 + i % 4
        windows = [(10.0 * j, 10.0 * j + 5.0) for j in range(k)]
        q = GTQuery(f"q{i}", "v", windows, [f"q{i}_m{j}" for j in range(k)])
        slots = []
        for s in range(Q):
            start, end = 10.0 * s + 50.0, 10.0 * s + 52.0  # off every GT window
            if kind == "collapsed":
                p = 0.9 if s == 0 else rng.uniform(0.15, 0.3)
                if s == 0:
                    start, end = windows[0]
            else:
                j = (s - i) % Q
                p = rng.uniform(0.6, 0.85) if j < k else rng.uniform(0.02, 0.1)
                if j < k:
                    start, end = windows[j]
            slots.append([start, end, round(float(p), 4)])
        ranked = sorted(slots, key=lambda w: -w[2])
        queries.append(q)
        preds[q.qid] = {"pred_relevant_windows": ranked, "pred_query_windows": slots}
    return queries, preds


def test_relative_rule_counts_one_for_collapse_and_several_for_a_healthy_model():
    results = {}
    for kind in ("collapsed", "healthy"):
        queries, preds = toy_predictions(kind)
        block = score_queries(queries, preds, [0.1, 0.5], 0.5, active_rule="relative")["all"]
        results[kind] = block
    col, hea = results["collapsed"], results["healthy"]
    print("collapsed", col["active"], col["slots"], "healthy", hea["active"], hea["slots"])
    assert col["active"]["active_mean"] == pytest.approx(1.0)
    assert hea["active"]["active_mean"] == pytest.approx(2.5)  # 1, 2, 3, 4 moments → one slot each
    assert col["active"]["match_gt_mean"] < hea["active"]["match_gt_mean"] == pytest.approx(1.0)
    # index collapse: one slot index does all the work vs every index in use
    assert col["slots"]["slots_used"] == 1 and hea["slots"]["slots_used"] == Q
    # Fig 3.7 rows: flat at 1 for the collapsed model, growing with the moments for the healthy one
    rows_c = active_by_moments(*toy_predictions("collapsed"), 0.5, "relative")
    rows_h = active_by_moments(*toy_predictions("healthy"), 0.5, "relative")
    assert [r["active_mean"] for r in rows_c] == [1.0] * 4
    assert [r["active_mean"] for r in rows_h] == [1.0, 2.0, 3.0, 4.0]


def test_absolute_rule_at_0_1_cannot_see_the_collapse():
    """The old rule (p ≥ 0.1) counts every slot of the collapsed model: #active = Q, the symptom of issue 14."""
    queries, preds = toy_predictions("collapsed")
    block = score_queries(queries, preds, [0.1], 0.1, active_rule="absolute")["all"]
    assert block["active"]["active_mean"] == pytest.approx(Q)


def test_rule_by_hand():
    w = [[0, 1, 0.8], [0, 1, 0.5], [0, 1, 0.39], [0, 1, 0.0]]
    assert active_mask(w, "relative", 0.5).tolist() == [True, True, False, False]
    assert active_mask(w, "absolute", 0.39).tolist() == [True, True, True, False]
    assert [r[2] for r in active_windows(w, "relative", 0.5)] == [1.0, 0.625, 0.39 / 0.8, 0.0]
    preds = {"a": {"pred_query_windows": w}, "b": {"pred_query_windows": [[0, 1, 0.1], [0, 1, 0.9]] + w[2:]}}
    usage = slot_usage(["a", "b"], preds, "relative", 0.5)
    assert usage["slot_share"] == [0.5, 1.0, 0.0, 0.0] and usage["slots_used"] == 2
    with pytest.raises(InputError, match="active_rule"):
        active_windows(w, "softmax", 0.5)


def test_nms_only_for_models_without_self_attention_by_default():
    """Thesis §3.4.2.2 introduces NMS with -SA; base (with decoder self-attention) runs without it."""
    from pipeline.search_vmr.params import SearchVMRInference

    inf = SearchVMRInference(batch_size=8, nms_threshold=0.7, max_windows=10)
    assert inf.nms_policy == "no_sa"
    assert inf.nms_for(self_attention=True) is None and inf.nms_for(self_attention=False) == 0.7
    every = SearchVMRInference(batch_size=8, nms_threshold=0.7, max_windows=10, nms_policy="all")
    assert every.nms_for(True) == every.nms_for(False) == 0.7
    never = SearchVMRInference(batch_size=8, nms_threshold=0.7, max_windows=10, nms_policy="none")
    assert never.nms_for(False) is None
