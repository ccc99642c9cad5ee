"""``profiles/real.yaml``: the thesis settings merge over params.yaml, every block validates, the blocks name
datasets and scenarios that exist, and the models build at real dims from the merged params."""
from __future__ import annotations

import pytest

from conftest import REPO_ROOT
from pipeline.core.params import load_block
from pipeline.profiles import BLOCKS, apply_profile


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    out = tmp_path_factory.mktemp("real") / "params.yaml"
    apply_profile(REPO_ROOT / "params.yaml", REPO_ROOT / "profiles/real.yaml", out)
    return {name: load_block(schema, out) for name, schema in BLOCKS.items()}


def test_no_synthetic_dataset_is_left_and_every_named_dataset_exists(real):
    sources = set(real["datasets"].sources)
    assert not any(name.startswith("synth_") for name in sources), sources
    named = {
        "features.datasets": {d for ds in real["features"].datasets.values() for d in ds},
        "features.caption_sets": set(real["features"].caption_sets),
        "sada.dataset": {real["sada"].dataset},
        "sdst.datasets": set(real["sdst"].datasets),
        "search_vmr.benchmarks": set(real["search_vmr"].benchmarks),
        "querygen.datasets": set(real["querygen"].datasets),
    }
    for key, names in named.items():
        assert names <= sources, f"{key} names {sorted(names - sources)}, not in datasets.sources"
    scenarios = real["datasets"].scenarios
    assert set(real["sada"].scenarios) <= set(scenarios) and set(real["sada"].scenarios) <= set(real["sada"].scenario_specs)
    assert all(scenarios[s].dataset == real["sada"].dataset for s in real["sada"].scenarios)
    assert set(real["claims"].sada.scenarios) <= set(real["sada"].scenarios)
    assert real["claims"].search_vmr.benchmark in real["search_vmr"].benchmarks
    for bench in real["search_vmr"].benchmarks:  # querygen builds every level a benchmark is scored on
        assert bench in real["querygen"].datasets and bench in real["querygen"].sources
        assert set(real["search_vmr"].benchmark_specs[bench].levels) <= set(real["querygen"].levels)
    assert set(real["claims"].sdst.datasets) <= set(real["sdst"].datasets)


def test_sdst_builds_at_real_dims_for_every_thesis_dataset(real):
    """InternVideo2-1B video features (768-d after the clip_projector) and BERT-large text (1024-d), K = 4 of the
    stored layers 36–40: the thesis-default network, 4,149,764 trainable parameters at M = 30."""
    from models.sdst import SDST, count_parameters
    from models.sdst_config import SDSTConfig
    from pipeline.sdst.train import variant_model_config

    params = real["sdst"]
    stored = real["features"].internvideo2.layers
    counts = {}
    for dataset in params.datasets:
        spec = params.dataset_specs[dataset]
        layers = list(stored[-params.K:])
        cfg = SDSTConfig(video_dim=768, text_dim=1024, num_queries=spec.num_queries, video_layers=layers,
                         text_layers=list(real["features"].text.layers[-params.K:]),
                         model=variant_model_config(params, "sdst", dataset))
        counts[dataset] = count_parameters(SDST(cfg))
    assert counts["qvhighlights"] == counts["charades_sta"] == 4_149_764
    assert counts["tacos"] < counts["qvhighlights"]  # 5 queries instead of 30
