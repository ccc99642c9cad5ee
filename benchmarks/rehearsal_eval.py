"""The predict + evaluate half of the real-scale rehearsal (``rehearsal.py``): full validation size, real dims.

For each method a validation split of the real size is generated (``Shapes.val_videos`` ×
``Shapes.val_queries_per_video``: QVHighlights val 1,550 queries; EPIC-KITCHENS-100 val 138 videos with ~70
segments each; HD-EPIC-like 177 500-row windows with ~67 narrations each ≈ 11.9k moments, 20 % of the train
assumption, grouped into 8,850 queries), its feature containers are written at the real per-item dims, and the rehearsal's (briefly trained)
model runs the method's own predict path and evaluator on it:

* SDST: ``SDSTDataset`` + ``collate`` at ``sdst.predict_batch_size`` → ``SDST.predict`` → ``pipeline.sdst.
  evaluate.evaluate`` (NMS + QVHighlights MR/HD metrics; the GT has saliency);
* SADA: ``load_videos`` (memory-mapped float16 rows, as ``sada_evaluate`` does) → ``predict_videos`` (one
  video per batch, the detector's own decoding) → ``tal_map`` over the ActivityNet-style GT;
* search VMR: ``SearchVMRDataset`` → ``predict_dataset`` at ``search_vmr.inference.batch_size`` →
  ``score_queries`` (R_m / mAP_m / mAP + active-query statistics, single / multi parts; every 4th query has
  two moments).

Returns the keys ``val_items``, ``predict_items``, ``predict_samples_per_s``, ``predict_s``, ``val_load_s``,
``evaluate_s``, ``evaluate_items_per_s``, ``predict_projected_full_s``, ``val_write_s`` and ``val_containers``.
``limit`` predicts only the first ``limit`` items (``predict_projected_full_s`` scales the predict time to the
full split); the evaluator always runs over the full split (the predicted rows stand in for the others, see
``cover``), so ``evaluate_s`` is always a full-size time.
"""
from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pipeline.datasets.schema import Saliency, VideoRecord, write_records


def val_shapes(shapes):
    """``shapes`` with its generated video count and per-video queries set to the validation split's."""
    return dataclasses.replace(shapes, videos=shapes.val_videos, queries_per_video=shapes.val_queries_per_video)


