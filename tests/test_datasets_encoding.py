"""Adapters on malformed files: non-UTF-8 bytes, byte-order marks, null ids/texts, short CSV rows."""
import json

import pytest

from fixtures_realformats import (write_anc, write_charades_ego, write_charades_sta, write_epic, write_hd_epic,
                                  write_qvh, write_tacos, write_youcook2)
from pipeline.core.io import InputError
from pipeline.datasets import (activitynet_captions, charades_ego, charades_sta, epic_kitchens_100, hd_epic,
                               qvhighlights, tacos, youcook2)
from pipeline.datasets.common import read_csv, read_text

QVH = qvhighlights.Options(splits={"train": "highlight_train_release.jsonl"})
STA = charades_sta.Options(splits={"train": "charades_sta_train.txt"}, durations=["Charades_v1_train.csv"])
HD_CSV = hd_epic.Options(narrations="HD_EPIC_Narrations.csv")

# adapter → (fixture writer, options, the annotation file given a Latin-1 "é" on a new last line)
CASES = {
    "epic_kitchens_100": (write_epic, epic_kitchens_100.Options(top_k_verbs=2), "EPIC_100_train.csv"),
    "epic_video_info": (write_epic, epic_kitchens_100.Options(top_k_verbs=2), "EPIC_100_video_info.csv"),
    "charades_ego": (write_charades_ego, charades_ego.Options(top_k_verbs=2), "CharadesEgo_v1_mapping.txt"),
    "hd_epic": (write_hd_epic, HD_CSV, "HD_EPIC_Narrations.csv"),
    "hd_epic_recipes": (write_hd_epic, hd_epic.Options(annotations="recipe_steps"), "complete_recipes.json"),
    "youcook2": (write_youcook2, youcook2.Options(), "youcookii_annotations_trainval.json"),
    "youcook2_fps": (write_youcook2, youcook2.Options(), "yc2_duration_frame.csv"),
    "activitynet_captions": (write_anc, activitynet_captions.Options(), "val_1.json"),
    "qvhighlights": (write_qvh, QVH, "highlight_train_release.jsonl"),
    "charades_sta": (write_charades_sta, STA, "charades_sta_train.txt"),
    "tacos": (write_tacos, tacos.Options(splits={"train": "train.json"}), "train.json"),
}
MODULES = {"epic_video_info": epic_kitchens_100, "hd_epic_recipes": hd_epic, "youcook2_fps": youcook2}


@pytest.mark.parametrize("case", sorted(CASES))
def test_non_utf8_file_is_one_error_naming_file_line_and_byte(tmp_path, case):
    writer, opts, fname = CASES[case]
    root = writer(tmp_path / case)
    path = root / fname
    data = path.read_bytes().rstrip(b"\n") + b"\n"
    path.write_bytes(data + "café\n".encode("latin-1"))
    module = MODULES.get(case) or globals()[case]
    with pytest.raises(InputError) as err:
        module.load(root, opts, "clip")
    line = data.count(b"\n") + 1
    assert str(err.value) == (f"{path}: line {line} (byte offset {len(data) + 3}): not UTF-8 text (byte 0xe9: "
                              "invalid continuation byte); save the file as UTF-8")


def test_csv_and_json_with_byte_order_mark_parse(tmp_path):
    root = write_epic(tmp_path / "epic")
    for name in ("EPIC_100_train.csv", "EPIC_100_video_info.csv", "EPIC_100_verb_classes.csv"):
        (root / name).write_bytes(b"\xef\xbb\xbf" + (root / name).read_bytes())
    recs, rep = epic_kitchens_100.load(root, epic_kitchens_100.Options(top_k_verbs=2), "clip")
    assert rep.summary()["moments"] == {"read": 14, "kept": 7, "dropped": 5, "filtered": 2}
    anc = write_anc(tmp_path / "anc")
    (anc / "train.json").write_bytes(b"\xef\xbb\xbf" + (anc / "train.json").read_bytes())
    recs, _ = activitynet_captions.load(anc, activitynet_captions.Options(), "clip")
    assert {r.video_id for r in recs} == {"v_a", "v_b", "v_c"}


