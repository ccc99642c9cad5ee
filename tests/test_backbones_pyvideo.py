"""SlowFast / I3D wrappers around pytorchvideo.models.hub: .pyth loading, feature shapes, pathway sampling."""
from __future__ import annotations

import types

import pytest
import torch

from models.backbones import build_video_backbone
from models.backbones.pyvideo import create_i3d, create_slowfast


@pytest.fixture(scope="module")
def tiny_pyth(tmp_path_factory):
    """A tiny SlowFast saved like the model zoo: {"model_state": state_dict} (classifier included)."""
    torch.manual_seed(2)
    net = create_slowfast(width=8, beta=4, alpha=4).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.01)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("sf") / "tiny_slowfast.pyth"
    torch.save({"model_state": net.state_dict(), "epoch": 1}, path)
    return net, path


def _cfg(**kw):
    return types.SimpleNamespace(**({"checkpoint": None, "width": 8, "beta": 4, "alpha": 4} | kw))


def test_pyth_loads_strictly_and_gives_the_pooled_pre_classifier_vector(tiny_pyth):
    net, path = tiny_pyth
    state = torch.load(path, weights_only=False)["model_state"]
    assert "blocks.6.proj.weight" in state  # the Kinetics classifier is in the file and consumed on load
    model = build_video_backbone("slowfast", _cfg(checkpoint=str(path)))
    for k, v in model.net.state_dict().items():
        torch.testing.assert_close(v, state[k], rtol=0, atol=0)
    assert set(state) - set(model.net.state_dict()) == {"blocks.6.proj.weight", "blocks.6.proj.bias"}
    clips = torch.randint(0, 256, (2, 16, 48, 48, 3), dtype=torch.uint8)
    with torch.inference_mode():
        feats = model(clips)
        x = (clips.permute(0, 4, 1, 2, 3).float() / 255 - 0.45) / 0.225
        slow = x[:, :, torch.linspace(0, 15, 4).long()]
        net.blocks[6].proj = torch.nn.Identity()
        ref = net([slow, x])
    assert feats.shape == (2, 1, 8 * 32 + 8 * 32 // 4) == (2, 1, model.dim) and feats.dtype == torch.float32
    torch.testing.assert_close(feats[:, 0], ref, rtol=1e-4, atol=1e-5)
    assert model.layers == (1,)


def test_mismatched_pyth_is_an_error(tiny_pyth):
    _, path = tiny_pyth
    with pytest.raises(ValueError, match="does not match"):
        build_video_backbone("slowfast", _cfg(checkpoint=str(path), width=16, beta=8))


def test_i3d_tiny_shapes_and_random_init_is_seeded():
    cfg = types.SimpleNamespace(checkpoint=None, width=4)
    torch.manual_seed(0)
    a = build_video_backbone("i3d", cfg)
    torch.manual_seed(0)
    b = build_video_backbone("i3d", cfg)
    clips = torch.randint(0, 256, (2, 8, 32, 32, 3), dtype=torch.uint8)
    with torch.inference_mode():
        fa, fb = a(clips), b(clips)
    assert fa.shape == (2, 1, 128) and a.dim == 128
    torch.testing.assert_close(fa, fb, rtol=0, atol=0)
    assert torch.isfinite(fa).all() and fa.abs().max() < 6e4  # float16-safe magnitudes


def test_hub_architecture_names_match_the_r50_checkpoints():
    """Full-width builds have the model-zoo key layout (checked on the meta device: no weights allocated)."""
    with torch.device("meta"):
        sf = create_slowfast(64, 8, 4)
        i3d = create_i3d(64)
    assert len(sf.state_dict()) == 662
    assert sum(p.numel() for p in sf.parameters()) == 34_566_488
    assert sum(p.numel() for p in i3d.parameters()) == 28_043_472
