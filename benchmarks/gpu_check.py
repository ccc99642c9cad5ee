"""One-command GPU-box check (issue 17): extraction and training throughput at the thesis' real dims.

    pip install -e ".[gpu]"
    python benchmarks/gpu_check.py --out reports/rehearsal/gpu_check.json          # ≤ 10 min on one GPU
    python benchmarks/gpu_check.py --dry-run --out /tmp/gpu_check.json            # same code path, CPU, seconds

Prints one table and writes it as JSON (``--out``, atomically). Rows:

* ``internvideo2_1b extract``: the InternVideo2-Stage2-1B vision tower at the official 1B architecture
  (``models/backbones``' builder with the real profile's ``features.internvideo2``: 224², 4 frames, layers
  36–40 pooled by the attention projector; random weights: speed does not depend on them), uint8 clips of the
  real recipe at ``features.batch_size`` → clips/s. Precision as extraction applies ``runtime.precision``:
  the model's weights cast to the dtype (``bf16`` row), not autocast.
* ``sdst`` / ``sada`` / ``search_vmr`` train: the rehearsal's builders (``benchmarks/rehearsal.py``: real
  profile, real per-item dims, each method's own dataset + collate + model; SADA = TriDet on EPIC-100 EK_S1,
  search = CG-DETR on HD-EPIC-like windows) at the real profile's batch size; forward + backward + AdamW under
  ``torch.autocast`` (``bf16``) or none (``fp32``) → it/s, samples/s and peak memory (CUDA: max allocated;
  CPU: the process' peak RSS, which never goes down).

``--dry-run`` runs the same functions on the CPU with tiny dims, two iterations and batch 2 (the test of this
script); ``--device cpu`` keeps the real dims on the CPU (slow). The thesis' SDST reference: 4.16 it/s at batch
32, fp16, one RTX 6000.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rehearsal  # noqa: E402  (puts the repository root on sys.path)
from rehearsal_measure import autocast, measure_loader, measure_step, peak_device_gb, reset_peak, synchronize  # noqa: E402

from pipeline.core.io import write_json  # noqa: E402

METHODS = ("sdst", "sada", "search_vmr")
# dry-run dims: every method's real code path at toy sizes (also the rehearsal tests' sizes)
TINY = {
    "sdst": dict(videos=4, rows=(8, 12), video_dim=16, text_dim=12, tokens=5),
    "search_vmr": dict(videos=4, rows=(20, 30), video_dim=16, text_dim=12, tokens=5),
    "sada": dict(videos=4, rows=(40, 70), video_dim=16, queries_per_video=3),
}
TINY_IV2 = dict(embed_dim=64, depth=2, num_heads=2, clip_embed_dim=32, attn_pool_num_heads=2,
                clip_teacher_embed_dim=64, clip_teacher_final_dim=32)


def iv2_config(params: Path, dry_run: bool):
    """``features.internvideo2`` of the real profile without a checkpoint (tiny arch for the dry run) and
    ``features.batch_size``."""
    from pipeline.core.params import load_block
    from pipeline.features.params import FeaturesConfig

    features = load_block(FeaturesConfig, params)
    cfg = dataclasses.replace(features.internvideo2, checkpoint=None)
    if dry_run:
        cfg = dataclasses.replace(cfg, arch=dataclasses.replace(cfg.arch, **TINY_IV2), layers=[1, 2],
                                  recipe=dataclasses.replace(cfg.recipe, size=28))
    return cfg, (2 if dry_run else features.batch_size)


def bench_extraction(cfg, batch: int, iters: int, device: str, precision: str) -> dict:
    """Clips/s of the InternVideo2 feature path on uint8 clips ``[batch, frames, size, size, 3]``."""
    import torch

    from models.backbones import build_video_backbone
    from pipeline.core.runtime import torch_dtype

    torch.manual_seed(0)
    model = build_video_backbone("internvideo2", cfg).to(device=device, dtype=torch_dtype(precision))
    size, frames = cfg.recipe.size, cfg.recipe.frames
    clips = torch.randint(0, 256, (batch, frames, size, size, 3), dtype=torch.uint8, device=device)
    reset_peak(device)
    elapsed = 0.0
    with torch.inference_mode():
        for k in range(iters + 1):  # the first batch warms up (kernel selection, allocator)
            synchronize(device)
            t0 = time.perf_counter()
            out = model(clips)
            synchronize(device)
            if k:
                elapsed += time.perf_counter() - t0
    return {"component": "internvideo2_1b extract", "precision": precision, "batch": batch,
            "it_per_s": iters / elapsed, "samples_per_s": iters * batch / elapsed,
            "peak_memory_gb": peak_device_gb(device), "output_shape": list(out.shape),
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6}


def bench_train(method: str, params: Path, work: Path, iters: int, device: str, precisions: list[str],
                dry_run: bool, batch: int | None = None) -> list[dict]:
    """Train it/s and peak memory of ``method`` at the real profile's batch size, once per precision (each on a
    fresh copy of the same initial model)."""
    shapes = rehearsal.SHAPES[method]
    if dry_run:
        shapes = dataclasses.replace(shapes, **TINY[method])
    built = rehearsal.SETUPS[method](work / method, params, shapes)
    bs = batch or (2 if dry_run else built.train.batch_size)
    batches, _ = measure_loader(built.dataset, built.collate, bs, iters + 1, 0)
    rows = []
    for precision in precisions:
        model = copy.deepcopy(built.model)
        reset_peak(device)
        sps, loss = measure_step(model, batches, built.train.lr, built.train.weight_decay, built.train.grad_clip,
                                 device, precision)
        rows.append({"component": f"{method} train", "precision": precision, "batch": bs,
                     "it_per_s": sps / bs, "samples_per_s": sps, "peak_memory_gb": peak_device_gb(device),
                     "last_loss": loss, "notes": built.notes})
        del model
    return rows


def table(rows: list[dict]) -> str:
    """The printed table."""
    lines = [f"{'component':26s} {'prec':5s} {'batch':>5s} {'it/s':>9s} {'samples/s':>10s} {'peak GB':>8s}"]
    for r in rows:
        lines.append(f"{r['component']:26s} {r['precision']:5s} {r['batch']:5d} {r['it_per_s']:9.3f} "
                     f"{r['samples_per_s']:10.2f} {r['peak_memory_gb']:8.2f}")
    return "\n".join(lines)


def run(device: str, dry_run: bool, iters: int, precisions: list[str], methods: list[str],
        extract: bool = True) -> dict:
    """All rows (see the module docstring) and the environment they were measured in."""
    import torch

    for p in precisions:
        autocast(device, p)  # an unknown precision fails before any work
    rows = []
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = Path(tmp)
        params = rehearsal.real_params(work)
        if extract:
            cfg, batch = iv2_config(params, dry_run)
            rows += [bench_extraction(cfg, batch, iters, device, p) for p in precisions]
        for method in methods:
            rows += bench_train(method, params, work, iters, device, precisions, dry_run)
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
    return {"device": device, "device_name": name, "torch": torch.__version__, "dry_run": dry_run,
            "iterations": iters, "threads": torch.get_num_threads(), "rows": rows,
            "reference": "thesis SDST: 4.16 it/s, batch 32, fp16, RTX 6000"}


def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring)."""
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--dry-run", action="store_true", help="tiny dims on the CPU, 2 iterations (seconds)")
    parser.add_argument("--iters", type=int, default=None, help="timed iterations (default 10; dry run 2)")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--no-extract", action="store_true", help="skip the InternVideo2 extraction rows")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (dry run: 1)")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    device = "cpu" if args.dry_run else (args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.threads or args.dry_run:
        torch.set_num_threads(args.threads or 1)
    iters = args.iters or (2 if args.dry_run else 10)
    result = run(device, args.dry_run, iters, args.precisions, args.methods, not args.no_extract)
    print(f"device {result['device_name']} ({device}), torch {result['torch']}, {iters} timed iterations"
          f"{' (DRY RUN: tiny dims)' if args.dry_run else ''}")
    print(table(result["rows"]))
    if args.out:
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
