"""A feature-level search-VMR world (written into a directory), for the search_vmr tests and seed studies.

An event has one value per attribute (e.g. verb, colour, shape); a video's feature rows are noise plus, at the
rows an event covers, the sum of its attribute embeddings. A caption names every attribute of its event
(tokens = the attribute embeddings, so captions are single-moment); a search level keeps only some attributes
(e.g. ``S3`` = the verb), so the events of a video that share those attributes become one multi-moment search
query. Videos draw their values from small per-video pools so that attributes repeat. Files follow the
project's data contracts: canonical JSONL, feature containers ``[rows, 1, D]``, and
``data/benchmarks/<dataset>/<level>/{search,caption}.jsonl`` + ``splits.json``.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from pipeline.datasets.schema import Moment, VideoRecord, write_records
from pipeline.core.io import write_json
from pipeline.features.container import write_container

DATASET = "toy_captions"


def build_world(root: Path, n_train: int = 24, n_test: int = 12, rows: int = 24, dim: int = 16,
                vocab: tuple[int, ...] = (3, 3), pools: tuple[int, ...] | None = None, events: tuple[int, int] = (2, 4),
                levels: dict[str, tuple[int, ...]] | None = None, noise: float = 0.3, signal: float = 1.0,
                seed: int = 0, train_split: str = "train", eval_split: str = "test") -> Path:
    """Write the world under ``root`` (repo-root layout: data/canonical, data/features, data/benchmarks).

    ``vocab[a]`` = number of values of attribute ``a`` (attribute 0 plays the verb); ``pools[a]`` = values of
    attribute ``a`` one video draws from (default: all); ``levels`` maps a level name to the attributes its
    search queries keep (default ``{"S1": (0,)}``); ``signal`` scales the event embeddings.
    """
    levels = levels or {"S1": (0,)}
    pools = pools or vocab
    rng = np.random.default_rng(seed)
    emb = [rng.normal(size=(n, dim)) for n in vocab]
    step = 2.0
    canon: list[VideoRecord] = []
    video_items: dict[str, list] = {train_split: [], eval_split: []}
    text_items: dict[str, list] = {train_split: [], eval_split: []}
    search_text = {lvl: {train_split: [], eval_split: []} for lvl in levels}
    search_recs: dict[str, list] = {lvl: [] for lvl in levels}
    splits = {lvl: {"search": {"single": [], "multi": []}, "caption": {"single": [], "multi": []}} for lvl in levels}
    for split, n in ((train_split, n_train), (eval_split, n_test)):
        for v in range(n):
            vid = f"{split}_v{v}"
            feats = rng.normal(scale=noise, size=(rows, dim))
            pool = [rng.choice(vocab[a], size=pools[a], replace=False) for a in range(len(vocab))]
            kinds = [tuple(int(x) for x in k) for k in itertools.product(*pool)]
            order = rng.permutation(len(kinds))[: int(rng.integers(events[0], events[1] + 1))]
            moments, values, free = [], {}, np.ones(rows, bool)
            for k, idx in enumerate(order):
                kind = kinds[idx]
                length = int(rng.integers(2, 5))
                starts = [s for s in range(rows - length) if free[s : s + length].all()]
                if not starts:
                    continue
                s = int(rng.choice(starts))
                free[max(0, s - 1) : s + length + 1] = False  # keep a row of background between events
                feats[s : s + length] += signal * sum(emb[a][x] for a, x in enumerate(kind))
                mid = f"{vid}_m{k}"
                values[mid] = kind
                moments.append(Moment(moment_id=mid, start=s * step, end=(s + length) * step,
                                      text=" ".join(f"a{a}v{x}" for a, x in enumerate(kind)), query_id=mid))
                tokens = np.stack([emb[a][x] for a, x in enumerate(kind)] + [np.ones(dim)])
                text_items[split].append((mid, tokens[:, None, :]))
            rec = VideoRecord(video_id=vid, dataset=DATASET, split=split, duration=rows * step, moments=moments)
            canon.append(rec)
            video_items[split].append((vid, feats[:, None, :]))
            for lvl, keep in levels.items():
                groups: dict[tuple, list[Moment]] = {}
                for m in moments:
                    groups.setdefault(tuple(values[m.moment_id][a] for a in keep), []).append(m)
                s_moments = []
                for key, ms in groups.items():
                    qid = f"{vid}_{lvl}_" + "_".join(map(str, key))
                    part = "multi" if len(ms) > 1 else "single"
                    splits[lvl]["search"][part].append(qid)
                    splits[lvl]["caption"][part].extend(m.query_id for m in ms)
                    tokens = np.stack([emb[a][x] for a, x in zip(keep, key)] + [np.ones(dim)])
                    search_text[lvl][split].append((qid, tokens[:, None, :]))
                    s_moments += [Moment(moment_id=m.moment_id, start=m.start, end=m.end,
                                         text=" ".join(f"a{a}v{x}" for a, x in zip(keep, key)), query_id=qid)
                                  for m in ms]
                search_recs[lvl].append(VideoRecord(video_id=vid, dataset=DATASET, split=split,
                                                    duration=rec.duration, moments=s_moments))
    data = root / "data"
    write_records(data / "canonical" / f"{DATASET}.jsonl", canon)
    meta = {"backbone": "toy", "dim": dim, "layers": [1], "time_step": step, "window": step, "pooling": "none"}
    for split in (train_split, eval_split):
        write_container(data / "features" / DATASET / "toy" / split, video_items[split], meta)
        write_container(data / "features" / "text" / DATASET / split, text_items[split], {"layers": [1]})
        for lvl in levels:
            write_container(data / "features" / "text_search" / DATASET / lvl / split, search_text[lvl][split],
                            {"layers": [1]})
    for lvl in levels:
        bdir = data / "benchmarks" / DATASET / lvl
        write_records(bdir / "search.jsonl", search_recs[lvl])
        write_records(bdir / "caption.jsonl", canon)
        write_json(bdir / "splits.json", splits[lvl])
    return root


def oracle_video_features(records, text, time_step: float, window: float, dim: int = 64, seed: int = 0,
                          text_layer: int = -1, noise: float = 0.05, rows_of=None) -> list:
    """ORACLE video features: ``[(vid, [rows, 1, dim])]`` in which every row encodes the ground truth.

    Row t (covering ``[t·time_step, t·time_step + window]``) is the sum, over the moments of its video, of the
    fraction of the row the moment covers times a fixed random projection of the mean token feature of that
    moment's caption (``text``: the caption text container, item = the moment's ``query_id``), plus Gaussian
    ``noise``. A retriever that reads these rows has everything it needs, so what it fails to localise is the
    model's or the training's fault, not the features'. ``rows_of(vid)`` gives the row count (e.g. from the
    real container, to keep its layout); by default ``ceil(duration / time_step)``.
    """
    import math

    rng = np.random.default_rng(seed)
    proj = None
    out = []
    for rec in records:
        n = rows_of(rec.video_id) if rows_of else max(1, math.ceil(rec.duration / time_step))
        start = np.arange(n) * time_step
        end = start + window
        feats = rng.normal(scale=noise, size=(n, dim))
        for m in rec.moments:
            if m.query_id is None or m.query_id not in text:
                continue
            tok = np.asarray(text[m.query_id][:, text_layer], dtype=np.float64).mean(0)
            if proj is None:
                proj = np.random.default_rng(seed + 1).normal(size=(len(tok), dim)) / math.sqrt(len(tok))
            e = tok @ proj
            e = e / max(np.linalg.norm(e), 1e-6)
            cover = np.clip(np.minimum(end, m.end) - np.maximum(start, m.start), 0, None) / window
            feats += cover[:, None] * e[None, :]
        out.append((rec.video_id, feats[:, None, :].astype(np.float32)))
    return out
