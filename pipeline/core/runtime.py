"""Process setup from the ``runtime`` params block, shared by every torch stage (one copy, so a stage cannot
forget a piece or apply it differently).

torch is imported inside the functions: stages that never touch torch can import this module for free.
"""
from __future__ import annotations

from typing import Any

from pipeline.core.params import RuntimeConfig

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def apply_runtime(runtime: RuntimeConfig) -> None:
    """Set torch's intra-op thread count to ``runtime.threads`` (0 keeps torch's default)."""
    if runtime.threads > 0:
        import torch

        torch.set_num_threads(runtime.threads)


def torch_dtype(precision: str) -> Any:
    """The torch dtype of a ``runtime.precision`` value (``fp32`` / ``fp16`` / ``bf16``)."""
    import torch

    return getattr(torch, DTYPES[precision])
