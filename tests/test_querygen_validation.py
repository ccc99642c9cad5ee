"""Grounding check, review-file overrides and the fallback | drop | fail policies."""
import json

import pytest

from pipeline.core.io import InputError
from pipeline.querygen.grounding import (
    check,
    content_words,
    keeps_everything,
    stem,
    ungrounded_words,
)
from pipeline.querygen.prompts import Lexicon, load_lexicon
from pipeline.querygen.review import (
    ReviewRequired,
    decide,
    load_overrides,
    raise_if_flagged,
    status_counts,
)

LEX = Lexicon(generic=frozenset({"something"}),
              hypernyms={"shape": frozenset({"circle", "square"}), "move": frozenset({"slides", "jumps"})})
CAPTION = "A small red circle slides quickly from the left to the right near the top."


@pytest.mark.parametrize("a,b", [("slides", "sliding"), ("slide", "slides"), ("spins", "spinning"),
                                 ("onions", "onion"), ("berries", "berry"), ("bounces", "bouncing")])
def test_stem_conflates_inflections(a, b):
    assert stem(a) == stem(b)


@pytest.mark.parametrize("query", ["A red circle slides.", "Something slides.", "A red shape slides quickly.",
                                   "a circle is sliding", "Something moves."])
def test_grounded_rewrites_accepted(query):
    assert check(query, CAPTION, LEX, cosine=0.9, min_cosine=0.3).ok


@pytest.mark.parametrize("query,bad", [("A blue circle slides.", ["blue"]), ("A red square spins.", ["square", "spins"]),
                                       ("Something jumps.", ["jumps"])])
def test_ungrounded_words_rejected(query, bad):
    res = check(query, CAPTION, LEX, cosine=0.9, min_cosine=0.3)
    assert not res.ok and res.ungrounded == bad
    assert res.reasons[0].startswith("ungrounded_words")


def test_low_cosine_and_empty_rejected():
    assert check("A red circle slides.", CAPTION, LEX, cosine=0.1, min_cosine=0.3).reasons == ["low_cosine: 0.100 < 0.3"]
    assert "empty_rewrite" in check("", CAPTION, LEX, cosine=None, min_cosine=0.3).reasons


def test_hypernym_needs_a_hyponym_in_the_caption():
    # "shape" is accepted for a circle, not for a caption without any shape word
    assert ungrounded_words("a shape", ["a circle"], LEX) == []
    assert ungrounded_words("a shape", ["a star"], LEX) == ["shape"]


def test_keeps_everything():
    assert keeps_everything("a red circle slides", "A red circle slides.", LEX)
    assert not keeps_everything("a circle slides", "A red circle slides.", LEX)
    assert content_words("Something slides to the left", LEX) == ["slides", "left"]


def test_packaged_lexicon_loads():
    lex = load_lexicon("synth")
    assert "circle" in lex.hypernyms["shape"]


def test_policies():
    ok = decide("q1", "gen", "cap", [], "drop", {})
    assert (ok.text, ok.status) == ("gen", "ok")
    assert decide("q1", "gen", "cap", ["x"], "fallback", {}).text == "cap"
    d = decide("q1", "gen", "cap", ["x"], "drop", {})
    assert (d.text, d.status) == (None, "dropped")
    f = decide("q1", "gen", "cap", ["x"], "fail", {})
    assert f.status == "flagged"
    with pytest.raises(ReviewRequired, match="1 item"):
        raise_if_flagged([f.status, ok.status], "review.jsonl", "user.jsonl")
    raise_if_flagged([ok.status], "review.jsonl", "user.jsonl")  # nothing flagged: no error
    with pytest.raises(ValueError):
        decide("q1", "gen", "cap", [], "ignore", {})
    counts = status_counts([ok, d, f], [False, True, True])
    assert counts == {"items": 3, "flagged": 2, "ok": 1, "overridden": 0, "fallback": 0, "dropped": 1}


def test_review_override(tmp_path):
    path = tmp_path / "validate.jsonl"
    rows = [{"id": "q1", "generated": "bad", "final": "A circle slides."},
            {"id": "q2", "drop": True},
            {"id": "q3", "generated": "untouched", "final": None}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ov = load_overrides(path)
    assert set(ov) == {"q1", "q2"}
    # an override wins over the generated answer, flagged or not, and over the policy
    d = decide("q1", "gen", "cap", ["ungrounded_words: x"], "fail", ov)
    assert (d.text, d.status) == ("A circle slides.", "overridden")
    assert decide("q1", "gen", "cap", [], "fallback", ov).text == "A circle slides."
    assert decide("q2", "gen", "cap", [], "fallback", ov).status == "dropped"
    assert decide("q3", "gen", "cap", [], "fallback", ov).text == "gen"
    assert load_overrides(tmp_path / "missing.jsonl") == {}
    path.write_text(json.dumps({"id": "q1", "final": ""}) + "\n")
    with pytest.raises(InputError, match="line 1"):
        load_overrides(path)
