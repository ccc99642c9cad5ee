"""Stage ``synth``: the synthetic video world — the embedded default data of the pipeline (DESIGN §4).

The world
---------
Each video shows a kitchen **counter** (the *appearance domain*: ``dark`` or ``white`` tiles, or ``other`` =
wood) seen by a **camera** (the *acquisition domain*: ``old`` = shaky, dim, warm and noisy like EK55;
``new`` = stabilised and clean like the EK100 extension) from a **viewpoint** (``wide``, or ``zoomed`` = a
magnified crop, the CharadesEgo-like shift). On it 3-4 **actors** — coloured shapes (circle, square,
triangle, star; red, green, blue, yellow, purple, orange; small or large) standing on a 3 x 3 grid of places —
perform **events**, one of 10 verbs (EPIC verb classes in this order):

    slide (along a row, column or diagonal; quickly/slowly)   bounce (twice / three times, in place)
    spin (clockwise / counterclockwise, ~1 turn per s)         jump (an arc to another place in the row; high/low)
    grow / shrink (small ↔ large; quickly/slowly)              fade in / fade out (quickly/slowly)
    blink (rapidly/slowly)                                     change color (quickly/slowly)

Events start and stop on a time grid of whole frames, so annotated times are exact: at the start frame the
actor is in its pre-event state, it changes on the frames after it and reaches its final state at the stop
frame. Events of different actors may overlap; every shape wobbles slightly all the time (idle motion). Each
event has a detailed caption ("A small red circle slides quickly from the left to the right near the top.")
and oracle under-specifications (S1 drop position, S2 drop manner and size, S3 generic verb phrase only — see
``pipeline/synth/captions.py``). Caption videos draw few verbs per video, repeat (verb, shape, colour)
combinations and sometimes contain "twins" (same shape and colour, other size), so under-specified queries
match several moments.

Layout of ``--out`` (default ``data/raw``)
----------------------------------------
Each set's directory is named after the dataset that ingests it (``SET_DIRS``), so every dataset's files,
synthetic or real, live under ``data/raw/<dataset>`` and a stage can depend on exactly one dataset's videos.
Each set directory (and the manifest) is replaced atomically on its own; nothing else under ``--out`` is touched.

``synth_tal/`` — EPIC-KITCHENS-100 format, 30 fps:
    ``EPIC_100_train.csv``, ``EPIC_100_validation.csv`` (the 15 real columns; timestamps ``HH:MM:SS.ff``,
    frames at 30 fps; verb = action class, noun = shape), ``EPIC_100_verb_classes.csv``,
    ``EPIC_100_noun_classes.csv``, ``EPIC_100_video_info.csv``, ``participants.csv`` (the user-supplied
    participant → ``counter_colour`` list, plus ``viewpoint``), ``video_domains.csv`` (every video's true
    counter/acquisition/viewpoint, for checking), ``videos/<video_id>.mp4``. Video ids follow EPIC: ``P01_01``
    (2-digit suffix) = "old" acquisition, ``P01_101`` (3-digit) = "new".
``synth_captions/`` — ActivityNet-Captions format: ``train.json``, ``val_1.json``
    (``{video_id: {duration, timestamps, sentences}}``, ids ``v_anc<8 digits>``), ``videos/<video_id>.mp4``.
``synth_qvh/`` — QVHighlights format: ``highlight_train_release.jsonl``, ``highlight_val_release.jsonl`` (qid, query,
    duration, vid, relevant_clip_ids, saliency_scores = 3 annotators x 0-4 per 2-s clip, relevant_windows; one
    query = all events sharing one S2 description), ``videos/<vid>.mp4``.
``synth_oracle/`` — for the captions split (train and val): ``underspecification.json``
    ``{video_id: [{index, caption, S1, S2, S3}]}`` (index = position in the ANC sentence list) and
    ``groups.json`` ``{S1|S2|S3: {video_id: [[indices], ...]}}`` (identical level text → one group; the groups
    partition each video's moments). Used only to score query generation, never as its input.
``synth_manifest.json`` — the ``synth`` config, the seed and counts.

Reproducibility: every video is planned and rendered from seeds derived from ``runtime.seed``, its set's
``seed_offset`` and its own index, and encoded with single-threaded, ``cpu-independent`` x264 from an exact
integer RGB → YUV conversion, so the same params give byte-identical annotation files and identical decoded
frames whatever ``--workers`` is (the annotations are identical on any machine; the pixels use numpy
floating point and could differ by a rounding step on another CPU family). Changing one set's
``seed_offset`` (or any key of its block) leaves the other sets' files byte-identical, so with one DVC out
per set only the stages reading the changed set rerun.

Params read: ``synth`` (all), ``runtime.seed``.
"""
from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pipeline.synth.params import SynthConfig
from pipeline.core.cli import stage_main
from pipeline.core.params import load_block, load_params, to_dict
from pipeline.core.params import RuntimeConfig
from pipeline.core.io import atomic_path, write_json, write_jsonl, write_text
from pipeline.synth import vocab, writers
from pipeline.synth.events import VideoPlan, grid_frames, plan_video
from pipeline.synth.render import Renderer

