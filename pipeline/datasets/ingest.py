"""Stage ``ingest@<name>``: one source dataset (real or synthetic) → canonical records + bad-row summary.

``datasets.sources.<name>`` names the adapter (``format``), the dataset ``root`` and the adapter's
``options``; the adapter reads the annotation files in their original format and reports every bad row
(``pipeline/datasets/badrows.py``) under the policy ``datasets.policy`` (or the source's own ``policy``).
Outputs: ``data/canonical/<name>.jsonl`` (all splits, one ``VideoRecord`` per (split, video), sorted) and the
metrics file ``reports/metrics/ingest/<name>.json`` (moment accounting read = kept + dropped + filtered,
bad rows per category with file and row, per-split counts). Videos left without any moment are not written
and are counted (``videos_without_moments``, named under ``videos_lost``). A split file that yields no video
(empty, or every moment dropped or filtered) and a written video without a file at ``video_pattern`` are
errors under policy ``fail`` and named warnings (``warnings``, also printed) otherwise. Params read:
``datasets.sources.<name>``, ``datasets.policy``, ``datasets.tolerance``.

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
from pipeline.datasets.badrows import MAX_LISTED, TOLERANCE, BadRowReport
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


def _named(items: list[str], limit: int = 20) -> str:
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def check_splits(root: Path, counts: dict[str, dict[str, int]], report: BadRowReport, policy: str) -> None:
    """Every split file the adapter read must give a video with a moment: an error under ``fail``, a warning
    otherwise (adapters that derive their splits, e.g. HD-EPIC, register none)."""
    for split, s in report.splits.items():
        if split in counts:
            continue
        why = ("the file has no annotation rows" if s["read"] == 0
               else f"none of its {s['read']} moments was kept")
        message = f"{root / s['file']}: split {split!r} has no video with a moment ({why})"
        if policy == "fail":
            raise InputError(f"{message} (datasets policy 'fail')")
        report.warn(message)


def check_video_files(root: Path, pattern: str | None, records: list[VideoRecord], report: BadRowReport,
                      policy: str) -> list[str]:
    """Written videos without a file at ``pattern`` (``split/video``): an error under ``fail``, a warning
    naming them otherwise. No pattern = annotations only, nothing to check."""
    missing = sorted(f"{r.split}/{r.video_id}" for r in records if pattern and r.video_path is None)
    if missing:
        message = f"{root}: {len(missing)} video(s) have no file at video_pattern {pattern!r}: {_named(missing)}"
        if policy == "fail":
            raise InputError(f"{message} (datasets policy 'fail')")
        report.warn(message)
    return missing


def ingest(name: str, source: DatasetSource, policy: str, out: str | Path, report_path: str | Path,
           tolerance: float = TOLERANCE) -> dict:
    """Read source ``name`` with its adapter, write its canonical JSONL and bad-row summary; return the summary.
    ``policy`` and ``tolerance`` apply unless the source sets its own."""
    module, options = adapter_for(name, source)
    policy = source.policy or policy
    tolerance = source.tolerance if source.tolerance is not None else tolerance
    root = Path(source.root)
    if not root.is_dir():
        raise InputError(f"{root}: dataset root of datasets.sources.{name} not found")
    records, report = module.load(root, options, policy, name, tolerance=tolerance)
    kept = [r for r in records if r.moments]
    if not kept:
        raise InputError(f"{root}: datasets.sources.{name} produced no video with a moment "
                         f"(bad rows: {report.counts or 'none'}; check the split file options)")
    for rec in records:
        if not rec.moments:
            report.video_lost(f"{rec.split}/{rec.video_id}", "all_moments_dropped")
    check_unique(kept, str(root))
    counts = split_counts(kept)
    check_splits(root, counts, report, policy)
    missing = check_video_files(root, getattr(options, "video_pattern", None), kept, report, policy)
    write_records(out, kept)
    summary = {
        "dataset": name,
        "format": source.format,
        "root": source.root,
        "splits": counts,
        "videos_without_moments": sum(len(v) for v in report.videos_lost.values()),
        "videos_without_file": {"count": len(missing), "videos": missing[:MAX_LISTED]},
        "empty_splits": sorted(split for split in report.splits if split not in counts),
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
    summary = ingest(args.name, source, cfg.policy, args.out, args.report, cfg.tolerance)
    for warning in summary["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    m = summary["moments"]
    splits = ", ".join(f"{s}: {c['videos']} videos / {c['moments']} moments" for s, c in summary["splits"].items())
    bad = ", ".join(f"{k} {v['count']}" for k, v in summary["bad"].items()) or "none"
    print(f"ingest {args.name}: {splits}; moments read {m['read']}, kept {m['kept']}, dropped {m['dropped']}, "
          f"filtered {m['filtered']}; bad rows ({summary['policy']}): {bad}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
