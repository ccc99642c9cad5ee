"""Where SDST's train step spends its time at real dims (issue 17): one command, prints a table.

    python benchmarks/profile_sdst.py [--batch 32] [--iters 3] [--threads 1] [--trace out.json]

Builds SDST exactly as the rehearsal does (``benchmarks/rehearsal.py``: real profile, QVHighlights dims, the
method's own dataset + collate), then times ``--iters`` train steps (after one untimed warm-up) and splits them:

* phases: forward, backward, optimizer (AdamW + grad clip);
* forward regions, by wrapping (never editing) the model's methods: the per-level input maps, dense stream,
  sparse stream (incl. its video attention), RoIAlign (``roi_features``), the Hungarian cost + scipy matching
  (``_mr_losses`` as a whole and ``hungarian_match`` alone), saliency / alignment losses;
* the top operators by self CPU time (``torch.profiler``, forward and backward together).
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rehearsal  # noqa: E402  (puts the repository root on sys.path)
from rehearsal_measure import synchronize  # noqa: E402


def _timed(table: dict, name: str, fn):
    """``fn`` wrapped to add its wall time to ``table[name]``."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            table[name] += time.perf_counter() - t0
    return wrapper


def instrument(table: dict) -> None:
    """Wrap the SDST pieces named in the module docstring (class attributes: every level is covered)."""
    import models.sdst as sdst

    for cls, names in ((sdst.SDSTLayer, ("map_inputs", "dense", "sparse")),
                       (sdst.SDST, ("roi_features", "_mr_losses", "_sampled_nce", "_alignment", "adapool"))):
        for name in names:
            setattr(cls, name, _timed(table, f"{cls.__name__}.{name}", getattr(cls, name)))
    sdst.hungarian_match = _timed(table, "hungarian_match (scipy, in _mr_losses)", sdst.hungarian_match)
    video_att = sdst.DeformableVideoAttention.forward
    sdst.DeformableVideoAttention.forward = _timed(table, "video attention (in sparse)", video_att)


def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring)."""
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--trace", type=Path, default=None, help="also write a chrome trace here")
    parser.add_argument("--shapes", action="store_true", help="group the operator table by input shape")
    parser.add_argument("--no-ops", action="store_true",
                        help="skip torch.profiler (its overhead inflates small ops): phases and regions only")
    parser.add_argument("--device", default="cpu", help="cpu | cuda (CUDA kernels are then profiled too)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    import dataclasses

    shapes = dataclasses.replace(rehearsal.SHAPES["sdst"], videos=args.videos)
    with tempfile.TemporaryDirectory(prefix="profile_sdst_") as tmp:
        work = Path(tmp)
        built = rehearsal.SETUPS["sdst"](work, rehearsal.real_params(work), shapes)
        batches, _ = rehearsal.measure_loader(built.dataset, built.collate, args.batch, args.iters + 1, 0)
    from pipeline.core.training import move_to_device

    model, train = built.model.to(args.device), built.train
    batches = [move_to_device(b, torch.device(args.device)) for b in batches]
    cuda = args.device.startswith("cuda")
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=train.lr)
    regions: dict[str, float] = collections.defaultdict(float)
    phases: dict[str, float] = collections.defaultdict(float)
    model.train()

    def step(b, timed: bool) -> None:
        synchronize(args.device)
        t0 = time.perf_counter()
        loss = model(b)["loss"]
        synchronize(args.device)
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        synchronize(args.device)
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip or 1e9)
        opt.step()
        synchronize(args.device)
        if timed:
            phases["forward"] += t1 - t0
            phases["backward"] += t2 - t1
            phases["optimizer"] += time.perf_counter() - t2

    step(batches[0], False)
    instrument(regions)
    activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if cuda else [])
    with (contextlib.nullcontext() if args.no_ops
          else torch.profiler.profile(activities=activities, record_shapes=args.shapes)) as prof:
        for b in batches[1:]:
            step(b, True)
    total = sum(phases.values())
    print(f"SDST train step on {args.device}, batch {args.batch}, {args.threads} thread(s), {args.iters} iters: "
          f"{total / args.iters:.3f} s/it ({args.iters * args.batch / total:.2f} samples/s"
          f"{'' if args.no_ops else '; torch.profiler adds overhead'}); forward regions are wall time "
          f"(on CUDA: kernel launch, not execution, unless a region syncs)")
    print(f"{'phase / forward region':52s} {'s/it':>8s} {'% step':>7s}")
    for name, sec in [*phases.items(), *sorted(regions.items(), key=lambda kv: -kv[1])]:
        print(f"{name:52s} {sec / args.iters:8.3f} {100 * sec / total:6.1f}%")
    if args.no_ops:
        return 0
    print("\ntop operators by self time (forward + backward + optimizer):")
    print(prof.key_averages(group_by_input_shape=args.shapes).table(
        sort_by="self_cuda_time_total" if cuda else "self_cpu_time_total", row_limit=25 if args.shapes else 18, max_name_column_width=40,
        max_shapes_column_width=80))
    if args.trace:
        prof.export_chrome_trace(str(args.trace))
    return 0


if __name__ == "__main__":
    sys.exit(main())
