"""LLM interface: greedy batched generation with stop strings, an on-disk answer cache, two backends.

``LLM.generate(prompts, params)`` returns one completion per prompt, cut at the first stop string and
stripped. Decoding is always greedy (the thesis' agents are deterministic rewriters).

Backends (``querygen.llm.backend``):

* ``transformers`` (default) — any local causal LM; ``model: embedded`` is the packaged Gemma 3 270M
  (see ``embedded``). Batches are left-padded. The agents send many prompts that share one long few-shot
  block, so the backend encodes the longest common token prefix of a batch once, copies its KV cache to
  every row and feeds only the per-row suffixes (padding sits between prefix and suffix and is masked out;
  position ids follow the mask, so the result equals plain left-padded generation).
* ``vllm`` — GPU box (``vllm_backend``), imported only when used.

``CachedLLM`` wraps a backend with ``LLMCache``: answers are stored in SQLite under the user cache keyed by
sha256(model id, prompt, generation params), committed after every batch, so a rerun after a crash or after a
downstream param change regenerates nothing. The backend is only built when some prompt misses the cache.

Every answer carries ``capped``: whether generation stopped at ``max_new_tokens`` instead of at a stop string or
the end-of-sequence token (the form check rejects such answers as truncated). Backends report it; the cache
stores it beside the answer. Answers cached before it was recorded (or from a backend that returns plain
strings) are judged by their raw text: an answer without any of its stop strings did not finish its line the
way the prompts ask, so it counts as capped (it ended at the cap or, rarely, at end-of-sequence mid-line).
"""
from __future__ import annotations

import hashlib
import inspect
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol

from tqdm import tqdm


@dataclass(frozen=True)
class GenParams:
    """Greedy generation settings; part of the cache key."""

    max_new_tokens: int = 24
    stop: tuple[str, ...] = ("\n",)

    def key(self) -> dict:
        """JSON-able identity of these settings."""
        return {"greedy": True, "max_new_tokens": self.max_new_tokens, "stop": list(self.stop)}


