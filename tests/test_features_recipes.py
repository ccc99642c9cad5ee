"""Per-dataset clip recipes: ``features.<backbone>.recipe_by_dataset`` merged over the backbone's recipe."""
from __future__ import annotations

import pytest
import yaml
from conftest import REPO_ROOT
from features_helpers import make_video
from test_features_extract import RUNTIME, TINY_IV2, features_config

from pipeline.core.params import ConfigError, load_block
from pipeline.datasets.schema import VideoRecord
from pipeline.features.container import FeatureContainer
from pipeline.features.extract import extract_shard, fingerprint
from pipeline.features.params import FeaturesConfig
from pipeline.profiles import apply_profile
from pipeline.sdst.params import SDSTParams

DATASETS = {"slowfast": ["toy"], "i3d": [], "internvideo2": ["toy", "other"], "clip": []}
BLOCKS = {"slowfast": {"recipe": {"fps": 5, "frames": 8, "stride": 4, "size": 32}, "width": 8, "beta": 4, "alpha": 4},
          "internvideo2": {"recipe": {"fps": 2, "frames": 4, "stride": 4, "size": 32}, "layers": [2, 3],
                           "pooling": "adaptive", "arch": TINY_IV2}}


def _with_override(table: dict, backbone: str = "internvideo2") -> FeaturesConfig:
    """The tiny test ``features`` block with ``table`` as ``features.<backbone>.recipe_by_dataset``."""
    return features_config(datasets=DATASETS, **{backbone: {**BLOCKS[backbone], "recipe_by_dataset": table}})


def test_override_merges_over_backbone_recipe():
    cfg = _with_override({"toy": {"fps": 4}})
    base = cfg.internvideo2.recipe
    toy = cfg.recipe("internvideo2", "toy")
    assert (toy.fps, toy.frames, toy.stride, toy.size, toy.resize) == (4, base.frames, base.stride, base.size,
                                                                        base.resize)
    assert cfg.recipe("internvideo2", "other") == base  # no entry: the backbone's recipe
    resolved = cfg.for_dataset("internvideo2", "toy")
    assert resolved.internvideo2.recipe == toy and resolved.internvideo2.recipe_by_dataset == {}
    assert resolved.slowfast == cfg.slowfast  # other backbones untouched


def test_unknown_dataset_key_is_a_config_error():
    with pytest.raises(ConfigError, match=r"features\.internvideo2\.recipe_by_dataset\.qvhighlight: unknown dataset"):
        _with_override({"qvhighlight": {"fps": 0.5}})
    with pytest.raises(ConfigError, match=r"features\.slowfast\.recipe_by_dataset\.other"):
        _with_override({"other": {"fps": 5}}, backbone="slowfast")  # extracted by internvideo2 only


def test_override_keys_and_values_are_checked():
    with pytest.raises(ConfigError, match=r"recipe_by_dataset\.toy.*size"):
        _with_override({"toy": {"size": 64}})  # the input format is the checkpoint's: not per dataset
    with pytest.raises(ConfigError, match=r"recipe_by_dataset\.toy\.fps"):
        _with_override({"toy": {"fps": 0}})


def test_fingerprint_of_one_dataset_ignores_other_datasets_overrides():
    plain, other = _with_override({}), _with_override({"other": {"fps": 1, "stride": 1}})
    fp = [fingerprint("internvideo2", c.for_dataset("internvideo2", "toy"), RUNTIME) for c in (plain, other)]
    assert fp[0] == fp[1]
    assert fingerprint("internvideo2", other.for_dataset("internvideo2", "other"), RUNTIME) != fp[0]


def test_extraction_uses_the_dataset_recipe(tmp_path):
    """4.7 s video: 2-s clips every 2 s (the backbone's recipe) → 3 rows; the override's 1-s clips → 5 rows."""
    make_video(tmp_path / "v.mp4", 4.7, fps=10, size=48)
    cfg = _with_override({"toy": {"fps": 4}})
    rows = {}
    for dataset in ("toy", "other"):
        rec = VideoRecord(video_id="v", dataset=dataset, split="train", duration=4.7, video_path="v.mp4")
        extract_shard([rec], "internvideo2", cfg, RUNTIME, tmp_path / dataset, tmp_path / f"w_{dataset}", dataset,
                      root=tmp_path, progress=False)
        cont = FeatureContainer(tmp_path / dataset / "train")
        rows[dataset] = (len(cont["v"]), cont.meta["time_step"], cont.meta["window"], cont.meta["recipe"]["fps"])
    assert rows == {"toy": (5, 1.0, 1.0, 4), "other": (3, 2.0, 2.0, 2)}


def test_embedded_default_has_no_overrides():
    cfg = load_block(FeaturesConfig, REPO_ROOT / "params.yaml")
    for name in ("slowfast", "i3d", "internvideo2", "clip"):
        assert cfg.backbone(name).recipe_by_dataset == {}


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    out = tmp_path_factory.mktemp("real") / "params.yaml"
    apply_profile(REPO_ROOT / "params.yaml", REPO_ROOT / "profiles/real.yaml", out)
    return load_block(FeaturesConfig, out), load_block(SDSTParams, out), yaml.safe_load(out.read_text())


def test_real_profile_thesis_rates(real):
    """Ch. 4 Tab 4.1: 0.5 rows/s (QVHighlights, TACoS), 1 row/s (Charades-STA); Ch. 3 §3.5.2.3: 3 rows/s
    (HD-EPIC, YouCook2, ActivityNet Captions)."""
    feats, sdst, merged = real
    rate = {ds: feats.recipe("internvideo2", ds).fps / feats.recipe("internvideo2", ds).stride
            for ds in feats.datasets["internvideo2"]}
    assert rate == {"qvhighlights": 0.5, "tacos": 0.5, "charades_sta": 1.0, "hdepic": 3.0, "youcook2": 3.0,
                    "activitynet_captions": 3.0}
    assert all(feats.recipe("internvideo2", ds).frames == 4 for ds in rate)  # the f4 checkpoint's clip frames
    # SDST's clip_len per dataset (saliency rows) agrees with the extracted row spacing
    for ds in sdst.datasets:
        r = feats.recipe("internvideo2", ds)
        assert sdst.dataset_specs[ds].clip_len == pytest.approx(r.stride / r.fps), ds
    # the query-generation windows of HD-EPIC (500 frames at 3 fps) count the same rows
    assert merged["querygen"]["sources"]["hdepic"]["window"]["fps"] == rate["hdepic"]