DATASET_SALT = {"tal": 1, "captions": 2, "qvh": 3}  # keeps the three sets' random streams independent


def validate(cfg: SynthConfig) -> None:
    """Check cross-field constraints the dataclass types cannot express; raise ``ValueError`` naming the key."""
    for name in ("old", "new"):
        if name not in cfg.acquisition:
            raise ValueError(f"synth.acquisition: missing {name!r} (the TAL set uses old and new)")
    for set_name in ("tal", "captions", "qvh"):
        sc = getattr(cfg, set_name)
        key = f"synth.{set_name}"
        if sc.seed_offset < 0:
            raise ValueError(f"{key}.seed_offset: must be >= 0, got {sc.seed_offset}")
        try:
            grid_frames(sc.fps, sc.time_grid)
        except ValueError as exc:
            raise ValueError(f"{key}.time_grid: {exc}") from None
        unknown = [v for v in sc.verbs if v not in vocab.VERB_BY_KEY]
        if unknown:
            raise ValueError(f"{key}.verbs: unknown verb(s) {unknown}; known: {list(vocab.VERB_BY_KEY)}")
        bad = [c for c in sc.counters if c not in vocab.COUNTERS]
        if bad or not sc.counters:
            raise ValueError(f"{key}.counters: unknown or empty {bad}; known: {list(vocab.COUNTERS)}")
        for acq in getattr(sc, "acquisitions", []):
            if acq not in cfg.acquisition:
                raise ValueError(f"{key}.acquisitions: {acq!r} is not defined in synth.acquisition")
        for rng_key in ("duration", "fast", "slow", "gap"):
            lo, hi = getattr(sc, rng_key)
            if not 0 < lo <= hi:
                raise ValueError(f"{key}.{rng_key}: expected 0 < min <= max, got [{lo}, {hi}]")
        if not 1 <= sc.actors <= len(vocab.ANCHORS):
            raise ValueError(f"{key}.actors: expected 1..{len(vocab.ANCHORS)}, got {sc.actors}")
    if cfg.qvh.time_grid % writers.QVH_CLIP:
        raise ValueError("synth.qvh.time_grid: must be a multiple of 2 s (QVHighlights clips)")
    tal = cfg.tal
    if tal.val_videos > min(tal.old_videos, tal.new_videos):
        raise ValueError("synth.tal.val_videos: more than old_videos/new_videos per participant")
    if tal.participants > 99:
        raise ValueError("synth.tal.participants: at most 99 (ids P01..P99)")


def plan_tal(cfg: SynthConfig, seed: int) -> list[VideoPlan]:
    """Participants x (old + new) videos; kitchens keep their texture across videos."""
    tal = cfg.tal
    plans = []
    kitchen = np.random.default_rng([seed, DATASET_SALT["tal"], tal.seed_offset, 0]).integers(
        2**31, size=tal.participants)  # one counter texture per participant, shared by all their videos
    for p in range(tal.participants):
        pid = f"P{p + 1:02d}"
        counter = tal.counters[p % len(tal.counters)]
        zoomed = p >= tal.participants - tal.zoomed_participants
        for kind, n, fmt in (("old", tal.old_videos, "{:02d}"), ("new", tal.new_videos, "{:03d}")):
            for k in range(n):
                number = k + 1 if kind == "old" else 101 + k
                vid = f"{pid}_{fmt.format(number)}"
                split = "val" if k >= n - tal.val_videos else "train"
                plans.append(plan_video(
                    vid, tal, [seed, DATASET_SALT["tal"], tal.seed_offset, 1, p, number], counter, kind,
                    tal.zoom if zoomed else 1.0, texture_seed=kitchen[p],
                    extra={"participant": pid, "split": split, "viewpoint": "zoomed" if zoomed else "wide"}))
    return plans


