"""QVHighlights JSONL → canonical MR+HD records (one query, one or more windows, 2-s clip saliency).

Format: one query per line, ``{"qid": int, "query": str, "vid": "<yt>_<start>_<end>", "duration": s,
"relevant_windows": [[s, e], ...], "relevant_clip_ids": [i, ...], "saliency_scores": [[a1, a2, a3], ...]}``,
times in seconds relative to the clip, clip ``i`` covering ``[2i, 2i + 2)`` s. Default split files are the
public ``highlight_{train,val}_release.jsonl`` and ``highlight_test_with_gt.jsonl`` (the plain test release has
no ground truth: its queries would all be ``malformed_row``). All windows of a query share its ``query_id``
(``str(qid)``); moment ids are ``<qid>/<index>``. Saliency that does not match its clips (different lengths,
clip ids past the video, scores outside 0–4) is ``bad_saliency``: the windows are kept, the saliency is not.
A query whose lines disagree on the video's duration keeps the first one (``malformed_row``, kept).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.datasets.badrows import TOLERANCE, BadRowReport
from pipeline.datasets.common import id_text, parse_seconds, parse_window, text_field, text_lines, video_path
from pipeline.datasets.schema import Moment, Saliency, VideoRecord
from pipeline.core.params import PositiveInt

CLIP_SECONDS = 2.0


@dataclass(frozen=True)
class Options:
    """``datasets.sources.<name>.options`` of a ``qvhighlights`` source."""

    splits: dict[str, str] = field(default_factory=lambda: {
        "train": "highlight_train_release.jsonl",
        "val": "highlight_val_release.jsonl",
        "test": "highlight_test_with_gt.jsonl",
    })
    max_score: PositiveInt = 4  # saliency scores lie in [0, max_score]
    video_pattern: str | None = None  # e.g. "videos/{video_id}.mp4"


def _saliency(row: dict, duration: float, max_score: int) -> tuple[Saliency | None, str | None]:
    """The query's saliency, or (None, reason) when it is inconsistent; (None, None) when absent."""
    ids, scores = row.get("relevant_clip_ids"), row.get("saliency_scores")
    if ids is None and scores is None:
        return None, None
    if not isinstance(ids, list) or not isinstance(scores, list) or len(ids) != len(scores):
        return None, "relevant_clip_ids and saliency_scores differ in length or type"
    n_clips = int(-(-duration // CLIP_SECONDS))  # ceil: the last clip may be shorter than 2 s
    for cid, triple in zip(ids, scores):
        if not isinstance(cid, int) or isinstance(cid, bool) or not 0 <= cid < n_clips:
            return None, f"clip id {cid!r} outside the video's {n_clips} clips"
        if not isinstance(triple, list) or not all(
                isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= max_score for s in triple):
            return None, f"scores {triple!r} of clip {cid} are not integers in [0, {max_score}]"
    return Saliency(clip_ids=list(ids), scores=[list(t) for t in scores]), None


def load(root: Path, options: Options, policy: str = "clip", dataset: str = "qvhighlights",
         tolerance: float = TOLERANCE) -> tuple[list[VideoRecord], BadRowReport]:
    """Read the configured QVHighlights JSONL files into one record per (split, video)."""
    root = Path(root)
    report = BadRowReport(policy, root, tolerance)
    videos: dict[tuple[str, str], dict] = {}
    lost: set[tuple[str, str]] = set()  # (split, video) of lines whose video has no usable duration
    for split, fname in options.splits.items():
        report.begin_split(split, fname)
        for lineno, line in text_lines(root / fname):
            if not line.strip():
                continue
            where = f"line {lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                report.flag("malformed_row", fname, where, f"invalid JSON: {exc.msg}", moments=0)
                continue
            windows = row.get("relevant_windows") if isinstance(row, dict) else None
            if not isinstance(windows, list) or not windows or not all(k in row for k in ("qid", "query", "vid")):
                report.flag("malformed_row", fname, where, "needs qid, query, vid and a non-empty relevant_windows",
                            moments=0)
                continue
            report.read(len(windows))
            vid, qid, text = id_text(row["vid"]), id_text(row["qid"]), text_field(row["query"])
            if vid is None or qid is None or text is None:
                # a JSON null must not become the text "None"
                report.flag("malformed_row", fname, where, f"qid {row['qid']!r}, vid {row['vid']!r}, query "
                            f"{row['query']!r}: each must be a non-empty string (qid: or an integer)",
                            moments=len(windows))
                continue
            try:
                duration = parse_seconds(row.get("duration"))
            except (ValueError, TypeError):
                report.flag("unknown_video", fname, where, f"duration {row.get('duration')!r} is not a number",
                            moments=len(windows))
                lost.add((split, vid))
                continue
            video = videos.setdefault((split, vid), {"duration": duration, "moments": [], "saliency": {}})
            if duration != video["duration"]:
                report.flag("malformed_row", fname, where, f"duration {duration:g} differs from "
                            f"{video['duration']:g} on an earlier line of {vid}; the first is kept", action="kept",
                            moments=0)
                duration = video["duration"]
            kept = 0
            for j, win in enumerate(windows):
                at = f"{where} relevant_windows[{j}]"
                try:
                    start, end = parse_window(win)
                except ValueError as exc:
                    report.flag("malformed_timestamp", fname, at, str(exc))
                    continue
                window = report.window(start, end, duration, fname, at)
                if window is not None:
                    video["moments"].append(Moment(moment_id=f"{qid}/{j}", start=window[0], end=window[1],
                                                   text=text, query_id=qid))
                    kept += 1
            sal, problem = _saliency(row, duration, options.max_score)
            if problem:
                report.flag("bad_saliency", fname, where, problem, action="saliency_dropped", moments=0)
            elif sal is not None and kept:
                video["saliency"][qid] = sal
    records = [
        VideoRecord(video_id=vid, dataset=dataset, split=split, duration=v["duration"],
                    video_path=video_path(root, options.video_pattern, video_id=vid),
                    moments=v["moments"], saliency=v["saliency"])
        for (split, vid), v in videos.items()
    ]
    for split, vid in sorted(lost - set(videos)):
        report.video_lost(f"{split}/{vid}", "all_moments_dropped")
    return records, report
