"""Form check of LLM queries (truncated, degenerate, fragments) and the truncation flag from backend to cache."""
import sqlite3
from pathlib import Path

import pytest
import yaml

from pipeline.core.params import ConfigError, load_block
from pipeline.querygen import agents
from pipeline.querygen.aggregation import aggregate_groups
from pipeline.querygen.generate import validate_rows
from pipeline.querygen.llm import CachedLLM, Completion, GenParams, GenStats, LLMCache, capped_rows
from pipeline.querygen.params import QuerygenConfig
from pipeline.querygen.prompts import PROMPTS_DIR, load_lexicon, load_prompt
from pipeline.querygen.wellformed import form_counts, form_reasons

ROOT = Path(__file__).resolve().parents[1]
LEX = load_lexicon("synth")
CAPTION = "A large blue star blinks slowly in the center."


def reasons(text, capped=None, context=(CAPTION,), min_words=2):
    return form_reasons(text, capped, list(context), LEX, min_words)


@pytest.mark.parametrize("text,code", [
    ("blue", "fragment: 1 word(s) < 2"),
    ("A large blue", "fragment: no action word"),
    ("A star star star star star star", "repetition: 'star' x6"),
    ("A large blue star blinks slowly in the", "truncated: ends on 'the'"),
    ("A red circle red circle slides", "repetition: 'red circle' x2"),
    ("A star blinks, a star spins, a star slides", "repetition: 'star' x3"),
    ("A large blue star blinks slowly;", "truncated: ends on ';'"),
])
def test_issue_examples_rejected(text, code):
    assert code in reasons(text)


def test_token_cap_flag_rejects_even_a_clean_looking_text():
    """A rewrite cut at max_new_tokens may end on a full word; only the backend's flag tells."""
    assert reasons("A large blue star blinks slowly", capped=True) == ["truncated: max_new_tokens"]
    assert reasons("A large blue star blinks slowly", capped=False) == []


@pytest.mark.parametrize("text,context", [
    ("Something slides.", ["A small red circle slides quickly."]),
    ("A purple circle turns orange.", ["A small purple circle turns orange quickly."]),
    ("Something fades in", ["A small green square fades in slowly."]),  # a particle may end a query
    ("season food", ["add salt and pepper to the pan"]),  # imperative narration
    ("People play tennis.", ["Two men are playing tennis on a court."]),  # stem of a caption verb
    ("Pick up something", ["Pick up a tissue from the plate."]),
])
def test_valid_queries_pass(text, context):
    assert reasons(text, context=context) == []


def test_every_packaged_few_shot_answer_is_well_formed():
    """No false positive on the prompts' own example answers, for every prompt set and level."""
    for pset in ("synth", "yc2", "anc", "hdepic"):
        lex = load_lexicon(pset)
        for agent in ("rewrite", "aggregate"):
            doc = yaml.safe_load((PROMPTS_DIR / pset / f"{agent}.yaml").read_text())
            for level, spec in doc["levels"].items():
                for ex in spec["examples"]:
                    *ctx, answer = [str(v) for v in ex.values()]
                    assert form_reasons(answer, None, ctx, lex, 2) == [], (pset, agent, level, answer)


def test_min_query_words_knob_range(tmp_path):
    assert reasons("Something slides.", min_words=3) == ["fragment: 2 word(s) < 3"]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, value, msg in [("min_query_words", 0, "querygen.validator.min_query_words: must be ≥ 1, got 0"),
                            ("min_query_words", 11, "querygen.validator.min_query_words: must be ≤ 10, got 11")]:
        params["querygen"]["validator"][key] = value
        path = tmp_path / "p.yaml"
        path.write_text(yaml.safe_dump(params))
        with pytest.raises(ConfigError, match=msg):
            load_block(QuerygenConfig, path)


@pytest.mark.parametrize("block,key,value,msg", [
    (None, "group_threshold", 1.5, "querygen.group_threshold: must be ≤ 1, got 1.5"),
    ("llm", "batch_size", 0, "querygen.llm.batch_size: must be ≥ 1, got 0"),
    ("llm", "gpu_memory_utilization", 0.0, "querygen.llm.gpu_memory_utilization: must be > 0"),
    ("rewriter", "max_new_tokens", 0, "querygen.rewriter.max_new_tokens: must be ≥ 1"),
    ("validator", "min_cosine", -0.2, "querygen.validator.min_cosine: must be ≥ 0"),
    ("aggregator", "min_cosine", 2.0, "querygen.aggregator.min_cosine: must be ≤ 1"),
    ("embedder", "batch_size", -1, "querygen.embedder.batch_size: must be ≥ 1"),
])
def test_numeric_knobs_range_checked(tmp_path, block, key, value, msg):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    (params["querygen"][block] if block else params["querygen"])[key] = value
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match=msg):
        load_block(QuerygenConfig, path)


