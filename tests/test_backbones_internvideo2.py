"""InternVideo2 stage-2 towers: official checkpoint key names, strict loading, layer selection and pooling."""
from __future__ import annotations

import types

import pytest
import torch

from models.backbones import build_video_backbone
from models.backbones.internvideo2 import (
    IV2_1B,
    InternVideo2Stage2,
    InternVideo2Video,
    InternVideo2VisionEncoder,
    RMSNorm,
)
from models.backbones.internvideo2_checkpoint import CheckpointError, load_text_checkpoint, load_vision_checkpoint
from models.backbones.internvideo2_text import BERT_LARGE, BertConfig, BertTextEncoder, BertTokens

TINY_VISION = dict(img_size=32, patch_size=16, embed_dim=32, depth=3, num_heads=2, mlp_ratio=2.0, num_frames=4,
                   clip_embed_dim=24, clip_teacher_embed_dim=40, clip_teacher_final_dim=24, clip_return_layer=2,
                   attn_pool_num_heads=2, init_values=0.1)
TINY_TEXT = dict(vocab_size=50, hidden_size=16, num_layers=3, num_heads=2, intermediate_size=32, max_position=24,
                 type_vocab_size=2, fusion_layer=2, encoder_width=32)


def official_keys(depth: int, clip_return_layer: int, text_layers: int, fusion_layer: int) -> set[str]:
    """The stage-2 checkpoint's state-dict keys, written out from the official naming (reference notes §6, §9)."""
    v = "vision_encoder."
    keys = {"temp", f"{v}cls_token", f"{v}pos_embed", f"{v}img_pos_embed", f"{v}clip_pos_embed",
            f"{v}clip_img_pos_embed", f"{v}patch_embed.proj.weight", f"{v}patch_embed.proj.bias"}
    for i in range(depth):
        b = f"{v}blocks.{i}."
        keys |= {b + k for k in ("norm1.weight", "attn.qkv.weight", "attn.q_norm.weight", "attn.k_norm.weight",
                                 "attn.proj.weight", "attn.proj.bias", "ls1.gamma", "norm2.weight",
                                 "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias", "ls2.gamma")}
    c = f"{v}clip_projector."
    keys |= {c + f"norm1_{x}.{p}" for x in "qkv" for p in ("weight", "bias")}
    keys |= {c + f"cross_attn.{x}.weight" for x in "qkv"} | {c + f"cross_attn.{x}_bias" for x in "qkv"}
    keys |= {c + "cross_attn.proj.weight", c + "cross_attn.proj.bias"}
    for name in [f"clip_decoder.{i}" for i in range(clip_return_layer)] + ["final_clip_decoder"]:
        keys |= {f"{v}{name}.{m}.{p}" for m in ("head", "norm") for p in ("weight", "bias")}
    t = "text_encoder.bert."
    keys |= {t + "embeddings.position_ids"}
    keys |= {t + f"embeddings.{e}.weight" for e in ("word_embeddings", "position_embeddings", "token_type_embeddings")}
    keys |= {t + f"embeddings.LayerNorm.{p}" for p in ("weight", "bias")}
    for i in range(text_layers):
        lay = f"{t}encoder.layer.{i}."
        parts = ["attention"] + (["crossattention"] if i >= fusion_layer else [])
        for a in parts:
            keys |= {lay + f"{a}.self.{x}.{p}" for x in ("query", "key", "value") for p in ("weight", "bias")}
            keys |= {lay + f"{a}.output.{m}.{p}" for m in ("dense", "LayerNorm") for p in ("weight", "bias")}
        keys |= {lay + f"intermediate.dense.{p}" for p in ("weight", "bias")}
        keys |= {lay + f"output.{m}.{p}" for m in ("dense", "LayerNorm") for p in ("weight", "bias")}
    keys |= {"text_encoder.cls.predictions.bias", "text_encoder.cls.predictions.decoder.weight",
             "text_encoder.cls.predictions.decoder.bias"}
    keys |= {f"text_encoder.cls.predictions.transform.{m}.{p}"
             for m in ("dense", "LayerNorm") for p in ("weight", "bias")}
    keys |= {f"{m}.{p}" for m in ("vision_proj", "text_proj", "itm_head") for p in ("weight", "bias")}
    return keys


