"""Stage ``search_evaluate@<benchmark>-<variant>``: predict, then search-VMR metrics and active-query statistics.

Like every method's evaluate stage it first predicts with each seed's model(s) (:mod:`pipeline.search_vmr.predict`,
into ``--predictions``), then scores those predictions.

Protocol (thesis §3.4.1): for each search level, the eval-split search queries and the caption queries of the
same moments are partitioned into ``single`` and ``multi`` by the level's ``splits.json``. Before any number
is computed the partition is checked moment by moment: the caption ``single`` part holds exactly the moments of
the search ``single`` part (likewise ``multi``), every moment once, and search ``single`` queries have one
moment while ``multi`` queries have more. A violation is an error naming the file and the query.

Metrics (``pipeline.metrics``): R_m, mAP_m and standard mAP at the benchmark's IoU thresholds, for
``caption``/``search`` × ``all``/``single``/``multi``, plus ``original`` (all caption queries of the eval split);
and the active-decoder-query statistics (``#active``, ``%match P``, ``%match GT``, thesis §3.4.2 / Tab 3.5)
from the raw per-slot predictions under ``search_vmr.active_rule`` (:mod:`pipeline.search_vmr.active`), with
the mean #active per moment count (Fig. 3.7) and the per-slot-index usage (``slots.slots_used``, ``slot_share``).

Every seed's predictions (``<predictions>/seed_<k>/``, seeds listed in ``meta.json``) are scored alone; the
metrics file keeps the single-run layout with every number replaced by its **mean over seeds**, and adds:

* ``"seeds"``: the seeds, in order;
* ``"<name>_std"`` beside every block of numbers ``"<name>"`` (``R_m``, ``mAP_m``, ``mAP``, ``R1``, ``active``):
  the population std over seeds of each entry, same keys (e.g. ``S2.search.multi.R_m_std["0.3"]``,
  ``S2.search.multi.active_std.active_mean``; note ``active.active_std`` stays the std over *queries*);
* ``"per_seed"``: ``{"<seed>": <the full single-seed metrics>}``.

Writes ``--out`` (metrics JSON) and ``--plots`` (JSON rows for the active-queries-vs-moments plot, mean over
seeds with ``active_mean_std``).

Usage::

    python -m pipeline.search_vmr.evaluate --benchmark synth_captions --variant base \
        --models data/search_vmr/synth_captions/base/model \
        --predictions data/search_vmr/synth_captions/base/predictions \
        --out reports/metrics/search_vmr/synth_captions/base.json \
        --plots reports/plots/search_vmr/synth_captions/base.json
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from models.common import temporal_iou_np
from pipeline.search_vmr.params import SearchVMRConfig
from pipeline.core.cli import stage_main
from pipeline.core.params import RuntimeConfig, load_block, spec_entry
from pipeline.datasets.schema import VideoRecord, read_records
from pipeline.core.io import InputError, read_json, read_jsonl, write_json
from pipeline.search_vmr.active import active_windows, slot_usage

QUERYSETS = ("caption", "search")
PARTS = ("single", "multi")


@dataclass(frozen=True)
class GTQuery:
    """One ground-truth query: its windows (seconds) and the ids of the moments they are."""

    qid: str
    vid: str
    windows: list[tuple[float, float]]
    moment_ids: list[str]


def gt_queries(records: Sequence[VideoRecord], split: str) -> dict[str, GTQuery]:
    """Ground-truth queries of one split, keyed by qid (moments grouped by ``query_id``)."""
    out: dict[str, GTQuery] = {}
    for rec in records:
        if rec.split != split:
            continue
        for m in rec.moments:
            if m.query_id is None:
                continue
            q = out.setdefault(m.query_id, GTQuery(m.query_id, rec.video_id, [], []))
            if q.vid != rec.video_id:
                raise InputError(f"query {m.query_id}: moments in two videos ({q.vid}, {rec.video_id})")
            q.windows.append((float(m.start), float(m.end)))
            q.moment_ids.append(m.moment_id)
    return out


def level_protocol(search: Mapping[str, GTQuery], caption: Mapping[str, GTQuery], splits: Mapping, where: str) -> dict:
    """``{queryset: {part: [GTQuery]}}`` for one level, after checking the partition is aligned.

    ``splits`` is the level's ``splits.json``; its qids outside the eval split (e.g. training queries) are
    ignored, but every eval-split query must be in exactly one part.
    """
    gts = {"caption": caption, "search": search}
    result: dict[str, dict[str, list[GTQuery]]] = {}
    for qs in QUERYSETS:
        if qs not in splits or any(p not in splits[qs] for p in PARTS):
            raise InputError(f"{where}: needs {qs}.single and {qs}.multi")
        result[qs] = {}
        seen: set[str] = set()
        for part in PARTS:
            ids = [q for q in splits[qs][part] if q in gts[qs]]
            dup = seen.intersection(ids)
            if dup:
                raise InputError(f"{where}: {qs} query {sorted(dup)[0]} is in both single and multi")
            seen.update(ids)
            result[qs][part] = [gts[qs][q] for q in ids]
        missing = sorted(set(gts[qs]) - seen)
        if missing:
            raise InputError(f"{where}: {qs} query {missing[0]} (and {len(missing) - 1} more) in no part")
    for part in PARTS:
        for q in result["search"][part]:
            if (len(q.moment_ids) > 1) != (part == "multi"):
                raise InputError(f"{where}: search query {q.qid} has {len(q.moment_ids)} moment(s) but is in {part!r}")
        moments = {}
        for qs in QUERYSETS:
            ids = [m for q in result[qs][part] for m in q.moment_ids]
            if len(ids) != len(set(ids)):
                raise InputError(f"{where}: a moment appears twice among the {qs} {part} queries")
            moments[qs] = set(ids)
        if moments["caption"] != moments["search"]:
            diff = sorted(moments["caption"] ^ moments["search"])
            raise InputError(f"{where}: caption and search {part} parts differ on moment {diff[0]} "
                             f"({len(diff)} moment(s) in one part only)")
    return result


def read_predictions(path: Path, qids: Sequence[str]) -> dict[str, dict]:
    """Prediction rows keyed by qid; every qid in ``qids`` must have one."""
    rows = {str(r["qid"]): r for r in read_jsonl(path)}
    missing = [q for q in qids if q not in rows]
    if missing:
        raise InputError(f"{path}: no prediction for query {missing[0]} ({len(missing)} missing)")
    return rows


# ----------------------------------------------------------------------------- metrics


def _gt_rows(queries: Sequence[GTQuery]) -> list[dict]:
    return [{"qid": q.qid, "relevant_windows": [list(w) for w in q.windows]} for q in queries]


def _raw_rows(queries: Sequence[GTQuery], preds: Mapping[str, dict], rule: str, threshold: float) -> list[dict]:
    """Per-slot rows (before NMS) with the score the active rule compares (:mod:`pipeline.search_vmr.active`)."""
    return [{"qid": q.qid, "pred_relevant_windows": active_windows(preds[q.qid]["pred_query_windows"], rule,
                                                                    threshold)} for q in queries]


def score_queries(queries: Sequence[GTQuery], preds: Mapping[str, dict], ious: Sequence[float],
                  active_threshold: float, splits: Mapping[str, Sequence[str]] | None = None,
                  max_windows: int = 10, active_rule: str = "relative") -> dict:
    """``pipeline.metrics.search_eval`` blocks (``all`` + each split) for ``queries``.

    Ranking metrics use the post-processed ``pred_relevant_windows``; the ``active`` statistics use the raw
    per-slot ``pred_query_windows`` (one window per decoder query, before NMS), as thesis §3.4.2 counts
    decoder queries, not surviving windows, under ``active_rule`` (:mod:`pipeline.search_vmr.active`); each
    block also gets ``slots`` = ``{"slots_used"}`` and ``slot_share`` (index collapse).
    """
    from pipeline.metrics import search_eval

    gt = _gt_rows(queries)
    ranked = [{"qid": q.qid, "pred_relevant_windows": preds[q.qid]["pred_relevant_windows"]} for q in queries]
    raw = _raw_rows(queries, preds, active_rule, active_threshold)
    res = search_eval(gt, ranked, ious, splits=splits, max_windows=max_windows)
    act = search_eval(gt, raw, ious[:1], splits=splits, active_threshold=active_threshold, max_windows=None)
    parts = {"all": [q.qid for q in queries], **{k: list(v) for k, v in (splits or {}).items()}}
    for name, block in res.items():
        block["active"] = {**act[name]["active"], "relative": int(active_rule == "relative")}
        usage = slot_usage(parts[name], preds, active_rule, active_threshold)
        block["slots"] = {"slots_used": usage["slots_used"]}
        block["slot_share"] = usage["slot_share"]
    res["all"]["slot_quality"] = slot_quality(queries, preds)
    return res


def slot_quality(queries: Sequence[GTQuery], preds: Mapping[str, dict], iou: float = 0.1) -> dict:
    """Thesis Fig. 3.10: per decoder-query index, the share of eval queries on which its raw window reaches
    temporal IoU ≥ ``iou`` with some GT window (``match_ratio``) and its mean foreground score
    (``confidence``); if confidence tracked regression quality badly, calibration could fix the collapse."""
    hits: list[list[float]] = []
    conf: list[list[float]] = []
    for q in queries:
        raw = np.asarray(preds[q.qid]["pred_query_windows"], dtype=np.float64).reshape(-1, 3)
        gt = np.asarray(q.windows, dtype=np.float64).reshape(-1, 2)
        best = temporal_iou_np(raw[:, :2], gt).max(1) if len(gt) else np.zeros(len(raw))
        hits.append(list(best >= iou))
        conf.append(list(raw[:, 2]))
    n = max((len(h) for h in hits), default=0)
    ratio, score = np.zeros(n), np.zeros(n)
    count = np.zeros(n)
    for h, c in zip(hits, conf):
        ratio[: len(h)] += h
        score[: len(c)] += c
        count[: len(h)] += 1
    count = np.maximum(count, 1)
    return {"match_ratio": [round(float(x), 4) for x in ratio / count],
            "confidence": [round(float(x), 4) for x in score / count]}


def active_by_moments(queries: Sequence[GTQuery], preds: Mapping[str, dict], threshold: float,
                      rule: str = "relative") -> list[dict]:
    """Fig. 3.7 rows: mean/std #active decoder queries of the queries with n moments, for each n."""
    from pipeline.metrics import search_eval

    groups: dict[int, list[str]] = {}
    for q in queries:
        groups.setdefault(len(q.windows), []).append(q.qid)
    raw = _raw_rows(queries, preds, rule, threshold)
    res = search_eval(_gt_rows(queries), raw, [0.1], splits={f"m{n}": ids for n, ids in groups.items()},
                      active_threshold=threshold, max_windows=None)
    return [{"moments": n, "queries": len(groups[n]), "active_mean": res[f"m{n}"]["active"]["active_mean"],
             "active_std": res[f"m{n}"]["active"]["active_std"]} for n in sorted(groups)]


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _mean(values: list) -> float | int:
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values) and len(set(values)) == 1:
        return values[0]  # counts (num_queries, ...) are the same for every seed: keep them integers
    return float(np.mean(values))


