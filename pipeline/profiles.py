"""Apply a params profile: deep-merge ``profiles/<name>.yaml`` over ``params.yaml``.

``python -m pipeline.profiles smoke`` rewrites ``params.yaml`` in place (atomically) with the smoke overrides;
``--out other.yaml`` writes the merged result elsewhere instead. A profile overrides blocks that exist in
``params.yaml``; inside a block it may also add entries (a real dataset under ``datasets.sources``, a
scenario under ``sada.scenario_specs``) and remove one by setting it to null (``synth_tal: null`` under
``datasets.sources``: only an entry whose value is a mapping can be removed), because the merged params are
validated block by block before anything is written: a typo in a profile key is still an error naming the
dotted key (the strict loader rejects unknown keys of every settings dataclass).

The merge is done on a round-trip YAML tree (``ruamel.yaml``), so params.yaml's comments — where every knob
is documented — survive in the written file; an overridden value keeps the comment of its line.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any, Mapping

import yaml
from ruamel.yaml import YAML

from pipeline.core.io import write_text
from pipeline.core.cli import stage_main
from pipeline.core.params import ConfigError, LaunchConfig, RuntimeConfig, load_block
from pipeline.datasets.params import DatasetsConfig
from pipeline.features.params import FeaturesConfig
from pipeline.querygen.params import QuerygenConfig
from pipeline.report.params import ClaimsConfig, ReportConfig
from pipeline.sada.params import SadaConfig
from pipeline.sdst.params import SDSTParams
from pipeline.search_vmr.params import SearchVMRConfig
from pipeline.synth.params import SynthConfig

# Every params block and its dataclass, in data-flow order (the only place that knows all of them).
BLOCKS: dict[str, type] = {cls.BLOCK: cls for cls in (
    RuntimeConfig, LaunchConfig, SynthConfig, DatasetsConfig, FeaturesConfig, QuerygenConfig, SadaConfig,
    SearchVMRConfig, SDSTParams, ClaimsConfig, ReportConfig)}


def _round_trip() -> YAML:
    rt = YAML()  # round-trip mode: comments, key order and flow style are kept
    rt.width = 4096  # never re-wrap long lines
    rt.preserve_quotes = True
    return rt


def _merge_tree(base: Any, overrides: Mapping[str, Any]) -> None:
    """Write ``overrides`` into the round-trip tree ``base`` in place (keys were checked by deep_merge)."""
    for key, value in overrides.items():
        if key in base and value is None and isinstance(base[key], Mapping):
            del base[key]
        elif key in base and isinstance(value, Mapping) and isinstance(base[key], Mapping):
            _merge_tree(base[key], value)
        else:
            base[key] = value


def deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any], where: str = "",
               new_keys_below: int | None = None) -> dict[str, Any]:
    """Return ``base`` with ``overrides`` merged in; nested mappings merge, everything else replaces.

    An override key absent from ``base`` raises ``ConfigError`` naming its dotted path, except at nesting
    depth ≥ ``new_keys_below`` (0 = top level), where it is added (the caller validates the result). At that
    depth a null override of a mapping-valued entry removes the entry.
    """
    merged = dict(base)
    depth = where.count(".") + 1 if where else 0
    for key, value in overrides.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in base:
            if new_keys_below is None or depth < new_keys_below:
                raise ConfigError(f"profile overrides unknown key {path}")
            merged[key] = value
            continue
        if value is None and isinstance(base[key], Mapping) and new_keys_below is not None \
                and depth >= new_keys_below:
            del merged[key]
        elif isinstance(value, Mapping) and isinstance(base[key], Mapping):
            merged[key] = deep_merge(base[key], value, path, new_keys_below)
        else:
            merged[key] = value
    return merged


def apply_profile(params_path: Path, profile_path: Path, out_path: Path) -> dict[str, Any]:
    """Merge ``profile_path`` over ``params_path``, validate every block, write ``out_path``; return the dict."""
    text = params_path.read_text(encoding="utf-8")
    base = yaml.safe_load(text) or {}
    profile_text = profile_path.read_text(encoding="utf-8")
    overrides = yaml.safe_load(profile_text) or {}
    try:
        merged = deep_merge(base, overrides, new_keys_below=1)  # blocks must exist; entries inside may be new
    except ConfigError as exc:
        raise ConfigError(f"{profile_path}: {exc}") from None
    for name, schema in BLOCKS.items():
        if name in merged:
            try:
                load_block(schema, path=str(out_path), params=merged)
            except ConfigError as exc:
                raise ConfigError(f"{profile_path} merged over {params_path}: {exc}") from None
    rt = _round_trip()
    tree = rt.load(text)
    # merge the profile's own round-trip nodes: a float keeps its written form (`0.00001`), where re-dumping the
    # Python float would write `1e-05`, which YAML 1.1 readers (PyYAML) take for a string
    _merge_tree(tree, rt.load(profile_text) or {})
    buf = io.StringIO()
    rt.dump(tree, buf)
    header = f"# Generated from params.yaml + {profile_path.as_posix()} by `python -m pipeline.profiles`.\n"
    write_text(out_path, header + buf.getvalue())
    if yaml.safe_load(buf.getvalue()) != merged:  # the round trip must not change a value
        raise ConfigError(f"{out_path}: round-trip YAML changed a value (please report this)")
    return merged


@stage_main()
def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring); a bad profile or params file → exit code 2."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", help="profile name (profiles/<name>.yaml) or a path to a YAML file")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default=None, help="where to write (default: overwrite --params)")
    args = parser.parse_args(argv)
    profile = Path(args.profile)
    if not profile.suffix:
        profile = Path("profiles") / f"{args.profile}.yaml"
    apply_profile(Path(args.params), profile, Path(args.out or args.params))
    return 0


if __name__ == "__main__":
    sys.exit(main())