def plan_mixed(cfg: SynthConfig, set_name: str, seed: int, prefix: str) -> list[VideoPlan]:
    """Caption / QVH videos: counter and acquisition drawn per video; train first, then val."""
    sc = getattr(cfg, set_name)
    salt = DATASET_SALT[set_name]
    plans = []
    for i in range(sc.train_videos + sc.val_videos):
        rng = np.random.default_rng([seed, salt, sc.seed_offset, 0, i])
        counter = sc.counters[int(rng.integers(len(sc.counters)))]
        acq = sc.acquisitions[int(rng.integers(len(sc.acquisitions)))]
        split = "train" if i < sc.train_videos else "val"
        plans.append(plan_video(f"{prefix}{i:08d}", sc, [seed, salt, sc.seed_offset, 1, i], counter, acq, 1.0,
                                texture_seed=int(rng.integers(2**31)),
                                extra={"split": split, "viewpoint": "wide"}))
    return plans


def _qvh_vid(plan: VideoPlan) -> VideoPlan:
    """QVHighlights ids are ``<youtube id>_<start>_<end>``: give the plan that id."""
    return dataclasses.replace(plan, video_id=f"{plan.video_id}_0.0_{plan.duration:.1f}")


def _render_task(task: tuple) -> tuple[str, int]:
    """Worker: render and encode one video (module-level so multiprocessing can pickle it)."""
    plan, path, cfg = task
    acq = cfg.acquisition[plan.acquisition]
    renderer = Renderer(plan, cfg.resolution, acq, cfg.idle_amplitude, cfg.idle_period)
    gop = max(1, int(round(cfg.gop * plan.fps)))
    n = writers.encode_video(path, renderer.frames(), plan.fps, cfg.resolution, cfg.crf, gop)
    return plan.video_id, n


def _split(plans: list[VideoPlan], split: str) -> list[VideoPlan]:
    return [p for p in plans if p.extra["split"] == split]


def _set_counts(plans: list[VideoPlan]) -> dict[str, Any]:
    """Counts for the manifest and the metrics file."""
    events = [e for p in plans for e in p.events]
    return {
        "videos": len(plans),
        "videos_train": len(_split(plans, "train")),
        "videos_val": len(_split(plans, "val")),
        "events": len(events),
        "hours": round(sum(p.duration for p in plans) / 3600.0, 4),
        "frames": sum(p.n_frames for p in plans),
        "mean_event_seconds": round(float(np.mean([(e.stop_frame - e.start_frame) / p.fps
                                                   for p in plans for e in p.events])), 3) if events else 0.0,
        "verbs": dict(sorted(Counter(e.verb for e in events).items())),
        "counters": dict(sorted(Counter(p.counter for p in plans).items())),
        "acquisitions": dict(sorted(Counter(p.acquisition for p in plans).items())),
    }


SET_DIRS = {"tal": "synth_tal", "captions": "synth_captions", "qvh": "synth_qvh", "oracle": "synth_oracle"}
MANIFEST = "synth_manifest.json"


def synthesize(cfg: SynthConfig, seed: int, out_dir: str | Path, workers: int = 1) -> dict[str, Any]:
    """Generate the whole world under ``out_dir`` (each ``SET_DIRS`` directory and ``MANIFEST`` replaced
    atomically, other entries of ``out_dir`` untouched) and return the manifest dict."""
    validate(cfg)
    if seed < 0:
        raise ValueError(f"runtime.seed: must be >= 0, got {seed}")
    tal = plan_tal(cfg, seed)
    cap = plan_mixed(cfg, "captions", seed, "v_anc")
    qvh = [_qvh_vid(p) for p in plan_mixed(cfg, "qvh", seed, "qvs")]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".synth.", dir=out_dir) as tmp_name:
        tmp = Path(tmp_name)
        tasks = [(p, tmp / SET_DIRS[name] / "videos" / f"{p.video_id}.mp4", cfg)
                 for name, plans in (("tal", tal), ("captions", cap), ("qvh", qvh)) for p in plans]
        for _, path, _ in tasks:
            path.parent.mkdir(parents=True, exist_ok=True)
        # longest videos first so the pool stays busy to the end; results do not depend on the order
        tasks.sort(key=lambda t: -t[0].n_frames)
        if workers > 1:
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            with ctx.Pool(workers) as pool:
                for _ in tqdm(pool.imap_unordered(_render_task, tasks), total=len(tasks), desc="synth videos",
                              disable=None):
                    pass
        else:
            for task in tqdm(tasks, desc="synth videos", disable=None):
                _render_task(task)
        _write_annotations(cfg, tmp, tal, cap, qvh, seed)
        manifest = {
            "seed": seed,
            "config": to_dict(cfg),
            "counts": {"tal": _set_counts(tal), "captions": _set_counts(cap), "qvh": _set_counts(qvh)},
        }
        manifest["counts"]["qvh"]["queries"] = _count_lines(tmp / SET_DIRS["qvh"])
        write_json(tmp / MANIFEST, manifest)
        for name in [*SET_DIRS.values(), MANIFEST]:
            with atomic_path(out_dir / name) as final:
                os.replace(tmp / name, final)
    return manifest


