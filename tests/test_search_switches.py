"""Thesis Tab 3.5 / 3.6 / 3.9 and Fig 3.10 switches of search VMR: the matchers, the data augmentation, the
calibration variants (+actionness, +SFL), the per-slot quality statistic, the variant specs that reach them and
the report tables that show them. Each test fails when its switch does nothing."""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from models.search_matchers import group_assignment, repeated_assignment, top_k_assignment

sys.path.insert(0, str(Path(__file__).parent))
from test_search_report import _write  # noqa: E402


# ------------------------------------------------------------------ matchers (hand-computed)

COST = np.array([[0.0, 9.0], [1.0, 8.0], [2.0, 0.5], [3.0, 1.0], [9.0, 9.0]])  # 5 queries × 2 moments


def test_top_k_each_moment_takes_its_k_cheapest_queries():
    q, t = top_k_assignment(COST, 2)
    # moment 0: queries 0, 1; moment 1: queries 2, 3 (no query claimed twice)
    assert q.tolist() == [0, 1, 2, 3] and t.tolist() == [0, 0, 1, 1]
    q, t = top_k_assignment(COST, 3)  # query 2 is in both top-3s: it keeps the cheaper moment (1: 0.5 < 2.0)
    assert q.tolist() == [0, 1, 2, 3] and t.tolist() == [0, 0, 1, 1]
    q, t = top_k_assignment(COST, 0)  # 1-to-k: every query, each to its cheapest moment
    assert q.tolist() == [0, 1, 2, 3, 4] and t.tolist() == [0, 0, 1, 1, 0]


def test_group_matching_is_one_to_one_per_group():
    q, t = group_assignment(COST, 2)  # groups {0, 1, 2}, {3, 4}
    assert q.tolist() == [0, 2, 3, 4] and sorted(t[:2].tolist()) == [0, 1] and sorted(t[2:].tolist()) == [0, 1]
    assert t.tolist() == [0, 1, 1, 0]


def test_repeated_targets_give_one_to_many_hungarian():
    q, t = repeated_assignment(COST, 2)  # two copies of each moment, 4 of the 5 queries matched
    assert len(q) == 4 and sorted(t.tolist()) == [0, 0, 1, 1] and 4 not in q.tolist()
    q, t = repeated_assignment(COST, 5)  # capped at Q // n = 2 copies
    assert len(q) == 4


def _model(**over):
    from models.search_detr import SearchDETR
    from pipeline.core.params import load_block
    from pipeline.search_vmr.params import SearchVMRConfig

    cfg = dataclasses.replace(load_block(SearchVMRConfig).model, video_dim=6, text_dim=5, hidden_dim=16,
                              num_heads=2, **over)
    torch.manual_seed(0)
    return SearchDETR(cfg)


def _batch(B: int = 3, T: int = 12):
    from pipeline.search_vmr.data import collate

    items = [{"qid": f"q{b}", "vid": f"v{b}", "duration": float(T), "windows": [[1.0, 3.0]],
              "video": torch.randn(T, 6), "text": torch.randn(4, 5), "spans": torch.tensor([[0.2, 0.1]]),
              "saliency_pos": (torch.arange(T) >= 2) & (torch.arange(T) < 4)} for b in range(B)]
    return collate(items)


@pytest.mark.parametrize("matcher,k,per_moment", [("one_to_one", 5, 1), ("one_to_k", 5, 5), ("one_to_k", 0, 10),
                                                  ("group", 5, 2)])
def test_model_matcher_switch(matcher, k, per_moment):
    model = _model(matcher=matcher, match_k=k, match_groups=2).train()
    batch = _batch()
    out = model.forward_outputs(batch)
    idx = model.match(out["pred_logits"], out["pred_spans"], [s.to(out["pred_spans"]) for s in batch["spans"]],
                      out["query_keep"])
    assert all(len(q) == per_moment for q, _ in idx)


