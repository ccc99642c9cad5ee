"""SDST's parameter budget (issue 13): real-dim counts pinned next to the thesis' 4.10 M / 12.43 M, the CNN and
unshared switches, ``trainable_params`` without buffers, ``w_act = 0`` scoring, Tab 4.14 buckets in the metrics
and the report's Tab 4.14 / 2.70 M lines."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from models.sdst import SDST
from models.sdst_budget import (THESIS_SHARED_M, THESIS_UNSHARED_M, budget_rows, budget_table, count_parameters,
                                parameter_breakdown, real_dim_model)
from models.sdst_config import SDSTConfig, SDSTModelConfig

# Exact trainable counts at real dims (video 768, text 1024, M 30, hidden 256; sdst.model defaults: depthwise
# RDSA CNN, unshared = whole layer). Before issue 13 (full 256→256 CNN): 4,541,444 / 14,400,068 / 4,541,441.
REAL_SHARED = 4_149_764
REAL_UNSHARED = 12_833_348
REAL_WO_TUNING = 4_149_761  # K = 1: the same network minus three gates


def test_real_dim_counts_are_pinned_and_within_5_percent_of_the_thesis(capsys):
    torch.set_num_threads(1)
    rows = budget_rows()
    with capsys.disabled():
        print("\n" + budget_table(rows))
    counts = {r["config"]: r["params"] for r in rows}
    assert counts["shared (K=4)"] == REAL_SHARED
    assert counts["unshared (K=4)"] == REAL_UNSHARED
    assert counts["w/o tuning (K=1)"] == REAL_WO_TUNING
    assert counts["shared, cnn=full"] == 4_541_444 and counts["unshared, cnn=full"] == 14_400_068  # the old network
    for n, thesis in ((REAL_SHARED, THESIS_SHARED_M), (REAL_UNSHARED, THESIS_UNSHARED_M)):
        for unit in (1e6, 2**20):  # the thesis does not say which "M" it means: both readings land within 5 %
            assert abs(n / unit / thesis - 1) < 0.05, (n, unit, thesis)
    # the full CNN is what broke the budget: +10.8 % / +15.8 % in 10^6 units
    assert counts["unshared, cnn=full"] / 1e6 / THESIS_UNSHARED_M - 1 > 0.05


def test_breakdown_sums_and_isolates_the_cnn():
    model = real_dim_model()
    parts = parameter_breakdown(model)
    assert sum(parts.values()) == count_parameters(model) == REAL_SHARED
    assert parts["rdsa_cnn"] == 2 * (256 * 3 + 256) + 2 * 256  # two depthwise k3 convs + the LayerNorm
    assert parameter_breakdown(real_dim_model(cnn="full"))["rdsa_cnn"] == 394_240
    assert "rdsa_cnn" not in parameter_breakdown(real_dim_model(cnn="none"))


def _tiny(**over) -> SDST:
    torch.manual_seed(0)
    cfg = dataclasses.replace(SDSTModelConfig(hidden=32, heads=4, roi_size=4, dropout=0.0, droppath=0.0), **over)
    return SDST(SDSTConfig(video_dim=20, text_dim=16, num_queries=5, video_layers=[1, 2, 3],
                           text_layers=[1, 2, 3], model=cfg))


def _batch(k=3, b=2, t=10, l=5):
    g = torch.Generator().manual_seed(1)
    sal = torch.zeros(b, t)
    sal[:, 2:5] = 3.0
    return {"video": torch.randn(b, k, t, 20, generator=g), "video_mask": torch.ones(b, t, dtype=torch.bool),
            "text": torch.randn(b, k, l, 16, generator=g), "text_mask": torch.ones(b, l, dtype=torch.bool),
            "saliency": sal, "windows": [torch.tensor([[0.1, 0.4]]), torch.tensor([[0.5, 0.9]])],
            "meta": [{"qid": i, "vid": f"v{i}", "duration": 20.0, "time_step": 2.0, "clip_len": 2.0}
                     for i in range(b)]}


@pytest.mark.parametrize("scope,shared_names", [("layer", set()), ("streams", {"video_map", "text_map"}),
                                                ("maps", {"d_ca", "s_video"})])
def test_unshared_modules_duplicates_only_what_it_names(scope, shared_names):
    model = _tiny(shared=False, unshared_modules=scope)
    a, b = model.levels[0], model.levels[2]
    for name in ("video_map", "text_map", "d_ca", "s_video"):
        assert (getattr(a, name) is getattr(b, name)) == (name in shared_names), name
    model(_batch())["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())
    # a checkpoint round trip rebuilds the same sharing and the same weights
    clone = _tiny(shared=False, unshared_modules=scope)
    clone.load_state_dict(model.state_dict())
    assert all(torch.equal(x, y) for x, y in zip(clone.parameters(), model.parameters()))
    if scope != "layer":
        assert count_parameters(model) < count_parameters(_tiny(shared=False))


def test_cnn_none_and_full_train():
    for kind in ("none", "full", "depthwise"):
        model = _tiny(cnn=kind)
        model(_batch())["loss"].backward()
        assert (model.levels[0].s_video.cnn is None) == (kind == "none")


def test_w_act_zero_scores_by_p_alone():
    model = _tiny(w_act=0.0).eval()
    batch = _batch()
    rows = model.predict(batch)
    p = model.run(batch)["levels"][-1]["logits"].sigmoid()
    for bi, row in enumerate(rows):
        got = sorted(w[2] for w in row["pred_relevant_windows"])
        assert got == pytest.approx(sorted(p[bi].tolist()), abs=1e-6)
    # with w_act > 0 the actionness still enters: √(p·a) ≠ p
    model = _tiny(w_act=1.0).eval()
    out = model.run(batch)["levels"][-1]
    want = (out["logits"].sigmoid() * out["actionness"]).sqrt()
    got = sorted(w[2] for w in model.predict(batch)[0]["pred_relevant_windows"])
    assert got == pytest.approx(sorted(want[0].tolist()), abs=1e-6)


def test_checkpoint_facts_counts_parameters_not_buffers(tmp_path):
    from pipeline.core.checkpoints import checkpoint_header, save_checkpoint
    from pipeline.core.params import TrainConfig
    from pipeline.sdst.evaluate import checkpoint_facts

    model = _tiny()
    n_buffers = sum(b.numel() for b in model.buffers())
    assert n_buffers > 0  # the 4 input-statistics buffers
    ckpt = {**checkpoint_header(model, TrainConfig(epochs=1, batch_size=2, lr=1e-3), {"seed": 3}), "state_dict": model.state_dict()}
    save_checkpoint(ckpt, tmp_path / "model.pt")
    facts = checkpoint_facts(tmp_path / "model.pt")
    assert facts["trainable_params"] == count_parameters(model)
    assert facts["levels"] == 3 and facts["cnn"] == "depthwise" and facts["seed"] == 3


def test_evaluate_keeps_the_length_buckets():
    from pipeline.sdst.evaluate import evaluate
    from pipeline.sdst.params import SDSTEvalConfig

    gt = [{"qid": 1, "vid": "a", "duration": 150.0, "relevant_windows": [[10.0, 16.0]]},
          {"qid": 2, "vid": "b", "duration": 150.0, "relevant_windows": [[20.0, 60.0]]}]
    pred = [{"qid": 1, "vid": "a", "pred_relevant_windows": [[10.0, 16.0, 0.9]]},
            {"qid": 2, "vid": "b", "pred_relevant_windows": [[100.0, 110.0, 0.9]]}]
    with pytest.warns(Warning, match="middle"):  # no GT window of 10–30 s: NaN in the evaluator, left out here
        out = evaluate(pred, gt, False, SDSTEvalConfig())
    assert out["MR-mAP-short"] == 100.0 and out["MR-mAP-long"] == 0.0 and "MR-mAP-middle" not in out
    assert out["MR-mAP"] == 50.0


def test_report_shows_tab_4_14_and_puts_2_70_in_context(tmp_path):
    from pipeline.report.sections.sdst import render

    root = tmp_path / "reports" / "metrics" / "sdst"
    (root / "efficiency").mkdir(parents=True)
    (root / "qvh").mkdir()
    for variant, levels, n in (("sdst", 4, REAL_SHARED), ("wo_tuning", 1, REAL_WO_TUNING)):
        (root / "efficiency" / f"{variant}.json").write_text(json.dumps(
            {"variant": variant, "label": variant, "levels": levels, "shared": True, "attention": "rdsa",
             "trainable_params": n, "trainable_params_M": round(n / 1e6, 4)}))
    (root / "qvh" / "sdst.json").write_text(json.dumps(
        {"dataset": "qvh", "variant": "sdst", "label": "SDST", "levels": 4, "attention": "rdsa",
         "model_overrides": {}, "metrics": {"MR-mAP": 50.0, "MR-mAP-short": 12.5, "MR-mAP-long": 60.0}}))
    text = render(tmp_path / "reports")
    assert "Tab 4.14" in text and "| SDST | rdsa | 12.50 | — | 60.00 | 50.00 |" in text
    assert "18.38 / 58.15 / 59.76 / 55.60" in text
    assert "2.70 M is R2-Tuning's own count" in text and "SDST's own w/o-tuning count" in text
    assert "wo_tuning 4.15 M" in text
    assert "| 2.70 (R2-Tuning's count) |" in text and "| 4.10 |" in text
