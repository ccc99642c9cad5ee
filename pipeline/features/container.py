"""Feature containers: one float16 ``.npy`` per split plus a JSON index, memory-mapped on read.

``<prefix>.npy`` holds the features of every item (video or query) concatenated along axis 0;
``<prefix>.json`` holds ``{"items": {item_id: [offset, length]}, "meta": {...}}``. ``meta`` records what a
reader needs to interpret rows, e.g. ``time_step`` (seconds between consecutive feature rows), ``layers``
(1-based backbone layers stored along axis 1 for multi-layer features) and the backbone name.

A few large files instead of thousands of small ones keep DVC hashing fast (DESIGN §3).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from pipeline.core.io import InputError, atomic_path, read_json, write_json


def container_paths(prefix: str | Path) -> tuple[Path, Path]:
    """The (array, index) paths of a container prefix (``.npy`` / ``.json`` suffixes)."""
    prefix = Path(prefix)
    return prefix.with_name(prefix.name + ".npy"), prefix.with_name(prefix.name + ".json")


def write_container(
    prefix: str | Path,
    items: Iterable[tuple[str, np.ndarray]],
    meta: Mapping | None = None,
    dtype: str = "float16",
    empty_shape: tuple[int, ...] | None = None,
) -> None:
    """Write ``(item_id, array)`` pairs (arrays share trailing dims) as one container, atomically.

    ``empty_shape`` is the array shape to store when there are no items (e.g. ``(0, L, D)`` so that an empty
    split still has the 3-D layout); without it an empty container holds a ``(0,)`` array.

    The array file is renamed into place before the index, and readers only trust an index, so an
    interrupted write never yields a readable half container.
    """
    npy_path, idx_path = container_paths(prefix)
    arrays, index, offset = [], {}, 0
    for item_id, arr in items:
        arr = np.asarray(arr)
        if item_id in index:
            raise ValueError(f"{prefix}: duplicate item id {item_id!r}")
        index[item_id] = [offset, int(arr.shape[0])]
        offset += int(arr.shape[0])
        arrays.append(arr.astype(dtype, copy=False))
    if arrays:
        trailing = {a.shape[1:] for a in arrays}
        if len(trailing) != 1:
            raise ValueError(f"{prefix}: items have different trailing shapes {sorted(trailing)}")
        data = np.concatenate(arrays, axis=0)
    else:
        data = np.zeros(tuple(empty_shape) if empty_shape else (0,), dtype=dtype)
    if idx_path.exists():
        idx_path.unlink()  # the old index must not describe the new array
    with atomic_path(npy_path, suffix=".npy") as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, data)
    write_json(idx_path, {"items": index, "meta": dict(meta or {}), "shape": list(data.shape), "dtype": dtype})


class MissingItemError(InputError, KeyError):
    """An item id the container does not hold. An ``InputError`` (stages report it as one ``error:`` line naming
    the container and the id) that is also a ``KeyError``, as a mapping lookup should be."""

    __str__ = InputError.__str__  # KeyError's would print the message in quotes


class FeatureContainer:
    """Read-only, memory-mapped view of a container: ``container[item_id] -> np.ndarray``."""

    def __init__(self, prefix: str | Path):
        npy_path, idx_path = container_paths(prefix)
        if not idx_path.exists() or not npy_path.exists():
            raise InputError(f"{prefix}: feature container not found (need {npy_path.name} and {idx_path.name})")
        index = read_json(idx_path)
        self.prefix = Path(prefix)
        self.items: dict[str, tuple[int, int]] = {k: (int(v[0]), int(v[1])) for k, v in index["items"].items()}
        self.meta: dict = index.get("meta", {})
        self.array = np.load(npy_path, mmap_mode="r")
        if list(self.array.shape) != list(index.get("shape", self.array.shape)):
            raise InputError(f"{npy_path}: shape {self.array.shape} does not match its index {index['shape']}")

    def __contains__(self, item_id: str) -> bool:
        return item_id in self.items

    def __len__(self) -> int:
        return len(self.items)

    def keys(self):
        return self.items.keys()

    def layer_positions(self, last: int | None = None, layers: list[int] | None = None) -> list[int]:
        """Axis-1 positions of the last ``last`` stored layers, or of the 1-based backbone ``layers``.

        Asking for more layers than were stored, or for a layer that was not stored, raises ``InputError``
        naming the container and what it holds (``meta["layers"]``; a container without it holds one layer).
        """
        stored = [int(x) for x in self.meta.get("layers", [1])]
        if layers is not None:
            missing = [ly for ly in layers if ly not in stored]
            if missing:
                raise InputError(f"{self.prefix}: layers {missing} were not extracted (stored: {stored})")
            return [stored.index(ly) for ly in layers]
        if last is None or not 1 <= last <= len(stored):
            raise InputError(f"{self.prefix}: asked for the last {last} layers but only {len(stored)} were "
                             f"extracted ({stored}); extract more layers or ask for fewer")
        return list(range(len(stored) - last, len(stored)))

    def __getitem__(self, item_id: str) -> np.ndarray:
        if item_id not in self.items:
            origin = ""
            if self.meta.get("dataset") and self.meta.get("backbone"):  # a video container: say where skips are
                origin = (f" (skipped at extraction? see reports/metrics/features/{self.meta['dataset']}-"
                          f"{self.meta['backbone']}.json)")
            raise MissingItemError(f"{self.prefix}: no features for {item_id!r} among its {len(self.items)} "
                                   f"items{origin}")
        off, n = self.items[item_id]
        return self.array[off : off + n]
