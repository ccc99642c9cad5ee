"""Form check of an LLM query (rewrite or representative): truncated, degenerate or too short to be a query.

The grounding check (``grounding``) asks whether a query says only what the caption says; this one asks whether
it is a query at all. It returns reason codes (empty = well formed), recorded in the review files:

* ``truncated: max_new_tokens`` — the backend stopped generating at the token cap before the answer's stop
  string (``llm.Completion.capped``), so the text is cut wherever the cap fell;
* ``truncated: ends on '<word>'`` — text-level sign of a cut: the query ends on a word that cannot end an
  English phrase (an article, a possessive determiner, a preposition that is not a verb particle, a
  conjunction, an auxiliary: "… blinks slowly in the"), or on a comma, semicolon, colon or dash. Particles that
  end phrasal verbs ("fades in", "pick up", "turns off") are deliberately not in the list;
* ``repetition: '<n-gram>' xN`` — degenerate looping: a 1- to 4-word n-gram repeated back to back ("star
  star", "red circle red circle") or a content word used more than ``MAX_WORD_REPEATS`` times;
* ``fragment: N word(s) < M`` — fewer than ``validator.min_query_words`` words outside the stopword list
  (generic words such as "something" count: they stand for the subject a vague query drops), so "blue" fails
  and "Something slides." passes at the default 2;
* ``fragment: no action word`` — a moment query names what happens, so it needs a predicate. Without a tagger
  a word counts as one when it is an auxiliary or copula ("is"), carries a verbal inflection (-ing, -ed, a
  third-person -s/-es: "slides", "turned", "spinning"), shares its stem with such a word of the context
  (caption "are playing" → query "play"), is a configured hypernym of one ("exercise" ⊃ "lifting"), or is the
  query's first word when a context sentence starts with a non-stopword (imperative narrations: "season food"
  for "add salt and pepper"). "A large blue" has none and fails; so does a bare noun phrase ("A blue circle"),
  which names no moment.
"""
from __future__ import annotations

import re

from pipeline.querygen.grounding import STOPWORDS, stem, words
from pipeline.querygen.prompts import Lexicon

MAX_WORD_REPEATS = 2  # a content word may occur twice ("add salt … the salt"), a third time is looping
MAX_NGRAM = 4  # longest n-gram checked for back-to-back repetition

AUXILIARIES = frozenset("is are was were be been being am has have had do does did can could will would shall "
                        "should may might must".split())
# words that cannot end a phrase: articles, possessive determiners, pure prepositions, conjunctions, auxiliaries
DANGLING = AUXILIARIES | frozenset("""
a an the my your his its our their whose every each another
of to from into onto at with by for near toward towards between than as via per
and or but nor while because if
very
""".split())
_CUT_PUNCT = re.compile(r"[,;:\-–—(]\s*$")


def truncation_reason(text: str, capped: bool | None) -> str | None:
    """``truncated: …`` when the backend hit the token cap or the text ends like a cut sentence; else None."""
    if capped:
        return "truncated: max_new_tokens"
    if _CUT_PUNCT.search(text):
        return f"truncated: ends on {text.rstrip()[-1]!r}"
    toks = words(text)
    if toks and toks[-1] in DANGLING:
        return f"truncated: ends on {toks[-1]!r}"
    return None


def repetition_reason(text: str) -> str | None:
    """``repetition: '<n-gram>' xN`` for back-to-back repeats or an over-used content word; else None."""
    toks = words(text)
    for n in range(1, MAX_NGRAM + 1):
        for i in range(len(toks) - 2 * n + 1):
            if toks[i:i + n] == toks[i + n:i + 2 * n]:
                gram = toks[i:i + n]
                count = sum(toks[j:j + n] == gram for j in range(len(toks) - n + 1))
                return f"repetition: {' '.join(gram)!r} x{count}"
    for w in dict.fromkeys(toks):
        if w not in STOPWORDS and toks.count(w) > MAX_WORD_REPEATS:
            return f"repetition: {w!r} x{toks.count(w)}"
    return None


def verb_like(word: str) -> bool:
    """True for an auxiliary or a word with a verbal inflection (-ing, -ed, third-person -s/-es)."""
    w = word.lower()
    if w in AUXILIARIES:
        return True
    if len(w) > 4 and w.endswith("ing"):
        return True
    if len(w) > 3 and w.endswith("ed"):
        return True
    return len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is", "ous"))


def has_action(text: str, context: list[str], lexicon: Lexicon) -> bool:
    """True when ``text`` has a predicate-like word (rule in the module docstring; ``context``: captions etc.)."""
    toks = words(text)
    ctx = [words(c) for c in context]
    ctx_verbs = {stem(w) for c in ctx for w in c if verb_like(w)}
    imperative = any(c and c[0] not in STOPWORDS for c in ctx)
    hyper_verbs = {stem(h) for h, hypos in lexicon.hypernyms.items()
                   if any(stem(w) in ctx_verbs for hypo in hypos for w in words(hypo))}
    for i, w in enumerate(toks):
        s = stem(w)
        if verb_like(w) or s in ctx_verbs or s in hyper_verbs:
            return True
        if i == 0 and imperative and w not in STOPWORDS:
            return True
    return False


def fragment_reason(text: str, context: list[str], lexicon: Lexicon, min_words: int) -> str | None:
    """``fragment: …`` when ``text`` has too few non-stopwords or no action word; else None."""
    n = sum(w not in STOPWORDS for w in words(text))
    if n < min_words:
        return f"fragment: {n} word(s) < {min_words}"
    if not has_action(text, context, lexicon):
        return "fragment: no action word"
    return None


def form_reasons(text: str, capped: bool | None, context: list[str], lexicon: Lexicon, min_words: int) -> list[str]:
    """Every form failure of ``text`` (empty list = a well-formed query); see the module docstring."""
    if not words(text):
        return []  # empty text: the grounding check reports it as empty_rewrite / empty_representative
    found = (truncation_reason(text, capped), repetition_reason(text),
             fragment_reason(text, context, lexicon, min_words))
    return [r for r in found if r]


def form_counts(reason_lists: list[list[str]]) -> dict[str, int]:
    """Items with at least one ``truncated`` / ``repetition`` / ``fragment`` reason, for the summary counts."""
    return {name: sum(any(r.startswith(f"{code}:") for r in rs) for rs in reason_lists)
            for name, code in (("truncated", "truncated"), ("repetitive", "repetition"), ("fragment", "fragment"))}
