"""SADA detector figures: parameter counts at the real dims, training/inference speed, and a controlled
domain-adaptation check on toy features.

    python benchmarks/bench_sada.py [--dim 64] [--input-dim 320] [--length 96] [--iters 20]
    python benchmarks/bench_sada.py --toy-da [--shift 1.5] [--lambda-sada 3.0] [--grl 0.01] [--seeds 0 1 2]

Default mode prints (1) the parameter count of the detector with the TriDet EPIC configs (dim 512, FFN 1024,
2304-d SlowFast input, 97 verbs) and with the thesis width (1024), source-only and with the SADA
discriminators; (2) milliseconds per training step (2 source + 2 target videos) for each alignment variant
and per-video inference (Soft-NMS included) at the requested width, on this CPU with one thread.

``--toy-da`` runs the real train → predict → evaluate functions on the tests' toy world (feature rows carry a
class pattern; the target domain adds a fixed random offset to every row, so a source-only model degrades)
for source-only, global (DANN) and local+bkg (SADA), and prints target/source mAP (mean ± std over seeds).
It checks that the adaptation machinery works where the features carry class information.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.sada.detector import SadaDetector
from models.sada.config import SadaDetectorConfig, SadaInferenceConfig, SadaModelConfig, SadaWeights
from pipeline.core.params import build, load_block
from pipeline.sada.params import SadaConfig


def _config(model: SadaModelConfig, align: list[str], input_dim: int, classes: int) -> SadaDetectorConfig:
    weights = SadaWeights(lambda_levels=[1.0] * (model.arch[2] + 1), alpha=0.5, lambda_cls=1.0, lambda_reg=1.0,
                          lambda_task=1.0, lambda_sada=1.0)
    return SadaDetectorConfig(model=model, weights=weights, align=align, input_dim=input_dim,
                              class_names=[f"c{i}" for i in range(classes)])


def _batch(input_dim: int, length: int, classes: int) -> dict:
    g = torch.Generator().manual_seed(0)
    segs = [torch.tensor([[4.0, 12.0], [20.0, 26.0], [40.0, 60.0]]), torch.tensor([[10.0, 18.0]])]
    labels = [torch.tensor([0, 1 % classes, 2 % classes]), torch.tensor([1 % classes])]
    empty = torch.zeros(0, 2)
    return {
        "feats": torch.randn(4, input_dim, length, generator=g), "mask": torch.ones(4, 1, length, dtype=torch.bool),
        "domain": torch.tensor([0, 0, 1, 1]), "segments": segs + [empty, empty],
        "labels": labels + [torch.zeros(0, dtype=torch.long)] * 2, "video_ids": ["a", "b", "c", "d"],
        "durations": torch.full((4,), length * 0.5, dtype=torch.float64), "time_step": 0.5, "window": 1.0,
    }


def toy_da(shift: float, lambda_sada: float, grl: float, seeds: list[int], epochs: int, out: Path) -> None:
    """Source-only vs global vs SADA on the toy two-domain world (see the module docstring)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from sada_helpers import inference_config, toy_run, weights, write_toy_world

    from pipeline.datasets.params import DatasetScenario
    from pipeline.core.params import RuntimeConfig
    from pipeline.sada.params import SadaScenario
    from pipeline.sada.data import resolve_scenario
    from pipeline.sada.evaluate import evaluate_run
    from pipeline.sada.predict import predict_run
    from pipeline.sada.train import train_run

    write_toy_world(out, videos_per_domain=12, shift=shift, seed=1)
    canonical, features = out / "data/canonical/toy_tal.jsonl", out / "data/features/toy_tal/slowfast"
    runtime = RuntimeConfig(device="cpu", seed=0, workers=0, precision="fp32", threads=1)
    selectors = DatasetScenario(dataset="toy_tal", source={"domain": ["src"]}, target={"domain": ["tgt"]})
    print(f"toy world: offset std {shift}, lambda_sada {lambda_sada}, GRL coefficient {grl}, seeds {seeds}")
    for name, align in (("source_only", ()), ("global", ("global",)), ("sada", ("local", "bkg"))):
        run = toy_run(seeds=tuple(seeds), epochs=epochs, align=align)
        run["scenario"] = SadaScenario(num_classes=3, weights=weights(alpha=0.3, lambda_sada=lambda_sada))
        run["model"] = dataclasses.replace(run["model"], grl_warmup_iters=30, grl_coeff=grl)
        scenario = resolve_scenario("toy", selectors, run["scenario"], canonical)
        d = out / name
        train_run(scenario, run["variant"], run, features, d / "train", runtime, progress=False)
        predict_run(selectors, run["scenario"], canonical, features, d / "train", d / "predict", -1,
                    inference_config(), 0, 100)
        m = evaluate_run(d / "predict", d / "train", name, [], 2, d / "metrics.json", d / "plots")
        t, s = m["target"], m["source"]
        print(f"  {name:12s} target avg mAP {t['avg']:6.2f} ± {t['avg_std']:5.2f}   source {s['avg']:6.2f} ± "
              f"{s['avg_std']:5.2f}   background mixing {m['alignment'].get('background', float('nan')):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--input-dim", type=int, default=320)
    ap.add_argument("--length", type=int, default=96)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--toy-da", action="store_true", help="run the controlled adaptation check instead")
    ap.add_argument("--shift", type=float, default=1.5)
    ap.add_argument("--lambda-sada", type=float, default=3.0)
    ap.add_argument("--grl", type=float, default=0.01)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench_sada_toy"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.toy_da:
        toy_da(args.shift, args.lambda_sada, args.grl, args.seeds, args.epochs, args.out)
        return
    base = load_block(SadaConfig).model
    print("parameter counts (plain begin/end head, 6 levels):")
    for name, dim, mlp in (("TriDet EPIC (512)", 512, 1024), ("thesis (1024)", 1024, 2048)):
        model = dataclasses.replace(base, embed_dim=dim, head_dim=dim, sgp_mlp_dim=mlp, disc_hidden=512)
        for align in ([], ["local", "bkg"]):
            n = sum(p.numel() for p in SadaDetector(_config(model, align, 2304, 97)).parameters())
            print(f"  {name:18s} {'+'.join(align) or 'source-only':12s} {n / 1e6:8.3f} M")
    model = dataclasses.replace(base, embed_dim=args.dim, head_dim=args.dim, sgp_mlp_dim=2 * args.dim)
    inference = build(SadaInferenceConfig, dataclasses.asdict(load_block(SadaConfig).inference), "sada.inference")
    batch = _batch(args.input_dim, args.length, args.classes)
    print(f"speed at dim {args.dim}, input {args.input_dim}, {args.length} rows, 1 thread:")
    for align in ([], ["global"], ["local", "bkg"]):
        torch.manual_seed(0)
        det = SadaDetector(_config(model, align, args.input_dim, args.classes))
        opt = torch.optim.AdamW(det.parameters(), lr=1e-4)
        for i in range(args.iters + 3):
            if i == 3:
                t0 = time.perf_counter()
            out = det(batch)
            opt.zero_grad()
            out["loss"].backward()
            opt.step()
        step = (time.perf_counter() - t0) / args.iters * 1000
        det.eval()
        one = {k: (v[:1] if isinstance(v, (torch.Tensor, list)) and k not in ("time_step", "window") else v)
               for k, v in batch.items()}
        t0 = time.perf_counter()
        for _ in range(5):
            det.predict(one, inference)
        pred = (time.perf_counter() - t0) / 5 * 1000
        print(f"  {'+'.join(align) or 'source-only':12s} train step {step:7.1f} ms   predict {pred:7.1f} ms/video")


if __name__ == "__main__":
    main()
