"""Search-VMR evaluation protocol and the train → predict → evaluate stages on a tiny feature world."""
from __future__ import annotations

import dataclasses
import json

import pytest

from models.search_detr_config import SearchDETRConfig
from pipeline.search_vmr.params import SearchVMRBenchmark, SearchVMRConfig, SearchVMRData, SearchVMRInference, SearchVMRVariant
from pipeline.core.params import TrainConfig, load_block
from pipeline.core.params import RuntimeConfig
from pipeline.core.io import InputError
from pipeline.search_vmr.evaluate import GTQuery, level_protocol
from _search_world import DATASET, build_world  # noqa: E402  (tests/ is on sys.path under pytest)

# ----------------------------------------------------------------------------- protocol


def _q(qid, *mids):
    return GTQuery(qid, "v", [(float(i), float(i) + 1) for i in range(len(mids))], list(mids))


SEARCH = {"s1": _q("s1", "m1"), "s2": _q("s2", "m2", "m3")}
CAPTION = {"m1": _q("m1", "m1"), "m2": _q("m2", "m2"), "m3": _q("m3", "m3")}
SPLITS = {"search": {"single": ["s1"], "multi": ["s2"]}, "caption": {"single": ["m1"], "multi": ["m2", "m3"]}}


def test_protocol_keeps_caption_and_search_aligned():
    proto = level_protocol(SEARCH, CAPTION, SPLITS, "splits.json")
    for part in ("single", "multi"):
        cap = sorted(m for q in proto["caption"][part] for m in q.moment_ids)
        srch = sorted(m for q in proto["search"][part] for m in q.moment_ids)
        assert cap == srch
    assert [q.qid for q in proto["caption"]["multi"]] == ["m2", "m3"]


@pytest.mark.parametrize("splits, message", [
    # a caption moment of a multi-moment search query put in the caption "single" part
    ({"search": {"single": ["s1"], "multi": ["s2"]}, "caption": {"single": ["m1", "m3"], "multi": ["m2"]}},
     "differ on moment"),
    # a multi-moment search query in "single"
    ({"search": {"single": ["s1", "s2"], "multi": []}, "caption": {"single": ["m1", "m2", "m3"], "multi": []}},
     "has 2 moment"),
    # a query in both parts / in no part
    ({"search": {"single": ["s1"], "multi": ["s2", "s1"]}, "caption": {"single": ["m1"], "multi": ["m2", "m3"]}},
     "both single and multi"),
    ({"search": {"single": ["s1"], "multi": ["s2"]}, "caption": {"single": ["m1"], "multi": ["m2"]}},
     "in no part"),
])
def test_protocol_rejects_misaligned_partitions(splits, message):
    with pytest.raises(InputError, match=message):
        level_protocol(SEARCH, CAPTION, splits, "splits.json")


def test_protocol_rejects_a_moment_twice():
    caption = dict(CAPTION, m4=_q("m4", "m1"))
    splits = {"search": SPLITS["search"], "caption": {"single": ["m1", "m4"], "multi": ["m2", "m3"]}}
    with pytest.raises(InputError, match="appears twice"):
        level_protocol(SEARCH, caption, splits, "splits.json")


# ----------------------------------------------------------------------------- stages end to end


