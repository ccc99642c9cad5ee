"""SADA training under ``torchrun --nproc_per_node 2`` (gloo, CPU) against one process on the same global batches.

What can be equal, and is tested: with no random crop (``crop_ratio`` (1, 1), videos no longer than
``max_seq_len``) and no drop-path, every loss term of a global batch decomposes into per-rank sums over
per-video / per-anchor quantities divided by batch-wide counts — the focal/regression normaliser (EMA of the
number of positive points) and the anchor count of every (class, domain) cell of the discriminator terms
(Eq. 2.7/2.8 are cell means). ``SadaDetector`` sums those counts over the ranks (``all_reduce``, no gradient
through them), so 2 processes compute the single process' loss and gradients up to float summation order;
pseudo-labels and the discriminators are per-anchor, the norms per-video, so they need nothing.

What cannot be equal: random crops and drop-path masks draw from each rank's own RNG stream (``fit`` seeds rank
r with ``seed + r``), so with the default ``crop_ratio`` (0.9, 1.0) and ``droppath`` 0.1 a 2-process run is a
statistically equivalent run, not the same one.

Run as a script, this file is the torchrun worker: ``test_sada_ddp.py <world dir> <out dir> <align,...>``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def worker(root: Path, out: Path, align: list[str]) -> None:
    """Train the toy scenario with ``align`` (one seed, 3 epochs) into ``out`` (under torchrun)."""
    from sada_helpers import model_config, toy_run, weights

    from pipeline.core.params import RuntimeConfig
    from pipeline.core.training import shutdown_distributed
    from pipeline.datasets.params import DatasetScenario
    from pipeline.sada.data import resolve_scenario
    from pipeline.sada.params import SadaData, SadaScenario
    from pipeline.sada.train import train_run

    torch.set_num_threads(1)
    run = toy_run(seeds=(0,), epochs=3, align=align)
    # α low enough that target anchors get foreground pseudo-labels (class cells of both domains in play)
    run["scenario"] = SadaScenario(num_classes=3, weights=weights(alpha=0.01, lambda_sada=0.3))
    run["data"] = SadaData(max_seq_len=64, crop_ratio=(1.0, 1.0), trunc_thresh=0.3, layer=-1)  # no random crop
    run["model"] = dataclasses.replace(model_config(32, droppath=0.0), grl_schedule="warmup", grl_warmup_iters=4)
    selectors = DatasetScenario(dataset="toy_tal", source={"domain": ["src"]}, target={"domain": ["tgt"]})
    scenario = resolve_scenario("toy", selectors, run["scenario"], root / "data/canonical/toy_tal.jsonl")
    runtime = RuntimeConfig(device="cpu", seed=0, workers=0, precision="fp32", threads=1)
    train_run(scenario, run["variant"], run, root / "data/features/toy_tal/slowfast", out, runtime, progress=False,
              work_root=out.parent / f"_work_{out.name}")
    shutdown_distributed()


def _torchrun(n: int, root: Path, out: Path, align: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", __file__,
           str(root), str(out), ",".join(align)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _result(out: Path) -> tuple[dict[str, torch.Tensor], dict]:
    ckpt = torch.load(out / "seed_0" / "model.pt", map_location="cpu", weights_only=False)
    return ckpt["state_dict"], json.loads((out / "summary.json").read_text())["seeds"]["0"]


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    """Final (EMA) weights within 1e-4 (max abs, weights are O(0.1–1)) and every logged last-epoch loss within
    1e-4 relative: float summation order is the only difference left."""
    from sada_helpers import write_toy_world

    root = tmp_path / "world"
    write_toy_world(root)
    align = ["local", "bkg", "global"]  # every adaptation term at once (one torchrun pair: they are slow)
    for n in (1, 2):
        _torchrun(n, root, tmp_path / f"run{n}", align)
    (w1, s1), (w2, s2) = _result(tmp_path / "run1"), _result(tmp_path / "run2")
    assert w1.keys() == w2.keys()
    diff = max(float((w1[k].double() - w2[k].double()).abs().max()) for k in w1 if w1[k].is_floating_point())
    print(f"\n{align}: max |w1 - w2| = {diff:.3g}; 1 process {s1}; 2 processes {s2}")
    assert diff < 1e-4
    for key in ("train/loss", "train/loss_cls", "train/loss_reg", "train/loss_local", "train/loss_bkg",
                "train/loss_global", "train/num_pos"):
        assert s1[key] == pytest.approx(s2[key], rel=1e-4, abs=1e-7), key
    assert s1["train/loss_local"] > 0 and s1["train/loss_global"] > 0
    assert 0 < s1["train/pseudo_fg_frac"] < 1  # pseudo-labels were in play, both ways


if __name__ == "__main__":
    worker(Path(sys.argv[1]), Path(sys.argv[2]), [a for a in sys.argv[3].split(",") if a])
