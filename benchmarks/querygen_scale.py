"""Query generation at real scale (issue 17): ActivityNet Captions-sized input through the embedded LLM backend.

    python benchmarks/querygen_scale.py [--annotations /data/anc/train.json] [--sample 40] [--threads 1] \\
        [--out reports/rehearsal/querygen.json]

Not a DVC stage. Input: the captions of a real ActivityNet Captions split file when ``--annotations`` is given
(read with the project's reader, ``pipeline.datasets.activitynet_captions``), otherwise a synthetic set of the
same shape: 37,421 captions over 10,009 videos (the public ``train.json``), caption lengths drawn from the
thesis' Tab 3.1 ANC statistics (13.16 ± 6.1 words). A bounded, evenly spaced ``--sample`` of the captions goes
through the real agents of ``querygen_generate`` / ``querygen_build`` with the ``anc`` prompt set and the
``querygen.llm`` block of ``--params`` (params.yaml: the embedded Gemma 3 270M, transformers backend):

* rewrite (``querygen.rewriter.max_new_tokens``) and LLM validation (``querygen.validator.max_new_tokens``) of
  every sampled caption — the per-caption cost of ``querygen_generate``;
* aggregation of ``sample // 2`` two-member groups of the rewrites — the per-group cost of ``querygen_build``.

The LLM answer cache is a fresh SQLite file in a temporary folder, so every prompt is generated (the converted
model under ``~/.cache/vidunderstand`` is reused: loading is timed separately). Printed and written as JSON
(atomically): captions/s, generated tokens/s, seconds per call of each agent, model load time, peak RSS, and
projected hours on this CPU with these threads for (a) every input caption with params.yaml's settings and
(b) the ``querygen`` matrix of ``--profile`` (default ``profiles/real.yaml``: datasets × levels, its token
budgets and verdict switch, caption counts from thesis Tab 3.1) run with the measured backend. Aggregation
calls are projected with the thesis' multi-moment search queries per caption (Tab 3.1, per dataset and level;
ANC-S: 8,818 per 71,957 captions) — an upper bound: single-member and identical-text groups never call the LLM.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.core.io import write_json  # noqa: E402
from pipeline.core.params import ConfigError, load_block  # noqa: E402
from pipeline.querygen import agents  # noqa: E402
from pipeline.querygen.llm import GenParams, build_llm  # noqa: E402
from pipeline.querygen.params import QuerygenConfig  # noqa: E402
from pipeline.querygen.prompts import load_prompt  # noqa: E402

ANC_TRAIN = {"captions": 37421, "videos": 10009}  # public ActivityNet Captions train.json
ANC_WORDS = (13.16, 6.1)  # thesis Tab 3.1: ANC query length, mean ± std (words)
# captions per dataset for the profile projection (thesis Tab 3.1 "# queries"; ANC: the input's count)
TAB31_CAPTIONS = {"hdepic": 59454, "hd_epic": 59454, "youcook2": 13829}
AGG_PER_CAPTION = 8818 / 71957  # ANC-S multi-moment search queries per ANC caption (Tab 3.1)
# multi-moment search queries per caption by (dataset, level), Tab 3.1: an upper bound of the aggregator calls
# (a group whose members all wrote the same text needs none); other pairs use AGG_PER_CAPTION
TAB31_MULTI = {("hdepic", "S1"): 8560 / 59454, ("hdepic", "S2"): 9717 / 59454, ("hdepic", "S3"): 4873 / 59454,
               ("youcook2", "S"): 3212 / 13829}

_SUBJECTS = ["A man", "A woman", "The boy", "A young girl", "Two people", "The crowd", "An older man", "The team"]
_VERBS = ["is playing", "throws", "is cleaning", "rides", "is talking about", "paints", "lifts", "is dancing with"]
_OBJECTS = ["a guitar", "the ball", "a large window", "a bike", "the camera", "a wooden fence", "a barbell",
            "a partner"]
_TAILS = ["in a gym", "on a sunny beach", "while people watch", "in front of a house", "near the river",
          "on a stage", "in the kitchen", "at night", "with a smile", "slowly", "for a while", "again and again"]


def synthetic_captions(n_captions: int, n_videos: int, seed: int = 0) -> list[dict]:
    """``n_captions`` ANC-like captions over ``n_videos`` videos, target word counts ~ N(13.16, 6.1) clipped to [4, 60]
    (whole phrases, so a caption lands within 2 words of its target)."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.rint(rng.normal(*ANC_WORDS, size=n_captions)), 4, 60).astype(int)
    video = np.sort(rng.integers(0, n_videos, size=n_captions))
    video[:n_videos] = np.arange(n_videos)  # every video has at least one caption
    video.sort()
    items = []
    for i, (n_words, v) in enumerate(zip(lengths, video)):
        words = " ".join([rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS)]).split()
        while len(words) < n_words:  # whole phrases only; the one that lands nearest the target length
            tail = str(rng.choice(_TAILS)).split()
            if abs(len(words) + len(tail) - n_words) > n_words - len(words):
                break
            words += tail
        items.append({"qid": f"train/v_{v:06d}/{i}", "video_id": f"v_{v:06d}", "caption": " ".join(words) + "."})
    return items


