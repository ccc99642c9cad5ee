"""Tiny annotation files in each real dataset format, each with one malformed row per bad-row category.

Used by tests/test_datasets_*.py. Every writer returns the dataset root; the docstrings say which rows are bad.
"""
from __future__ import annotations

import json
from pathlib import Path

EPIC_HEADER = ("narration_id,participant_id,video_id,narration_timestamp,start_timestamp,stop_timestamp,"
               "start_frame,stop_frame,narration,verb,verb_class,noun,noun_class,all_nouns,all_noun_classes")


def _epic_row(nid: str, vid: str, start: str, stop: str, verb_class: str, fps: int = 50) -> str:
    def frames(t: str) -> str:
        try:
            h, m, s = t.split(":")
            return str(int((int(h) * 3600 + int(m) * 60 + float(s)) * fps))
        except ValueError:
            return "0"
    return (f"{nid},{vid.split('_')[0]},{vid},00:00:00.000,{start},{stop},{frames(start)},{frames(stop)},"
            f"narr,v,{verb_class},plate,2,['plate'],[2]")


def write_epic(root: Path) -> Path:
    """EPIC-KITCHENS-100: 11 train rows (P01_01 old, P01_101 new, P09_01 unknown), 3 val rows (P02_01).

    Train lines 2-7 valid (take, take, put, take, wash, put); line 8 start >= end, line 9 a take past the
    100-s duration (ends at 105 s), line 10 unknown class 42, line 11 malformed timestamp, line 12 unknown
    video. Val: line 2 take, line 3 wash, line 4 verb_class not an integer (malformed row).
    Top-2 train verbs = [take, put] under both clip and drop; the 2 wash rows are filtered.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "EPIC_100_verb_classes.csv").write_text(
        "id,key,instances,category\n0,take,\"['take', 'grab']\",retrieve\n1,put,\"['put']\",leave\n"
        "2,wash,\"['wash']\",clean\n3,open,\"['open']\",access\n")
    (root / "EPIC_100_video_info.csv").write_text(
        "video_id,duration,fps,resolution\nP01_01,100.0,50.0,1920x1080\nP01_101,60.0,60.0,1920x1080\n"
        "P02_01,80.0,50.0,1920x1080\n")
    (root / "participants.csv").write_text("participant_id,counter_colour,viewpoint\nP01,dark,wide\n")
    train = [
        _epic_row("P01_01_0", "P01_01", "00:00:01.00", "00:00:03.50", "0"),
        _epic_row("P01_01_1", "P01_01", "00:00:05.00", "00:00:06.00", "0"),
        _epic_row("P01_01_2", "P01_01", "00:00:07.00", "00:00:09.00", "1"),
        _epic_row("P01_101_0", "P01_101", "00:00:02.00", "00:00:04.00", "0", 60),
        _epic_row("P01_101_1", "P01_101", "00:00:10.00", "00:00:12.00", "2", 60),
        _epic_row("P01_101_2", "P01_101", "00:00:13.00", "00:00:14.00", "1", 60),
        _epic_row("P01_101_3", "P01_101", "00:00:20.00", "00:00:20.00", "1", 60),  # line 8: start >= end
        _epic_row("P01_01_3", "P01_01", "00:01:38.00", "00:01:45.00", "0"),  # line 9: past 100 s
        _epic_row("P01_01_4", "P01_01", "00:00:11.00", "00:00:12.00", "42"),  # line 10: unknown class
        _epic_row("P01_01_5", "P01_01", "00:00:1x.00", "00:00:12.00", "0"),  # line 11: malformed time
        _epic_row("P09_01_0", "P09_01", "00:00:01.00", "00:00:02.00", "0"),  # line 12: unknown video
    ]
    val = [
        _epic_row("P02_01_0", "P02_01", "00:00:01.00", "00:00:02.00", "0"),
        _epic_row("P02_01_1", "P02_01", "00:00:03.00", "00:00:05.00", "2"),
        _epic_row("P02_01_2", "P02_01", "00:00:06.00", "00:00:07.00", "zero"),  # line 4: malformed row
    ]
    (root / "EPIC_100_train.csv").write_text("\n".join([EPIC_HEADER, *train]) + "\n")
    (root / "EPIC_100_validation.csv").write_text("\n".join([EPIC_HEADER, *val]) + "\n")
    (root / "videos").mkdir(exist_ok=True)
    (root / "videos" / "P01_01.mp4").write_bytes(b"\0")
    return root


def write_anc(root: Path) -> Path:
    """ActivityNet Captions: train v_a (4 captions: 1 ok, start >= end, past duration, malformed time),
    v_b (1 ok, 1 empty sentence), val_1 v_c (1 ok) and v_d (duration not a number)."""
    root.mkdir(parents=True, exist_ok=True)
    train = {
        "v_a": {"duration": 50.0, "timestamps": [[1.0, 5.5], [9.0, 8.0], [40.0, 55.0], ["x", 3]],
                "sentences": ["A man opens a door.", " He sits.", " He leaves the room.", " Broken."]},
        "v_b": {"duration": 30.0, "timestamps": [[0, 10], [12, 20]], "sentences": ["A dog runs fast.", "  "]},
    }
    val = {
        "v_c": {"duration": 20.0, "timestamps": [[2, 6]], "sentences": ["A cat jumps."]},
        "v_d": {"duration": "long", "timestamps": [[2, 6]], "sentences": ["Nothing."]},
    }
    (root / "train.json").write_text(json.dumps(train))
    (root / "val_1.json").write_text(json.dumps(val))
    return root


def write_tacos(root: Path) -> Path:
    """TACoS: s1-d1.avi at 25 fps, 250 frames (10 s): windows [25, 75] ok, [200, 300] past 10 s."""
    root.mkdir(parents=True, exist_ok=True)
    data = {"s1-d1.avi": {"timestamps": [[25, 75], [200, 300]], "sentences": ["cut the onion", "wash it"],
                          "fps": 25.0, "num_frames": 250}}
    (root / "train.json").write_text(json.dumps(data))
    return root


def write_youcook2(root: Path) -> Path:
    """YouCook2: yc_a (training, 2 ok + 1 past duration), yc_b (validation, 1 malformed segment),
    yc_c (subset 'testing' not mapped by the test's options → filtered)."""
    root.mkdir(parents=True, exist_ok=True)
    db = {
        "yc_a": {"duration": 100.0, "subset": "training", "recipe_type": "113", "annotations": [
            {"id": 0, "segment": [5, 20], "sentence": "add salt to the pan"},
            {"id": 1, "segment": [30, 45], "sentence": "stir the sauce"},
            {"id": 2, "segment": [90, 120], "sentence": "serve"}]},
        "yc_b": {"duration": 60.0, "subset": "validation", "recipe_type": "201", "annotations": [
            {"id": 0, "segment": [5], "sentence": "boil water"}]},
        "yc_c": {"duration": 60.0, "subset": "testing", "recipe_type": "201", "annotations": [
            {"id": 0, "segment": [5, 9], "sentence": "chop"}]},
    }
    (root / "youcookii_annotations_trainval.json").write_text(json.dumps({"database": db}))
    (root / "yc2_duration_frame.csv").write_text("yc_a,100.0,3000\nyc_b,60.0,1500\n")
    return root


def write_qvh(root: Path) -> Path:
    """QVHighlights: train line 1 (2 windows + saliency, ok), line 2 (same video, window past 150 s),
    line 3 (saliency length mismatch), line 4 (no relevant_windows), line 5 invalid JSON."""
    root.mkdir(parents=True, exist_ok=True)
    rows = [
        {"qid": 1, "query": "A girl cooks.", "duration": 150, "vid": "abc_0.0_150.0",
         "relevant_windows": [[0, 4], [10, 14]], "relevant_clip_ids": [0, 1, 5, 6],
         "saliency_scores": [[1, 2, 3], [4, 4, 4], [0, 1, 2], [3, 3, 3]]},
        {"qid": 2, "query": "A dog barks.", "duration": 150, "vid": "abc_0.0_150.0",
         "relevant_windows": [[140, 160]], "relevant_clip_ids": [70], "saliency_scores": [[2, 2, 2]]},
        {"qid": 3, "query": "A car passes.", "duration": 120, "vid": "def_30.0_150.0",
         "relevant_windows": [[20, 30]], "relevant_clip_ids": [10, 11], "saliency_scores": [[1, 1, 1]]},
        {"qid": 4, "query": "No ground truth.", "duration": 120, "vid": "ghi_0.0_120.0"},
    ]
    text = "".join(json.dumps(r) + "\n" for r in rows) + "{not json\n"
    (root / "highlight_train_release.jsonl").write_text(text)
    return root


def write_charades_sta(root: Path) -> Path:
    """Charades-STA: 5 train lines: ok, ok (same video), past the 30-s length, no '##', unknown video."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Charades_v1_train.csv").write_text("id,subject,scene,length\nAB12C,s1,Kitchen,30.5\nXY34Z,s2,Bed,20\n")
    (root / "charades_sta_train.txt").write_text(
        "AB12C 1.2 5.8##person opens the door.\n"
        "AB12C 10 15##a person sits down.\n"
        "XY34Z 12.0 25.0##person laughs.\n"
        "XY34Z 1.0 3.0 person smiles.\n"
        "QQ11Q 1.0 3.0##person runs.\n")
    return root


def write_charades_ego(root: Path) -> Path:
    """Charades-Ego: classes c000 (hold clothes → hold), c001 (take a cup → take), c002 (put cup → put).

    Train: 005BU (third person, 3 actions incl. one unknown class c099), 005BUEGO (ego, 3 actions incl. a
    past-duration one and a malformed triple). Test: 006XY (ego, 1 take, 1 with a malformed time).
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "CharadesEgo_v1_classes.txt").write_text(
        "c000 Holding some clothes\nc001 Taking a cup from somewhere\nc002 Putting a cup somewhere\n")
    (root / "CharadesEgo_v1_mapping.txt").write_text("c000 o000 v000\nc001 o001 v001\nc002 o001 v002\n")
    (root / "CharadesEgo_v1_verbclasses.txt").write_text("v000 hold\nv001 take\nv002 put\n")
    header = ("id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length,"
              "egocentric,charades_video\n")
    (root / "CharadesEgo_v1_train.csv").write_text(
        header
        + '005BU,S1,Kitchen,6,7,Yes,s,o,d,"c000 0.0 5.0;c001 6.0 9.5;c099 1 2",20.0,No,\n'
        + '005BUEGO,S1,Kitchen,6,7,Yes,s,o,d,"c001 1.0 4.0;c002 15.0 25.0;c001 7.0",20.0,Yes,005BU\n')
    (root / "CharadesEgo_v1_test.csv").write_text(
        header + '006XY,S2,Bedroom,6,7,Yes,s,o,d,"c001 1.0 2.0;c000 a b",12.0,Yes,006AB\n')
    return root


