"""Stage ``claims``: test the thesis' three claims (issue 11 item 5) on the methods' metrics files.

Reads the metrics the evaluate stages wrote and writes one file per claim, ``<out>/{sada,search_vmr,sdst}.json``:

* **sada** — SADA > source-only on the target domain, for every scenario in ``claims.sada.scenarios``
  (DANN, ``claims.sada.beside``, shown beside them, never compared); metric: target Avg mAP
  (``reports/metrics/sada/<scenario>/<variant>.json``, key ``target.avg``).
* **search_vmr** — −SA+QD > base on the multi-moment split: ``claims.search_vmr.metrics`` (R_m, mAP_m) at
  tIoU ``claims.search_vmr.iou`` for every level in ``claims.search_vmr.levels``
  (``reports/metrics/search_vmr/<benchmark>/<variant>.json``, keys ``<level>.<queryset>.<part>.<metric>.<iou>``),
  with the active-decoder-query statistic of both arms (``….active.active_mean``) and whether base collapses.
* **sdst** — SDST > w/o tuning on ``claims.sdst.metrics`` (MR-mAP, HD-mAP) for every dataset in
  ``claims.sdst.datasets`` (``reports/metrics/sdst/<dataset>/<variant>.json``, keys ``metrics.<name>``).

File layout::

    {"claim": "...", "metric": "<primary metric>", "holds": true|false,
     "arms": {"<where>/<variant>": {"mean": m, "std": s, "seeds": n, "label": ..., "metrics": {<name>: {...}}}},
     "comparisons": [{"where", "metric", "method", "baseline", "margin", "pooled_std", "margin_in_std",
                      "holds", "exceeds_std", "sentence"}],
     "exceeds_std": true|false, "sentence": "...", "rule": "..."}

``arms.<arm>.mean/std/seeds`` are those of the claim's primary metric (the first one); ``metrics`` holds every
metric of the claim for that arm.

**The "holds" rule.** A comparison (one place × one metric) holds when the method's mean over seeds is
strictly above the baseline's (margin = mean difference > 0); a comparison whose metric the stage wrote as
null (NaN, e.g. an empty split) is "not testable" and does not hold. A claim holds when every one of its
comparisons holds. Beside it, ``exceeds_std`` says whether every margin is also larger than the pooled
standard deviation over seeds, ``sqrt((std_method² + std_baseline²) / 2)``, and ``margin_in_std`` gives the
ratio (null with a single seed, where there is no spread to compare with).

**Reading mean ± std from any layout.** The mean is the value at the metric's key. The std is, in this order:
a ``_std`` twin of one of the key's components (``target.avg_std``, ``mAP_std.0.3``, ``metrics_std.MR-mAP``) or
the same key under a top-level ``std`` tree; else the population std of the per-seed values (a top-level
``per_seed`` tree, a dict keyed by seed or a list, holding the same keys, or a ``per_seed_<leaf>`` twin);
else 0 when the file holds one seed (``seed: k`` or a one-element ``seeds``). Anything missing is an
``InputError`` naming the file and the key.
"""
from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.report.params import ClaimsConfig
from pipeline.core.cli import stage_main
from pipeline.core.params import ConfigError, load_block
from pipeline.core.io import InputError, read_json, write_json

RULE = ("holds = method mean > baseline mean in every comparison; exceeds_std = every margin > the pooled std "
        "sqrt((std_method^2 + std_baseline^2) / 2) over seeds")


# ----------------------------------------------------------------------------- reading mean ± std


@dataclass
class Stat:
    """Mean ± std over seeds of one metric of one arm, with where it came from."""

    mean: float
    std: float
    seeds: int
    per_seed: list[float] = field(default_factory=list)
    file: str = ""
    key: str = ""

    def as_dict(self) -> dict:
        out: dict[str, Any] = {"mean": self.mean, "std": self.std, "seeds": self.seeds}
        if self.per_seed:
            out["per_seed"] = self.per_seed
        out["file"], out["key"] = self.file, self.key
        return out


def _dotted(path: Sequence[str]) -> str:
    return ".".join(str(p) for p in path)