def test_read_text_keeps_line_separators_inside_json_strings(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"q": "a\u2028b"}, ensure_ascii=False) + "\r\n{}\n", encoding="utf-8")
    from pipeline.datasets.common import text_lines
    assert [n for n, _ in text_lines(path)] == [1, 2] and "\u2028" in read_text(path)


@pytest.mark.parametrize("field", ["query", "vid", "qid"])
def test_qvh_null_fields_are_bad_rows_not_the_text_none(tmp_path, field):
    root = tmp_path / "qvh"
    root.mkdir()
    row = {"qid": 7, "query": "A man runs.", "vid": "x_0.0_10.0", "duration": 10, "relevant_windows": [[0, 2]]}
    ok = {**row, "qid": 8, "query": "A dog sits."}
    (root / "highlight_train_release.jsonl").write_text(json.dumps({**row, field: None}) + "\n" + json.dumps(ok) + "\n")
    recs, rep = qvhighlights.load(root, QVH, "drop")
    assert [m.text for r in recs for m in r.moments] == ["A dog sits."]
    assert [r.video_id for r in recs] == ["x_0.0_10.0"]
    (bad,) = rep.rows("malformed_row")
    assert bad["row"] == "line 1" and bad["file"] == "highlight_train_release.jsonl" and "None" in bad["detail"]
    assert rep.summary()["moments"] == {"read": 2, "kept": 1, "dropped": 1, "filtered": 0}
    with pytest.raises(InputError, match=r"highlight_train_release\.jsonl: line 1: malformed_row"):
        qvhighlights.load(root, QVH, "fail")


def test_null_ids_in_hd_epic_and_youcook2_are_bad_rows(tmp_path):
    pd = pytest.importorskip("pandas")
    root = write_hd_epic(tmp_path / "hd")
    frame = pd.read_csv(root / "HD_EPIC_Narrations.csv")
    frame.loc[0, "unique_narration_id"] = None  # pickled None / NaN must not become the id "None" / "nan"
    frame.loc[1, "narration"] = None
    frame.to_pickle(root / "HD_EPIC_Narrations.pkl")
    recs, rep = hd_epic.load(root, hd_epic.Options(), "drop")
    assert [r["row"] for r in rep.rows("malformed_row")] == ["row 0", "row 1"]
    assert all(m.moment_id not in ("None", "nan") for r in recs for m in r.moments)

    recipes = json.loads((root / "complete_recipes.json").read_text())
    recipes["P01_R01"]["captures"][0]["step_times"]["P01_R01_S01"][1]["video"] = None
    (root / "complete_recipes.json").write_text(json.dumps(recipes))
    recs, rep = hd_epic.load(root, hd_epic.Options(annotations="recipe_steps"), "drop")
    assert [r["row"] for r in rep.rows("malformed_row")] == ["P01_R01.captures[0].step_times.P01_R01_S01[1]"]

    yc = write_youcook2(tmp_path / "yc")
    db = json.loads((yc / "youcookii_annotations_trainval.json").read_text())
    db["database"]["yc_a"]["annotations"][0]["id"] = None
    (yc / "youcookii_annotations_trainval.json").write_text(json.dumps(db))
    recs, rep = youcook2.load(yc, youcook2.Options(), "drop")
    assert "yc_a.annotations[0]" in [r["row"] for r in rep.rows("malformed_row")]
    assert all(not m.moment_id.endswith("/None") for r in recs for m in r.moments)


