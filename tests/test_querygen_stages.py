"""Stage workers with a fake LLM (validate, group, aggregate, oracle, prepare) and the DVC stage split."""
import dataclasses
from pathlib import Path

import pytest
import yaml

from pipeline.querygen.params import QuerygenSource, QuerygenWindow
from pipeline.core.params import load_block
from pipeline.querygen.params import QuerygenConfig
from pipeline.datasets.schema import Moment, VideoRecord
from pipeline.querygen.llm import CachedLLM, GenStats, LLMCache
from pipeline.querygen.oracle import (
    caption_index,
    grouping_scores,
    rewrite_scores,
    token_f1,
)
from pipeline.querygen.aggregate import aggregate_groups
from pipeline.querygen.group import group_rows
from pipeline.querygen.oracle_score import score
from pipeline.querygen.prepare import prepare
from pipeline.querygen.validate import validate_rows

ROOT = Path(__file__).resolve().parents[1]


class Scripted:
    """Fake backend answering from a function of the prompt's last line."""

    model_id = "scripted"

    def __init__(self, answer):
        self.answer = answer
        self.stats = GenStats()

    def generate(self, prompts, params):
        return [self.answer(p) for p in prompts]


def fake_llm(tmp_path, answer, name="scripted"):
    return CachedLLM(name, lambda: Scripted(answer), LLMCache(tmp_path / f"{name}.sqlite"))


@pytest.fixture()
def cfg():
    return load_block(QuerygenConfig, ROOT / "params.yaml")


ROWS = [
    {"qid": "train/v1/0", "video_id": "v1", "split": "train", "caption": "A small red circle slides quickly at the top.",
     "rewrite": "A red circle slides."},
    {"qid": "train/v1/1", "video_id": "v1", "split": "train", "caption": "A large red circle slides slowly on the left.",
     "rewrite": "A red circle slides."},
    {"qid": "train/v1/2", "video_id": "v1", "split": "train", "caption": "A small blue star spins clockwise.",
     "rewrite": "A green star spins."},  # hallucinated colour
    {"qid": "train/v1/3", "video_id": "v1", "split": "train", "caption": "A large yellow square blinks slowly.",
     "rewrite": "A large yellow square blinks slowly."},  # under-specifies nothing
]


def test_validate_flags_and_policies(tmp_path, cfg):
    llm = fake_llm(tmp_path, lambda p: " yes\n")
    out, review, counts = validate_rows(ROWS, cfg, "synth_captions", "S2", llm, {})
    status = {o["qid"]: o["status"] for o in out}
    assert status == {"train/v1/0": "ok", "train/v1/1": "ok", "train/v1/2": "fallback", "train/v1/3": "fallback"}
    assert out[2]["query"] == ROWS[2]["caption"] and any("green" in r for r in out[2]["reasons"])
    assert out[3]["reasons"] == ["not_underspecified"]
    assert [r["id"] for r in review] == ["train/v1/2", "train/v1/3"]
    assert counts["flagged"] == 2 and counts["fallback"] == 2 and counts["llm_rejected"] == 0
    # enforce: an LLM "no" flags an otherwise grounded rewrite; drop removes flagged items
    strict = dataclasses.replace(cfg, validator=dataclasses.replace(cfg.validator, llm_verdict="enforce", policy="drop"))
    no_llm = fake_llm(tmp_path, lambda p: " no\n", name="naysayer")
    out, _, counts = validate_rows(ROWS[:1], strict, "synth_captions", "S2", no_llm, {})
    assert out[0]["query"] is None and out[0]["reasons"] == ["llm_verdict: no"] and counts["dropped"] == 1


