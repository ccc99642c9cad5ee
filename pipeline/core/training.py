"""The one training loop every method uses (SADA, search-DETR, SDST). No method-specific code lives here.

API
---
``fit(model, dataset, collate, cfg, out_dir, *, device="cpu", precision="fp32", seed=0, workers=0,
evaluate=None, resume=True, stop_after_epochs=None, progress=True, work_dir=None) -> FitResult``

Contract for ``model`` (an ``nn.Module``):

* ``model.config`` is a dataclass and ``type(model)(model.config)`` rebuilds the same architecture.
  That is how a checkpoint rebuilds the model with no other input
  (:func:`pipeline.core.checkpoints.load_model`).
* ``model(batch) -> dict``: ``"loss"`` (scalar tensor to minimise) plus any other named scalars
  (sub-losses), which are averaged over the epoch and logged as ``train/<name>``.
* ``model.predict(batch)`` is NOT used by the loop; stages call it on the module ``load_model`` returns.
* Parameters with ``requires_grad=False`` (frozen backbones) are not optimised and get no gradient.

``dataset`` is a map-style dataset (``len`` + ``__getitem__``), ``collate(list_of_items) -> batch``; tensors
anywhere inside the batch (dicts / lists / tuples) are moved to the device, everything else is untouched.

Distributed: run the same command under ``torchrun --nproc_per_node N``. ``fit`` reads ``WORLD_SIZE`` /
``RANK`` / ``LOCAL_RANK``, initialises the process group (gloo on CPU, nccl on CUDA; device ``cuda`` becomes
``cuda:<LOCAL_RANK>``) and wraps the model in ``DistributedDataParallel``. Every epoch is the same sequence
of global batches (a permutation seeded by ``seed`` and the epoch) whatever N is; each process takes an
equal share of every global batch (the last one is padded by repetition), so 1 and N processes see the
same data per step. Only rank 0 writes files.

Files under ``out_dir``:

* ``model.pt`` — final checkpoint: ``{"model_class", "config_class", "model_config", "train_config",
  "runtime", "state_dict", "epoch"}`` (``state_dict`` = EMA weights when ``cfg.ema_decay`` is set).
* ``live/`` — dvclive (``Live(dir, dvcyaml=False)``): ``plots/metrics/train/*.tsv`` per epoch
  (``train/loss``, sub-losses, ``train/lr``, and ``eval/<name>`` from the callback); declare it as DVC plots.

and under ``work_dir`` (default ``out_dir``; stages pass a :mod:`pipeline.core.work` folder, which
``dvc repro`` does not delete as it deletes outputs):

* ``last.pt`` — resume state (model, EMA, optimizer, scheduler, scaler, RNG states, epoch, the per-epoch
  logs), written atomically after every epoch. With ``resume=True`` a later call continues after its epoch
  when its configs equal the current ones (otherwise it says so and starts over), writes the curves of the
  epochs already trained back into ``live/`` first, and ends with the same ``model.pt`` bytes as an
  uninterrupted run. Nothing written under ``out_dir`` holds wall-clock times (epoch times are printed).

``pipeline.core.checkpoints`` writes the checkpoint header and rebuilds a model from ``model.pt``
(``load_model(path, device="cpu", models=()) -> (model in eval mode, checkpoint dict)``).
``stop_after_epochs`` ends this call early (resumable later), for time-limited jobs.
``precision``: ``fp32``, ``bf16`` (autocast; CPU and CUDA) or ``fp16`` (autocast + GradScaler, CUDA only).
"""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from pipeline.core.checkpoints import checkpoint_header, load_resume_state, save_checkpoint
from pipeline.core.params import TrainConfig
from pipeline.core.work import replay_live



