"""CLIP via open-clip-torch (tiny random config, no download): video/text feature shapes and checkpoints."""
from __future__ import annotations

import types

import pytest
import torch

from models.backbones import build_text_tower, build_video_backbone

ARCH = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 16,
                                        "head_width": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}


@pytest.mark.parametrize("pooling,layers,dim", [("cls", [1, 2], 32), ("avg", [2], 32), ("embed", [2], 16)])
def test_clip_video_features(pooling, layers, dim):
    model_cfg = types.SimpleNamespace(name="tiny", checkpoint=None, arch=ARCH)
    torch.manual_seed(0)
    bb = build_video_backbone("clip", types.SimpleNamespace(model=model_cfg, layers=layers, pooling=pooling))
    clips = torch.randint(0, 256, (3, 2, 32, 32, 3), dtype=torch.uint8)
    with torch.inference_mode():
        out = bb(clips)
        single = bb(clips[:, :1])
    assert out.shape == (3, len(layers), dim) and bb.dim == dim
    assert not torch.allclose(out, single)  # both frames count


def test_clip_local_checkpoint_and_text_tokens(tmp_path):
    import open_clip

    torch.manual_seed(0)
    ref = open_clip.CLIP(**ARCH)
    path = tmp_path / "tiny_clip.pt"
    torch.save({"state_dict": ref.state_dict()}, path)
    model_cfg = types.SimpleNamespace(name="tiny", checkpoint=str(path), arch=ARCH)
    text_cfg = types.SimpleNamespace(tower="clip", layers=[1, 2], max_tokens=10)
    tower = build_text_tower(text_cfg, clip_model=model_cfg)
    for k, v in tower.module.model.state_dict().items():
        torch.testing.assert_close(v, ref.state_dict()[k])
    a, b = tower.encode(["a red circle", "a big blue square spins quickly to the left"])
    assert a.shape == (5, 2, 32) and b.shape[0] == 10 and a.dtype == b.dtype
