"""Per-frame state of every actor, computed from a plan's events.

``actor_tracks`` returns, for each actor, arrays over all frames: scene position ``x``/``y``, radius ``r``
(fraction of the frame width), rotation ``angle`` (radians), opacity ``alpha`` and colour ``rgb``. Events are
linear in their progress ``p = (frame - start) / (stop - start)`` (clipped to [0, 1]), so an event changes the
picture exactly on frames ``start+1 .. stop``. Bounce, jump arcs and blinks vanish at p = 0 and p = 1 (a blink
starts and ends with an off phase: the shape disappears right after the start frame and is back exactly at
the stop frame).

Idle motion: every actor wobbles slightly all the time (a slow ellipse of ``idle_amplitude`` scene units), so
background periods are not frozen and "anything moves" is not a shortcut for "an event happens".
"""
from __future__ import annotations

import numpy as np

from pipeline.synth import vocab
from pipeline.synth.events import VideoPlan

TRACK_KEYS = ("x", "y", "r", "angle", "alpha", "rgb")


def _progress(n_frames: int, start: int, stop: int) -> np.ndarray:
    """Linear progress of an event for frames ``start..n_frames-1`` (0 at start, 1 from stop on)."""
    f = np.arange(start, n_frames, dtype=np.float64)
    return np.clip((f - start) / (stop - start), 0.0, 1.0)


def actor_tracks(plan: VideoPlan, idle_amplitude: float, idle_period: float) -> list[dict[str, np.ndarray]]:
    """Per-actor state arrays (length ``plan.n_frames``; ``rgb`` is ``[n_frames, 3]``) — see module doc."""
    n = plan.n_frames
    out = []
    for ai, actor in enumerate(plan.actors):
        x0, y0 = vocab.anchor_xy(actor.anchor)
        x = np.full(n, x0)
        y = np.full(n, y0)
        y_off = np.zeros(n)
        r = np.full(n, vocab.SIZES[actor.size])
        angle = np.zeros(n)
        alpha = np.full(n, 1.0 if actor.visible else 0.0)
        blink = np.ones(n)
        rgb = np.tile(np.asarray(vocab.COLORS[actor.color], dtype=np.float64), (n, 1))
        for ev in (e for e in plan.events if e.actor == ai):
            s, e = ev.start_frame, ev.stop_frame
            p = _progress(n, s, e)
            seg = slice(s, e + 1)
            pe = p[: e + 1 - s]  # progress within the event only
            if ev.verb in ("slide", "jump"):
                (xa, ya), (xb, yb) = vocab.anchor_xy(ev.anchor), vocab.anchor_xy(ev.anchor_to)
                x[s:] = xa * (1.0 - p) + xb * p  # exact at both ends (no float drift between events)
                y[s:] = ya * (1.0 - p) + yb * p
                if ev.verb == "jump":
                    y_off[seg] -= vocab.JUMP_HEIGHT[ev.manner] * 4.0 * pe * (1.0 - pe)
            elif ev.verb == "bounce":
                hop = np.abs(np.sin(np.pi * vocab.BOUNCE_COUNT[ev.manner] * pe))
                hop[pe >= 1.0] = 0.0  # sin(kπ) is ~1e-16, not 0: the shape must land exactly at its stop frame
                y_off[seg] -= vocab.BOUNCE_HEIGHT * hop
            elif ev.verb == "spin":
                sign = 1.0 if ev.manner == "clockwise" else -1.0  # y points down: +angle is clockwise
                turns = max(1, int(round((e - s) / plan.fps / vocab.SPIN_SECONDS_PER_TURN)))
                angle[s:] = angle[s] + sign * 2.0 * np.pi * turns * p
            elif ev.verb in ("grow", "shrink"):
                ra = vocab.SIZES[ev.size]
                rb = vocab.SIZES["large" if ev.verb == "grow" else "small"]
                r[s:] = ra * (1.0 - p) + rb * p
            elif ev.verb == "fade-in":
                alpha[s:] = p
            elif ev.verb == "fade-out":
                alpha[s:] = 1.0 - p
            elif ev.verb == "blink":
                # 2k-1 equal phases off, on, off, ..., off: the shape vanishes right after the start frame
                # and reappears exactly at the stop frame, so the visible event spans the annotation.
                cycles = max(1, int(round((e - s) / plan.fps / vocab.BLINK_PERIOD[ev.manner])))
                phases = 2 * cycles - 1
                off = np.floor(pe * phases) % 2 == 0
                off[0] = off[-1] = False  # p = 0 and p = 1: the pre/post-event state (visible)
                blink[seg] = np.where(off, 0.0, 1.0)
            elif ev.verb == "change-color":
                ca = np.asarray(vocab.COLORS[ev.color], dtype=np.float64)
                cb = np.asarray(vocab.COLORS[ev.color_to], dtype=np.float64)
                rgb[s:] = ca * (1.0 - p[:, None]) + cb * p[:, None]
            else:  # pragma: no cover - the planner only emits vocabulary verbs
                raise ValueError(f"{plan.video_id}: unknown verb {ev.verb!r}")
        t = np.arange(n) / plan.fps
        phase = 2.0 * np.pi * t / idle_period + actor.idle_phase
        x = x + idle_amplitude * np.sin(phase)
        y = y + y_off + 0.6 * idle_amplitude * np.cos(phase)
        out.append({"x": x, "y": y, "r": r, "angle": angle, "alpha": alpha * blink, "rgb": rgb})
    return out
