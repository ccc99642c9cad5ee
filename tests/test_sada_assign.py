"""SADA detector building blocks on hand-checked values: label assignment (the verified toy examples of the
TriDet/ActionFormer notes), DIoU, Soft-NMS decay, grid ↔ seconds, SGP kernel sizes, padding invariance."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sada_helpers import EPIC_RANGES, detector_config, inference_config

from models.sada.backbone import sgp_kernel
from models.sada.detector import SadaDetector, grid_to_seconds, seconds_to_grid
from models.sada.targets import anchor_points, assign_labels, diou_1d


def _levels(length: int = 64) -> torch.Tensor:
    return anchor_points([length // 2**level for level in range(6)], EPIC_RANGES)


def _positives(points, cls, reg, anchor_cls):
    """{(stride, t): (reg_left, reg_right, classes)} of the positive points."""
    out = {}
    for i in torch.nonzero(cls.sum(-1) > 0).flatten().tolist():
        stride, t = int(points[i, 3]), int(points[i, 0])
        out[(stride, t)] = (round(float(reg[i, 0]), 4), round(float(reg[i, 1]), 4),
                            tuple(torch.nonzero(cls[i]).flatten().tolist()), int(anchor_cls[i]))
    return out


def test_assignment_single_gt_matches_notes():
    points = _levels()
    cls, reg, anchor_cls = assign_labels(points, torch.tensor([[10.0, 30.0]]), torch.tensor([3]), 6, 1.5)
    assert _positives(points, cls, reg, anchor_cls) == {
        (4, 16): (1.5, 3.5, (3,), 4),
        (4, 20): (2.5, 2.5, (3,), 4),
        (4, 24): (3.5, 1.5, (3,), 4),
        (8, 16): (0.75, 1.75, (3,), 4),
        (8, 24): (1.75, 0.75, (3,), 4),
    }
    negative = cls.sum(-1) == 0
    assert torch.all(reg[negative] == 0) and torch.all(anchor_cls[negative] == 0)


def test_assignment_shorter_gt_wins_and_inclusive_range():
    points = _levels()
    segs = torch.tensor([[10.0, 30.0], [12.0, 28.0]])
    cls, reg, anchor_cls = assign_labels(points, segs, torch.tensor([3, 5]), 6, 1.5)
    pos = _positives(points, cls, reg, anchor_cls)
    assert all(v[2] == (5,) and v[3] == 6 for v in pos.values())  # the shorter GT (label 5) wins everywhere
    assert pos[(2, 20)] == (4.0, 4.0, (5,), 6)  # d = 8 = the upper bound of [2, 8]: inclusive


def test_assignment_equal_lengths_give_multi_label_and_first_wins_anchor_class():
    points = _levels()
    segs = torch.tensor([[10.0, 30.0], [10.0005, 30.0005]])
    cls, reg, anchor_cls = assign_labels(points, segs, torch.tensor([3, 5]), 6, 1.5)
    pos = _positives(points, cls, reg, anchor_cls)
    assert len(pos) == 5 and all(v[2] == (3, 5) and v[3] == 4 for v in pos.values())


def test_assignment_without_gt_is_all_background():
    points = _levels()
    cls, reg, anchor_cls = assign_labels(points, torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), 4, 1.5)
    assert cls.shape == (points.shape[0], 4) and cls.sum() == 0 and reg.abs().sum() == 0 and anchor_cls.sum() == 0


def test_diou_reference_values():
    pred = torch.tensor([[1.0, 1.0], [1.0, 3.0]])
    target = torch.tensor([[2.0, 2.0], [2.0, 2.0]])
    assert diou_1d(pred, target).tolist() == pytest.approx([0.5, 0.44], abs=1e-6)


def test_soft_nms_decay_value_through_the_detector():
    model = SadaDetector(detector_config())
    segs = np.array([[0.0, 10.0], [1.0, 10.0]])
    _, scores, _ = model._soft_nms(segs, np.array([0.9, 0.8]), np.array([0, 0]), inference_config())
    assert scores.tolist() == pytest.approx([0.9, 0.8 * math.exp(-0.81 / 0.4)], abs=1e-9)
    assert scores[1] == pytest.approx(0.1056, abs=1e-4)
    # another class is not decayed; min_score drops what falls below it
    _, scores, _ = model._soft_nms(segs, np.array([0.9, 0.8]), np.array([0, 1]), inference_config())
    assert sorted(scores.tolist()) == pytest.approx([0.8, 0.9])
    _, scores, _ = model._soft_nms(segs, np.array([0.9, 0.8]), np.array([0, 0]), inference_config(min_score=0.2))
    assert scores.tolist() == pytest.approx([0.9])


def test_grid_seconds_epic_recipe():
    step, window = 16 / 30, 32 / 30
    assert grid_to_seconds(np.array([0.0, 1.0]), step, window, 100.0) == pytest.approx([16 / 30, 32 / 30])
    assert grid_to_seconds(np.array([-5.0, 1e6]), step, window, 100.0).tolist() == [0.0, 100.0]  # clamped
    assert seconds_to_grid(np.array([16 / 30]), step, window) == pytest.approx([0.0])


def test_sgp_kernel_sizes():
    assert (sgp_kernel(5, 2), sgp_kernel(1, 4), sgp_kernel(1, 2)) == (13, 9, 5)


def _encode_padded(model, feats: torch.Tensor, length: int) -> dict:
    x = torch.zeros(1, feats.shape[1], length)
    x[..., : feats.shape[-1]] = feats
    mask = torch.zeros(1, 1, length, dtype=torch.bool)
    mask[..., : feats.shape[-1]] = True
    return model.encode(x, mask)


def test_padding_does_not_change_a_videos_outputs():
    torch.manual_seed(0)
    model = SadaDetector(detector_config()).eval()
    feats = torch.randn(1, 16, 40)
    short, long = _encode_padded(model, feats, 64), _encode_padded(model, feats, 128)
    for level, (a, b) in enumerate(zip(short["logits"], long["logits"])):
        valid = short["masks"][level][0, 0]
        assert torch.allclose(a[0][valid], b[0, : a.shape[1]][valid], atol=1e-5)
        assert torch.allclose(short["offsets"][level][0][valid], long["offsets"][level][0, : a.shape[1]][valid], atol=1e-5)


@pytest.mark.parametrize(
    "classes, input_dim, window, k, expected",
    [(97, 2304, 5, 2.0, 15_096_937), (300, 2304, 1, 4.0, 15_382_324)],
)
def test_parameter_counts_match_the_reference_detector(classes, input_dim, window, k, expected):
    """EPIC configs (dim 512, FFN 1024, plain begin/end head): the counts measured on TriDet's own modules
    (tal_detector_notes.md §7: 15.097 M verb with an 11.789 M backbone, 15.382 M noun)."""
    import dataclasses

    from sada_helpers import model_config, weights

    from models.sada.config import SadaDetectorConfig

    cfg = dataclasses.replace(model_config(512), sgp_mlp_dim=1024, head_dim=512, sgp_window=window, sgp_k=k)
    model = SadaDetector(SadaDetectorConfig(model=cfg, weights=weights(), align=[], input_dim=input_dim,
                                            class_names=[str(i) for i in range(classes)]))
    assert sum(p.numel() for p in model.parameters()) == expected
    if classes == 97:
        assert sum(p.numel() for p in model.pyramid.parameters()) == 11_788_800
