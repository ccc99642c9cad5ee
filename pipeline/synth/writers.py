"""Writers: H.264 mp4 files and annotations in the real datasets' formats.

* ``encode_video`` — libx264, ``yuv420p``, one encoder thread, no B-frames, ``cpu-independent`` and our own
  numpy RGB → YUV conversion, so the bytes (and hence the decoded frames) are identical for identical input;
  a keyframe every ``gop`` frames for cheap seeking.
* ``epic_*`` — EPIC-KITCHENS-100 CSVs (action segments, verb/noun classes, video info).
* ``anc_json`` — ActivityNet-Captions ``{video_id: {duration, timestamps, sentences}}``.
* ``qvh_rows`` — QVHighlights JSONL rows with 2-s clip saliency from 3 simulated annotators.
* ``oracle_*`` — the oracle under-specifications and groups of every caption.
"""
from __future__ import annotations

import csv
import io
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import av
import numpy as np

from pipeline.core.io import atomic_path, write_text
from pipeline.synth import captions, vocab
from pipeline.synth.events import VideoPlan

EPIC_COLUMNS = ("narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
                "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun",
                "noun_class", "all_nouns", "all_noun_classes")
QVH_CLIP = 2.0  # seconds per QVHighlights clip


# ---- video -----------------------------------------------------------------------------------------------
def rgb_to_yuv420p(rgb: np.ndarray) -> np.ndarray:
    """``uint8 [H, W, 3]`` RGB → planar yuv420p ``uint8 [H*3/2, W]``, BT.601 limited range.

    The usual 8-bit integer formulas (what decoders assume for untagged SD video); chroma from the sum of
    each 2x2 block. Done in exact integer numpy arithmetic rather than by the encoder's implicit swscale
    conversion, whose SIMD code paths differ between CPUs.
    """
    h, w, _ = rgb.shape
    r, g, b = np.moveaxis(rgb, 2, 0).astype(np.int32)  # planar copies: fast strided arithmetic below
    y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16
    rs, gs, bs = (c[0::2, 0::2] + c[1::2, 0::2] + c[0::2, 1::2] + c[1::2, 1::2] for c in (r, g, b))  # 4 x mean
    u = ((-38 * rs - 74 * gs + 112 * bs + 512) >> 10) + 128
    v = ((112 * rs - 94 * gs - 18 * bs + 512) >> 10) + 128
    planes = [y, u.reshape(h // 4, w), v.reshape(h // 4, w)]
    return np.clip(np.concatenate(planes, axis=0), 0, 255).astype(np.uint8)


def encode_video(path: str | Path, frames: Iterable[np.ndarray], fps: int, size: int, crf: int,
                 gop: int) -> int:
    """Encode RGB uint8 frames to an H.264/yuv420p mp4 at ``path`` (atomically); returns the frame count."""
    count = 0
    with atomic_path(path, suffix=".mp4") as tmp:
        container = av.open(str(tmp), mode="w", format="mp4")
        try:
            stream = container.add_stream(
                "libx264", rate=fps,
                options={"crf": str(crf), "preset": "veryfast", "threads": "1", "g": str(gop), "bf": "0",
                         # the C-equivalent algorithms: same bytes on every CPU, and (checked with valgrind)
                         # no reads of uninitialised memory, which made tiny frames differ run to run
                         "x264-params": "cpu-independent=1"})
            stream.width = stream.height = size
            stream.pix_fmt = "yuv420p"
            stream.codec_context.thread_count = 1  # multi-threaded x264 is not bit-reproducible
            stream.time_base = Fraction(1, fps)
            for i, arr in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(rgb_to_yuv420p(arr), format="yuv420p")
                frame.pts = i
                for packet in stream.encode(frame):
                    container.mux(packet)
                count += 1
            for packet in stream.encode():
                container.mux(packet)
        finally:
            container.close()
    return count


# ---- small formatting helpers ----------------------------------------------------------------------------
def hms(seconds: float, digits: int) -> str:
    """``HH:MM:SS.ff`` (digits=2) or ``HH:MM:SS.mmm`` (digits=3), rounded once on integer units."""
    units = 10**digits
    total = int(round(seconds * units))
    whole, frac = divmod(total, units)
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    return f"{h:02d}:{m:02d}:{s:02d}.{frac:0{digits}d}"


def _number(x: float) -> float | int:
    """Whole seconds as int (as the real QVHighlights files write them), else the float."""
    return int(x) if float(x).is_integer() else x


def _csv(header: Iterable[str], rows: Iterable[Iterable]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


# ---- EPIC-KITCHENS-100 -----------------------------------------------------------------------------------
def epic_segments(plans: list[VideoPlan]) -> str:
    """EPIC_100_{train,validation}.csv content for ``plans`` (one row per event, in start order)."""
    verb_id = {v.key: i for i, v in enumerate(vocab.VERBS)}
    noun_id = {s: i for i, s in enumerate(vocab.SHAPES)}
    rows = []
    for plan in plans:
        pid = plan.extra["participant"]
        for k, ev in enumerate(plan.events):
            actor = plan.actors[ev.actor]
            start, stop = plan.seconds(ev.start_frame), plan.seconds(ev.stop_frame)
            rows.append((
                f"{plan.video_id}_{k}", pid, plan.video_id, hms(start, 3), hms(start, 2), hms(stop, 2),
                ev.start_frame, ev.stop_frame, captions.narration(ev, actor), ev.verb, verb_id[ev.verb],
                actor.shape, noun_id[actor.shape], str([actor.shape]), str([noun_id[actor.shape]]),
            ))
    return _csv(EPIC_COLUMNS, rows)


def epic_verb_classes() -> str:
    """EPIC_100_verb_classes.csv: ``id,key,instances,category`` (instances as a Python list literal)."""
    return _csv(("id", "key", "instances", "category"),
                ((i, v.key, str(list(v.instances)), v.category) for i, v in enumerate(vocab.VERBS)))


def epic_noun_classes() -> str:
    """EPIC_100_noun_classes.csv: one class per shape."""
    return _csv(("id", "key", "instances", "category"),
                ((i, s, str([s]), vocab.SHAPE_CATEGORY[s]) for i, s in enumerate(vocab.SHAPES)))


def epic_video_info(plans: list[VideoPlan], size: int) -> str:
    """EPIC_100_video_info.csv: ``video_id,duration,fps,resolution``."""
    return _csv(("video_id", "duration", "fps", "resolution"),
                ((p.video_id, p.duration, float(p.fps), f"{size}x{size}") for p in plans))


def epic_participants(rows: list[tuple[str, str, str]]) -> str:
    """participants.csv: the user-supplied participant → domain list (counter colour, viewpoint)."""
    return _csv(("participant_id", "counter_colour", "viewpoint"), rows)


def epic_video_domains(plans: list[VideoPlan]) -> str:
    """video_domains.csv: every video's true domains (acquisition = old/new as encoded in its id)."""
    return _csv(("video_id", "participant_id", "split", "counter_colour", "acquisition", "viewpoint"),
                ((p.video_id, p.extra["participant"], p.extra["split"], p.counter, p.acquisition,
                  p.extra["viewpoint"]) for p in plans))


# ---- ActivityNet Captions --------------------------------------------------------------------------------
def anc_json(plans: list[VideoPlan]) -> dict:
    """ActivityNet-Captions dict: one entry per video, sentences parallel to timestamps."""
    out = {}
    for plan in plans:
        out[plan.video_id] = {
            "duration": plan.duration,
            "timestamps": [[plan.seconds(e.start_frame), plan.seconds(e.stop_frame)] for e in plan.events],
            "sentences": [captions.describe(e, plan.actors[e.actor]) for e in plan.events],
        }
    return out


# ---- QVHighlights ----------------------------------------------------------------------------------------
def _merge(windows: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Union of windows as sorted disjoint intervals (touching windows merge)."""
    merged: list[list[float]] = []
    for s, e in sorted(windows):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def qvh_rows(plan: VideoPlan, rng: np.random.Generator, n_queries: int, first_qid: int) -> list[dict]:
    """QVHighlights rows for one video: ``n_queries`` queries, each = all events sharing one S2 text.

    A query about one event is its full caption; a query about several is their shared S2 description.
    Saliency (3 annotators, 0–4) of a relevant 2-s clip peaks in the middle of the event that covers it
    (score 4) and falls to 2 at its edges, plus independent ±1 annotator noise.
    """
    groups: dict[str, list] = {}
    for ev in plan.events:
        groups.setdefault(captions.describe(ev, plan.actors[ev.actor], "S2"), []).append(ev)
    keys = list(groups)
    chosen = sorted(rng.permutation(len(keys))[: min(n_queries, len(keys))])
    rows = []
    for qi, gi in enumerate(chosen):
        evs = groups[keys[gi]]
        actor = plan.actors[evs[0].actor]
        query = captions.describe(evs[0], actor, "full") if len(evs) == 1 else keys[gi]
        spans = [(plan.seconds(e.start_frame), plan.seconds(e.stop_frame)) for e in evs]
        windows = _merge(spans)
        clip_ids, scores = [], []
        for s, e in windows:
            for c in range(int(round(s / QVH_CLIP)), int(round(e / QVH_CLIP))):
                mid = (c + 0.5) * QVH_CLIP
                q = max(1.0 - abs(2.0 * (mid - a) / (b - a) - 1.0) for a, b in spans if a <= mid <= b)
                base = 2.0 + 2.0 * q
                noise = rng.choice([-1, 0, 1], size=3, p=[0.2, 0.6, 0.2])
                clip_ids.append(c)
                scores.append([int(v) for v in np.clip(np.rint(base) + noise, 0, 4)])
        rows.append({
            "qid": first_qid + qi, "query": query, "duration": _number(plan.duration), "vid": plan.video_id,
            "relevant_clip_ids": clip_ids, "saliency_scores": scores,
            "relevant_windows": [[_number(s), _number(e)] for s, e in windows],
        })
    return rows


# ---- oracle ----------------------------------------------------------------------------------------------
def oracle_underspecification(plans: list[VideoPlan]) -> dict:
    """``{video_id: [{index, caption, S1, S2, S3}, ...]}`` — index = position in the ANC sentence list."""
    out = {}
    for plan in plans:
        items = []
        for i, ev in enumerate(plan.events):
            actor = plan.actors[ev.actor]
            items.append({"index": i, "caption": captions.describe(ev, actor), **captions.underspecify(ev, actor)})
        out[plan.video_id] = items
    return out


def oracle_groups(under: dict) -> dict:
    """``{level: {video_id: [[indices], ...]}}``: moments with identical level text form one group.

    Groups partition each video's moments (singletons included), ordered by their smallest index.
    """
    out: dict[str, dict] = {}
    for level in captions.LEVELS:
        per_video = {}
        for vid, items in under.items():
            by_text: dict[str, list[int]] = {}
            for item in items:
                by_text.setdefault(item[level], []).append(item["index"])
            per_video[vid] = sorted(by_text.values(), key=lambda g: g[0])
        out[level] = per_video
    return out


def write_csv_text(path: Path, text: str) -> None:
    """Atomically write CSV text."""
    write_text(path, text)
