"""Aggregation (thesis §3.5.2.2): one representative search query per group of identical-meaning queries.

A single-member group keeps its query; a group whose members all say the same text keeps that text (no LLM
call); any other group asks the aggregator agent. The answer is checked against **every** member: each of
its content words must be grounded in the member's query or caption (or be a configured hypernym), its
cosine to the member's query must be ≥ ``aggregator.min_cosine``, and it must be a well-formed query
(``querygen.wellformed``: not cut at ``aggregator.max_new_tokens``, no degenerate repetition, at least
``aggregator.min_query_words`` words and an action word). A failing answer goes to the review rows;
``aggregator.policy`` decides (fallback = the group's medoid query — the member closest to all others —
without the content words some member does not support). User overrides are keyed by the search query id,
``<first member qid>#<level>``; before any LLM work, an override id that matches no group of this run, or a
``final`` text failing the same checks against the group's members, stops the stage (``querygen.review``).
"""
from __future__ import annotations

import numpy as np

from pipeline.querygen import agents, wellformed
from pipeline.querygen.encoder import encode
from pipeline.querygen.grounding import content_words, ungrounded_words
from pipeline.querygen.llm import CachedLLM, GenParams
from pipeline.querygen.params import QuerygenConfig
from pipeline.querygen.prompts import Lexicon, load_lexicon, load_prompt
from pipeline.querygen.review import Override, check_override_ids, check_override_texts, decide, status_counts


def unique(texts: list[str]) -> list[str]:
    """Texts without repeats, first occurrence order."""
    return list(dict.fromkeys(texts))


def medoid(texts: list[str], emb: np.ndarray) -> str:
    """The text with the highest mean cosine to the others (ties → first)."""
    sims = emb @ emb.T
    return texts[int(np.argmax(sims.mean(axis=1)))]


def shared_fallback(medoid_text: str, members: list[dict], lexicon: Lexicon) -> str:
    """The medoid query without the content words that some member does not support ("A small red star
    blinks slowly." + "... rapidly." → "A small red star blinks."); the medoid itself if nothing would remain."""
    bad = {w for m in members for w in ungrounded_words(medoid_text, [m["query"], m["caption"]], lexicon)}
    if not bad:
        return medoid_text
    kept = [tok for tok in medoid_text.split() if tok.strip(".,;:!?\"'").lower() not in bad]
    text = " ".join(kept)
    if not content_words(text, lexicon):
        return medoid_text
    if medoid_text.rstrip().endswith(".") and not text.endswith("."):
        text = text.rstrip(",;:") + "."
    return text


def check_representative(rep: str, members: list[dict], lexicon: Lexicon, cosines: np.ndarray,
                         min_cosine: float, capped: bool | None = None, min_words: int = 1) -> list[str]:
    """Reasons why ``rep`` does not fit every member or is no well-formed query (empty = it is fine)."""
    reasons = []
    if not rep.strip():
        return ["empty_representative"]
    for m, c in zip(members, cosines):
        bad = ungrounded_words(rep, [m["query"], m["caption"]], lexicon)
        if bad:
            reasons.append(f"ungrounded_in {m['qid']}: {', '.join(bad)}")
        if c < min_cosine:
            reasons.append(f"low_cosine_to {m['qid']}: {c:.3f} < {min_cosine}")
    context = [t for m in members for t in (m["query"], m["caption"])]
    return reasons + wellformed.form_reasons(rep, capped, context, lexicon, min_words)


def check_overrides(overrides: dict[str, Override], plan: list[tuple[str, list[dict], str]], cfg: QuerygenConfig,
                    lexicon: Lexicon, device: str = "cpu") -> None:
    """Stop when an override id matches no group of ``plan`` or its ``final`` does not fit its members."""
    check_override_ids(overrides, (sid for sid, _, _ in plan), "search query id of this grouping")
    members_of = {sid: members for sid, members, _ in plan}
    finals = {sid: ov.final for sid, ov in overrides.items() if ov.final is not None}
    if not finals:
        return
    texts = unique(list(finals.values()) + [m["query"] for sid in finals for m in members_of[sid]])
    emb = encode(texts, model=cfg.embedder.model, device=device, batch_size=cfg.embedder.batch_size)
    row = {t: k for k, t in enumerate(texts)}
    reasons = {}
    for sid, text in finals.items():
        cos = emb[[row[m["query"]] for m in members_of[sid]]] @ emb[row[text]]
        reasons[sid] = check_representative(text, members_of[sid], lexicon, cos, cfg.aggregator.min_cosine,
                                            capped=False, min_words=cfg.aggregator.min_query_words)
    check_override_texts(overrides, reasons)