def tiny_config() -> SearchVMRConfig:
    base = load_block(SearchVMRConfig)
    model = dataclasses.replace(base.model, hidden_dim=16, num_heads=2, enc_layers=1, dec_layers=1, ffn_dim=32,
                                num_queries=4)
    return dataclasses.replace(
        base,
        benchmarks=[DATASET],
        variants=["base", "no_sa_qd", "oracle"],
        seeds=[0, 1],
        benchmark_specs={DATASET: SearchVMRBenchmark(backbone="toy", levels=["S1"], train_split="train",
                                                     eval_split="test", iou_thresholds=[0.1, 0.3, 0.5])},
        variant_specs={"base": SearchVMRVariant(label="base"),
                       "no_sa_qd": SearchVMRVariant(label="-SA+QD", self_attention=False, qd_rate=0.25),
                       "oracle": SearchVMRVariant(label="base (oracle)", train_queries="search")},
        model=model,
        train=TrainConfig(epochs=2, batch_size=16, lr=1e-3),
        inference=SearchVMRInference(batch_size=16, nms_threshold=0.7, max_windows=10),
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("search_world")
    build_world(root, n_train=10, n_test=6)
    return root


def test_train_predict_evaluate_end_to_end(world):
    from pipeline.search_vmr import evaluate as search_evaluate
    from pipeline.search_vmr import predict as search_predict
    from pipeline.search_vmr import train as search_train

    cfg = tiny_config()
    runtime = dataclasses.replace(load_block(RuntimeConfig), threads=1)
    paths = search_train.SearchPaths(world / "data/canonical", world / "data/features", world / "data/benchmarks")
    for variant in ("no_sa_qd", "oracle"):
        out = world / "data/search_vmr" / DATASET / variant
        search_train.run(cfg, runtime, DATASET, variant, paths, out, progress=False)
    oracle_out = world / "data/search_vmr" / DATASET / "oracle"
    search_predict.run(cfg, runtime, DATASET, "oracle", paths, oracle_out / "model", oracle_out / "predictions")
    caption_out = world / "data/search_vmr" / DATASET / "no_sa_qd"
    assert all((caption_out / f"model/seed_{s}/model.pt").exists() for s in (0, 1))
    assert (caption_out / "curves/seed_1").is_dir()
    assert (world / f"data/search_vmr/{DATASET}/oracle/model/seed_1/S1/model.pt").exists()

    # the stage CLI predicts and then scores; it reads its blocks from a params file: write the tiny config there
    import yaml

    params = world / "params.yaml"
    yaml.safe_dump({"search_vmr": dataclasses.asdict(cfg), "runtime": dataclasses.asdict(runtime)}, params.open("w"))
    metrics_path = world / "reports/metrics.json"
    plots_path = world / "reports/plots.json"
    assert search_evaluate.main(["--benchmark", DATASET, "--variant", "no_sa_qd", "--params", str(params),
                                 "--models", str(caption_out / "model"),
                                 "--predictions", str(caption_out / "predictions"),
                                 "--canonical-dir", str(world / "data/canonical"),
                                 "--features-dir", str(world / "data/features"),
                                 "--benchmarks-dir", str(world / "data/benchmarks"),
                                 "--out", str(metrics_path), "--plots", str(plots_path)]) == 0
    preds = [json.loads(line) for line in (caption_out / "predictions/seed_0/S1.jsonl").read_text().splitlines()]
    assert all(len(p["pred_query_windows"]) == 4 and len(p["pred_relevant_windows"]) <= 4 for p in preds)
    m = json.loads(metrics_path.read_text())
    assert m["config"]["label"] == "-SA+QD" and m["config"]["self_attention"] == 0
    # seeds: the top level is the mean over seeds, with *_std beside every block and the seeds' own files
    assert m["seeds"] == [0, 1] and set(m["per_seed"]) == {"0", "1"}
    multi = m["S1"]["search"]["multi"]
    per = [m["per_seed"][s]["S1"]["search"]["multi"]["R_m"]["0.3"] for s in ("0", "1")]
    assert abs(multi["R_m"]["0.3"] - sum(per) / 2) < 1e-6
    assert abs(multi["R_m_std"]["0.3"] - abs(per[0] - per[1]) / 2) < 1e-6
    assert "active_mean" in multi["active_std"] and "0.3" in multi["mAP_m_std"]
    assert set(m["original"]["R_m"]) == {"0.1", "0.3", "0.5"}
    for part in ("single", "multi"):  # the two query sets cover the same moments part by part
        assert m["S1"]["caption"][part]["num_moments"] == m["S1"]["search"][part]["num_moments"] > 0
    assert m["S1"]["search"]["multi"]["active"]["active_mean"] <= 4
    rows = json.loads(plots_path.read_text())
    assert {r["moments"] for r in rows} >= {1, 2} and sum(r["queries"] for r in rows) == m["S1"]["search"]["all"][
        "num_queries"]

    oracle, _ = search_evaluate.evaluate(cfg, DATASET, "oracle", world / "data/canonical", world / "data/benchmarks",
                                         world / f"data/search_vmr/{DATASET}/oracle/predictions")
    assert "original" not in oracle and "caption" not in oracle["S1"] and oracle["config"]["oracle"] == 1