@pytest.mark.parametrize("matcher", ["hybrid", "mixed"])
def test_one_to_many_branch_adds_its_loss(matcher):
    batch = _batch()
    plain = _model().train()(batch)
    model = _model(matcher=matcher, match_k=3, o2m_weight=1.0).train()
    losses = model(batch)
    assert "loss_o2m" not in plain and float(losses["loss_o2m"]) > 0
    assert float(losses["loss"].detach()) > float(plain["loss"].detach())  # same weights and data: only the extra term differs
    losses["loss"].backward()


# ------------------------------------------------------------------ calibration (Tab 3.9)

def test_actionness_head_scores_and_loss():
    batch = _batch()
    plain = _model()
    model = _model(actionness=True)
    assert not hasattr(plain, "actionness_head") and "loss_actionness" not in plain.train()(batch)
    losses = model.train()(batch)
    losses["loss"].backward()
    assert model.actionness_head.layers[-1].weight.grad.abs().sum() > 0 and float(losses["loss_actionness"]) > 0
    model.eval()
    out = model.forward_outputs(batch)
    rows = model.predict({**batch, "duration": batch["duration"]})
    p = out["pred_logits"].softmax(-1)[0, :, 0] * out["pred_actionness"][0]
    raw = torch.tensor([w[2] for w in rows[0]["pred_query_windows"]])
    assert torch.allclose(raw, p, atol=1e-5)  # score = p_fg × actionness


def test_focal_label_loss_down_weights_easy_queries():
    model, focal = _model(), _model(label_loss="focal", focal_gamma=2.0)
    logits = torch.tensor([[[4.0, -4.0], [-4.0, 4.0], [0.0, 0.0]]])
    labels = torch.tensor([[0, 1, 0]])
    ce, fl = float(model.label_loss(logits, labels)), float(focal.label_loss(logits, labels))
    p_easy = torch.sigmoid(torch.tensor(8.0))
    expected = (float(-torch.log(p_easy) * (1 - p_easy) ** 2) * (1 + 0.1) + float(np.log(2)) * 0.25) / 3
    assert fl < ce and abs(fl - expected) < 1e-6
    assert float(_model(label_loss="focal", focal_gamma=0.0).label_loss(logits, labels)) == pytest.approx(ce)


# ------------------------------------------------------------------ data augmentation (Tab 3.5)

