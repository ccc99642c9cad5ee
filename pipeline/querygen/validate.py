"""Stage ``querygen_validate@<dataset>-<level>``: validator agent + grounding check + review policy.

    python -m pipeline.querygen.validate --dataset synth_captions --level S1 \\
        --rewrites data/querygen/synth_captions/S1/rewrite --reviews data/querygen_reviews \\
        --out data/querygen/synth_captions/S1/validate

A rewrite is flagged when the LLM validator does not answer "yes" (``validator.llm_verdict: enforce``), when a
content word is not grounded in the caption (``hypernyms.yaml`` of the prompt set), when its sentence cosine to
the caption is below ``validator.min_cosine``, or (``require_underspecified``) when it keeps every content
word of the caption. Flagged rewrites go to ``<out>/review.jsonl`` with their reasons; ``validator.policy``
decides the rest (``querygen.review``). Rows of ``<reviews>/<dataset>/<level>/validate.jsonl`` override.

Outputs: ``validated.jsonl`` (``qid, video_id, split, caption, rewrite, query`` (null = dropped), ``status``,
``reasons``, ``llm_verdict``, ``cosine``), ``review.jsonl``, ``summary.json`` (counts).
Params read: ``querygen.llm``, ``querygen.validator``, ``querygen.embedder``,
``querygen.sources.<dataset>.prompts``, ``runtime.device``, ``runtime.threads``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from pipeline.querygen.params import QuerygenConfig
from pipeline.core.io import atomic_path, read_jsonl, write_json, write_jsonl
from pipeline.querygen import agents, grounding
from pipeline.querygen.common import (
    REVIEW,
    ROWS,
    SUMMARY,
    base_parser,
    check_dataset,
    load_configs,
    setup_torch,
    user_review_path,
)
from pipeline.querygen.encoder import pair_cosines
from pipeline.querygen.llm import CachedLLM, GenParams, build_llm
from pipeline.querygen.prompts import load_lexicon, load_prompt
from pipeline.querygen.review import (
    ReviewRequired,
    decide,
    load_overrides,
    raise_if_flagged,
    status_counts,
)


def validate_rows(rows: list[dict], cfg: QuerygenConfig, dataset: str, level: str, llm: CachedLLM | None,
                  overrides: dict, device: str = "cpu") -> tuple[list[dict], list[dict], dict]:
    """``(validated rows, review rows, counts)`` for the rewrites of one level."""
    vcfg = cfg.validator
    pset = cfg.sources[dataset].prompts
    lexicon = load_lexicon(pset)
    caps = [r["caption"] for r in rows]
    rws = [r["rewrite"] for r in rows]
    cos = pair_cosines(rws, caps, model=cfg.embedder.model, device=device, batch_size=cfg.embedder.batch_size)
    if vcfg.llm_verdict == "off" or llm is None:
        verdicts = ["skipped"] * len(rows)
    else:
        verdicts = agents.validate(llm, load_prompt(pset, "validate", level), caps, rws,
                                   GenParams(vcfg.max_new_tokens), desc=f"validate {dataset} {level}")
    out, review, decisions, flagged = [], [], [], []
    for r, c, v in zip(rows, cos, verdicts):
        g = grounding.check(r["rewrite"], r["caption"], lexicon, float(c), vcfg.min_cosine)
        reasons = list(g.reasons)
        if vcfg.require_underspecified and grounding.keeps_everything(r["rewrite"], r["caption"], lexicon):
            reasons.append("not_underspecified")
        if vcfg.llm_verdict == "enforce" and v != "yes":
            reasons.append(f"llm_verdict: {v}")
        d = decide(r["qid"], r["rewrite"], r["caption"], reasons, vcfg.policy, overrides)
        decisions.append(d)
        flagged.append(bool(reasons))
        out.append({**r, "query": d.text, "status": d.status, "reasons": reasons, "llm_verdict": v,
                    "cosine": round(float(c), 4)})
        if reasons:
            review.append({"id": r["qid"], "video_id": r["video_id"], "input": r["caption"], "generated": r["rewrite"],
                           "reasons": reasons, "llm_verdict": v, "fallback": r["caption"], "final": None})
    counts = status_counts(decisions, flagged)
    counts["llm_rejected"] = sum(v != "yes" for v in verdicts if v != "skipped")
    counts["grounding_failed"] = sum(any(x.startswith(("ungrounded", "low_cosine", "empty")) for x in o["reasons"])
                                     for o in out)
    return out, review, counts


def main(argv: list[str] | None = None) -> int:
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--rewrites", required=True, type=Path, help="output folder of querygen_rewrite")
    p.add_argument("--reviews", required=True, type=Path, help="folder of user review files")
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    cfg, runtime = load_configs(args.params)
    check_dataset(cfg, args.dataset, args.level)
    device = setup_torch(runtime)
    t0 = time.perf_counter()
    rows = read_jsonl(args.rewrites / ROWS["rewrite"])
    user_file = user_review_path(args.reviews, args.dataset, args.level, "validate")
    overrides = load_overrides(user_file)
    llm = build_llm(cfg.llm, device) if cfg.validator.llm_verdict != "off" else None
    out, review, counts = validate_rows(rows, cfg, args.dataset, args.level, llm, overrides, device)
    with atomic_path(args.out) as tmp:
        tmp.mkdir(parents=True)
        write_jsonl(tmp / REVIEW, review)
        write_jsonl(tmp / ROWS["validate"], out)
        write_json(tmp / SUMMARY, counts)
    print(f"[querygen_validate] {args.dataset} {args.level}: {counts} in {time.perf_counter() - t0:.1f} s")
    try:
        raise_if_flagged([o["status"] for o in out], args.out / REVIEW, user_file)
    except ReviewRequired as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
