"""The DVC pipeline end to end on the smoke profile, in a temporary git repository.

One module-scoped repository is reproduced once; the tests then check, in file order: a clean status,
a no-op second repro, that changing one ``synth.*`` key reruns synthesis and only what depends on the
changed data, that ``dvc exp run -S sdst.K=…`` runs only SDST stages and the report, that
``dvc metrics diff`` shows the change, and that ``dvc push``/``dvc pull`` through a local directory remote
round-trips the cache into a fresh clone.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT

pytestmark = pytest.mark.slow

RUNNING = re.compile(r"^Running stage '([^']+)':", re.M)
SKIPPED = re.compile(r"^Stage '([^']+)' didn't change, skipping", re.M)
RESTORED = re.compile(r"^Stage '([^']+)' is cached - skipping run", re.M)

ENV = {
    **os.environ,
    "DVC_NO_ANALYTICS": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "OMP_NUM_THREADS": "1",
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command, echoing its output into the test log; fail with its output on a non-zero exit."""
    proc = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True)
    sys.stdout.write(f"$ {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}\n")
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def stages(output: str) -> tuple[set[str], set[str], set[str]]:
    """(ran, skipped, restored-from-run-cache) stage names parsed from ``dvc repro``/``exp run`` stdout."""
    return set(RUNNING.findall(output)), set(SKIPPED.findall(output)), set(RESTORED.findall(output))


def project_files() -> list[str]:
    """Tracked and untracked-but-not-ignored files of the project, minus generated outputs."""
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    # data/ holds only DVC outputs (git-ignored) and user-edited inputs such as querygen review files; reports/ holds
    # stage outputs except reports/rehearsal (benchmark results committed by hand, an input of the report stage)
    generated = [f for f in out if f.startswith("reports/") and not f.startswith("reports/rehearsal/")]
    return [f for f in out if f and f not in generated and f != "dvc.lock"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A fresh git+DVC repository holding the project with the smoke profile applied, reproduced once."""
    root = tmp_path_factory.mktemp("pipeline") / "proj"
    for rel in project_files():
        src = REPO_ROOT / rel
        if src.is_file():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / rel)
    run(["git", "init", "-q", "-b", "main"], root)
    run([sys.executable, "-m", "pipeline.profiles", "smoke"], root)
    remote = root.parent / "remote"
    run(["dvc", "remote", "add", "-d", "local", str(remote)], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "smoke project"], root)
    proc = run(["dvc", "repro"], root)
    ran, _, _ = stages(proc.stdout)
    root.joinpath(".first_run.json").write_text(json.dumps(sorted(ran)))
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "first repro"], root)
    return root


def stage_names(root: Path) -> set[str]:
    return set(run(["dvc", "stage", "list", "--name-only"], root).stdout.split())


def test_first_repro_runs_every_stage_and_leaves_a_clean_status(repo):
    ran = set(json.loads((repo / ".first_run.json").read_text()))
    assert ran == stage_names(repo)
    assert run(["dvc", "status", "-q"], repo, check=False).returncode == 0
    assert json.loads(run(["dvc", "status", "--json"], repo).stdout) == {}
    assert (repo / "reports" / "report.md").exists()


def test_second_repro_runs_nothing(repo):
    ran, skipped, restored = stages(run(["dvc", "repro"], repo).stdout)
    assert ran == set() and restored == set()
    assert skipped == stage_names(repo)


def test_changing_one_synth_key_reruns_only_what_depends_on_it(repo):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["synth"]["qvh"]["seed_offset"] += 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    ran, skipped, _ = stages(run(["dvc", "repro"], repo).stdout)
    assert {"synth", "ingest@synth_qvh"} <= ran
    # every dataset's videos live under data/raw/<dataset>: nothing that reads only the TAL set reruns
    untouched = {s for s in stage_names(repo) if "synth_tal" in s or s.startswith("sada")}
    assert untouched and not (ran & untouched), f"stages not depending on the QVH data re-ran: {ran & untouched}"
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "synth change"], repo)


def test_exp_run_changing_sdst_K_runs_only_sdst_stages_and_the_report(repo):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    new_k = params["sdst"]["K"] - 1
    proc = run(["dvc", "exp", "run", "-S", f"sdst.K={new_k}"], repo)
    ran, _, restored = stages(proc.stdout)
    assert ran, "the experiment ran nothing"
    assert all(s.startswith("sdst") or s in ("claims", "report") for s in ran | restored), ran
    assert any(s.startswith("sdst_train@") for s in ran)
    # variants that set their own K (sdst.fixed_k_variants: w/o tuning) do not read sdst.K: they never rerun
    assert not any("_fixed_k" in s for s in ran), ran
    diff = json.loads(run(["dvc", "params", "diff", "--json"], repo).stdout)
    assert diff["params.yaml"]["sdst.K"]["new"] == new_k
    metrics = json.loads(run(["dvc", "metrics", "diff", "--json", "--all"], repo).stdout)
    assert any("sdst" in path for path in metrics), metrics


def test_push_then_pull_into_a_fresh_clone_restores_the_outputs(repo):
    run(["git", "checkout", "--", "."], repo)
    run(["dvc", "checkout", "-q"], repo, check=False)
    run(["dvc", "push", "-q"], repo)
    clone = repo.parent / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], repo.parent)
    run(["dvc", "pull", "-q"], clone)
    assert run(["dvc", "status", "-q"], clone, check=False).returncode == 0
    out = run(["dvc", "repro", "--pull"], clone).stdout
    ran, _, _ = stages(out)
    assert ran == set(), f"a clone with the pulled cache recomputed {ran}"
