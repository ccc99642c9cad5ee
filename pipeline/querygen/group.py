"""Stage ``querygen_group@<dataset>-<level>``: group each video's validated queries by sentence similarity.

    python -m pipeline.querygen.group --dataset synth_captions --level S1 \\
        --validated data/querygen/synth_captions/S1/validate --out data/querygen/synth_captions/S1/group

Per video, queries (dropped ones excluded) are embedded (``querygen.embedder``), linked where cosine ≥
``querygen.group_threshold`` and grouped as connected components by DFS (``querygen.grouping``).
Writes ``groups.json`` ``{video_id: [[qid, ...], ...]}`` and ``summary.json``.
Params read: ``querygen.group_threshold``, ``querygen.embedder``, ``runtime.device``, ``runtime.threads``.
"""
from __future__ import annotations

import sys
from pathlib import Path

from pipeline.core.io import atomic_path, read_jsonl, write_json
from pipeline.querygen.common import (
    ROWS,
    SUMMARY,
    base_parser,
    check_dataset,
    load_configs,
    setup_torch,
)
from pipeline.querygen.encoder import encode
from pipeline.querygen.grouping import group_indices


def group_rows(rows: list[dict], threshold: float, model: str = "embedded", device: str = "cpu",
               batch_size: int = 64) -> dict[str, list[list[str]]]:
    """``{video_id: [[qid, ...], ...]}`` over the rows whose ``query`` is not null."""
    kept = [r for r in rows if r.get("query") is not None]
    emb = encode([r["query"] for r in kept], model=model, device=device, batch_size=batch_size)
    by_video: dict[str, list[int]] = {}
    for i, r in enumerate(kept):
        by_video.setdefault(r["video_id"], []).append(i)
    out = {}
    for vid in sorted(by_video):
        idx = by_video[vid]
        out[vid] = [[kept[idx[j]]["qid"] for j in comp] for comp in group_indices(emb[idx], threshold)]
    return out


def main(argv: list[str] | None = None) -> int:
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--validated", required=True, type=Path, help="output folder of querygen_validate")
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    cfg, runtime = load_configs(args.params)
    check_dataset(cfg, args.dataset, args.level)
    device = setup_torch(runtime)
    rows = read_jsonl(args.validated / ROWS["validate"])
    groups = group_rows(rows, cfg.group_threshold, cfg.embedder.model, device, cfg.embedder.batch_size)
    sizes = [len(g) for gs in groups.values() for g in gs]
    summary = {"videos": len(groups), "items": sum(sizes), "groups": len(sizes),
               "multi_groups": sum(s > 1 for s in sizes), "largest_group": max(sizes, default=0)}
    with atomic_path(args.out) as tmp:
        tmp.mkdir(parents=True)
        write_json(tmp / ROWS["group"], groups)
        write_json(tmp / SUMMARY, summary)
    print(f"[querygen_group] {args.dataset} {args.level} (threshold {cfg.group_threshold}): {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
