"""Stage ``extract_<backbone>@<dataset>-<shard>``: video features of one shard of one canonical dataset.

    python -m pipeline.features.extract --backbone slowfast --dataset synth_tal --shard 0 --num-shards 2 \
        --canonical data/canonical/synth_tal.jsonl --out data/features/_shards/synth_tal/slowfast/0 \
        --work data/features/_work/synth_tal/slowfast/0

Shard ``i`` of ``n`` takes every n-th video of the canonical file sorted by (split, video_id). Each video is
decoded per the backbone's recipe for this dataset (``features.<backbone>.recipe`` with the dataset's
``recipe_by_dataset`` entry merged over it; ``pipeline.features.decode``) in DataLoader workers while the main
process runs the frozen backbone on batches of that video's clips; a video's features never depend on the
other videos in the shard, so any sharding gives identical features.

Output ``--out``: one container per split (``<split>.npy`` float16 [rows, L, D] + ``<split>.json``, meta keys
``backbone``, ``dim``, ``layers``, ``time_step``, ``window``, ``pooling``, ...) and ``report.json`` (videos done,
skipped videos with split and reason, the skip limit). The directory appears atomically, complete or not at
all. Run history (how many videos were resumed, timings) is printed, never stored: an interrupted and an
uninterrupted run write the same bytes.

Resumable: every finished video is saved in ``--work`` (``<fingerprint>/<key>.npy`` + ``.json``, each written
atomically; the fingerprint covers every setting that changes the numbers). A killed run restarted with the
same settings loads the finished videos instead of recomputing them; the work directory is deleted once the
shard's output is in place. Bad videos (unreadable, corrupt, truncated, shorter than one window) are reported
with the video id and reason; ``features.decode.on_error`` = ``skip`` lists them in the report and goes on,
``fail`` stops the stage (finished videos stay in the work directory). Under ``skip``, a split that loses every
video or more than ``features.decode.max_skipped_share`` of them stops the stage with the list
(``pipeline.features.skips``): checked before decoding for what is known then (missing files, videos too
short for one window), and again once every video was tried. The backbone's checkpoint path is checked
before anything else.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from pipeline.core.cli import stage_main
from pipeline.core.work import WorkDir as CoreWorkDir
from pipeline.core.params import ConfigError, RuntimeConfig, load_block
from pipeline.core.runtime import apply_runtime, torch_dtype
from pipeline.features.params import FeaturesConfig, require_files
from pipeline.datasets.schema import VideoRecord, read_records
from pipeline.core.io import InputError, atomic_path, read_json, write_json
from pipeline.features.container import write_container
from pipeline.features.decode import VideoError, plan_windows
from pipeline.features.loader import ClipStream, VideoJob, clip_loader
from pipeline.features.skips import check_split_losses

FEATURE_FORMAT = 1  # bump when the meaning of stored features changes (invalidates resumable work)


class ExtractionError(RuntimeError):
    """Extraction stopped on a bad video (policy ``fail``); the message names the video and the reason."""


def shard_records(records: list[VideoRecord], shard: int, num_shards: int) -> list[VideoRecord]:
    """Every ``num_shards``-th record of the (split, video_id)-sorted list, starting at ``shard``."""
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard {shard} not in 0..{num_shards - 1}")
    ordered = sorted(records, key=lambda r: (r.split, r.video_id))
    return ordered[shard::num_shards]


def _source_id(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": path.as_posix(), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _checkpoint_of(cfg) -> str | None:
    """The local weights file of a backbone block (``checkpoint``, or ``model.checkpoint`` for CLIP)."""
    return getattr(cfg, "checkpoint", None) or getattr(getattr(cfg, "model", None), "checkpoint", None)


def fingerprint(backbone: str, features: FeaturesConfig, runtime: RuntimeConfig) -> str:
    """Hash of every setting that changes the stored numbers (not the error policy, workers or shard)."""
    import torch

    decode = dataclasses.asdict(features.decode)
    for policy_only in ("on_error", "threads", "max_skipped_share"):  # none of these changes a stored number
        decode.pop(policy_only)
    ckpt = _checkpoint_of(features.backbone(backbone))
    blob = {
        "checkpoint_file": _source_id(Path(ckpt)) if ckpt and Path(ckpt).exists() else None,
        "format": FEATURE_FORMAT,
        "backbone": backbone,
        "config": dataclasses.asdict(features.backbone(backbone)),
        "batch_size": features.batch_size,
        "decode": decode,
        "precision": runtime.precision,
        "device": str(runtime.device).split(":")[0],
        "seed": runtime.seed,
        "threads": runtime.threads,
        "torch": torch.__version__,
    }
    return hashlib.sha1(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:16]


class WorkDir(CoreWorkDir):
    """Per-video results of an unfinished shard: ``<root>/<fingerprint>/<key>.{npy,json}`` (the folder itself,
    its git-ignore and the removal of other fingerprints' results come from :class:`pipeline.core.work.WorkDir`)."""

    @staticmethod
    def video_key(video_id: str) -> str:
        return hashlib.sha1(video_id.encode()).hexdigest()[:20]

    def load(self, rec: VideoRecord, source: dict | None) -> tuple[np.ndarray | None, str | None] | None:
        """(features, None) or (None, skip reason) of a finished video with the same source file, else None."""
        meta_path = self.dir / f"{self.video_key(rec.video_id)}.json"
        if not meta_path.exists():
            return None
        try:
            meta = read_json(meta_path)
        except InputError:
            return None
        if meta.get("video_id") != rec.video_id or meta.get("source") != source:
            return None
        if meta.get("reason") is not None:
            return None, meta["reason"]
        npy = self.dir / f"{self.video_key(rec.video_id)}.npy"
        if not npy.exists():
            return None
        return np.load(npy), None

    def save(self, rec: VideoRecord, source: dict | None, feats: np.ndarray | None, reason: str | None) -> None:
        """Store one finished (or failed) video: array first, then the JSON that marks it done."""
        key = self.video_key(rec.video_id)
        if feats is not None:
            with atomic_path(self.dir / f"{key}.npy", suffix=".npy") as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, feats)
        write_json(self.dir / f"{key}.json",
                   {"video_id": rec.video_id, "split": rec.split, "source": source, "reason": reason})


