"""Stage workers with a fake LLM (prepare, validate, group, aggregate, oracle), the stages' exit codes and the DVC
stage split."""
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
from pipeline.querygen import build, generate, oracle_score
from pipeline.querygen.aggregation import aggregate_groups
from pipeline.querygen.generate import prepare, validate_rows
from pipeline.querygen.grouping import group_rows
from pipeline.querygen.oracle_score import score

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


def test_stage_errors_exit_2(tmp_path, capsys):
    """Bad params or input: one line `error: ...` on stderr and exit code 2, before any model loads."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["querygen"]["group_threshold"] = "high"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(params))
    common = ["--dataset", "synth_captions", "--level", "S1"]
    out = ["--reviews", str(tmp_path), "--out", str(tmp_path / "out")]
    assert generate.main(common + ["--params", str(bad), "--canonical", str(tmp_path / "x.jsonl")] + out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "querygen.group_threshold" in err[0]
    good = ["--params", str(ROOT / "params.yaml")]
    assert generate.main(["--dataset", "nope", "--level", "S1"] + good
                         + ["--canonical", str(tmp_path / "x.jsonl")] + out) == 2
    assert "querygen.sources" in capsys.readouterr().err
    assert generate.main(["--dataset", "synth_captions", "--level", "S9"] + good
                         + ["--canonical", str(tmp_path / "x.jsonl")] + out) == 2
    assert "querygen.levels" in capsys.readouterr().err
    assert generate.main(common + good + ["--canonical", str(tmp_path / "missing.jsonl")] + out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.jsonl" in err[0]
    assert build.main(common + good + ["--generated", str(tmp_path / "none"), "--benchmark", str(tmp_path / "b"),
                                       "--metrics", str(tmp_path / "m.json")] + out) == 2
    assert "none" in capsys.readouterr().err
    assert oracle_score.main(common + good + ["--oracle", str(tmp_path), "--generated", str(tmp_path),
                                              "--built", str(tmp_path), "--metrics", str(tmp_path / "m.json")]) == 2
    assert "groups.json" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "m.json").exists()


def test_dvc_stage_split():
    """group_threshold is read from `build` on; `generate` (the LLM rewrites) never sees it; each stage's params
    are the keys its module says it reads; the benchmark and metrics paths stay the interface."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert {n for n in stages if n.startswith("querygen")} == {"querygen_generate", "querygen_build", "querygen_oracle"}
    gen, bld = stages["querygen_generate"], stages["querygen_build"]
    assert "querygen.group_threshold" not in gen["params"] and "querygen.group_threshold" in bld["params"]
    assert set(gen["params"]) == {"querygen.sources.${item.dataset}", "querygen.llm", "querygen.rewriter",
                                  "querygen.validator", "querygen.embedder", "runtime.device", "runtime.threads"}
    assert set(bld["params"]) == {"querygen.group_threshold", "querygen.embedder", "querygen.llm",
                                  "querygen.aggregator", "querygen.sources.${item.dataset}.prompts",
                                  "runtime.device", "runtime.threads"}
    for name, module in (("querygen_generate", generate), ("querygen_build", build), ("querygen_oracle", oracle_score)):
        doc = module.__doc__.split("Params read:")[1].split("``.")[0] + "``"  # the sentence naming the keys
        keys = {k.replace("<dataset>", "${item.dataset}") for k in doc.split("``")[1::2]}
        assert keys == set(stages[name]["params"]), name
    for stage in (gen, bld):
        assert "pipeline/querygen/prompts" in stage["deps"] and "data/querygen_reviews" in stage["deps"]
    assert "data/querygen/${item.dataset}/${item.level}/generate" in bld["deps"]
    assert "data/benchmarks/${item.dataset}/${item.level}" in bld["outs"]
    assert list(bld["metrics"][0]) == ["reports/metrics/querygen/${item.dataset}_${item.level}.json"]
    assert "querygen_oracle" in stages and "${querygen.oracle.datasets}" == stages["querygen_oracle"]["matrix"]["dataset"]
