"""Real-scale rehearsal (issue 17, part A): the thesis datasets' shapes through each method's real model.

    python benchmarks/rehearsal.py --method all --iters 5 --out reports/rehearsal [--videos N] [--workers 0]
        [--val-limit N | --no-predict]

Not a DVC stage. For each method it merges ``profiles/real.yaml`` over ``params.yaml`` into a temp params
file (``pipeline.profiles.apply_profile``), loads the method's block from it (``load_block``), writes feature
containers of the REAL per-item dims with cheap structured content (no video decoding; a subsample of the
videos, see ``--videos``) with the project's container writer, then measures on this CPU (fp32, ``--threads``):

* ``loader_samples_per_s``: the method's own dataset + collate through a ``DataLoader`` (``--workers``);
* ``step_samples_per_s``: model forward + backward + AdamW step on those batches (first step untimed);
* ``peak_memory_gb``: the process' peak RSS (``resource.getrusage``; includes data generation);
* container sizes, open time, random item read cost (ms: ``random_read_raw_ms`` copies the stored float16
  bytes of all layers out of the memory map, ``random_read_ms`` also converts them to float32), and the open time of a
  10,000-item container index at the same row dims (1 row per item: open cost is the index, the array is
  memory-mapped);
* ``projected_hours`` = thesis epochs × thesis train items / ``step_samples_per_s`` / 3600;
* then (unless ``--no-predict``) the predict path and evaluator of the method at the validation split's real
  size (``rehearsal_eval.py``): ``predict_samples_per_s``, ``evaluate_s``, ``val_load_s``, ``val_items``,
  ``predict_projected_full_s`` (``--val-limit``), ``val_containers``, ``peak_memory_with_predict_gb``.

Measurement helpers live in ``rehearsal_measure.py`` (shared with ``gpu_check.py`` and ``profile_sdst.py``).

Writes ``<out>/<method>.json`` atomically. Shapes (per method, ``SHAPES``): SDST = QVHighlights (7,218 train
queries, 75 rows of 2 s, video 768-d × 5 layers, text 1024-d × 5 layers, 32 tokens); search VMR = HD-EPIC-like
(500-row windows at 3 fps as the thesis trims them, InternVideo2 768-d × 5 layers, ~24 tokens ≈ 16.5 words);
SADA = EPIC-KITCHENS-100 (SlowFast 2304-d, crops of ``sada.data.max_seq_len`` = 2304 rows).
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from pipeline.core.io import write_json  # noqa: E402
from pipeline.datasets.schema import Moment, VideoRecord, write_records  # noqa: E402
from pipeline.features.container import FeatureContainer, write_container  # noqa: E402
from rehearsal_measure import (  # noqa: E402
    container_stats,
    dataset_item_ms,
    index_scale_open,
    measure_loader,
    measure_step,
    peak_rss_gb,
    structured_rows,
)

METHODS = ("sdst", "search_vmr", "sada")


@dataclasses.dataclass(frozen=True)
class Shapes:
    """Per-item dims of one method's inputs, how many videos to generate, and the thesis' training size."""

    dataset: str
    videos: int  # generated (a subsample of the real dataset's videos)
    rows: tuple[int, int]  # video length range in feature rows (inclusive)
    video_dim: int
    video_layers: tuple[int, ...]
    text_dim: int = 0
    text_layers: tuple[int, ...] = ()
    tokens: int = 0
    queries_per_video: int = 2
    time_step: float = 2.0
    window: float = 2.0
    train_items: int = 0  # thesis train items per epoch (queries, or SADA source/target pairs)
    train_items_note: str = ""
    val_videos: int = 0  # the validation split's real size (rehearsal_eval.py): videos ...
    val_queries_per_video: int = 1  # ... × queries (SADA: labelled segments) per video
    val_items_note: str = ""
    source: str = ""  # the real profile's datasets.sources entry these shapes stand for (--annotations reads it)
    items_are: str = "queries"  # what one train item is: "queries" (VMR) or "videos" (SADA's video pairs)
    fixed_rows: bool = False  # items are fixed-size windows (rows do not follow the videos' durations)


SHAPES: dict[str, Shapes] = {
    "sdst": Shapes("qvhighlights (QVHighlights)", videos=128, rows=(75, 75), video_dim=768,
                   video_layers=(36, 37, 38, 39, 40), text_dim=1024, text_layers=(15, 16, 17, 18, 19), tokens=32,
                   time_step=2.0, window=2.0, train_items=7218,
                   train_items_note="QVHighlights train queries (thesis / Moment-DETR split)",
                   val_videos=775, val_queries_per_video=2,
                   val_items_note="QVHighlights val: 1,550 queries (775 generated videos × 2)",
                   source="qvhighlights"),
    "search_vmr": Shapes("hdepic (HD-EPIC-like 500-row windows at 3 fps)", videos=96, rows=(500, 500),
                         video_dim=768, video_layers=(36, 37, 38, 39, 40), text_dim=1024,
                         text_layers=(15, 16, 17, 18, 19), tokens=24, time_step=1 / 3, window=4 / 3,
                         train_items=47563,
                         train_items_note="ASSUMED: 80% of HD-EPIC's ~59.5k narrations (the thesis gives no count "
                                          "of its window/caption training items); scale projected_hours linearly",
                         val_videos=177, val_queries_per_video=67,
                         val_items_note="ASSUMED: 20% of HD-EPIC's ~59.5k narrations ≈ 177 500-row windows × 67 "
                                        "moments = 11,859; every 4th moment joins the previous one's query "
                                        "(multi-moment, as a search level groups them): 8,850 queries",
                         source="hdepic", fixed_rows=True),
    "sada": Shapes("epic_kitchens_100 (EPIC-KITCHENS-100, SlowFast)", videos=24, rows=(1200, 3600),
                   video_dim=2304, video_layers=(1,), time_step=16 / 30, window=32 / 30, queries_per_video=40,
                   train_items=495,
                   train_items_note="upper bound: EPIC-100 has 495 train videos; an epoch = max(source, target) "
                                    "videos of a scenario, so S1-S6 epochs are shorter",
                   val_videos=138, val_queries_per_video=70,
                   val_items_note="EPIC-KITCHENS-100 val: 138 videos, ~70 segments each (9,668 in all)",
                   source="epic_kitchens_100", items_are="videos"),
}


# ----------------------------------------------------------------------------- params and data


def real_params(work: Path) -> Path:
    """``profiles/real.yaml`` merged over ``params.yaml`` into ``work/params.yaml`` (validated)."""
    from pipeline.profiles import apply_profile

    out = work / "params.yaml"
    apply_profile(ROOT / "params.yaml", ROOT / "profiles" / "real.yaml", out)
    return out


def _videos(shapes: Shapes, split: str, rng: np.random.Generator, labels: list[str] | None = None,
            ) -> tuple[list[VideoRecord], dict[str, int]]:
    """Records with ``queries_per_video`` moments each (one query each, or TAL labels); returns lengths."""
    recs, lengths = [], {}
    for v in range(shapes.videos):
        vid = f"{split}_v{v:05d}"
        n = int(rng.integers(shapes.rows[0], shapes.rows[1] + 1))
        dur = n * shapes.time_step
        moments = []
        for q in range(shapes.queries_per_video):
            s = float(rng.uniform(0, dur * 0.8))
            e = float(min(dur, s + rng.uniform(0.05, 0.2) * dur))
            if labels is not None:
                k = int(rng.integers(len(labels)))
                moments.append(Moment(f"{vid}_m{q}", s, e, label=labels[k], label_id=k))
            else:
                moments.append(Moment(f"{vid}_m{q}", s, e, text="a query", query_id=f"{vid}_q{q}"))
        recs.append(VideoRecord(vid, "rehearsal", split, dur, moments=moments))
        lengths[vid] = n
    return recs, lengths


def write_features(work: Path, shapes: Shapes, recs: list[VideoRecord], lengths: dict[str, int], split: str,
                   seed: int = 0) -> tuple[Path, Path | None]:
    """Video (and, with text dims, query-token) containers of ``recs`` under ``work``; returns the prefixes."""
    rng = np.random.default_rng(seed)
    proj = rng.standard_normal((8, shapes.video_dim)).astype(np.float32)
    vmeta = {"layers": list(shapes.video_layers), "time_step": shapes.time_step, "window": shapes.window,
             "backbone": "rehearsal"}
    vprefix = work / "video" / split
    vprefix.parent.mkdir(parents=True, exist_ok=True)
    write_container(vprefix, ((r.video_id, structured_rows(rng, lengths[r.video_id], len(shapes.video_layers),
                                                           shapes.video_dim, proj)) for r in recs), meta=vmeta)
    if not shapes.text_dim:
        return vprefix, None
    tproj = rng.standard_normal((8, shapes.text_dim)).astype(np.float32)
    tprefix = work / "text" / split
    tprefix.parent.mkdir(parents=True, exist_ok=True)
    qids = sorted({m.query_id for r in recs for m in r.moments})
    write_container(tprefix, ((q, structured_rows(rng, shapes.tokens, len(shapes.text_layers), shapes.text_dim,
                                                  tproj)) for q in qids), meta={"layers": list(shapes.text_layers)})
    return vprefix, tprefix


# ----------------------------------------------------------------------------- per-method setups


class Built(NamedTuple):
    """What a per-method setup returns: the method's own train dataset, collate and model at real dims, its train
    config, the thesis' epoch count, notes, the container prefixes, and ``context`` (the method's params block
    and spec objects, for the predict / evaluate half in ``rehearsal_eval.py``)."""

    dataset: Any
    collate: Callable
    model: Any
    train: Any
    epochs: int
    notes: str
    prefixes: dict[str, Path]
    context: dict[str, Any]


def setup_sdst(work: Path, params: Path, shapes: Shapes):
    """SDST on QVHighlights (``sdst.dataset_specs.qvhighlights``, variant ``sdst``)."""
    import torch

    from models.sdst import SDST
    from pipeline.core.params import load_block
    from pipeline.sdst.data import LayerChoice, SDSTDataset, collate, feature_stats
    from pipeline.sdst.params import SDSTParams
    from pipeline.sdst.train import build_model_config, train_config

    cfg = load_block(SDSTParams, params)
    name, spec = "qvhighlights", cfg.dataset_specs["qvhighlights"]
    recs, lengths = _videos(shapes, spec.train_split, np.random.default_rng(1))
    canonical = work / "canonical.jsonl"
    write_records(canonical, recs)
    vprefix, tprefix = write_features(work, shapes, recs, lengths, spec.train_split)
    probe = build_model_config(cfg, name, "sdst", vprefix, tprefix, 0, 0)
    ds = SDSTDataset(canonical, spec.train_split, vprefix.parent, tprefix.parent,
                     LayerChoice(probe.video_layers, probe.text_layers), spec.clip_len, require_windows=True)
    config = dataclasses.replace(probe, video_dim=ds.video_dim, text_dim=ds.text_dim)
    torch.manual_seed(0)
    model = SDST(config)
    if config.model.standardize_inputs:
        model.set_input_stats(*[torch.as_tensor(x) for x in feature_stats(ds)])
    train = train_config(cfg, name)
    notes = f"levels video {config.video_layers} text {config.text_layers}, num_queries {config.num_queries}"
    return Built(ds, functools.partial(collate, min_len=spec.min_len), model, train, train.epochs, notes,
                 {"video": vprefix, "text": tprefix}, {"cfg": cfg, "spec": spec})


def setup_search_vmr(work: Path, params: Path, shapes: Shapes):
    """Search VMR (CG-DETR, ``search_vmr.benchmark_specs.hdepic``, variant ``base``) on caption queries."""
    import torch

    from pipeline.core.params import load_block
    from pipeline.search_vmr.data import SearchVMRDataset, collate, queries_of
    from pipeline.search_vmr.params import SearchVMRConfig
    from pipeline.search_vmr.train import model_class, resolve

    cfg = load_block(SearchVMRConfig, params)
    bench, _, model_cfg = resolve(cfg, "hdepic", "base")
    recs, lengths = _videos(shapes, bench.train_split, np.random.default_rng(2))
    vprefix, tprefix = write_features(work, shapes, recs, lengths, bench.train_split)
    ds = SearchVMRDataset(queries_of(recs, bench.train_split, "rehearsal"), FeatureContainer(vprefix),
                          FeatureContainer(tprefix), cfg.data)
    model_cfg = dataclasses.replace(model_cfg, video_dim=ds.video_dim(), text_dim=ds.text_dim())
    torch.manual_seed(0)
    model = model_class(model_cfg)(model_cfg)
    notes = (f"architecture {model_cfg.architecture}, max_video_len {cfg.data.max_video_len}, "
             f"max_text_len {cfg.data.max_text_len}, video layer {cfg.data.video_layer}")
    return Built(ds, collate, model, cfg.train, cfg.train.epochs, notes, {"video": vprefix, "text": tprefix},
                 {"cfg": cfg, "bench": bench})


def setup_sada(work: Path, params: Path, shapes: Shapes):
    """SADA (TriDet + local/bkg alignment, ``sada.scenario_specs.EK_S1``, variant ``sada``) on SlowFast rows."""
    import torch

    from models.sada.config import SadaDetectorConfig
    from models.sada.detector import SadaDetector
    from pipeline.core.params import load_block
    from pipeline.sada.data import SOURCE, TARGET, PairCollate, PairedDomainDataset, load_videos, open_features
    from pipeline.sada.params import SadaConfig
    from pipeline.sada.train import epoch_plumbing

    cfg = load_block(SadaConfig, params)
    spec, variant = cfg.scenario_specs["EK_S1"], cfg.variant_specs["sada"]
    classes = [f"verb{k}" for k in range(spec.num_classes)]
    recs, lengths = _videos(shapes, "train", np.random.default_rng(3), labels=classes)
    vprefix, _ = write_features(work, shapes, recs, lengths, "train")
    container, recipe = open_features(vprefix)
    half = len(recs) // 2
    source, _ = load_videos(recs[:half], container, recipe, classes, cfg.data.layer, SOURCE)
    target, _ = load_videos(recs[half:], container, recipe, classes, cfg.data.layer, TARGET)
    for v in target:  # as sada_train: no target label reaches the model
        v.segments, v.labels = v.segments[:0], v.labels[:0]
    ds = PairedDomainDataset(source, target, cfg.data.max_seq_len, cfg.data.crop_ratio, cfg.data.trunc_thresh)
    train, total_iters = epoch_plumbing(cfg.train, shapes.train_items, cfg.warmup_epochs)
    det_cfg = SadaDetectorConfig(model=variant.model_config(cfg.model), weights=spec.weights,
                                 align=list(variant.align), input_dim=shapes.video_dim, class_names=classes,
                                 total_iters=total_iters)
    torch.manual_seed(0)
    model = SadaDetector(det_cfg)
    notes = (f"detector {det_cfg.model.detector}, align {det_cfg.align}, embed_dim {det_cfg.model.embed_dim}, "
             f"max_seq_len {cfg.data.max_seq_len}; one item = a (source, target) pair; load_videos maps the "
             f"containers' float16 rows (collate converts only the crop)")
    return Built(ds, PairCollate(model.pad_multiple, recipe), model, train, train.epochs, notes, {"video": vprefix},
                 {"cfg": cfg, "spec": spec, "classes": classes})


SETUPS = {"sdst": setup_sdst, "search_vmr": setup_search_vmr, "sada": setup_sada}


def rehearse(method: str, iters: int, out: Path | None, shapes: Shapes | None = None, batch: int | None = None,
             workers: int = 0, threads: int = 1, reads: int = 200, scale_items: int = 10_000,
             predict: bool = True, val_limit: int | None = None, notes: Sequence[str] = ()) -> dict:
    """Run one method's rehearsal (see the module docstring); writes ``out/<method>.json`` when ``out``.
    ``predict``: also the predict + evaluate half at validation size (``rehearsal_eval.py``; ``val_limit``
    bounds the predicted items, the time is then projected to the full split)."""
    import torch

    from rehearsal_eval import predict_and_evaluate

    if method not in SETUPS:
        raise ValueError(f"unknown method {method!r} (known: {sorted(SETUPS)})")
    torch.set_num_threads(threads)
    shapes = shapes or SHAPES[method]
    with tempfile.TemporaryDirectory(prefix=f"rehearsal_{method}_") as tmp:
        work = Path(tmp)
        params = real_params(work)
        t0 = time.perf_counter()
        built = SETUPS[method](work, params, shapes)
        ds, model, train, epochs = built.dataset, built.model, built.train, built.epochs
        setup_s = time.perf_counter() - t0
        bs = batch or train.batch_size
        containers = {k: container_stats(p, reads) for k, p in built.prefixes.items()}
        item_ms = dataset_item_ms(ds, reads)
        scale = (index_scale_open(work, len(shapes.video_layers), shapes.video_dim, scale_items)
                 if scale_items else None)
        batches, loader_sps = measure_loader(ds, built.collate, bs, iters, workers)
        step_sps, loss = measure_step(model, batches, train.lr, train.weight_decay, train.grad_clip)
        train_peak = peak_rss_gb()  # before the val split is generated (ru_maxrss never goes down)
        evaluation = (predict_and_evaluate(method, work, built, shapes, _videos, write_features, val_limit)
                      if predict else {})
    report = {
        "method": method,
        "dataset": shapes.dataset,
        "device": "cpu", "precision": "fp32", "threads": threads, "workers": workers,
        "batch_size": bs, "profile_batch_size": train.batch_size, "iterations": iters,
        "step_samples_per_s": step_sps, "step_it_per_s": step_sps / bs,
        "loader_samples_per_s": loader_sps, "loader_over_step": loader_sps / step_sps,
        "dataset_item_ms": item_ms,
        "peak_memory_gb": train_peak, **evaluation,
        **({"peak_memory_with_predict_gb": peak_rss_gb()} if predict else {}),
        "containers": containers, "index_scale_open": scale,
        "shapes": {k: v for k, v in dataclasses.asdict(shapes).items() if not k.endswith("_note")},
        "generated_items": len(ds),
        "trainable_params": int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
        "thesis_epochs": epochs, "thesis_train_items": shapes.train_items,
        "projected_hours": epochs * shapes.train_items / step_sps / 3600,
        "last_loss": loss, "setup_s": setup_s,
        "notes": [built.notes, *notes, shapes.train_items_note,
                  f"{shapes.videos} generated videos (a subsample; per-item dims real)",
                  "peak_memory_gb is the process' peak RSS incl. data generation, before the val split",
                  *([shapes.val_items_note, "val_metrics come from a model trained for a few steps on generated "
                     "features: a smoke check of the evaluator, not a result"] if predict else []),
                  "step time excludes the first (warm-up) step"],
    }
    if out is not None:
        write_json(Path(out) / f"{method}.json", report)
    return report


def _replace_method(argv: list[str], method: str) -> list[str]:
    """``argv`` with its ``--method`` value (or ``--method=...``) replaced by ``method``."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--method":
            skip = True
            continue
        if not a.startswith("--method="):
            out.append(a)
    return [*out, "--method", method]


