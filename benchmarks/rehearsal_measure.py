"""Measurement helpers of the real-scale rehearsal (``rehearsal.py``) and the GPU check (``gpu_check.py``).

Feature generation (``structured_rows``), container cost (``container_stats``, ``index_scale_open``), the data
path (``measure_loader``), the train step on any device and precision (``measure_step``) and peak memory
(``peak_rss_gb``, ``peak_device_gb``). No params, no method knowledge beyond ``batch_len``.
"""
from __future__ import annotations

import contextlib
import resource
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pipeline.features.container import FeatureContainer, container_paths, write_container

PRECISIONS = ("fp32", "bf16", "fp16")


def peak_rss_gb() -> float:
    """Peak resident set size of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def peak_device_gb(device: str) -> float:
    """Peak allocated accelerator memory since the last reset (CUDA), else the process' peak RSS."""
    import torch

    if str(device).startswith("cuda"):
        return torch.cuda.max_memory_allocated(device) / 2**30
    return peak_rss_gb()


def reset_peak(device: str) -> None:
    """Start a new peak-memory window on a CUDA device (no-op elsewhere: RSS peaks cannot be reset)."""
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def synchronize(device: str) -> None:
    """Wait for queued kernels so wall-clock timings are honest on an accelerator."""
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)


def autocast(device: str, precision: str):
    """``torch.autocast`` context for ``precision`` (``fp32``: none)."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} (known: {PRECISIONS})")
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=str(device).split(":")[0], dtype=dtype)


def structured_rows(rng: np.random.Generator, n: int, layers: int, dim: int, proj: np.ndarray) -> np.ndarray:
    """Cheap non-random-looking features ``[n, layers, dim]``: a per-item base vector plus a slow temporal
    drift along a few shared directions (``proj``), per layer scaled; float16 like real extraction."""
    base = rng.standard_normal(dim).astype(np.float32)
    t = np.arange(n, dtype=np.float32)[:, None]
    drift = np.sin(t * rng.uniform(0.02, 0.3, proj.shape[0]) + rng.uniform(0, 6.3, proj.shape[0])) @ proj
    rows = base[None] + drift  # [n, dim]
    return np.stack([rows * (1 + 0.1 * k) for k in range(layers)], axis=1).astype(np.float16)


def container_stats(prefix: Path, reads: int, seed: int = 0) -> dict[str, float]:
    """Bytes on disk, open time and mean random-read cost (slice + float32 copy) of a container."""
    npy, idx = container_paths(prefix)
    t0 = time.perf_counter()
    c = FeatureContainer(prefix)
    open_s = time.perf_counter() - t0
    ids = list(c.keys())
    pick = np.random.default_rng(seed).integers(0, len(ids), reads)
    t0 = time.perf_counter()
    for i in pick:
        np.array(c[ids[i]])  # the item's stored bytes (all layers, float16) out of the memory map
    raw_ms = (time.perf_counter() - t0) / reads * 1e3
    t0 = time.perf_counter()
    for i in pick:
        np.asarray(c[ids[i]], dtype=np.float32)
    read_ms = (time.perf_counter() - t0) / reads * 1e3
    return {"items": len(ids), "array_bytes": npy.stat().st_size, "index_bytes": idx.stat().st_size,
            "shape": list(c.array.shape), "item_bytes": int(c.array.nbytes // max(1, c.array.shape[0]))
            * int(np.mean([n for _, n in c.items.values()])), "open_s": open_s, "random_read_raw_ms": raw_ms,
            "random_read_ms": read_ms}


def dataset_item_ms(dataset, reads: int, seed: int = 0) -> float:
    """Mean cost of the method's own random item read ``dataset[i]`` (what its loader pays per item: only the
    layers and rows it uses, converted as it converts them), in ms."""
    pick = np.random.default_rng(seed).integers(0, len(dataset), reads)
    dataset[int(pick[0])]  # warm-up: lazy opens of memory maps
    t0 = time.perf_counter()
    for i in pick:
        dataset[int(i)]
    return (time.perf_counter() - t0) / reads * 1e3


def index_scale_open(work: Path, layers: int, dim: int, n: int = 10_000) -> dict[str, float]:
    """Open time of an ``n``-item container with these row dims (1 row per item, page cache warm)."""
    prefix = work / f"scale_{n}"
    row = np.zeros((1, layers, dim), dtype=np.float16)
    write_container(prefix, ((f"video_{i:05d}", row) for i in range(n)), meta={"layers": list(range(layers))})
    t0 = time.perf_counter()
    c = FeatureContainer(prefix)
    open_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in np.random.default_rng(0).integers(0, n, 1000):
        np.asarray(c[f"video_{i:05d}"], dtype=np.float32)
    return {"items": n, "open_s": open_s, "random_read_ms": (time.perf_counter() - t0)}  # 1000 reads → ms each


def measure_loader(dataset, collate: Callable, batch: int, iters: int, workers: int) -> tuple[list, float]:
    """``iters`` batches through a shuffled ``DataLoader``; returns (batches, samples/s of the data path)."""
    import torch

    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, collate_fn=collate,
                                         num_workers=workers, drop_last=False,
                                         generator=torch.Generator().manual_seed(0))
    batches, samples = [], 0
    t0 = time.perf_counter()
    it = iter(loader)
    while len(batches) < iters:
        try:
            b = next(it)
        except StopIteration:  # a small generated set: start another epoch
            it = iter(loader)
            continue
        batches.append(b)
        samples += batch_len(b)
    return batches, samples / (time.perf_counter() - t0)


def batch_len(b: Any) -> int:
    """Dataset items in a collated batch (SADA batches hold source + target videos: one item = one pair)."""
    if "feats" in b:
        return int(b["feats"].shape[0]) // 2
    return int(b["video"].shape[0])


def measure_step(model, batches: list, lr: float, weight_decay: float, grad_clip: float, device: str = "cpu",
                 precision: str = "fp32") -> tuple[float, float]:
    """Forward + backward + AdamW over ``batches`` on ``device`` under ``precision`` autocast (the first batch
    warms up, untimed; batches are moved to the device before the clock starts); (samples/s, last loss)."""
    import torch

    from pipeline.core.training import move_to_device

    model.to(device)
    batches = [move_to_device(b, torch.device(device)) for b in batches]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    model.train()
    samples, elapsed, loss = 0, 0.0, float("nan")
    for k, b in enumerate(batches):
        synchronize(device)
        t0 = time.perf_counter()
        with autocast(device, precision):
            out = model(b)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        loss = float(out["loss"].detach())  # a host sync: the step is finished when the clock stops
        if k > 0 or len(batches) == 1:
            elapsed += time.perf_counter() - t0
            samples += batch_len(b)
    return samples / elapsed, loss
