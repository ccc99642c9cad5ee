"""Process setup from the ``runtime`` params block, shared by every torch stage (one copy, so a stage cannot
forget a piece or apply it differently).

torch is imported inside the functions: stages that never touch torch can import this module for free.
"""
from __future__ import annotations

from typing import Any

from pipeline.core.params import ConfigError, RuntimeConfig

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def apply_runtime(runtime: RuntimeConfig) -> None:
    """Check ``runtime.device`` against this machine, then set torch's intra-op thread count to
    ``runtime.threads`` (0 keeps torch's default).

    The device is checked here, before any data is read, so ``runtime.device: cuda`` on a CPU-only box is one
    line naming the key instead of a CUDA traceback minutes into a stage.
    """
    import torch

    check_device(runtime.device)
    if runtime.threads > 0:
        torch.set_num_threads(runtime.threads)


def check_device(device: str) -> None:
    """Raise :class:`ConfigError` naming ``runtime.device`` when ``device`` is malformed or absent here."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"runtime.device: {device!r} is not a torch device ({exc})") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"runtime.device: {device!r} but this machine has no CUDA device (use 'cpu')")
        if dev.index is not None and dev.index >= count:
            raise ConfigError(f"runtime.device: {device!r} but this machine has {count} CUDA device(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"runtime.device: {device!r} but MPS is not available on this machine")


def torch_dtype(precision: str) -> Any:
    """The torch dtype of a ``runtime.precision`` value (``fp32`` / ``fp16`` / ``bf16``)."""
    import torch

    return getattr(torch, DTYPES[precision])
