"""LLM layer: prompt files, answer cache, vLLM request building, and the real embedded Gemma 3 270M."""
import os

import pytest

from pipeline.querygen import agents
from pipeline.querygen.llm import CachedLLM, GenParams, GenStats, LLMCache, cut_at_stop
from pipeline.querygen.prompts import AGENTS, PromptError, load_prompt, prompt_dir
from pipeline.querygen.vllm_backend import engine_kwargs, sampling_kwargs


class EchoBackend:
    """Fake backend: answers with the last line of the prompt, upper-cased, then a newline and junk."""

    model_id = "echo"

    def __init__(self):
        self.stats = GenStats()
        self.calls = []

    def generate(self, prompts, params):
        self.calls.append(list(prompts))
        return [" " + p.splitlines()[-1].upper() + "\nCaption: junk" for p in prompts]


def test_packaged_prompt_sets_render():
    for pset, levels in {"synth": ["S1", "S2", "S3"], "yc2": ["S"], "anc": ["S"], "hdepic": ["S1", "S2", "S3"]}.items():
        for agent in AGENTS:
            for level in levels:
                fs = load_prompt(pset, agent, level)
                values = {f: "x y" for f in fs.fields[:-1]}
                text = fs.render(**values)
                assert text.startswith(fs.instruction.strip())
                assert "{" not in text and not text.endswith(" ")


def test_prompt_errors(tmp_path):
    with pytest.raises(PromptError, match="not found"):
        prompt_dir("no_such_set")
    (tmp_path / "rewrite.yaml").write_text("template: 'Caption: {caption}\\nQuery: {query}'\nlevels: {S1: {examples: []}}\n")
    with pytest.raises(PromptError, match="no entry for level"):
        load_prompt(str(tmp_path), "rewrite", "S2")
    with pytest.raises(PromptError, match="at least one example"):
        load_prompt(str(tmp_path), "rewrite", "S1")


def test_cut_at_stop():
    assert cut_at_stop(" a red circle\nCaption: x", ["\n"]) == "a red circle"
    assert cut_at_stop("yes. no", [".", "\n"]) == "yes"
    assert cut_at_stop("plain", []) == "plain"


def test_cache_hit_on_rerun(tmp_path):
    backend = EchoBackend()
    built = []

    def make():
        built.append(1)
        return backend

    params = GenParams(max_new_tokens=8, stop=("\n",))
    prompts = ["Q: a", "Q: b", "Q: a"]
    llm = CachedLLM("echo", make, LLMCache(tmp_path / "c.sqlite"), batch_size=2)
    assert llm.generate(prompts, params) == ["Q: A", "Q: B", "Q: A"]
    assert backend.calls == [["Q: a", "Q: b"]]  # duplicates generated once
    assert (llm.counts.hits, llm.counts.misses) == (1, 2)
    # a new process (new CachedLLM, same file): everything from the cache, the backend is never built
    built.clear()
    again = CachedLLM("echo", make, LLMCache(tmp_path / "c.sqlite"), batch_size=2)
    assert again.generate(prompts, params) == ["Q: A", "Q: B", "Q: A"]
    assert built == [] and again.counts.misses == 0
    # other generation params or another model are other keys
    other = CachedLLM("echo", make, LLMCache(tmp_path / "c.sqlite"))
    other.generate(["Q: a"], GenParams(max_new_tokens=9))
    assert other.counts.misses == 1
    assert LLMCache.key("m1", "p", params) != LLMCache.key("m2", "p", params)


def test_agents_parse_answers(tmp_path):
    class Fixed(EchoBackend):
        def generate(self, prompts, params):
            return [' "1. A red circle slides."\n', " Yes, it is", "no", "maybe"][: len(prompts)]

    llm = CachedLLM("fixed", Fixed, LLMCache(tmp_path / "c.sqlite"))
    fs = load_prompt("synth", "rewrite", "S2")
    assert [c.text for c in agents.rewrite(llm, fs, ["cap"], GenParams())] == ["A red circle slides."]
    assert [agents.parse_verdict(t) for t in ["Yes, it is", "no", "maybe", " NO."]] == ["yes", "no", "unparseable", "no"]


def test_vllm_request_building(tmp_path):
    assert sampling_kwargs(GenParams(max_new_tokens=20, stop=("\n", "Caption:"))) == {
        "temperature": 0.0, "top_p": 1.0, "max_tokens": 20, "stop": ["\n", "Caption:"], "n": 1}
    model = tmp_path / "gemma-3-12b-it"
    model.mkdir()
    kw = engine_kwargs(str(model), tensor_parallel_size=2, dtype="bfloat16", gpu_memory_utilization=0.9,
                       max_model_len=4096)
    assert kw == {"model": str(model), "tensor_parallel_size": 2, "dtype": "bfloat16",
                  "gpu_memory_utilization": 0.9, "enable_prefix_caching": True, "seed": 0, "max_model_len": 4096}
    assert "max_model_len" not in engine_kwargs(str(model), 1, "bfloat16", 0.9, 0)
    with pytest.raises(FileNotFoundError):
        engine_kwargs(str(tmp_path / "missing"), 1, "bfloat16", 0.9, 0)


@pytest.mark.slow
def test_embedded_gemma_generates(tmp_path):
    """The real Gemma 3 270M: batched (shared-prefix, left-padded) greedy output equals one-at-a-time output."""
    import torch

    from pipeline.querygen.llm import TransformersBackend

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    backend = TransformersBackend("embedded")
    fs = load_prompt("synth", "rewrite", "S2")
    caps = ["A small red circle slides quickly from the left to the right near the top.",
            "A large blue star spins clockwise in the center.",
            "A small green square fades in slowly on the left side.",
            "A large yellow triangle jumps high from the left to the center at the bottom."]
    prompts = [fs.render(caption=c) for c in caps]
    params = GenParams(max_new_tokens=12, stop=("\n",))
    completions = backend.generate(prompts, params)
    batched = [cut_at_stop(c.text, params.stop) for c in completions]
    single = [cut_at_stop(backend.generate([p], params)[0].text, params.stop) for p in prompts]
    assert batched == single
    assert all(b and "\n" not in b for b in batched)
    assert backend.stats.new_tokens > 0 and backend.stats.prompts == 8
    # the backend says which answers hit the token cap: none of these short rewrites, all at a 2-token cap
    assert [c.capped for c in completions] == [False] * 4
    assert [c.capped for c in backend.generate(prompts[:2], GenParams(max_new_tokens=2, stop=("\n",)))] == [True] * 2
    # a real rewrite of a caption keeps (at least) its shape word
    assert "circle" in batched[0].lower()
