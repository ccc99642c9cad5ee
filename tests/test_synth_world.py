"""Synthetic world: determinism, codec fidelity, annotation times = rendered events, planner rules."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from pipeline.synth import generate as synth
from pipeline.core.params import load_block
from pipeline.synth.params import SynthConfig
from pipeline.synth import vocab, writers
from pipeline.synth.events import plan_video
from pipeline.synth.render import Renderer
from pipeline.synth.tracks import actor_tracks

from _synth_tiny import CLEAN, decode, tiny_config
from conftest import REPO_ROOT


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The tiny world generated twice with the same seed (1 and 2 worker processes)."""
    cfg = tiny_config()
    a, b = tmp_path_factory.mktemp("a") / "synth", tmp_path_factory.mktemp("b") / "synth"
    synth.synthesize(cfg, 7, a, workers=1)
    synth.synthesize(cfg, 7, b, workers=2)
    return cfg, a, b


def _files(root):
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def test_same_seed_gives_identical_annotations_and_frames(two_runs):
    _, a, b = two_runs
    assert _files(a) == _files(b)
    for rel in _files(a):
        if rel.suffix == ".mp4":
            fa, _ = decode(a / rel)
            fb, _ = decode(b / rel)
            assert len(fa) == len(fb) and all(np.array_equal(x, y) for x, y in zip(fa, fb)), rel
        else:
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_seed_offset_redraws_one_set_and_leaves_the_others_byte_identical(two_runs, tmp_path):
    _, a, _ = two_runs
    synth.synthesize(tiny_config(qvh={"qvh": {"seed_offset": 1}}), 7, tmp_path / "q", workers=1)
    b = tmp_path / "q"
    for rel in _files(a):
        same = (a / rel).read_bytes() == (b / rel).read_bytes() if (b / rel).exists() else False
        if rel.parts[0] in ("synth_tal", "synth_captions", "synth_oracle"):
            assert same, rel
    qvh = "synth_qvh/highlight_train_release.jsonl"
    assert (a / qvh).read_bytes() != (b / qvh).read_bytes()


def test_other_seed_gives_other_world(two_runs, tmp_path):
    cfg, a, _ = two_runs
    synth.synthesize(cfg, 8, tmp_path / "c", workers=1)
    assert (a / "synth_captions/train.json").read_bytes() != (tmp_path / "c/synth_captions/train.json").read_bytes()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def test_stage_videos_are_h264_and_decode_to_the_rendered_frames(two_runs):
    cfg, root, _ = two_runs
    plans = synth.plan_tal(cfg, 7)
    for plan in (plans[0], plans[-1]):  # a wide "old" (shaky, noisy) video and a zoomed "new" one
        frames, facts = decode(root / "synth_tal/videos" / f"{plan.video_id}.mp4")
        assert facts == {"codec": "h264", "pix_fmt": "yuv420p", "fps": 30.0, "width": 48, "height": 48}
        rendered = list(Renderer(plan, cfg.resolution, cfg.acquisition[plan.acquisition], cfg.idle_amplitude,
                                 cfg.idle_period).frames())
        assert len(frames) == len(rendered) == plan.n_frames
        # sensor noise is partly smoothed away by the codec, hence the looser bound than the clean test
        assert _psnr(np.stack(frames), np.stack(rendered)) > 24.0, plan.video_id


def test_codec_tolerance_and_frame_alignment_on_clean_video(tmp_path):
    cfg, plans = _clean_plans()
    plan = max(plans, key=lambda p: len(p.events))
    rendered = np.stack(list(Renderer(plan, cfg.resolution, cfg.acquisition[plan.acquisition], 0.0,
                                      cfg.idle_period).frames()))
    writers.encode_video(tmp_path / "v.mp4", iter(rendered), plan.fps, cfg.resolution, cfg.crf, plan.fps)
    decoded = np.stack(decode(tmp_path / "v.mp4")[0])
    err = np.abs(decoded.astype(np.float64) - rendered)
    assert err.mean() < 5.0 and _psnr(decoded, rendered) > 28.0
    # each decoded frame is closest to its own rendered frame, not to a neighbour (no shifted timing)
    moving = [i for i in range(1, len(rendered) - 1) if np.any(rendered[i] != rendered[i - 1])]
    assert len(moving) > 10
    own = np.mean([np.abs(decoded[i].astype(float) - rendered[i]).mean() for i in moving])
    prev = np.mean([np.abs(decoded[i].astype(float) - rendered[i - 1]).mean() for i in moving])
    nxt = np.mean([np.abs(decoded[i].astype(float) - rendered[i + 1]).mean() for i in moving])
    assert own < prev and own < nxt


def _clean_plans():
    cfg = tiny_config(clean=CLEAN, longer={"captions": {"duration": [30.0, 30.0]}})
    plans = synth.plan_tal(cfg, 3) + synth.plan_mixed(cfg, "captions", 3, "v_anc")
    return cfg, plans


