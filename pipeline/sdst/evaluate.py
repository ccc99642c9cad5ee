"""Stage ``sdst_evaluate@<dataset>-<variant>``: predict → NMS → QVHighlights MR/HD metrics, per seed.

Like every method's evaluate stage it runs three steps in one stage: each seed's model (``<models>/seed_<k>/
model.pt``, rebuilt from the checkpoint alone) predicts raw windows for the evaluation split, written to
``<predictions>/seed_<k>.jsonl`` for inspection (:mod:`pipeline.sdst.predict`); NMS (``sdst.eval``: kind, σ,
threshold, windows kept) post-processes them; the metrics are computed and averaged over ``sdst.seeds``. Also
reads ``sdst.dataset_specs.<dataset>`` (evaluation split, clip length), ``sdst.predict_batch_size``,
``runtime`` and the checkpoint headers (variant facts: levels, layers, parameter count). Writes a
small metrics JSON (``cache: false``) with the brief QVHighlights numbers (MR R1@0.5/0.7, mAP@0.5/0.75/avg; HD
mAP/HIT@1 at VeryGood when the ground truth has saliency) plus R1@0.3 for grounding datasets and the MR mAP per
GT-length bucket (``MR-mAP-short`` / ``-middle`` / ``-long``, Tab 4.14; absent for an empty bucket), and the
facts the report needs (label, K, layers, trainable params = parameters with ``requires_grad``), and for a
deformable video attention (RDSA / Def. CA) Fig 4.5's per-level, per-head weighted sampling offsets
(``sampling_offsets``: mean over queries and seeds; the raw rows carry each query's as ``weighted_offsets``):

    {"dataset", "variant", "label", "last_layer_only", "model_overrides", "levels", "video_layers", ...,
     "seeds": [0, 1, 2], "metrics": {<name>: mean over seeds}, "metrics_std": {<name>: population std},
     "per_seed": {"0": {"metrics": {...}, "trainable_params": ...}, ...}}

Ground truth comes from the canonical records of the evaluation split (QVHighlights-style rows: windows,
``duration``, saliency clip ids and annotator scores); queries without windows are left out of MR.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.cli import stage_main
from pipeline.core.params import RuntimeConfig, load_block, spec_entry
from pipeline.core.runtime import apply_runtime
from pipeline.sdst.params import SDSTEvalConfig, SDSTParams
from pipeline.datasets.schema import iter_queries, read_records
from pipeline.core.io import write_json


def ground_truth_rows(canonical: Path, split: str, clip_len: float) -> tuple[list[dict], bool]:
    """QVHighlights-format GT rows of ``split`` and whether every query has saliency annotations."""
    rows, all_sal = [], True
    for q in iter_queries(read_records(canonical, split=split)):
        row: dict[str, Any] = {"qid": q.qid, "vid": q.vid, "query": q.text, "duration": q.duration,
                               "relevant_windows": [[float(s), float(e)] for s, e in q.windows]}
        if q.saliency is not None and q.saliency.clip_ids:
            n_clips = int(q.duration / clip_len)
            keep = [i for i, c in enumerate(q.saliency.clip_ids) if c < n_clips]
            row["relevant_clip_ids"] = [q.saliency.clip_ids[i] for i in keep]
            row["saliency_scores"] = [q.saliency.scores[i] for i in keep]
        else:
            all_sal = False
        rows.append(row)
    return rows, all_sal


def postprocess(rows: list[dict], cfg: SDSTEvalConfig) -> list[dict]:
    """Apply (Soft-)NMS to every row's windows and keep the best ``cfg.max_windows``."""
    from models.common import nms_1d, soft_nms_gaussian

    out = []
    for row in rows:
        w = np.asarray(row["pred_relevant_windows"], dtype=np.float64).reshape(-1, 3)
        spans, scores = w[:, :2], w[:, 2]
        if cfg.nms == "soft":
            keep, new_scores = soft_nms_gaussian(spans, scores, cfg.soft_nms_sigma, cfg.min_score, cfg.max_windows)
        elif cfg.nms == "hard":
            keep = nms_1d(spans, scores, cfg.nms_threshold, cfg.max_windows)
            new_scores = scores[keep]
        else:
            keep = np.argsort(-scores, kind="stable")[: cfg.max_windows]
            new_scores = scores[keep]
        windows = [[float(spans[i, 0]), float(spans[i, 1]), float(s)] for i, s in zip(keep, new_scores)]
        out.append({**row, "pred_relevant_windows": windows})
    return out