def write_hd_epic(root: Path) -> Path:
    """HD-EPIC: durations of 5 P01 videos + 1 P02 video; narrations CSV (4 rows: 2 ok, 1 unknown video,
    1 past duration) and complete_recipes.json (one step with 2 segments in one video, one unknown step)."""
    root.mkdir(parents=True, exist_ok=True)
    vids = [f"P01-2024020{i}-100000" for i in range(1, 6)] + ["P02-20240301-090000"]
    (root / "HD_EPIC_YouTube_URLs.csv").write_text(
        "video_id,youtube_url,duration\n" + "".join(f"{v},https://youtu.be/x,100.0\n" for v in vids))
    (root / "HD_EPIC_Narrations.csv").write_text(
        "unique_narration_id,participant_id,video_id,narration,start_timestamp,end_timestamp\n"
        f"{vids[0]}-1,P01,{vids[0]},Open the upper cupboard with the left hand.,7.44,8.75\n"
        f"{vids[4]}-1,P01,{vids[4]},Pick up the plate.,1.0,2.0\n"
        "P09-20240101-000000-1,P09,P09-20240101-000000,Stir.,1.0,2.0\n"
        f"{vids[5]}-1,P02,{vids[5]},Close the tap.,95.0,101.0\n")
    recipes = {"P01_R01": {"participant": "P01", "name": "Coffee", "type": "own", "source": "",
                           "steps": {"P01_R01_S01": "Put a capsule into the machine."},
                           "captures": [{"videos": [vids[0]], "ingredients": {}, "prep_times": {},
                                         "step_times": {
                                             "P01_R01_S01": [{"video": vids[0], "start": 1.0, "end": 2.0},
                                                             {"video": vids[0], "start": 5.0, "end": 6.5}],
                                             "P01_R01_S09": [{"video": vids[0], "start": 3.0, "end": 4.0}]}}]}}
    (root / "complete_recipes.json").write_text(json.dumps(recipes))
    return root


def write_epic_frames_at(root: Path, frame_fps: int = 60) -> Path:
    """EPIC-KITCHENS-100 (the ``write_epic`` files) whose validation video P02_01 is listed at 50 fps in
    video_info but numbers its frames at ``frame_fps`` (as the real validation CSV does for 5 videos).
    Val rows: take 10-12 s, wash 30-35 s, take 61-64 s (all valid)."""
    write_epic(root)
    val = [
        _epic_row("P02_01_0", "P02_01", "00:00:10.00", "00:00:12.00", "0", frame_fps),
        _epic_row("P02_01_1", "P02_01", "00:00:30.00", "00:00:35.00", "2", frame_fps),
        _epic_row("P02_01_2", "P02_01", "00:01:01.00", "00:01:04.00", "0", frame_fps),
    ]
    (root / "EPIC_100_validation.csv").write_text("\n".join([EPIC_HEADER, *val]) + "\n")
    return root