def _count_lines(qvh_dir: Path) -> int:
    return sum(len(f.read_text(encoding="utf-8").splitlines()) for f in sorted(qvh_dir.glob("*.jsonl")))


def _write_annotations(cfg: SynthConfig, root: Path, tal: list[VideoPlan], cap: list[VideoPlan],
                       qvh: list[VideoPlan], seed: int) -> None:
    """All annotation files of the three sets and the oracle."""
    t = root / SET_DIRS["tal"]
    write_text(t / "EPIC_100_train.csv", writers.epic_segments(_split(tal, "train")))
    write_text(t / "EPIC_100_validation.csv", writers.epic_segments(_split(tal, "val")))
    write_text(t / "EPIC_100_verb_classes.csv", writers.epic_verb_classes())
    write_text(t / "EPIC_100_noun_classes.csv", writers.epic_noun_classes())
    write_text(t / "EPIC_100_video_info.csv", writers.epic_video_info(tal, cfg.resolution))
    participants = sorted({(p.extra["participant"], p.counter, p.extra["viewpoint"]) for p in tal})
    write_text(t / "participants.csv", writers.epic_participants(participants))
    write_text(t / "video_domains.csv", writers.epic_video_domains(tal))

    c = root / SET_DIRS["captions"]
    write_json(c / "train.json", writers.anc_json(_split(cap, "train")))
    write_json(c / "val_1.json", writers.anc_json(_split(cap, "val")))
    under = writers.oracle_underspecification(cap)
    write_json(root / SET_DIRS["oracle"] / "underspecification.json", under)
    write_json(root / SET_DIRS["oracle"] / "groups.json", writers.oracle_groups(under))

    q = root / SET_DIRS["qvh"]
    rows: dict[str, list[dict]] = {"train": [], "val": []}
    qid = 0
    for i, plan in enumerate(qvh):  # train videos first: qids count up through train, then val
        rng = np.random.default_rng([seed, DATASET_SALT["qvh"], cfg.qvh.seed_offset, 2, i])
        new = writers.qvh_rows(plan, rng, cfg.qvh.queries_per_video, qid)
        qid += len(new)
        rows[plan.extra["split"]] += new
    write_jsonl(q / "highlight_train_release.jsonl", rows["train"])
    write_jsonl(q / "highlight_val_release.jsonl", rows["val"])


def summary_metrics(manifest: dict[str, Any]) -> dict[str, Any]:
    """Flat counts for ``reports/metrics/synth/summary.json`` (DVC metrics)."""
    out = {}
    for name, counts in manifest["counts"].items():
        for key in ("videos", "videos_train", "videos_val", "events", "hours", "frames", "mean_event_seconds",
                    "queries"):
            if key in counts:
                out[f"{name}_{key}"] = counts[key]
    return out


@stage_main()
def main(argv: list[str] | None = None) -> int:
    """CLI (bad params → exit code 2): ``python -m pipeline.synth.generate --out data/raw [--metrics F] [--params params.yaml]``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="parent of the set directories (each replaced atomically)")
    ap.add_argument("--metrics", help="write summary counts (JSON) here")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--workers", type=int, default=min(8, len(os.sched_getaffinity(0))),
                    help="render processes (default: available cores, at most 8; does not change the output)")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    cfg = load_block(SynthConfig, args.params, params)
    seed = load_block(RuntimeConfig, args.params, params).seed
    manifest = synthesize(cfg, seed, args.out, args.workers)
    if args.metrics:
        write_json(args.metrics, summary_metrics(manifest))
    counts = manifest["counts"]
    print(" | ".join(f"{k}: {v['videos']} videos, {v['events']} events" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