def _get(tree: Any, path: Sequence[str]) -> Any:
    """``tree[p0][p1]…`` or None when a step is missing (keys are matched as strings)."""
    node = tree
    for key in path:
        if not isinstance(node, Mapping) or str(key) not in node:
            return None
        node = node[str(key)]
    return node


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def seed_count(data: Mapping) -> int | None:
    """How many seeds a metrics file averages: ``seeds`` (list or count), ``seed`` (one), else ``per_seed``."""
    seeds = data.get("seeds")
    if isinstance(seeds, (list, tuple, Mapping)):
        return len(seeds)
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        return seeds
    if "seed" in data:
        return 1
    per_seed = data.get("per_seed")
    if isinstance(per_seed, (list, tuple, Mapping)):
        return len(per_seed)
    return None


def _per_seed_values(data: Mapping, path: Sequence[str]) -> list[float] | None:
    """The metric's value in each seed's tree, when the file has one per seed."""
    per_seed = data.get("per_seed")
    trees = list(per_seed.values()) if isinstance(per_seed, Mapping) else per_seed
    if isinstance(trees, (list, tuple)) and trees:
        values = [_number(_get(t, path)) for t in trees]
        if all(v is not None for v in values):
            return values
    twin = _get(data, [*path[:-1], f"per_seed_{path[-1]}"])  # SADA: target.per_seed_avg
    if isinstance(twin, Mapping) and twin:
        values = [_number(v) for v in twin.values()]
        if all(v is not None for v in values):
            return values
    return None


def _std_candidates(path: Sequence[str]) -> list[list[str]]:
    """Keys that may hold the std of ``path``: a ``_std`` twin of any component (deepest first), then ``std.<path>``."""
    path = [str(p) for p in path]
    out = [path[:i] + [path[i] + "_std"] + path[i + 1 :] for i in reversed(range(len(path)))]
    return out + [["std", *path]]


def read_stat(data: Mapping, path: Sequence[str], file: str | Path, need_std: bool = True) -> Stat:
    """Mean ± std over seeds of the metric at ``path`` in one metrics file (layouts: module docstring).

    Raises ``InputError`` naming the file and the key when the mean is missing, or when the file averages
    several seeds and no std (nor per-seed values) is found and ``need_std``; without ``need_std`` the std
    is then NaN.
    """
    key = _dotted(path)
    raw = _get(data, path)
    if raw is None and _get(data, path[:-1]) is not None and str(path[-1]) in _get(data, path[:-1]):
        # the stage wrote null (NaN, e.g. an empty split): present but not testable
        return Stat(float("nan"), float("nan"), seed_count(data) or 1, [], str(file), key)
    mean = _number(raw)
    if mean is None:
        raise InputError(f"{file}: missing numeric key {key!r}")
    per_seed = _per_seed_values(data, path)
    n = seed_count(data)
    if n is None:
        n = len(per_seed) if per_seed else 1
    std = None
    for cand in _std_candidates(path):
        std = _number(_get(data, cand))
        if std is not None:
            break
    if std is None and per_seed and len(per_seed) > 1:
        m = sum(per_seed) / len(per_seed)
        std = math.sqrt(sum((v - m) ** 2 for v in per_seed) / len(per_seed))
    if std is None and n == 1:
        std = 0.0
    if std is None:
        if need_std:
            tried = ", ".join(repr(_dotted(c)) for c in _std_candidates(path)[:3])
            raise InputError(f"{file}: {n} seeds but no std for key {key!r} "
                             f"(looked for {tried}, … and per-seed values)")
        std = float("nan")
    return Stat(mean, std, n, per_seed or [], str(file), key)


def load_file(path: Path, hint: str) -> dict:
    """One metrics file; a missing file is an ``InputError`` naming it and the params that asked for it."""
    if not path.is_file():
        raise InputError(f"{path}: metrics file missing ({hint})")
    data = read_json(path)
    if not isinstance(data, Mapping):
        raise InputError(f"{path}: expected a JSON object")
    return dict(data)


def iou_key(tree: Any, iou: float, file: Path, where: str) -> str:
    """The key of ``tree`` (a ``{"0.1": …, "0.3": …}`` block) that spells ``iou``."""
    if isinstance(tree, Mapping):
        for k in tree:
            try:
                if abs(float(k) - iou) < 1e-9:
                    return str(k)
            except ValueError:
                continue
    raise InputError(f"{file}: no tIoU {iou} under {where!r}")