# ----------------------------------------------------------------------------- distributed / seeds


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in a (possibly single-process) job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def dist_info() -> DistInfo:
    """Rank / world size from the torchrun environment (single process when absent)."""
    return DistInfo(
        rank=int(os.environ.get("RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def resolve_device(device: str, info: DistInfo) -> torch.device:
    """``cuda`` → ``cuda:<local_rank>`` under torchrun; anything else unchanged."""
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", info.local_rank if info.distributed else torch.cuda.current_device())
    return dev


def init_distributed(info: DistInfo, device: torch.device) -> None:
    """Initialise the default process group once (gloo on CPU, nccl on CUDA)."""
    if not info.distributed or torch.distributed.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    torch.distributed.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        # numpy's state holds an ndarray; store a list so checkpoints load with weights_only=True
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(state: dict) -> None:
    random.setstate(tuple(state["python"]) if not isinstance(state["python"], tuple) else state["python"])
    n = state["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------- data


class GlobalBatchSampler(Sampler[list[int]]):
    """Batches of dataset indices that are identical for any world size; yields this rank's share.

    The epoch's permutation depends only on ``(seed, epoch)``. Each global batch of ``batch_size`` indices is
    padded (repeating its first indices) to a multiple of ``world_size``; rank r takes positions
    ``r::world_size`` of it.
    """

    def __init__(self, n: int, batch_size: int, seed: int, info: DistInfo, shuffle: bool = True,
                 drop_last: bool = False):
        if n == 0:
            raise ValueError("training dataset is empty")
        self.n, self.batch_size, self.seed, self.info = n, batch_size, seed, info
        self.shuffle, self.drop_last, self.epoch = shuffle, drop_last, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_batches(self) -> list[list[int]]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        batches = [order[i : i + self.batch_size] for i in range(0, self.n, self.batch_size)]
        if self.drop_last and len(batches) > 1 and len(batches[-1]) < self.batch_size:
            batches = batches[:-1]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        w = self.info.world_size
        for batch in self.global_batches():
            padded = list(batch)
            while len(padded) % w:
                padded.append(batch[(len(padded) - len(batch)) % len(batch)])
            yield padded[self.info.rank :: w]

    def __len__(self) -> int:
        if self.drop_last and self.n > self.batch_size:
            return self.n // self.batch_size
        return math.ceil(self.n / self.batch_size)


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Recursively move tensors in dicts/lists/tuples to ``device``; leave other values as they are."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: move_to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and not isinstance(batch, str):
        return type(batch)(move_to_device(v, device) for v in batch)
    return batch


# ----------------------------------------------------------------------------- schedule / EMA


def lr_factor(it: int, cfg: TrainConfig, iters_per_epoch: int) -> float:
    """Multiplier of ``cfg.lr`` at iteration ``it`` (0-based): schedule × linear warmup."""
    total = max(1, cfg.epochs * iters_per_epoch)
    if cfg.schedule == "constant":
        f = 1.0
    elif cfg.schedule == "step":
        f = cfg.step_gamma ** ((it // max(1, iters_per_epoch)) // max(1, cfg.step_epochs))
    else:  # cosine
        t = min(1.0, it / total)
        f = cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))
    if cfg.warmup_iters > 0 and it < cfg.warmup_iters:
        f *= cfg.warmup_ratio + (1 - cfg.warmup_ratio) * it / cfg.warmup_iters
    return f


class EMA:
    """Exponential moving average of a module's floating-point parameters and buffers.

    The decay warms up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates (the usual TF/timm warm-up):
    with a constant 0.99 a 120-iteration run kept 0.99^120 = 30 % of the random initial weights in the saved
    model. ``updates`` is saved with the training state so a resumed run continues the same schedule.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def current_decay(self) -> float:
        """The decay the next update uses."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.current_decay()
        self.updates += 1
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(decay).add_(v.detach(), alpha=1 - decay)
            else:
                self.shadow[k].copy_(v)

    def state_dict(self) -> dict:
        return self.shadow

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        for k, v in state.items():
            self.shadow[k].copy_(v)


# ----------------------------------------------------------------------------- the loop


@dataclass
class FitResult:
    """What ``fit`` returns: the trained (unwrapped) model, per-epoch logs and the final checkpoint path."""

    model: nn.Module
    history: list[dict[str, float]] = field(default_factory=list)
    checkpoint: Path | None = None
    finished: bool = True  # False when stop_after_epochs ended the call early


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return torch.autocast(device_type=device.type, enabled=False)
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision fp16 needs a CUDA device (use bf16 on CPU)")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _scalar_logs(out: Mapping[str, Any]) -> dict[str, float]:
    logs = {}
    for k, v in out.items():
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            logs[k] = float(v.detach())
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            logs[k] = float(v)
    return logs


def _check_model_contract(model: nn.Module) -> None:
    cfg = getattr(model, "config", None)
    if cfg is None or not dataclasses.is_dataclass(cfg):
        raise TypeError(f"{type(model).__name__}: fit() needs `model.config` to be a dataclass "
                        "(checkpoints rebuild the model as type(model)(config))")


def fit(
    model: nn.Module,
    dataset: Sequence,
    collate: Callable[[list], Any],
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    device: str = "cpu",
    precision: str = "fp32",
    seed: int = 0,
    workers: int = 0,
    evaluate: Callable[[nn.Module], Mapping[str, float]] | None = None,
    resume: bool = True,
    stop_after_epochs: int | None = None,
    progress: bool = True,
    work_dir: str | Path | None = None,
) -> FitResult:
    """Train ``model`` on ``dataset`` with ``cfg``; see the module docstring for the full contract.

    ``evaluate(model)`` (optional) gets the unwrapped model (EMA weights when enabled, eval mode) every
    ``cfg.eval_every`` epochs on rank 0 and returns scalars logged as ``eval/<name>``. ``work_dir`` holds
    the resume state ``last.pt`` (default ``out_dir``).
    """
    from tqdm import tqdm

    _check_model_contract(model)
    info = dist_info()
    dev = resolve_device(device, info)
    init_distributed(info, dev)
    out_dir = Path(out_dir)
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(seed + info.rank)  # dropout masks differ per rank, as in any DDP job

    model.to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(model).__name__}: no trainable parameters")
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sampler = GlobalBatchSampler(len(dataset), cfg.batch_size, seed, info, shuffle=True, drop_last=cfg.drop_last)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=workers,
                        persistent_workers=workers > 0)
    iters_per_epoch = len(sampler)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(it, cfg, iters_per_epoch))
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
    ema = EMA(model, cfg.ema_decay) if cfg.ema_decay else None
    runtime = {"device": str(dev.type), "precision": precision, "seed": seed, "world_size": info.world_size}
    header = checkpoint_header(model, cfg, runtime)

    start_epoch, history = 0, []
    last_path = Path(work_dir if work_dir is not None else out_dir) / "last.pt"
    if info.is_main:
        last_path.parent.mkdir(parents=True, exist_ok=True)
    state = load_resume_state(last_path, header, verbose=info.is_main) if resume else None
    if state is not None:
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        if ema is not None and state.get("ema") is not None:
            ema.load_state_dict(state["ema"])
            ema.updates = int(state.get("ema_updates", 0))
        start_epoch, history = int(state["epoch"]) + 1, [_log_entry(h) for h in state["history"]]
        _set_rng_state(state["rng"][info.rank] if info.rank < len(state["rng"]) else state["rng"][0])
        if info.is_main:
            print(f"[train] resuming {last_path} after epoch {start_epoch}")

    net: nn.Module = model
    if info.distributed:
        # unused parameters are legitimate (ablation switches leave modules idle), hence find_unused
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None, find_unused_parameters=True)

    # the curves of the epochs in the resume state go back first: DVC deleted them with the outputs
    live = replay_live(out_dir / "live", [_curve_row(h) for h in history]) if info.is_main else None

    epochs_run = 0
    finished = True
    for epoch in range(start_epoch, cfg.epochs):
        if stop_after_epochs is not None and epochs_run >= stop_after_epochs:
            finished = False
            break
        sampler.set_epoch(epoch)
        net.train()
        sums: dict[str, float] = {}
        count = 0
        t0 = time.perf_counter()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not (progress and info.is_main),
                   leave=False)
        for batch in bar:
            batch = move_to_device(batch, dev)
            with autocast(dev, precision):
                out = net(batch)
            loss = out["loss"]
            if not torch.isfinite(loss):
                raise FloatingPointError(f"epoch {epoch + 1}: non-finite loss {float(loss.detach())} "
                                         f"(sub-losses {_scalar_logs(out)})")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            if ema is not None:
                ema.update(model)
            for k, v in _scalar_logs(out).items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
        logs = {f"train/{k}": v / max(1, count) for k, v in _mean_over_ranks(sums, info, dev).items()}
        logs["train/lr"] = optimizer.param_groups[0]["lr"]
        if evaluate is not None and cfg.eval_every and (epoch + 1) % cfg.eval_every == 0 and info.is_main:
            eval_model = _eval_copy(model, ema)
            logs.update({f"eval/{k}": float(v) for k, v in evaluate(eval_model).items()})
            model.train()
        history.append(_log_entry({"epoch": epoch + 1, **logs}))
        rng_states = _gather_rng(info)
        if info.is_main:
            for k, v in _curve_row(history[-1]).items():
                live.log_metric(k, v)
            live.next_step()
            save_checkpoint({**header, "state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                             "ema": ema.state_dict() if ema is not None else None,
                             "ema_updates": ema.updates if ema is not None else 0, "epoch": epoch,
                             "history": history, "rng": rng_states}, last_path)
            if progress:  # wall-clock goes to the log only: outputs must not depend on it
                print(f"[train] epoch {epoch + 1}/{cfg.epochs}: loss {logs.get('train/loss', float('nan')):.4f}"
                      f" ({time.perf_counter() - t0:.1f} s)")
        _barrier(info)
        epochs_run += 1

    final_path = None
    if finished:
        final_path = out_dir / "model.pt"
        weights = ema.state_dict() if ema is not None else model.state_dict()
        if info.is_main:
            save_checkpoint({**header, "state_dict": weights, "epoch": cfg.epochs, "history": history}, final_path)
        if ema is not None:
            model.load_state_dict(weights)
    if live is not None:
        live.end()
    _barrier(info)
    return FitResult(model=model.eval(), history=history, checkpoint=final_path, finished=finished)


