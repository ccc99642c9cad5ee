"""Stage ``sdst_efficiency@<variant>``: thesis Tab 4.19 for one SDST variant at real dimensions.

Builds the variant at ``sdst.efficiency`` dims (InternVideo2: video 768, text 1024; M 30; K from the variant or
``sdst.K``) and measures on random inputs of batch ``sdst.efficiency.batch_size`` (32):

* ``trainable_params`` — exact count of the parameters with ``requires_grad``, no buffers
  (:func:`models.sdst_budget.count_parameters`); also ``trainable_params_M`` in 10^6 and ``trainable_params_Mi``
  in 2^20, since it is unknown which unit the thesis' "4.10 M" uses; ``shared`` / ``attention`` / ``cnn`` say
  which thesis figure it compares with;
* ``peak_train_memory_gb`` — CUDA: ``torch.cuda.max_memory_allocated`` over the timed training steps; CPU:
  growth of the process' peak resident set (``memory_kind`` says which);
* ``iters_per_sec`` — full training iterations (forward, losses incl. Hungarian matching, backward, AdamW step)
  per second after ``warmup`` untimed ones.

Reads ``sdst.K``, ``sdst.variant_specs.<variant>``, ``sdst.model``, ``sdst.efficiency``, ``runtime``.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch

from models.sdst_config import SDSTConfig
from pipeline.core.cli import stage_main
from pipeline.core.params import RuntimeConfig, load_block, spec_entry
from pipeline.core.runtime import apply_runtime
from pipeline.sdst.params import SDSTParams
from pipeline.core.io import write_json
from pipeline.sdst.train import variant_model_config


def efficiency_config(params: SDSTParams, variant: str) -> SDSTConfig:
    """The variant's model config at the ``sdst.efficiency`` dims (layer ids 1..K stand in for real ones)."""
    spec = spec_entry(params.variant_specs, variant, "sdst.variant_specs", "variant")
    eff = params.efficiency
    k = spec.K if spec.K is not None else (len(params.layers) or params.K)
    layers = [k] * k if spec.last_layer_only else list(range(1, k + 1))
    return SDSTConfig(video_dim=eff.video_dim, text_dim=eff.text_dim, num_queries=eff.num_queries,
                      video_layers=layers, text_layers=layers, model=variant_model_config(params, variant))


def random_batch(cfg: SDSTConfig, batch_size: int, video_len: int, text_len: int, device: torch.device,
                 seed: int = 0) -> dict:
    """A plausible random batch: full-length videos, 1–3 GT windows per sample, saliency inside windows."""
    g = torch.Generator().manual_seed(seed)
    k = cfg.num_levels
    windows, sal = [], torch.zeros(batch_size, video_len)
    for b in range(batch_size):
        n = int(torch.randint(1, 4, (1,), generator=g))
        s = torch.rand(n, generator=g) * 0.8
        w = torch.rand(n, generator=g) * 0.2 + 0.02
        win = torch.stack([s, (s + w).clamp(max=1.0)], -1)
        windows.append(win.to(device))
        for a, e in win.tolist():
            sal[b, int(a * video_len): max(int(a * video_len) + 1, int(e * video_len))] = 4.0
    return {
        "video": torch.randn(batch_size, k, video_len, cfg.video_dim, generator=g).to(device),
        "video_mask": torch.ones(batch_size, video_len, dtype=torch.bool, device=device),
        "text": torch.randn(batch_size, k, text_len, cfg.text_dim, generator=g).to(device),
        "text_mask": torch.ones(batch_size, text_len, dtype=torch.bool, device=device),
        "saliency": sal.to(device), "windows": windows, "meta": [{} for _ in range(batch_size)],
    }


def _rss_gb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 1e9


def measure(cfg: SDSTConfig, batch_size: int, video_len: int, text_len: int, iterations: int, warmup: int,
            device: str = "cpu", precision: str = "fp32", seed: int = 0) -> dict:
    """Trainable params, peak training memory and training it/s of the network ``cfg`` names (SDST or the
    R2-Tuning baseline, :func:`models.side_tuners.build_side_tuner`)."""
    from models.side_tuners import build_side_tuner
    from models.sdst_budget import count_parameters
    from pipeline.core.training import autocast

    dev = torch.device(device)
    torch.manual_seed(seed)
    model = build_side_tuner(cfg).to(dev).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=1e-4)
    batch = random_batch(cfg, batch_size, video_len, text_len, dev, seed)

    def step():
        with autocast(dev, precision):
            loss = model(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    rss_before = _rss_gb()
    for _ in range(warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    for _ in range(iterations):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elapsed = time.perf_counter() - t0
    if dev.type == "cuda":
        peak, kind = torch.cuda.max_memory_allocated(dev) / 1e9, "cuda_max_allocated"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9 - rss_before
        kind = "cpu_peak_rss_growth"
    n = count_parameters(model)
    return {"trainable_params": n, "trainable_params_M": round(n / 1e6, 4), "trainable_params_Mi": round(n / 2**20, 4),
            "peak_train_memory_gb": round(peak, 4), "memory_kind": kind,
            "iters_per_sec": round(iterations / elapsed, 4), "batch_size": batch_size, "video_len": video_len,
            "levels": cfg.num_levels, "shared": cfg.model.shared, "attention": cfg.model.attention,
            "cnn": cfg.model.cnn, "architecture": cfg.model.architecture, "device": str(dev), "precision": precision}


@stage_main()
def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring); bad params → exit code 2."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    params = load_block(SDSTParams, args.params)
    runtime = load_block(RuntimeConfig, args.params)
    cfg = efficiency_config(params, args.variant)
    apply_runtime(runtime)
    eff = params.efficiency
    result = measure(cfg, eff.batch_size, eff.video_len, eff.text_len, eff.iterations, eff.warmup,
                     runtime.device, runtime.precision, runtime.seed)
    result = {"variant": args.variant, "label": params.variant_specs[args.variant].label, **result}
    write_json(args.out, result)
    print(f"[sdst_efficiency] {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
