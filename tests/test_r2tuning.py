"""R2-Tuning baseline (models/r2tuning.py): shapes, gradients, reversed order, point targets by hand, the
parameter count at CLIP ViT-B/32 dims, a tiny overfit, and that the SDST stages build and load it."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from models.r2tuning import R2Tuning
from models.sdst_budget import CLIP_B32_DIMS, THESIS_WO_TUNING_M, count_parameters, r2tuning_model
from models.sdst_config import SDSTConfig, SDSTModelConfig
from models.side_tuners import build_side_tuner

sys.path.insert(0, str(Path(__file__).parent))
from _sdst_fixture import overfit_tiny  # noqa: E402
from test_sdst_model import _batch  # noqa: E402

TINY = SDSTModelConfig(architecture="r2tuning", hidden=32, heads=4, dropout=0.1)


def _model(k=2, layers=None, cfg=TINY):
    torch.manual_seed(0)
    layers = layers or list(range(1, k + 1))
    return R2Tuning(SDSTConfig(video_dim=20, text_dim=16, num_queries=7, video_layers=layers, text_layers=layers,
                               model=cfg))


def test_shapes_and_prediction_rows():
    model = _model()
    out = model.run(_batch())
    assert out["strides"] == [1, 2, 4, 8] and [c.shape[1] for c in out["classes"]] == [12, 6, 3, 1]
    assert all(c.shape == (3, n, 2) for c, n in zip(out["coords"], [12, 6, 3, 1]))
    assert out["saliency"].shape == (3, 12) and torch.all(out["saliency"][0, 9:] == 0)
    model.eval()
    rows = model.predict(_batch())
    assert [r["qid"] for r in rows] == ["q0", "q1", "q2"]
    for r in rows:
        w = np.array(r["pred_relevant_windows"])
        assert 1 <= len(w) <= 50 and np.all(np.diff(w[:, 2]) <= 0) and np.all(w[:, 0] <= w[:, 1])
        assert np.all((w[:, :2] >= 0) & (w[:, :2] <= 23.0))
        assert len(r["pred_saliency_scores"]) == 12 and "weighted_offsets" not in r
    assert np.array(rows[0]["pred_relevant_windows"])[:, 1].max() <= 18.0  # 9 valid rows × 2 s


@pytest.mark.parametrize("k", [1, 2, 3])
def test_every_parameter_gets_a_gradient(k):
    model = _model(k)
    batch = _batch(k=k)
    out = model(batch)
    out["loss"].backward()
    assert [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()] == []
    assert {"loss_cls", "loss_reg", "loss_sal", "loss_align_video", "loss_align_layer"} <= set(out)
    assert batch["video"].grad is None


def test_refines_from_the_deepest_layer_back():
    assert _model(layers=[3, 7, 5]).steps == [1, 2, 0]  # layer 7 first, then 5, then 3
    assert _model(layers=[7, 3]).steps == [0, 1]  # deep_to_shallow levels: already deepest first


def test_point_targets_by_hand():
    """T = 8 rows, one moment over rows [2, 6]: stride 1 keeps only the centre point 4 (reach 2 ≤ 2); stride 2
    points 2, 4, 6 (reach 4, 2, 4 in [2, 4]); strides 4 and 8 none (reach outside their range / centre)."""
    model = _model()
    t = 8
    out = {"strides": [1, 2, 4, 8], "classes": [torch.zeros(1, t // s) for s in (1, 2, 4, 8)]}
    cls_t, reg_t = model.targets(out, [torch.tensor([[2 / 8, 6 / 8]])], torch.tensor([8]))
    pos = cls_t[0].nonzero().flatten().tolist()
    assert pos == [4, 8 + 1, 8 + 2, 8 + 3]
    assert torch.allclose(reg_t[0, 4], torch.tensor([2.0, 2.0]))
    assert torch.allclose(reg_t[0, 9], torch.tensor([0.0, 2.0])) and torch.allclose(reg_t[0, 11], torch.tensor([2.0, 0.0]))


def test_parameter_count_matches_the_paper():
    n = count_parameters(r2tuning_model(dims=CLIP_B32_DIMS))
    assert n == 2_836_242
    assert abs(n / 2**20 / THESIS_WO_TUNING_M - 1) < 0.01 and abs(n / 1e6 / THESIS_WO_TUNING_M - 1) < 0.06


def test_side_tuner_factory_and_guards():
    cfg = SDSTConfig(video_dim=20, text_dim=16, num_queries=7, video_layers=[1], text_layers=[1], model=TINY)
    assert isinstance(build_side_tuner(cfg), R2Tuning)
    with pytest.raises(ValueError, match="architecture"):
        R2Tuning(dataclasses.replace(cfg, model=SDSTModelConfig()))
    from models.sdst import SDST

    with pytest.raises(ValueError, match="architecture"):
        SDST(cfg)


def test_tiny_overfit_loss_down_and_r1_up(tmp_path):
    losses, before, after = overfit_tiny(tmp_path, dataclasses.replace(TINY, dropout=0.0))
    assert losses[-1] < 0.6 * losses[0]
    assert after >= before + 0.3 and after >= 0.5, (before, after)
