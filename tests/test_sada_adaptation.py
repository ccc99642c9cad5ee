"""SADA loss pieces: gradient reversal, pseudo-label thresholds, which anchors reach the discriminator with
which class embedding, the grouped BCE of Eq. 2.7/2.8, and that every variant builds and trains one step."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from sada_helpers import detector_config, random_batch

from models.sada.adaptation import DomainAlignment, grouped_bce, pseudo_labels
from models.sada.detector import SadaDetector

VARIANTS = {
    "source_only": (),
    "global": ("global",),
    "local": ("local",),
    "bkg": ("bkg",),
    "global_bkg": ("global", "bkg"),
    "local_global": ("local", "global"),
    "sada": ("local", "bkg"),
}


def test_grl_flips_the_gradient_reaching_the_anchors():
    torch.manual_seed(0)
    align = DomainAlignment(8, 2, 1, ["global"], 8, 16, 2, grl_coeff=0.5)
    anchors = torch.randn(6, 8, requires_grad=True)
    domains = torch.tensor([0, 0, 0, 1, 1, 1])
    classes = torch.zeros(6, dtype=torch.long)
    align.level_loss(0, anchors, classes, domains)["global"].backward()
    reversed_grad = anchors.grad.clone()
    # the same loss without the GRL: the discriminator's own gradient w.r.t. its input
    x = anchors.detach().clone().requires_grad_(True)
    logits = align.glob[0](x).squeeze(-1)
    grouped_bce(logits, domains, torch.zeros_like(domains)).backward()
    assert torch.allclose(reversed_grad, -0.5 * x.grad, atol=1e-7)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in align.glob[0].parameters())


def test_pseudo_labels_use_a_strict_threshold_on_the_max_probability():
    def logit(p):
        return math.log(p / (1 - p))

    logits = torch.tensor([[logit(0.7), logit(0.2)], [logit(0.3), logit(0.5)], [logit(0.5), logit(0.49)],
                           [logit(0.1), logit(0.1)]])
    assert pseudo_labels(logits, 0.5).tolist() == [1, 0, 0, 0]  # 0.5 is not > 0.5
    assert pseudo_labels(logits, 0.25).tolist() == [1, 2, 1, 0]
    assert not pseudo_labels(logits.requires_grad_(True), 0.25).requires_grad


def test_grouped_bce_is_a_sum_of_group_means():
    logits = torch.tensor([0.0, 2.0, -1.0, 1.0, 3.0])
    domains = torch.tensor([0, 0, 1, 1, 0])
    groups = torch.tensor([1, 1, 1, 2, 2])
    bce = F.binary_cross_entropy_with_logits(logits, domains.float(), reduction="none")
    expected = (bce[0] + bce[1]) / 2 + bce[2] + bce[3] + bce[4]
    assert float(grouped_bce(logits, domains, groups)) == pytest.approx(float(expected))


def _captured_inputs(model: SadaDetector, batch: dict) -> list[torch.Tensor]:
    """The rows every level's semantic discriminator receives during one forward pass."""
    seen: list[torch.Tensor] = []
    hooks = [disc.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
             for disc in model.alignment.semantic]
    model(batch)
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("align", [("local", "bkg"), ("local",), ("bkg",)])
def test_discriminator_receives_the_right_anchors_per_class(align):
    torch.manual_seed(0)
    model = SadaDetector(detector_config(align=align, alpha=0.5)).eval()  # eval: no drop-path randomness
    batch = random_batch()
    # make the target's level-0 point 3 of video t0 confidently class 2, all else background
    with torch.no_grad():
        model.heads.cls.out.conv.bias.fill_(-20.0)
    enc = model.encode(batch["feats"], batch["mask"])
    lengths = [a.shape[-1] for a in enc["anchors"]]
    _, _, src_cls = model.targets(lengths, batch["segments"][:2], batch["labels"][:2])
    original = model.heads.forward

    def forced(feats, masks):
        logits, offsets = original(feats, masks)
        logits[0] = logits[0].clone()
        logits[0][2, 3, 2] = 20.0
        return logits, offsets

    model.heads.forward = forced
    seen = _captured_inputs(model, batch)
    dim = model.cfg.embed_dim
    emb = model.alignment.class_embed.weight.detach()
    valid = torch.cat([m.squeeze(1) for m in enc["masks"]], 1)
    offset = 0
    for level, rows in enumerate(seen):
        n = lengths[level]
        expected_anchor, expected_cls = [], []
        for b in range(4):
            keep = valid[b, offset : offset + n]
            anchors = enc["anchors"][level][b].T.detach()[keep]
            if b < 2:
                cls = src_cls[b, offset : offset + n][keep]
            else:
                cls = torch.zeros(n, dtype=torch.long)
                if b == 2 and level == 0:
                    cls[3] = 3
                cls = cls[keep]
            sel = ((cls > 0) & ("local" in align)) | ((cls == 0) & ("bkg" in align))
            expected_anchor.append(anchors[sel])
            expected_cls.append(cls[sel])
        expected_anchor, expected_cls = torch.cat(expected_anchor), torch.cat(expected_cls)
        assert torch.allclose(rows[:, :dim], expected_anchor, atol=1e-5)
        assert torch.equal(rows[:, dim:], emb[expected_cls])
        if "bkg" not in align:
            assert bool((expected_cls > 0).all())
        if "local" not in align:
            assert bool((expected_cls == 0).all())
        offset += n
    if "local" in align:  # the pseudo-labelled target anchor went in with class embedding e_3
        assert any(torch.equal(r[dim:], emb[3]) for r in seen[0])


