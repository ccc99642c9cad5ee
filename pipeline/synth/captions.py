"""Event → text: detailed captions, EPIC narrations, and the oracle under-specifications S1/S2/S3.

Attributes of an event's caption: size, colour, shape, verb (+ target colour for change-color), manner,
position. The levels keep strictly fewer of them::

    full  size colour shape verb manner position   "A small red circle slides quickly from the left to the
                                                     right near the top."
    S1    size colour shape verb manner            "A small red circle slides quickly."       (drop position)
    S2         colour shape verb                   "A red circle slides."            (drop manner and size)
    S3                      verb (generic)         "Something slides."           (generic verb phrase only)

``LEVEL_ATTRIBUTES`` states this as data (tests check the strict inclusion).
"""
from __future__ import annotations

from pipeline.synth import vocab
from pipeline.synth.events import Actor, Event

LEVELS = ("S1", "S2", "S3")
LEVEL_ATTRIBUTES: dict[str, frozenset[str]] = {
    "full": frozenset({"size", "color", "shape", "verb", "manner", "position"}),
    "S1": frozenset({"size", "color", "shape", "verb", "manner"}),
    "S2": frozenset({"color", "shape", "verb"}),
    "S3": frozenset({"verb"}),
}

_CELL = {
    (0, 0): "top left", (0, 1): "top", (0, 2): "top right",
    (1, 0): "left", (1, 1): "center", (1, 2): "right",
    (2, 0): "bottom left", (2, 1): "bottom", (2, 2): "bottom right",
}
_AT = {
    (0, 0): "in the top left corner", (0, 1): "at the top", (0, 2): "in the top right corner",
    (1, 0): "on the left side", (1, 1): "in the center", (1, 2): "on the right side",
    (2, 0): "in the bottom left corner", (2, 1): "at the bottom", (2, 2): "in the bottom right corner",
}
_ALONG_ROW = {0: "near the top", 1: "across the middle", 2: "near the bottom"}
_ALONG_COL = {0: "on the left side", 1: "through the center", 2: "on the right side"}


def position_phrase(ev: Event) -> str:
    """Where the event happens: a path for slide/jump, a place for everything else."""
    (r0, c0), (r1, c1) = ev.anchor, ev.anchor_to
    if ev.anchor == ev.anchor_to:
        return _AT[ev.anchor]
    if r0 == r1:
        return f"from the {vocab.COLS[c0]} to the {vocab.COLS[c1]} {_ALONG_ROW[r0]}"
    if c0 == c1:
        return f"from the {vocab.ROWS[r0]} to the {vocab.ROWS[r1]} {_ALONG_COL[c0]}"
    return f"from the {_CELL[ev.anchor]} to the {_CELL[ev.anchor_to]}"


def _verb_words(ev: Event) -> str:
    verb = vocab.VERB_BY_KEY[ev.verb]
    if ev.verb == "change-color":
        return f"{verb.third_person} {ev.color_to}"
    return verb.third_person


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + "."


def _a(word: str) -> str:
    """``word`` with its indefinite article ("an orange", "a red")."""
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def describe(ev: Event, actor: Actor, level: str = "full") -> str:
    """Caption of ``ev`` at ``level`` (``full``, ``S1``, ``S2`` or ``S3``) as a capitalised sentence."""
    if level == "S3":
        return _sentence(vocab.VERB_BY_KEY[ev.verb].generic)
    if level == "S2":
        return _sentence(f"{_a(ev.color)} {actor.shape} {_verb_words(ev)}")
    core = f"{_a(ev.size)} {ev.color} {actor.shape} {_verb_words(ev)} {ev.manner}"
    if level == "S1":
        return _sentence(core)
    if level == "full":
        return _sentence(f"{core} {position_phrase(ev)}")
    raise ValueError(f"unknown caption level {level!r}; expected full, S1, S2 or S3")


def underspecify(ev: Event, actor: Actor) -> dict[str, str]:
    """The three oracle under-specifications of one event's caption."""
    return {level: describe(ev, actor, level) for level in LEVELS}


def narration(ev: Event, actor: Actor) -> str:
    """EPIC-style imperative narration, e.g. ``fade in red circle``."""
    return f"{ev.verb.replace('-', ' ')} {ev.color} {actor.shape}"

