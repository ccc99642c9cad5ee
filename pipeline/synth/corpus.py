"""Pretraining corpus for the embedded video backbones (DESIGN §4a): labelled clips from the synthetic world.

The corpus is drawn from the same world as the downstream sets (the ``synth.<set>`` settings of the worlds a
backbone is used on: ``tal`` for SlowFast/I3D, ``captions`` + ``qvh`` for InternVideo2) but from its **own seed
streams** (``[seed, CORPUS_SALT, part, set salt, ...]``, never the ``[seed, DATASET_SALT, seed_offset, ...]``
streams of ``pipeline/synth/generate.py``), so no corpus video is a train/val/test video. Videos cycle through every
(counter, acquisition, viewpoint) combination of their set, so every domain the downstream sets contain is
covered — including both TAL cameras (``old``/``new``) and the zoomed viewpoint.

Videos are rendered in memory and only the frames the sampled clips need are drawn. Clips are sampled exactly
as extraction sees them (``pipeline/features/decode.py``): the recipe's grid (point k at (k + 0.5)/fps), the frame
on screen at each grid time, and the same pixel path — RGB → yuv420p with the encoder's integer conversion
(``writers.rgb_to_yuv420p``), then one swscale ``reformat`` to ``rgb24`` at the recipe size with the recipe's
interpolation (and centre crop for ``resize: crop``). Only the H.264 compression step is missing.

Labels of a clip window ``[k0/fps, (k0 + frames)/fps]``: an event *covers* the clip when their overlap is at
least ``cover`` of the shorter of the two; the clip is an *event* clip (verb, shape, colour and size of the
covering event with the largest overlap; caption = the full captions of all covering events) when some event
covers it, *idle* when no event overlaps it at all, and *ambiguous* (dropped) otherwise.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from pipeline.synth import captions as capt
from pipeline.synth import vocab
from pipeline.synth.events import VideoPlan, plan_video
from pipeline.synth.render import Renderer
from pipeline.synth.writers import rgb_to_yuv420p

CORPUS_SALT = 7_919  # first seed word after runtime.seed; pipeline/synth/generate.py uses DATASET_SALT 1..3 there
SET_SALT = {"tal": 1, "captions": 2, "qvh": 3}
PARTS = {"train": 0, "heldout": 1, "probe": 2}  # independent seed streams of the corpus
IDLE = "idle"
VERB_CLASSES: tuple[str, ...] = tuple(v.key for v in vocab.VERBS) + (IDLE,)
SHAPE_CLASSES: tuple[str, ...] = vocab.SHAPES
COLOR_CLASSES: tuple[str, ...] = tuple(vocab.COLORS)
SIZE_CLASSES: tuple[str, ...] = tuple(vocab.SIZES)
IDLE_CAPTION = "Nothing happens: the shapes stay where they are."


def _domains(synth: Any, set_name: str) -> list[tuple[str, str, float]]:
    """Every (counter, acquisition, zoom) combination the downstream set ``set_name`` can contain."""
    sc = getattr(synth, set_name)
    if set_name == "tal":
        acqs = ["old", "new"]
        zooms = [1.0, float(sc.zoom)] if sc.zoomed_participants > 0 else [1.0]
    else:
        acqs = list(sc.acquisitions)
        zooms = [1.0]
    return list(itertools.product(sc.counters, acqs, zooms))


def plan_corpus(synth: Any, sets: Sequence[str], seed: int, videos: int, part: str = "train") -> list[VideoPlan]:
    """``videos`` corpus plans, alternating over ``sets`` and cycling each set's domain combinations.

    ``synth`` is the ``synth`` block (``pipeline.synth.params.SynthConfig``), ``seed`` the corpus seed
    (``runtime.seed + features.pretrain.seed_offset``), ``part`` one of ``train | heldout | probe``.
    """
    if part not in PARTS:
        raise ValueError(f"corpus part {part!r} not in {list(PARTS)}")
    unknown = [s for s in sets if s not in SET_SALT]
    if unknown or not sets:
        raise ValueError(f"corpus worlds {list(sets)}: expected a non-empty subset of {list(SET_SALT)}")
    domains = {s: _domains(synth, s) for s in sets}
    plans = []
    for i in range(videos):
        set_name = sets[i % len(sets)]
        j = i // len(sets)  # index within the set
        counter, acq, zoom = domains[set_name][j % len(domains[set_name])]
        base = [seed, CORPUS_SALT, PARTS[part], SET_SALT[set_name]]
        texture = int(np.random.default_rng(base + [0, j]).integers(2**31))
        plans.append(plan_video(f"pretrain_{part}_{set_name}_{j:05d}", getattr(synth, set_name), base + [1, j],
                                counter, acq, zoom, texture_seed=texture,
                                extra={"set": set_name, "split": part,
                                       "viewpoint": "zoomed" if zoom != 1.0 else "wide"}))
    return plans


def window_frames(plan: VideoPlan, recipe: Any, k0: int) -> np.ndarray:
    """Video frame indices of the window starting at grid point ``k0``: the frame on screen at each grid time
    (decode serves time t with the last frame whose timestamp is ≤ t, within decode's 1e-6 s tolerance)."""
    grid = np.minimum(k0 + np.arange(recipe.frames), grid_points(plan, recipe) - 1)  # decode's clamp
    idx = np.floor((grid + 0.5) / recipe.fps * plan.fps + 1e-6).astype(np.int64)
    return np.minimum(idx, plan.n_frames - 1)


def grid_points(plan: VideoPlan, recipe: Any) -> int:
    """Grid points inside the video (as ``decode.plan_windows`` counts them)."""
    return max(0, math.ceil(plan.duration * recipe.fps - 0.5 - 1e-9))


@dataclass(frozen=True)
class ClipLabel:
    """Labels of one clip window (see the module docstring); ``verb == "idle"`` has no attributes."""

    kind: str  # "event" | "idle" | "ambiguous"
    verb: str
    shape: str | None
    color: str | None
    size: str | None
    caption: str


def label_window(plan: VideoPlan, start: float, stop: float, cover: float = 0.5) -> ClipLabel:
    """Label of the time window ``[start, stop]`` seconds of ``plan`` (rule in the module docstring)."""
    best, best_ov, covering, any_overlap = None, 0.0, [], False
    for ev in plan.events:
        a, b = ev.start_frame / plan.fps, ev.stop_frame / plan.fps
        ov = min(stop, b) - max(start, a)
        if ov <= 1e-9:
            continue
        any_overlap = True
        if ov >= cover * min(stop - start, b - a) - 1e-9:
            covering.append(ev)
            if ov > best_ov:
                best, best_ov = ev, ov
    if best is None:
        if any_overlap:
            return ClipLabel("ambiguous", IDLE, None, None, None, "")
        return ClipLabel("idle", IDLE, None, None, None, IDLE_CAPTION)
    actor = plan.actors[best.actor]
    text = " ".join(capt.describe(ev, plan.actors[ev.actor]) for ev in sorted(covering, key=lambda e: e.actor))
    return ClipLabel("event", best.verb, actor.shape, best.color, best.size, text)


class PixelPath:
    """Rendered RGB frames → the uint8 pixels extraction decodes (yuv420p, swscale to the recipe size)."""

    def __init__(self, recipe: Any):
        from av.video.reformatter import VideoReformatter

        from pipeline.features.decode import _INTERPOLATION

        self.recipe = recipe
        self.interp = _INTERPOLATION[recipe.interpolation]
        self.reformatter = VideoReformatter()  # keeps its swscale context, like decode_at

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        import av

        from pipeline.features.decode import _center_crop, output_size

        h, w = rgb.shape[:2]
        out_w, out_h = output_size(w, h, self.recipe.size, self.recipe.resize)
        frame = av.VideoFrame.from_ndarray(rgb_to_yuv420p(rgb), format="yuv420p")
        arr = self.reformatter.reformat(frame, out_w, out_h, "rgb24", interpolation=self.interp,
                                        threads=1).to_ndarray()
        return _center_crop(arr, self.recipe.size) if self.recipe.resize == "crop" else arr


def renderer_for(plan: VideoPlan, synth: Any) -> Renderer:
    """The renderer ``pipeline/synth/generate.py`` uses for ``plan`` (same resolution, acquisition and idle motion)."""
    return Renderer(plan, synth.resolution, synth.acquisition[plan.acquisition], synth.idle_amplitude,
                    synth.idle_period)


def render_windows(plan: VideoPlan, synth: Any, recipe: Any, starts: Sequence[int],
                   pixels: PixelPath | None = None) -> np.ndarray:
    """uint8 clips ``[len(starts), frames, size, size, 3]`` of the windows starting at grid points ``starts``;
    each needed frame is rendered and converted once."""
    pixels = pixels or PixelPath(recipe)
    renderer = renderer_for(plan, synth)
    idx = np.stack([window_frames(plan, recipe, k) for k in starts]) if len(starts) else np.zeros((0, 0), int)
    cache: dict[int, np.ndarray] = {}
    out = np.empty((len(starts), recipe.frames, recipe.size, recipe.size, 3), dtype=np.uint8)
    for r, row in enumerate(idx):
        for f, i in enumerate(row.tolist()):
            if i not in cache:
                cache[i] = pixels(renderer.frame(i))
            out[r, f] = cache[i]
    return out


@dataclass
class ClipSet:
    """A bank of labelled clips: ``clips`` uint8 [N, T, S, S, 3] and per-clip class indices (-1 = none)."""

    clips: np.ndarray
    verb: np.ndarray
    shape: np.ndarray
    color: np.ndarray
    size: np.ndarray
    captions: list[str]
    video: np.ndarray  # index of the source plan

    def __len__(self) -> int:
        return len(self.verb)


def _index(value: str | None, classes: Sequence[str]) -> int:
    return -1 if value is None else classes.index(value)


def pick_windows(plan: VideoPlan, recipe: Any, clips_per_video: int,
                 rng: np.random.Generator) -> tuple[list[int], list[ClipLabel]]:
    """Up to ``clips_per_video`` grid starts of ``plan`` in a seeded random order, skipping ambiguous windows
    (two events half-covering one clip), with their labels. Empty when the video is shorter than one window."""
    n_start = grid_points(plan, recipe) - recipe.frames + 1
    starts, labels = [], []
    for k in rng.permutation(max(0, n_start)).tolist():
        label = label_window(plan, k / recipe.fps, (k + recipe.frames) / recipe.fps)
        if label.kind == "ambiguous":
            continue
        starts.append(k)
        labels.append(label)
        if len(starts) == clips_per_video:
            break
    return starts, labels


def sample_clips(plans: Sequence[VideoPlan], synth: Any, recipe: Any, clips_per_video: int, seed: int,
                 progress: bool = False, desc: str = "corpus clips") -> ClipSet:
    """Draw up to ``clips_per_video`` non-ambiguous windows per plan (any grid start, seeded) and render them."""
    from tqdm import tqdm

    pixels = PixelPath(recipe)
    parts, labels, vids = [], [], []
    for vi, plan in enumerate(tqdm(plans, desc=desc, disable=not progress, mininterval=2.0)):
        starts, labs = pick_windows(plan, recipe, clips_per_video, np.random.default_rng([seed, vi]))
        if starts:
            parts.append(render_windows(plan, synth, recipe, starts, pixels))
            labels += labs
            vids += [vi] * len(starts)
    if not labels:
        raise ValueError("the pretraining corpus produced no clips (videos shorter than one window?)")
    return ClipSet(
        clips=np.concatenate(parts),
        verb=np.array([VERB_CLASSES.index(x.verb) for x in labels], dtype=np.int64),
        shape=np.array([_index(x.shape, SHAPE_CLASSES) for x in labels], dtype=np.int64),
        color=np.array([_index(x.color, COLOR_CLASSES) for x in labels], dtype=np.int64),
        size=np.array([_index(x.size, SIZE_CLASSES) for x in labels], dtype=np.int64),
        captions=[x.caption for x in labels],
        video=np.array(vids, dtype=np.int64),
    )


def extraction_windows(plan: VideoPlan, recipe: Any) -> list[int]:
    """Grid starts of every feature row extraction produces for ``plan`` (the last one clamped like decode)."""
    n_grid = grid_points(plan, recipe)
    if n_grid < recipe.frames:
        return []
    return [r * recipe.stride for r in range(math.ceil((n_grid - recipe.frames) / recipe.stride) + 1)]