@pytest.mark.parametrize("name", list(VARIANTS))
def test_each_variant_builds_and_runs_one_step(name):
    torch.manual_seed(0)
    align = VARIANTS[name]
    model = SadaDetector(detector_config(align=align))
    assert (model.alignment.semantic is not None) == bool(set(align) & {"local", "bkg"})
    assert (model.alignment.glob is not None) == ("global" in align)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    out = model(random_batch())
    assert torch.isfinite(out["loss"])
    for term in align:
        assert f"loss_{term}" in out and float(out[f"loss_{term}"]) > 0
    if not align:
        assert "loss_sada" not in out
    opt.zero_grad()
    out["loss"].backward()
    opt.step()
    assert model.pyramid.embd[0].conv.weight.grad.abs().sum() > 0
    for disc in [*(model.alignment.semantic or []), *(model.alignment.glob or [])]:
        assert disc.layers[0].weight.grad is not None


def test_target_labels_never_reach_the_task_loss():
    torch.manual_seed(0)
    model = SadaDetector(detector_config(align=()))
    batch = random_batch()
    a = model(batch)["loss"]
    model.loss_norm.value = 20.0
    batch["segments"][2] = torch.tensor([[3.0, 20.0]])
    batch["labels"][2] = torch.tensor([1])
    torch.manual_seed(0)
    model2 = SadaDetector(detector_config(align=()))
    assert torch.allclose(model2(batch)["loss"], a)


def test_grl_coefficient_ramps_over_training_steps_only():
    import dataclasses

    cfg = detector_config()
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, grl_warmup_iters=10, grl_coeff=0.5))
    model = SadaDetector(cfg)
    assert model.grl_coeff() == 0.0
    batch = random_batch()
    coeffs = [float(model(batch)["grl_coeff"]) for _ in range(3)]
    assert 0 < coeffs[0] < coeffs[1] < coeffs[2] < 0.5 and int(model.train_steps) == 3
    model.eval()
    model(batch)
    assert int(model.train_steps) == 3  # evaluation passes do not advance the ramp
    model.train_steps.fill_(10)
    assert model.grl_coeff() == pytest.approx(0.5 * (2 / (1 + math.exp(-10)) - 1))
    assert "train_steps" in model.state_dict()  # saved with checkpoints, so a resumed run keeps its ramp
