"""The opening summary's "what the pipeline ran": one line per area, naming what the stages wrote metrics for.

Only names are listed (worlds, datasets, backbones, scenarios, benchmarks, levels, variants and the seeds each
metrics file records), read from the files under ``reports/metrics/``; the numbers are in the chapters below.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.report.sections.sada import variant_rank
from pipeline.report.sections.tables import load_metrics


def _names(items) -> str:
    return ", ".join(f"`{i}`" for i in dict.fromkeys(items))


def _seeded(path: Path, data: dict) -> str:
    """```variant``` with the seeds its metrics file records (``seeds`` list, or one ``seed``)."""
    seeds = data.get("seeds") or (data.get("config") or {}).get("seeds")
    if seeds:
        return f"`{path.stem}` (seeds {', '.join(map(str, seeds))})"
    if data.get("seed") is not None:
        return f"`{path.stem}` (seed {data['seed']})"
    return f"`{path.stem}`"


def _data(m: Path) -> str:
    parts = []
    summary = m / "synth" / "summary.json"
    if summary.is_file():
        worlds = [k[: -len("_videos")] for k in load_metrics(summary) if k.endswith("_videos")]
        parts.append(f"synthetic worlds {_names(worlds)}")
    datasets = [p.stem for p in sorted((m / "dataset_stats").glob("*.json"))] + \
               [p.stem for p in sorted((m / "ingest").glob("*.json"))]
    if datasets:
        parts.append(f"datasets {_names(datasets)}")
    return "; ".join(parts)


def _backbones(m: Path) -> str:
    parts = []
    pre = [load_metrics(p) for p in sorted((m / "pretrain").glob("*.json"))]
    if pre:
        parts.append("pretrained " + ", ".join(f"`{d.get('backbone')}` ({d.get('objective')})" for d in pre))
    feats = [p.stem for p in sorted((m / "features").glob("*.json"))]
    if feats:
        parts.append(f"features extracted for {_names(feats)}")
    probes = [p.stem for p in sorted((m / "probes").glob("*.json"))]
    if probes:
        parts.append(f"linear probes of {_names(probes)}")
    return "; ".join(parts)


def _sada(m: Path) -> str:
    files = sorted((m / "sada").glob("*/*.json"))
    if not files:
        return ""
    scenarios = _names(p.parent.name for p in files)
    first = {}
    for p in files:
        first.setdefault(p.stem, p)
    variants = ", ".join(_seeded(p, load_metrics(p)) for name, p in sorted(first.items(), key=lambda i: variant_rank(i[0])))
    return f"scenarios {scenarios}; variants {variants}"


def _search(m: Path) -> str:
    parts = []
    qg = [load_metrics(p) for p in sorted((m / "querygen").glob("*.json"))]
    if qg:
        parts.append(f"query generation on {_names(d.get('dataset') for d in qg)} at levels "
                     f"{_names(d.get('level') for d in qg)}")
    for bench in sorted(p for p in (m / "search_vmr").glob("*") if p.is_dir()):
        files = sorted(bench.glob("*.json"))
        if files:
            parts.append(f"retrieval on `{bench.name}` with variants "
                         + ", ".join(_seeded(p, load_metrics(p)) for p in files))
    return "; ".join(parts)


def _sdst(m: Path) -> str:
    parts = []
    for ds in sorted(p for p in (m / "sdst").glob("*") if p.is_dir() and p.name != "efficiency"):
        files = sorted(ds.glob("*.json"))
        if files:
            parts.append(f"`{ds.name}` with variants " + ", ".join(_seeded(p, load_metrics(p)) for p in files))
    eff = [p.stem for p in sorted((m / "sdst" / "efficiency").glob("*.json"))]
    if eff:
        parts.append(f"efficiency of {_names(eff)}")
    return "; ".join(parts)


def render(reports_dir: Path) -> str:
    """A bullet list of what ran, by area ("" when no metrics exist)."""
    m = Path(reports_dir) / "metrics"
    lines = [(label, body(m)) for label, body in (
        ("Data", _data), ("Backbones", _backbones), ("SADA (Ch. 2)", _sada),
        ("Search-query VMR (Ch. 3)", _search), ("SDST (Ch. 4)", _sdst))]
    return "\n".join(f"- **{label}**: {text}." for label, text in lines if text)
