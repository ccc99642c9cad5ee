"""SADA's data path at EPIC real dims (issue 17): memory-mapped videos vs. every video held as float32 in RAM.

    python benchmarks/bench_sada_loader.py [--videos 24] [--reads 200] [--batches 8] [--out FILE.json]

Writes a SlowFast-like container (2304-d, 1200–3600 rows per video, ``benchmarks/rehearsal.py``'s generator and
shapes) once, then measures each mode in a fresh subprocess (so ``peak_rss_gb`` is that mode's own peak):

* ``mmap``  — ``pipeline.sada.data.load_videos`` as it is (lazy float16 rows; the crop is converted in collate);
* ``eager`` — the pre-fix behaviour, emulated: every loaded video materialised as a float32 array up front.

Per mode: ``load_s`` (load_videos for all videos), ``item_ms`` (``dataset[i]`` for a random pair: two random
crops), ``item_raw_ms`` (the same plus a copy of both crops' stored bytes: float16 for mmap, float32 for
eager), ``item_f32_ms`` (the same plus both crops as float32 arrays: what a training step consumes),
``collate_ms`` per batch of ``sada.train.batch_size`` pairs, ``loader_samples_per_s`` (pairs/s through a
``DataLoader``, 0 workers), ``peak_rss_gb`` (``rss_before_load_gb``: after the imports; at the end ``rss_anon_gb`` = process memory and
``rss_file_gb`` = mapped file pages, page cache the kernel can drop), and ``identical``: the mmap mode's collated batches equal the eager
mode's bit for bit (same seed, same crops, same order). Settings from ``profiles/real.yaml`` merged over
``params.yaml`` (``sada.data``, ``sada.train.batch_size``); 1 torch thread.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from pipeline.core.io import write_json  # noqa: E402


def prepare(work: Path, videos: int) -> None:
    """Real params, records and the video container under ``work``."""
    from rehearsal import SHAPES, _videos, real_params, write_features

    from pipeline.core.params import load_block
    from pipeline.sada.params import SadaConfig

    shapes = dataclasses.replace(SHAPES["sada"], videos=videos)
    params = real_params(work)
    cfg = load_block(SadaConfig, params)
    classes = [f"verb{k}" for k in range(cfg.scenario_specs["EK_S1"].num_classes)]
    recs, lengths = _videos(shapes, "train", np.random.default_rng(3), labels=classes)
    write_features(work, shapes, recs, lengths, "train")
    from pipeline.datasets.schema import write_records

    write_records(work / "canonical.jsonl", recs)
    (work / "classes.json").write_text(json.dumps(classes))


def _status_gb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 2**20
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def peak_rss_gb() -> float:
    """This process' peak RSS (``VmHWM``: unlike ``ru_maxrss`` it restarts at exec, so the parent that wrote the
    container does not leak its peak into a measuring child)."""
    return _status_gb("VmHWM")


def measure(work: Path, mode: str, reads: int, batches: int) -> dict:
    """One mode's numbers (runs in its own process)."""
    import torch

    from pipeline.core.params import load_block
    from pipeline.datasets.schema import read_records
    from pipeline.sada.data import SOURCE, TARGET, PairCollate, PairedDomainDataset, load_videos, open_features
    from pipeline.sada.params import SadaConfig

    torch.set_num_threads(1)
    cfg = load_block(SadaConfig, work / "params.yaml")
    classes = json.loads((work / "classes.json").read_text())
    recs = read_records(work / "canonical.jsonl")
    rss0 = peak_rss_gb()
    t0 = time.perf_counter()
    container, recipe = open_features(work / "video" / "train")
    half = len(recs) // 2
    source, _ = load_videos(recs[:half], container, recipe, classes, cfg.data.layer, SOURCE)
    target, _ = load_videos(recs[half:], container, recipe, classes, cfg.data.layer, TARGET)
    if mode == "eager":  # the pre-fix load_videos: each video's rows copied out as float32
        for v in source + target:
            v.feats = np.asarray(v.feats, dtype=np.float32)
    load_s = time.perf_counter() - t0
    for v in target:
        v.segments, v.labels = v.segments[:0], v.labels[:0]
    ds = PairedDomainDataset(source, target, cfg.data.max_seq_len, cfg.data.crop_ratio, cfg.data.trunc_thresh)
    collate = PairCollate(8, recipe)
    pick = np.random.default_rng(0).integers(0, len(ds), reads)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    for i in pick:
        ds[int(i)]
    item_ms = (time.perf_counter() - t0) / reads * 1e3
    t0 = time.perf_counter()
    for i in pick:
        for v in ds[int(i)]:
            np.asarray(v.feats, dtype=np.float32)
    item_f32_ms = (time.perf_counter() - t0) / reads * 1e3
    t0 = time.perf_counter()
    for i in pick:
        for v in ds[int(i)]:
            np.array(v.feats.raw() if mode == "mmap" else v.feats)
    item_raw_ms = (time.perf_counter() - t0) / reads * 1e3
    bs = cfg.train.batch_size
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=True, collate_fn=collate, num_workers=0,
                                         generator=torch.Generator().manual_seed(0))
    digest, n, loader_s, it = hashlib.sha256(), 0, 0.0, iter(loader)
    for _ in range(min(batches, len(loader))):
        t0 = time.perf_counter()
        batch = next(it)
        loader_s += time.perf_counter() - t0  # the digest below is the equality check, not loader work
        n += bs
        digest.update(batch["feats"].numpy().tobytes())
        digest.update(batch["mask"].numpy().tobytes())
        for s in batch["segments"]:
            digest.update(s.numpy().tobytes())
    return {"mode": mode, "videos": len(recs), "load_s": load_s, "item_ms": item_ms, "item_f32_ms": item_f32_ms,
            "item_raw_ms": item_raw_ms, "rss_before_load_gb": rss0,
            "collate_ms": loader_s / max(1, n // bs) * 1e3, "loader_samples_per_s": n / loader_s,
            "peak_rss_gb": peak_rss_gb(), "rss_anon_gb": _status_gb("RssAnon"), "rss_file_gb": _status_gb("RssFile"),
            "batch_sha256": digest.hexdigest()}


def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", nargs=2, metavar=("WORK", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(Path(args.child[0]), args.child[1], args.reads, args.batches)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench_sada_loader_") as tmp:
        prepare(Path(tmp), args.videos)
        results = {}
        for mode in ("eager", "mmap"):
            out = subprocess.run([sys.executable, __file__, "--child", tmp, mode, "--reads", str(args.reads),
                                  "--batches", str(args.batches)], check=True, capture_output=True, text=True,
                                 env={**os.environ, "OMP_NUM_THREADS": "1"})
            results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    results["identical"] = results["eager"]["batch_sha256"] == results["mmap"]["batch_sha256"]
    print(json.dumps(results, indent=1))
    if args.out:
        write_json(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