@pytest.mark.parametrize("fname, append, line", [
    ("EPIC_100_video_info.csv", "P03_01,50.0\n", 5),
    ("EPIC_100_verb_classes.csv", "4\n", 6),
])
def test_short_row_in_epic_metadata_is_an_error_naming_file_and_line(tmp_path, fname, append, line):
    root = write_epic(tmp_path / "epic")
    (root / fname).write_text((root / fname).read_text() + append)
    with pytest.raises(InputError, match=rf"{fname}: line {line}: \d field\(s\), the header has 4: no value for"):
        epic_kitchens_100.load(root, epic_kitchens_100.Options(top_k_verbs=2), "clip")


def test_short_annotation_rows_are_bad_rows(tmp_path):
    root = write_epic(tmp_path / "epic")
    path = root / "EPIC_100_validation.csv"
    path.write_text(path.read_text() + "P02_01_9,P02,P02_01\n")  # line 5: 3 of 15 fields
    recs, rep = epic_kitchens_100.load(root, epic_kitchens_100.Options(top_k_verbs=2), "drop")
    assert rep.rows("malformed_row")[-1]["row"] == "line 5" and "3 field(s), the header has 15" in \
        rep.rows("malformed_row")[-1]["detail"]
    assert rep.summary()["moments"]["read"] == 15
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:3] + lines[4:]) + "\n")  # without the bad verb_class: the short row is line 4
    with pytest.raises(InputError, match=r"EPIC_100_validation\.csv: line 4: malformed_row: 3 field\(s\)"):
        epic_kitchens_100.load(root, epic_kitchens_100.Options(splits={"train": "EPIC_100_validation.csv"}), "fail")

    ce = write_charades_ego(tmp_path / "ce")
    (ce / "CharadesEgo_v1_test.csv").write_text((ce / "CharadesEgo_v1_test.csv").read_text() + "007ZZ,S3\n")
    _, rep = charades_ego.load(ce, charades_ego.Options(top_k_verbs=2), "clip")
    assert [r["row"] for r in rep.rows("malformed_row") if r["file"] == "CharadesEgo_v1_test.csv"] == ["line 3"]

    hd = write_hd_epic(tmp_path / "hd")
    (hd / "HD_EPIC_Narrations.csv").write_text((hd / "HD_EPIC_Narrations.csv").read_text() + "x,P01\n")
    _, rep = hd_epic.load(hd, HD_CSV, "drop")
    assert [r["row"] for r in rep.rows("malformed_row")] == ["line 6"]


def test_read_csv_extra_values_and_callback(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("a,b\n1,2\n3,4,5\n6\n")
    with pytest.raises(InputError, match=r"a\.csv: line 3: 3 field\(s\), the header has 2: extra values"):
        list(read_csv(path, ("a", "b")))
    seen = []
    rows = list(read_csv(path, ("a", "b"), bad=lambda line, detail: seen.append((line, detail))))
    assert rows == [(2, {"a": "1", "b": "2"})]
    assert seen == [(3, "3 field(s), the header has 2: extra values"),
                    (4, "1 field(s), the header has 2: no value for ['b']")]


def test_youcook2_bad_fps_row_is_a_bad_row_not_a_stop(tmp_path):
    root = write_youcook2(tmp_path / "yc2")
    path = root / "yc2_duration_frame.csv"
    path.write_text(path.read_text() + "yc_c,abc,10\nyc_d,5.0\nyc_e,0,0\n")
    opts = youcook2.Options(subset_to_split={"training": "train", "validation": "val"})
    recs, rep = youcook2.load(root, opts, "clip")
    rows = rep.rows("malformed_row")
    assert [(r["file"], r["row"]) for r in rows] == [("yc2_duration_frame.csv", f"line {n}") for n in (3, 4, 5)]
    assert {r.video_id: r.fps for r in recs}["yc_a"] == 30.0 and rep.summary()["moments"]["dropped"] == 1
    with pytest.raises(InputError, match=r"yc2_duration_frame\.csv: line 3: malformed_row"):
        youcook2.load(root, opts, "fail")
