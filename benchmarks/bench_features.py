"""Feature-extraction benchmark: prints ratios measured in one run (no asserts).

1. Decode: our sampled decode + resize (``iter_clips`` with a backbone's recipe) against a bare PyAV loop over
   the same file (``for f in container.decode(video=0): pass``), as video-seconds per wall-second.
   Ratio = ours / bare (goal ≥ 0.8).
2. Extraction overhead: end-to-end ``extract_shard`` (decode in DataLoader workers, forward, containers)
   against the pure backbone forward on the same clips already in memory. Ratio = e2e / forward (goal ≤ 1.25).
3. ``--iv2-1b``: the InternVideo2-1B vision tower (random init, official size) on one minute of video
   (30 clips of 4 frames at 224²) at bf16 on ``--device``: clips/s and peak memory.

    OMP_NUM_THREADS=1 python benchmarks/bench_features.py [--videos DIR] [--workers 1] [--threads 1]
    python benchmarks/bench_features.py --iv2-1b --device cuda --skip-cpu

Without ``--videos``, uses data/raw/synth_tal/videos when present, else writes synthetic test videos.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_videos(out: Path, n: int, seconds: float, fps: int, size: int) -> list[Path]:
    """Write ``n`` H.264 clips of a few moving discs on a noisy background."""
    import av

    rng = np.random.default_rng(0)
    paths = []
    yy, xx = np.mgrid[0:size, 0:size]
    for v in range(n):
        path = out / f"bench_{v}.mp4"
        with av.open(str(path), mode="w") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width = stream.height = size
            stream.pix_fmt = "yuv420p"
            stream.options = {"preset": "veryfast", "g": str(2 * fps)}
            centres = rng.uniform(0, size, (3, 2))
            vel = rng.uniform(-1, 1, (3, 2))
            for k in range(int(seconds * fps)):
                img = np.full((size, size, 3), 60, np.int16) + rng.integers(-6, 7, (size, size, 3))
                for c, (cx, cy) in enumerate((centres + k * vel) % size):
                    img[(xx - cx) ** 2 + (yy - cy) ** 2 < (size / 10) ** 2] = (200, 60 + 60 * c, 40)
                frame = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        paths.append(path)
    return paths


def bare_decode(path: Path) -> float:
    """Seconds for the plain PyAV decode loop over every frame."""
    import av

    t = time.perf_counter()
    with av.open(str(path)) as container:
        for _ in container.decode(video=0):
            pass
    return time.perf_counter() - t


def our_decode(path: Path, recipe, duration: float) -> float:
    """Seconds for our sampled decode + resize of every window of the recipe."""
    from pipeline.features.decode import iter_clips, plan_windows

    plan = plan_windows(duration, recipe.fps, recipe.frames, recipe.stride)
    t = time.perf_counter()
    for _ in iter_clips(str(path), plan, recipe.size, 16, recipe.resize, recipe.interpolation):
        pass
    return time.perf_counter() - t


def bench_decode(paths: list[Path], recipe, repeats: int) -> None:
    from pipeline.features.decode import probe

    durations = [probe(p).duration for p in paths]
    total = sum(durations)
    bare = min(sum(bare_decode(p) for p in paths) for _ in range(repeats))
    ours = min(sum(our_decode(p, recipe, d) for p, d in zip(paths, durations)) for _ in range(repeats))
    print(f"[decode] {len(paths)} videos, {total:.0f} s of video, recipe fps {recipe.fps:g} × {recipe.frames} frames "
          f"/ stride {recipe.stride} at {recipe.size}²")
    print(f"  bare PyAV decode loop : {total / bare:8.1f} video-s/s  ({bare:.2f} s)")
    print(f"  sampled decode+resize : {total / ours:8.1f} video-s/s  ({ours:.2f} s)")
    print(f"  RATIO decode (ours / bare rate) = {bare / ours:.2f}   (goal >= 0.8)")


def bench_extraction(paths: list[Path], backbone: str, features, runtime, repeats: int) -> None:
    import torch

    from pipeline.datasets.schema import VideoRecord
    from pipeline.features.extract import build_backbone, extract_shard
    from pipeline.features.decode import iter_clips, plan_windows, probe

    recipe = features.backbone(backbone).recipe
    records = [VideoRecord(video_id=p.stem, dataset="bench", split="test", duration=probe(p).duration,
                           video_path=str(p)) for p in paths]
    model = build_backbone(backbone, features, runtime)
    batches = []
    for rec in records:
        plan = plan_windows(rec.duration, recipe.fps, recipe.frames, recipe.stride)
        batches += [torch.from_numpy(cb.clips()) for cb in iter_clips(rec.video_path, plan, recipe.size,
                                                                       features.batch_size, recipe.resize,
                                                                       recipe.interpolation)]
    n_clips = sum(len(b) for b in batches)
    with torch.inference_mode():
        model(batches[0])  # warm-up
        fwd = []
        for _ in range(repeats):
            t = time.perf_counter()
            for b in batches:
                model(b).float().cpu().numpy()
            fwd.append(time.perf_counter() - t)
    e2e = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            t = time.perf_counter()
            extract_shard(records, backbone, features, runtime, Path(tmp) / f"out{r}", Path(tmp) / f"work{r}",
                          "bench", root=Path("/"), model=model, progress=False)
            e2e.append(time.perf_counter() - t)
    f, e = min(fwd), min(e2e)
    print(f"[extract] {backbone}: {len(records)} videos, {n_clips} clips, workers={runtime.workers}, "
          f"threads={runtime.threads}")
    print(f"  pure forward   : {f:.2f} s  ({n_clips / f:.1f} clips/s)")
    print(f"  end-to-end     : {e:.2f} s  ({n_clips / e:.1f} clips/s)")
    print(f"  RATIO extraction (end-to-end / forward) = {e / f:.2f}   (goal <= 1.25)")


def bench_iv2_1b(device: str, seconds: float = 60.0, batch: int = 8) -> None:
    import torch

    from models.backbones.internvideo2 import IV2_1B, InternVideo2Video, InternVideo2VisionEncoder

    dev = torch.device(device)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with dev:  # initialise the 1B weights directly on the device
        enc = InternVideo2VisionEncoder(**IV2_1B)
    model = InternVideo2Video(enc, layers=[36, 37, 38, 39, 40], pooling="adaptive").to(dev, torch.bfloat16).eval()
    build = time.perf_counter() - t0
    n_clips = int(seconds // 2)
    clips = torch.randint(0, 256, (n_clips, 4, 224, 224, 3), dtype=torch.uint8)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    with torch.inference_mode():
        model(clips[:batch].to(dev))  # warm-up
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t = time.perf_counter()
        outs = [model(clips[i:i + batch].to(dev, non_blocking=True)) for i in range(0, n_clips, batch)]
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        dt = time.perf_counter() - t
    out = torch.cat(outs)
    peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else float("nan")
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"[iv2-1b] {name}: {sum(p.numel() for p in model.parameters()) / 1e9:.3f} B params (built in {build:.0f} s), "
          f"{n_clips} clips (= {seconds:.0f} s of video) in {dt:.2f} s -> {n_clips / dt:.1f} clips/s at bf16, "
          f"batch {batch}; output {tuple(out.shape)}; peak memory {peak:.2f} GiB; "
          f"finite {bool(out.float().isfinite().all())}")


def main() -> int:
    from pipeline.core.params import load_block
    from pipeline.core.params import RuntimeConfig
    from pipeline.features.params import FeaturesConfig
    from pipeline.features.decode import probe

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", help="directory of mp4 files to use")
    ap.add_argument("--max-videos", type=int, default=4)
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--backbone", default="slowfast")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--iv2-1b", action="store_true", help="also time the official-size InternVideo2 tower")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-cpu", action="store_true", help="only the --iv2-1b part")
    args = ap.parse_args()
    if not args.skip_cpu:
        features = load_block(FeaturesConfig, args.params)
        runtime = dataclasses.replace(load_block(RuntimeConfig, args.params), workers=args.workers,
                                      threads=args.threads, device="cpu", precision="fp32")
        src = Path(args.videos) if args.videos else ROOT / "data/raw/synth_tal/videos"
        tmp = None
        if src.is_dir() and any(src.glob("*.mp4")):
            paths = sorted(src.glob("*.mp4"))[: args.max_videos]
        else:
            tmp = tempfile.TemporaryDirectory()
            paths = make_videos(Path(tmp.name), args.max_videos, 40.0, 30, 96)
        info = probe(paths[0])
        print(f"videos: {len(paths)} from {src if tmp is None else 'generated'} ({info.width}x{info.height}, "
              f"{info.fps:g} fps)")
        for name in dict.fromkeys([args.backbone, "internvideo2"]):  # the extraction recipe, then a sparse one
            print(f"recipe of {name}:")
            bench_decode(paths, features.backbone(name).recipe, args.repeats)
        bench_extraction(paths, args.backbone, features, runtime, args.repeats)
        if tmp is not None:
            tmp.cleanup()
    if args.iv2_1b:
        bench_iv2_1b(args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