def with_saliency(recs: list[VideoRecord], clip_len: float, seed: int = 0) -> list[VideoRecord]:
    """QVHighlights-style saliency (3 annotators, 0–4) on the clips of every query's window."""
    rng = np.random.default_rng(seed)
    out = []
    for r in recs:
        sal = {}
        for m in r.moments:
            clips = list(range(int(m.start // clip_len), max(int(m.start // clip_len) + 1, int(m.end // clip_len))))
            sal[m.query_id] = Saliency(clips, rng.integers(0, 5, (len(clips), 3)).tolist())
        out.append(dataclasses.replace(r, saliency=sal))
    return out


def with_multi_moment(recs: list[VideoRecord]) -> list[VideoRecord]:
    """Every 4th moment joins the previous moment's query: a mix of single- and multi-moment queries."""
    out = []
    for r in recs:
        ms = list(r.moments)
        for i in range(1, len(ms), 4):
            ms[i] = dataclasses.replace(ms[i], query_id=ms[i - 1].query_id)
        out.append(dataclasses.replace(r, moments=ms))
    return out


def _timed(fn: Callable, *args, **kwargs) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def _result(val_items: int, n_pred: int, predict_s: float, evaluate_s: float, load_s: float = 0.0) -> dict:
    sps = n_pred / predict_s if predict_s > 0 else float("inf")
    return {"val_items": val_items, "predict_items": n_pred, "predict_s": predict_s, "predict_samples_per_s": sps,
            "val_load_s": load_s, "evaluate_s": evaluate_s, "evaluate_items": val_items,
            "evaluate_items_per_s": val_items / evaluate_s if evaluate_s > 0 else float("inf"),
            "predict_projected_full_s": val_items / sps}


def cover(rows: list[dict], keys: list, key: str, also: Callable[[dict, Any], dict] | None = None) -> list[dict]:
    """Prediction rows for every id of ``keys``: the predicted ones as they are, the others (only with
    ``limit``) copies of the predicted rows in turn with ``key`` set to that id (``also`` rewrites more
    fields), so the evaluator always runs over the full split; its cost depends on counts, not values."""
    have = {r[key] for r in rows}
    if not rows or have >= set(keys):
        return rows
    groups: dict = {}
    for r in rows:
        groups.setdefault(r[key], []).append(r)
    pool = list(groups.values())
    out = list(rows)
    for i, k in enumerate(x for x in keys if x not in have):
        for r in pool[i % len(pool)]:
            new = {**r, key: k}
            out.append(also(new, k) if also else new)
    return out


def eval_sdst(work: Path, built, shapes, limit: int | None, write: Callable) -> dict:
    """SDST predict + evaluate on a QVHighlights-sized val split (see the module docstring)."""
    import torch

    from pipeline.sdst.data import LayerChoice, SDSTDataset, collate
    from pipeline.sdst.evaluate import evaluate, ground_truth_rows

    cfg, spec, model = built.context["cfg"], built.context["spec"], built.model
    recs, lengths = write.videos(val_shapes(shapes), spec.eval_split, 11)
    recs = full_recs = with_saliency(recs, spec.clip_len)
    if limit:
        recs = _limit_queries(recs, limit)
    canonical, canonical_full = work / "canonical_val.jsonl", work / "canonical_val_full.jsonl"
    write_records(canonical, recs)
    write_records(canonical_full, full_recs)
    vprefix, tprefix = write.features(recs, lengths, spec.eval_split)
    ds = SDSTDataset(canonical, spec.eval_split, vprefix.parent, tprefix.parent,
                     LayerChoice(model.config.video_layers, model.config.text_layers), spec.clip_len,
                     require_windows=False)
    loader = torch.utils.data.DataLoader(ds, batch_size=cfg.predict_batch_size, shuffle=False,
                                         collate_fn=lambda b: collate(b, min_len=spec.min_len))
    model.eval()
    rows, predict_s = _timed(lambda: [r for batch in loader for r in model.predict(batch)])
    (gt, with_sal), gt_s = _timed(ground_truth_rows, canonical_full, spec.eval_split, spec.clip_len)
    vid_of = {g["qid"]: g["vid"] for g in gt}
    rows_full = cover(rows, [g["qid"] for g in gt], "qid", lambda r, q: {**r, "vid": vid_of[q]})
    metrics, eval_s = _timed(evaluate, rows_full, gt, with_sal, cfg.eval)
    out = _result(len(gt), len(rows), predict_s, eval_s + gt_s)
    return {**out, "val_metrics": {k: metrics[k] for k in ("MR-mAP", "HD-mAP", "num_queries") if k in metrics}}


def eval_sada(work: Path, built, shapes, limit: int | None, write: Callable) -> dict:
    """SADA predict + evaluate on an EPIC-100-sized val split (target domain; see the module docstring)."""
    from pipeline.metrics.tal import load_anet_ground_truth, tal_map
    from pipeline.sada.data import TARGET, load_videos, open_features
    from pipeline.sada.predict import ground_truth, predict_videos

    cfg, spec, classes, model = built.context["cfg"], built.context["spec"], built.context["classes"], built.model
    full_recs, lengths = write.videos(val_shapes(shapes), spec.eval_split, 13, labels=classes)
    recs = full_recs[:limit] if limit else full_recs
    vprefix, _ = write.features(recs, lengths, spec.eval_split)
    container, recipe = open_features(vprefix)
    (videos, _), load_s = _timed(load_videos, recs, container, recipe, classes, cfg.data.layer, TARGET)
    model.eval()
    rows, predict_s = _timed(predict_videos, model, videos, recipe, cfg.inference)
    t0 = time.perf_counter()
    gt = load_anet_ground_truth(ground_truth(full_recs, classes), label_field="label")
    rows_full = cover(rows, [r.video_id for r in full_recs], "video-id")
    with warnings.catch_warnings():  # classes the untrained model never predicts are expected
        warnings.simplefilter("ignore")
        res = tal_map(gt, rows_full)
    eval_s = time.perf_counter() - t0
    out = _result(len(full_recs), len(recs), predict_s, eval_s, load_s)
    return {**out, "val_segments": sum(len(r.moments) for r in full_recs), "predicted_rows": len(rows_full),
            "val_metrics": {"avg_mAP": 100 * res["average_mAP"]}}


def eval_search_vmr(work: Path, built, shapes, limit: int | None, write: Callable) -> dict:
    """Search VMR predict + evaluate on an HD-EPIC-sized val split (caption queries; see the module docstring)."""
    from pipeline.features.container import FeatureContainer
    from pipeline.search_vmr.data import SearchVMRDataset, queries_of
    from pipeline.search_vmr.evaluate import gt_queries, score_queries
    from pipeline.search_vmr.predict import predict_dataset

    cfg, bench, model = built.context["cfg"], built.context["bench"], built.model
    recs, lengths = write.videos(val_shapes(shapes), bench.eval_split, 17)
    recs = full_recs = with_multi_moment(recs)
    if limit:
        recs = _limit_queries(recs, limit)
    vprefix, tprefix = write.features(recs, lengths, bench.eval_split)
    ds = SearchVMRDataset(queries_of(recs, bench.eval_split, "rehearsal val"), FeatureContainer(vprefix),
                          FeatureContainer(tprefix), cfg.data)
    # post-processing is an inference param, as search_evaluate sets it
    model.config = dataclasses.replace(model.config, nms_threshold=cfg.inference.nms_for(model.config.self_attention),
                                       max_windows=cfg.inference.max_windows)
    rows, predict_s = _timed(predict_dataset, model, ds, cfg.inference.batch_size, "cpu", "rehearsal predict")
    t0 = time.perf_counter()
    queries = list(gt_queries(full_recs, bench.eval_split).values())
    preds = {str(r["qid"]): r for r in cover(rows, [q.qid for q in queries], "qid")}
    splits = {"single": [q.qid for q in queries if len(q.windows) == 1],
              "multi": [q.qid for q in queries if len(q.windows) > 1]}
    res = score_queries(queries, preds, list(bench.iou_thresholds), cfg.active_threshold, splits,
                        max_windows=cfg.inference.max_windows, active_rule=cfg.active_rule)
    eval_s = time.perf_counter() - t0
    out = _result(len(queries), len(rows), predict_s, eval_s)
    return {**out, "val_metrics": {"R_m": res["all"].get("R_m"), "multi_queries": len(splits["multi"]),
                                   "single_queries": len(splits["single"])}}


def _limit_queries(recs: list[VideoRecord], limit: int) -> list[VideoRecord]:
    """The first videos of ``recs`` whose queries add up to at most ``limit`` (at least one video)."""
    out, n = [], 0
    for r in recs:
        q = len({m.query_id for m in r.moments})
        if out and n + q > limit:
            break
        out.append(r)
        n += q
    return out


EVALS = {"sdst": eval_sdst, "sada": eval_sada, "search_vmr": eval_search_vmr}


@dataclasses.dataclass
class ValWriter:
    """Generates validation records and writes their containers under ``work/val`` (the rehearsal's generator
    and writer, passed in so there is one copy of each); records the write time."""

    work: Path
    shapes: Any
    make_videos: Callable
    write_features: Callable
    write_s: float = 0.0
    prefixes: dict = dataclasses.field(default_factory=dict)

    def videos(self, shapes, split: str, seed: int, labels: list[str] | None = None):
        """Records and row lengths of ``shapes.videos`` generated videos (the rehearsal's generator)."""
        return self.make_videos(shapes, split, np.random.default_rng(seed), labels)

    def features(self, recs: list[VideoRecord], lengths: dict[str, int], split: str):
        """Write the val containers (video, and text when the method has text) and time it."""
        t0 = time.perf_counter()
        vprefix, tprefix = self.write_features(self.work / "val", self.shapes, recs, lengths, split, seed=5)
        self.write_s += time.perf_counter() - t0
        self.prefixes = {"video": vprefix, **({"text": tprefix} if tprefix is not None else {})}
        return vprefix, tprefix


def predict_and_evaluate(method: str, work: Path, built, shapes, make_videos: Callable, write_features: Callable,
                         limit: int | None = None) -> dict:
    """Run ``method``'s predict path and evaluator on a validation split of the real size; the keys of the
    module docstring plus ``val_metrics`` (numbers of an untrained model: a smoke check, not a result)."""
    from pipeline.features.container import container_paths

    writer = ValWriter(work, shapes, make_videos, write_features)
    out = EVALS[method](work, built, shapes, limit, writer)
    out["val_write_s"] = writer.write_s
    out["val_containers"] = {k: {"array_bytes": container_paths(p)[0].stat().st_size}
                             for k, p in writer.prefixes.items()}
    return out
