"""Embedded backbone pretraining (pipeline/features/pretrain.py, pipeline/synth/corpus.py; DESIGN §4a).

Tiny world (tests/_synth_tiny.py), tiny backbones and a few steps: the corpus is disjoint from the downstream
videos and deterministic, its pixels match what extraction decodes, training lowers the loss, the written
checkpoints load strictly through ``build_video_backbone`` (the extraction path) and change the features, and
an interrupted run resumes from its saved step.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pipeline.features import pretrain as P
from pipeline.features.params import ClipRecipe, FeaturesConfig, PretrainConfig, PretrainSpec
from pipeline.core.params import RuntimeConfig, build, load_params
from pipeline.synth.generate import plan_mixed, plan_tal
from pipeline.synth import corpus, writers
from pipeline.features.decode import decode_at, plan_windows

from _synth_tiny import tiny_config
from conftest import REPO_ROOT

SF_RECIPE = ClipRecipe(fps=7.5, frames=8, stride=4, size=32, resize="squash", interpolation="area")
IV_RECIPE = ClipRecipe(fps=2, frames=4, stride=4, size=32, resize="squash", interpolation="area")
SPEC = dict(videos=3, heldout_videos=2, clips_per_video=4, steps=6, batch_size=4, lr=0.003, weight_decay=0.0,
            idle_fraction=0.25, checkpoint_every=2, warmup_steps=0, log_every=2)


def _features(backbone: str, tmp_path, **spec) -> FeaturesConfig:
    """The shipped features block with tiny backbones, pretraining ``backbone`` only, checkpoints in tmp."""
    block = load_params(REPO_ROOT / "params.yaml")["features"]
    block["slowfast"].update(recipe=dataclasses.asdict(SF_RECIPE), width=4, beta=4, alpha=4,
                             checkpoint=str(tmp_path / "pre" / "slowfast" / "slowfast.pyth"))
    block["internvideo2"].update(
        recipe=dataclasses.asdict(IV_RECIPE), layers=[1, 2], checkpoint=str(tmp_path / "pre" / "internvideo2"
                                                                              / "internvideo2.pt"),
        arch=dict(patch_size=16, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0, clip_embed_dim=32,
                  clip_teacher_embed_dim=32, clip_teacher_final_dim=32, clip_return_layer=1,
                  attn_pool_num_heads=2, init_values=1.0))
    worlds = {"slowfast": ["tal"], "internvideo2": ["captions", "qvh"]}[backbone]
    block["pretrain"] = {"backbones": [backbone], "seed_offset": 1000,
                         backbone: {"worlds": worlds, **SPEC, **spec}}
    return build(FeaturesConfig, block, "features")


RUNTIME = RuntimeConfig(**{**dataclasses.asdict(build(RuntimeConfig, load_params(REPO_ROOT / "params.yaml")["runtime"],
                                                      "runtime")), "threads": 1, "device": "cpu",
                           "precision": "fp32"})


def _signature(plan) -> tuple:
    return (plan.n_frames, plan.texture_seed, plan.render_seed, plan.actors, plan.events)


def test_corpus_is_deterministic_disjoint_and_covers_every_domain():
    synth = tiny_config()
    train = corpus.plan_corpus(synth, ["tal", "captions", "qvh"], 1000, 36)
    again = corpus.plan_corpus(synth, ["tal", "captions", "qvh"], 1000, 36)
    assert [_signature(p) for p in train] == [_signature(p) for p in again]
    held = corpus.plan_corpus(synth, ["tal", "captions", "qvh"], 1000, 12, "heldout")
    downstream = plan_tal(synth, 0) + plan_mixed(synth, "captions", 0, "v") + plan_mixed(synth, "qvh", 0, "q")
    # the corpus seed equals the downstream seed + offset, but the streams still differ (own salt)
    same_seed = corpus.plan_corpus(synth, ["tal", "captions", "qvh"], 0, 36)
    sigs = {_signature(p) for p in downstream}
    for plans in (train, held, same_seed):
        assert not sigs & {_signature(p) for p in plans}
    assert not {_signature(p) for p in train} & {_signature(p) for p in held}
    tal = [p for p in train if p.extra["set"] == "tal"]
    assert {(p.counter, p.acquisition, p.zoom) for p in tal} == set(corpus._domains(synth, "tal"))
    assert {p.acquisition for p in tal} == {"old", "new"} and {p.zoom for p in tal} == {1.0, synth.tal.zoom}


def test_corpus_pixels_match_what_extraction_decodes(tmp_path):
    """Corpus clips = decoded windows of the encoded video, up to H.264 loss (same frames, same resize)."""
    synth = tiny_config()
    plan = corpus.plan_corpus(synth, ["captions"], 1000, 1)[0]
    path = tmp_path / "v.mp4"
    writers.encode_video(path, corpus.renderer_for(plan, synth).frames(), plan.fps, synth.resolution, 10, plan.fps)
    windows = plan_windows(plan.duration, IV_RECIPE.fps, IV_RECIPE.frames, IV_RECIPE.stride)
    decoded = np.stack([f for _, f in decode_at(str(path), windows.times.ravel(), IV_RECIPE.size, "squash", "area")])
    ours = corpus.render_windows(plan, synth, IV_RECIPE, corpus.extraction_windows(plan, IV_RECIPE))
    assert ours.shape[0] == windows.num_windows
    diff = np.abs(ours.reshape(decoded.shape).astype(int) - decoded.astype(int))
    assert diff.mean() < 2.0, diff.mean()
    # a one-frame shift is clearly larger: the test can tell the right frames from neighbours
    shifted = corpus.render_windows(plan, synth, IV_RECIPE, [k + 1 for k in corpus.extraction_windows(plan, IV_RECIPE)[:-1]])
    assert np.abs(shifted.astype(int) - ours[:-1].astype(int)).mean() > diff.mean()


def test_labels_follow_the_events():
    synth = tiny_config()
    plan = next(p for p in corpus.plan_corpus(synth, ["tal"], 1000, 8) if p.events)
    ev = plan.events[0]
    a, b = ev.start_frame / plan.fps, ev.stop_frame / plan.fps
    lab = corpus.label_window(plan, a, b)
    assert lab.kind == "event" and lab.verb == ev.verb and lab.shape == plan.actors[ev.actor].shape
    assert lab.color == ev.color and lab.caption
    if a > 0.5:
        assert corpus.label_window(plan, 0.0, min(0.4, a - 0.05)).kind in ("idle", "ambiguous")
    assert corpus.label_window(plan, a - 0.05, a + 0.01).kind == "ambiguous"


def _build(backbone, features):
    from models.backbones import build_video_backbone

    torch.manual_seed(0)
    return build_video_backbone(backbone, features.backbone(backbone))


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["slowfast", "internvideo2"])
def test_pretraining_lowers_the_loss_and_writes_a_loadable_checkpoint(backbone, tmp_path):
    synth = tiny_config()
    # a small bank seen many times: the loss must fall well beyond batch-to-batch noise
    features = _features(backbone, tmp_path, steps=30, videos=2, batch_size=8, log_every=5, idle_fraction=0.0,
                         lr=0.01 if backbone == "slowfast" else 0.003)
    out = tmp_path / "pre" / backbone
    metrics = P.pretrain(backbone, features, synth, RUNTIME, out, tmp_path / "work" / backbone,
                         tmp_path / "live", progress=False)
    assert metrics["final_loss"] < metrics["first_loss"], metrics
    assert (out / P.CHECKPOINT_NAME[backbone]).exists()
    assert not (tmp_path / "work" / backbone).exists()  # scratch removed once the output is in place
    assert (tmp_path / "live" / "plots" / "metrics" / "train" / "loss.tsv").exists()
    # strict load through the extraction path, and the pretrained weights change the features
    pretrained = _build(backbone, features)
    random_init = _build(backbone, dataclasses.replace(
        features, **{backbone: dataclasses.replace(features.backbone(backbone), checkpoint=None)}))
    clips = torch.from_numpy(corpus.sample_clips(corpus.plan_corpus(synth, ["tal"], 5, 1, "probe"), synth,
                                                 features.backbone(backbone).recipe, 3, 0).clips)
    with torch.inference_mode():
        a, b = pretrained(clips), random_init(clips)
    assert a.shape == b.shape and not torch.allclose(a, b)
    ckpt = torch.load(out / P.CHECKPOINT_NAME[backbone], map_location="cpu", weights_only=False)
    if backbone == "slowfast":
        state = ckpt["model_state"]
        assert state["blocks.6.proj.weight"].shape[0] == sum(len(v) for v in P.HEADS.values())
    else:
        keys = set(ckpt["module"])
        assert "temp" in keys and {"vision_proj.weight", "text_proj.weight"} <= keys
        assert all(k.startswith(("vision_encoder.", "vision_proj.", "text_proj.", "temp")) for k in keys)
        assert any(k.startswith("vision_encoder.clip_decoder.") for k in keys)  # official keys kept


def test_a_mismatched_checkpoint_is_rejected_with_the_key_names(tmp_path):
    from models.backbones.pyvideo import build_slowfast, create_slowfast, pyth_state

    net = create_slowfast(8, 4, 4)
    path = tmp_path / "x.pyth"
    head = torch.nn.Linear(10, 5)
    net.blocks[-1].proj = torch.nn.Identity()
    torch.save({"model_state": pyth_state(net, head)}, path)
    with pytest.raises(ValueError, match="x.pyth"):
        build_slowfast(4, 4, 4, str(path))  # width 4 vs a width-8 checkpoint


@pytest.mark.slow
def test_an_interrupted_run_resumes_from_its_saved_step(tmp_path, capsys):
    """Killed after step 3 (state saved at step 2), outputs deleted as ``dvc repro`` deletes them, rerun:
    it resumes at step 2 and writes the same checkpoint bytes and the same full curves as a straight run."""
    import shutil

    synth = tiny_config()
    features = _features("slowfast", tmp_path, steps=6, checkpoint_every=2, log_every=1)
    work = tmp_path / "work"
    with pytest.raises(KeyboardInterrupt):
        P.pretrain("slowfast", features, synth, RUNTIME, tmp_path / "a", work, tmp_path / "live_a",
                   progress=False, stop_after=3)
    assert (work / ".gitignore").read_text() == "*\n"  # scratch is git-ignored
    state = torch.load(next(work.glob("*/state.pt")), weights_only=False)
    assert state["step"] == 2 and len(state["history"]) == 2 and len(state["curve"]) == 2
    shutil.rmtree(tmp_path / "live_a")  # a DVC output (plots): deleted before the rerun
    capsys.readouterr()
    resumed = P.pretrain("slowfast", features, synth, RUNTIME, tmp_path / "a", work, tmp_path / "live_a",
                         progress=False)
    assert resumed["resumed_from_step"] == 2 and "resuming slowfast at step 2/6" in capsys.readouterr().err
    assert not work.exists()  # scratch removed once the output is in place
    straight = P.pretrain("slowfast", features, synth, RUNTIME, tmp_path / "b", tmp_path / "work2",
                          tmp_path / "live_b", progress=False)
    # same batches and RNG: the resumed run ends with the uninterrupted one's bytes, curves included
    assert resumed["final_loss"] == straight["final_loss"]
    assert (tmp_path / "a" / "slowfast.pyth").read_bytes() == (tmp_path / "b" / "slowfast.pyth").read_bytes()
    curves = sorted(p.relative_to(tmp_path / "live_b") for p in (tmp_path / "live_b").rglob("*.tsv"))
    assert curves and all((tmp_path / "live_a" / c).read_bytes() == (tmp_path / "live_b" / c).read_bytes()
                          for c in curves)
    assert len((tmp_path / "live_a" / "plots/metrics/train/loss.tsv").read_text().splitlines()) == 1 + 6


def test_config_rejects_a_backbone_without_spec_and_bad_ranges():
    from pipeline.core.params import ConfigError

    with pytest.raises(ConfigError, match="features.pretrain.internvideo2"):
        PretrainConfig(backbones=["internvideo2"], seed_offset=0)
    with pytest.raises(ConfigError, match="idle_fraction"):
        PretrainSpec(worlds=["tal"], **{**SPEC, "idle_fraction": 1.5})
