"""Resumable work folders that survive ``dvc repro``, shared by every training stage (one copy).

DVC deletes a stage's outputs before it reruns the stage, so resume state kept inside the outputs is gone
exactly when it is needed (after a crash). A training stage therefore keeps it in a *work folder* outside its
outputs, by default ``<out.parent>/_work/<out.name>`` (:func:`default_work_root`; the project's convention:
``data/pretrained/_work``, ``data/features/_work``), which DVC never touches. Layout::

    <root>/.gitignore        "*": scratch, never tracked by git (``/data/*`` is ignored too)
    <root>/<key>/...         the state of one run; <key> = hash of everything the run reads

The key (:func:`run_key`) covers the params the stage reads, the identity of its data inputs and of its code,
so a state is only ever resumed by the run that would have produced it: a rerun with other params, data or
code starts from scratch, and opening the folder removes the states of every other key (they can never be
resumed). The stage removes its folder once its outputs are in place (:meth:`WorkDir.remove`).

Data inputs are identified by path, size and modification time of every file (:func:`file_identity`), not by
a content hash: hashing multi-GB feature containers at every stage start costs minutes on real data, while a
stat costs nothing. The trade-off is one-sided: an input rewritten with equal bytes (new mtime) only discards
the state (the run starts over, correct but slower); changed bytes with the same size *and* nanosecond mtime
do not happen by accident.

:func:`replay_live` reopens a dvclive folder and writes back the curve rows of the epochs already trained, so a
resumed run's curves are complete (DVC deleted them with the outputs) and byte-identical to an uninterrupted
run's: the rows come from the resume state, and dvclive writes no timestamps by default.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

WORK_FORMAT = 1  # bump when the layout of work folders changes meaning (invalidates every stored state)
ROOT = Path(__file__).resolve().parents[2]  # the repository: code identity is read relative to it


def default_work_root(out: str | Path) -> Path:
    """The work folder of a stage writing ``out``: its sibling ``<out.parent>/_work/<out.name>``."""
    out = Path(out)
    return out.parent / "_work" / out.name


def file_identity(paths: Iterable[str | Path]) -> list[list[Any]]:
    """``[path, size, mtime_ns]`` of every file of ``paths`` (folders are walked, sorted; a missing path is
    listed with ``None`` so that its later appearance changes the key)."""
    rows: list[list[Any]] = []
    for p in map(Path, paths):
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            if not f.exists():
                rows.append([f.as_posix(), None, None])
                continue
            st = f.stat()
            rows.append([f.as_posix(), st.st_size, st.st_mtime_ns])
    return rows


@lru_cache(maxsize=None)
def code_identity(module: str) -> dict[str, str]:
    """sha1 of every project file that ``python -m module`` imports (its code deps in dvc.yaml)."""
    from pipeline.core.code_deps import closure

    return {rel: hashlib.sha1((ROOT / rel).read_bytes()).hexdigest() for rel in closure(ROOT, module)}


def _plain(obj: Any) -> Any:
    """JSON fallback of :func:`run_key`: params blocks (dataclasses) as their fields, anything else as str."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return str(obj)


def run_key(module: str, params: Mapping[str, Any], inputs: Sequence[str | Path] = ()) -> str:
    """Hash of what a run reads: ``params`` (the params parts and names the run uses; params blocks may be
    passed as they are), the files under ``inputs`` (:func:`file_identity`), the code of ``module`` and the
    torch version."""
    import torch

    blob = {"format": WORK_FORMAT, "module": module, "params": params, "inputs": file_identity(inputs),
            "code": code_identity(module), "torch": torch.__version__}
    return hashlib.sha1(json.dumps(blob, sort_keys=True, default=_plain).encode()).hexdigest()[:16]


class WorkDir:
    """``<root>/<key>``: the resume state of one run. Opening it creates it, makes ``root`` git-ignored,
    removes the states of other keys and the temp files a killed writer left behind."""

    def __init__(self, root: str | Path, key: str):
        self.root = Path(root)
        self.key = key
        self.dir = self.root / key
        self.dir.mkdir(parents=True, exist_ok=True)
        ignore = self.root / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n")  # scratch space: never tracked by git
        for other in self.root.iterdir():  # states of other settings can never be resumed
            if other.is_dir() and other.name != key:
                shutil.rmtree(other, ignore_errors=True)
        for tmp in self.dir.rglob(".*.tmp"):  # half-written files of a killed run (atomic_path leftovers)
            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)

    def sub(self, *names: str) -> Path:
        """A folder inside the run's state (e.g. one per seed), created on demand."""
        path = self.dir.joinpath(*names)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def remove(self) -> None:
        """Delete the run's state (its outputs are in place); the root, and a ``_work`` folder above it (see
        :func:`default_work_root`), go too once nothing else is in them."""
        shutil.rmtree(self.dir, ignore_errors=True)
        try:
            if {p.name for p in self.root.iterdir()} <= {".gitignore"}:
                (self.root / ".gitignore").unlink(missing_ok=True)
                self.root.rmdir()
                if self.root.parent.name == "_work" and not any(self.root.parent.iterdir()):
                    self.root.parent.rmdir()
        except OSError:
            pass


def open_work(root: str | Path, module: str, params: Mapping[str, Any],
              inputs: Sequence[str | Path] = ()) -> WorkDir:
    """:class:`WorkDir` of ``root`` for the run that reads ``params`` and ``inputs`` with ``module``'s code."""
    return WorkDir(root, run_key(module, params, inputs))


def replay_live(live_dir: str | Path, rows: Sequence[Mapping[str, float]]):
    """A fresh dvclive ``Live`` at ``live_dir`` holding ``rows`` (one ``{metric: value}`` dict per step,
    already written); log the next steps to it. Whatever was in ``live_dir`` is replaced: after a kill it may
    hold steps past the resume state's, which the resumed run recomputes."""
    from dvclive import Live

    live_dir = Path(live_dir)
    shutil.rmtree(live_dir, ignore_errors=True)
    live = Live(str(live_dir), dvcyaml=False, save_dvc_exp=False, resume=False)
    for row in rows:
        for k, v in row.items():
            live.log_metric(k, v)
        live.next_step()
    return live
