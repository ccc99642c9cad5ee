"""Rehearsal shapes from a real dataset's annotation files (``rehearsal.py --annotations ROOT``).

The rehearsal generates feature containers; by default their counts and lengths are the thesis' numbers written
in ``rehearsal.SHAPES``. Given the folder of the real annotation files, this module reads them with the project's
own adapter (the ``datasets.sources.<name>`` entry of ``profiles/real.yaml``, its root replaced) and takes from
the canonical records what the rehearsal needs:

* ``train_items``: train queries (distinct ``query_id``; a moment without one is its own query) for the VMR
  methods, train videos for SADA (whose item is a source/target video pair: an upper bound per epoch);
* ``val_videos`` and ``val_queries_per_video`` (queries, or labelled segments for TAL) of the val split;
* ``rows``: the 10th–90th percentile of the train videos' length in feature rows (duration / ``time_step``),
  the range the generated videos are drawn from; shapes with ``fixed_rows`` (search VMR's 500-row windows) keep
  their own;
* ``queries_per_video``: mean train queries (segments) per video.

The generated video count stays a subsample (``--videos``); the per-item dims stay the real backbone's.
"""
from __future__ import annotations

import dataclasses
import math
from collections import Counter
from pathlib import Path

import numpy as np

from pipeline.core.params import ConfigError, load_block
from pipeline.datasets.ingest import adapter_for
from pipeline.datasets.params import DatasetsConfig
from pipeline.datasets.schema import VideoRecord

def read_records(params: Path, name: str, root: Path, split_files: dict[str, str] | None = None,
                 ) -> list[VideoRecord]:
    """The canonical records of source ``name`` read from ``root`` with the adapter and options of ``params``
    (``split_files`` replaces the options' ``splits`` mapping, e.g. when only some files are at hand)."""
    datasets = load_block(DatasetsConfig, params)
    if name not in datasets.sources:
        raise ConfigError(f"{params}: datasets.sources.{name} missing (needed to read {root})")
    source = datasets.sources[name]
    if split_files:
        options = dict(source.options)
        options["splits"] = dict(split_files)
        source = dataclasses.replace(source, options=options)
    module, options = adapter_for(name, source)
    if not Path(root).is_dir():
        raise FileNotFoundError(f"{root}: annotation folder of {name} not found")
    records, _ = module.load(Path(root), options, datasets.policy, name)
    return [r for r in records if r.moments]


def _queries(rec: VideoRecord) -> int:
    return len({m.query_id or m.moment_id for m in rec.moments})


def shapes_from_records(base, records: list[VideoRecord], source: str):
    """``base`` (a ``rehearsal.Shapes``) with its counts and lengths taken from ``records`` (see the module doc);
    also returns notes saying where each number came from."""
    by_split = Counter(r.split for r in records)
    train = [r for r in records if r.split == "train"]
    val = [r for r in records if r.split == "val"]
    if not train and not val:
        raise ValueError(f"{source}: no train or val video with a moment (splits found: {dict(by_split)})")
    tal = base.items_are == "videos"  # TAL: an item is a video, a val "query" a labelled segment
    per_video = (lambda r: len(r.moments)) if tal else _queries
    changes: dict = {}
    notes = [f"counts from {source}: " + ", ".join(f"{k} {v} videos" for k, v in sorted(by_split.items()))]
    if train:
        changes["train_items"] = len(train) if tal else sum(map(_queries, train))
        changes["train_items_note"] = (f"{'train videos' if tal else 'train queries'} read from {source}"
                                       + (" (upper bound: an epoch = max(source, target) videos)" if tal else ""))
        changes["queries_per_video"] = max(1, round(float(np.mean([per_video(r) for r in train]))))
        if not base.fixed_rows:
            rows = np.array([math.ceil(r.duration / base.time_step) for r in train])
            lo, hi = (int(x) for x in np.percentile(rows, [10, 90]))
            changes["rows"] = (max(1, lo), max(1, lo, hi))
            notes.append(f"video rows: 10th-90th percentile of {len(train)} train durations / {base.time_step:.3g} s")
    if val:
        changes["val_videos"] = len(val)
        changes["val_queries_per_video"] = max(1, round(float(np.mean([per_video(r) for r in val]))))
        changes["val_items_note"] = (f"val read from {source}: {len(val)} videos, "
                                     f"{sum(map(per_video, val))} {'segments' if tal else 'queries'}")
    return dataclasses.replace(base, **changes), notes
