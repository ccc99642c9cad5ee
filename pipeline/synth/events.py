"""Actors, events and the seeded planner that schedules events on a frame grid.

Every event starts and stops on a multiple of the set's ``time_grid`` (a whole number of frames), so the
annotation times written to the CSV/JSON files are exact: at the start frame an actor is still in its
pre-event state, at the stop frame it has reached its post-event state, and it changes only in between.
Events of one actor never overlap (and are separated by at least one grid step); events of different actors
may. An actor's state (anchor, size, visibility, colour) carries over from one event to the next, so e.g. a
shape can only ``grow`` while small and only ``fade-in`` while invisible.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from pipeline.synth import vocab


@dataclass(frozen=True)
class Actor:
    """A shape in a video with its initial state."""

    shape: str
    color: str
    size: str  # "small" | "large"
    anchor: tuple[int, int]  # (row, col) on the 3 x 3 grid
    visible: bool
    idle_phase: float  # phase (radians) of the idle wobble, so actors do not wobble in sync


@dataclass(frozen=True)
class Event:
    """One action of one actor on frames ``[start_frame, stop_frame]`` (state changes strictly after start)."""

    actor: int  # index into VideoPlan.actors
    verb: str  # vocab verb key
    start_frame: int
    stop_frame: int
    manner: str  # manner word (see vocab.MANNER_WORDS)
    size: str  # size at the start of the event
    color: str  # colour at the start of the event
    anchor: tuple[int, int]  # anchor at the start
    anchor_to: tuple[int, int]  # anchor at the end (differs only for slide / jump)
    color_to: str  # colour at the end (differs only for change-color)


@dataclass(frozen=True)
class VideoPlan:
    """Everything needed to render one video and to write its annotations."""

    video_id: str
    fps: int
    n_frames: int
    counter: str  # appearance domain
    acquisition: str  # acquisition domain ("old" / "new" style)
    zoom: float  # viewpoint: 1 = full scene, > 1 = zoomed-in crop
    texture_seed: int  # background texture (same kitchen → same texture)
    render_seed: int  # camera shake, sensor noise
    actors: tuple[Actor, ...]
    events: tuple[Event, ...]
    extra: dict[str, Any] = field(default_factory=dict)  # dataset-specific facts (participant, split …)

    @property
    def duration(self) -> float:
        """Video length in seconds (frames / fps, exact)."""
        return self.n_frames / self.fps

    def seconds(self, frame: int) -> float:
        """Time of a frame in seconds, rounded to 6 decimals so written times print exactly."""
        return round(frame / self.fps, 6)


def grid_frames(fps: int, time_grid: float) -> int:
    """Frames per grid step; the grid must be a whole number of frames (checked, clear error)."""
    g = time_grid * fps
    if g < 1 or abs(g - round(g)) > 1e-6:
        raise ValueError(f"time_grid {time_grid} s is not a whole number (>= 1) of frames at {fps} fps")
    return int(round(g))


def _snap(seconds: float, g: int, fps: int) -> int:
    """Seconds → frames, rounded to the grid, at least one grid step."""
    return max(1, int(round(seconds * fps / g))) * g


def make_actors(rng: np.random.Generator, n: int, twin_prob: float, hidden_prob: float) -> list[Actor]:
    """Draw ``n`` actors on distinct anchors with distinct (shape, colour) — except an optional twin.

    A twin shares shape and colour with actor 0 but has the other size, so that two different actors give
    identical captions once the size is dropped (oracle level S2) — under-specified queries then match
    moments of several actors, as in real search queries.
    """
    if n > len(vocab.ANCHORS):
        raise ValueError(f"at most {len(vocab.ANCHORS)} actors fit on the grid, got {n}")
    combos = [(s, c) for s in vocab.SHAPES for c in vocab.COLORS]
    picks = rng.permutation(len(combos))[:n]
    anchors = rng.permutation(len(vocab.ANCHORS))[:n]
    actors = []
    for i in range(n):
        shape, color = combos[picks[i]]
        size = ("small", "large")[int(rng.integers(2))]
        if i == 1 and rng.random() < twin_prob:
            shape, color = actors[0].shape, actors[0].color
            size = "large" if actors[0].size == "small" else "small"
        visible = bool(rng.random() >= hidden_prob)
        actors.append(Actor(shape, color, size, vocab.ANCHORS[anchors[i]], visible,
                            float(rng.uniform(0, 2 * np.pi))))
    if not any(a.visible for a in actors):  # a video where nothing is on screen at first is not useful
        actors[0] = replace(actors[0], visible=True)
    return actors


@dataclass
class _State:
    """Mutable planning state of one actor."""

    shape: str
    color: str
    size: str
    anchor: tuple[int, int]
    visible: bool
    busy_until: int = 0


def _destinations(verb: str, st: _State, occupied: set) -> list[tuple[int, int]]:
    """Free anchors a slide (same row, same column or diagonal) or a jump (same row) can end on."""
    return [a for a in vocab.ANCHORS
            if a != st.anchor and a not in occupied and (verb == "slide" or a[0] == st.anchor[0])]


def _signature(verb: str, st: _State, manner_idx: int, anchor_to, color_to) -> tuple:
    """Everything the full caption says about an event: equal signatures ⇔ equal captions."""
    return (verb, st.size, st.color, st.shape, manner_idx, st.anchor, anchor_to, color_to)


def _choose(rng: np.random.Generator, options: list[tuple[str, int]], verbs: list[str], states: list[_State],
            used: set) -> tuple | None:
    """Pick (verb, actor, manner, destination, target colour) whose full caption is new in the video.

    The verb is drawn uniformly among the verbs present in ``options`` (so verbs with many compatible actors
    are not favoured), then the actor, manner, destination anchor and target colour; a choice that would
    repeat an earlier caption is retried with the other manner and other destinations/colours, then dropped.
    """
    options = list(options)
    while options:
        names = sorted({v for v, _ in options}, key=verbs.index)
        verb = names[int(rng.integers(len(names)))]
        who = [i for v, i in options if v == verb]
        i = who[int(rng.integers(len(who)))]
        st = states[i]
        targets: list[tuple] = [(st.anchor, st.color)]
        if verb in ("slide", "jump"):
            occupied = {s.anchor for j, s in enumerate(states) if j != i}
            targets = [(a, st.color) for a in _destinations(verb, st, occupied)]
        elif verb == "change-color":
            targets = [(st.anchor, c) for c in vocab.COLORS if c != st.color]
        first = int(rng.integers(2))
        for k in rng.permutation(len(targets)):
            anchor_to, color_to = targets[k]
            for manner_idx in (first, 1 - first):
                if _signature(verb, st, manner_idx, anchor_to, color_to) not in used:
                    return verb, i, manner_idx, anchor_to, color_to
        options.remove((verb, i))
    return None


def _compatible(verb: str, st: _State, occupied: set) -> bool:
    """Whether ``verb`` can happen to an actor in state ``st`` (see the module docstring)."""
    if verb == "fade-in":
        return not st.visible
    if not st.visible:
        return False
    if verb == "grow":
        return st.size == "small"
    if verb == "shrink":
        return st.size == "large"
    if verb == "spin":
        return st.shape in vocab.ROTATABLE
    if verb in ("bounce", "jump") and st.anchor[0] == 0:
        return False  # top row: the upward arc would leave the frame
    if verb in ("slide", "jump"):
        return bool(_destinations(verb, st, occupied))
    return True


def _duration(rng: np.random.Generator, verb: str, manner_idx: int, fast, slow) -> float:
    """Event duration in seconds: the manner decides fast vs slow where it is about speed or count."""
    manner = vocab.VERB_BY_KEY[verb].manner
    if manner in ("speed", "count"):
        lo, hi = (fast, slow)[manner_idx]
    elif manner == "height":
        lo, hi = fast
    elif manner == "rate":
        lo, hi = slow  # blinking needs a few cycles to be recognisable
    else:
        lo, hi = fast[0], slow[1]
    return float(rng.uniform(lo, hi))


def plan_events(rng: np.random.Generator, cfg: Any, n_frames: int, actors: list[Actor]) -> list[Event]:
    """Schedule events for one video (see the module docstring for the rules).

    ``cfg`` is a ``pipeline.synth.params.SynthSetConfig``: fps, time_grid, verbs, verbs_per_video, repeat_prob,
    fast, slow, gap, overlap.
    """
    g = grid_frames(cfg.fps, cfg.time_grid)
    verbs = list(cfg.verbs)
    pool = verbs
    if 0 < cfg.verbs_per_video < len(verbs):
        pool = [verbs[i] for i in sorted(rng.permutation(len(verbs))[: cfg.verbs_per_video])]
    states = [_State(a.shape, a.color, a.size, a.anchor, a.visible) for a in actors]
    events: list[Event] = []
    seen: set[tuple[str, str, str]] = set()  # (verb, shape, color) already used → similar repeats
    used: set[tuple] = set()  # full descriptions already used: captions stay unique within a video
    t = _snap(rng.uniform(*cfg.gap), g, cfg.fps)
    margin = g  # keep the last grid step free so every event ends inside the video
    while t < n_frames - margin:
        free = [i for i, s in enumerate(states) if s.busy_until <= t]
        if not free:
            t = min(s.busy_until for s in states)
            continue
        options = []
        for candidates in (pool, verbs):
            for i in free:
                occupied = {s.anchor for j, s in enumerate(states) if j != i}
                options += [(v, i) for v in candidates if _compatible(v, states[i], occupied)]
            if options:
                break
        if not options:
            t += g
            continue
        if events and rng.random() < cfg.repeat_prob:
            repeats = [o for o in options if (o[0], states[o[1]].shape, states[o[1]].color) in seen]
            options = repeats or options
        choice = _choose(rng, options, verbs, states, used)
        if choice is None:  # every option would repeat an earlier caption word for word
            t += g
            continue
        verb, i, manner_idx, anchor_to, color_to = choice
        st = states[i]
        stop = t + _snap(_duration(rng, verb, manner_idx, cfg.fast, cfg.slow), g, cfg.fps)
        if stop > n_frames - margin:
            break
        manner = vocab.MANNER_WORDS[vocab.VERB_BY_KEY[verb].manner][manner_idx]
        events.append(Event(i, verb, t, stop, manner, st.size, st.color, st.anchor, anchor_to, color_to))
        seen.add((verb, st.shape, st.color))
        used.add(_signature(verb, st, manner_idx, anchor_to, color_to))
        # carry the post-event state over to the actor's next event
        st.anchor, st.color = anchor_to, color_to
        st.size = {"grow": "large", "shrink": "small"}.get(verb, st.size)
        st.visible = {"fade-in": True, "fade-out": False}.get(verb, st.visible)
        st.busy_until = stop + g
        if rng.random() < cfg.overlap:
            t += max(g, _snap(rng.uniform(0.3, 0.7) * (stop - t) / cfg.fps, g, cfg.fps))
        else:
            t = stop + _snap(rng.uniform(*cfg.gap), g, cfg.fps)
    return sorted(events, key=lambda e: (e.start_frame, e.stop_frame, e.actor))


def plan_video(video_id: str, cfg: Any, seed: list[int], counter: str, acquisition: str, zoom: float,
               texture_seed: int, extra: dict | None = None) -> VideoPlan:
    """Draw duration, actors and events of one video from the seed sequence ``seed``."""
    rng = np.random.default_rng(seed)
    g = grid_frames(cfg.fps, cfg.time_grid)
    n_frames = _snap(rng.uniform(*cfg.duration), g, cfg.fps)
    actors = make_actors(rng, cfg.actors, cfg.twin_prob, cfg.hidden_prob)
    events = plan_events(rng, cfg, n_frames, actors)
    render_seed = int(rng.integers(2**31))
    return VideoPlan(video_id, cfg.fps, n_frames, counter, acquisition, zoom, texture_seed, render_seed,
                     tuple(actors), tuple(events), dict(extra or {}))
