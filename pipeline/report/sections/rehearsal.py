"""Report tables of the real-scale rehearsal (issue 17): ``reports/rehearsal/<method>.json`` and ``gpu_check.json``.

The method files are written by ``python benchmarks/rehearsal.py`` (not a DVC stage: run by hand, committed):
training at the thesis' per-item dims on this CPU (step vs loader throughput, peak RSS, projected hours of one
thesis training run), predict + evaluate at the validation split's real size, and the feature containers' open
and read costs. ``gpu_check.json`` is written by ``python benchmarks/gpu_check.py --out ...`` on a GPU box (or
its CPU dry run). Every cell is a file's value; keys a file lacks (an older rehearsal) show as an em dash.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.report.sections.tables import load_metrics, markdown_table

INTRO = ("Measured by `python benchmarks/rehearsal.py` (not part of `dvc repro`): each method's real model, dataset "
         "and evaluator on generated features of the thesis' per-item dims, on the machine that ran it. "
         "Projected hours = thesis epochs × thesis train items / step samples/s.")


def _method_files(rdir: Path) -> list[dict]:
    out = []
    for path in sorted(rdir.glob("*.json")):
        m = load_metrics(path)
        if isinstance(m, dict) and "step_samples_per_s" in m:
            out.append(m)
    return out


def _train(ms: list[dict], digits: int) -> str:
    rows = [[m.get("method"), m.get("dataset"), f"{m.get('device', '—')} {m.get('precision', '')}".strip(),
             m.get("batch_size"), m.get("step_samples_per_s"), m.get("step_it_per_s"), m.get("loader_samples_per_s"),
             m.get("loader_over_step"), m.get("dataset_item_ms"), m.get("peak_memory_gb"),
             f"{m.get('thesis_epochs', '—')} × {m.get('thesis_train_items', '—')}", m.get("projected_hours")]
            for m in ms]
    return "### Training at real dims\n\n" + markdown_table(
        ["method", "shapes", "device", "batch", "step samples/s", "step it/s", "loader samples/s", "loader / step",
         "item read (ms)", "peak RSS (GB)", "thesis epochs × items", "projected h"], rows, digits)


def _predict(ms: list[dict], digits: int) -> str:
    rows = [[m.get("method"), m.get("val_items"), m.get("predict_items"), m.get("predict_samples_per_s"),
             m.get("val_load_s"), m.get("predict_projected_full_s"), m.get("evaluate_s"),
             m.get("peak_memory_with_predict_gb")] for m in ms if "predict_samples_per_s" in m]
    if not rows:
        return ""
    return "### Predict and evaluate at validation size\n\n" + markdown_table(
        ["method", "val items", "predicted", "predict samples/s", "load (s)", "predict, full split (s)",
         "evaluate (s)", "peak RSS (GB)"], rows, digits)


def _containers(ms: list[dict], digits: int) -> str:
    rows = []
    for m in ms:
        scale = m.get("index_scale_open") or {}
        for name, c in (m.get("containers") or {}).items():
            rows.append([m.get("method"), name, c.get("items"), c.get("array_bytes", 0) / 2**20,
                         1e3 * c["open_s"] if "open_s" in c else None, c.get("random_read_raw_ms"),
                         c.get("random_read_ms"), 1e3 * scale["open_s"] if "open_s" in scale else None])
    if not rows:
        return ""
    return "### Feature containers\n\n" + markdown_table(
        ["method", "container", "items", "array (MiB)", "open (ms)", "random read, raw (ms)",
         "random read, float32 (ms)", "10,000-item index open (ms)"], rows, digits)


def _gpu(rdir: Path, digits: int) -> str:
    path = rdir / "gpu_check.json"
    if not path.exists():
        return ""
    g = load_metrics(path)
    rows = [[r.get("component"), r.get("precision"), r.get("batch"), r.get("it_per_s"), r.get("samples_per_s"),
             r.get("peak_memory_gb")] for r in g.get("rows", [])]
    head = (f"### GPU check\n\n`python benchmarks/gpu_check.py` on {g.get('device_name', '—')} "
            f"(torch {g.get('torch', '—')}{', DRY RUN at tiny dims' if g.get('dry_run') else ''}); "
            f"{g.get('reference', '')}.")
    return head + "\n\n" + markdown_table(["component", "precision", "batch", "it/s", "samples/s", "peak (GB)"],
                                          rows, digits)


def render(reports_dir: Path, digits: int = 2) -> str:
    """The rehearsal tables, or "" when ``reports_dir/rehearsal`` holds none of its files."""
    rdir = Path(reports_dir) / "rehearsal"
    if not rdir.is_dir():
        return ""
    ms = _method_files(rdir)
    parts = [_train(ms, digits), _predict(ms, digits), _containers(ms, digits)] if ms else []
    gpu = _gpu(rdir, digits)
    if not ms and not gpu:
        return ""
    notes = sorted({n for m in ms for n in m.get("notes", []) if "ASSUMED" in n or "upper bound" in n})
    return "\n\n".join(p for p in (INTRO, *parts, gpu, *(f"Note: {n}." for n in notes)) if p)