def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="all", choices=[*METHODS, "all"])
    parser.add_argument("--iters", type=int, default=5, help="training iterations per method (≥ 2: first untimed)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "rehearsal")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: the real profile's)")
    parser.add_argument("--videos", type=int, default=None, help="generated videos per method (default: SHAPES)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers for the loader measurement")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--no-predict", action="store_true", help="skip predict + evaluate at validation size")
    parser.add_argument("--val-limit", type=int, default=None,
                        help="predict/score at most this many val items (time projected to the full split)")
    parser.add_argument("--val-videos", type=int, default=None, help="val videos per method (default: SHAPES)")
    parser.add_argument("--annotations", type=Path, default=None,
                        help="folder of the method's real annotation files (read with the real profile's adapter "
                             "for SHAPES[method].source): counts and lengths from them (one --method)")
    parser.add_argument("--split", action="append", default=[], metavar="NAME=FILE",
                        help="with --annotations: replace the adapter's split files (repeatable)")
    args = parser.parse_args(argv)
    if args.annotations is not None and args.method == "all":
        parser.error("--annotations reads one dataset: give one --method")
    split_files = dict(s.split("=", 1) for s in args.split) if args.split else None
    if args.split and any("=" not in s for s in args.split):
        parser.error("--split takes NAME=FILE")
    if args.method == "all":  # one process per method: peak RSS (ru_maxrss) is per process and never goes down
        rest = list(sys.argv[1:] if argv is None else argv)
        for method in METHODS:
            cmd = [sys.executable, __file__, *_replace_method(rest, method)]
            if subprocess.run(cmd).returncode:
                return 1
        return 0
    for method in [args.method]:
        shapes, notes = SHAPES[method], []
        if args.annotations is not None:
            from rehearsal_real import read_records, shapes_from_records

            with tempfile.TemporaryDirectory(prefix="rehearsal_params_") as tmp:
                records = read_records(real_params(Path(tmp)), shapes.source, args.annotations, split_files)
            shapes, notes = shapes_from_records(shapes, records, str(args.annotations))
        if args.videos is not None:
            shapes = dataclasses.replace(shapes, videos=args.videos)
        if args.val_videos is not None:
            shapes = dataclasses.replace(shapes, val_videos=args.val_videos)
        r = rehearse(method, args.iters, args.out, shapes, args.batch, args.workers, args.threads,
                     predict=not args.no_predict, val_limit=args.val_limit, notes=notes)
        pred = ("" if args.no_predict else f", predict {r['predict_samples_per_s']:.1f} samples/s over "
                f"{r['predict_items']}/{r['val_items']} val items, evaluate {r['evaluate_s']:.1f} s")
        print(f"{method}: step {r['step_samples_per_s']:.2f} samples/s, loader {r['loader_samples_per_s']:.1f} "
              f"samples/s, peak {r['peak_memory_gb']:.2f} GB, projected {r['projected_hours']:.1f} h{pred} "
              f"→ {args.out / (method + '.json')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