def mean_over_seeds(trees: list[dict]) -> dict:
    """Mean of same-shaped metrics trees; every dict of numbers ``k`` gets a sibling ``k_std`` (population std
    over seeds, same keys). Non-numeric leaves are taken from the first tree."""
    out: dict = {}
    for key, first in trees[0].items():
        values = [t[key] for t in trees]
        if isinstance(first, dict):
            if first and all(_is_number(v) for v in first.values()):
                out[key] = {k: _mean([v[k] for v in values]) for k in first}
                out[f"{key}_std"] = {k: float(np.std([v[k] for v in values])) for k in first}
            else:
                out[key] = mean_over_seeds(values)
        elif _is_number(first):
            out[key] = _mean(values)
        elif isinstance(first, list) and first and all(_is_number(v) for v in first) \
                and all(isinstance(v, list) and len(v) == len(first) for v in values):
            out[key] = [float(np.mean(col)) for col in zip(*values)]  # e.g. slot_share: per slot, mean over seeds
        else:
            out[key] = first
    return out


def plots_over_seeds(per_seed: list[list[dict]]) -> list[dict]:
    """Fig. 3.7 rows averaged over seeds per (variant, level, moments), with ``active_mean_std`` over seeds."""
    groups: dict[tuple, list[dict]] = {}
    for rows in per_seed:
        for r in rows:
            groups.setdefault((r["variant"], r["level"], r["moments"]), []).append(r)
    out = []
    for (variant, level, n), rows in groups.items():
        vals = [r["active_mean"] for r in rows]
        out.append({"variant": variant, "level": level, "moments": n, "queries": rows[0]["queries"],
                    "active_mean": float(np.mean(vals)), "active_mean_std": float(np.std(vals)),
                    "active_std": float(np.mean([r["active_std"] for r in rows])), "seeds": len(rows)})
    return out


