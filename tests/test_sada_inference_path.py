"""Regression guards for the SADA inference path (issue 11 diagnosis): an adapted detector must predict with
its task path only, whatever its discriminators hold, whatever videos share its batch, and identically after
a checkpoint round trip. A failure here means adaptation can change mAP through a path other than the
learned features (e.g. the GRL/discriminator or target statistics leaking into ``predict``)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from sada_helpers import detector_config, random_batch

from models.sada.detector import SadaDetector
from pipeline.core.params import TrainConfig
from pipeline.core.checkpoints import checkpoint_header, load_model


def _trained_sada(steps: int = 3) -> SadaDetector:
    """A local+bkg detector after a few adversarial steps, so task and discriminator weights have moved."""
    torch.manual_seed(0)
    model = SadaDetector(detector_config(align=("local", "bkg"), alpha=0.0))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for step in range(steps):
        out = model(random_batch(seed=step))
        assert "loss_sada" in out  # the adversarial branch really ran
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    return model.eval()


def _only(batch: dict, idx: list[int]) -> dict:
    """The sub-batch of videos ``idx`` (padding kept, so only the batch composition changes)."""
    out = dict(batch)
    for key in ("feats", "mask", "domain", "durations"):
        out[key] = batch[key][idx]
    for key in ("segments", "labels", "video_ids"):
        out[key] = [batch[key][i] for i in idx]
    return out


def _rows(model: SadaDetector, batch: dict) -> list[tuple]:
    return [(r["video-id"], r["label"], r["t-start"], r["t-end"], r["score"]) for r in model.predict(batch)]


def _same(a: list[tuple], b: list[tuple]) -> bool:
    """Same segments, labels and order; numbers equal up to float reassociation (batched matmuls)."""
    if [r[:2] for r in a] != [r[:2] for r in b]:
        return False
    return bool(np.allclose([r[2:] for r in a], [r[2:] for r in b], rtol=1e-4, atol=1e-5))


@pytest.fixture(scope="module")
def sada_model() -> SadaDetector:
    return _trained_sada()


def test_predictions_ignore_the_alignment_module():
    model = _trained_sada()  # own copy: this test scrambles its discriminators
    batch = random_batch(seed=7)
    expected = _rows(model, batch)
    assert expected, "the toy detector should output segments"
    # a source-only detector holding the same task weights predicts exactly the same rows
    plain = SadaDetector(dataclasses.replace(model.config, align=[])).eval()
    task_state = {k: v for k, v in model.state_dict().items() if not k.startswith("alignment.")}
    plain.load_state_dict(task_state)
    assert _same(_rows(plain, batch), expected)
    # scrambling the discriminators and class embeddings changes nothing either
    with torch.no_grad():
        for p in model.alignment.parameters():
            p.normal_(0.0, 5.0)
    assert _same(_rows(model, batch), expected)


def test_a_videos_predictions_do_not_depend_on_its_batch_mates(sada_model):
    model = sada_model
    batch = random_batch(seed=11)
    together = [r for r in _rows(model, batch) if r[0] == "s0"]
    alone = _rows(model, _only(batch, [0]))
    with_target = [r for r in _rows(model, _only(batch, [0, 2])) if r[0] == "s0"]
    assert alone and _same(alone, together) and _same(alone, with_target)


def test_checkpoint_round_trip_rebuilds_the_same_predictor(sada_model, tmp_path):
    model = sada_model
    cfg = TrainConfig(epochs=1, batch_size=2, lr=1e-3)
    path = tmp_path / "model.pt"
    torch.save({**checkpoint_header(model, cfg, {"device": "cpu"}), "state_dict": model.state_dict()}, path)
    loaded, _ = load_model(path)
    assert loaded.class_names == model.class_names and sorted(loaded.alignment.align) == ["bkg", "local"]
    batch = random_batch(seed=3)
    assert _same(_rows(loaded, batch), _rows(model, batch))
