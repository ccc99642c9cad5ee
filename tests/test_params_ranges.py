"""Out-of-range params are refused before any work, each as one ConfigError naming the file and dotted key.

Issue 16's cases: ``epochs: 0`` used to ship an untrained model, a negative learning rate or batch size ≤ 0
ended in tracebacks, ``group_threshold: 1.5`` was accepted. One case per block with numeric knobs.
"""
from __future__ import annotations

import copy

import pytest
import yaml

from conftest import REPO_ROOT
from pipeline.core.params import ConfigError, load_block
from pipeline.profiles import BLOCKS

BASE = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))

CASES = [
    ("runtime", ["runtime", "threads"], -1, "must be ≥ 0"),
    ("sdst", ["sdst", "train", "epochs"], 0, "must be ≥ 1"),
    ("sdst", ["sdst", "train", "lr"], -0.001, "must be > 0"),
    ("sdst", ["sdst", "train", "batch_size"], 0, "must be ≥ 1"),
    ("sada", ["sada", "train", "epochs"], 0, "must be ≥ 1"),
    ("search_vmr", ["search_vmr", "train", "batch_size"], -4, "must be ≥ 1"),
    ("querygen", ["querygen", "group_threshold"], 1.5, "must be ≤ 1"),
    ("features", ["features", "decode", "max_skipped_share"], 2.0, "must be ≤ 1"),
    ("datasets", ["datasets", "tolerance"], -0.5, "must be ≥ 0"),
    ("synth", ["synth", "resolution"], 0, "must be"),
    ("claims", ["claims", "search_vmr", "iou"], 1.5, "must be ≤ 1"),
    ("report", ["report", "digits"], -1, "must be ≥ 0"),
]


@pytest.mark.parametrize("block,keys,value,message", CASES, ids=[".".join(c[1]) for c in CASES])
def test_out_of_range_value_is_one_error_naming_the_key(tmp_path, block, keys, value, message):
    params = copy.deepcopy(BASE)
    node = params
    for key in keys[:-1]:
        node = node[key]
    assert keys[-1] in node, f"params.yaml has no {'.'.join(keys)}: update this test"
    node[keys[-1]] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_block(BLOCKS[block], path)
    text = str(err.value)
    assert "\n" not in text and str(path) in text and ".".join(keys) in text and message in text, text


def test_the_shipped_params_and_profiles_are_in_range(tmp_path):
    from pipeline.profiles import apply_profile

    for name in BLOCKS:
        load_block(BLOCKS[name], REPO_ROOT / "params.yaml")
    for profile in sorted((REPO_ROOT / "profiles").glob("*.yaml")):
        apply_profile(REPO_ROOT / "params.yaml", profile, tmp_path / f"{profile.stem}.yaml")
