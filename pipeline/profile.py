"""Apply a params profile: deep-merge ``profiles/<name>.yaml`` over ``params.yaml``.

``python -m pipeline.profile smoke`` rewrites ``params.yaml`` in place (atomically) with the smoke overrides;
``--out other.yaml`` writes the merged result elsewhere instead. The profile may only override keys that
exist in ``params.yaml`` — a typo in a profile is an error naming the dotted key — and the merged params are
validated block by block before anything is written.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Mapping

import yaml

from pipeline.config import BLOCKS, ConfigError, load_block
from pipeline.io import write_text


def deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """Return ``base`` with ``overrides`` merged in; nested mappings merge, everything else replaces.

    An override key absent from ``base`` raises ``ConfigError`` naming its dotted path.
    """
    merged = dict(base)
    for key, value in overrides.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in base:
            raise ConfigError(f"profile overrides unknown key {path}")
        if isinstance(value, Mapping) and isinstance(base[key], Mapping):
            merged[key] = deep_merge(base[key], value, path)
        else:
            merged[key] = value
    return merged


def apply_profile(params_path: Path, profile_path: Path, out_path: Path) -> dict[str, Any]:
    """Merge ``profile_path`` over ``params_path``, validate every block, write ``out_path``; return the dict."""
    base = yaml.safe_load(params_path.read_text(encoding="utf-8")) or {}
    overrides = yaml.safe_load(profile_path.read_text(encoding="utf-8")) or {}
    try:
        merged = deep_merge(base, overrides)
    except ConfigError as exc:
        raise ConfigError(f"{profile_path}: {exc}") from None
    for name in BLOCKS:
        if name in merged:
            load_block(name, path=str(out_path), params=merged)
    header = f"# Generated from params.yaml + {profile_path.as_posix()} by `python -m pipeline.profile`.\n"
    write_text(out_path, header + yaml.safe_dump(merged, sort_keys=False, default_flow_style=False))
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", help="profile name (profiles/<name>.yaml) or a path to a YAML file")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default=None, help="where to write (default: overwrite --params)")
    args = parser.parse_args(argv)
    profile = Path(args.profile)
    if not profile.suffix:
        profile = Path("profiles") / f"{args.profile}.yaml"
    try:
        apply_profile(Path(args.params), profile, Path(args.out or args.params))
    except (ConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