def _torch_setup(runtime: RuntimeConfig):
    import torch

    apply_runtime(runtime)
    return torch, torch.device(runtime.device), torch_dtype(runtime.precision)


def build_backbone(backbone: str, features: FeaturesConfig, runtime: RuntimeConfig):
    """The frozen backbone on the runtime device/precision; random-init weights are seeded by runtime.seed."""
    from models.backbones import build_video_backbone

    torch, device, dtype = _torch_setup(runtime)
    torch.manual_seed(runtime.seed)
    model = build_video_backbone(backbone, features.backbone(backbone))
    return model.to(device=device, dtype=dtype)


def container_meta(backbone: str, model, features: FeaturesConfig, dataset: str, split: str) -> dict:
    """The index meta of a feature container (HELPERS contract keys first)."""
    cfg = features.backbone(backbone)
    r = cfg.recipe
    return {
        "backbone": backbone,
        "dim": int(model.dim),
        "layers": [int(x) for x in model.layers],
        "time_step": r.stride / r.fps,
        "window": r.frames / r.fps,
        "pooling": model.pooling,
        "dataset": dataset,
        "split": split,
        "recipe": dataclasses.asdict(r),
        "checkpoint": Path(_checkpoint_of(cfg)).name if _checkpoint_of(cfg) else None,
    }