def real_captions(path: Path) -> list[dict]:
    """The captions of one ActivityNet Captions split file (``train.json`` / ``val_1.json`` / ...)."""
    from pipeline.datasets.activitynet_captions import Options, load
    from pipeline.querygen.common import caption_items

    records, _ = load(path.parent, Options(splits={"train": path.name}))
    return caption_items(records)


def sample_items(items: list[dict], n: int) -> list[dict]:
    """``n`` evenly spaced items (all when ``n`` ≥ len)."""
    if n >= len(items):
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def peak_rss_gb() -> float:
    """Peak resident set size of this process in GB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def timed(backend, fn):
    """(result, wall seconds, new tokens) of ``fn()`` measured on ``backend.stats``."""
    tok0, t0 = backend.stats.new_tokens, time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, backend.stats.new_tokens - tok0


def profile_projection(profile: Path, params: Path, per_call: dict, input_captions: int) -> dict:
    """Hours to run ``profile``'s querygen matrix with the measured per-call costs (see the module doc)."""
    from pipeline.profiles import apply_profile

    with tempfile.TemporaryDirectory() as tmp:
        merged = Path(tmp) / "params.yaml"
        apply_profile(params, profile, merged)
        cfg = load_block(QuerygenConfig, merged)
    budgets = {"rewrite": cfg.rewriter.max_new_tokens, "validate": cfg.validator.max_new_tokens,
               "aggregate": cfg.aggregator.max_new_tokens}
    # per-call cost scaled by the token budget where the profile's differs from the measured one (decode-bound)
    cost = {k: per_call[k]["seconds_per_call"] * budgets[k] / per_call[k]["max_new_tokens"] for k in budgets}
    rows, total = [], 0.0
    for ds in cfg.datasets:
        n = TAB31_CAPTIONS.get(ds, input_captions)
        for level in cfg.levels:
            share = TAB31_MULTI.get((ds.replace("hd_epic", "hdepic"), level), AGG_PER_CAPTION)
            calls = {"rewrite": n, "validate": n if cfg.validator.llm_verdict != "off" else 0,
                     "aggregate": round(n * share)}
            hours = sum(calls[k] * cost[k] for k in calls) / 3600
            total += hours
            rows.append({"dataset": ds, "level": level, "captions": n, "calls": calls, "hours": round(hours, 2)})
    return {"profile": profile.as_posix(), "backend_in_profile": f"{cfg.llm.backend}:{cfg.llm.model}",
            "max_new_tokens": budgets, "datasets": rows, "hours_with_measured_backend": round(total, 2)}


