"""Helpers shared by the dataset adapters: reading annotation files (text, CSV rows with line numbers, JSON),
times, ids, video paths, caption JSON.

Every annotation file is read through :func:`read_text`: UTF-8, with or without the byte-order mark that
spreadsheet programs write; other bytes are one ``InputError`` naming the file, line and byte offset.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from pipeline.datasets.badrows import TOLERANCE, BadRowReport
from pipeline.datasets.schema import Moment, VideoRecord
from pipeline.core.io import InputError

_HMS = re.compile(r"^\s*(\d+):([0-5]?\d):([0-5]?\d(?:\.\d+)?)\s*$")


def parse_hms(text: str) -> float:
    """``HH:MM:SS.ff`` / ``HH:MM:SS.mmm`` (EPIC-KITCHENS timestamps) → seconds; ValueError if malformed."""
    m = _HMS.match(text or "")
    if not m:
        raise ValueError(f"not an HH:MM:SS[.fff] timestamp: {text!r}")
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def parse_seconds(value: object) -> float:
    """A finite number of seconds from a JSON number or numeric string; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    out = float(value)  # type: ignore[arg-type]  # raises ValueError/TypeError on junk
    if not math.isfinite(out):
        raise ValueError(f"not a finite number: {value!r}")
    return out


def parse_window(value: object) -> tuple[float, float]:
    """``[start, end]`` → two floats; ValueError if it is not a pair of finite numbers."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"not a [start, end] pair: {value!r}")
    try:
        return parse_seconds(value[0]), parse_seconds(value[1])
    except TypeError:
        raise ValueError(f"not a [start, end] pair of numbers: {value!r}") from None


def read_text(path: str | os.PathLike) -> str:
    """The text of an annotation file, decoded as UTF-8 (a leading byte-order mark is dropped).

    A missing file, or bytes that are not UTF-8 (a file saved as Latin-1 or UTF-16, a binary file), raise
    ``InputError`` naming the file, the line and the byte offset of the first bad byte.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{path}: line {line} (byte offset {exc.start}): not UTF-8 text (byte "
                         f"0x{data[exc.start]:02x}: {exc.reason}); save the file as UTF-8") from None


def text_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """``(line_number, line)`` of a text file (1-based; ``\\n``, ``\\r\\n`` and ``\\r`` end a line; the
    line end is removed). Only line ends split lines: a U+2028 inside a JSON string stays in its line."""
    for lineno, line in enumerate(io.StringIO(read_text(path), newline=None), start=1):
        yield lineno, line.rstrip("\n")


def load_json(path: str | os.PathLike) -> Any:
    """A JSON annotation file (read with :func:`read_text`); a syntax error names the file, line and column."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None


BadRow = Callable[[int, str], None]


def read_csv(path: Path, required: Iterable[str], header: bool = True, fieldnames: list[str] | None = None,
             bad: BadRow | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line_number, row)`` of a CSV file (line numbers 1-based, header = line 1).

    A missing file, bytes that are not UTF-8 or a header without the ``required`` columns raise ``InputError``
    naming the file. Files without a header pass ``header=False`` and their column names as ``fieldnames``.
    A row with fewer fields than the header (a required value missing) or more: ``bad(line, detail)`` is
    called and the row skipped (annotation rows: a bad row under the policy); without ``bad`` it is an
    ``InputError`` naming the file and line (metadata files such as class lists).
    """
    required = tuple(required)
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""), fieldnames=None if header else fieldnames,
                            restkey=_EXTRA)
    names = list(reader.fieldnames or [])
    if header:
        missing = [c for c in required if c not in names]
        if missing:
            raise InputError(f"{path}: missing column(s) {missing}; found {reader.fieldnames}")
    for row in reader:
        # line_num counts physical lines read so far, i.e. the (last) line of this row
        line = reader.line_num
        short = [c for c in (required or names) if row.get(c) is None]
        if short or _EXTRA in row:
            n = len(names) - sum(row.get(c) is None for c in names) + len(row.get(_EXTRA) or [])
            detail = (f"{n} field(s), the header has {len(names)}"
                      + (f": no value for {short}" if short else ": extra values"))
            if bad is None:
                raise InputError(f"{path}: line {line}: {detail}")
            bad(line, detail)
            continue
        yield line, row


_EXTRA = "\0extra"  # DictReader key of the values past the header (a name no header can have)


