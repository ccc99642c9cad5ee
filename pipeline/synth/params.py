"""``synth`` params block: the synthetic world's sets, domains and timing."""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal


@dataclasses.dataclass(frozen=True)
class SynthAcquisitionConfig:
    """``synth.acquisition.<name>``: camera and sensor of one acquisition domain."""

    shake: float  # camera-shake amplitude in pixels (damped random walk, clipped); 0 = stabilised
    brightness: float  # global gain
    tint: tuple[float, float, float]  # per-channel (R, G, B) gain on top of the brightness
    noise: float  # std of additive Gaussian sensor noise, 0-255 units


@dataclasses.dataclass(frozen=True)
class SynthSetConfig:
    """What every synthetic dataset shares: frame rate, time grid, actors and the event planner."""

    seed_offset: int  # mixed into this set's seeds: change it to redraw this set alone
    fps: int
    time_grid: float  # event starts/stops and durations are multiples of this many seconds (whole frames)
    duration: tuple[float, float]  # video length range, seconds
    actors: int  # shapes per video
    twin_prob: float  # probability that actor 1 copies actor 0's shape + colour with the other size
    hidden_prob: float  # probability that an actor starts invisible (so it can fade in)
    verbs: list[str]  # verb keys the planner may use (vocabulary: pipeline/synth/vocab.py)
    verbs_per_video: int  # distinct verbs drawn per video (0 = all); small → repeated similar events
    repeat_prob: float  # probability to repeat an earlier (verb, shape, colour) when possible
    fast: tuple[float, float]  # duration range (s) of quick events
    slow: tuple[float, float]  # duration range (s) of slow events
    gap: tuple[float, float]  # idle gap range (s) between one event's end and the next start
    overlap: float  # probability that the next event starts while the previous one still runs
    counters: list[str]  # appearance domains drawn from (TAL: cycled over participants)


@dataclasses.dataclass(frozen=True)
class SynthTalConfig(SynthSetConfig):
    """``synth.tal``: EPIC-KITCHENS-style TAL set; acquisition "old" = 2-digit ids, "new" = 3-digit ids."""

    participants: int
    old_videos: int  # per participant (EK55-like, acquisition "old")
    new_videos: int  # per participant (EK100 extension, acquisition "new")
    val_videos: int  # per participant and kind, the last ones go to EPIC_100_validation.csv
    zoomed_participants: int  # the last N participants are filmed zoomed in (viewpoint domain)
    zoom: float  # magnification of the zoomed viewpoint


@dataclasses.dataclass(frozen=True)
class SynthCaptionsConfig(SynthSetConfig):
    """``synth.captions``: ActivityNet-Captions-style caption VMR set."""

    train_videos: int
    val_videos: int
    acquisitions: list[str]  # acquisition domains drawn from per video


@dataclasses.dataclass(frozen=True)
class SynthQvhConfig(SynthSetConfig):
    """``synth.qvh``: QVHighlights-style MR + HD set (time_grid should be 2 s: windows on clip bounds)."""

    train_videos: int
    val_videos: int
    acquisitions: list[str]
    queries_per_video: int


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    """``synth``: the synthetic video world (pipeline/synth/generate.py)."""

    BLOCK: ClassVar[str] = "synth"

    resolution: int  # square frames, pixels
    crf: int  # x264 constant rate factor
    gop: float  # seconds between keyframes
    idle_amplitude: float  # idle wobble of every shape, scene units (fraction of the frame)
    idle_period: float  # seconds per idle wobble cycle
    acquisition: dict[str, SynthAcquisitionConfig]  # must define "old" and "new" (used by TAL)
    tal: SynthTalConfig
    captions: SynthCaptionsConfig
    qvh: SynthQvhConfig
