"""The three LLM agents of the search-query pipeline (thesis Fig. 3.2), as batch functions.

* rewriter — caption → under-specified query, few-shot for the benchmark and level;
* validator — the LLM's yes/no verdict on (caption, rewrite); the deterministic half is ``grounding``;
* aggregator — the members' queries of one group → one representative query with their shared semantics.

Each function renders every prompt first and sends them to ``CachedLLM`` in one call, so batching, caching and
progress bars are handled in one place. The rewriter and the aggregator return ``Completion`` objects: the
cleaned query and whether its generation hit the token cap (for the form check, ``wellformed``).
"""
from __future__ import annotations

import re

from pipeline.querygen.llm import CachedLLM, Completion, GenParams
from pipeline.querygen.prompts import FewShot


def clean_query(text: str) -> str:
    """Normalise an LLM answer: one line, no quotes or list markers, collapsed spaces."""
    text = text.strip().splitlines()[0] if text.strip() else ""
    for _ in range(2):  # quotes around a list marker or a list marker before quotes
        text = re.sub(r"^(?:[-*•]|\d+[.)])\s+", "", text.strip().strip("\"'").strip())  # "1. ", "- " markers
    return re.sub(r"\s+", " ", text)


def rewrite(llm: CachedLLM, prompt: FewShot, captions: list[str], params: GenParams,
            desc: str = "rewrite") -> list[Completion]:
    """Under-specified rewrite of every caption (cleaned text, capped flag)."""
    field = prompt.fields[0]
    prompts = [prompt.render(**{field: c}) for c in captions]
    return [Completion(clean_query(c.text), c.capped) for c in llm.complete(prompts, params, desc=desc)]


def parse_verdict(text: str) -> str:
    """``yes`` / ``no`` from a validator answer, ``unparseable`` otherwise."""
    m = re.match(r"\W*(yes|no)\b", text.strip().lower())
    return m.group(1) if m else "unparseable"


def validate(llm: CachedLLM, prompt: FewShot, captions: list[str], queries: list[str], params: GenParams,
             desc: str = "validate") -> list[str]:
    """The LLM validator's verdict (yes | no | unparseable) for every (caption, query) pair."""
    cap_f, query_f = prompt.fields[0], prompt.fields[1]
    prompts = [prompt.render(**{cap_f: c, query_f: q}) for c, q in zip(captions, queries)]
    return [parse_verdict(t) for t in llm.generate(prompts, params, desc=desc)]


def aggregate(llm: CachedLLM, prompt: FewShot, groups: list[list[str]], params: GenParams,
              separator: str = "; ", desc: str = "aggregate") -> list[Completion]:
    """One representative query per group of member queries (cleaned text, capped flag)."""
    field = prompt.fields[0]
    prompts = [prompt.render(**{field: separator.join(g)}) for g in groups]
    return [Completion(clean_query(c.text), c.capped) for c in llm.complete(prompts, params, desc=desc)]