def evaluate(cfg: SearchVMRConfig, benchmark: str, variant: str, canonical_dir: Path, benchmarks_dir: Path,
             pred_dir: Path) -> tuple[dict, list]:
    """Metrics dict and Fig. 3.7 plot rows of one (benchmark, variant), over all seeds; see the module docstring.

    Reads ``<canonical_dir>/<benchmark>.jsonl``, ``<benchmarks_dir>/<benchmark>/<level>/`` and the predict
    stage's ``pred_dir`` (``meta.json`` and ``seed_<k>/{caption,<level>}.jsonl``)."""
    meta = read_json(pred_dir / "meta.json")
    seeds = meta.get("seeds")
    if not seeds:
        raise InputError(f"{pred_dir / 'meta.json'}: lists no 'seeds' (written by an older search_predict: rerun it)")
    per_seed, plots = {}, []
    for seed in seeds:
        per_seed[str(seed)], rows = evaluate_seed(cfg, benchmark, variant, canonical_dir, benchmarks_dir, meta,
                                                  pred_dir / f"seed_{seed}")
        plots.append(rows)
    metrics = {"config": {**meta, "variant": variant}, "seeds": [int(s) for s in seeds],
               **mean_over_seeds(list(per_seed.values())), "per_seed": per_seed}
    return metrics, plots_over_seeds(plots)


