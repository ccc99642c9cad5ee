"""Issue 16 (items 4, 5, 8), feature extraction: a split that loses its videos stops the extraction with the
list; a missing checkpoint is one error naming the key before any video is decoded; numeric knobs are range
checked; a video missing from a container is an error naming both; run history stays out of cached outputs."""
from __future__ import annotations

import dataclasses
import json

import pytest
import yaml
from features_helpers import make_video, truncate
from test_features_extract import RUNTIME, features_config

from pipeline.core.cli import run_main
from pipeline.core.io import InputError
from pipeline.core.params import ConfigError, build
from pipeline.datasets.schema import Moment, VideoRecord, write_records
from pipeline.features import extract as extract_mod
from pipeline.features import extract_text as text_mod
from pipeline.features import merge as merge_mod
from pipeline.features.container import FeatureContainer, MissingItemError, write_container
from pipeline.features.extract import extract_shard, shard_records
from pipeline.features.merge import merge_shards
from pipeline.features.params import FeaturesConfig
from pipeline.features.probes import extract_random_init


def _decode(**over):
    return {"on_error": "skip", "max_missing": 1.0, "seek_gap": 4.0, "threads": 0, **over}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """train: 4 good videos + 1 truncated (lost while decoding); val: 1 too short + 1 missing file (all lost)."""
    root = tmp_path_factory.mktemp("fail_early")
    recs = []
    for i in range(4):
        make_video(root / f"v{i}.mp4", 4.0, fps=10, size=48, seed=i)
        recs.append(VideoRecord(f"v{i}", "toy", "train", 4.0, video_path=f"v{i}.mp4"))
    truncate(make_video(root / "broken.mp4", 5.0, fps=10, size=48, faststart=True), keep=0.45)
    recs.append(VideoRecord("broken", "toy", "train", 5.0, video_path="broken.mp4"))
    make_video(root / "short.mp4", 1.2, fps=10, size=48)
    recs.append(VideoRecord("short", "toy", "val", 1.2, video_path="short.mp4"))
    recs.append(VideoRecord("gone", "toy", "val", 5.0, video_path="gone.mp4"))
    write_records(root / "toy.jsonl", recs)
    return root, recs


def _no_model(monkeypatch):
    """Fail the test if the backbone is built (the check must come first)."""

    def boom(*a, **k):
        raise AssertionError("backbone built before the early check")

    monkeypatch.setattr(extract_mod, "build_backbone", boom)


def test_split_that_loses_every_video_fails_before_decoding(world, tmp_path, monkeypatch):
    root, recs = world
    _no_model(monkeypatch)
    cfg = features_config(decode=_decode(max_skipped_share=1.0))  # even "allow any share" keeps this rule
    with pytest.raises(InputError) as err:
        extract_shard(recs, "internvideo2", cfg, RUNTIME, tmp_path / "o", tmp_path / "w", "toy", root=root,
                      progress=False)
    msg = str(err.value)
    assert "toy: split 'val' lost 2 of its 2 videos at extraction" in msg and "every one of them" in msg
    assert "gone (video file not found" in msg and "short (shorter than one window" in msg
    assert not (tmp_path / "o").exists()


def test_share_over_the_limit_fails_after_decoding_and_resumes_after_raising_it(world, tmp_path):
    root, recs = world
    train = [r for r in recs if r.split == "train"]  # 1 of 5 lost = 20 %
    strict = features_config(decode=_decode(max_skipped_share=0.1))
    with pytest.raises(InputError, match=r"split 'train' lost 1 of its 5 videos .*20\.0% > "
                                         r"features\.decode\.max_skipped_share = 10%\. Skipped: broken \("):
        extract_shard(train, "internvideo2", strict, RUNTIME, tmp_path / "o", tmp_path / "w", "toy", root=root,
                      progress=False)
    assert not (tmp_path / "o").exists()
    lenient = features_config(decode=_decode(max_skipped_share=0.2))  # 20 % is not more than 20 %
    rep = extract_shard(train, "internvideo2", lenient, RUNTIME, tmp_path / "o", tmp_path / "w", "toy", root=root,
                        progress=False)
    assert rep["resumed"] == 5 and rep["extracted"] == 4  # the limit is no setting of the numbers: work reused


def test_default_limit_is_five_percent_and_range_checked():
    assert features_config(decode=_decode()).decode.max_skipped_share == 0.05
    with pytest.raises(ConfigError, match=r"features\.decode\.max_skipped_share: must be ≤ 1, got 1\.5"):
        features_config(decode=_decode(max_skipped_share=1.5))