def test_pixels_change_exactly_inside_annotated_events():
    """No camera/noise/idle motion: a frame differs from its predecessor only inside an event, and every event
    visibly starts on the frame after its start frame and visibly ends on its stop frame."""
    cfg, plans = _clean_plans()
    checked = 0
    for plan in plans:
        frames = np.stack(list(Renderer(plan, cfg.resolution, cfg.acquisition[plan.acquisition], 0.0,
                                        cfg.idle_period).frames())).astype(np.int16)
        changed = np.abs(np.diff(frames, axis=0)).reshape(len(frames) - 1, -1).max(axis=1) > 0
        changed_frames = set((np.nonzero(changed)[0] + 1).tolist())  # frame f differs from f - 1
        inside = set()
        for ev in plan.events:
            inside |= set(range(ev.start_frame + 1, ev.stop_frame + 1))
            assert ev.start_frame + 1 in changed_frames, (plan.video_id, ev)
            assert ev.stop_frame in changed_frames, (plan.video_id, ev)
            checked += 1
        assert changed_frames <= inside, (plan.video_id, sorted(changed_frames - inside)[:5])
    assert checked > 20


def test_actor_state_changes_only_during_its_own_events():
    cfg, plans = _clean_plans()
    for plan in plans:
        for ai, tr in enumerate(actor_tracks(plan, 0.0, cfg.idle_period)):
            state = np.column_stack([tr["x"], tr["y"], tr["r"], tr["angle"], tr["alpha"], tr["rgb"]])
            moving = set((np.nonzero(np.any(np.diff(state, axis=0) != 0, axis=1))[0] + 1).tolist())
            own = set()
            for ev in (e for e in plan.events if e.actor == ai):
                own |= set(range(ev.start_frame + 1, ev.stop_frame + 1))
            assert moving <= own, (plan.video_id, ai)


def test_planner_rules():
    cfg, plans = _clean_plans()
    verbs = set()
    for plan in plans:
        g = round(cfg.tal.time_grid * plan.fps) if plan.fps == cfg.tal.fps else 1
        captions_seen = set()
        for ai in range(len(plan.actors)):
            own = [e for e in plan.events if e.actor == ai]
            for prev, nxt in zip(own, own[1:]):
                assert prev.stop_frame < nxt.start_frame, "events of one actor must not overlap"
                if prev.verb == "grow":
                    assert nxt.size == "large"
                if prev.verb in ("slide", "jump"):
                    assert nxt.anchor == prev.anchor_to
        for ev in plan.events:
            assert 0 < ev.start_frame < ev.stop_frame < plan.n_frames
            assert ev.start_frame % g == 0 and ev.stop_frame % g == 0
            assert not (ev.verb == "spin" and plan.actors[ev.actor].shape == "circle")
            key = (ev.verb, ev.size, ev.color, plan.actors[ev.actor].shape, ev.manner, ev.anchor, ev.anchor_to,
                   ev.color_to)
            assert key not in captions_seen, "full captions must be unique within a video"
            captions_seen.add(key)
            verbs.add(ev.verb)
    assert len(verbs) >= 6


def test_default_world_uses_every_verb_in_every_set():
    """Planning only (cheap): the shipped sizes give every verb enough TAL instances to learn from."""
    cfg = load_block(SynthConfig, REPO_ROOT / "params.yaml")
    tal = synth.plan_tal(cfg, 0)
    counts = Counter(e.verb for p in tal for e in p.events)
    assert set(counts) == set(cfg.tal.verbs) and min(counts.values()) >= 20, counts
    for name in ("captions", "qvh"):
        used = {e.verb for p in synth.plan_mixed(cfg, name, 0, "v") for e in p.events}
        assert used == set(getattr(cfg, name).verbs)


def test_domains_of_the_tal_set(two_runs):
    cfg, _, _ = two_runs
    plans = synth.plan_tal(cfg, 7)
    by_id = {p.video_id: p for p in plans}
    assert by_id["P01_01"].acquisition == "old" and by_id["P01_101"].acquisition == "new"
    assert by_id["P01_01"].counter == "dark" and by_id["P02_01"].counter == "white"
    assert by_id["P02_01"].zoom > 1.0 and by_id["P01_01"].zoom == 1.0
    assert by_id["P01_01"].texture_seed == by_id["P01_101"].texture_seed  # same kitchen


def test_invalid_config_names_the_key():
    cfg = tiny_config(bad={"captions": {"verbs": ["slide", "teleport"]}})
    with pytest.raises(ValueError, match=r"synth\.captions\.verbs.*teleport"):
        synth.validate(cfg)
    cfg = tiny_config(bad={"tal": {"time_grid": 0.05}})
    with pytest.raises(ValueError, match="time_grid"):
        synth.validate(cfg)


def test_plan_is_a_pure_function_of_the_seed():
    cfg = tiny_config()
    a = plan_video("x", cfg.captions, [1, 2, 3], "dark", "new", 1.0, 5)
    b = plan_video("x", cfg.captions, [1, 2, 3], "dark", "new", 1.0, 5)
    c = plan_video("x", cfg.captions, [1, 2, 4], "dark", "new", 1.0, 5)
    assert a == b and a != c
    assert all(e.verb in vocab.VERB_BY_KEY for e in a.events)
