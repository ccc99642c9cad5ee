"""Few-shot prompt files: benchmark- and level-specific examples stored as data, not code.

A prompt set is a folder ``pipeline/querygen/prompts/<set>/`` (or any folder given by path) with

* ``rewrite.yaml``, ``validate.yaml``, ``aggregate.yaml`` — one per agent::

      template: "Caption: {caption}\\nQuery: {query}"    # the last {field} is what the model writes
      levels:
        S1: {instruction: "...", examples: [{caption: ..., query: ...}, ...]}
        default: {...}                                   # used for levels without their own entry

* ``hypernyms.yaml`` — ``generic: [words allowed anywhere]`` and ``hypernyms: {word: [hyponyms]}`` for the
  grounding check (e.g. ``shape: [circle, square]`` lets a rewrite say "shape" for a caption's "circle").

A rendered prompt is the instruction, the examples in the template, then the template for the new item cut
just before its answer field; the model's completion (up to the first newline) is the answer.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path

import yaml

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
AGENTS = ("rewrite", "validate", "aggregate")


class PromptError(ValueError):
    """A prompt file is missing or malformed; the message names the file and key."""


def prompt_dir(name: str) -> Path:
    """Folder of prompt set ``name`` (a name under ``prompts/`` or a path)."""
    path = Path(name) if ("/" in name or name.startswith(".")) else PROMPTS_DIR / name
    if not path.is_dir():
        known = sorted(p.name for p in PROMPTS_DIR.iterdir() if p.is_dir())
        raise PromptError(f"prompt set {name!r} not found at {path}; packaged sets: {', '.join(known)}")
    return path


@dataclass(frozen=True)
class FewShot:
    """One agent's prompt for one level."""

    instruction: str
    template: str
    examples: tuple[dict, ...]
    source: str  # file and level, for error messages

    @property
    def fields(self) -> list[str]:
        """Placeholder names of the template in order; the last one is the answer."""
        return [f for _, f, _, _ in string.Formatter().parse(self.template) if f]

    @property
    def answer_field(self) -> str:
        """Name of the field the model completes."""
        return self.fields[-1]

    def render(self, **values: str) -> str:
        """The full prompt for one item (all fields but the answer)."""
        shots = "\n".join(self.template.format(**ex) for ex in self.examples)
        head = self.template[: self.template.index("{" + self.answer_field + "}")].rstrip(" ")
        try:
            target = head.format(**values)
        except KeyError as exc:
            raise PromptError(f"{self.source}: missing value for field {exc}") from None
        return f"{self.instruction.strip()}\n\n{shots}\n{target}"


def _check(fs: FewShot) -> FewShot:
    fields = fs.fields
    if not fields or not fs.template.rstrip().endswith("{" + fields[-1] + "}"):
        raise PromptError(f"{fs.source}: template must end with its answer field, got {fs.template!r}")
    for i, ex in enumerate(fs.examples):
        missing = [f for f in fields if f not in ex]
        if missing:
            raise PromptError(f"{fs.source}: examples[{i}] lacks {', '.join(missing)}")
    if not fs.examples:
        raise PromptError(f"{fs.source}: needs at least one example")
    return fs


def load_prompt(prompt_set: str, agent: str, level: str) -> FewShot:
    """The few-shot prompt of ``agent`` (rewrite | validate | aggregate) for ``level`` in ``prompt_set``."""
    if agent not in AGENTS:
        raise PromptError(f"unknown agent {agent!r}; expected one of {AGENTS}")
    path = prompt_dir(prompt_set) / f"{agent}.yaml"
    if not path.is_file():
        raise PromptError(f"{path}: prompt file not found")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    levels = data.get("levels") or {}
    entry = levels.get(level, levels.get("default"))
    if entry is None:
        raise PromptError(f"{path}: no entry for level {level!r} and no 'default' (has {sorted(levels)})")
    template = data.get("template")
    if not isinstance(template, str):
        raise PromptError(f"{path}: missing 'template'")
    return _check(FewShot(instruction=str(entry.get("instruction", "")), template=template,
                          examples=tuple(entry.get("examples") or ()), source=f"{path} [{level}]"))


@dataclass(frozen=True)
class Lexicon:
    """Words the grounding check accepts without a literal match."""

    generic: frozenset[str]
    hypernyms: dict[str, frozenset[str]]  # hypernym → hyponyms


def load_lexicon(prompt_set: str) -> Lexicon:
    """``hypernyms.yaml`` of a prompt set (empty lexicon when the file is absent)."""
    path = prompt_dir(prompt_set) / "hypernyms.yaml"
    if not path.is_file():
        return Lexicon(frozenset(), {})
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    hyper = data.get("hypernyms") or {}
    if not isinstance(hyper, dict):
        raise PromptError(f"{path}: 'hypernyms' must map a word to a list of words")
    words = re.compile(r"^[a-z' -]+$")
    for k, v in hyper.items():
        if not isinstance(v, list) or not all(isinstance(w, str) and words.match(w) for w in v):
            raise PromptError(f"{path}: hypernyms.{k} must be a list of lowercase words")
    return Lexicon(frozenset(str(w) for w in data.get("generic") or ()),
                   {str(k): frozenset(v) for k, v in hyper.items()})


def prompt_files(prompt_set: str) -> list[Path]:
    """Every file of a prompt set (DVC deps of the rewrite stage)."""
    return sorted(p for p in prompt_dir(prompt_set).iterdir() if p.is_file())
