"""SDST benchmarks (prints its figures; no asserts).

``python benchmarks/bench_sdst.py efficiency [--device cuda] [--precision bf16] [--iterations 30]``
    Thesis Tab 4.19 at real dims (video 768, text 1024, M 30, T 75, batch 32) for SDST (K=4) and w/o tuning
    (K=1): exact trainable parameters, peak training memory, training it/s.

``python benchmarks/bench_sdst.py seeds [--seeds 0 1 2] [--dataset synth_qvh] [--variants sdst wo_tuning]``
    Train → predict → evaluate each variant with each seed directly through the stage modules, on
    ``data/canonical/<dataset>.jsonl`` and its feature containers, with the ``params.yaml`` settings; prints
    MR/HD metrics per run and mean ± std (population std) per variant. Runs go under ``--work`` (default
    ``/tmp/bench_sdst``); delete it to retrain.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEYS = ["MR-R1@0.5", "MR-R1@0.7", "MR-mAP@0.5", "MR-mAP@0.75", "MR-mAP", "HD-mAP", "HD-HIT@1"]


def efficiency(args) -> None:
    import torch

    from models.sdst import SDST, parameter_breakdown
    from models.sdst_config import SDSTConfig
    from pipeline.sdst.efficiency import measure

    torch.set_num_threads(args.threads)
    print(f"device {args.device} ({torch.cuda.get_device_name() if args.device.startswith('cuda') else 'cpu'}), "
          f"precision {args.precision}, batch {args.batch}, T {args.video_len}, iterations {args.iterations}")
    print("| variant | levels | trainable params | params (M, 1e6) | params (Mi, 2^20) | peak train memory (GB) | it/s |")
    print("|---|---|---|---|---|---|---|")
    for name, k in (("SDST (K=4)", 4), ("w/o tuning (K=1)", 1)):
        cfg = SDSTConfig(768, 1024, 30, list(range(37, 41))[-k:], list(range(16, 20))[-k:])
        r = measure(cfg, args.batch, args.video_len, 32, args.iterations, args.warmup, args.device, args.precision)
        print(f"| {name} | {k} | {r['trainable_params']} | {r['trainable_params_M']:.3f} | "
              f"{r['trainable_params_Mi']:.3f} | {r['peak_train_memory_gb']:.3f} ({r['memory_kind']}) | "
              f"{r['iters_per_sec']:.2f} |")
    model = SDST(SDSTConfig(768, 1024, 30, [37, 38, 39, 40], [16, 17, 18, 19]))
    print("breakdown (K=4):", json.dumps(parameter_breakdown(model)))
    unshared = SDST(SDSTConfig(768, 1024, 30, [37, 38, 39, 40], [16, 17, 18, 19],
                               dataclasses.replace(model.config.model, shared=False)))
    print("unshared (Tab 4.17; thesis 12.43 M):", sum(p.numel() for p in unshared.parameters()))


def seeds(args) -> None:
    import torch

    from pipeline.sdst import evaluate as sdst_evaluate
    from pipeline.sdst import predict as sdst_predict
    from pipeline.sdst import train as sdst_train
    from pipeline.core.params import load_block
    from pipeline.sdst.params import SDSTParams
    from pipeline.core.params import RuntimeConfig

    params = load_block(SDSTParams, args.params)
    runtime = load_block(RuntimeConfig, args.params)
    data = Path(args.data)
    canonical = data / "canonical" / f"{args.dataset}.jsonl"
    video = data / "features" / args.dataset / params.video_features
    text = data / "features" / "text" / args.dataset
    spec = params.dataset_specs[args.dataset]
    torch.set_num_threads(args.threads)
    results: dict[str, list[dict]] = {}
    for variant in args.variants:
        for seed in args.seeds:
            out = Path(args.work) / args.dataset / f"{variant}_s{seed}"
            rt = dataclasses.replace(runtime, seed=seed, device=args.device or runtime.device)
            t0 = time.perf_counter()
            final_loss = None
            ckpt = sdst_train.seed_dir(out, seed) / "model.pt"
            if not ckpt.exists():
                fit = sdst_train.train(params, rt, args.dataset, variant, canonical, video, text, out, seeds=[seed])
                final_loss = fit[seed].history[-1]["train/loss"]
            rows = sdst_predict.predict(ckpt, canonical, video, text, spec.eval_split, spec.clip_len,
                                        spec.min_len, params.predict_batch_size, rt.device)
            gt, with_sal = sdst_evaluate.ground_truth_rows(canonical, spec.eval_split, spec.clip_len)
            m = sdst_evaluate.evaluate(rows, gt, with_sal, params.eval)
            results.setdefault(variant, []).append(m)
            print(f"{variant} seed {seed}: {json.dumps(m)} final train loss {final_loss} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"\n{args.dataset}, {len(args.seeds)} seeds, mean ± std:")
    print("| variant | " + " | ".join(KEYS) + " |")
    print("|---|" + "---|" * len(KEYS))
    for variant, ms in results.items():
        cells = []
        for k in KEYS:
            vals = [m[k] for m in ms if k in m and m[k] is not None]
            cells.append(f"{statistics.mean(vals):.2f} ± {statistics.pstdev(vals):.2f}" if vals else "—")
        print(f"| {variant} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("efficiency")
    e.add_argument("--device", default="cpu")
    e.add_argument("--precision", default="fp32")
    e.add_argument("--batch", type=int, default=32)
    e.add_argument("--video-len", type=int, default=75)
    e.add_argument("--iterations", type=int, default=5)
    e.add_argument("--warmup", type=int, default=1)
    e.add_argument("--threads", type=int, default=1)
    s = sub.add_parser("seeds")
    s.add_argument("--dataset", default="synth_qvh")
    s.add_argument("--variants", nargs="+", default=["sdst", "wo_tuning"])
    s.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    s.add_argument("--params", default=str(ROOT / "params.yaml"))
    s.add_argument("--work", default="/tmp/bench_sdst")
    s.add_argument("--data", default=str(ROOT / "data"), help="folder holding canonical/ and features/")
    s.add_argument("--device", default=None, help="override runtime.device")
    s.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    efficiency(args) if args.cmd == "efficiency" else seeds(args)


if __name__ == "__main__":
    main()
