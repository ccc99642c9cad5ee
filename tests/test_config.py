"""The strict params loader: every shipped block loads; bad keys and types are named in the error."""
from dataclasses import dataclass, field
from typing import Literal

import pytest
import yaml

from pipeline.core.params import ConfigError, LaunchConfig, RuntimeConfig, build, load_block, load_params
from pipeline.profiles import BLOCKS, apply_profile, deep_merge
from pipeline.sdst.params import SDSTParams

from conftest import REPO_ROOT


@dataclass(frozen=True)
class Inner:
    lr: float
    steps: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Outer:
    name: str
    mode: Literal["a", "b"]
    k: int
    inner: Inner
    per: dict[str, Inner]
    maybe: int | None = None


GOOD = {"name": "x", "mode": "a", "k": 3, "inner": {"lr": 1, "steps": [1, 2]}, "per": {"p": {"lr": 0.5}}}


def test_every_block_of_the_shipped_params_loads():
    params = load_params(REPO_ROOT / "params.yaml")
    assert set(params) == set(BLOCKS), "params.yaml blocks and config dataclasses must match one to one"
    for name in params:
        cfg = load_block(BLOCKS[name], params=params)
        assert type(cfg) is BLOCKS[name]


def test_every_block_of_the_smoke_profile_loads(tmp_path):
    merged = apply_profile(REPO_ROOT / "params.yaml", REPO_ROOT / "profiles/smoke.yaml", tmp_path / "p.yaml")
    for name in merged:
        load_block(BLOCKS[name], params=merged)
    assert yaml.safe_load((tmp_path / "p.yaml").read_text()) == merged


def test_a_profile_keeps_the_comments_of_params_yaml(tmp_path):
    """The knobs are documented in params.yaml's comments: applying a profile must not delete them."""
    apply_profile(REPO_ROOT / "params.yaml", REPO_ROOT / "profiles/smoke.yaml", tmp_path / "p.yaml")
    written = (tmp_path / "p.yaml").read_text()
    shipped = (REPO_ROOT / "params.yaml").read_text()
    for line in shipped.splitlines():
        if line.lstrip().startswith("#"):
            assert line in written, f"comment line lost: {line!r}"
    assert "# pipeline.core.training.fit" in written  # an end-of-line comment survives too


def test_build_converts_nested_values():
    cfg = build(Outer, GOOD, "blk")
    assert cfg.inner.lr == 1.0 and isinstance(cfg.inner.lr, float)
    assert cfg.per["p"].steps == [] and cfg.maybe is None


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"extra": 1}, "blk.extra"),
        ({"k": "four"}, "blk.k: expected int, got str"),
        ({"k": True}, "blk.k: expected int, got bool"),
        ({"mode": "c"}, "blk.mode: expected one of"),
        ({"inner": {"lr": 1, "typo": 2}}, "blk.inner.typo"),
        ({"per": {"p": {"lr": "fast"}}}, "blk.per.p.lr: expected float"),
        ({"inner": {"lr": 1, "steps": [1, "x"]}}, "blk.inner.steps[1]: expected int"),
    ],
)
def test_bad_values_name_the_key(patch, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build(Outer, {**GOOD, **patch}, "blk")


def test_missing_key_is_named():
    data = dict(GOOD)
    del data["k"]
    with pytest.raises(ConfigError, match=r"blk\.k: missing key"):
        build(Outer, data, "blk")


def test_load_block_names_the_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("runtime: {device: cpu, seed: 0, workers: 0, precision: fp64, threads: 1}\n")
    with pytest.raises(ConfigError, match=r"params.yaml: runtime.precision"):
        load_block(RuntimeConfig, path=path)
    with pytest.raises(ConfigError, match="missing block 'sdst'|unknown params block"):
        load_block(SDSTParams, path=path)


@pytest.mark.parametrize("launcher, ok", [("python", True), ("python3", True),
                                           ("torchrun --standalone --nproc_per_node 8", True),
                                           ("bash -c 'rm -rf /'", False), ("", False)])
def test_launch_train_must_be_python_or_torchrun(tmp_path, launcher, ok):
    """The training stages' cmd is `<launch.train> -m pipeline.<method>.train ...` (dvc.yaml)."""
    path = tmp_path / "params.yaml"
    path.write_text(f"launch: {{train: \"{launcher}\"}}\n")
    if ok:
        assert load_block(LaunchConfig, path=path).train == launcher
    else:
        with pytest.raises(ConfigError, match="launch.train"):
            load_block(LaunchConfig, path=path)


def test_training_stages_start_through_the_launcher():
    dvc_yaml = (REPO_ROOT / "dvc.yaml").read_text()
    for method in ("sada", "search_vmr", "sdst"):
        assert f"${{launch.train}} -m pipeline.{method}.train " in dvc_yaml


def test_profile_rejects_unknown_override_keys():
    with pytest.raises(ConfigError, match=r"runtime\.nope"):
        deep_merge({"runtime": {"seed": 0}}, {"runtime": {"nope": 1}})
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}) == {"a": {"b": 3, "c": 2}}
    with pytest.raises(ConfigError, match=r"profile overrides unknown key nope"):
        deep_merge({"a": {}}, {"nope": {"x": 1}}, new_keys_below=1)
    assert deep_merge({"a": {"b": 1}}, {"a": {"n": 2}}, new_keys_below=1) == {"a": {"b": 1, "n": 2}}
    # null removes a named entry (a mapping) but only sets a scalar to null
    assert deep_merge({"a": {"b": {"x": 1}, "c": 3}}, {"a": {"b": None, "c": None}}, new_keys_below=1) == {"a": {"c": None}}


def test_profile_may_add_entries_inside_blocks_but_typos_still_fail(tmp_path):
    """A new named entry (a scenario spec) is added and kept with params.yaml's comments; a misspelt settings
    key is refused by the block's strict validation, naming the dotted key."""
    from pipeline.sada.params import SadaConfig

    profile = tmp_path / "p.yaml"
    profile.write_text("sada:\n  scenario_specs:\n    EK_NEW: {num_classes: 7, weights: {lambda_levels: [1, 1, 1, 1, 1, 1], "
                       "alpha: 0.5, lambda_cls: 1, lambda_reg: 1, lambda_task: 1, lambda_sada: 1}}\n")
    out = tmp_path / "merged.yaml"
    apply_profile(REPO_ROOT / "params.yaml", profile, out)
    assert load_block(SadaConfig, out).scenario_specs["EK_NEW"].num_classes == 7
    assert "# " in out.read_text()  # comments survive
    profile.write_text("runtime:\n  threds: 2\n")
    with pytest.raises(ConfigError, match=r"runtime\.threds"):
        apply_profile(REPO_ROOT / "params.yaml", profile, tmp_path / "bad.yaml")
