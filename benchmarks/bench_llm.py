"""LLM generation benchmark: batched vs one-prompt-at-a-time greedy generation (prints figures, no asserts).

Rewrites ``--prompts`` synthetic-world captions with the synth S2 rewriter prompt three ways and prints
generated tokens/s for each:

* ``batched``   — batches of ``--batch`` (16), left-padded, shared few-shot prefix encoded once (the default);
* ``no-prefix`` — the same batches, every row encoding the whole prompt (plain left-padded generation);
* ``single``    — one prompt per call.

Goal: batched ≥ 3× single in tokens/s. The LLM answer cache is bypassed (the backend is called directly).

    OMP_NUM_THREADS=2 python benchmarks/bench_llm.py [--prompts 32] [--batch 16] [--threads 2]
    python benchmarks/bench_llm.py --backend vllm --model /models/gemma-3-12b-it --prompts 512 --batch 512
    python benchmarks/bench_llm.py --backend transformers --device cuda --dtype bfloat16
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.querygen.llm import GenParams, TransformersBackend
from pipeline.querygen.prompts import load_prompt


def captions(n: int) -> list[str]:
    """``n`` distinct captions in the synthetic world's style."""
    sizes, colors = ["small", "large"], ["red", "green", "blue", "yellow", "purple", "orange"]
    shapes, verbs = ["circle", "square", "triangle", "star"], ["slides quickly", "spins clockwise", "fades in slowly",
                                                               "bounces twice", "jumps high", "blinks rapidly"]
    places = ["at the top", "on the left side", "in the center", "in the bottom right corner"]
    combos = itertools.product(verbs, colors, shapes, sizes, places)
    return [f"A {s} {c} {sh} {v} {p}." for (v, c, sh, s, p), _ in zip(combos, range(n))]


def run(backend, prompts: list[str], batch: int, params: GenParams) -> tuple[float, int, float]:
    """``(seconds, generated tokens, tokens/s)`` for generating every prompt in batches of ``batch``."""
    before_tok, before_s = backend.stats.new_tokens, backend.stats.seconds
    t0 = time.perf_counter()
    for i in range(0, len(prompts), batch):
        backend.generate(prompts[i:i + batch], params)
    dt = time.perf_counter() - t0
    tok = backend.stats.new_tokens - before_tok
    return dt, tok, tok / max(backend.stats.seconds - before_s, 1e-9)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["transformers", "vllm"], default="transformers")
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--single", type=int, default=8, help="prompts for the one-at-a-time run")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--tp", type=int, default=1, help="vllm tensor-parallel size")
    args = ap.parse_args(argv)
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    fs = load_prompt("synth", "rewrite", "S2")
    prompts = [fs.render(caption=c) for c in captions(args.prompts)]
    params = GenParams(max_new_tokens=args.max_new_tokens, stop=("\n",))
    t0 = time.perf_counter()
    if args.backend == "vllm":
        from pipeline.querygen.vllm_backend import VLLMBackend

        backend = VLLMBackend(args.model, tensor_parallel_size=args.tp, dtype=args.dtype)
    else:
        backend = TransformersBackend(args.model, device=args.device, dtype=args.dtype)
    print(f"backend {args.backend} model {backend.model_id} device {args.device} threads {torch.get_num_threads()}"
          f" loaded in {time.perf_counter() - t0:.1f} s; {len(prompts)} prompts")
    backend.generate(prompts[:2], params)  # warm-up
    rows = [("batched", prompts, args.batch)]
    if args.backend == "transformers":
        rows.append(("no-prefix", prompts, args.batch))
    rows.append(("single", prompts[: args.single], 1))
    results = {}
    for name, ps, bs in rows:
        if name == "no-prefix":
            old, backend.min_prefix = backend.min_prefix, 10**9
        dt, tok, tps = run(backend, ps, bs, params)
        if name == "no-prefix":
            backend.min_prefix = old
        results[name] = tps
        print(f"{name:10s} batch {bs:4d}: {len(ps):4d} prompts, {tok:5d} tokens in {dt:7.2f} s = {tps:8.1f} tokens/s, "
              f"{len(ps) / dt:6.2f} prompts/s")
    print(f"speed-up batched / single: {results['batched'] / results['single']:.2f}x (goal >= 3x)")
    if "no-prefix" in results:
        print(f"speed-up of the shared prefix: {results['batched'] / results['no-prefix']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