def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--annotations", type=Path, default=None, help="a real ActivityNet Captions split JSON")
    ap.add_argument("--sample", type=int, default=40, help="captions sent through the LLM")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--profile", type=Path, default=ROOT / "profiles" / "real.yaml")
    ap.add_argument("--prompts", default="anc", help="prompt set (ANC-S: anc, level default)")
    ap.add_argument("--level", default="S")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "rehearsal" / "querygen.json")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    cfg = load_block(QuerygenConfig, args.params)
    items = real_captions(args.annotations) if args.annotations else synthetic_captions(**{
        "n_captions": ANC_TRAIN["captions"], "n_videos": ANC_TRAIN["videos"]})
    videos = len({it["video_id"] for it in items})
    words = np.array([len(it["caption"].split()) for it in items])
    sample = sample_items(items, args.sample)
    caps = [it["caption"] for it in sample]
    prompts = {a: load_prompt(args.prompts, a, args.level) for a in ("rewrite", "validate", "aggregate")}
    gen = {"rewrite": GenParams(cfg.rewriter.max_new_tokens), "validate": GenParams(cfg.validator.max_new_tokens),
           "aggregate": GenParams(cfg.aggregator.max_new_tokens)}
    with tempfile.TemporaryDirectory() as tmp:
        llm = build_llm(cfg.llm, "cpu", cache_path=Path(tmp) / "llm_cache.sqlite")  # fresh cache: all misses
        t0 = time.perf_counter()
        backend = llm.backend
        load_s = time.perf_counter() - t0
        rw, rw_s, rw_tok = timed(backend, lambda: agents.rewrite(llm, prompts["rewrite"], caps, gen["rewrite"]))
        queries = [c.text for c in rw]
        _, va_s, va_tok = timed(backend, lambda: agents.validate(llm, prompts["validate"], caps, queries,
                                                                 gen["validate"]))
        groups = [queries[i:i + 2] for i in range(0, len(queries) - 1, 2)]
        _, ag_s, ag_tok = timed(backend, lambda: agents.aggregate(llm, prompts["aggregate"], groups,
                                                                  gen["aggregate"]))
        misses = llm.counts.misses
    per_call = {
        name: {"calls": n, "seconds": round(s, 2), "seconds_per_call": s / max(n, 1), "new_tokens": tok,
               "tokens_per_s": round(tok / s, 2) if s else None, "max_new_tokens": gen[name].max_new_tokens}
        for name, n, s, tok in [("rewrite", len(caps), rw_s, rw_tok), ("validate", len(caps), va_s, va_tok),
                                ("aggregate", len(groups), ag_s, ag_tok)]}
    try:  # a profile that does not merge must not cost the measurement
        projection = profile_projection(args.profile, args.params, per_call, len(items))
    except ConfigError as exc:
        projection = {"error": str(exc)}
    per_caption = per_call["rewrite"]["seconds_per_call"] + per_call["validate"]["seconds_per_call"]
    gen_hours = len(items) * per_caption / 3600
    agg_hours = len(items) * AGG_PER_CAPTION * per_call["aggregate"]["seconds_per_call"] / 3600
    result = {
        "input": {"source": str(args.annotations) if args.annotations else "synthetic (ANC train shape)",
                  "captions": len(items), "videos": videos, "words_mean": round(float(words.mean()), 2),
                  "words_std": round(float(words.std()), 2)},
        "llm": {"backend": cfg.llm.backend, "model": cfg.llm.model, "model_id": llm.model_id,
                "dtype": cfg.llm.dtype, "batch_size": cfg.llm.batch_size, "threads": torch.get_num_threads(),
                "prompts": f"{args.prompts}/{args.level}", "cache": "fresh (temporary)", "generated": misses},
        "sample_captions": len(caps),
        "model_load_s": round(load_s, 2),
        "captions_per_s": round(len(caps) / (rw_s + va_s), 4),
        "rewrite_tokens_per_s": per_call["rewrite"]["tokens_per_s"],
        "per_call": {k: {**v, "seconds_per_call": round(v["seconds_per_call"], 3)} for k, v in per_call.items()},
        "peak_rss_gb": round(peak_rss_gb(), 3),
        "projected_hours": {
            "generate_all_captions": round(gen_hours, 2),
            "build_aggregation": round(agg_hours, 2),
            "total_one_level": round(gen_hours + agg_hours, 2),
        },
        "projected_real_profile": projection,
        "examples": [{"caption": c, "query": q} for c, q in list(zip(caps, queries))[:5]],
    }
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    write_json(args.out, result)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