# ----------------------------------------------------------------------------- comparisons and sentences


def _num(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}"


def compare(method: Stat, baseline: Stat, where: str, metric: str, method_label: str, baseline_label: str,
            unit: str) -> dict:
    """One comparison: margin, pooled std, whether it holds / exceeds the std, and its sentence."""
    if not (math.isfinite(method.mean) and math.isfinite(baseline.mean)):
        return {"where": where, "metric": metric, "method": method_label, "baseline": baseline_label,
                "margin": None, "pooled_std": None, "margin_in_std": None, "holds": False, "exceeds_std": False,
                "testable": False,
                "sentence": f"{where} {metric}: not testable: it is null in "
                            f"{method.file if not math.isfinite(method.mean) else baseline.file} "
                            f"(key {method.key}; an empty split?)."}
    margin = method.mean - baseline.mean
    pooled = math.sqrt((method.std**2 + baseline.std**2) / 2)
    ratio = margin / pooled if pooled > 0 and math.isfinite(pooled) else None
    holds = margin > 0
    exceeds = bool(holds and ratio is not None and ratio > 1)
    spread = (f"{_num(ratio, 1)}× the pooled std" if ratio is not None
              else "no std (a single seed)" if method.seeds == 1 and baseline.seeds == 1 else "std unknown")
    sentence = (
        f"{where} {metric}: {'holds' if holds else 'does not hold'}: {method_label} {_num(method.mean)} ± "
        f"{_num(method.std)} vs {baseline_label} {_num(baseline.mean)} ± {_num(baseline.std)} "
        f"({method.seeds} vs {baseline.seeds} seeds): {'+' if margin >= 0 else '−'}{_num(abs(margin))}"
        f"{' ' + unit if unit else ''}, {spread}"
    )
    return {
        "where": where,
        "metric": metric,
        "method": method_label,
        "baseline": baseline_label,
        "margin": margin,
        "pooled_std": pooled,
        "margin_in_std": ratio,
        "holds": holds,
        "exceeds_std": exceeds,
        "testable": True,
        "sentence": sentence + ".",
    }


def summarize(claim: str, metric: str, arms: dict, comparisons: list[dict], extra: Mapping | None = None) -> dict:
    """The claim file: ``holds`` iff every comparison holds; one sentence over all comparisons."""
    if not comparisons:
        raise ConfigError(f"claim {claim!r}: no comparison configured (empty list in the claims block)")
    holds = all(c["holds"] for c in comparisons)
    exceeds = all(c["exceeds_std"] for c in comparisons)
    n_hold = sum(c["holds"] for c in comparisons)
    parts = []
    for c in comparisons:
        if not c["testable"]:
            parts.append(f"{c['where']} {c['metric']} not testable")
            continue
        r = c["margin_in_std"]
        parts.append(f"{c['where']} {c['metric']} {'+' if c['margin'] >= 0 else '−'}{_num(abs(c['margin']))}"
                     + (f" ({_num(r, 1)}× std)" if r is not None else ""))
    verdict = "holds" if holds else "does not hold"
    no_std = any(c["testable"] and c["margin_in_std"] is None for c in comparisons)
    strength = (" and every margin exceeds the pooled std" if exceeds
                else ", with no std to compare the margins with (a single seed)" if holds and no_std
                else " but not every margin exceeds the pooled std" if holds else "")
    sentence = (f"{verdict}: the method wins {n_hold} of {len(comparisons)} comparisons{strength} "
                f"({'; '.join(parts)}).")
    margins = [c["margin"] for c in comparisons if c["testable"]]
    ratios = [c["margin_in_std"] for c in comparisons if c["margin_in_std"] is not None]
    out = {
        "claim": claim,
        "metric": metric,
        "holds": holds,
        "arms": arms,
        "margin": min(margins) if margins else None,  # the weakest comparison decides the claim
        "margin_in_std": min(ratios) if len(ratios) == len(comparisons) else None,
        "exceeds_std": exceeds,
        "comparisons_held": n_hold,
        "comparisons": comparisons,
        "sentence": sentence,
        "rule": RULE,
    }
    out.update(extra or {})
    return out