def test_merge_checks_the_share_over_all_shards(world, tmp_path):
    """Each shard sees 1 lost train video of 6 (≤ 20 %); together they lost 2 of 6 (33 %)."""
    root, recs = world
    make_video(root / "v4.mp4", 0.8, fps=10, size=48)  # too short: lost before decoding
    train = [r for r in recs if r.split == "train"] + [VideoRecord("v4", "toy", "train", 0.8, video_path="v4.mp4")]
    cfg = features_config(decode=_decode(max_skipped_share=0.2))
    for k in range(2):
        extract_shard(shard_records(train, k, 2), "internvideo2", cfg, RUNTIME, tmp_path / "sh" / str(k),
                      tmp_path / "wk" / str(k), "toy", k, 2, root=root, progress=False, split_sizes={"train": 6})
    with pytest.raises(InputError, match=r"split 'train' lost 2 of its 6 videos at extraction, 33\.3% > "
                                         r".*Skipped: broken \(.*\); v4 \(shorter than one window"):
        merge_shards(tmp_path / "sh", 2, tmp_path / "merged")
    assert not (tmp_path / "merged").exists()


def test_cli_fails_with_one_line_and_exit_2(world, tmp_path, monkeypatch, capsys):
    root, _ = world
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"features": dataclasses.asdict(features_config(decode=_decode())),
                                      "runtime": dataclasses.asdict(RUNTIME)}))
    monkeypatch.chdir(root)
    _no_model(monkeypatch)
    rc = extract_mod.main(["--backbone", "internvideo2", "--dataset", "toy", "--canonical", "toy.jsonl",
                           "--out", str(tmp_path / "o"), "--work", str(tmp_path / "w"), "--params", str(params)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("error: toy: split 'val' lost 2 of its 2 videos")


def test_probe_random_init_arm_tolerates_gaps(world, tmp_path):
    """The probes extract a sample with the random-init backbone; their gaps are reported, not fatal."""
    root, recs = world
    subset = [r for r in recs if r.video_id in ("v0", "short")]  # val loses its only video
    out, rep = extract_random_init(subset, "toy", "internvideo2", features_config(decode=_decode()), RUNTIME,
                                   tmp_path, root, progress=False)
    assert rep["extracted"] == 1 and [s["video_id"] for s in rep["skipped"]] == ["short"]


def test_report_json_is_identical_after_an_interrupted_run(world, tmp_path):
    root, recs = world
    train = [r for r in recs if r.split == "train"]
    cfg = features_config()
    clean = extract_shard(train, "internvideo2", cfg, RUNTIME, tmp_path / "a", tmp_path / "aw", "toy", root=root,
                          progress=False)
    with pytest.raises(KeyboardInterrupt):
        extract_shard(train, "internvideo2", cfg, RUNTIME, tmp_path / "b", tmp_path / "bw", "toy", root=root,
                      progress=False, stop_after=2)
    resumed = extract_shard(train, "internvideo2", cfg, RUNTIME, tmp_path / "b", tmp_path / "bw", "toy",
                            root=root, progress=False)
    assert clean["resumed"] == 0 and resumed["resumed"] >= 2  # run history is returned (and printed) ...
    written = (tmp_path / "b" / "report.json").read_bytes()
    assert written == (tmp_path / "a" / "report.json").read_bytes()  # ... never written
    assert "resumed" not in json.loads(written) and "seconds" not in written.decode()


@pytest.mark.parametrize("backbone, key", [("internvideo2", "features.internvideo2.checkpoint"),
                                           ("clip", "features.clip.model.checkpoint")])
def test_missing_checkpoint_is_one_error_naming_the_key(world, tmp_path, monkeypatch, capsys, backbone, key):
    root, _ = world
    block = dataclasses.asdict(features_config())
    if backbone == "clip":
        block["clip"]["model"]["checkpoint"] = "weights/nope.bin"
    else:
        block[backbone]["checkpoint"] = "weights/nope.pt"
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"features": block, "runtime": dataclasses.asdict(RUNTIME)}))
    monkeypatch.chdir(root)
    _no_model(monkeypatch)
    rc = extract_mod.main(["--backbone", backbone, "--dataset", "toy", "--canonical", "toy.jsonl",
                           "--out", str(tmp_path / "o"), "--work", str(tmp_path / "w"), "--params", str(params)])
    err = capsys.readouterr().err.strip()
    path = "weights/nope.bin" if backbone == "clip" else "weights/nope.pt"
    assert rc == 2 and err == f"error: {params}: {key}: checkpoint file {path} does not exist"
    assert not (tmp_path / "w").exists()  # nothing decoded, no work directory


