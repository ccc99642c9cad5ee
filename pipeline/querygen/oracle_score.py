"""Stage ``querygen_oracle@<dataset>-<level>``: score generated queries against an oracle (synthetic world only).

    python -m pipeline.querygen.oracle_score --dataset synth_captions --level S1 --oracle data/raw/synth_oracle \\
        --generated data/querygen/synth_captions/S1/generate --built data/querygen/synth_captions/S1/build \\
        --metrics reports/metrics/querygen/oracle/synth_captions_S1.json

Oracle files: ``underspecification.json`` ``{video: [{index, caption, S1, S2, S3}]}`` and ``groups.json``
``{level: {video: [[index, ...]]}}`` (written by ``pipeline.synth.generate``). Metrics (``querygen.oracle``):
``rewrite`` (raw LLM rewrites) and ``final`` (after validation/fallback) exact / partial match and token F1;
``grouping`` ARI of the predicted groups; ``grouping_oracle_text`` ARI when the oracle texts themselves are
grouped with the same encoder and threshold (separates grouping errors from rewriting errors).
Params read: ``querygen.group_threshold``, ``querygen.embedder``, ``runtime.device``, ``runtime.threads``.
Real datasets have no oracle: only datasets in ``querygen.oracle.datasets`` get this stage.
Reads ``validated.jsonl`` of ``querygen_generate`` and ``groups.json`` of ``querygen_build``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.core.io import InputError, read_json, read_jsonl, write_json
from pipeline.querygen.common import GROUPS, VALIDATED, run_stage
from pipeline.querygen.grouping import group_rows
from pipeline.querygen.oracle import align, grouping_scores, rewrite_scores
from pipeline.querygen.params import QuerygenConfig


def score(rows: list[dict], groups: dict, under: dict, gold_groups: dict, level: str, threshold: float,
          model: str = "embedded", device: str = "cpu") -> dict:
    """Oracle metrics of one level (see the module docstring)."""
    pairs = align(rows, under)
    qid_of = {(row["video_id"], entry["index"]): row["qid"] for row, entry in pairs}
    gold = {vid: [[qid_of[(vid, i)] for i in g if (vid, i) in qid_of] for g in gs]
            for vid, gs in gold_groups.items() if any((vid, i) in qid_of for g in gs for i in g)}
    gold = {vid: [g for g in gs if g] for vid, gs in gold.items()}
    oracle_rows = [{"qid": row["qid"], "video_id": row["video_id"], "query": entry[level]} for row, entry in pairs]
    return {
        "level": level,
        "rewrite": rewrite_scores([(row["rewrite"], entry[level]) for row, entry in pairs]),
        "final": rewrite_scores([(row["query"], entry[level]) for row, entry in pairs if row["query"] is not None]),
        "grouping": grouping_scores(groups, gold),
        "grouping_oracle_text": grouping_scores(group_rows(oracle_rows, threshold, model, device), gold),
    }


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--oracle", required=True, type=Path, help="folder with underspecification.json, groups.json")
    p.add_argument("--generated", required=True, type=Path, help="output folder of querygen_generate")
    p.add_argument("--built", required=True, type=Path, help="output folder of querygen_build (groups.json)")
    p.add_argument("--metrics", required=True, type=Path)


def _score(args: argparse.Namespace, cfg: QuerygenConfig, device: str) -> None:
    gold_all = read_json(args.oracle / "groups.json")
    if args.level not in gold_all:
        raise InputError(f"{args.oracle / 'groups.json'}: no level {args.level!r} (has {sorted(gold_all)})")
    metrics = score(read_jsonl(args.generated / VALIDATED), read_json(args.built / GROUPS),
                    read_json(args.oracle / "underspecification.json"), gold_all[args.level], args.level,
                    cfg.group_threshold, cfg.embedder.model, device)
    metrics["dataset"] = args.dataset
    write_json(args.metrics, metrics)
    print(f"[querygen_oracle] {args.dataset} {args.level}: rewrite exact {metrics['rewrite']['exact']:.3f} "
          f"partial {metrics['rewrite']['partial']:.3f}, grouping ARI {metrics['grouping']['ari']:.3f} "
          f"(oracle texts {metrics['grouping_oracle_text']['ari']:.3f})")


def main(argv: list[str] | None = None) -> int:
    """Run the stage (see the module docstring); returns the exit code."""
    return run_stage(__doc__, _arguments, _score, argv)


if __name__ == "__main__":
    sys.exit(main())