def aggregate_groups(rows: list[dict], groups: dict[str, list[list[str]]], cfg: QuerygenConfig, dataset: str,
                     level: str, llm: CachedLLM | None, overrides: dict, device: str = "cpu"
                     ) -> tuple[list[dict], list[dict], dict]:
    """``(search query rows, review rows, counts)`` for one level."""
    acfg = cfg.aggregator
    by_qid = {r["qid"]: r for r in rows}
    lexicon = load_lexicon(cfg.sources[dataset].prompts)
    plan = []  # (query_id, members, kind)
    for vid in sorted(groups):
        for g in groups[vid]:
            members = [by_qid[q] for q in g]
            texts = unique([m["query"] for m in members])
            kind = "single" if len(g) == 1 else ("identical" if len(texts) == 1 else "llm")
            plan.append((f"{g[0]}#{level}", members, kind))
    check_overrides(overrides, plan, cfg, lexicon, device)
    need = [i for i, (_, _, kind) in enumerate(plan) if kind == "llm"]
    answers: dict[int, str] = {}
    capped: dict[int, bool | None] = {}
    if need:
        if llm is None:
            raise ValueError("aggregate_groups: groups with different member queries need an LLM")
        prompt = load_prompt(cfg.sources[dataset].prompts, "aggregate", level)
        got = agents.aggregate(llm, prompt, [unique([m["query"] for m in plan[i][1]]) for i in need],
                               GenParams(acfg.max_new_tokens), desc=f"aggregate {dataset} {level}")
        answers = {i: a.text for i, a in zip(need, got)}
        capped = {i: a.capped for i, a in zip(need, got)}
    all_texts = unique([answers[i] for i in need] + [m["query"] for i in need for m in plan[i][1]])
    emb = encode(all_texts, model=cfg.embedder.model, device=device, batch_size=cfg.embedder.batch_size) \
        if all_texts else np.zeros((0, 1), np.float32)
    row_of = {t: k for k, t in enumerate(all_texts)}
    out, review, decisions, flagged = [], [], [], []
    for i, (sid, members, kind) in enumerate(plan):
        if kind != "llm":
            generated, fallback, reasons = members[0]["query"], members[0]["query"], []
        else:
            generated = answers[i]
            mtexts = unique([m["query"] for m in members])
            memb = emb[[row_of[t] for t in mtexts]]
            fallback = shared_fallback(medoid(mtexts, memb), members, lexicon)
            cos = emb[[row_of[m["query"]] for m in members]] @ emb[row_of[generated]]
            reasons = check_representative(generated, members, lexicon, cos, acfg.min_cosine, capped[i],
                                           acfg.min_query_words)
        d = decide(sid, generated, fallback, reasons, acfg.policy, overrides)
        decisions.append(d)
        flagged.append(bool(reasons))
        out.append({"query_id": sid, "video_id": members[0]["video_id"], "split": members[0]["split"],
                    "text": d.text, "members": [m["qid"] for m in members], "kind": kind, "status": d.status,
                    "reasons": reasons, "generated": generated})
        if reasons:
            review.append({"id": sid, "video_id": members[0]["video_id"], "input": [m["query"] for m in members],
                           "generated": generated, "reasons": reasons, "fallback": fallback, "final": None})
    counts = status_counts(decisions, flagged)
    counts.update(groups=len(plan), multi_groups=sum(len(m) > 1 for _, m, _ in plan),
                  identical_groups=sum(k == "identical" for _, _, k in plan), llm_groups=len(need),
                  **wellformed.form_counts([o["reasons"] for o in out]))
    return out, review, counts