def evaluate(predictions: list[dict], gt_rows: list[dict], with_saliency: bool, cfg: SDSTEvalConfig) -> dict:
    """Brief metrics dict (percentages) of NMS'd predictions against ``gt_rows``."""
    from pipeline.metrics.qvhighlights import qvhighlights_eval

    with_windows = {r["qid"] for r in gt_rows if r["relevant_windows"]}
    drop = {"weighted_offsets"} | (set() if with_saliency else {"pred_saliency_scores"})  # not the evaluator's keys
    preds = [{k: v for k, v in r.items() if k not in drop} for r in postprocess(predictions, cfg)
             if r["qid"] in with_windows]
    gt = [r for r in gt_rows if r["qid"] in with_windows]
    res = qvhighlights_eval(preds, gt)
    brief = res["brief"]
    out = {"MR-R1@0.3": res["full"]["MR-R1"]["0.3"], "MR-R1@0.5": brief["MR-full-R1@0.5"],
           "MR-R1@0.7": brief["MR-full-R1@0.7"], "MR-mAP@0.5": brief["MR-full-mAP@0.5"],
           "MR-mAP@0.75": brief["MR-full-mAP@0.75"], "MR-mAP": brief["MR-full-mAP"]}
    # Tab 4.14: MR mAP by GT window length (short ≤ 10 s < middle ≤ 30 s < long). A bucket without any GT window
    # is NaN in the evaluator; it is left out (it depends on the GT only, so every seed leaves out the same keys)
    # rather than written as null into a dict of numbers that claims and plots read.
    for bucket in ("short", "middle", "long"):
        value = brief[f"MR-{bucket}-mAP"]
        if value == value:
            out[f"MR-mAP-{bucket}"] = value
    if with_saliency:
        out["HD-mAP"] = brief["HL-min-VeryGood-mAP"]
        out["HD-HIT@1"] = brief["HL-min-VeryGood-Hit1"]
    out["num_queries"] = len(gt)
    return out


def offset_stats(rows: list[dict]) -> dict | None:
    """Fig 4.5 for one seed: per level and head, the mean and std over queries of the weighted sampling offset
    ``Σ_p A·Δ`` (each query's value already averaged over the M decoder queries by the model; ±1 = the
    reference's boundaries). None when the rows carry no offsets (standard CA, R2-Tuning)."""
    values = [r["weighted_offsets"] for r in rows if r.get("weighted_offsets") is not None]
    if not values:
        return None
    arr = np.asarray(values, dtype=np.float64)  # [queries, K, H]
    return {"mean": np.round(arr.mean(0), 5).tolist(), "std": np.round(arr.std(0), 5).tolist(),
            "num_queries": int(arr.shape[0])}


def aggregate_offsets(per_seed: dict[int, dict | None]) -> dict | None:
    """``sampling_offsets`` of the metrics file: the mean over seeds of each seed's per-level, per-head mean,
    the population std of those means over seeds, the mean within-seed std over queries, and every seed's
    statistics (None when no seed has offsets)."""
    stats = {s: v for s, v in per_seed.items() if v is not None}
    if not stats:
        return None
    means = np.asarray([v["mean"] for v in stats.values()])
    return {"levels": int(means.shape[1]), "heads": int(means.shape[2]),
            "mean": np.round(means.mean(0), 5).tolist(), "std_over_seeds": np.round(means.std(0), 5).tolist(),
            "std_over_queries": np.round(np.mean([v["std"] for v in stats.values()], 0), 5).tolist(),
            "per_seed": {str(s): v for s, v in stats.items()}}