# ----------------------------------------------------------------------------- the three claims


def _arm(stats: Mapping[str, Stat], label: str, where: str, variant: str, primary: str, **extra: Any) -> dict:
    first = stats[primary]
    return {"mean": first.mean, "std": first.std, "seeds": first.seeds, "label": label, "where": where,
            "variant": variant, "metrics": {k: s.as_dict() for k, s in stats.items()}, **extra}


def _label(data: Mapping, variant: str) -> str:
    label = data.get("label")
    if not label and isinstance(data.get("config"), Mapping):
        label = data["config"].get("label")
    return str(label or variant)


def sada_claim(cfg, metrics_dir: Path) -> dict:
    """SADA > source-only on target Avg mAP in every ``cfg.scenarios`` (``cfg`` = ``claims.sada``)."""
    arms, comparisons = {}, []
    metric = "target Avg mAP"
    for scenario in cfg.scenarios:
        stats: dict[str, Stat] = {}
        for variant in [cfg.method, cfg.baseline, *cfg.beside]:
            path = metrics_dir / "sada" / scenario / f"{variant}.json"
            data = load_file(path, f"claims.sada: scenario {scenario!r}, variant {variant!r}; "
                                   "are they in sada.scenarios / sada.variants?")
            stats[variant] = read_stat(data, ["target", "avg"], path)
            arms[f"{scenario}/{variant}"] = _arm({metric: stats[variant]}, _label(data, variant), scenario,
                                                 variant, metric,
                                                 role="method" if variant == cfg.method
                                                 else "baseline" if variant == cfg.baseline else "beside")
        comparisons.append(compare(stats[cfg.method], stats[cfg.baseline], scenario, metric,
                                   arms[f"{scenario}/{cfg.method}"]["label"],
                                   arms[f"{scenario}/{cfg.baseline}"]["label"], "Avg mAP"))
    claim = (f"SADA ({cfg.method}) > {cfg.baseline} on the target domain in {', '.join(cfg.scenarios)}"
             + (f"; {', '.join(cfg.beside)} shown beside" if cfg.beside else ""))
    return summarize(claim, metric, arms, comparisons)


def search_claim(cfg, metrics_dir: Path) -> dict:
    """−SA+QD > base on the multi-moment split (``cfg`` = ``claims.search_vmr``), with #active of both arms.

    Base "collapses" at a level when its mean number of active decoder queries on the split is below the
    mean number of GT moments per query there (it cannot then cover every moment, thesis §3.4.2).
    """
    arms, comparisons, collapse = {}, [], {}
    primary = f"{cfg.metrics[0]}@{cfg.iou:g}"
    for level in cfg.levels:
        stats: dict[str, dict[str, Stat]] = {}
        labels, actives, moments_per_query = {}, {}, None
        for variant in (cfg.method, cfg.baseline):
            path = metrics_dir / "search_vmr" / cfg.benchmark / f"{variant}.json"
            data = load_file(path, f"claims.search_vmr: benchmark {cfg.benchmark!r}, variant {variant!r}; "
                                   "is it in search_vmr.benchmarks / search_vmr.variants?")
            block_path = [level, cfg.queryset, cfg.part]
            block = _get(data, block_path)
            if not isinstance(block, Mapping):
                raise InputError(f"{path}: missing key {_dotted(block_path)!r} (claims.search_vmr.levels / "
                                 "queryset / part)")
            stats[variant] = {}
            for name in cfg.metrics:
                t = iou_key(block.get(name), cfg.iou, path, _dotted([*block_path, name]))
                stats[variant][f"{name}@{cfg.iou:g}"] = read_stat(data, [*block_path, name, t], path)
            actives[variant] = read_stat(data, [*block_path, "active", "active_mean"], path, need_std=False)
            nq, nm = _number(block.get("num_queries")), _number(block.get("num_moments"))
            if nq and nm is not None:
                moments_per_query = nm / nq
            labels[variant] = _label(data, variant)
            arms[f"{level}/{variant}"] = _arm(stats[variant], labels[variant], level, variant, primary,
                                              role="method" if variant == cfg.method else "baseline",
                                              active=actives[variant].as_dict())
        for name in stats[cfg.method]:
            comparisons.append(compare(stats[cfg.method][name], stats[cfg.baseline][name], level, name,
                                       labels[cfg.method], labels[cfg.baseline], ""))
        base_active = actives[cfg.baseline].mean
        collapse[level] = {
            "base_active_mean": base_active,
            "method_active_mean": actives[cfg.method].mean,
            "moments_per_query": moments_per_query,
            "base_collapses": bool(moments_per_query is not None and base_active < moments_per_query),
        }
    claim = (f"{cfg.method} > {cfg.baseline} on the {cfg.queryset} {cfg.part}-moment split of {cfg.benchmark} "
             f"({', '.join(cfg.levels)}): {', '.join(f'{m}@{cfg.iou:g}' for m in cfg.metrics)}")
    out = summarize(claim, primary, arms, comparisons, {"active_queries": collapse})
    names = (arms[f"{cfg.levels[0]}/{cfg.baseline}"]["label"], arms[f"{cfg.levels[0]}/{cfg.method}"]["label"])
    said = "; ".join(f"{lvl}: {names[0]} {_num(c['base_active_mean'], 1)} vs {names[1]} "
                     f"{_num(c['method_active_mean'], 1)} active queries for "
                     f"{_num(c['moments_per_query'] or float('nan'), 1)} moments/query"
                     f"{' (base collapses)' if c['base_collapses'] else ''}" for lvl, c in collapse.items())
    out["sentence"] += f" Active decoder queries: {said}."
    return out


