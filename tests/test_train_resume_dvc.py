"""Fault injection: ``dvc repro`` of a training stage killed mid-way (SIGKILL to the whole process group), then
rerun, resumes after the last finished epoch and ends with the same output bytes (and the same DVC hash) as an
uninterrupted run.

A temporary git + DVC repository holds a one-stage ``dvc.yaml`` running the real ``pipeline.sdst.train`` entry
on the tiny SDST fixture (2 seeds × 4 epochs, the kill lands in seed 1): ``dvc repro`` deletes the stage's
output before the rerun, as in the real pipeline, so only the work folder (``models/_work/sdst``) can carry the
state. The uninterrupted reference is ``dvc repro --force`` in the same repository.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT

sys.path.insert(0, str(Path(__file__).parent))
from _sdst_fixture import make_fixture  # noqa: E402

pytestmark = pytest.mark.slow

EPOCHS = 4
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
       "PYTHONPATH": str(REPO_ROOT), "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
       "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.invalid"}


def _run(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)
    sys.stdout.write(f"$ {' '.join(cmd)}\n{proc.stdout}\n")
    assert proc.returncode == 0, \
        f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _params() -> dict:
    from pipeline.profiles import deep_merge

    base = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params = deep_merge(base, yaml.safe_load((REPO_ROOT / "profiles" / "smoke.yaml").read_text()))
    params["sdst"]["dataset_specs"]["toy_qvh"] = {
        "train_split": "train", "eval_split": "val", "num_queries": 8, "clip_len": 2.0, "min_len": 5,
        "train": {"epochs": EPOCHS, "batch_size": 8, "lr": 0.002, "warmup_iters": 2, "schedule": "cosine",
                  "ema_decay": 0.9}}
    params["sdst"]["seeds"] = [0, 1]
    return params


def _repo(root: Path) -> Path:
    root.mkdir(parents=True)
    paths = make_fixture(root / "fx", n_train=12, n_val=2)
    rel = {k: v.relative_to(root).as_posix() for k, v in paths.items()}
    (root / "params.yaml").write_text(yaml.safe_dump(_params()))
    stage = {
        "cmd": (f"{sys.executable} -m pipeline.sdst.train --dataset toy_qvh --variant sdst"
                f" --canonical {rel['canonical']} --video-features {rel['video']} --text-features {rel['text']}"
                " --out models/sdst"),
        "deps": ["fx"],
        "params": ["sdst.train", "sdst.model", "sdst.seeds", "sdst.dataset_specs.toy_qvh"],
        "outs": ["models/sdst"],
    }
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"sdst_train": stage}}))
    _run(["git", "init", "-q", "-b", "main"], root)
    _run(["dvc", "init", "-q"], root)
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-qm", "fixture"], root)
    return root


def _repro_killed(root: Path, after: str) -> str:
    """``dvc repro`` killed (SIGKILL, whole process group) as soon as its stdout so far matches ``after``."""
    proc = subprocess.Popen(["dvc", "repro"], cwd=root, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if re.search(after, "".join(seen), re.M):
                os.killpg(proc.pid, signal.SIGKILL)
                break
    finally:
        proc.wait(timeout=60)
    out = "".join(seen)
    assert re.search(after, out, re.M), f"never reached {after!r}:\n{out[-3000:]}"
    return out


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _out_hash(root: Path) -> str:
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    return lock["stages"]["sdst_train"]["outs"][0]["md5"]


def test_killed_dvc_repro_resumes_and_writes_the_uninterrupted_bytes(tmp_path):
    root = _repo(tmp_path / "repo")
    # killed right after seed 1's epoch 2 was saved (seed 0 finished: its state is in the work folder too)
    t0 = time.perf_counter()
    _repro_killed(root, rf"seed 1:[\s\S]*^\[train\] epoch 2/{EPOCHS}")
    t_killed = time.perf_counter() - t0
    assert not (root / "dvc.lock").exists()
    assert list((root / "models" / "_work" / "sdst").glob("*/seed_1/last.pt"))  # outside the DVC output

    t0 = time.perf_counter()
    resumed = _run(["dvc", "repro"], root)
    t_resumed = time.perf_counter() - t0
    found = re.findall(r"\[train\] resuming \S+/(seed_\d)/last\.pt after epoch (\d+)", resumed)
    assert ("seed_0", str(EPOCHS)) in found, resumed[-3000:]  # a finished seed is restored, not retrained
    epochs_rerun = len(re.findall(r"^\[train\] epoch \d+/", resumed, re.M))
    assert epochs_rerun < 2 * EPOCHS, resumed[-3000:]
    assert not (root / "models" / "_work").exists()  # cleaned up after success
    got, got_hash = _tree(root / "models" / "sdst"), _out_hash(root)

    t0 = time.perf_counter()
    clean = _run(["dvc", "repro", "--force"], root)
    t_clean = time.perf_counter() - t0
    assert "resuming" not in clean
    want = _tree(root / "models" / "sdst")
    assert sorted(got) == sorted(want) and "seed_1/model.pt" in want
    assert [k for k in want if got[k] != want[k]] == []
    assert got_hash == _out_hash(root)
    print(f"\nkilled run {t_killed:.1f} s, resumed rerun {t_resumed:.1f} s ({epochs_rerun} of {2 * EPOCHS} epochs), "
          f"uninterrupted run {t_clean:.1f} s")
