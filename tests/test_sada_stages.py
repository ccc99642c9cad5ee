"""SADA stages end to end on the toy two-domain world: train → predict → evaluate → report section, plus the
config/CLI error paths and a tiny overfit run that must localise the source domain's actions."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from sada_helpers import toy_run, toy_scenario, write_toy_world

from pipeline.core.params import ConfigError, RuntimeConfig, load_block
from pipeline.sada.params import SadaConfig
from pipeline.datasets.params import DatasetsConfig
from pipeline.datasets.params import DatasetScenario
from pipeline.metrics.tal import load_anet_ground_truth, tal_map
from pipeline.sada.data import (
    SOURCE,
    PairCollate,
    PairedDomainDataset,
    check_config,
    load_videos,
    open_features,
    random_crop,
    resolve_scenario,
)

RUNTIME = RuntimeConfig(device="cpu", seed=0, workers=0, precision="fp32", threads=1)
SELECTORS = DatasetScenario(dataset="toy_tal", source={"domain": ["src"]}, target={"domain": ["tgt"]})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("sada_world")
    info = write_toy_world(root)
    return root, info


def test_scenario_resolution_and_paired_batches(world):
    root, info = world
    sc = resolve_scenario("toy", SELECTORS, toy_scenario(), root / "data/canonical/toy_tal.jsonl")
    assert set(sc.class_names) == set(info["class_names"])
    assert {r.domain for r in sc.source_train} == {"src"} and {r.domain for r in sc.target_eval} == {"tgt"}
    assert len(sc.source_train) == 6 and len(sc.target_eval) == 3
    container, recipe = open_features(root / "data/features/toy_tal/slowfast/train")
    videos, skipped = load_videos(sc.source_train, container, recipe, sc.class_names, -1, SOURCE)
    assert skipped == 0 and videos[0].feats.shape == (64, 16)
    rec = sc.source_train[0]
    assert videos[0].segments[0, 0] == pytest.approx((rec.moments[0].start - 0.5) / 0.5)
    pairs = PairedDomainDataset(videos[:4], videos[:2], 64, (1.0, 1.0), 0.3)
    assert len(pairs) == 4 and pairs[3][1].video_id == videos[1].video_id  # the smaller domain repeats
    batch = PairCollate(32, recipe)([pairs[0], pairs[1]])
    assert batch["feats"].shape == (4, 16, 64) and batch["video_ids"][2] == videos[0].video_id


def test_random_crop_keeps_only_mostly_inside_segments(world):
    root, _ = world
    sc = resolve_scenario("toy", SELECTORS, toy_scenario(), root / "data/canonical/toy_tal.jsonl")
    container, recipe = open_features(root / "data/features/toy_tal/slowfast/train")
    video = load_videos(sc.source_train[:1], container, recipe, sc.class_names, -1, SOURCE)[0][0]
    torch.manual_seed(0)
    for _ in range(20):
        crop = random_crop(video, 40, (0.9, 1.0), 0.3)
        assert crop.feats.shape[0] == 40
        assert np.all(crop.segments >= 0) and np.all(crop.segments <= 40)


def test_unknown_domain_value_is_a_clear_error(world):
    root, _ = world
    bad = DatasetScenario(dataset="toy_tal", source={"domain": ["nope"]}, target={"domain": ["tgt"]})
    with pytest.raises(Exception, match="selects no 'train' video for source_train"):
        resolve_scenario("toy", bad, toy_scenario(), root / "data/canonical/toy_tal.jsonl")


def test_shipped_params_pass_the_cross_checks():
    cfg = load_block(SadaConfig)
    datasets = load_block(DatasetsConfig)
    check_config(cfg, datasets.scenarios)
    bad = dict(datasets.scenarios)
    bad[cfg.scenarios[0]] = DatasetScenario(dataset="elsewhere", source={}, target={})
    with pytest.raises(ConfigError, match="sada.dataset"):
        check_config(cfg, bad)


@pytest.mark.slow
def test_stages_end_to_end_and_report(world, tmp_path):
    from sada_helpers import inference_config

    from pipeline.sada import evaluate as sada_evaluate
    from pipeline.sada import predict as sada_predict
    from pipeline.sada import train as sada_train
    from pipeline.report.sections import sada as sada_report

    root, _ = world
    run = toy_run(seeds=(0, 1), epochs=2)
    sc = resolve_scenario("toy", SELECTORS, run["scenario"], root / "data/canonical/toy_tal.jsonl")
    train_dir, predict_dir = tmp_path / "train", tmp_path / "predict"
    summary = sada_train.train_run(sc, run["variant"], run, root / "data/features/toy_tal/slowfast", train_dir,
                                   RUNTIME, progress=False)
    assert set(summary["seeds"]) == {"0", "1"} and (train_dir / "seed_1" / "model.pt").exists()
    counts = sada_predict.predict_run(SELECTORS, run["scenario"], root / "data/canonical/toy_tal.jsonl",
                                      root / "data/features/toy_tal/slowfast", train_dir, predict_dir, -1,
                                      inference_config(), 0, 20)
    assert counts == {"target_videos": 3, "source_videos": 3}
    rows = [json.loads(line) for line in (predict_dir / "target_seed0.jsonl").read_text().splitlines()]
    assert rows and set(rows[0]) == {"video-id", "t-start", "t-end", "label", "score"}
    anchors = np.load(predict_dir / "anchors.npz")
    assert anchors["emb"].shape[1] == 32 and set(np.unique(anchors["domain"])) == {0, 1}
    reports = tmp_path / "reports"
    for variant in ("sada", "source_only"):
        metrics = sada_evaluate.evaluate_run(predict_dir, train_dir, variant, ["sada"], 2,
                                             reports / "metrics/sada/toy" / f"{variant}.json",
                                             reports / "plots/sada/toy" / variant)
    assert 0 <= metrics["target"]["avg"] <= 100 and set(metrics["target"]["per_seed_avg"]) == {"0", "1"}
    assert (reports / "plots/sada/toy/sada/tsne.json").exists()
    assert json.loads((reports / "plots/sada/toy/source_only/tsne.json").read_text())["panels"] == []
    curves = json.loads((reports / "plots/sada/toy/sada/curves.json").read_text())
    assert {(r["seed"], r["epoch"]) for r in curves} == {(0, 1), (0, 2), (1, 1), (1, 2)} and "loss" in curves[0]
    text = sada_report.render(reports)
    assert "toy" in text and "local+bkg" in text and "mAP@0.1" in text
    assert (reports / "figures/sada/tsne_toy.png").exists()


@pytest.mark.slow
def test_tiny_overfit_on_source_domain(world, tmp_path):
    """Trained briefly on 6 source videos, the detector localises their actions (mAP far above chance)."""
    from sada_helpers import inference_config

    from pipeline.sada.predict import ground_truth, predict_videos
    from pipeline.sada.train import train_run
    from pipeline.core.checkpoints import load_model

    root, _ = world
    run = toy_run(seeds=(0,), epochs=16, align=())
    sc = resolve_scenario("toy", SELECTORS, run["scenario"], root / "data/canonical/toy_tal.jsonl")
    train_run(sc, run["variant"], run, root / "data/features/toy_tal/slowfast", tmp_path, RUNTIME, progress=False)
    model, _ = load_model(tmp_path / "seed_0" / "model.pt")
    container, recipe = open_features(root / "data/features/toy_tal/slowfast/train")
    videos, _ = load_videos(sc.source_train, container, recipe, sc.class_names, -1, SOURCE)
    rows = predict_videos(model, videos, recipe, inference_config())
    gt = load_anet_ground_truth(ground_truth(sc.source_train, sc.class_names), label_field="label")
    result = tal_map(gt, rows)
    assert result["mAP"]["0.5"] > 0.6, result["mAP"]


def test_cli_reports_params_errors(tmp_path, capsys):
    from pipeline.sada import train as sada_train

    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text(encoding="utf-8"))
    params["sada"]["scenario_specs"].pop(params["sada"]["scenarios"][0])
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    rc = sada_train.main(["--scenario", params["sada"]["scenarios"][0], "--variant", "sada", "--canonical", "x",
                          "--features", "y", "--out", str(tmp_path / "o"), "--params", str(path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1 and "sada.scenario_specs" in err


def test_knn_mixing_is_one_for_shuffled_domains_and_zero_for_separated_ones():
    from pipeline.sada.evaluate import knn_cross_domain

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(400, 4))
    mixed = knn_cross_domain(emb, rng.integers(0, 2, 400))
    separated = knn_cross_domain(np.concatenate([emb[:200], emb[200:] + 100.0]), np.repeat([0, 1], 200))
    unbalanced = knn_cross_domain(emb[:110], np.r_[np.zeros(10, int), np.ones(100, int)])
    assert mixed == pytest.approx(1.0, abs=0.1) and separated == 0.0 and unbalanced == pytest.approx(1.0, abs=0.3)