def extract_shard(
    records: list[VideoRecord],
    backbone: str,
    features: FeaturesConfig,
    runtime: RuntimeConfig,
    out_dir: Path,
    work_root: Path,
    dataset: str,
    shard: int = 0,
    num_shards: int = 1,
    root: Path = Path("."),
    model=None,
    progress: bool = True,
    stop_after: int | None = None,
    split_sizes: Mapping[str, int] | None = None,
    enforce_skip_limit: bool = True,
) -> dict:
    """Extract ``records`` (already this shard's) into ``out_dir``; return the report that is also written,
    plus the run history that is not (``resumed``: videos loaded from the work directory; ``forward_seconds``).

    ``root`` resolves ``video_path``. ``model`` reuses an already built backbone. ``stop_after`` (tests)
    raises ``KeyboardInterrupt`` after that many videos were computed, like a killed run. ``split_sizes``:
    videos per split in the whole dataset (all shards; default: this shard's records), the base of the
    ``features.decode.max_skipped_share`` check, which ``enforce_skip_limit=False`` turns off (the probes'
    random-init arm extracts a sample and tolerates gaps).
    """
    from tqdm import tqdm

    # one recipe from here on: the dataset's entry of features.<backbone>.recipe_by_dataset merged over the
    # backbone's recipe (the model, the windows, the container meta and the work fingerprint all follow it)
    features = features.for_dataset(backbone, dataset)
    cfg = features.backbone(backbone)
    recipe, decode = cfg.recipe, features.decode
    if model is None:
        require_files([features.checkpoint_key(backbone)], where="")
    work = WorkDir(Path(work_root), fingerprint(backbone, features, runtime))
    limit = decode.max_skipped_share if enforce_skip_limit else None
    sizes = dict(split_sizes) if split_sizes is not None else dict(Counter(r.split for r in records))
    split_of = {r.video_id: r.split for r in records}

    results: dict[str, np.ndarray] = {}
    skipped: dict[str, str] = {}
    sources: dict[str, dict | None] = {}
    jobs: list[VideoJob] = []
    job_recs: list[VideoRecord] = []
    resumed = 0

    def fail_or_skip(rec: VideoRecord, reason: str) -> None:
        if decode.on_error == "fail":
            raise ExtractionError(f"{dataset}: video {rec.video_id} ({rec.video_path}): {reason}")
        skipped[rec.video_id] = reason

    for rec in records:
        if not rec.video_path:
            reason, source = "record has no video_path", None
        else:
            path = root / rec.video_path
            source = _source_id(path) if path.exists() else None
            reason = None if source else f"video file not found: {path}"
        sources[rec.video_id] = source
        done = work.load(rec, source) if source else None
        if done is not None:
            resumed += 1
            feats, prev_reason = done
            if prev_reason is not None:
                fail_or_skip(rec, prev_reason)
            else:
                results[rec.video_id] = feats
            continue
        if reason is None:
            try:
                plan = plan_windows(rec.duration, recipe.fps, recipe.frames, recipe.stride)
            except VideoError as exc:
                reason = exc.reason
        if reason is not None:
            work.save(rec, source, None, reason)
            fail_or_skip(rec, reason)
            continue
        jobs.append(VideoJob(str(root / rec.video_path), plan, recipe.size, recipe.resize, recipe.interpolation))
        job_recs.append(rec)

    def check_losses() -> None:
        if limit is None:
            return
        lost: dict[str, list[tuple[str, str]]] = {}
        for vid, reason in skipped.items():
            lost.setdefault(split_of[vid], []).append((vid, reason))
        check_split_losses(dataset, sizes, lost, limit, where=f"shard {shard}/{num_shards}")

    check_losses()  # missing files and too-short videos are known now: fail before building or decoding
    if model is None:
        model = build_backbone(backbone, features, runtime)
    torch, device, dtype = _torch_setup(runtime)

    stream = ClipStream(jobs, features.batch_size, decode.seek_gap, decode.max_missing, decode.threads)
    loader = clip_loader(stream, runtime.workers, pin_memory=device.type == "cuda")
    parts: dict[int, list[np.ndarray]] = {}
    computed = 0
    t_forward = 0.0
    bar = tqdm(total=len(records), initial=len(records) - len(jobs), disable=not progress, mininterval=2.0,
               desc=f"extract {dataset}/{backbone} shard {shard}/{num_shards}", file=sys.stderr)
    with torch.inference_mode():
        for item in loader:
            j = item["job"]
            rec = job_recs[j]
            if not item["end"]:
                t0 = time.perf_counter()
                frames = item["frames"].to(device, non_blocking=True)
                clips = frames[item["index"].to(device)]  # windows gathered on the compute device
                out = model(clips).float().cpu().numpy()
                t_forward += time.perf_counter() - t0
                parts.setdefault(j, []).append(out)
                continue
            bar.update(1)
            chunks = parts.pop(j, [])
            if item["reason"] is not None:
                work.save(rec, sources[rec.video_id], None, item["reason"])
                fail_or_skip(rec, item["reason"])
                continue
            feats = np.concatenate(chunks, axis=0).astype(np.float16)
            if not np.isfinite(feats).all():
                raise ExtractionError(f"{dataset}: video {rec.video_id}: non-finite features "
                                      f"(float16 overflow? check the backbone's normalisation/precision)")
            work.save(rec, sources[rec.video_id], feats, None)
            results[rec.video_id] = feats
            computed += 1
            if stop_after is not None and computed >= stop_after:
                raise KeyboardInterrupt(f"stopped after {computed} videos (test hook)")
    bar.close()
    check_losses()

    splits = sorted({r.split for r in records})
    report = {
        "dataset": dataset,
        "backbone": backbone,
        "shard": shard,
        "num_shards": num_shards,
        "videos": len(records),
        "extracted": len(results),
        "skipped": [{"video_id": vid, "split": split_of[vid], "reason": skipped[vid]} for vid in sorted(skipped)],
        "max_skipped_share": limit,  # the merge stage checks the whole dataset against it
        "splits": {},
    }
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        for split in splits:
            ids = sorted(r.video_id for r in records if r.split == split and r.video_id in results)
            meta = container_meta(backbone, model, features, dataset, split)
            write_container(tmp / split, [(vid, results[vid]) for vid in ids], meta,
                            empty_shape=(0, len(model.layers), int(model.dim)))
            report["splits"][split] = {"videos": len(ids), "rows": int(sum(len(results[v]) for v in ids))}
        write_json(tmp / "report.json", report)
    work.remove()
    # run history goes to the caller (printed), not into report.json: a resumed run must write the same bytes
    return {**report, "resumed": resumed, "forward_seconds": t_forward}


