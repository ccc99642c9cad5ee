"""``synth`` params block: the synthetic world's sets, domains and timing."""
from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar

from pipeline.core.params import Fraction, NonNegFloat, NonNegInt, PositiveFloat, PositiveInt, Range


@dataclasses.dataclass(frozen=True)
class SynthAcquisitionConfig:
    """``synth.acquisition.<name>``: camera and sensor of one acquisition domain."""

    shake: NonNegFloat  # camera-shake amplitude in pixels (damped random walk, clipped); 0 = stabilised
    brightness: PositiveFloat  # global gain
    tint: tuple[NonNegFloat, NonNegFloat, NonNegFloat]  # per-channel (R, G, B) gain on top of the brightness
    noise: NonNegFloat  # std of additive Gaussian sensor noise, 0-255 units


@dataclasses.dataclass(frozen=True)
class SynthSetConfig:
    """What every synthetic dataset shares: frame rate, time grid, actors and the event planner."""

    # ranges here are per value; min <= max of the (min, max) pairs, the actor count's upper bound and the
    # fps/time_grid fit are cross-field checks in pipeline/synth/generate.py:validate
    seed_offset: NonNegInt  # mixed into this set's seeds: change it to redraw this set alone
    fps: PositiveInt
    time_grid: PositiveFloat  # event starts/stops and durations are multiples of this many seconds (whole frames)
    duration: tuple[PositiveFloat, PositiveFloat]  # video length range, seconds
    actors: PositiveInt  # shapes per video
    twin_prob: Fraction  # probability that actor 1 copies actor 0's shape + colour with the other size
    hidden_prob: Fraction  # probability that an actor starts invisible (so it can fade in)
    verbs: list[str]  # verb keys the planner may use (vocabulary: pipeline/synth/vocab.py)
    verbs_per_video: NonNegInt  # distinct verbs drawn per video (0 = all); small → repeated similar events
    repeat_prob: Fraction  # probability to repeat an earlier (verb, shape, colour) when possible
    fast: tuple[PositiveFloat, PositiveFloat]  # duration range (s) of quick events
    slow: tuple[PositiveFloat, PositiveFloat]  # duration range (s) of slow events
    gap: tuple[PositiveFloat, PositiveFloat]  # idle gap range (s) between one event's end and the next start
    overlap: Fraction  # probability that the next event starts while the previous one still runs
    counters: list[str]  # appearance domains drawn from (TAL: cycled over participants)


@dataclasses.dataclass(frozen=True)
class SynthTalConfig(SynthSetConfig):
    """``synth.tal``: EPIC-KITCHENS-style TAL set; acquisition "old" = 2-digit ids, "new" = 3-digit ids."""

    participants: Annotated[int, Range(low=1, high=99)]  # ids P01..P99
    old_videos: Annotated[int, Range(low=0, high=99)]  # per participant (EK55-like, acquisition "old"): P01_01..P01_99
    new_videos: Annotated[int, Range(low=0, high=899)]  # per participant (EK100 extension, "new"): P01_101..P01_999
    val_videos: NonNegInt  # per participant and kind, the last ones go to EPIC_100_validation.csv
    zoomed_participants: NonNegInt  # the last N participants are filmed zoomed in (viewpoint domain)
    zoom: Annotated[float, Range(low=1)]  # magnification of the zoomed viewpoint (1 = not zoomed)


@dataclasses.dataclass(frozen=True)
class SynthCaptionsConfig(SynthSetConfig):
    """``synth.captions``: ActivityNet-Captions-style caption VMR set."""

    train_videos: PositiveInt
    val_videos: PositiveInt
    acquisitions: list[str]  # acquisition domains drawn from per video


@dataclasses.dataclass(frozen=True)
class SynthQvhConfig(SynthSetConfig):
    """``synth.qvh``: QVHighlights-style MR + HD set (time_grid should be 2 s: windows on clip bounds)."""

    train_videos: PositiveInt
    val_videos: PositiveInt
    acquisitions: list[str]
    queries_per_video: PositiveInt


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    """``synth``: the synthetic video world (pipeline/synth/generate.py)."""

    BLOCK: ClassVar[str] = "synth"

    resolution: Annotated[int, Range(low=16)]  # square frames, pixels (smaller leaves shapes a pixel or two)
    crf: Annotated[int, Range(low=0, high=51)]  # x264 constant rate factor (x264's own range)
    gop: PositiveFloat  # seconds between keyframes
    idle_amplitude: Fraction  # idle wobble of every shape, scene units (fraction of the frame)
    idle_period: PositiveFloat  # seconds per idle wobble cycle
    acquisition: dict[str, SynthAcquisitionConfig]  # must define "old" and "new" (used by TAL)
    tal: SynthTalConfig
    captions: SynthCaptionsConfig
    qvh: SynthQvhConfig
