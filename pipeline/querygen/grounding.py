"""Deterministic grounding check of a rewrite against its caption (DESIGN §7, complementing the LLM validator).

A rewrite is grounded when

1. every content word of it (lowercase words minus stopwords and the lexicon's generic words, compared after a
   light suffix-stripping stemmer) appears in the caption, or is a configured hypernym of a caption word
   (``shape`` ⊃ ``circle``), and
2. the cosine between the sentence embeddings of rewrite and caption is ≥ ``min_cosine``.

``check`` returns the reasons it fails (empty = grounded), so review files can say why.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipeline.querygen.prompts import Lexicon

STOPWORDS = frozenset("""
a an the and or but nor so yet then than also again just only very too not no
of in on at to from into onto over under up down out off by with without for about around through across along
between near after before while during until since as like per via toward towards above below behind beside
inside outside upon within
is are was were be been being am do does did doing have has had having will would shall should can could may
might must get gets got getting
it its it's this that these those there here which who whom whose what when where why how
i me my we us our you your he him his she her they them their one ones some any all each every both other
another such same own more most less least few many much several
""".split())

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def words(text: str) -> list[str]:
    """Lowercase word tokens."""
    return _WORD.findall(text.lower())


def stem(word: str) -> str:
    """Light English suffix stripping, applied identically to both sides of a comparison.

    slides/sliding/slide → slid; bounces/bouncing → bounc; onions → onion; spinning → spin; berries → berry;
    fried → fry.
    """
    w = word.lower()
    if len(w) <= 3:
        return w
    if w.endswith(("ies", "ied")) and len(w) > 4:
        w = w[:-3] + "y"  # berries → berry, fried → fry
    elif w.endswith("ing") and len(w) > 5:
        w = w[:-3]
    elif w.endswith("ed") and len(w) > 4:
        w = w[:-2]
    elif w.endswith(("ches", "shes", "sses", "xes", "zes")):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouslz":
        w = w[:-1]  # spinn → spin, stirr → stir
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    return w


def content_words(text: str, lexicon: Lexicon) -> list[str]:
    """Words of ``text`` that must be grounded (stopwords and generic words removed), in order."""
    return [w for w in words(text) if w not in STOPWORDS and w not in lexicon.generic]


@dataclass
class GroundingResult:
    """Outcome of the check: ungrounded words, the cosine, and the failure reasons."""

    ungrounded: list[str] = field(default_factory=list)
    cosine: float | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return not self.reasons


def ungrounded_words(query: str, sources: list[str], lexicon: Lexicon) -> list[str]:
    """Content words of ``query`` found in none of ``sources`` (literally or as a hypernym of a source word)."""
    src_stems = {stem(w) for s in sources for w in words(s)}
    hyper = {stem(h): {stem(w) for hypo in hypos for w in words(hypo)} for h, hypos in lexicon.hypernyms.items()}
    generic = {stem(g) for g in lexicon.generic}
    bad = []
    for w in content_words(query, lexicon):
        s = stem(w)
        if s in src_stems or s in generic or s in STOPWORDS:
            continue
        if s in hyper and hyper[s] & src_stems:
            continue
        bad.append(w)
    return bad


def check(query: str, caption: str, lexicon: Lexicon, cosine: float | None, min_cosine: float) -> GroundingResult:
    """Grounding of ``query`` against ``caption``; ``cosine`` is their sentence-embedding similarity."""
    res = GroundingResult(ungrounded=ungrounded_words(query, [caption], lexicon), cosine=cosine)
    if not words(query):
        res.reasons.append("empty_rewrite")
    if res.ungrounded:
        res.reasons.append("ungrounded_words: " + ", ".join(res.ungrounded))
    if cosine is not None and cosine < min_cosine:
        res.reasons.append(f"low_cosine: {cosine:.3f} < {min_cosine}")
    return res


def keeps_everything(query: str, caption: str, lexicon: Lexicon) -> bool:
    """True when the query keeps every content word of the caption (so it under-specifies nothing)."""
    cap = {stem(w) for w in content_words(caption, lexicon)}
    qry = {stem(w) for w in content_words(query, lexicon)}
    return bool(cap) and cap <= qry
