"""Stage ``ingest@<name>``: one source dataset (real or synthetic) → canonical records + bad-row summary.

``datasets.sources.<name>`` names the adapter (``format``), the dataset ``root`` and the adapter's
``options``; the adapter reads the annotation files in their original format and reports every bad row
(``pipeline/datasets/badrows.py``) under the policy ``datasets.policy`` (or the source's own ``policy``).
Outputs: ``data/canonical/<name>.jsonl`` (all splits, one ``VideoRecord`` per (split, video), sorted) and the
metrics file ``reports/metrics/ingest/<name>.json`` (moment accounting read = kept + dropped + filtered,
bad rows per category with file and row, per-split counts). Videos left without any moment are not written
and are counted (``videos_without_moments``). Params read: ``datasets.sources.<name>``, ``datasets.policy``.

    python -m pipeline.datasets.ingest synth_tal --out data/canonical/synth_tal.jsonl \
        --report reports/metrics/ingest/synth_tal.json
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

from pipeline.core.cli import stage_main
from pipeline.core.params import ConfigError, build, load_block, spec_entry
from pipeline.datasets.params import DatasetsConfig
from pipeline.datasets.params import DatasetSource
from pipeline.datasets import (
    activitynet_captions,
    charades_ego,
    charades_sta,
    epic_kitchens_100,
    hd_epic,
    qvhighlights,
    tacos,
    youcook2,
)
from pipeline.datasets.schema import VideoRecord, write_records
from pipeline.core.io import InputError, write_json

# format name → adapter module (each has an ``Options`` dataclass and ``load(root, options, policy, dataset)``)
ADAPTERS: dict[str, ModuleType] = {
    "epic_kitchens_100": epic_kitchens_100,
    "charades_ego": charades_ego,
    "hd_epic": hd_epic,
    "youcook2": youcook2,
    "activitynet_captions": activitynet_captions,
    "qvhighlights": qvhighlights,
    "charades_sta": charades_sta,
    "tacos": tacos,
}


def adapter_for(name: str, source: DatasetSource) -> tuple[ModuleType, Any]:
    """The adapter module of ``source`` and its validated ``Options``; ConfigError naming the key otherwise."""
    key = f"datasets.sources.{name}"
    if source.format not in ADAPTERS:
        raise ConfigError(f"{key}.format: unknown format {source.format!r}; known: {', '.join(ADAPTERS)}")
    module = ADAPTERS[source.format]
    return module, build(module.Options, source.options, f"{key}.options")


def split_counts(records: list[VideoRecord]) -> dict[str, dict[str, int]]:
    """Per split: videos, moments, distinct queries and videos with a video file."""
    out: dict[str, Counter] = {}
    for rec in records:
        c = out.setdefault(rec.split, Counter())
        c["videos"] += 1
        c["moments"] += len(rec.moments)
        c["queries"] += len({m.query_id for m in rec.moments if m.query_id is not None})
        c["videos_with_file"] += rec.video_path is not None
    return {split: dict(c) for split, c in sorted(out.items())}


def check_unique(records: list[VideoRecord], where: str) -> None:
    """A (split, video) pair or a moment id seen twice means duplicated input: an error naming both."""
    videos: set[tuple[str, str]] = set()
    moments: set[str] = set()
    for rec in records:
        if (rec.split, rec.video_id) in videos:
            raise InputError(f"{where}: video {rec.video_id!r} appears twice in split {rec.split!r}")
        videos.add((rec.split, rec.video_id))
        for m in rec.moments:
            if m.moment_id in moments:
                raise InputError(f"{where}: moment id {m.moment_id!r} appears twice (video {rec.video_id})")
            moments.add(m.moment_id)


def ingest(name: str, source: DatasetSource, policy: str, out: str | Path, report_path: str | Path) -> dict:
    """Read source ``name`` with its adapter, write its canonical JSONL and bad-row summary; return the summary."""
    module, options = adapter_for(name, source)
    policy = source.policy or policy
    root = Path(source.root)
    if not root.is_dir():
        raise InputError(f"{root}: dataset root of datasets.sources.{name} not found")
    records, report = module.load(root, options, policy, name)
    kept = [r for r in records if r.moments]
    if not kept:
        raise InputError(f"{root}: datasets.sources.{name} produced no video with a moment "
                         f"(bad rows: {report.counts or 'none'}; check the split file options)")
    check_unique(kept, str(root))
    write_records(out, kept)
    summary = {
        "dataset": name,
        "format": source.format,
        "root": source.root,
        "splits": split_counts(kept),
        "videos_without_moments": len(records) - len(kept),
        **report.summary(),
    }
    write_json(report_path, summary)
    return summary


@stage_main()
def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring); bad params or input → exit code 2."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="a key of datasets.sources")
    parser.add_argument("--out", required=True, help="canonical JSONL to write")
    parser.add_argument("--report", required=True, help="bad-row summary JSON (metrics) to write")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    cfg = load_block(DatasetsConfig, args.params)
    source = spec_entry(cfg.sources, args.name, "datasets.sources", "source")
    summary = ingest(args.name, source, cfg.policy, args.out, args.report)
    m = summary["moments"]
    splits = ", ".join(f"{s}: {c['videos']} videos / {c['moments']} moments" for s, c in summary["splits"].items())
    bad = ", ".join(f"{k} {v['count']}" for k, v in summary["bad"].items()) or "none"
    print(f"ingest {args.name}: {splits}; moments read {m['read']}, kept {m['kept']}, dropped {m['dropped']}, "
          f"filtered {m['filtered']}; bad rows ({summary['policy']}): {bad}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
