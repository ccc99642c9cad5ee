"""Stage ``querygen_generate@<dataset>-<level>``: caption records → LLM rewrites → validated search queries.

    python -m pipeline.querygen.generate --dataset synth_captions --level S1 \\
        --canonical data/canonical/synth_captions.jsonl --reviews data/querygen_reviews \\
        --out data/querygen/synth_captions/S1/generate

The expensive LLM part of query generation, in three steps:

1. prepare — keep the records' caption moments (moments with a query id and text), cut videos into windows when
   ``querygen.sources.<dataset>.window`` is set (HD-EPIC: 500 frames at 3 fps, see ``querygen.windows``) and
   keep the first ``max_videos`` videos (by id) of each split when that is > 0 (the smoke profile);
2. rewrite — the rewriter agent under-specifies every caption with the dataset's few-shot prompt set
   (``querygen.sources.<dataset>.prompts``);
3. validate — a rewrite is flagged when the LLM validator does not answer "yes" (``validator.llm_verdict:
   enforce``), when a content word is not grounded in the caption (``hypernyms.yaml`` of the prompt set), when
   its sentence cosine to the caption is below ``validator.min_cosine``, when it is not a well-formed query
   (``querygen.wellformed``: cut at ``rewriter.max_new_tokens`` or ending like a cut sentence, degenerate
   repetition, a fragment under ``validator.min_query_words`` words or without an action word), or
   (``require_underspecified``) when it keeps every content word of the caption. Flagged rewrites go to
   ``review.jsonl`` with their reasons; ``validator.policy`` decides the rest (``querygen.review``). Rows of
   ``<reviews>/<dataset>/<level>/validate.jsonl`` override; they are checked before any LLM work: an id that
   matches no caption, or a ``final`` text failing the same checks (all but the LLM verdict and
   ``require_underspecified``: keeping the caption is what the fallback policy itself does), stops the stage.

Every LLM answer is cached on disk (``querygen.llm``), so a rerun only generates what changed.
Writes into ``<out>``: ``source.jsonl`` (the prepared caption records), ``validated.jsonl`` (``qid, video_id,
split, caption, rewrite, query`` (null = dropped), ``status``, ``reasons``, ``llm_verdict``, ``cosine``),
``review.jsonl``, ``summary.json`` (the validator's counts). Policy ``fail`` with flagged rewrites writes these
and then stops with exit code 2.
Params read: ``querygen.sources.<dataset>``, ``querygen.llm``, ``querygen.rewriter``, ``querygen.validator``,
``querygen.embedder``, ``runtime.device``, ``runtime.threads``.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from pipeline.core.io import InputError, atomic_path, write_json, write_jsonl
from pipeline.datasets.schema import VideoRecord, read_records, write_records
from pipeline.querygen import agents, grounding, wellformed
from pipeline.querygen.common import (
    REVIEW,
    SOURCE,
    SUMMARY,
    VALIDATED,
    caption_items,
    run_stage,
    user_review_path,
)
from pipeline.querygen.encoder import pair_cosines
from pipeline.querygen.llm import CachedLLM, GenParams, build_llm
from pipeline.querygen.params import QuerygenConfig, QuerygenSource, QuerygenValidator
from pipeline.querygen.prompts import Lexicon, load_lexicon, load_prompt
from pipeline.querygen.review import (
    Override,
    check_override_ids,
    check_override_texts,
    decide,
    load_overrides,
    raise_if_flagged,
    status_counts,
)
from pipeline.querygen.windows import window_records


def prepare(records: list[VideoRecord], source: QuerygenSource) -> list[VideoRecord]:
    """Caption-only, optionally windowed and limited records (step 1 of the module docstring)."""
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


def rewrite_items(items: list[dict], cfg: QuerygenConfig, dataset: str, level: str, llm: CachedLLM) -> list[dict]:
    """``items`` (``caption_items`` rows) with their ``rewrite`` and ``capped`` (generation hit the token cap)."""
    prompt = load_prompt(cfg.sources[dataset].prompts, "rewrite", level)
    answers = agents.rewrite(llm, prompt, [it["caption"] for it in items], GenParams(cfg.rewriter.max_new_tokens),
                             desc=f"rewrite {dataset} {level}")
    return [{**it, "rewrite": a.text, "capped": a.capped} for it, a in zip(items, answers)]


def rewrite_reasons(text: str, caption: str, lexicon: Lexicon, cosine: float, vcfg: QuerygenValidator,
                    capped: bool | None, underspecified: bool = True) -> list[str]:
    """Deterministic reasons to reject ``text`` as the search query of ``caption`` (empty = accepted):
    grounding, form (``wellformed``) and, when ``underspecified``, ``require_underspecified``."""
    reasons = list(grounding.check(text, caption, lexicon, cosine, vcfg.min_cosine).reasons)
    reasons += wellformed.form_reasons(text, capped, [caption], lexicon, vcfg.min_query_words)
    if underspecified and vcfg.require_underspecified and grounding.keeps_everything(text, caption, lexicon):
        reasons.append("not_underspecified")
    return reasons


def check_overrides(overrides: dict[str, Override], items: list[dict], cfg: QuerygenConfig, dataset: str,
                    device: str = "cpu") -> None:
    """Stop before any LLM work when an override names no caption or its ``final`` fails validation.

    ``items``: every caption of the dataset (before ``max_videos``), so a review file written for the full
    dataset stays valid under a profile that keeps a few videos."""
    check_override_ids(overrides, (it["qid"] for it in items), "caption query id")
    finals = {q: ov.final for q, ov in overrides.items() if ov.final is not None}
    if not finals:
        return
    caption = {it["qid"]: it["caption"] for it in items}
    ids = list(finals)
    cos = pair_cosines([finals[q] for q in ids], [caption[q] for q in ids], model=cfg.embedder.model,
                       device=device, batch_size=cfg.embedder.batch_size)
    lexicon = load_lexicon(cfg.sources[dataset].prompts)
    # a human's text has no token cap; keeping the caption is allowed (the fallback policy does just that)
    check_override_texts(overrides, {q: rewrite_reasons(finals[q], caption[q], lexicon, float(c), cfg.validator,
                                                        capped=False, underspecified=False)
                                     for q, c in zip(ids, cos)})


def validate_rows(rows: list[dict], cfg: QuerygenConfig, dataset: str, level: str, llm: CachedLLM | None,
                  overrides: dict, device: str = "cpu") -> tuple[list[dict], list[dict], dict]:
    """``(validated rows, review rows, counts)`` for the rewrites of one level (step 3)."""
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
        reasons = rewrite_reasons(r["rewrite"], r["caption"], lexicon, float(c), vcfg, r.get("capped"))
        r = {k: x for k, x in r.items() if k != "capped"}  # validated.jsonl keeps its columns; reasons say it
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
    counts.update(wellformed.form_counts([o["reasons"] for o in out]))
    return out, review, counts


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--canonical", required=True, type=Path, help="canonical records JSONL of the dataset")
    p.add_argument("--reviews", required=True, type=Path, help="folder of user review files")
    p.add_argument("--out", required=True, type=Path)


def _generate(args: argparse.Namespace, cfg: QuerygenConfig, device: str) -> None:
    pset = cfg.sources[args.dataset].prompts
    # read every prompt and the lexicon before loading any model, so a bad prompt file fails in a second
    load_prompt(pset, "rewrite", args.level)
    if cfg.validator.llm_verdict != "off":
        load_prompt(pset, "validate", args.level)
    load_lexicon(pset)
    user_file = user_review_path(args.reviews, args.dataset, args.level, "validate")
    overrides = load_overrides(user_file)
    t0 = time.perf_counter()
    all_records = read_records(args.canonical)
    records = prepare(all_records, cfg.sources[args.dataset])
    if not records:
        raise InputError(f"{args.canonical}: no caption moments to generate search queries from")
    items = caption_items(records)
    check_overrides(overrides, caption_items(all_records), cfg, args.dataset, device)
    print(f"[querygen_generate] {args.dataset} {args.level}: {len(records)} videos, {len(items)} captions")
    llm = build_llm(cfg.llm, device)
    rows = rewrite_items(items, cfg, args.dataset, args.level, llm)
    print(f"[querygen_generate] {args.dataset} {args.level}: {len(rows)} rewrites, cache hits {llm.counts.hits}, "
          f"generated {llm.counts.misses}")
    out, review, counts = validate_rows(rows, cfg, args.dataset, args.level,
                                        llm if cfg.validator.llm_verdict != "off" else None, overrides, device)
    with atomic_path(args.out) as tmp:
        tmp.mkdir(parents=True)
        write_records(tmp / SOURCE, records)
        write_jsonl(tmp / VALIDATED, out)
        write_jsonl(tmp / REVIEW, review)
        write_json(tmp / SUMMARY, counts)
    print(f"[querygen_generate] {args.dataset} {args.level}: validation {counts}, LLM cache hits "
          f"{llm.counts.hits}, generated {llm.counts.misses}, {time.perf_counter() - t0:.1f} s")
    raise_if_flagged([o["status"] for o in out], args.out / REVIEW, user_file)


def main(argv: list[str] | None = None) -> int:
    """Run the stage (see the module docstring); returns the exit code."""
    return run_stage(__doc__, _arguments, _generate, argv)


if __name__ == "__main__":
    sys.exit(main())