def _log_entry(entry: Mapping[str, float]) -> dict[str, float]:
    """A ``history`` entry with interned keys. Pickle memoises strings by identity, so per-epoch key strings
    (fresh objects in a straight run, shared ones after loading a resume state) would give ``model.pt``
    different bytes for equal contents; interned keys are one object per name in both runs."""
    return {sys.intern(k): v for k, v in entry.items()}


def _curve_row(entry: Mapping[str, float]) -> dict[str, float]:
    """The dvclive row of one ``history`` entry (the step counter is dvclive's own)."""
    return {k: v for k, v in entry.items() if k != "epoch"}


def _eval_copy(model: nn.Module, ema: EMA | None) -> nn.Module:
    if ema is None:
        return model.eval()
    m = copy.deepcopy(model)
    m.load_state_dict(ema.state_dict())
    return m.eval()


def _mean_over_ranks(sums: dict[str, float], info: DistInfo, device: torch.device) -> dict[str, float]:
    """Average per-rank sums over ranks, so logged losses describe the global batch (equal shares per rank)."""
    if not info.distributed or not sums:
        return sums
    keys = sorted(sums)
    t = torch.tensor([sums[k] for k in keys], dtype=torch.float64, device=device)  # nccl needs CUDA tensors
    torch.distributed.all_reduce(t)
    return {k: float(v) / info.world_size for k, v in zip(keys, t)}


def _gather_rng(info: DistInfo) -> list:
    """RNG states of every rank (rank order), so a resumed DDP job continues each rank's streams."""
    state = _rng_state()
    if not info.distributed:
        return [state]
    states: list = [None] * info.world_size
    torch.distributed.all_gather_object(states, state)
    return states


def _barrier(info: DistInfo) -> None:
    if info.distributed:
        torch.distributed.barrier()


def shutdown_distributed() -> None:
    """Destroy the default process group if ``fit`` created one (call at the end of a torchrun script)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
