"""benchmarks/rehearsal.py at tiny dims: every method runs its real model through its loader and reports."""
import dataclasses
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import rehearsal  # noqa: E402

KEYS = {"step_samples_per_s", "loader_samples_per_s", "peak_memory_gb", "projected_hours", "containers",
        "shapes", "batch_size", "iterations", "notes", "index_scale_open", "loader_over_step"}

TINY = {
    "sdst": dict(videos=4, rows=(8, 12), video_dim=16, text_dim=12, tokens=5),
    "search_vmr": dict(videos=4, rows=(20, 30), video_dim=16, text_dim=12, tokens=5),
    "sada": dict(videos=4, rows=(40, 70), video_dim=16, queries_per_video=3),
}


@pytest.mark.parametrize("method", rehearsal.METHODS)
def test_rehearse_tiny_writes_report(tmp_path, method):
    shapes = dataclasses.replace(rehearsal.SHAPES[method], **TINY[method])
    r = rehearsal.rehearse(method, iters=2, out=tmp_path, shapes=shapes, batch=2, reads=5, scale_items=50)
    on_disk = json.loads((tmp_path / f"{method}.json").read_text())
    assert KEYS <= set(on_disk)
    assert on_disk["step_samples_per_s"] > 0 and on_disk["loader_samples_per_s"] > 0
    assert on_disk["projected_hours"] == pytest.approx(
        r["thesis_epochs"] * r["thesis_train_items"] / r["step_samples_per_s"] / 3600)
    assert on_disk["containers"]["video"]["shape"][1:] == [len(shapes.video_layers), shapes.video_dim]
    assert on_disk["index_scale_open"]["items"] == 50
    assert on_disk["batch_size"] == 2 and on_disk["iterations"] == 2
    assert r["last_loss"] == r["last_loss"]  # finite training loss (not NaN)


def test_unknown_method_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown method"):
        rehearsal.rehearse("nope", iters=2, out=tmp_path)


def test_all_runs_each_method_in_its_own_process_args():
    # peak RSS is per process: --method all re-invokes the script once per method with that method
    argv = ["--method", "all", "--iters", "3"]
    assert rehearsal._replace_method(argv, "sada") == ["--iters", "3", "--method", "sada"]
    assert rehearsal._replace_method(["--method=all"], "sdst") == ["--method", "sdst"]
