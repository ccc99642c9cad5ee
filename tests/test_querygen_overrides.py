"""User review overrides read strictly: booleans, ids, malformed rows, and `final` texts validated like LLM output."""
import json
from pathlib import Path

import pytest

from pipeline.core.io import InputError
from pipeline.core.params import load_block
from pipeline.datasets.schema import Moment, VideoRecord, write_records
from pipeline.querygen import generate
from pipeline.querygen.aggregation import aggregate_groups
from pipeline.querygen.generate import check_overrides
from pipeline.querygen.params import QuerygenConfig
from pipeline.querygen.review import load_overrides

ROOT = Path(__file__).resolve().parents[1]
CAPTION = "A large blue star blinks slowly in the center."
ITEMS = [{"qid": "val/v/0", "video_id": "v", "split": "val", "caption": CAPTION},
         {"qid": "val/v/1", "video_id": "v", "split": "val", "caption": "A small red circle slides quickly."}]


def write_rows(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture()
def cfg():
    return load_block(QuerygenConfig, ROOT / "params.yaml")


def test_drop_must_be_a_boolean(tmp_path):
    rows = [{"id": "val/v/0", "drop": True}, "", {"id": "val/v/1", "drop": "false"}]  # line 2 is blank
    path = write_rows(tmp_path / "validate.jsonl", rows)
    with pytest.raises(InputError, match=r"validate.jsonl: line 3: 'drop' must be true or false, got str 'false'"):
        load_overrides(path)
    write_rows(path, [{"id": "val/v/0", "drop": False}, {"id": "val/v/1", "drop": True}])
    ov = load_overrides(path)
    assert list(ov) == ["val/v/1"] and ov["val/v/1"].drop and ov["val/v/1"].where.endswith("validate.jsonl: line 2")


@pytest.mark.parametrize("row,msg", [
    ('["val/v/0"]', "line 1: expected a JSON object with an 'id', got list"),
    ({"final": "A star blinks."}, "line 1: needs an 'id'"),
    ({"id": 0, "final": "A star blinks."}, "line 1: 'id' must be a non-empty string .* got int 0"),
    ({"id": None, "drop": True}, "line 1: 'id' must be a non-empty string"),
    ({"id": "val/v/0", "Final": "A star blinks."}, "line 1: unknown key\\(s\\) 'Final'"),
    ({"id": "val/v/0", "final": 5}, "line 1: 'final' must be null or a non-empty string, got int 5"),
    ({"id": "val/v/0", "final": "A star blinks.", "drop": True}, "line 1: sets both 'final' and \"drop\": true"),
    ('{"id": "val/v/0", "final": ', "line 1: invalid JSON"),
])
def test_malformed_rows_name_file_and_line(tmp_path, row, msg):
    path = write_rows(tmp_path / "validate.jsonl", [row])
    with pytest.raises(InputError, match="validate.jsonl: " + msg):
        load_overrides(path)


def test_duplicate_ids_and_non_utf8(tmp_path):
    path = write_rows(tmp_path / "validate.jsonl", [{"id": "a", "drop": True}, {"id": "a", "final": "x y"}])
    with pytest.raises(InputError, match="line 2: id 'a' already overridden on line 1"):
        load_overrides(path)
    path.write_bytes(b'{"id": "a", "final": "caf\xe9"}\n')
    with pytest.raises(InputError, match="validate.jsonl: not UTF-8"):
        load_overrides(path)


def test_untouched_generated_rows_are_accepted(tmp_path):
    generated = {"id": "val/v/0", "video_id": "v", "input": CAPTION, "generated": "blue", "reasons": ["x"],
                 "llm_verdict": "yes", "fallback": CAPTION, "final": None}
    assert load_overrides(write_rows(tmp_path / "validate.jsonl", [generated])) == {}


def test_unknown_ids_are_all_listed(tmp_path, cfg):
    path = write_rows(tmp_path / "validate.jsonl", [{"id": "val/v/0", "drop": True}, {"id": "val/v/7", "drop": True},
                                                    {"id": "val/v/9", "final": "A star blinks."}])
    with pytest.raises(InputError, match=r"validate.jsonl: 2 override id\(s\) match no caption query id: "
                                         r"'val/v/7' \(line 2\), 'val/v/9' \(line 3\)"):
        check_overrides(load_overrides(path), ITEMS, cfg, "synth_captions")


def test_final_text_is_validated_like_llm_output(tmp_path, cfg):
    path = write_rows(tmp_path / "validate.jsonl", [{"id": "val/v/1", "final": "A red circle slides."},
                                                    {"id": "val/v/0", "final": "blue"}])
    with pytest.raises(InputError, match=r"validate.jsonl: line 2: 'final' 'blue' of 'val/v/0' fails validation: "
                                         r"fragment: 1 word\(s\) < 2"):
        check_overrides(load_overrides(path), ITEMS, cfg, "synth_captions")
    write_rows(path, [{"id": "val/v/0", "final": "A large green star blinks."}])
    with pytest.raises(InputError, match="line 1: .*ungrounded_words: green"):
        check_overrides(load_overrides(path), ITEMS, cfg, "synth_captions")
    # good texts pass, including the caption itself (what the fallback policy would use)
    write_rows(path, [{"id": "val/v/0", "final": CAPTION}, {"id": "val/v/1", "final": "Something slides."}])
    check_overrides(load_overrides(path), ITEMS, cfg, "synth_captions")


def test_aggregate_overrides_checked(tmp_path, cfg):
    rows = [{"qid": q, "video_id": "v", "split": "val", "caption": f"A {size} red circle slides.",
             "query": "A red circle slides."} for q, size in (("a", "small"), ("b", "large"))]
    groups = {"v": [["a", "b"]]}
    path = write_rows(tmp_path / "aggregate.jsonl", [{"id": "a#S1", "final": "A red circle slides."}])
    with pytest.raises(InputError, match=r"aggregate.jsonl: 1 override id\(s\) match no search query id .*'a#S1'"):
        aggregate_groups(rows, groups, cfg, "synth_captions", "S2", None, load_overrides(path))
    write_rows(path, [{"id": "a#S2", "final": "A red red circle slides."}])
    with pytest.raises(InputError, match="aggregate.jsonl: line 1: .*repetition: 'red' x2"):
        aggregate_groups(rows, groups, cfg, "synth_captions", "S2", None, load_overrides(path))
    write_rows(path, [{"id": "a#S2", "final": "A circle slides."}])
    out, _, _ = aggregate_groups(rows, groups, cfg, "synth_captions", "S2", None, load_overrides(path))
    assert (out[0]["text"], out[0]["status"]) == ("A circle slides.", "overridden")


def test_generate_stage_stops_with_one_line_before_the_llm(tmp_path, capsys):
    canonical = tmp_path / "c.jsonl"
    write_records(canonical, [VideoRecord("v", "synth_captions", "val", 10.0,
                                          moments=[Moment("m0", 1.0, 2.0, text=CAPTION, query_id="val/v/0")])])
    reviews = tmp_path / "reviews"
    user = reviews / "synth_captions" / "S1" / "validate.jsonl"
    user.parent.mkdir(parents=True)
    args = ["--dataset", "synth_captions", "--level", "S1", "--params", str(ROOT / "params.yaml"),
            "--canonical", str(canonical), "--reviews", str(reviews), "--out", str(tmp_path / "out")]
    for rows, msg in [([{"id": "val/v/0", "drop": "false"}], "line 1: 'drop' must be true or false"),
                      ([{"id": "val/v/00", "drop": True}], "match no caption query id: 'val/v/00' (line 1)")]:
        write_rows(user, rows)
        assert generate.main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and str(user) in err[0] and msg in err[0]
    assert not (tmp_path / "out").exists()