def evaluate_seed(cfg: SearchVMRConfig, benchmark: str, variant: str, canonical_dir: Path, benchmarks_dir: Path,
                  meta: Mapping, pred_dir: Path) -> tuple[dict, list]:
    """Metrics (without ``config``) and Fig. 3.7 rows of one seed's predictions (``pred_dir`` =
    ``<predictions>/seed_<k>``; ``meta`` = the run's ``meta.json``)."""
    bench = spec_entry(cfg.benchmark_specs, benchmark, "search_vmr.benchmark_specs", "benchmark")
    ious = list(bench.iou_thresholds)
    oracle = bool(meta["oracle"])
    thr, rule, mw = cfg.active_threshold, cfg.active_rule, int(meta["max_windows"])
    metrics: dict = {}
    plots: list[dict] = []
    caption_preds: dict[str, dict] = {}
    if not oracle:
        path = canonical_dir / f"{benchmark}.jsonl"
        original = list(gt_queries(read_records(path), bench.eval_split).values())
        caption_preds = read_predictions(pred_dir / "caption.jsonl", [q.qid for q in original])
        metrics["original"] = score_queries(original, caption_preds, ious, thr, max_windows=mw,
                                            active_rule=rule)["all"]
    for level in bench.levels:
        ldir = benchmarks_dir / benchmark / level
        search = gt_queries(read_records(ldir / "search.jsonl"), bench.eval_split)
        caption = gt_queries(read_records(ldir / "caption.jsonl"), bench.eval_split)
        proto = level_protocol(search, caption, read_json(ldir / "splits.json"), str(ldir / "splits.json"))
        metrics[level] = {}
        for qs in QUERYSETS:
            if qs == "caption" and oracle:
                continue  # the oracle is trained on this level's search queries: no caption evaluation
            queries = [q for part in PARTS for q in proto[qs][part]]
            qids = [q.qid for q in queries]
            if qs == "caption":
                missing = [q for q in qids if q not in caption_preds]
                if missing:
                    raise InputError(f"{ldir / 'caption.jsonl'}: caption query {missing[0]} is not in the "
                                     f"{bench.eval_split} split of {canonical_dir / (benchmark + '.jsonl')}")
                preds = caption_preds
            else:
                preds = read_predictions(pred_dir / f"{level}.jsonl", qids)
            splits = {part: [q.qid for q in proto[qs][part]] for part in PARTS}
            metrics[level][qs] = score_queries(queries, preds, ious, thr, splits, max_windows=mw,
                                                      active_rule=rule)
            if qs == "search":
                plots += [{"variant": variant, "level": level, **row} for row in active_by_moments(queries, preds, thr, rule)]
    return metrics, plots


@stage_main()
def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring); bad params or input → exit code 2."""
    from pipeline.search_vmr import predict
    from pipeline.search_vmr.train import add_input_arguments, paths_from

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--models", required=True, type=Path, help="the train stage's model directory")
    parser.add_argument("--predictions", required=True, type=Path, help="output directory of the predictions")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--plots", required=True, type=Path)
    add_input_arguments(parser)
    args = parser.parse_args(argv)
    cfg = load_block(SearchVMRConfig, args.params)
    runtime = load_block(RuntimeConfig, args.params)
    predict.run(cfg, runtime, args.benchmark, args.variant, paths_from(args), args.models, args.predictions)
    metrics, plots = evaluate(cfg, args.benchmark, args.variant, args.canonical_dir, args.benchmarks_dir,
                              args.predictions)
    write_json(args.out, metrics)
    write_json(args.plots, plots)
    print(f"[search_evaluate] wrote {args.out} and {args.plots}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