def id_text(value: object) -> str | None:
    """An id field (JSON, CSV or pandas value) as text: a non-empty string (stripped) or an integer;
    None for null/NaN, booleans, other numbers and empty text, which callers report as bad rows (so that a
    JSON ``null`` never becomes the id "None")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def text_field(value: object) -> str | None:
    """A text field (caption, query, narration): the stripped string, None when null, not text or empty."""
    return value.strip() or None if isinstance(value, str) else None


def read_class_csv(path: Path) -> dict[int, str]:
    """EPIC-style class list ``id,key,instances,category`` → {id: key}; a bad row is an error naming its line."""
    out: dict[int, str] = {}
    for line, row in read_csv(path, ("id", "key")):
        try:
            cid = int(row["id"])
        except ValueError:
            raise InputError(f"{path}: line {line}: class id {row['id']!r} is not an integer") from None
        if not row["key"].strip():
            raise InputError(f"{path}: line {line}: class {cid} has an empty key")
        out[cid] = row["key"].strip()
    return out


def top_k(counts: Counter, k: int | None) -> list:
    """The ``k`` most frequent keys (count descending, ties by key ascending); all of them if k is None."""
    order = sorted(counts, key=lambda key: (-counts[key], key))
    return order if k is None else order[:k]


def video_path(root: Path, pattern: str | None, **fields: str) -> str | None:
    """Path of a video file from ``pattern`` (relative to ``root``, ``{video_id}``-style fields), if it exists.

    The path is returned relative to the current directory (the repository root when a DVC stage runs)
    when the file lies below it, absolute otherwise; None when no pattern is set or the file is missing.
    """
    if not pattern:
        return None
    path = root / pattern.format(**fields)
    if not path.is_file():
        return None
    rel = os.path.relpath(path.resolve(), Path.cwd().resolve())
    return Path(path.resolve()).as_posix() if rel.startswith("..") else Path(rel).as_posix()


def moment_key(split: str, video_id: str, index: int | str) -> str:
    """Moment/query id for files without their own ids: unique even when a video is in several splits."""
    return f"{split}/{video_id}/{index}"


# ---- the {video: {timestamps, sentences, ...}} caption layout (ActivityNet Captions, TACoS) ----------------
Timing = Callable[[dict], "tuple[float, float, float | None]"]


def seconds_timing(entry: dict) -> tuple[float, float, float | None]:
    """Timing of an ActivityNet-Captions entry: (duration, time units per second, fps); times are seconds."""
    return parse_seconds(entry.get("duration")), 1.0, None


def caption_records(root: Path, fname: str, split: str, data: dict, report: BadRowReport, dataset: str,
                    pattern: str | None, timing: Timing, strip_suffix: str = "") -> list[VideoRecord]:
    """Records of one ``{video: {"timestamps": [[s, e], ...], "sentences": [...], ...}}`` mapping.

    ``timing(entry)`` gives the video's duration in seconds, the timestamp units per second (1 for seconds,
    fps for frames; times are divided by it, exactly as the duration is) and its fps; it raises
    ValueError/TypeError/KeyError when the entry lacks them, which is reported as ``unknown_video`` (and the
    video counted as lost). ``strip_suffix`` is removed from the keys to form video ids.
    """
    records = []
    for key, entry in data.items():
        vid = key[: -len(strip_suffix)] if strip_suffix and key.endswith(strip_suffix) else key
        stamps = entry.get("timestamps") if isinstance(entry, dict) else None
        sents = entry.get("sentences") if isinstance(entry, dict) else None
        if not isinstance(stamps, list) or not isinstance(sents, list):
            report.flag("malformed_row", fname, key, "needs 'timestamps' and 'sentences' lists", moments=0)
            continue
        report.read(max(len(stamps), len(sents)))
        if len(stamps) != len(sents):
            # the pairing past the shorter list is unknown, so that tail cannot be used
            report.flag("malformed_row", fname, key,
                        f"{len(stamps)} timestamps vs {len(sents)} sentences: unpaired tail dropped",
                        moments=abs(len(stamps) - len(sents)))
        try:
            duration, unit, fps = timing(entry)
        except (ValueError, TypeError, KeyError, ZeroDivisionError) as exc:
            report.flag("unknown_video", fname, key, f"no usable duration: {exc}", moments=min(len(stamps), len(sents)))
            if stamps and sents:
                report.video_lost(f"{split}/{vid}", "all_moments_dropped")
            continue
        moments = []
        for i, (stamp, sent) in enumerate(zip(stamps, sents)):
            where = f"{key}.timestamps[{i}]"
            try:
                start, end = parse_window(stamp)
            except ValueError as exc:
                report.flag("malformed_timestamp", fname, where, str(exc))
                continue
            text = text_field(sent)
            if text is None:
                report.flag("malformed_row", fname, f"{key}.sentences[{i}]", "empty or non-string sentence")
                continue
            window = report.window(start / unit, end / unit, duration, fname, where)
            if window is None:
                continue
            mid = moment_key(split, vid, i)
            moments.append(Moment(moment_id=mid, start=window[0], end=window[1], text=text, query_id=mid))
        records.append(VideoRecord(video_id=vid, dataset=dataset, split=split, duration=duration, fps=fps,
                                   video_path=video_path(root, pattern, video_id=vid), moments=moments))
    return records


def select_verbs(keep: list[str] | None, known: Iterable[str], counts: Callable[[], Counter], top: int | None,
                 count_split: str, splits: Iterable[str], root: Path, mapping_file: Path) -> list[str]:
    """The verb classes a TAL adapter keeps, in label order: exactly ``keep`` when given (each must be one of
    ``known``, the verbs of ``mapping_file``), else the ``top`` most frequent of ``counts()`` (the verb counts of
    ``count_split``, which must be one of ``splits``)."""
    if keep is not None:
        unknown = sorted(set(keep) - set(known))
        if unknown:
            raise InputError(f"{mapping_file}: keep_verbs {unknown} are not verbs of the mapping")
        return list(keep)
    if count_split not in set(splits):
        raise InputError(f"{root}: count_split {count_split!r} is not one of {list(splits)}")
    return top_k(counts(), top)


def caption_split_records(root: Path, splits: dict[str, str], policy: str, dataset: str, pattern: str | None,
                          timing: Timing, strip_suffix: str = "", tolerance: float = TOLERANCE
                          ) -> tuple[list[VideoRecord], BadRowReport]:
    """Records of every ``{split: file}`` of a caption dataset whose files map video → timestamps/sentences
    (ActivityNet-Captions and TACoS), with the bad-row report of ``policy`` and rounding ``tolerance``."""
    root = Path(root)
    report = BadRowReport(policy, root, tolerance)
    records = []
    for split, fname in splits.items():
        report.begin_split(split, fname)
        data = load_json(root / fname)
        if not isinstance(data, dict):
            raise InputError(f"{root / fname}: expected a JSON object of videos")
        records.extend(caption_records(root, fname, split, data, report, dataset, pattern, timing,
                                       strip_suffix=strip_suffix))
    return records, report
