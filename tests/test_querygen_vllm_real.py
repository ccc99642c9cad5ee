"""The vLLM requests of the real profile (Gemma 3 12B-it), built and checked without vLLM installed.

A stand-in ``vllm`` module (``LLM``, ``SamplingParams``) records what the backend would send; the config is the
``querygen`` block of ``profiles/real.yaml`` merged over ``params.yaml``, so a change to either shows here.
"""
import dataclasses
import math
import subprocess
import sys
import types

import pytest
from conftest import REPO_ROOT

from pipeline.core.params import ConfigError, load_block
from pipeline.profiles import apply_profile
from pipeline.querygen import agents
from pipeline.querygen.llm import GenParams, build_llm
from pipeline.querygen.params import QuerygenConfig
from pipeline.querygen.prompts import load_prompt
from pipeline.querygen.vllm_backend import check_prompt_lengths


class FakeEngine:
    """``vllm.LLM`` stand-in: keeps the engine kwargs and every generate call; answers one fixed completion."""

    instances: list = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.calls = []
        FakeEngine.instances.append(self)

    def get_tokenizer(self):
        return types.SimpleNamespace(encode=lambda text: text.split())

    def generate(self, prompts, sampling_params, use_tqdm=True):
        self.calls.append((list(prompts), sampling_params))
        out = types.SimpleNamespace(text=" A person prepares food.\n", finish_reason="stop", token_ids=[5, 6, 7])
        return [types.SimpleNamespace(outputs=[out]) for _ in prompts]


class FakeSamplingParams:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


@pytest.fixture
def fake_vllm(monkeypatch):
    """A ``vllm`` module in ``sys.modules`` (replacing a real one if installed) that records requests."""
    FakeEngine.instances = []
    mod = types.ModuleType("vllm")
    mod.LLM, mod.SamplingParams = FakeEngine, FakeSamplingParams
    monkeypatch.setitem(sys.modules, "vllm", mod)
    return mod


@pytest.fixture(scope="module")
def real_cfg(tmp_path_factory) -> QuerygenConfig:
    merged = tmp_path_factory.mktemp("real") / "params.yaml"
    apply_profile(REPO_ROOT / "params.yaml", REPO_ROOT / "profiles/real.yaml", merged)
    return load_block(QuerygenConfig, merged)


def _local_model(tmp_path):
    model = tmp_path / "gemma-3-12b-it"
    model.mkdir()
    (model / "config.json").write_text('{"architectures": ["Gemma3ForConditionalGeneration"]}')
    return model


def test_backend_module_imports_without_vllm():
    """Importing the querygen LLM layer never imports vllm (only building a VLLMBackend does)."""
    code = ("import sys, pipeline.querygen.llm, pipeline.querygen.vllm_backend, pipeline.querygen.generate; "
            "print('vllm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_real_profile_llm_settings(real_cfg):
    llm = real_cfg.llm
    assert (llm.backend, llm.model, llm.dtype) == ("vllm", "checkpoints/gemma-3-12b-it", "bfloat16")
    assert llm.tensor_parallel_size == 1 and llm.max_model_len == 4096
    assert llm.batch_size >= 256  # vLLM batches continuously: 16-prompt calls would leave the GPU idle
    assert (real_cfg.rewriter.max_new_tokens, real_cfg.validator.max_new_tokens,
            real_cfg.aggregator.max_new_tokens) == (24, 3, 24)


def test_real_profile_requests(real_cfg, fake_vllm, tmp_path):
    """Engine arguments, sampling params and the exact prompt texts of the rewriter and validator agents."""
    model = _local_model(tmp_path)
    cfg = dataclasses.replace(real_cfg.llm, model=str(model))  # the profile's path, made to exist here
    llm = build_llm(cfg, "cuda", cache_path=tmp_path / "cache.sqlite")
    assert llm.model_id.startswith(f"vllm:dir:{model.resolve()}:") and llm.model_id.endswith(":bfloat16")
    assert FakeEngine.instances == []  # the engine is built only when a prompt misses the cache
    prompt = load_prompt(real_cfg.sources["hdepic"].prompts, "rewrite", "S1")
    caps = [f"pick up the knife number {i} from the drawer" for i in range(3)]
    got = agents.rewrite(llm, prompt, caps, GenParams(real_cfg.rewriter.max_new_tokens))
    assert [(c.text, c.capped) for c in got] == [("A person prepares food.", False)] * 3

    (engine,) = FakeEngine.instances
    assert engine.kwargs == {"model": str(model), "tensor_parallel_size": 1, "dtype": "bfloat16",
                             "gpu_memory_utilization": 0.85, "enable_prefix_caching": True, "seed": 0,
                             "max_model_len": 4096}
    assert len(engine.calls) == math.ceil(len(caps) / cfg.batch_size)
    sent, sampling = engine.calls[0]
    assert sampling.kwargs == {"temperature": 0.0, "top_p": 1.0, "max_tokens": 24, "stop": ["\n"], "n": 1}
    # plain completion text, exactly the rendered few-shot prompt (no chat template, no added turn markers)
    assert sent == [prompt.render(caption=c) for c in caps]
    assert not any("<start_of_turn>" in p or "<bos>" in p for p in sent)
    assert all(p.startswith(prompt.instruction.strip()) for p in sent)

    vprompt = load_prompt(real_cfg.sources["hdepic"].prompts, "validate", "S1")
    agents.validate(llm, vprompt, caps, [c.text for c in got], GenParams(real_cfg.validator.max_new_tokens))
    assert engine.calls[-1][1].kwargs["max_tokens"] == 3


def test_tensor_parallel_reaches_engine(real_cfg, fake_vllm, tmp_path):
    cfg = dataclasses.replace(real_cfg.llm, model=str(_local_model(tmp_path)), tensor_parallel_size=4)
    build_llm(cfg, "cuda", cache_path=tmp_path / "c.sqlite").generate(["Caption: x\nQuery:"], GenParams(8))
    assert FakeEngine.instances[0].kwargs["tensor_parallel_size"] == 4


def test_capped_from_finish_reason(real_cfg, fake_vllm, tmp_path, monkeypatch):
    cfg = dataclasses.replace(real_cfg.llm, model=str(_local_model(tmp_path)))
    out = types.SimpleNamespace(text=" a person holds a very long", finish_reason="length", token_ids=[1] * 8)
    monkeypatch.setattr(FakeEngine, "generate", lambda self, p, s, use_tqdm=True: [
        types.SimpleNamespace(outputs=[out]) for _ in p])
    (c,) = build_llm(cfg, "cuda", cache_path=tmp_path / "c.sqlite").complete(["Caption: x\nQuery:"], GenParams(8))
    assert c.capped is True


def test_overlong_prompt_names_max_model_len(real_cfg, fake_vllm, tmp_path):
    cfg = dataclasses.replace(real_cfg.llm, model=str(_local_model(tmp_path)))
    llm = build_llm(cfg, "cuda", cache_path=tmp_path / "c.sqlite")
    long_prompt = "word " * (cfg.max_model_len - 10)  # fits alone, not with 24 new tokens
    with pytest.raises(ConfigError, match=r"querygen\.llm\.max_model_len"):
        llm.generate([long_prompt], GenParams(24))
    assert FakeEngine.instances[0].calls == []  # nothing was sent


def test_check_prompt_lengths():
    check_prompt_lengths([4000], 4096, 96)  # exactly fits
    with pytest.raises(ConfigError, match="4001 tokens"):
        check_prompt_lengths([10, 4001], 4096, 96)
    check_prompt_lengths([10**6], 0, 24)  # 0 = the model's own length: vLLM decides
