"""Stages ``extract_text@<dataset>`` and ``extract_text_search@<dataset>-<level>``: query token features.

    python -m pipeline.features.extract_text --queryset synth_captions --records data/canonical/synth_captions.jsonl \
        --out data/features/text/synth_captions
    python -m pipeline.features.extract_text --queryset synth_captions_S1 \
        --records data/benchmarks/synth_captions/S1/search.jsonl --out data/features/text_search/synth_captions/S1

Every query of the records (``schema.iter_queries``: one per ``query_id``) is encoded by the configured text
tower (``features.text.tower``); ``<out>/<split>.{npy,json}`` holds float16 [tokens, L, D] per qid, L =
``features.text.layers`` (1-based). Tokens run from the tokenizer's first special token ([CLS] / start of
text) to its last ([SEP] / end of text), at most ``max_tokens``. The output directory appears atomically.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.core.cli import stage_main
from pipeline.core.params import RuntimeConfig, load_block
from pipeline.core.runtime import apply_runtime, torch_dtype
from pipeline.features.params import FeaturesConfig, require_files
from pipeline.datasets.schema import iter_queries, read_records
from pipeline.core.io import InputError, atomic_path
from pipeline.features.container import write_container


def queries_by_split(records_path: str | Path) -> dict[str, dict[str, str]]:
    """{split: {qid: text}} of a canonical / benchmark records file; a qid reused with another text is an error."""
    out: dict[str, dict[str, str]] = {}
    for rec in read_records(records_path):
        for q in iter_queries([rec]):
            split = out.setdefault(rec.split, {})
            if q.qid in split and split[q.qid] != q.text:
                raise InputError(f"{records_path}: query {q.qid!r} has two different texts "
                                 f"({split[q.qid]!r} vs {q.text!r})")
            if not q.text.strip():
                raise InputError(f"{records_path}: query {q.qid!r} (video {rec.video_id}) has an empty text")
            split[q.qid] = q.text
    return out


def build_tower(features: FeaturesConfig, runtime: RuntimeConfig):
    """The text tower on the runtime device/precision (random-init towers seeded by ``runtime.seed``)."""
    import torch

    from models.backbones import build_text_tower

    apply_runtime(runtime)
    torch.manual_seed(runtime.seed)
    tower = build_text_tower(features.text, features.internvideo2.checkpoint, features.clip.model)
    return tower.to(torch.device(runtime.device), torch_dtype(runtime.precision))


def extract_text(queryset: str, records_path: str | Path, out_dir: str | Path, features: FeaturesConfig,
                 runtime: RuntimeConfig, tower=None) -> dict:
    """Encode every query of ``records_path`` into ``out_dir``; return {split: {queries, tokens}}."""
    by_split = queries_by_split(records_path)
    if tower is None:
        tower = build_tower(features, runtime)
    cfg = features.text
    summary = {}
    with atomic_path(Path(out_dir)) as tmp:
        tmp.mkdir(parents=True)
        for split in sorted(by_split):
            qids = sorted(by_split[split])
            arrays = tower.encode([by_split[split][q] for q in qids], cfg.batch_size)
            meta = {
                "tower": tower.name,
                "dim": int(tower.dim),
                "layers": [int(x) for x in tower.layers],
                "max_tokens": cfg.max_tokens,
                "tokens": "first and last rows are the tokenizer's special tokens ([CLS]/[SEP] or SOT/EOT)",
                "queryset": queryset,
                "split": split,
            }
            write_container(tmp / split, list(zip(qids, arrays)), meta,
                            empty_shape=(0, len(tower.layers), int(tower.dim)))
            summary[split] = {"queries": len(qids), "tokens": int(sum(len(a) for a in arrays))}
    return summary


@stage_main(ValueError)
def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring); bad params or input → exit code 2."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queryset", required=True, help="name of the query set (output directory name)")
    parser.add_argument("--records", required=True, help="canonical records JSONL holding the queries")
    parser.add_argument("--out", required=True)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    features = load_block(FeaturesConfig, args.params)
    runtime = load_block(RuntimeConfig, args.params)
    require_files(features.text_files(), where=args.params)  # the tower's weights / vocab, before any encoding
    summary = extract_text(args.queryset, args.records, args.out, features, runtime)
    print(f"text features {args.queryset}: " + ", ".join(f"{s}: {v['queries']} queries" for s, v in summary.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
