"""Linear feature probes (``pipeline.features.probes``): hand-checkable probes and the stage end to end."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from features_helpers import make_video

from pipeline.features import probes as pf
from pipeline.datasets.schema import Moment, VideoRecord, write_records
from pipeline.report.sections import probes as probes_report
from pipeline.features.container import write_container

from conftest import REPO_ROOT

# ---- targets ----------------------------------------------------------------------------------------------


def test_caption_verb_reads_the_one_vocabulary_verb_of_a_caption():
    assert pf.caption_verb("A small blue star fades in slowly in the bottom right corner.") == "fade-in"
    assert pf.caption_verb("A large blue square turns yellow slowly at the bottom.") == "change-color"
    assert pf.caption_verb("Something slides.") == "slide"
    assert pf.caption_verb("A red circle waves.") is None  # no verb of the world
    assert pf.caption_verb("A circle blinks and then grows.") is None  # two verbs: ambiguous


def test_moment_verb_prefers_the_canonical_label():
    assert pf.moment_verb(Moment("m", 0, 1, label="spin", text="A square slides.")) == "spin"
    assert pf.moment_verb(Moment("m", 0, 1, text="A square slides.")) == "slide"
    assert pf.moment_verb(Moment("m", 0, 1)) is None


def test_row_targets_use_the_row_centre():
    # rows every 1 s, 1-s window: centres 0.5, 1.5, 2.5, 3.5, 4.5
    rec = VideoRecord("v", "toy", "train", 5.0, moments=[Moment("a", 1.0, 3.0, label="jump"),
                                                         Moment("b", 2.0, 4.0, label="spin")])
    event, verb = pf.row_targets(rec, 5, 1.0, 1.0)
    assert event.tolist() == [False, True, True, True, False]
    assert verb == [None, "jump", None, "spin", None]  # centre 2.5 lies in both events: no verb


# ---- probes -----------------------------------------------------------------------------------------------


def _labels(n, seed):
    rng = np.random.default_rng(seed)
    return rng.choice(["jump", "spin", "slide"], size=n, p=[0.5, 0.3, 0.2])


def test_features_that_encode_the_label_are_perfect_and_beat_the_majority():
    yt, ye = _labels(120, 0), _labels(60, 1)
    classes = {"jump": 0, "spin": 1, "slide": 2}
    rng = np.random.default_rng(2)

    def encode(y):
        x = rng.normal(0, 0.05, (len(y), 8))
        x[np.arange(len(y)), [classes[v] for v in y]] += 1.0
        return x

    acc = pf.probe_accuracy(encode(yt), yt, encode(ye), ye)
    majority = pf.majority_accuracy(yt, ye)
    assert acc == 1.0
    assert majority == pytest.approx(np.mean(ye == "jump")) and majority < 1.0


def test_constant_features_give_the_majority_accuracy():
    yt, ye = _labels(100, 3), _labels(50, 4)
    acc = pf.probe_accuracy(np.ones((100, 5)), yt, np.ones((50, 5)), ye)
    assert acc == pytest.approx(pf.majority_accuracy(yt, ye))


def test_a_single_training_class_is_predicted_everywhere():
    assert pf.probe_accuracy(np.zeros((4, 2)), ["a"] * 4, np.zeros((3, 2)), ["a", "b", "a"]) == pytest.approx(2 / 3)


def test_retrieval_with_features_that_encode_the_query_finds_it_first():
    rng = np.random.default_rng(0)
    proj = rng.normal(size=(6, 16))  # video vector of a moment = fixed projection of its query's text

    def pairs(n):
        t = rng.normal(size=(n, 6))
        return t, t @ proj

    t_train, v_train = pairs(40)
    t_eval, v_eval = pairs(12)
    rec = pf.retrieval_recall(t_train, v_train, t_eval, v_eval, [[i] for i in range(12)], alpha=1e-3)
    assert rec[1] == 1.0 and rec[5] == 1.0
    # unrelated text: far from perfect
    shuffled = pf.retrieval_recall(t_train, v_train, t_eval, v_eval, [[(i + 1) % 12] for i in range(12)], 1e-3)
    assert shuffled[1] == 0.0


def test_pick_videos_spreads_over_the_sorted_ids():
    recs = [VideoRecord(f"v{i:02d}", "toy", "train", 1.0) for i in range(10)]
    assert [r.video_id for r in pf.pick_videos(recs, "train", 3)] == ["v00", "v04", "v09"]
    assert len(pf.pick_videos(recs, "train", 0)) == 10
    assert pf.pick_videos(recs, "val", 3) == []


# ---- the stage end to end ----------------------------------------------------------------------------------

STEP, WINDOW = 0.8, 1.6  # slowfast recipe below: fps 5, frames 8, stride 4
VERBS = ["jump", "spin"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """6 videos (4 train, 2 val; dark/white domains) with two labelled, captioned moments each, an "extracted"
    container whose rows encode label, event and domain, text features that encode each query, a params file."""
    root = tmp_path_factory.mktemp("probe")
    rng = np.random.default_rng(0)
    recs, rows, texts = [], {"train": [], "val": []}, {"train": [], "val": []}
    for i in range(6):
        split = "train" if i < 4 else "val"
        vid, dur = f"vid{i}", 6.0
        make_video(root / "videos" / f"{vid}.mp4", dur, fps=10, size=32, seed=i)
        moments = [Moment(f"{vid}/{k}", s, e, label=VERBS[(i + k) % 2], text=f"query {i} {k}",
                          query_id=f"{vid}/{k}") for k, (s, e) in enumerate([(0.8, 2.4), (3.2, 4.8)])]
        domain = "dark" if i % 2 == 0 else "white"
        recs.append(VideoRecord(vid, "toy", split, dur, domain=domain, video_path=f"videos/{vid}.mp4",
                                moments=moments))
        n = int((dur - WINDOW) / STEP) + 1
        x = rng.normal(0, 0.01, (n, 1, 8)).astype(np.float32)
        for r in range(n):
            c = r * STEP + WINDOW / 2
            hit = [m for m in moments if m.start <= c < m.end]
            x[r, 0, 0 if not hit else 1 + VERBS.index(hit[0].label)] += 1.0  # idle / jump / spin
            x[r, 0, 3 + (domain == "white")] += 1.0
        rows[split].append((vid, x))
        for m in moments:
            texts[split].append((m.query_id, rng.normal(size=(5, 2, 4)).astype(np.float32)))
    write_records(root / "toy.jsonl", recs)
    meta = {"backbone": "slowfast", "dim": 8, "layers": [1], "time_step": STEP, "window": WINDOW,
            "checkpoint": "weights.pyth"}
    for split in rows:
        write_container(root / "features" / split, rows[split], {**meta, "split": split})
        write_container(root / "text" / "toy" / split, texts[split], {"layers": [5, 6]})
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["runtime"].update(workers=0, threads=1, device="cpu", precision="fp32")
    params["features"]["slowfast"].update(recipe={"fps": 5, "frames": 8, "stride": 4, "size": 32}, width=4)
    params["features"]["batch_size"] = 4
    params["features"]["probes"] = {"max_videos": 0, "C": 1.0, "ridge_alpha": 1.0, "max_iter": 200,
                                    "train_split": "train", "eval_split": "val"}
    params["datasets"]["sources"]["toy"] = {"format": "epic_kitchens_100", "root": "videos"}
    params["datasets"]["scenarios"] = {"toyS": {"dataset": "toy", "source": {"domain": ["dark"]},
                                                "target": {"domain": ["white"]}}}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


@pytest.mark.slow  # decodes 6 videos and runs a random-init SlowFast on them (~10 s on 1 thread)
def test_stage_writes_both_arms_with_the_documented_keys(toy, monkeypatch):
    monkeypatch.chdir(toy)  # video_path is relative to the repository root, here the fixture root
    out = toy / "metrics" / "probes" / "toy-slowfast.json"
    assert pf.main(["--dataset", "toy", "--backbone", "slowfast", "--canonical", "toy.jsonl", "--features",
                    "features", "--text-features", "text", "--out", str(out), "--params", "params.yaml"]) == 0
    m = json.loads(out.read_text())
    keys = {"verb_acc", "majority_verb_acc", "event_acc", "majority_event_acc", "domain_acc",
            "majority_domain_acc", "retrieval_r1", "retrieval_r5"}
    for arm in ("pretrained", "random_init"):
        assert keys <= set(m[arm]), (arm, sorted(m[arm]))
        assert set(m[arm]["domain_acc"]) == {"toyS"}
        for key in keys - {"domain_acc", "majority_domain_acc"}:
            assert 0.0 <= m[arm][key] <= 1.0
    assert m["checkpoint"] == "weights.pyth" and m["pretrained_is_random"] is False
    assert m["videos"]["pretrained"]["train"] == 4 and m["videos"]["random_init"]["eval"] == 2
    # the "pretrained" container encodes label, event and domain: its probes are perfect
    pre = m["pretrained"]
    assert pre["verb_acc"] == 1.0 and pre["event_acc"] == 1.0 and pre["domain_acc"]["toyS"] == 1.0
    assert pre["event_acc"] > pre["majority_event_acc"]
    assert pre["retrieval_candidates"] == 4 and pre["retrieval_queries"] == 4
    # the random-init arm really ran the backbone on the videos: other features, same majority baselines
    assert m["random_init"]["majority_verb_acc"] == pre["majority_verb_acc"]
    assert m["random_init"]["event_rows"]["eval"] > 0
    # the report section renders a table for this file
    text = probes_report.render(toy)
    assert "### toy / slowfast" in text and "| verb accuracy" in text and "toyS" in text


def test_stage_without_text_features_or_scenarios_omits_those_keys(toy, tmp_path):
    from pipeline.core.params import load_block
    from pipeline.core.params import RuntimeConfig
    from pipeline.features.params import FeaturesConfig

    features = load_block(FeaturesConfig, toy / "params.yaml")
    runtime = load_block(RuntimeConfig, toy / "params.yaml")
    recs = [json.loads(line) for line in (toy / "toy.jsonl").read_text().splitlines()]
    for r in recs:  # a TAL-like copy: labels only, no texts, no query ids
        r["moments"] = [{**mo, "text": None, "query_id": None} for mo in r["moments"]]
    (tmp_path / "tal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    # random-init arm replaced by the container itself (no video decoding in this test)
    m = pf.run_probes("toy", "slowfast", tmp_path / "tal.jsonl", toy / "features", toy / "text", features, runtime,
                      {}, random_init=lambda recs, work: toy / "features")
    for arm in ("pretrained", "random_init"):
        assert "verb_acc" in m[arm] and "event_acc" in m[arm]
        assert not {"retrieval_r1", "retrieval_r5", "domain_acc"} & set(m[arm])
    assert m["pretrained"] == m["random_init"]


def test_missing_container_is_a_clear_error(toy, tmp_path, capsys):
    rc = pf.main(["--dataset", "toy", "--backbone", "slowfast", "--canonical", str(toy / "toy.jsonl"), "--features",
                  str(tmp_path / "nowhere"), "--out", str(tmp_path / "o.json"), "--params", str(toy / "params.yaml")])
    err = capsys.readouterr().err
    assert rc == 2 and "feature container not found" in err and err.startswith("error: ")