@stage_main(ValueError, ExtractionError)
def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring); bad params or input → exit code 2."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--canonical", required=True, help="data/canonical/<dataset>.jsonl")
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--num-shards", type=int, default=1)
    parser.add_argument("--out", required=True, help="shard output directory")
    parser.add_argument("--work", required=True, help="scratch directory for resumable per-video results")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    features = load_block(FeaturesConfig, args.params)
    runtime = load_block(RuntimeConfig, args.params)
    if args.num_shards != features.num_shards:
        raise ConfigError(f"--num-shards {args.num_shards} != features.num_shards {features.num_shards}")
    require_files([features.checkpoint_key(args.backbone)], where=args.params)
    all_records = read_records(args.canonical)
    records = shard_records(all_records, args.shard, args.num_shards)
    report = extract_shard(records, args.backbone, features, runtime, Path(args.out), Path(args.work),
                           args.dataset, args.shard, args.num_shards,
                           split_sizes=Counter(r.split for r in all_records))
    for item in report["skipped"]:
        print(f"skipped {item['video_id']}: {item['reason']}", file=sys.stderr)
    print(f"{args.dataset}/{args.backbone} shard {args.shard}/{args.num_shards}: {report['extracted']} videos "
          f"({report['resumed']} resumed, {len(report['skipped'])} skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