class Scripted:
    model_id = "scripted"

    def __init__(self, answer):
        self.answer = answer
        self.stats = GenStats()

    def generate(self, prompts, params):
        return [self.answer(p) for p in prompts]


def test_junk_rewrites_go_to_review_with_reasons(tmp_path):
    cfg = load_block(QuerygenConfig, ROOT / "params.yaml")
    junk = ["blue", "A large blue", "A star star star star star star", "A large blue star blinks slowly in the"]
    rows = [{"qid": f"q{i}", "video_id": "v", "split": "val", "caption": CAPTION, "rewrite": t}
            for i, t in enumerate(junk)]
    rows.append({"qid": "q9", "video_id": "v", "split": "val", "caption": CAPTION,
                 "rewrite": "A blue star blinks", "capped": True})  # cut at the cap on a word boundary
    llm = CachedLLM("yes", lambda: Scripted(lambda p: " yes\n"), LLMCache(tmp_path / "c.sqlite"))
    out, review, counts = validate_rows(rows, cfg, "synth_captions", "S2", llm, {})
    assert [o["status"] for o in out] == ["fallback"] * 5
    assert all(o["query"] == CAPTION and "capped" not in o for o in out)
    assert [r["id"] for r in review] == ["q0", "q1", "q2", "q3", "q9"]
    assert "truncated: max_new_tokens" in review[4]["reasons"]
    assert "truncated: ends on 'the'" in review[3]["reasons"]
    assert counts["truncated"] == 2 and counts["repetitive"] == 1 and counts["fragment"] >= 2


def test_capped_flag_from_backend_through_cache_and_agents(tmp_path):
    """Backend-reported flag is stored; legacy rows (no column) and plain-string backends are judged by text."""
    path = tmp_path / "c.sqlite"
    db = sqlite3.connect(str(path))  # a cache written before the flag existed
    db.execute("CREATE TABLE answers (key TEXT PRIMARY KEY, model TEXT, answer TEXT)")
    params = GenParams(max_new_tokens=4, stop=("\n",))
    db.execute("INSERT INTO answers VALUES (?, ?, ?)", (LLMCache.key("m", "old-cut", params), "m", " A star blinks"))
    db.execute("INSERT INTO answers VALUES (?, ?, ?)", (LLMCache.key("m", "old-done", params), "m", " A star.\n"))
    db.commit()
    db.close()
    answers = {"new-cut": Completion(" A red star", True), "new-done": Completion(" A red star\n", False),
               "plain": " A red"}
    llm = CachedLLM("m", lambda: Scripted(lambda p: answers[p]), LLMCache(path))
    got = llm.complete(["old-cut", "old-done", "new-cut", "new-done", "plain"], params)
    assert [c.capped for c in got] == [True, False, True, False, True]
    assert got[2].text == "A red star"
    # an older checkout writes 3-column rows into the same file: still possible
    LLMCache(path).db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?)", ("k", "m", "x"))
    again = CachedLLM("m", lambda: pytest.fail("backend built"), LLMCache(path))  # all from the cache now
    assert [c.capped for c in again.complete(["new-cut", "new-done"], params)] == [True, False]
    fs = load_prompt("synth", "rewrite", "S2")
    fixed = CachedLLM("f", lambda: Scripted(lambda p: Completion(' "A red star slides', True)), LLMCache(path))
    assert agents.rewrite(fixed, fs, ["cap"], params) == [Completion("A red star slides", True)]


def test_capped_rows_of_a_transformers_batch():
    params = GenParams(max_new_tokens=3, stop=("\n",))
    rows = [[5, 6, 7], [5, 9, 0], [5, 1, 0], [5, 6, 8]]  # 0 = pad, 1 = eos
    texts = ["a b c", "a\n", "a", "a b\n"]
    assert capped_rows(rows, texts, {0, 1}, params) == [True, False, False, False]
    assert capped_rows([[5, 6]], ["a b"], {0, 1}, params) == [False]  # the whole batch stopped early


def test_truncated_representative_flagged(tmp_path):
    cfg = load_block(QuerygenConfig, ROOT / "params.yaml")
    rows = [{"qid": "c", "video_id": "v", "split": "val", "caption": "A blue star spins.",
             "query": "A blue star spins."},
            {"qid": "d", "video_id": "v", "split": "val", "caption": "A blue square spins.",
             "query": "A blue square spins."}]
    cut = CachedLLM("cut", lambda: Scripted(lambda p: Completion(" A blue shape spins", True)),
                    LLMCache(tmp_path / "c.sqlite"))
    out, review, counts = aggregate_groups(rows, {"v": [["c", "d"]]}, cfg, "synth_captions", "S2", cut, {})
    assert out[0]["status"] == "fallback" and review[0]["reasons"] == ["truncated: max_new_tokens"]
    assert counts["truncated"] == 1


def test_form_counts():
    assert form_counts([["truncated: x"], ["repetition: 'a' x3", "fragment: no action word"], []]) == {
        "truncated": 1, "repetitive": 1, "fragment": 1}
