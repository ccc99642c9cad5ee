"""CG-DETR retriever (models/search_cgdetr.py): adaptive cross-attention with dummy tokens, its losses, the
-SA / +QD switches on it, anchor initialisation, and a tiny overfit."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from models.search_cgdetr import AdaptiveCrossAttention, CGDETR
from models.search_detr import SearchDETR
from pipeline.core.params import TrainConfig
from pipeline.search_vmr.data import collate
from test_search_detr import BASE, _overfit_items, toy_batch  # noqa: E402  (tests/ is on sys.path)

CG = dataclasses.replace(BASE, query_type="anchor", architecture="cgdetr", num_dummies=5, total_prompts=4,
                         anchor_init="random")


def make_cg(**kw) -> CGDETR:
    torch.manual_seed(0)
    return CGDETR(dataclasses.replace(CG, **kw))


def test_forward_shapes_losses_and_gradients():
    model = make_cg()
    model.train()
    out = model(toy_batch())
    for k in ("loss_wattn", "loss_ms_align", "loss_distill", "loss_ortho", "loss_span", "loss_label"):
        assert torch.isfinite(out[k]), k
    out["loss"].backward()
    for name in ("dummy_tokens", "t2v.0.q.weight", "moment_token", "sent_token", "global_prompts",
                 "anchor_embed.weight"):
        assert model.get_parameter(name).grad is not None and model.get_parameter(name).grad.abs().sum() > 0, name
    model.eval()
    raw = model.forward_outputs(toy_batch())
    assert raw["pred_logits"].shape == (3, 10, 2) and raw["saliency"].shape == (3, 12)
    assert ((raw["t2v_values"] >= 0) & (raw["t2v_values"] <= 1)).all()


def test_adaptive_attention_drops_the_dummy_mass():
    """The softmax runs over [dummies; words] but only the words' values reach the clips: with every word padded
    the attention output is exactly zero (only the residual is left), while without discarding it is not."""
    torch.manual_seed(0)
    layer = AdaptiveCrossAttention(8, 2, 16, 0.0, num_dummies=2)
    x, keys, kpos = torch.randn(1, 3, 8), torch.randn(1, 4, 8), torch.zeros(1, 4, 8)
    y, attn = layer(x, torch.zeros_like(x), keys, kpos, torch.zeros(1, 4, dtype=torch.bool))
    assert attn.shape == (1, 3, 4) and torch.allclose(attn.sum(-1), torch.ones(1, 3))
    with torch.no_grad():
        for lin in (layer.out, layer.ffn.linear2):
            lin.weight.zero_()
            lin.bias.zero_()
        layer.out.weight.copy_(torch.eye(8))
    only_dummies = torch.tensor([[False, False, True, True]])
    kept, a2 = layer(x, torch.zeros_like(x), keys, kpos, only_dummies, discard_dummies=True)
    assert torch.allclose(a2[..., 2:], torch.zeros(1, 3, 2))
    assert torch.allclose(kept, layer.norm2(x), atol=1e-5)
    mixed, _ = layer(x, torch.zeros_like(x), keys, kpos, only_dummies, discard_dummies=False)
    assert not torch.allclose(mixed, layer.norm2(x), atol=1e-3)


@pytest.mark.parametrize("cls,kw", [(SearchDETR, {"query_type": "anchor"}), (CGDETR, {})])
def test_no_self_attention_and_query_dropout_on_both_bases(cls, kw):
    """-SA builds no decoder self-attention on either base (Eq. 3.18); +QD draws one keep mask per iteration."""
    torch.manual_seed(0)
    cfg = dataclasses.replace(CG if cls is CGDETR else BASE, self_attention=False, qd_rate=0.5, **kw)
    model = cls(cfg)
    assert not any("self_attn" in n for n, _ in model.decoder.named_parameters())
    model.train()
    keep = model.query_keep_mask()
    assert set(keep.tolist()) <= {0.0, 1.0}
    model.eval()
    assert model.query_keep_mask().sum() == cfg.num_queries


def test_anchor_init_random_is_cg_detr_default_and_uniform_keeps_width():
    torch.manual_seed(0)
    uni = SearchDETR(dataclasses.replace(BASE, query_type="anchor", anchor_init="uniform", uniform_width=0.1))
    a = uni.anchor_embed.weight.sigmoid()
    assert torch.allclose(a[:, 1], torch.full((10,), 0.1), atol=1e-5)
    assert (a[:, 0].diff() > 0).all()  # evenly spread, in order
    rnd = make_cg().anchor_embed.weight.sigmoid()
    assert rnd[:, 1].std() > 0.05 and not (rnd[:, 0].diff() > 0).all()  # N(0, 1) logits: scattered


def test_tiny_overfit(tmp_path):
    from pipeline.core.training import fit

    torch.set_num_threads(1)
    items = _overfit_items()
    model = make_cg(num_queries=3, hidden_dim=32, anchor_init="uniform")
    cfg = TrainConfig(epochs=120, batch_size=8, lr=2e-3, weight_decay=0.0, schedule="constant", grad_clip=1.0)
    res = fit(model, items, collate, cfg, tmp_path / "run", seed=0, progress=False)
    assert res.history[-1]["train/loss"] < 0.5 * res.history[0]["train/loss"]
    rows = res.model.predict(collate(items))
    hits = 0
    for it, row in zip(items, rows):
        s, e, _ = row["pred_relevant_windows"][0]
        gs, ge = it["windows"][0]
        hits += max(0.0, min(e, ge) - max(s, gs)) / (max(e, ge) - min(s, gs)) >= 0.5
    assert hits >= 6, rows
    from pipeline.core.checkpoints import load_model

    again, _ = load_model(res.checkpoint, models=(SearchDETR, CGDETR))
    assert isinstance(again, CGDETR)