def test_text_stage_checks_its_tower_files(tmp_path, monkeypatch, capsys):
    block = dataclasses.asdict(features_config())
    block["text"]["tower"] = "internvideo2"
    block["internvideo2"]["checkpoint"] = str(tmp_path / "iv2.pt")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"features": block, "runtime": dataclasses.asdict(RUNTIME)}))
    recs = tmp_path / "r.jsonl"
    write_records(recs, [VideoRecord("v", "toy", "train", 5.0, moments=[Moment("m", 0, 1, text="a", query_id="q")])])
    monkeypatch.setattr(text_mod, "build_tower", lambda *a: pytest.fail("tower built before the check"))
    rc = text_mod.main(["--queryset", "toy", "--records", str(recs), "--out", str(tmp_path / "o"),
                        "--params", str(params)])
    assert rc == 2 and "features.internvideo2.checkpoint: checkpoint file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("batch_size",), 0, r"features\.batch_size: must be ≥ 1, got 0"),
        (("decode", "max_missing"), -1.0, r"features\.decode\.max_missing: must be ≥ 0"),
        (("decode", "threads"), -2, r"features\.decode\.threads: must be ≥ 0"),
        (("slowfast", "recipe", "fps"), 0, r"features\.slowfast\.recipe\.fps: must be > 0"),
        (("slowfast", "recipe", "size"), 4, r"features\.slowfast\.recipe\.size: must be ≥ 8"),
        (("slowfast", "width"), 0, r"features\.slowfast\.width: must be ≥ 1"),
        (("internvideo2", "arch", "init_values"), 0.0, r"features\.internvideo2\.arch\.init_values: must be > 0"),
        (("text", "layers"), [0, 6], r"features\.text\.layers\[0\]: must be ≥ 1"),
        (("text", "max_tokens"), 0, r"features\.text\.max_tokens: must be ≥ 1"),
        (("probes", "C"), 0.0, r"features\.probes\.C: must be > 0"),
        (("probes", "max_videos"), -1, r"features\.probes\.max_videos: must be ≥ 0"),
        (("num_shards",), 0, r"features\.num_shards: must be ≥ 1"),
    ],
)
def test_numeric_knobs_are_range_checked(path, value, message):
    block = json.loads(json.dumps(dataclasses.asdict(features_config())))
    node = block
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=message):
        build(FeaturesConfig, block, "features")


def test_pretrain_knobs_are_range_checked():
    spec = {"worlds": ["tal"], "videos": 4, "heldout_videos": 2, "clips_per_video": 1, "steps": 3, "batch_size": 4,
            "lr": -0.1, "weight_decay": 0.0, "idle_fraction": 0.2, "checkpoint_every": 1}
    block = json.loads(json.dumps(dataclasses.asdict(features_config())))
    block["pretrain"] = {"backbones": ["slowfast"], "seed_offset": 1, "slowfast": spec}
    with pytest.raises(ConfigError, match=r"features\.pretrain\.slowfast\.lr: must be > 0, got -0\.1"):
        build(FeaturesConfig, block, "features")


def test_missing_video_in_a_container_names_the_container_and_the_id(tmp_path):
    prefix = tmp_path / "feats" / "train"
    write_container(prefix, [("v0", [[1.0]])], {"dataset": "toy", "backbone": "slowfast"})
    cont = FeatureContainer(prefix)
    with pytest.raises(KeyError):  # still a mapping lookup error for callers that expect one
        cont["v9"]
    with pytest.raises(MissingItemError, match=rf"{prefix}: no features for 'v9' among its 1 items \(skipped at "
                                               r"extraction\? see reports/metrics/features/toy-slowfast\.json\)"):
        cont["v9"]
    assert run_main(lambda: cont["v9"]) == 2  # a stage prints one error line instead of a traceback


def test_merge_cli_reports_the_loss(world, tmp_path, capsys):
    root, recs = world
    cfg = features_config(decode=_decode(max_skipped_share=0.1))
    extract_shard([r for r in recs if r.video_id in ("v0", "v1")], "internvideo2", cfg, RUNTIME,
                  tmp_path / "sh" / "0", tmp_path / "wk", "toy", root=root, progress=False)
    report = json.loads((tmp_path / "sh" / "0" / "report.json").read_text())
    report["skipped"].append({"video_id": "lost", "split": "train", "reason": "corrupt"})  # as a second shard would
    (tmp_path / "sh" / "0" / "report.json").write_text(json.dumps(report))
    rc = merge_mod.main(["--shards", str(tmp_path / "sh"), "--num-shards", "1", "--out", str(tmp_path / "m"),
                         "--metrics", str(tmp_path / "m.json")])
    assert rc == 2 and "split 'train' lost 1 of its 3 videos" in capsys.readouterr().err