def checkpoint_facts(checkpoint: Path) -> dict:
    """Variant facts from a checkpoint: levels, layer ids, switches and trainable params.

    The count is that of the rebuilt model's parameters with ``requires_grad`` (``count_parameters``): the
    state dict also holds buffers (the input statistics) and, with ``unshared_modules`` other than ``layer``,
    one key per level for a module the levels share."""
    from models.sdst_budget import count_parameters
    from models.side_tuners import MODEL_CLASSES
    from pipeline.core.checkpoints import load_model

    model, ckpt = load_model(checkpoint, "cpu", models=MODEL_CLASSES)
    cfg = model.config
    return {"architecture": cfg.model.architecture, "levels": cfg.num_levels, "video_layers": list(cfg.video_layers),
            "text_layers": list(cfg.text_layers),
            "attention": cfg.model.attention, "shared": cfg.model.shared, "cnn": cfg.model.cnn,
            "trainable_params": count_parameters(model), "seed": ckpt.get("runtime", {}).get("seed")}


def aggregate_seeds(per_seed: dict[int, dict]) -> tuple[dict, dict]:
    """Mean and population std over seeds of every metric (``num_queries``: the common count)."""
    from pipeline.metrics.seeds import mean_std

    first = next(iter(per_seed.values()))
    mean, std = {}, {}
    for key in first:
        values = [float(m[key]) for m in per_seed.values()]
        if key == "num_queries":
            mean[key] = int(first[key])
            continue
        mean[key], std[key] = mean_std(values)
    return mean, std


@stage_main()
def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring); bad params or input → exit code 2."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--models", required=True, type=Path, help="sdst_train output dir (seed_<k>/model.pt)")
    parser.add_argument("--canonical", required=True, type=Path)
    parser.add_argument("--video-features", required=True, type=Path)
    parser.add_argument("--text-features", required=True, type=Path)
    parser.add_argument("--predictions", required=True, type=Path, help="output dir of the raw seed_<k>.jsonl")
    parser.add_argument("--out", required=True, type=Path, help="metrics JSON")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    params = load_block(SDSTParams, args.params)
    runtime = load_block(RuntimeConfig, args.params)
    spec = spec_entry(params.dataset_specs, args.dataset, "sdst.dataset_specs", "dataset")
    spec_v = spec_entry(params.variant_specs, args.variant, "sdst.variant_specs", "variant")
    gt, with_sal = ground_truth_rows(args.canonical, spec.eval_split, spec.clip_len)
    apply_runtime(runtime)
    from pipeline.sdst.data import seed_checkpoints
    from pipeline.sdst.predict import predict_seeds

    checkpoints = seed_checkpoints(args.models, params.seeds)
    raw = predict_seeds(args.models, list(params.seeds), args.canonical, args.video_features, args.text_features,
                        spec.eval_split, spec.clip_len, spec.min_len, params.predict_batch_size, runtime.device,
                        args.predictions)
    per_seed, facts, offsets = {}, {}, {}
    for seed, ckpt in checkpoints.items():
        per_seed[seed] = evaluate(raw[seed], gt, with_sal, params.eval)
        facts[seed] = checkpoint_facts(ckpt)
        offsets[seed] = offset_stats(raw[seed])
    mean, std = aggregate_seeds(per_seed)
    first = facts[params.seeds[0]]
    result = {"dataset": args.dataset, "variant": args.variant, "label": spec_v.label,
              "last_layer_only": spec_v.last_layer_only, "model_overrides": spec_v.model,
              **{k: v for k, v in first.items() if k != "seed"}, "seeds": list(params.seeds),
              "metrics": mean, "metrics_std": std,
              "per_seed": {str(s): {"metrics": m, "trainable_params": facts[s]["trainable_params"]}
                           for s, m in per_seed.items()}}
    sampling = aggregate_offsets(offsets)
    if sampling is not None:  # Fig 4.5 (deformable video attention only; the report plots it)
        result["sampling_offsets"] = sampling
    write_json(args.out, result)
    brief = ", ".join(f"{k} {mean[k]:.2f} ± {std[k]:.2f}" for k in ("MR-R1@0.5", "MR-mAP", "HD-mAP") if k in mean)
    print(f"[sdst_evaluate] {args.dataset}/{args.variant} over seeds {list(params.seeds)}: {brief}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
