"""Shared model utilities: IoU, matching, NMS, Soft-NMS, gradient reversal, focal loss, positions."""
import math

import numpy as np
import pytest
import torch

from models.common import (
    MLP,
    grad_reverse,
    hungarian_match,
    nms_1d,
    pairwise_generalized_temporal_iou,
    pairwise_temporal_iou,
    sigmoid_focal_loss,
    sine_position_encoding,
    soft_nms_gaussian,
    span_cw_to_se,
    span_se_to_cw,
    temporal_iou_np,
)


def test_iou_and_giou_hand_cases():
    a = torch.tensor([[0.0, 2.0]])
    b = torch.tensor([[1.0, 3.0], [4.0, 6.0], [0.0, 2.0]])
    np.testing.assert_allclose(pairwise_temporal_iou(a, b).numpy(), [[1 / 3, 0.0, 1.0]], atol=1e-6)
    # GIoU of disjoint spans: 0 - (hull 6 - union 4) / 6
    np.testing.assert_allclose(pairwise_generalized_temporal_iou(a, b).numpy(), [[1 / 3, -1 / 3, 1.0]], atol=1e-6)
    np.testing.assert_allclose(temporal_iou_np([[0, 2]], [[1, 3]]), [[1 / 3]])


def test_span_conversions_round_trip():
    se = torch.tensor([[1.0, 3.0], [0.2, 0.4]])
    np.testing.assert_allclose(span_cw_to_se(span_se_to_cw(se)).numpy(), se.numpy(), atol=1e-6)


def test_hungarian_prefers_the_cheapest_assignment():
    cost = torch.tensor([[4.0, 1.0], [2.0, 8.0], [0.5, 0.6]])
    rows, cols = hungarian_match(cost)
    assert dict(zip(rows.tolist(), cols.tolist())) == {0: 1, 2: 0}


def test_nms_suppresses_at_threshold_and_keeps_order():
    spans = np.array([[0, 10], [0, 9], [20, 30], [0, 5]], dtype=float)
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    keep = nms_1d(spans, scores, iou_threshold=0.7)
    # [0,9] vs [0,10] has IoU 0.9 -> suppressed; [0,5] vs [0,10] IoU 0.5 -> kept
    assert keep.tolist() == [3, 0, 2]


def test_soft_nms_gaussian_decay_values():
    spans = np.array([[0, 10], [5, 15], [30, 40]], dtype=float)
    kept, scores = soft_nms_gaussian(spans, np.array([0.9, 0.8, 0.5]), sigma=0.4, min_score=0.001)
    iou = 5 / 15
    assert kept.tolist() == [0, 1, 2]
    np.testing.assert_allclose(scores, [0.9, 0.8 * math.exp(-(iou**2) / 0.4), 0.5])
    kept, _ = soft_nms_gaussian(spans, np.array([0.9, 0.0005, 0.5]), min_score=0.001)
    assert kept.tolist() == [0, 2]


def test_gradient_reversal_flips_and_scales():
    x = torch.ones(3, requires_grad=True)
    grad_reverse(x, 0.5).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [-0.5, -0.5, -0.5])


def test_focal_loss_matches_hand_value():
    logits = torch.tensor([0.0])
    loss = sigmoid_focal_loss(logits, torch.tensor([1.0]), alpha=0.25, gamma=2.0)
    assert loss.item() == pytest.approx(0.25 * 0.25 * math.log(2), rel=1e-6)


def test_mlp_and_positions_shapes():
    assert MLP(4, 8, 2, 3)(torch.zeros(5, 4)).shape == (5, 2)
    enc = sine_position_encoding(10, 6)
    assert enc.shape == (10, 6) and torch.all(enc.abs() <= 1)
