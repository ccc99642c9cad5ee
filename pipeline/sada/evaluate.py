"""Stage ``sada_evaluate@<scenario>-<variant>``: predict, then TAL mAP of every seed on the target (and source)
domain, mean ± std over seeds, per-class AP, anchor-alignment statistics, training curves and the t-SNE data.

Like every method's evaluate stage it first predicts with each seed's model (:mod:`pipeline.sada.predict`, into
``--predictions``: per-seed rows, ground truth, anchors), then scores. Writes:

* ``--metrics`` JSON (``reports/metrics/sada/<scenario>/<variant>.json``): for ``target`` and ``source``,
  ``mAP`` per tIoU (mean over seeds, ×100), ``mAP_std``, ``avg`` / ``avg_std`` (mean of the five tIoUs),
  ``per_seed_avg``, ``per_class`` (AP averaged over tIoUs, mean over seeds); ``target_bkg_masked`` (same
  keys, when ``sada.eval.mask_bkg``: target predictions with background anchors masked, Tab. 2.8); ``alignment``: domain mixing
  of the first seed's level-``tsne_level`` anchors per class, over all action anchors and for background
  (:func:`knn_cross_domain`: 1 = as mixed as chance, 0 = separated);
* ``--plots`` directory: ``curves.json`` (per-epoch training losses of every seed) and ``tsne.json``: for the
  variants in ``sada.eval.tsne_variants`` the 2-D t-SNE of source vs target anchors of the most frequent
  classes and of background, one embedding per panel (thesis Fig. 2.11); no panels for the other variants.

Reads params ``runtime``, ``datasets.scenarios.<scenario>``, ``sada.dataset``, ``sada.data.layer``,
``sada.inference``, ``sada.eval``, ``sada.scenario_specs.<scenario>``; the rest comes from the train output.
"""
from __future__ import annotations

import argparse
import csv
import sys
import warnings
from pathlib import Path

import numpy as np

from pipeline.core.cli import stage_main
from pipeline.core.io import InputError, read_json, read_jsonl, write_json
from pipeline.core.params import RuntimeConfig, load_block, load_params, spec_entry
from pipeline.core.runtime import apply_runtime
from pipeline.datasets.params import DatasetsConfig
from pipeline.sada.data import BKG_MASKED, check_scenario_dataset
from pipeline.sada.params import SadaConfig
from pipeline.metrics.tal import load_anet_ground_truth, tal_map

ROLES = ("target", "source")


def _mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std()) if len(arr) > 1 else 0.0


def score_role(predict_dir: Path, role: str, seeds: list[int], infix: str = "") -> dict:
    """mAP (×100) of each seed's predictions for ``role`` (files ``<role>[_<infix>]_seed<k>.jsonl``) and
    their mean ± std."""
    gt = load_anet_ground_truth(read_json(predict_dir / f"gt_{role}.json"), label_field="label",
                                src=str(predict_dir / f"gt_{role}.json"))
    if not gt:
        return {}
    results = {}
    with warnings.catch_warnings():  # predictions of classes absent from this split's GT are expected
        warnings.simplefilter("ignore")
        for seed in seeds:
            path = predict_dir / f"{role}{'_' + infix if infix else ''}_seed{seed}.jsonl"
            results[seed] = tal_map(gt, read_jsonl(path), ground_truth_name=str(predict_dir / f"gt_{role}.json"),
                                    predictions_name=str(path))
    keys = list(results[seeds[0]]["mAP"])
    out: dict = {"mAP": {}, "mAP_std": {}}
    for k in keys:
        out["mAP"][k], out["mAP_std"][k] = _mean_std([100 * r["mAP"][k] for r in results.values()])
    out["avg"], out["avg_std"] = _mean_std([100 * r["average_mAP"] for r in results.values()])
    out["per_seed_avg"] = {str(s): 100 * r["average_mAP"] for s, r in results.items()}
    classes = sorted({c for r in results.values() for c in r["per_class_AP"]})
    out["per_class"] = {
        c: float(np.mean([100 * np.mean(list(r["per_class_AP"][c].values())) for r in results.values()]))
        for c in classes
    }
    out["num_ground_truth"] = results[seeds[0]]["num_ground_truth"]
    return out


