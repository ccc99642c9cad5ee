"""Sharded, resumable video-feature extraction and the merge stage, on tiny PyAV-written videos."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from features_helpers import make_video, truncate

from pipeline.features import extract as extract_mod
from pipeline.features.params import FeaturesConfig
from pipeline.core.params import RuntimeConfig, build
from pipeline.datasets.schema import VideoRecord, write_records
from pipeline.features.extract import ExtractionError, extract_shard, shard_records
from pipeline.core.io import InputError
from pipeline.features.merge import merge_shards
from pipeline.features.container import FeatureContainer

RUNTIME = RuntimeConfig(device="cpu", seed=0, workers=0, precision="fp32", threads=1)
TINY_IV2 = {"patch_size": 16, "embed_dim": 32, "depth": 3, "num_heads": 2, "mlp_ratio": 2.0, "clip_embed_dim": 24,
            "clip_teacher_embed_dim": 24, "clip_teacher_final_dim": 24, "clip_return_layer": 1,
            "attn_pool_num_heads": 2, "init_values": 0.1}


def features_config(**overrides) -> FeaturesConfig:
    """A complete ``features`` block with tiny backbones (the same schema as params.yaml)."""
    block = {
        "datasets": {"slowfast": ["toy"], "i3d": [], "internvideo2": ["toy"], "clip": []},
        "num_shards": 1, "shards": [0], "batch_size": 4,
        # the toy world loses 1 of 4 train and 1 of 3 val videos on purpose: allow any share (all-lost still fails)
        "decode": {"on_error": "skip", "max_missing": 1.0, "seek_gap": 4.0, "threads": 0, "max_skipped_share": 1.0},
        "slowfast": {"recipe": {"fps": 5, "frames": 8, "stride": 4, "size": 32}, "width": 8, "beta": 4, "alpha": 4},
        "i3d": {"recipe": {"fps": 5, "frames": 8, "stride": 4, "size": 32}, "width": 4},
        "internvideo2": {"recipe": {"fps": 2, "frames": 4, "stride": 4, "size": 32}, "layers": [2, 3],
                         "pooling": "adaptive", "arch": TINY_IV2},
        "clip": {"recipe": {"fps": 2, "frames": 4, "stride": 4, "size": 32}, "model": {"name": "ViT-B-16"},
                 "layers": [12]},
        "text": {"tower": "minilm", "layers": [5, 6], "max_tokens": 16, "batch_size": 8,
                 "bert": {"vocab_size": 30522, "hidden_size": 32, "num_layers": 3, "num_heads": 2,
                          "intermediate_size": 64, "max_position": 64, "type_vocab_size": 2, "fusion_layer": 2,
                          "encoder_width": 32}},
        "caption_sets": ["toy"],
    }
    for key, value in overrides.items():
        block[key] = value
    return build(FeaturesConfig, block, "features")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """5 good videos (4-7 s, two splits), one corrupt file and one too short for a 2-s clip."""
    root = tmp_path_factory.mktemp("world")
    recs = []
    for i in range(5):
        path = make_video(root / "videos" / f"vid{i}.mp4", 4.0 + i * 0.7, fps=10, size=48, seed=i,
                          colour=["red", "green", "blue", "yellow", "red"][i], motion="right" if i % 2 else "left")
        recs.append(VideoRecord(video_id=f"vid{i}", dataset="toy", split="train" if i < 3 else "val",
                                duration=4.0 + i * 0.7, video_path=str(path.relative_to(root))))
    bad = truncate(make_video(root / "videos" / "broken.mp4", 5.0, fps=10, size=48, faststart=True), keep=0.45)
    recs.append(VideoRecord(video_id="broken", dataset="toy", split="train", duration=5.0,
                            video_path=str(bad.relative_to(root))))
    make_video(root / "videos" / "short.mp4", 1.2, fps=10, size=48)
    recs.append(VideoRecord(video_id="short", dataset="toy", split="val", duration=1.2,
                            video_path="videos/short.mp4"))
    write_records(root / "toy.jsonl", recs)
    return root, recs


def _extract(world, backbone, out, cfg=None, shards=1, **kw):
    root, recs = world
    cfg = cfg or features_config()
    reports = []
    for k in range(shards):
        reports.append(extract_shard(shard_records(recs, k, shards), backbone, cfg, RUNTIME, out / "shards" / str(k),
                                     out / "work" / str(k), "toy", k, shards, root=root, progress=False, **kw))
    merge_shards(out / "shards", shards, out / "merged")
    return reports


def _bytes(prefix: Path) -> tuple[bytes, bytes]:
    return prefix.with_suffix(".npy").read_bytes(), prefix.with_suffix(".json").read_bytes()


@pytest.mark.parametrize("backbone", ["internvideo2", "slowfast"])
def test_two_shards_equal_one_shard_exactly(world, tmp_path, backbone):
    one = _extract(world, backbone, tmp_path / "one")
    _extract(world, backbone, tmp_path / "two", shards=2)
    for split in ("train", "val"):
        assert _bytes(tmp_path / "one/merged" / split) == _bytes(tmp_path / "two/merged" / split)
    assert {s["video_id"] for s in one[0]["skipped"]} == {"broken", "short"}
    assert not (tmp_path / "one/work/0").exists()  # scratch removed once the shard is complete


def test_container_layout_and_meta(world, tmp_path):
    _extract(world, "internvideo2", tmp_path)
    cont = FeatureContainer(tmp_path / "merged" / "train")
    assert sorted(cont.keys()) == ["vid0", "vid1", "vid2"]
    assert cont.array.dtype == np.float16 and cont.array.ndim == 3 and cont.array.shape[1:] == (2, 24)
    assert len(cont["vid1"]) == 3  # 4.7 s at 2-s clips: ceil((9 - 4) / 4) + 1 windows
    meta = cont.meta
    assert meta["backbone"] == "internvideo2" and meta["dim"] == 24 and meta["layers"] == [2, 3]
    assert meta["time_step"] == 2.0 and meta["window"] == 2.0 and meta["pooling"] == "adaptive"
    assert cont.layer_positions(last=1) == [1] and cont.layer_positions(layers=[2]) == [0]
    with pytest.raises(InputError, match="only 2 were extracted"):
        cont.layer_positions(last=3)  # more layers than stored
    with pytest.raises(InputError, match=r"layers \[1\] were not extracted"):
        cont.layer_positions(layers=[1])
    sf = extract_shard([r for r in world[1] if r.video_id == "vid0"], "slowfast", features_config(), RUNTIME,
                       tmp_path / "sf", tmp_path / "sfw", "toy", root=world[0], progress=False)
    sf_meta = FeatureContainer(tmp_path / "sf" / "train").meta
    assert sf["extracted"] == 1 and sf_meta["time_step"] == 0.8 and sf_meta["window"] == 1.6
    assert FeatureContainer(tmp_path / "sf" / "train").array.shape[1:] == (1, 320)


def test_features_differ_between_videos(world, tmp_path):
    _extract(world, "slowfast", tmp_path)
    cont = FeatureContainer(tmp_path / "merged" / "train")
    a, b = np.asarray(cont["vid0"], np.float32), np.asarray(cont["vid1"], np.float32)
    assert np.isfinite(a).all() and np.abs(a[0] - b[0]).mean() > 1e-3 * np.abs(a).mean()


def test_interrupted_extraction_resumes_with_identical_output(world, tmp_path):
    root, recs = world
    cfg = features_config()
    full = _extract(world, "internvideo2", tmp_path / "full")
    records = shard_records(recs, 0, 1)
    out, work = tmp_path / "cut" / "shards" / "0", tmp_path / "cut" / "work" / "0"
    with pytest.raises(KeyboardInterrupt):
        extract_shard(records, "internvideo2", cfg, RUNTIME, out, work, "toy", root=root, progress=False,
                      stop_after=2)
    assert not out.exists()  # never a half container
    calls = []
    real = extract_mod.ClipStream

    class Spy(real):
        def __init__(self, jobs, *a, **k):
            calls.append([Path(j.path).stem for j in jobs])
            super().__init__(jobs, *a, **k)

    extract_mod.ClipStream = Spy
    try:
        rep = extract_shard(records, "internvideo2", cfg, RUNTIME, out, work, "toy", root=root, progress=False)
    finally:
        extract_mod.ClipStream = real
    assert rep["resumed"] >= 2 + 2  # the two finished videos and the two already-reported bad ones
    assert len(calls[0]) == 5 - 2  # only the unfinished videos are decoded again
    merge_shards(tmp_path / "cut" / "shards", 1, tmp_path / "cut" / "merged")
    for split in ("train", "val"):
        assert _bytes(tmp_path / "cut/merged" / split) == _bytes(tmp_path / "full/merged" / split)
    assert full[0]["extracted"] == rep["extracted"] == 5


def test_changed_settings_do_not_reuse_work(world, tmp_path):
    root, recs = world
    records = shard_records(recs, 0, 1)
    out, work = tmp_path / "o", tmp_path / "w"
    with pytest.raises(KeyboardInterrupt):
        extract_shard(records, "internvideo2", features_config(), RUNTIME, out, work, "toy", root=root,
                      progress=False, stop_after=1)
    other = features_config(batch_size=2)
    rep = extract_shard(records, "internvideo2", dataclasses.replace(other), RUNTIME, out, work, "toy", root=root,
                        progress=False)
    assert rep["resumed"] == 0


def test_corrupt_video_policy(world, tmp_path):
    root, recs = world
    rep = _extract(world, "internvideo2", tmp_path / "skip")[0]
    reasons = {s["video_id"]: s["reason"] for s in rep["skipped"]}
    assert set(reasons) == {"broken", "short"}
    assert "shorter than one window" in reasons["short"]
    assert any(w in reasons["broken"] for w in ("corrupt", "truncated", "no decodable", "unreadable"))
    metrics_src = json.loads((tmp_path / "skip/shards/0/report.json").read_text())
    assert {s["video_id"] for s in metrics_src["skipped"]} == {"broken", "short"}
    failing = features_config(decode={"on_error": "fail", "max_missing": 1.0, "seek_gap": 4.0, "threads": 0})
    good = [r for r in recs if r.video_id in ("vid0", "broken")]
    with pytest.raises(ExtractionError, match="broken"):
        extract_shard(good, "internvideo2", failing, RUNTIME, tmp_path / "f", tmp_path / "fw", "toy", root=root,
                      progress=False)
    assert not (tmp_path / "f").exists()


def test_decoding_in_a_worker_process_gives_the_same_features(world, tmp_path):
    root, recs = world
    records = [r for r in shard_records(recs, 0, 1) if r.video_id in ("vid0", "vid3")]
    a = extract_shard(records, "internvideo2", features_config(), RUNTIME, tmp_path / "a", tmp_path / "aw",
                      "toy", root=root, progress=False)
    b = extract_shard(records, "internvideo2", features_config(), dataclasses.replace(RUNTIME, workers=1),
                      tmp_path / "b", tmp_path / "bw", "toy", root=root, progress=False)
    assert a["extracted"] == b["extracted"] == 2
    for split in ("train", "val"):
        assert _bytes(tmp_path / "a" / split) == _bytes(tmp_path / "b" / split)


def test_merge_rejects_stale_or_missing_shards(world, tmp_path):
    _extract(world, "internvideo2", tmp_path, shards=2)
    with pytest.raises(InputError, match="made as shard 0/2"):
        merge_shards(tmp_path / "shards", 1, tmp_path / "m1")
    import shutil

    shutil.rmtree(tmp_path / "shards" / "1")
    with pytest.raises(InputError, match="shard 1/2 has not been extracted"):
        merge_shards(tmp_path / "shards", 2, tmp_path / "m2")


def test_cli_stages(world, tmp_path, monkeypatch):
    """``python -m pipeline.features.extract`` / ``merge_features`` on a params file, as DVC runs them."""
    import yaml

    from pipeline.features import merge as merge_features

    root, _ = world
    cfg = dataclasses.asdict(features_config(num_shards=2, shards=[0, 1]))
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"features": cfg, "runtime": dataclasses.asdict(RUNTIME)}))
    monkeypatch.chdir(root)
    for k in (0, 1):
        assert extract_mod.main(["--backbone", "internvideo2", "--dataset", "toy", "--canonical", "toy.jsonl",
                                 "--shard", str(k), "--num-shards", "2", "--out", str(tmp_path / "sh" / str(k)),
                                 "--work", str(tmp_path / "wk" / str(k)), "--params", str(params)]) == 0
    assert merge_features.main(["--shards", str(tmp_path / "sh"), "--num-shards", "2", "--out",
                                str(tmp_path / "out"), "--metrics", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["skipped_count"] == 2 and metrics["splits"]["train"]["videos"] == 3
    assert metrics["splits"]["val"]["shape"][1:] == [2, 24] and metrics["layers"] == [2, 3]
    assert extract_mod.main(["--backbone", "internvideo2", "--dataset", "toy", "--canonical", "toy.jsonl",
                             "--num-shards", "3", "--out", str(tmp_path / "x"), "--work", str(tmp_path / "xw"),
                             "--params", str(params)]) == 2
