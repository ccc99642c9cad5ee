"""Stage ``querygen_prepare@<dataset>``: the caption records query generation works on.

Keeps the records' caption moments (moments with a query id and text), cuts videos into windows when
``querygen.sources.<dataset>.window`` is set (HD-EPIC: 500 frames at 3 fps, see ``querygen.windows``) and keeps
the first ``max_videos`` videos (by id) of each split when that is > 0 (the smoke profile).

    python -m pipeline.querygen.prepare --dataset synth_captions \\
        --canonical data/canonical/synth_captions.jsonl --out data/querygen/synth_captions/source.jsonl

Params read: ``querygen.sources.<dataset>``.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from pipeline.querygen.params import QuerygenSource
from pipeline.datasets.schema import VideoRecord, read_records, write_records
from pipeline.querygen.common import base_parser, check_dataset, load_configs
from pipeline.querygen.windows import window_records


def prepare(records: list[VideoRecord], source: QuerygenSource) -> list[VideoRecord]:
    """Caption-only, optionally windowed and limited records (see the module docstring)."""
    out = []
    for rec in records:
        moments = [m for m in rec.moments if m.query_id is not None and m.text]
        if moments:
            out.append(dataclasses.replace(rec, moments=moments))
    if source.window is not None:
        out = window_records(out, source.window.frames, source.window.fps)
    if source.max_videos > 0:
        kept = []
        for split in sorted({r.split for r in out}):
            kept += sorted((r for r in out if r.split == split), key=lambda r: r.video_id)[: source.max_videos]
        out = kept
    return out


def main(argv: list[str] | None = None) -> int:
    p = base_parser(__doc__.splitlines()[0], level=False)
    p.add_argument("--canonical", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    cfg, _ = load_configs(args.params)
    check_dataset(cfg, args.dataset)
    records = prepare(read_records(args.canonical), cfg.sources[args.dataset])
    if not records:
        raise SystemExit(f"{args.canonical}: no caption moments to generate search queries from")
    write_records(args.out, records)
    n = sum(len(r.moments) for r in records)
    print(f"[querygen_prepare] {args.dataset}: {len(records)} videos, {n} caption moments -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