class Completion(NamedTuple):
    """One answer: its text and whether generation stopped at the token cap (None = not known)."""

    text: str
    capped: bool | None = None


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the first occurrence of any stop string, stripped."""
    end = len(text)
    for s in stop:
        if s:
            i = text.find(s)
            if i != -1:
                end = min(end, i)
    return text[:end].strip()


@dataclass
class GenStats:
    """Running totals of one backend: prompts, generated tokens and seconds spent in ``generate``."""

    prompts: int = 0
    new_tokens: int = 0
    seconds: float = 0.0


class Backend(Protocol):
    """What a backend implements: ``model_id`` (cache identity), ``stats`` and batched ``generate``."""

    model_id: str
    stats: GenStats

    def generate(self, prompts: list[str], params: GenParams) -> list[Completion | str]:
        """One completion per prompt (stop strings not yet cut); a plain ``str`` means ``capped`` unknown."""


# ---------------------------------------------------------------------------------------------------------
class TransformersBackend:
    """Greedy generation with a local transformers causal LM, left-padded batches, shared-prefix KV reuse."""

    def __init__(self, model: str, device: str = "cpu", dtype: str = "float32", min_prefix: int = 16):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from pipeline.querygen.embedded import resolve_model_dir

        path, ident = resolve_model_dir(model)
        self.model_id = f"transformers:{ident}:{dtype}"
        self.torch = torch
        self.device = torch.device(device)
        self.tok = AutoTokenizer.from_pretrained(str(path))
        self.tok.padding_side = "left"
        if self.tok.pad_token_id is None:
            self.tok.pad_token = self.tok.eos_token
        torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
        self.model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype).to(self.device).eval()
        params = inspect.signature(self.model.forward).parameters
        # transformers ≥ 5.2x calls the KV cache argument ``cache``; older releases ``past_key_values``
        self.cache_kw = "cache" if "cache" in params else "past_key_values"
        self.min_prefix = min_prefix
        self.stats = GenStats()
        self._prefix_cache: dict[tuple[int, ...], object] = {}

    def _prefix_kv(self, prefix: tuple[int, ...]):
        """KV cache of ``prefix`` for batch size 1 (memoised: the few-shot block repeats across batches)."""
        if prefix not in self._prefix_cache:
            from transformers import DynamicCache

            try:
                cache = DynamicCache(config=self.model.config)  # per-layer sliding/full layout (transformers ≥ 4.56)
            except TypeError:
                cache = DynamicCache()
            ids = self.torch.tensor([prefix], device=self.device)
            with self.torch.no_grad():  # plain tensors (not inference tensors) so the cache can be deep-copied
                self.model(input_ids=ids, use_cache=True, **{self.cache_kw: cache})
            self._prefix_cache = {prefix: cache}  # keep only the latest prefix: agents batch by prompt kind
        return self._prefix_cache[prefix]

    def generate(self, prompts: list[str], params: GenParams) -> list[Completion]:
        """Greedy completions of one batch, each with whether it hit ``max_new_tokens``."""
        import copy

        torch = self.torch
        t0 = time.perf_counter()
        rows = [self.tok(p).input_ids for p in prompts]
        n_pre = _common_prefix_len(rows)
        n_pre = min(n_pre, min(len(r) for r in rows) - 1)  # every row must keep ≥ 1 token to predict from
        if n_pre < self.min_prefix or len(rows) == 1:
            n_pre = 0  # nothing worth sharing (a single prompt gains nothing from a separate prefix pass)
        suffixes = [r[n_pre:] for r in rows]
        width = max(len(s) for s in suffixes)
        batch = len(rows)
        ids = torch.full((batch, n_pre + width), self.tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        if n_pre:
            ids[:, :n_pre] = torch.tensor(rows[0][:n_pre])
            mask[:, :n_pre] = 1
        for i, s in enumerate(suffixes):
            ids[i, n_pre + width - len(s):] = torch.tensor(s)
            mask[i, n_pre + width - len(s):] = 1
        kwargs = {}
        if n_pre:
            cache = copy.deepcopy(self._prefix_kv(tuple(rows[0][:n_pre])))
            if batch > 1:
                cache.batch_repeat_interleave(batch)
            kwargs[self.cache_kw] = cache
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=ids.to(self.device), attention_mask=mask.to(self.device), do_sample=False,
                max_new_tokens=params.max_new_tokens, stop_strings=list(params.stop) or None,
                tokenizer=self.tok, pad_token_id=self.tok.pad_token_id, **kwargs)
        gen = out[:, ids.shape[1]:].cpu()
        texts = [self.tok.decode(row, skip_special_tokens=True) for row in gen]
        capped = capped_rows(gen.tolist(), texts, self._end_ids(), params)
        self.stats.prompts += batch
        self.stats.new_tokens += int((gen != self.tok.pad_token_id).sum())
        self.stats.seconds += time.perf_counter() - t0
        return [Completion(t, c) for t, c in zip(texts, capped)]

    def _end_ids(self) -> set[int]:
        """Token ids that end a row: end-of-sequence ids of the generation config and tokenizer, and padding."""
        ids = {self.tok.pad_token_id, self.tok.eos_token_id}
        eos = getattr(self.model.generation_config, "eos_token_id", None)
        ids.update(eos if isinstance(eos, (list, tuple)) else [eos])
        return {int(i) for i in ids if i is not None}


def capped_rows(rows: list[list[int]], texts: list[str], end_ids: set[int], params: GenParams) -> list[bool]:
    """Which generated rows stopped at ``max_new_tokens``: every position holds a generated token (rows that
    finished early are padded to the batch's length), the last one is no end/pad token and the decoded text
    holds no stop string (a stop string produced on the very last step ends the row regularly)."""
    return [len(row) >= params.max_new_tokens and bool(row) and row[-1] not in end_ids
            and not any(s and s in t for s in params.stop) for row, t in zip(rows, texts)]


def _common_prefix_len(rows: list[list[int]]) -> int:
    """Length of the longest common prefix of token id lists."""
    first = rows[0]
    n = len(first)
    for r in rows[1:]:
        k = 0
        limit = min(n, len(r))
        while k < limit and r[k] == first[k]:
            k += 1
        n = k
    return n


# ---------------------------------------------------------------------------------------------------------
class LLMCache:
    """SQLite store of answers keyed by sha256(model id, prompt, generation params), with their ``capped`` flag."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), timeout=60)
        self.db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, model TEXT, answer TEXT)")
        # the flag lives in its own table, so the answers table keeps the layout older checkouts write into
        self.db.execute("CREATE TABLE IF NOT EXISTS capped (key TEXT PRIMARY KEY, capped INTEGER NOT NULL)")
        self.db.commit()

    @staticmethod
    def key(model_id: str, prompt: str, params: GenParams) -> str:
        """Cache key of one request."""
        blob = json.dumps([model_id, prompt, params.key()], ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def get_many(self, keys: list[str]) -> dict[str, Completion]:
        """Raw answers present for ``keys`` (``capped`` None where it was not recorded)."""
        found: dict[str, Completion] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            q = (f"SELECT a.key, a.answer, c.capped FROM answers a LEFT JOIN capped c ON c.key = a.key "
                 f"WHERE a.key IN ({','.join('?' * len(chunk))})")
            for key, answer, capped in self.db.execute(q, chunk).fetchall():
                found[key] = Completion(answer, None if capped is None else bool(capped))
        return found

    def put_many(self, model_id: str, items: dict[str, Completion | str]) -> None:
        """Store raw answers and commit (one transaction per batch: a crash loses at most one batch)."""
        done = {k: v if isinstance(v, Completion) else Completion(v) for k, v in items.items()}
        self.db.executemany("INSERT OR REPLACE INTO answers VALUES (?, ?, ?)",
                            [(k, model_id, c.text) for k, c in done.items()])
        self.db.executemany("DELETE FROM capped WHERE key = ?", [(k,) for k, c in done.items() if c.capped is None])
        self.db.executemany("INSERT OR REPLACE INTO capped VALUES (?, ?)",
                            [(k, int(c.capped)) for k, c in done.items() if c.capped is not None])
        self.db.commit()


@dataclass
class CacheStats:
    """Hits and misses of one ``CachedLLM``."""

    hits: int = 0
    misses: int = 0


@dataclass
class CachedLLM:
    """A backend behind the answer cache; the backend is built lazily, only when a prompt misses."""

    model_id: str
    make_backend: Callable[[], Backend]
    cache: LLMCache
    batch_size: int = 16
    counts: CacheStats = field(default_factory=CacheStats)
    _backend: Backend | None = None

    @property
    def backend(self) -> Backend:
        """The backend, built on first use."""
        if self._backend is None:
            self._backend = self.make_backend()
        return self._backend

    def generate(self, prompts: list[str], params: GenParams, desc: str = "generate") -> list[str]:
        """Completion texts (cut at stop strings) for every prompt, from the cache where possible."""
        return [c.text for c in self.complete(prompts, params, desc)]

    def complete(self, prompts: list[str], params: GenParams, desc: str = "generate") -> list[Completion]:
        """``Completion`` (text cut at stop strings, ``capped``) for every prompt, from the cache where possible."""
        keys = [LLMCache.key(self.model_id, p, params) for p in prompts]
        known = self.cache.get_many(sorted(set(keys)))
        todo: list[int] = []
        seen: set[str] = set()
        for i, k in enumerate(keys):
            if k not in known and k not in seen:
                todo.append(i)
                seen.add(k)
        self.counts.hits += len(prompts) - len(todo)
        self.counts.misses += len(todo)
        if todo:
            bar = tqdm(total=len(todo), desc=desc, unit="prompt")
            for b in range(0, len(todo), self.batch_size):
                idx = todo[b:b + self.batch_size]
                texts = self.backend.generate([prompts[i] for i in idx], params)
                new = {keys[i]: t if isinstance(t, Completion) else Completion(t) for i, t in zip(idx, texts)}
                self.cache.put_many(self.model_id, new)
                known.update(new)
                bar.update(len(idx))
            bar.close()
        return [_finish(known[k], params) for k in keys]


def _finish(raw: Completion, params: GenParams) -> Completion:
    """A raw answer cut at its stop strings, ``capped`` inferred from the text when not recorded (module doc)."""
    capped = raw.capped
    if capped is None and params.stop:
        capped = not any(s and s in raw.text for s in params.stop)
    return Completion(cut_at_stop(raw.text, params.stop), capped)


def model_identity(backend: str, model: str, dtype: str) -> str:
    """Cache identity of a model without loading it (converting the embedded GGUF if needed)."""
    if backend == "transformers":
        from pipeline.querygen.embedded import resolve_model_dir

        return f"transformers:{resolve_model_dir(model)[1]}:{dtype}"
    from pipeline.querygen.vllm_backend import vllm_model_id

    return vllm_model_id(model, dtype)


def build_llm(cfg, device: str = "cpu", cache_path: str | Path | None = None) -> CachedLLM:
    """``CachedLLM`` for a ``querygen.llm`` config (``LLMConfig``)."""
    from pipeline.querygen.embedded import cache_root, sweep_stale_temps

    sweep_stale_temps()  # leftovers of a killed model conversion in the project's cache (startup cleanup)
    cache = LLMCache(cache_path or cache_root() / "llm_cache.sqlite")
    if cfg.backend == "transformers":
        def make() -> Backend:
            return TransformersBackend(cfg.model, device=device, dtype=cfg.dtype)
    elif cfg.backend == "vllm":
        def make() -> Backend:
            from pipeline.querygen.vllm_backend import VLLMBackend

            return VLLMBackend(cfg.model, tensor_parallel_size=cfg.tensor_parallel_size, dtype=cfg.dtype,
                               gpu_memory_utilization=cfg.gpu_memory_utilization, max_model_len=cfg.max_model_len)
    else:
        raise ValueError(f"querygen.llm.backend: unknown backend {cfg.backend!r} (transformers | vllm)")
    return CachedLLM(model_identity(cfg.backend, cfg.model, cfg.dtype), make, cache, batch_size=cfg.batch_size)

