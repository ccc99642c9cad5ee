"""Stage ``merge_features_<backbone>@<dataset>``: shard containers → one container per split + metrics.

    python -m pipeline.features.merge --shards data/features/_shards/synth_tal/slowfast --num-shards 2 \
        --out data/features/synth_tal/slowfast --metrics reports/metrics/features/synth_tal-slowfast.json

Reads ``<shards>/<k>/`` for k = 0..n-1 (written by ``pipeline.features.extract``), checks that every shard was made for
the same n and with the same feature meta, and writes ``<out>/<split>.{npy,json}`` with items sorted by video
id — so the bytes do not depend on the number of shards. The metrics file lists per split the number of
videos and rows, the feature shape and every skipped video with its reason. A split that lost all of its
videos, or more than the ``features.decode.max_skipped_share`` the shards were extracted with, over the whole
dataset, is an error listing the skipped videos (each shard checks only what it can see).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from pipeline.core.cli import stage_main
from pipeline.core.io import InputError, atomic_path, read_json, write_json
from pipeline.features.container import FeatureContainer, write_container
from pipeline.features.skips import check_split_losses

def merge_shards(shards_dir: Path, num_shards: int, out_dir: Path) -> dict:
    """Merge the shard outputs under ``shards_dir`` into ``out_dir``; return the metrics dict."""
    shards_dir = Path(shards_dir)
    reports = []
    for k in range(num_shards):
        rep_path = shards_dir / str(k) / "report.json"
        if not rep_path.exists():
            raise InputError(f"{rep_path}: shard {k}/{num_shards} has not been extracted")
        rep = read_json(rep_path)
        if rep.get("shard") != k or rep.get("num_shards") != num_shards:
            raise InputError(f"{rep_path}: made as shard {rep.get('shard')}/{rep.get('num_shards')}, "
                             f"expected {k}/{num_shards} (stale output: rerun the extract stage)")
        reports.append(rep)
    first = reports[0]
    splits = sorted({s for rep in reports for s in rep["splits"]})
    _check_losses(reports, shards_dir)
    metrics = {
        "dataset": first["dataset"],
        "backbone": first["backbone"],
        "num_shards": num_shards,
        "videos": sum(r["videos"] for r in reports),
        "extracted": sum(r["extracted"] for r in reports),
        "skipped_count": sum(len(r["skipped"]) for r in reports),
        "skipped": sorted((s for r in reports for s in r["skipped"]), key=lambda s: s["video_id"]),
        "splits": {},
    }
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        for split in splits:
            items: dict[str, np.ndarray] = {}
            meta = None
            for k in range(num_shards):
                prefix = shards_dir / str(k) / split
                if split not in reports[k]["splits"]:
                    continue
                cont = FeatureContainer(prefix)
                if meta is None:
                    meta = cont.meta
                elif cont.meta != meta:
                    diff = sorted(key for key in set(meta) | set(cont.meta) if meta.get(key) != cont.meta.get(key))
                    raise InputError(f"{prefix}: feature meta differs from shard 0 in {diff}")
                for vid in cont.keys():
                    if vid in items:
                        raise InputError(f"{prefix}: video {vid!r} appears in two shards")
                    items[vid] = np.asarray(cont[vid])
            ids = sorted(items)
            shape = (0, len(meta["layers"]), int(meta["dim"]))
            write_container(tmp / split, [(vid, items[vid]) for vid in ids], meta, empty_shape=shape)
            rows = int(sum(len(items[v]) for v in ids))
            metrics["splits"][split] = {"videos": len(ids), "rows": rows, "shape": [rows, shape[1], shape[2]]}
            for key in ("dim", "layers", "time_step", "window", "pooling"):
                metrics[key] = meta[key]
    return metrics


def _check_losses(reports: list[dict], shards_dir: Path) -> None:
    """The skip limit over all shards together (the shard reports carry the limit they were made with)."""
    limits = {rep.get("max_skipped_share") for rep in reports}
    if len(limits) > 1:
        raise InputError(f"{shards_dir}: shards were extracted with different max_skipped_share {sorted(limits)} "
                         f"(stale output: rerun the extract stages)")
    limit = limits.pop()
    if limit is None:  # shards written before the limit existed, or by a caller that turned it off
        return
    totals: dict[str, int] = {}
    lost: dict[str, list[tuple[str, str]]] = {}
    for rep in reports:
        for split, info in rep["splits"].items():
            totals[split] = totals.get(split, 0) + int(info["videos"])
        for item in rep["skipped"]:
            totals[item["split"]] = totals.get(item["split"], 0) + 1
            lost.setdefault(item["split"], []).append((item["video_id"], item["reason"]))
    check_split_losses(reports[0]["dataset"], totals, lost, float(limit))


@stage_main()
def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring); bad input → exit code 2."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", required=True, help="directory holding the shard outputs 0..n-1")
    parser.add_argument("--num-shards", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args(argv)
    metrics = merge_shards(Path(args.shards), args.num_shards, Path(args.out))
    write_json(args.metrics, metrics)
    shapes = ", ".join(f"{s}: {v['shape']}" for s, v in metrics["splits"].items())
    print(f"{metrics['dataset']}/{metrics['backbone']}: {shapes}; {metrics['skipped_count']} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
