"""The closed vocabulary of the synthetic world.

Everything a caption can say is listed here, so captions, EPIC class tables and the renderer agree by
construction. Scene coordinates are normalised: x grows to the right, y grows downwards, both in [0, 1].
Text uses US spelling ("color", "center") because the text encoders and LLMs downstream expect it.
"""
from __future__ import annotations

from dataclasses import dataclass

# ---- shapes (EPIC "nouns") ------------------------------------------------------------------------------
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")
SHAPE_CATEGORY = {"circle": "round", "square": "polygon", "triangle": "polygon", "star": "polygon"}
# Shapes whose rotation is visible (a spinning circle looks static, so the planner never spins one).
ROTATABLE = frozenset({"square", "triangle", "star"})

# ---- colours (RGB 0-255), chosen to contrast with every counter ------------------------------------------
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (222, 38, 38),
    "green": (34, 178, 60),
    "blue": (40, 84, 232),
    "yellow": (246, 214, 30),
    "purple": (150, 52, 204),
    "orange": (252, 134, 22),
}

# ---- sizes: radius as a fraction of the frame width ------------------------------------------------------
SIZES: dict[str, float] = {"small": 0.11, "large": 0.17}

# ---- the 3 x 3 grid of anchor positions ------------------------------------------------------------------
COLS: tuple[str, ...] = ("left", "center", "right")
ROWS: tuple[str, ...] = ("top", "middle", "bottom")
GRID_COORD = (0.18, 0.5, 0.82)  # scene coordinate of column / row 0, 1, 2
ANCHORS: tuple[tuple[int, int], ...] = tuple((r, c) for r in range(3) for c in range(3))  # (row, col)


def anchor_xy(anchor: tuple[int, int]) -> tuple[float, float]:
    """Scene (x, y) of a grid anchor ``(row, col)``."""
    row, col = anchor
    return GRID_COORD[col], GRID_COORD[row]


# ---- counters = appearance domains ------------------------------------------------------------------------
@dataclass(frozen=True)
class Counter:
    """A counter-top background: base colour, texture kind and texture contrast."""

    base: tuple[int, int, int]
    texture: str  # "tiles" | "wood"
    contrast: float  # amplitude (0-255 units) of the texture
    grout: float  # signed brightness change of the tile grout lines


COUNTERS: dict[str, Counter] = {
    "dark": Counter(base=(50, 48, 56), texture="tiles", contrast=10.0, grout=26.0),
    "white": Counter(base=(220, 218, 212), texture="tiles", contrast=8.0, grout=-34.0),
    "other": Counter(base=(150, 108, 70), texture="wood", contrast=22.0, grout=0.0),
}


# ---- verbs (EPIC verb classes) ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Verb:
    """One action class: EPIC key (hyphenated), surface forms, category and caption words."""

    key: str  # EPIC verb key, e.g. "fade-in"
    instances: tuple[str, ...]  # surface forms listed in EPIC_100_verb_classes.csv
    category: str
    third_person: str  # "slides" — used in captions
    generic: str  # S3 verb phrase, e.g. "something slides"
    manner: str  # which manner attribute the verb carries: speed | height | count | direction | rate


VERBS: tuple[Verb, ...] = (
    Verb("slide", ("slide", "slide-across", "glide", "move"), "translate", "slides", "something slides", "speed"),
    Verb("bounce", ("bounce", "bounce-up", "hop-in-place"), "oscillate", "bounces", "something bounces", "count"),
    Verb("spin", ("spin", "rotate", "turn-around"), "rotate", "spins", "something spins", "direction"),
    Verb("grow", ("grow", "expand", "enlarge"), "scale", "grows", "something grows", "speed"),
    Verb("shrink", ("shrink", "contract", "get-smaller"), "scale", "shrinks", "something shrinks", "speed"),
    Verb("fade-in", ("fade-in", "appear"), "visibility", "fades in", "something fades in", "speed"),
    Verb("fade-out", ("fade-out", "disappear", "vanish"), "visibility", "fades out", "something fades out", "speed"),
    Verb("blink", ("blink", "flash", "flicker"), "visibility", "blinks", "something blinks", "rate"),
    Verb("change-color", ("change-color", "change-colour", "recolor", "turn"), "color", "turns",
         "something changes color", "speed"),
    Verb("jump", ("jump", "leap", "hop"), "translate", "jumps", "something jumps", "height"),
)
VERB_BY_KEY: dict[str, Verb] = {v.key: v for v in VERBS}

# Manner words per manner attribute (index 0 / 1 of the planner's binary manner choice).
MANNER_WORDS: dict[str, tuple[str, str]] = {
    "speed": ("quickly", "slowly"),
    "height": ("high", "low"),
    "count": ("twice", "three times"),
    "direction": ("clockwise", "counterclockwise"),
    "rate": ("rapidly", "slowly"),
}

# Motion constants (scene units / counts) used by the track builder.
BOUNCE_HEIGHT = 0.15
JUMP_HEIGHT = {"high": 0.24, "low": 0.12}
BOUNCE_COUNT = {"twice": 2, "three times": 3}
BLINK_PERIOD = {"rapidly": 0.4, "slowly": 1.0}  # seconds per off-on cycle
SPIN_SECONDS_PER_TURN = 1.0  # a spin makes round(duration / this) >= 1 full turns
