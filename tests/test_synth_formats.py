"""Synthetic world files: EPIC-KITCHENS CSVs, ActivityNet-Captions JSON, QVHighlights JSONL, oracle, manifest."""
from __future__ import annotations

import ast
import csv
import json
import re

import pytest

from pipeline.synth import generate as synth
from pipeline.synth import captions, vocab, writers

from _synth_tiny import tiny_config

QVH_KEYS = {"qid", "query", "duration", "vid", "relevant_clip_ids", "saliency_scores", "relevant_windows"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("w") / "raw"
    manifest = synth.synthesize(tiny_config(), 11, root, workers=1)
    return root, manifest


def _csv(path):
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return reader.fieldnames, list(reader)


def _seconds(ts: str) -> float:
    h, m, s = ts.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def test_epic_files(world):
    root, _ = world
    tal = root / "synth_tal"
    _, verbs = _csv(tal / "EPIC_100_verb_classes.csv")
    _, nouns = _csv(tal / "EPIC_100_noun_classes.csv")
    assert [v["key"] for v in verbs] == [v.key for v in vocab.VERBS]
    assert all(isinstance(ast.literal_eval(v["instances"]), list) for v in verbs + nouns)
    _, info = _csv(tal / "EPIC_100_video_info.csv")
    fps = {r["video_id"]: float(r["fps"]) for r in info}
    duration = {r["video_id"]: float(r["duration"]) for r in info}
    assert set(fps.values()) == {30.0} and {r["resolution"] for r in info} == {"48x48"}
    header, parts = _csv(tal / "participants.csv")
    assert header == ["participant_id", "counter_colour", "viewpoint"]
    assert {p["counter_colour"] for p in parts} == {"dark", "white"}
    _, domains = _csv(tal / "video_domains.csv")
    for d in domains:  # EPIC rule: 2-digit suffix = EK55 ("old"), 3-digit = EK100 extension ("new")
        assert d["acquisition"] == ("old" if len(d["video_id"].split("_")[1]) == 2 else "new")
    seen_videos = set()
    for split in ("train", "validation"):
        header, rows = _csv(tal / f"EPIC_100_{split}.csv")
        assert tuple(header) == writers.EPIC_COLUMNS
        assert rows
        for i, r in enumerate(rows):
            vid = r["video_id"]
            seen_videos.add(vid)
            assert r["participant_id"] == vid.split("_")[0] and r["narration_id"].startswith(vid + "_")
            assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d\d", r["start_timestamp"]), (split, i)
            assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", r["narration_timestamp"]), (split, i)
            start, stop = _seconds(r["start_timestamp"]), _seconds(r["stop_timestamp"])
            assert 0 < start < stop <= duration[vid]
            assert int(r["start_frame"]) == round(start * fps[vid]) and int(r["stop_frame"]) == round(stop * fps[vid])
            assert verbs[int(r["verb_class"])]["key"] == r["verb"]
            assert nouns[int(r["noun_class"])]["key"] == r["noun"]
            assert ast.literal_eval(r["all_nouns"]) == [r["noun"]]
            assert ast.literal_eval(r["all_noun_classes"]) == [int(r["noun_class"])]
    assert seen_videos <= set(fps)
    assert all((tal / "videos" / f"{v}.mp4").exists() for v in fps)


def test_activitynet_captions_files(world):
    root, _ = world
    for name in ("train.json", "val_1.json"):
        data = json.loads((root / "synth_captions" / name).read_text())
        assert data
        for vid, item in data.items():
            assert vid.startswith("v_") and set(item) == {"duration", "timestamps", "sentences"}
            assert len(item["timestamps"]) == len(item["sentences"]) > 0
            assert all(0 <= s < e <= item["duration"] for s, e in item["timestamps"])
            assert len(set(item["sentences"])) == len(item["sentences"]), "captions unique within a video"
            assert (root / "synth_captions/videos" / f"{vid}.mp4").exists()


def test_qvhighlights_files(world):
    root, manifest = world
    qids = []
    for name in ("highlight_train_release.jsonl", "highlight_val_release.jsonl"):
        rows = [json.loads(line) for line in (root / "synth_qvh" / name).read_text().splitlines()]
        assert rows
        for row in rows:
            assert set(row) == QVH_KEYS
            qids.append(row["qid"])
            assert isinstance(row["duration"], int) and re.fullmatch(r"qvs\d{8}_0\.0_\d+\.0", row["vid"])
            windows = row["relevant_windows"]
            assert all(0 <= s < e <= row["duration"] and s % 2 == 0 and e % 2 == 0 for s, e in windows)
            assert all(a[1] < b[0] for a, b in zip(windows, windows[1:])), "windows sorted and disjoint"
            clips = [c for s, e in windows for c in range(s // 2, e // 2)]
            assert row["relevant_clip_ids"] == clips
            assert len(row["saliency_scores"]) == len(clips)
            assert all(len(s) == 3 and all(0 <= v <= 4 for v in s) for s in row["saliency_scores"])
            assert (root / "synth_qvh/videos" / f"{row['vid']}.mp4").exists()
    assert len(qids) == len(set(qids)) == manifest["counts"]["qvh"]["queries"]


def test_oracle_matches_captions_and_levels_get_less_specific(world):
    root, _ = world
    anc = {**json.loads((root / "synth_captions/train.json").read_text()),
           **json.loads((root / "synth_captions/val_1.json").read_text())}
    under = json.loads((root / "synth_oracle/underspecification.json").read_text())
    groups = json.loads((root / "synth_oracle/groups.json").read_text())
    assert set(under) == set(anc) and set(groups) == {"S1", "S2", "S3"}
    for vid, items in under.items():
        assert [it["index"] for it in items] == list(range(len(anc[vid]["sentences"])))
        for it in items:
            assert it["caption"] == anc[vid]["sentences"][it["index"]]
            texts = [it["caption"], it["S1"], it["S2"], it["S3"]]
            words = [set(t.lower().rstrip(".").split()) for t in texts]
            assert words[2] < words[1] < words[0], texts  # S2 ⊂ S1 ⊂ caption, strictly
            assert len(words[3]) < len(words[2]) and texts[3].startswith("Something"), texts
        # groups partition the moments and every level's groups are unions of the previous level's
        previous = [[i] for i in range(len(items))]
        for level in ("S1", "S2", "S3"):
            level_groups = groups[level][vid]
            assert sorted(i for g in level_groups for i in g) == list(range(len(items)))
            assert all(len({items[i][level] for i in g}) == 1 for g in level_groups)
            owner = {i: gi for gi, g in enumerate(level_groups) for i in g}
            assert all(len({owner[i] for i in g}) == 1 for g in previous)
            assert len(level_groups) <= len(previous)
            previous = level_groups


def test_level_attributes_are_strictly_nested():
    chain = [captions.LEVEL_ATTRIBUTES[k] for k in ("full", "S1", "S2", "S3")]
    assert all(b < a for a, b in zip(chain, chain[1:]))


def test_manifest_counts_match_the_files(world):
    root, manifest = world
    saved = json.loads((root / "synth_manifest.json").read_text())
    assert saved == json.loads(json.dumps(manifest))
    counts = saved["counts"]
    _, train = _csv(root / "synth_tal/EPIC_100_train.csv")
    _, val = _csv(root / "synth_tal/EPIC_100_validation.csv")
    assert counts["tal"]["events"] == len(train) + len(val)
    assert counts["tal"]["videos"] == len(list((root / "synth_tal/videos").glob("*.mp4")))
    anc = json.loads((root / "synth_captions/train.json").read_text())
    assert counts["captions"]["videos_train"] == len(anc)
    metrics = synth.summary_metrics(saved)
    assert metrics["tal_videos"] == counts["tal"]["videos"] and "qvh_queries" in metrics


def test_caption_grammar():
    from pipeline.synth.events import Actor, Event

    actor = Actor("triangle", "orange", "small", (2, 0), True, 0.0)
    ev = Event(0, "jump", 0, 10, "high", "small", "orange", (2, 0), (2, 2), "orange")
    assert captions.describe(ev, actor) == ("A small orange triangle jumps high from the left to the right "
                                            "near the bottom.")
    assert captions.underspecify(ev, actor) == {"S1": "A small orange triangle jumps high.",
                                                "S2": "An orange triangle jumps.", "S3": "Something jumps."}
    assert captions.narration(ev, actor) == "jump orange triangle"


def test_timestamp_formatting_is_exact():
    assert writers.hms(3723.45, 2) == "01:02:03.45"
    assert writers.hms(59.999, 2) == "00:01:00.00"
    assert writers.hms(1.5, 3) == "00:00:01.500"
