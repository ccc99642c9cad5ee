"""The report's rehearsal section renders hand-written rehearsal / gpu_check files and is absent without them."""
import json
from pathlib import Path

from pipeline.report.build import build_report
from pipeline.report.sections import rehearsal

SDST = {
    "method": "sdst", "dataset": "qvhighlights", "device": "cpu", "precision": "fp32", "batch_size": 32,
    "step_samples_per_s": 12.0, "step_it_per_s": 0.375, "loader_samples_per_s": 336.0, "loader_over_step": 28.0,
    "dataset_item_ms": 0.5,
    "peak_memory_gb": 2.25, "thesis_epochs": 60, "thesis_train_items": 7218, "projected_hours": 10.025,
    "val_items": 1550, "predict_items": 1550, "predict_samples_per_s": 40.0, "val_load_s": 0.0,
    "predict_projected_full_s": 38.75, "evaluate_s": 3.5, "peak_memory_with_predict_gb": 3.0,
    "containers": {"video": {"items": 128, "array_bytes": 73728128, "open_s": 0.0009, "random_read_raw_ms": 0.05,
                             "random_read_ms": 0.53}},
    "index_scale_open": {"items": 10000, "open_s": 0.008},
    "notes": ["levels ...", "ASSUMED: a count"],
}
OLD_SADA = {"method": "sada", "step_samples_per_s": 0.05, "loader_samples_per_s": 18.5, "projected_hours": 138.1}
GPU = {"device_name": "NVIDIA H200", "torch": "2.9", "dry_run": False, "reference": "thesis SDST: 4.16 it/s",
       "rows": [{"component": "sdst train", "precision": "bf16", "batch": 32, "it_per_s": 5.5, "samples_per_s": 176.0,
                 "peak_memory_gb": 3.25}]}


def _write(root: Path, name: str, data) -> None:
    (root / "rehearsal").mkdir(parents=True, exist_ok=True)
    (root / "rehearsal" / name).write_text(json.dumps(data), encoding="utf-8")


def test_tables_hold_the_files_values(tmp_path):
    _write(tmp_path, "sdst.json", SDST)
    _write(tmp_path, "sada.json", OLD_SADA)  # an older file without predict / container keys
    _write(tmp_path, "gpu_check.json", GPU)
    text = rehearsal.render(tmp_path, 2)
    assert "| sdst | qvhighlights | cpu fp32 | 32 | 12.00 | 0.38 | 336.00 | 28.00 | 0.50 | 2.25 | 60 × 7218 | 10.03 |" in text
    assert "| sada | — | — | — | 0.05 | — | 18.50 | — | — | — | — × — | 138.10 |" in text
    assert "| sdst | 1550 | 1550 | 40.00 | 0.00 | 38.75 | 3.50 | 3.00 |" in text  # predict table: sdst only
    assert "| sada | 0" not in text
    assert "| sdst | video | 128 | 70.31 | 0.90 | 0.05 | 0.53 | 8.00 |" in text  # bytes → MiB, s → ms
    assert "| sdst train | bf16 | 32 | 5.50 | 176.00 | 3.25 |" in text and "NVIDIA H200" in text
    assert "Note: ASSUMED: a count." in text


def test_absent_without_files_and_hooked_into_the_report(tmp_path):
    assert rehearsal.render(tmp_path) == ""
    (tmp_path / "rehearsal").mkdir()
    assert rehearsal.render(tmp_path) == ""
    assert "## Real-scale rehearsal" not in build_report(tmp_path)
    _write(tmp_path, "sdst.json", SDST)
    report = build_report(tmp_path)
    assert "## Real-scale rehearsal" in report and "### Training at real dims" in report