def test_replicate_moments_copies_rows_and_adds_a_window():
    from pipeline.search_vmr.data import replicate_moments

    v = np.arange(10, dtype=np.float32)[:, None].repeat(3, 1)
    start = np.arange(10) * 2.0
    end = start + 2.0
    win = np.array([[4.0, 8.0]])  # rows 2, 3 (centres 5, 7)
    torch.manual_seed(0)
    out, new = replicate_moments(v, start, end, win, 1.0, 20.0)
    assert new.shape == (2, 2) and np.array_equal(new[0], win[0])
    a = int(new[1, 0] // 2)
    assert np.array_equal(out[a : a + 2], v[2:4]) and not (a <= 3 and a + 1 >= 2)  # copy lands off the GT
    assert np.array_equal(replicate_moments(v, start, end, win, 0.0, 20.0)[1], win)


def test_variant_specs_reach_the_model_and_the_dataset(tmp_path):
    from pipeline.core.params import load_block
    from pipeline.search_vmr.params import SearchVMRConfig
    from pipeline.search_vmr.train import SearchPaths, training_sets, variant_model_config
    from _search_world import DATASET, build_world
    from pipeline.search_vmr.params import SearchVMRBenchmark

    cfg = load_block(SearchVMRConfig)
    want = {"o2k5": ("one_to_k", 5), "o2k": ("one_to_k", 0), "group_match": ("group", 5),
            "hybrid_match": ("hybrid", 5), "ms_match": ("mixed", 5), "no_sa_qd_o2k": ("one_to_k", 0),
            "no_sa_qd_group": ("group", 5), "no_sa_qd_hybrid": ("hybrid", 5)}
    for name, (matcher, k) in want.items():
        mc = variant_model_config(cfg.model, cfg.variant_specs[name])
        assert (mc.matcher, mc.match_k) == (matcher, k), name
    assert variant_model_config(cfg.model, cfg.variant_specs["actionness"]).actionness
    assert variant_model_config(cfg.model, cfg.variant_specs["sfl"]).label_loss == "focal"
    for name in ("base", "no_sa_qd"):
        mc = variant_model_config(cfg.model, cfg.variant_specs[name])
        assert (mc.matcher, mc.actionness, mc.label_loss) == ("one_to_one", False, "ce")
    assert not set(want) & set(cfg.variants)  # not in the default run
    root = build_world(tmp_path, n_train=4, n_test=2, rows=20)
    cfg = dataclasses.replace(cfg, benchmark_specs={DATASET: SearchVMRBenchmark("toy", ["S1"], "train", "test", [0.5])})
    paths = SearchPaths(root / "data/canonical", root / "data/features", root / "data/benchmarks")
    aug = training_sets(cfg, DATASET, "augment", paths)[""]
    plain = training_sets(cfg, DATASET, "base", paths)[""]
    assert aug.augment == 0.5 and plain.augment == 0.0
    torch.manual_seed(0)
    assert sum(len(aug[i]["spans"]) for i in range(len(aug))) > sum(len(plain[i]["spans"]) for i in range(len(plain)))


# ------------------------------------------------------------------ Fig 3.10 statistic and the report tables

def test_slot_quality_hand_computed():
    from pipeline.search_vmr.evaluate import GTQuery, slot_quality

    qs = [GTQuery("a", "v", [(0.0, 10.0)], ["m"]), GTQuery("b", "v", [(20.0, 30.0)], ["n"])]
    preds = {"a": {"pred_query_windows": [[0, 10, 0.9], [50, 60, 0.1]]},
             "b": {"pred_query_windows": [[25, 30, 0.7], [20, 30, 0.3]]}}
    sq = slot_quality(qs, preds)
    assert sq == {"match_ratio": [1.0, 0.5], "confidence": [0.8, 0.2]}


def test_report_tables_fill_when_the_variants_ran(tmp_path):
    from pipeline.report.sections.search_vmr import render

    base = {"oracle": 0, "num_queries": 10}
    _write(tmp_path, "base", {**base, "self_attention": 1, "qd_rate": 0.0}, 20.0)
    _write(tmp_path, "no_sa_qd", {**base, "self_attention": 0, "qd_rate": 0.25}, 25.0)
    md = render(tmp_path)
    assert "(Tab 3.5;" not in md and "(Tab 3.6;" not in md and "(Tab 3.9;" not in md
    _write(tmp_path, "augment", {**base, "self_attention": 1, "qd_rate": 0.0, "augment": 0.5}, 11.0)
    _write(tmp_path, "o2k", {**base, "self_attention": 1, "qd_rate": 0.0, "matcher": "one_to_k"}, 12.0)
    _write(tmp_path, "no_sa_qd_group", {**base, "self_attention": 0, "qd_rate": 0.25, "matcher": "group"}, 13.0)
    _write(tmp_path, "actionness", {**base, "self_attention": 1, "qd_rate": 0.0, "actionness": 1}, 14.0)
    _write(tmp_path, "sfl", {**base, "self_attention": 1, "qd_rate": 0.0, "label_loss": "focal"}, 15.0)
    m = json.loads((tmp_path / "metrics/search_vmr/synth/base.json").read_text())
    m["S2"]["search"]["all"]["slot_quality"] = {"match_ratio": [0.9, 0.1, 0.0], "confidence": [0.8, 0.2, 0.1]}
    (tmp_path / "metrics/search_vmr/synth/base.json").write_text(json.dumps(m))
    md = render(tmp_path)
    for tab, rows in (("(Tab 3.5;", ("| augment | 11.00", "| o2k | 12.00")), ("(Tab 3.6;", ("| no_sa_qd_group | 13.00",)),
                      ("(Tab 3.9;", ("| actionness | 14.00", "| sfl | 15.00"))):
        section = md.split(tab, 1)[1].split("**", 2)[1]  # the table under the title, up to the next title
        assert all(r in section for r in rows), (tab, section)
    assert "| Original | base | 30.00" in md  # the switched runs (augment sorts first) never stand in for base
    assert "Fig. 3.10" in md and (tmp_path / "figures/search_vmr_synth_slot_calibration.png").stat().st_size > 0