def knn_cross_domain(emb: np.ndarray, domain: np.ndarray, k: int = 10, seed: int = 0) -> float:
    """Domain mixing of a point set, 1 = as mixed as chance, 0 = the domains are separated.

    Both domains are first subsampled (fixed seed) to the same size m, so group size and imbalance do not
    bias the number; then the fraction of each point's ``k`` nearest neighbours (Euclidean, itself excluded)
    from the other domain is divided by its chance value ``m / (2m - 1)``. NaN when a domain has < 3 points.
    """
    idx = [np.flatnonzero(domain == d) for d in (0, 1)]
    m = min(len(i) for i in idx)
    if m < 3:
        return float("nan")
    rng = np.random.default_rng(seed)
    keep = np.concatenate([np.sort(rng.choice(i, size=m, replace=False)) for i in idx])
    emb, domain = emb[keep].astype(np.float64), domain[keep]
    k = min(k, 2 * m - 1)
    sq = (emb**2).sum(1)
    dist = sq[:, None] + sq[None, :] - 2 * emb @ emb.T
    np.fill_diagonal(dist, np.inf)
    nn = np.argpartition(dist, k - 1, axis=1)[:, :k]
    observed = (domain[nn] != domain[:, None]).mean()
    return float(observed / (m / (2 * m - 1)))


def alignment_stats(anchors: dict, class_names: list[str]) -> dict:
    """Cross-domain kNN mixing per class (GT-assigned anchors) and for background."""
    out = {}
    for c in sorted(set(anchors["cls"].tolist())):
        sel = anchors["cls"] == c
        name = "background" if c == 0 else class_names[c - 1]
        out[name] = knn_cross_domain(anchors["emb"][sel], anchors["domain"][sel])
    fg = anchors["cls"] > 0
    out["all_actions"] = knn_cross_domain(anchors["emb"][fg], anchors["domain"][fg])
    return out