def sdst_claim(cfg, metrics_dir: Path) -> dict:
    """SDST > w/o tuning on every ``cfg.metrics`` for every ``cfg.datasets`` (``cfg`` = ``claims.sdst``)."""
    arms, comparisons = {}, []
    primary = cfg.metrics[0]
    for dataset in cfg.datasets:
        stats: dict[str, dict[str, Stat]] = {}
        labels = {}
        for variant in (cfg.method, cfg.baseline):
            path = metrics_dir / "sdst" / dataset / f"{variant}.json"
            data = load_file(path, f"claims.sdst: dataset {dataset!r}, variant {variant!r}; "
                                   "are they in sdst.datasets / sdst.variants (or sdst.fixed_k_variants)?")
            stats[variant] = {name: read_stat(data, ["metrics", name], path) for name in cfg.metrics}
            labels[variant] = _label(data, variant)
            arms[f"{dataset}/{variant}"] = _arm(stats[variant], labels[variant], dataset, variant, primary,
                                                role="method" if variant == cfg.method else "baseline")
        for name in cfg.metrics:
            comparisons.append(compare(stats[cfg.method][name], stats[cfg.baseline][name], dataset, name,
                                       labels[cfg.method], labels[cfg.baseline], ""))
    claim = f"{cfg.method} > {cfg.baseline} on {', '.join(cfg.metrics)} ({', '.join(cfg.datasets)})"
    return summarize(claim, primary, arms, comparisons)


CLAIMS = {"sada": sada_claim, "search_vmr": search_claim, "sdst": sdst_claim}


def run(cfg: ClaimsConfig, metrics_dir: Path, out_dir: Path) -> dict[str, dict]:
    """Evaluate the three claims and write ``<out_dir>/<claim>.json``; returns them."""
    results = {}
    for name, fn in CLAIMS.items():
        results[name] = fn(getattr(cfg, name), metrics_dir)
    for name, result in results.items():  # write only once all three were read: no half-updated set
        write_json(out_dir / f"{name}.json", result)
    return results


@stage_main()
def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring); bad params or input → exit code 2."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metrics", default="reports/metrics", type=Path, help="the metrics root the stages wrote")
    parser.add_argument("--out", default="reports/metrics/claims", type=Path)
    parser.add_argument("--params", default="params.yaml", type=Path)
    args = parser.parse_args(argv)
    cfg = load_block(ClaimsConfig, args.params)
    results = run(cfg, args.metrics, args.out)
    for name, r in results.items():
        print(f"claims: {name}: {r['sentence']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