@pytest.fixture(scope="module")
def stage2_ckpt(tmp_path_factory):
    """A tiny stage-2 model (official module names) saved like the official file: {"model": state_dict}."""
    torch.manual_seed(1)
    model = InternVideo2Stage2(TINY_VISION, TINY_TEXT, embed_dim=8).eval()
    with torch.no_grad():
        for p in model.parameters():  # make every tensor distinctive so a wrong mapping cannot pass
            p.add_(torch.randn_like(p) * 0.05)
    path = tmp_path_factory.mktemp("iv2") / "stage2.pt"
    torch.save({"model": model.state_dict()}, path)
    return model, path


def test_module_tree_has_the_official_key_names(stage2_ckpt):
    model, _ = stage2_ckpt
    assert set(model.state_dict()) == official_keys(3, 2, 3, 2)


def test_official_1b_sizes_on_meta_device():
    with torch.device("meta"):
        enc = InternVideo2VisionEncoder(**IV2_1B)
        text = BertTextEncoder(BertConfig(**BERT_LARGE))
    assert len(enc.state_dict()) == 569
    assert sum(p.numel() for p in enc.parameters()) == 1_049_117_056
    unused = ("clip_decoder", "final_clip_decoder", "clip_pos_embed", "clip_img_pos_embed")
    assert sum(p.numel() for n, p in enc.named_parameters() if not n.startswith(unused)) == 1_019_628_672
    assert sum(p.numel() for p in enc.clip_projector.parameters()) == 7_042_176
    assert sum(p.numel() for p in enc.blocks[0].parameters()) == 25_248_768
    assert enc.blocks[0].attn.q_norm.weight.shape == (1408,)  # whole-width q/k RMSNorm
    assert enc.clip_projector.cross_attn.proj.weight.shape == (768, 1408)
    assert not hasattr(text.bert.encoder.layer[18], "crossattention")
    assert text.bert.encoder.layer[19].crossattention.self.key.weight.shape == (1024, 1408)


def test_checkpoint_loads_every_key_and_features_match(stage2_ckpt):
    model, path = stage2_ckpt
    state = torch.load(path, weights_only=True)["model"]
    enc = InternVideo2VisionEncoder(**TINY_VISION)
    text = BertTextEncoder(BertConfig(**TINY_TEXT), mlm_head=False)
    rv = load_vision_checkpoint(enc, state)
    rt = load_text_checkpoint(text, state)
    consumed = set(rv["consumed"]) | set(rt["consumed"])
    leftover = set(state) - consumed
    assert leftover == {"temp", "vision_proj.weight", "vision_proj.bias", "text_proj.weight", "text_proj.bias",
                        "itm_head.weight", "itm_head.bias"} | {k for k in state if k.startswith("text_encoder.cls.")}
    for k, v in enc.state_dict().items():
        torch.testing.assert_close(v, state["vision_encoder." + k], rtol=0, atol=0)
    # through the registry, from the file: identical to the reference module's own forward
    cfg = types.SimpleNamespace(recipe=types.SimpleNamespace(size=32, frames=4), checkpoint=str(path),
                                layers=[3], pooling="adaptive",
                                arch={k: v for k, v in TINY_VISION.items() if k not in ("img_size", "num_frames")})
    backbone = build_video_backbone("internvideo2", cfg)
    clips = torch.randint(0, 256, (2, 4, 32, 32, 3), dtype=torch.uint8)
    with torch.inference_mode():
        ours = backbone(clips)
        x = (clips.permute(0, 4, 1, 2, 3).float() - backbone.mean) / backbone.std
        _, pooled = model.vision_encoder(x)
    assert ours.shape == (2, 1, 24) and ours.dtype == torch.float32
    torch.testing.assert_close(ours[:, 0], pooled)


def test_bad_checkpoints_are_rejected(stage2_ckpt):
    _, path = stage2_ckpt
    state = torch.load(path, weights_only=True)["model"]
    enc = InternVideo2VisionEncoder(**TINY_VISION)
    missing = {k: v for k, v in state.items() if k != "vision_encoder.blocks.1.ls2.gamma"}
    with pytest.raises(CheckpointError, match="missing.*blocks.1.ls2.gamma"):
        load_vision_checkpoint(enc, missing)
    extra = dict(state) | {"vision_encoder.blocks.1.attn.qkv.bias": torch.zeros(96)}
    with pytest.raises(CheckpointError, match="unexpected.*qkv.bias"):
        load_vision_checkpoint(enc, extra)
    stray = dict(state) | {"some_head.weight": torch.zeros(2)}
    with pytest.raises(CheckpointError, match="some_head"):
        load_vision_checkpoint(enc, stray)
    deeper = InternVideo2VisionEncoder(**(TINY_VISION | {"embed_dim": 64}))
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_vision_checkpoint(deeper, state)