def tsne_panels(anchors: dict, class_names: list[str], n_classes: int, seed: int = 0) -> dict:
    """One 2-D t-SNE per panel: the ``n_classes`` classes with most source anchors, then background."""
    from sklearn.manifold import TSNE

    cls, dom = anchors["cls"], anchors["domain"]
    counts = {c: int(((cls == c) & (dom == 0)).sum()) for c in set(cls.tolist()) if c > 0}
    top = sorted(counts, key=lambda c: (-counts[c], c))[:n_classes]
    panels = []
    for c in [*top, 0]:
        sel = np.flatnonzero(cls == c)
        if len(sel) < 5 or len(np.unique(dom[sel])) < 2:
            continue
        perplexity = float(min(30, max(2, (len(sel) - 1) // 3)))
        xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
            anchors["emb"][sel].astype(np.float64))
        panels.append({
            "class": "background" if c == 0 else class_names[c - 1],
            "x": np.round(xy[:, 0], 4).tolist(),
            "y": np.round(xy[:, 1], 4).tolist(),
            "domain": dom[sel].tolist(),
        })
    return {"panels": panels}


def training_curves(train_dir: Path, seeds: list[int]) -> list[dict]:
    """Per-epoch rows ``{seed, epoch, <metric>: value}`` from each seed's dvclive TSV files."""
    rows: dict[tuple[int, int], dict] = {}
    for seed in seeds:
        metrics_dir = train_dir / f"seed_{seed}" / "live" / "plots" / "metrics" / "train"
        for tsv in sorted(metrics_dir.glob("*.tsv")):
            with tsv.open(encoding="utf-8") as fh:
                for rec in csv.DictReader(fh, delimiter="\t"):
                    key = (seed, int(rec["step"]) + 1)
                    rows.setdefault(key, {"seed": seed, "epoch": key[1]})[tsv.stem] = float(rec[tsv.stem])
    return [rows[k] for k in sorted(rows)]


def evaluate_run(predict_dir: Path, train_dir: Path, variant: str, tsne_variants: list[str], tsne_classes: int,
                 metrics_path: Path, plots_dir: Path) -> dict:
    """Score one scenario × variant and write its metrics and plot data; returns the metrics."""
    summary = read_json(train_dir / "summary.json")
    seeds = [int(s) for s in summary["seeds"]]
    if not seeds:
        raise InputError(f"{train_dir / 'summary.json'}: no trained seed")
    metrics: dict = {
        "scenario": summary["scenario"],
        "variant": variant,
        "label": summary["variant"],
        "align": summary["align"],
        # older train outputs predate these keys: they were TriDet with learnable class embeddings
        "detector": summary.get("detector", "tridet"),
        "class_embed": summary.get("class_embed", "learnable"),
        "seeds": seeds,
    }
    for role in ROLES:
        metrics[role] = score_role(predict_dir, role, seeds)
    if all((predict_dir / f"target_{BKG_MASKED}_seed{s}.jsonl").exists() for s in seeds):
        metrics["target_bkg_masked"] = score_role(predict_dir, "target", seeds, BKG_MASKED)  # Tab. 2.8
    anchors = dict(np.load(predict_dir / "anchors.npz"))
    metrics["alignment"] = alignment_stats(anchors, summary["class_names"])
    metrics["counts"] = {k: summary[k] for k in ("source_videos", "target_videos", "source_moments", "parameters")
                         if k in summary}
    write_json(metrics_path, metrics)
    write_json(plots_dir / "curves.json", training_curves(train_dir, seeds))
    panels = tsne_panels(anchors, summary["class_names"], tsne_classes) if variant in tsne_variants else {"panels": []}
    write_json(plots_dir / "tsne.json", {"scenario": summary["scenario"], "variant": variant,
                                         "label": summary["variant"], **panels})
    return metrics


@stage_main()
def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring); bad params or input → exit code 2."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--canonical", required=True, type=Path)
    parser.add_argument("--features", required=True, type=Path)
    parser.add_argument("--models", required=True, type=Path, help="the sada_train output directory")
    parser.add_argument("--predictions", required=True, type=Path, help="output directory of the predictions")
    parser.add_argument("--metrics", required=True, type=Path)
    parser.add_argument("--plots", required=True, type=Path)
    parser.add_argument("--params", default="params.yaml", type=Path)
    args = parser.parse_args(argv)
    from pipeline.sada.predict import predict_run

    params = load_params(args.params)
    runtime = load_block(RuntimeConfig, args.params, params)
    cfg = load_block(SadaConfig, args.params, params)
    datasets = load_block(DatasetsConfig, args.params, params)
    spec = spec_entry(cfg.scenario_specs, args.scenario, "sada.scenario_specs", "scenario")
    selectors = check_scenario_dataset(args.scenario, datasets.scenarios.get(args.scenario), cfg.dataset)
    apply_runtime(runtime)
    counts = predict_run(selectors, spec, args.canonical, args.features, args.models, args.predictions,
                         cfg.data.layer, cfg.inference, cfg.eval.tsne_level, cfg.eval.tsne_points, runtime.device,
                         cfg.eval.mask_bkg)
    print(f"sada_evaluate: {args.scenario}: predicted {counts} → {args.predictions}")
    metrics = evaluate_run(args.predictions, args.models, args.variant, list(cfg.eval.tsne_variants),
                           cfg.eval.tsne_classes, args.metrics, args.plots)
    tgt = metrics["target"]
    print(f"sada_evaluate: {metrics['scenario']}/{args.variant}: target avg mAP {tgt['avg']:.2f} ± {tgt['avg_std']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
