"""vLLM backend for a GPU box (thesis: Gemma 3 12B-it, tensor parallel), imported only when used.

``sampling_kwargs`` and ``engine_kwargs`` build the requests as plain dicts, so tests check them without vLLM
installed; ``VLLMBackend.generate`` passes them to ``vllm.SamplingParams`` / ``vllm.LLM``. Prefix caching is
switched on: every agent prompt starts with the same few-shot block.

Prompts are sent as plain completion text, exactly as the transformers backend sees them (no chat template:
the few-shot prompts end in ``Query:``-style cues and both backends must answer the same text under the same
cache semantics). Before a batch is sent, every prompt plus its ``max_new_tokens`` is checked against
``querygen.llm.max_model_len`` (``check_prompt_lengths``): vLLM refuses an over-long prompt (recent releases
fail the whole call) and cuts one that leaves too little room (a capped, rejected answer); an aggregator prompt
of a very large group can be either, so the stage stops first with the key to raise.
"""
from __future__ import annotations

import time
from pathlib import Path

from pipeline.core.params import ConfigError
from pipeline.querygen.llm import Completion, GenParams, GenStats


def sampling_kwargs(params: GenParams) -> dict:
    """``vllm.SamplingParams`` arguments for greedy decoding with stop strings."""
    return {"temperature": 0.0, "top_p": 1.0, "max_tokens": params.max_new_tokens, "stop": list(params.stop),
            "n": 1}


def engine_kwargs(model: str, tensor_parallel_size: int, dtype: str, gpu_memory_utilization: float,
                  max_model_len: int, seed: int = 0) -> dict:
    """``vllm.LLM`` arguments for a local model directory (or GGUF file)."""
    path = Path(model).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"querygen.llm.model: {path} not found (the vllm backend needs a local model)")
    kw = {"model": str(path), "tensor_parallel_size": tensor_parallel_size, "dtype": dtype,
          "gpu_memory_utilization": gpu_memory_utilization, "enable_prefix_caching": True, "seed": seed}
    if max_model_len > 0:
        kw["max_model_len"] = max_model_len
    return kw


def check_prompt_lengths(lengths: list[int], max_model_len: int, max_new_tokens: int) -> None:
    """Raise ``ConfigError`` naming ``querygen.llm.max_model_len`` when a prompt of ``lengths`` (tokens) plus
    ``max_new_tokens`` does not fit (0 = the model's own length: not checked here)."""
    if max_model_len <= 0 or not lengths:
        return
    worst = max(lengths)
    if worst + max_new_tokens > max_model_len:
        raise ConfigError(f"querygen.llm.max_model_len: a prompt of {worst} tokens + {max_new_tokens} new tokens "
                          f"exceeds {max_model_len}; raise it (Gemma 3 12B supports 131072)")


def vllm_model_id(model: str, dtype: str) -> str:
    """Cache identity of a vLLM model: its resolved local path, the identity of its files (``local_model_id``:
    weights replaced in place make new answers) and the dtype."""
    from pipeline.querygen.embedded import local_model_id

    path = Path(model).expanduser()
    ident = local_model_id(path) if path.exists() else f"path:{path.resolve()}"
    return f"vllm:{ident}:{dtype}"


class VLLMBackend:
    """Batched greedy generation with a vLLM engine."""

    def __init__(self, model: str, tensor_parallel_size: int = 1, dtype: str = "bfloat16",
                 gpu_memory_utilization: float = 0.85, max_model_len: int = 4096):
        try:
            import vllm
        except ImportError as exc:
            raise RuntimeError("querygen.llm.backend 'vllm' needs vllm: pip install '.[gpu]' on a GPU box") from exc
        self.vllm = vllm
        self.model_id = vllm_model_id(model, dtype)
        self.engine = vllm.LLM(**engine_kwargs(model, tensor_parallel_size, dtype, gpu_memory_utilization,
                                               max_model_len))
        self.max_model_len = max_model_len
        self.stats = GenStats()

    def generate(self, prompts: list[str], params: GenParams) -> list[Completion]:
        """Completions (vLLM already drops the stop string; ``finish_reason`` "length" = hit the token cap)."""
        t0 = time.perf_counter()
        if self.max_model_len > 0:
            tok = self.engine.get_tokenizer()
            check_prompt_lengths([len(tok.encode(p)) for p in prompts], self.max_model_len, params.max_new_tokens)
        outs = self.engine.generate(prompts, self.vllm.SamplingParams(**sampling_kwargs(params)), use_tqdm=False)
        texts = [Completion(o.outputs[0].text, o.outputs[0].finish_reason == "length") for o in outs]
        self.stats.prompts += len(prompts)
        self.stats.new_tokens += sum(len(o.outputs[0].token_ids) for o in outs)
        self.stats.seconds += time.perf_counter() - t0
        return texts
