"""HD-EPIC → canonical caption-VMR records: narrations (the thesis' queries) or recipe steps.

Sources (names are options, relative to the dataset root):

* ``annotations: narrations`` — ``HD_EPIC_Narrations.pkl`` (a pandas DataFrame; a ``.csv`` export with the
  same columns works too): ``unique_narration_id, video_id, narration, start_timestamp, end_timestamp``
  (seconds). One query per narration, ``query_id`` = ``unique_narration_id``. Thesis Tab 3.1: 156 videos,
  59,454 queries, 16.47 words per query.
* ``annotations: recipe_steps`` — ``complete_recipes.json``: every capture's ``step_times`` segments, the text
  being the recipe step. The segments of one step in one video of one capture share a ``query_id``
  (``<step_id>/c<capture>/<video>``), i.e. they form a multi-moment query. A step id missing from the recipe's
  ``steps`` is ``unknown_class``.
* durations: ``HD_EPIC_YouTube_URLs.csv`` (``video_id,youtube_url,duration``), the only public source of them.

HD-EPIC has no official split. Per participant (the ``Pxx`` prefix of the video id), the first
``round(train_fraction · n)`` of its annotated videos in id order — ids are recording date-times, so this is
chronological — are ``train`` and the rest ``test`` (the thesis' 80-20 per-participant split).
Loading a ``.pkl`` runs pickle: only point this adapter at files you trust.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

from pipeline.datasets.badrows import TOLERANCE, BadRowReport
from pipeline.datasets.common import id_text, load_json, parse_seconds, read_csv, text_field, video_path
from pipeline.datasets.schema import Moment, VideoRecord
from pipeline.core.io import InputError
from pipeline.core.params import Fraction

NARRATION_COLUMNS = ("unique_narration_id", "video_id", "narration", "start_timestamp", "end_timestamp")


@dataclass(frozen=True)
class Options:
    """``datasets.sources.<name>.options`` of an ``hd_epic`` source."""

    annotations: Literal["narrations", "recipe_steps"] = "narrations"
    narrations: str = "HD_EPIC_Narrations.pkl"  # .pkl (pandas) or .csv with the same columns
    recipes: str = "complete_recipes.json"
    durations: str = "HD_EPIC_YouTube_URLs.csv"
    train_fraction: Fraction = 0.8  # per participant, chronological
    video_pattern: str | None = None  # e.g. "videos/{participant}/{video_id}.mp4"


def _narration_rows(path: Path, fname: str, report: BadRowReport) -> Iterator[tuple[str, dict]]:
    """(row label, row dict) of the narration table, from a pickle or a CSV (short CSV rows: bad rows)."""
    if path.suffix == ".csv":
        def short_row(line: int, detail: str) -> None:
            report.read()
            report.flag("malformed_row", fname, f"line {line}", detail)

        for line, row in read_csv(path, NARRATION_COLUMNS, bad=short_row):
            yield f"line {line}", row
        return
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    import pandas as pd  # only this format needs pandas

    try:
        frame = pd.read_pickle(path)
    except Exception as exc:  # unpickling raises any type (UnpicklingError, EOFError, ModuleNotFoundError...)
        raise InputError(f"{path}: not a readable pandas pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{path}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in NARRATION_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}; found {list(frame.columns)}")
    for i, row in enumerate(frame[list(NARRATION_COLUMNS)].to_dict("records")):
        yield f"row {i}", row


def _narrations(root: Path, opts: Options, durations: dict[str, float], report: BadRowReport, seen: set[str]
                ) -> dict[str, list[Moment]]:
    fname = opts.narrations
    out: dict[str, list[Moment]] = {}
    for where, row in _narration_rows(root / fname, fname, report):
        report.read()
        vid, nid = id_text(row["video_id"]), id_text(row["unique_narration_id"])
        if vid is None or nid is None:
            report.flag("malformed_row", fname, where, f"video_id {row['video_id']!r} / unique_narration_id "
                        f"{row['unique_narration_id']!r}: null or empty")
            continue
        seen.add(vid)
        if vid not in durations:
            report.flag("unknown_video", fname, where, f"video {vid!r} not in {opts.durations}")
            continue
        try:
            start, end = parse_seconds(row["start_timestamp"]), parse_seconds(row["end_timestamp"])
        except (ValueError, TypeError):
            report.flag("malformed_timestamp", fname, where,
                        f"times {row['start_timestamp']!r}, {row['end_timestamp']!r} are not numbers")
            continue
        text = text_field(row["narration"])
        if text is None:
            report.flag("malformed_row", fname, where, f"narration {row['narration']!r}: null or empty")
            continue
        window = report.window(start, end, durations[vid], fname, where)
        if window is None:
            continue
        out.setdefault(vid, []).append(Moment(moment_id=nid, start=window[0], end=window[1], text=text, query_id=nid))
    return out


def _recipe_steps(root: Path, opts: Options, durations: dict[str, float], report: BadRowReport, seen: set[str]
                  ) -> dict[str, list[Moment]]:
    fname = opts.recipes
    data = load_json(root / fname)
    if not isinstance(data, dict):
        raise InputError(f"{root / fname}: expected a JSON object of recipes")
    out: dict[str, list[Moment]] = {}
    for rid, recipe in data.items():
        steps = recipe.get("steps") if isinstance(recipe, dict) else None
        captures = recipe.get("captures") if isinstance(recipe, dict) else None
        if not isinstance(steps, dict) or not isinstance(captures, list):
            report.flag("malformed_row", fname, rid, "recipe needs 'steps' and 'captures'", moments=0)
            continue
        for ci, capture in enumerate(captures):
            times = capture.get("step_times") if isinstance(capture, dict) else None
            if not isinstance(times, dict):
                report.flag("malformed_row", fname, f"{rid}.captures[{ci}]", "no 'step_times' object", moments=0)
                continue
            for sid, segs in times.items():
                segs = segs if isinstance(segs, list) else [segs]
                for j, seg in enumerate(segs):
                    where = f"{rid}.captures[{ci}].step_times.{sid}[{j}]"
                    report.read()
                    if not isinstance(seg, dict):
                        report.flag("malformed_row", fname, where, "segment is not an object")
                        continue
                    vid = id_text(seg.get("video"))
                    if vid is None:
                        report.flag("malformed_row", fname, where, f"video {seg.get('video')!r}: null or empty")
                        continue
                    seen.add(vid)
                    if sid not in steps:
                        report.flag("unknown_class", fname, where, f"step {sid} not in the steps of {rid}")
                        continue
                    if vid not in durations:
                        report.flag("unknown_video", fname, where, f"video {vid!r} not in {opts.durations}")
                        continue
                    try:
                        start, end = parse_seconds(seg.get("start")), parse_seconds(seg.get("end"))
                    except (ValueError, TypeError):
                        report.flag("malformed_timestamp", fname, where, "start/end are not numbers")
                        continue
                    text = text_field(steps[sid])
                    if text is None:
                        report.flag("malformed_row", fname, where, f"step {sid} has no text")
                        continue
                    window = report.window(start, end, durations[vid], fname, where)
                    if window is None:
                        continue
                    qid = f"{sid}/c{ci}/{vid}"
                    out.setdefault(vid, []).append(Moment(moment_id=f"{qid}/{j}", start=window[0], end=window[1],
                                                          text=text, query_id=qid))
    return out


def participant_of(video_id: str) -> str:
    """``P01-20240202-110250`` → ``P01``."""
    return video_id.split("-", 1)[0]


def chronological_split(video_ids: list[str], train_fraction: float) -> dict[str, str]:
    """Per participant, the first ``round(f·n)`` videos in id order → ``train``, the rest → ``test``."""
    by_part: dict[str, list[str]] = {}
    for vid in sorted(set(video_ids)):
        by_part.setdefault(participant_of(vid), []).append(vid)
    out = {}
    for vids in by_part.values():
        n_train = math.floor(train_fraction * len(vids) + 0.5)  # round half up
        for i, vid in enumerate(vids):
            out[vid] = "train" if i < n_train else "test"
    return out


def load(root: Path, options: Options, policy: str = "clip", dataset: str = "hd_epic",
         tolerance: float = TOLERANCE) -> tuple[list[VideoRecord], BadRowReport]:
    """Read HD-EPIC narrations or recipe steps into one record per video."""
    root = Path(root)
    report = BadRowReport(policy, root, tolerance)
    durations = {}
    for line, row in read_csv(root / options.durations, ("video_id", "duration")):
        try:
            durations[row["video_id"].strip()] = parse_seconds(row["duration"])
        except (ValueError, TypeError):
            raise InputError(f"{root / options.durations}: line {line}: duration {row['duration']!r}") from None
    reader = _narrations if options.annotations == "narrations" else _recipe_steps
    seen: set[str] = set()
    by_video = reader(root, options, durations, report, seen)
    for vid in sorted(seen - set(by_video)):
        report.video_lost(vid, "all_moments_dropped")  # no split yet: HD-EPIC splits are made from kept videos
    split = chronological_split(list(by_video), options.train_fraction)
    records = [
        VideoRecord(video_id=vid, dataset=dataset, split=split[vid], duration=durations[vid],
                    participant=participant_of(vid),
                    video_path=video_path(root, options.video_pattern, video_id=vid, participant=participant_of(vid)),
                    moments=sorted(ms, key=lambda m: (m.start, m.end, m.moment_id)))
        for vid, ms in by_video.items()
    ]
    return records, report