def test_group_and_aggregate(tmp_path, cfg):
    rows = [
        {"qid": "a", "video_id": "v", "split": "val", "caption": "A small red circle slides.", "query": "A red circle slides."},
        {"qid": "b", "video_id": "v", "split": "val", "caption": "A large red circle slides.", "query": "A red circle slides."},
        {"qid": "c", "video_id": "v", "split": "val", "caption": "A blue star spins.", "query": "A blue star spins."},
        {"qid": "d", "video_id": "v", "split": "val", "caption": "A blue square spins.", "query": "A blue square spins."},
        {"qid": "e", "video_id": "w", "split": "val", "caption": "x", "query": None},  # dropped earlier
    ]
    groups = group_rows(rows, cfg.group_threshold)
    assert groups["v"][0] == ["a", "b"] and "w" not in groups
    # force c and d together to exercise the aggregator and its member check
    groups = {"v": [["a", "b"], ["c", "d"]]}
    good = fake_llm(tmp_path, lambda p: " A blue shape spins.\n")
    out, review, counts = aggregate_groups(rows, groups, cfg, "synth_captions", "S2", good, {})
    assert [(o["query_id"], o["text"], o["kind"]) for o in out] == [
        ("a#S2", "A red circle slides.", "identical"), ("c#S2", "A blue shape spins.", "llm")]
    assert review == [] and counts["llm_groups"] == 1 and counts["fallback"] == 0
    # an answer that is not grounded in every member falls back to the medoid member query
    bad = fake_llm(tmp_path, lambda p: " A blue star spins.\n", name="bad")
    out, review, counts = aggregate_groups(rows, groups, cfg, "synth_captions", "S2", bad, {})
    # fallback: the medoid member query without the words another member does not support
    assert out[1]["status"] == "fallback" and out[1]["text"] == "A blue spins."
    assert review[0]["id"] == "c#S2" and "ungrounded_in d: star" in review[0]["reasons"][0]
    assert review[0]["fallback"] == "A blue spins."


def test_oracle_scores():
    assert token_f1("A red circle slides.", "a red circle slides") == 1.0
    assert rewrite_scores([("a red circle", "a red circle"), ("a circle", "a red circle slides")])["exact"] == 0.5
    assert caption_index("val/v_anc1/12") == 12
    gold = {"v": [["a", "b"], ["c"]]}
    assert grouping_scores({"v": [["a", "b"], ["c"]]}, gold)["ari"] == 1.0
    assert grouping_scores({"v": [["a"], ["b"], ["c"]]}, gold)["ari"] < 1.0
    under = {"v": [{"index": 0, "caption": "A red circle slides fast.", "S1": "A red circle slides."},
                   {"index": 1, "caption": "A red circle slides slowly.", "S1": "A red circle slides."}]}
    rows = [{"qid": "val/v/0", "video_id": "v", "caption": "A red circle slides fast.", "rewrite": "A red circle slides.",
             "query": "A red circle slides."},
            {"qid": "val/v/1", "video_id": "v", "caption": "A red circle slides slowly.", "rewrite": "A circle.",
             "query": "A red circle slides slowly."}]
    m = score(rows, {"v": [["val/v/0"], ["val/v/1"]]}, under, {"v": [[0, 1]]}, "S1", 0.85)
    assert m["rewrite"]["exact"] == 0.5 and m["grouping_oracle_text"]["ari"] == 1.0


def test_prepare_limits_and_windows():
    recs = [VideoRecord(video_id=f"v{i}", dataset="d", split=s, duration=400.0,
                        moments=[Moment(f"m{i}", 1.0, 2.0, text="t", query_id=f"q{i}"),
                                 Moment(f"n{i}", 300.0, 310.0, label="x")])  # a label-only moment is not a caption
            for i, s in enumerate(["train", "train", "val"])]
    out = prepare(recs, QuerygenSource(prompts="synth", max_videos=1))
    assert [r.video_id for r in out] == ["v0", "v2"] and all(len(r.moments) == 1 for r in out)
    win = prepare(recs, QuerygenSource(prompts="synth", window=QuerygenWindow(frames=500, fps=3.0)))
    assert [r.video_id for r in win] == ["v0_w0", "v1_w0", "v2_w0"]


def test_dvc_stage_split():
    """group_threshold is read from `group` on; rewrite/validate never see it; prompts are rewrite deps."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    params = {name: stages[name].get("params", []) for name in stages if name.startswith("querygen_")}
    assert "querygen.group_threshold" not in params["querygen_rewrite"] + params["querygen_validate"]
    assert "querygen.group_threshold" in params["querygen_group"]
    assert "querygen.llm" in params["querygen_rewrite"] and "querygen.rewriter" in params["querygen_rewrite"]
    assert "pipeline/querygen/prompts" in stages["querygen_rewrite"]["deps"]
    assert "data/querygen/${item.dataset}/${item.level}/group" in stages["querygen_aggregate"]["deps"]
    assert "querygen_oracle" in stages and "${querygen.oracle.datasets}" == stages["querygen_oracle"]["matrix"]["dataset"]