def test_position_tables_interpolate_to_other_frame_counts(stage2_ckpt):
    _, path = stage2_ckpt
    state = torch.load(path, weights_only=True)["model"]
    enc8 = InternVideo2VisionEncoder(**(TINY_VISION | {"num_frames": 8}))
    load_vision_checkpoint(enc8, state)
    old = state["vision_encoder.pos_embed"]
    assert enc8.pos_embed.shape == (1, 1 + 8 * 4, 32)
    torch.testing.assert_close(enc8.pos_embed[:, :1], old[:, :1])  # cls entry kept
    with torch.inference_mode():
        out = InternVideo2Video(enc8, [3])(torch.randint(0, 256, (1, 8, 32, 32, 3), dtype=torch.uint8))
    assert out.shape == (1, 1, 24)


def test_layer_selection_and_pooling_switch():
    torch.manual_seed(0)
    enc = InternVideo2VisionEncoder(**TINY_VISION).eval()
    clips = torch.randint(0, 256, (2, 4, 32, 32, 3), dtype=torch.uint8)
    with torch.inference_mode():
        x = (clips.permute(0, 4, 1, 2, 3).float() - torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1, 1)) \
            / torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1, 1)
        h = enc.tokens(x)
        states = []
        for block in enc.blocks:
            h = block(h)
            states.append(h)
        out = {p: InternVideo2Video(enc, [1, 3], p)(clips) for p in ("adaptive", "cls", "avg")}
        pooled = [enc.clip_projector(states[0]), enc.clip_projector(states[2])]
    assert out["adaptive"].shape == (2, 2, 24)
    assert out["cls"].shape == out["avg"].shape == (2, 2, 32)
    torch.testing.assert_close(out["adaptive"][:, 0], pooled[0])  # each layer pooled alone
    torch.testing.assert_close(out["adaptive"][:, 1], pooled[1])
    torch.testing.assert_close(out["cls"][:, 1], states[2][:, 0])
    torch.testing.assert_close(out["avg"][:, 0], states[0].mean(1))
    with pytest.raises(ValueError, match="out of range"):
        InternVideo2Video(enc, [4])
    with pytest.raises(ValueError, match="pooling"):
        InternVideo2Video(enc, [1], "max")


def test_qk_norm_spans_all_heads():
    torch.manual_seed(0)
    enc = InternVideo2VisionEncoder(**TINY_VISION).eval()
    attn = enc.blocks[0].attn
    with torch.no_grad():
        attn.q_norm.weight.copy_(torch.rand(32) + 0.5)
        attn.k_norm.weight.copy_(torch.rand(32) + 0.5)
    x = torch.randn(2, 5, 32)
    q, k, v = attn.qkv(x).chunk(3, dim=-1)

    def rms(t, w):  # over all 32 channels, not per head
        return w * t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-6)

    q, k = rms(q, attn.q_norm.weight), rms(k, attn.k_norm.weight)
    heads = [t.view(2, 5, 2, 16).transpose(1, 2) for t in (q, k, v)]
    w = torch.softmax(heads[0] @ heads[1].transpose(-1, -2) / 4.0, dim=-1)
    ref = attn.proj((w @ heads[2]).transpose(1, 2).reshape(2, 5, 32))
    torch.testing.assert_close(attn(x), ref)
    assert isinstance(attn.q_norm, RMSNorm)


def test_text_tower_layers_and_mask():
    torch.manual_seed(0)
    text = BertTextEncoder(BertConfig(**TINY_TEXT), mlm_head=False).eval()
    tokens = BertTokens(text, [1, 2])
    ids = torch.tensor([[1, 5, 7, 2, 0, 0], [1, 9, 2, 0, 0, 0]])
    mask = (ids != 0).long()
    with torch.inference_mode():
        out = tokens(ids, mask)
        alone = tokens(ids[1:, :3], mask[1:, :3])
    assert out.shape == (2, 2, 6, 16)
    torch.testing.assert_close(out[1:, :, :3], alone)  # padding does not leak into real tokens
    with pytest.raises(ValueError, match="within 1..3"):
        BertTokens(text, [4])
