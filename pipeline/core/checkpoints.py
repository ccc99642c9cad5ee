"""Self-describing checkpoints of the training loop: writing their header and rebuilding models from them.

A checkpoint written by :func:`pipeline.core.training.fit` stores the model and config classes as
``"module:Class"`` paths (:func:`checkpoint_header`), so :func:`load_model` rebuilds the model as
``ModelClass(ConfigClass(**model_config))`` with no other input. :data:`MOVED_CLASSES` maps the class paths of
checkpoints written before a class moved to its current home, so old checkpoints still load.

``load_model(path, device="cpu", models=()) -> (model in eval mode, checkpoint dict)``;
``save_checkpoint(obj, path)`` writes any ``torch.save``-able object atomically with bytes that depend on the
object only; ``load_resume_state(path, header)`` reads a resume state written for the same model and configs.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from pipeline.core.io import atomic_path
from pipeline.core.params import TrainConfig, build, to_dict

CHECKPOINT_FORMAT = 1


def _qualname(obj_type: type) -> str:
    return f"{obj_type.__module__}:{obj_type.__qualname__}"


# Checkpoints written before the one-room-per-method layout name config classes by their old home.
MOVED_CLASSES = {
    "pipeline.config:SadaDetectorConfig": "models.sada.config:SadaDetectorConfig",
    "pipeline.config:SearchDETRConfig": "models.search_detr_config:SearchDETRConfig",
}


def _import(qualname: str) -> Any:
    module, _, name = MOVED_CLASSES.get(qualname, qualname).partition(":")
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def checkpoint_header(model: nn.Module, cfg: TrainConfig, runtime: Mapping[str, Any]) -> dict:
    """Everything needed to rebuild ``model`` and to know how it was trained (no weights)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "model_class": _qualname(type(model)),
        "config_class": _qualname(type(model.config)),
        "model_config": to_dict(model.config),
        "train_config": to_dict(cfg),
        "runtime": dict(runtime),
    }


def save_checkpoint(obj: Any, path: str | Path) -> None:
    """``torch.save(obj)`` to ``path`` atomically, with bytes that depend on ``obj`` only.

    ``torch.save`` to a *path* names the zip archive's folder after the file, i.e. after atomic_path's random
    temp name, so two runs that computed the same tensors wrote different bytes (different DVC hashes);
    saving through a file object names it ``archive`` always.
    """
    with atomic_path(path, suffix=".pt") as tmp:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)


def load_resume_state(path: str | Path, header: Mapping[str, Any], verbose: bool = True) -> dict | None:
    """The resume state at ``path`` if it was written for ``header``'s model class and configs, else None
    (missing, or other configs: then it says so when ``verbose`` and the caller starts over)."""
    path = Path(path)
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if all(state.get(k) == header[k] for k in ("model_class", "model_config", "train_config")):
        return state
    if verbose:
        print(f"[train] {path} was written with other configs; starting from scratch")
    return None


def load_model(path: str | Path, device: str | torch.device = "cpu",
               models: Sequence[type] = ()) -> tuple[nn.Module, dict]:
    """Rebuild the model stored in a ``model.pt`` (or ``last.pt``) and load its weights; eval mode.

    ``models`` are the model classes the caller accepts (the stages pass theirs, so the model's module is an
    explicit import of the stage and part of its code deps); the checkpoint's class must be one of them. With
    none given (tests, notebooks) the class is imported from the checkpoint's class path.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model_class", "config_class", "model_config", "state_dict"):
        if key not in ckpt:
            raise ValueError(f"{path}: not a pipeline.core.training checkpoint (missing {key!r})")
    config = build(_import(ckpt["config_class"]), ckpt["model_config"], f"{path}:model_config")
    if models:
        by_name = {_qualname(m): m for m in models}
        qual = MOVED_CLASSES.get(ckpt["model_class"], ckpt["model_class"])
        if qual not in by_name:
            raise ValueError(f"{path}: holds a {qual} model; this stage loads {', '.join(sorted(by_name))}")
        model = by_name[qual](config)
    else:
        model = _import(ckpt["model_class"])(config)
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval(), ckpt
