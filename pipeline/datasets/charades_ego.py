"""Charades-Ego → canonical TAL records with verb labels, third-person vs egocentric as the domain (SADA).

Files (Charades format; names are options, relative to the dataset root):

* one CSV per split (``CharadesEgo_v1_train.csv``, ``CharadesEgo_v1_test.csv``) with the columns ``id``
  (video), ``subject``, ``scene``, ``actions`` (``cNNN start end`` triples in seconds, ``;``-separated),
  ``length`` (seconds), ``egocentric`` (``Yes``/``No``) and optionally ``charades_video`` (the paired video);
* the class list ``CharadesEgo_v1_classes.txt`` (``cNNN description``), the verb mapping
  ``CharadesEgo_v1_mapping.txt`` (``cNNN oNNN vNNN``) and the verb list ``CharadesEgo_v1_verbclasses.txt``
  (``vNNN verb``).

Decisions (thesis §2.4.2): each action is labelled with the verb of its class ("holding some clothes" → hold);
only the ``top_k_verbs`` most frequent verbs of ``count_split`` are kept (or exactly ``keep_verbs``),
``label_id`` = rank. ``domain`` = ``ego_domain`` for egocentric videos, ``third_domain`` otherwise, so the
thesis scenario is source ``third_person`` → target ``ego``. Charades has no validation split: the default
maps the test CSV to ``val``. Videos left with no kept action are not written (counted in ``info``).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.datasets.badrows import BadRowReport
from pipeline.datasets.common import parse_seconds, read_csv, select_verbs, video_path
from pipeline.datasets.schema import Moment, VideoRecord
from pipeline.core.io import InputError


@dataclass(frozen=True)
class Options:
    """``datasets.sources.<name>.options`` of a ``charades_ego`` source."""

    splits: dict[str, str] = field(
        default_factory=lambda: {"train": "CharadesEgo_v1_train.csv", "val": "CharadesEgo_v1_test.csv"}
    )
    classes: str = "CharadesEgo_v1_classes.txt"
    mapping: str = "CharadesEgo_v1_mapping.txt"
    verb_classes: str = "CharadesEgo_v1_verbclasses.txt"
    top_k_verbs: int | None = 10
    keep_verbs: list[str] | None = None  # explicit verbs to keep, in label order (overrides top_k_verbs)
    count_split: str = "train"
    ego_domain: str = "ego"
    third_domain: str = "third_person"
    video_pattern: str | None = None  # e.g. "videos/{video_id}.mp4"


def _read_id_lines(path: Path, n_fields: int) -> dict[str, list[str]]:
    """Whitespace-separated ``id field...`` lines (the last field may contain spaces when n_fields == 2)."""
    if not path.exists():
        raise InputError(f"{path}: file not found")
    out = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(None, n_fields - 1) if n_fields == 2 else line.split()
        if len(parts) != n_fields:
            raise InputError(f"{path}: line {lineno}: expected {n_fields} fields, got {line!r}")
        out[parts[0]] = parts[1:]
    return out


def _action_verbs(root: Path, opts: Options) -> dict[str, str]:
    """cNNN → verb name, through the class list, the mapping and the verb list."""
    classes = _read_id_lines(root / opts.classes, 2)
    mapping = _read_id_lines(root / opts.mapping, 3)
    verbs = {k: v[0] for k, v in _read_id_lines(root / opts.verb_classes, 2).items()}
    out = {}
    for cid in classes:
        if cid not in mapping:
            raise InputError(f"{root / opts.mapping}: class {cid} has no verb mapping")
        vid = mapping[cid][1]
        if vid not in verbs:
            raise InputError(f"{root / opts.mapping}: class {cid} maps to unknown verb {vid}")
        out[cid] = verbs[vid]
    return out


def load(root: Path, options: Options, policy: str = "clip", dataset: str = "charades_ego"
         ) -> tuple[list[VideoRecord], BadRowReport]:
    """Read the configured Charades-Ego splits into one record per (split, video)."""
    root = Path(root)
    report = BadRowReport(policy, root)
    action_verb = _action_verbs(root, options)

    videos = []  # (split, row, [(moment_id, start, end, verb)])
    for split, fname in options.splits.items():
        for line, row in read_csv(root / fname, ("id", "actions", "length", "egocentric")):
            where = f"line {line}"
            vid = row["id"].strip()
            items = [a for a in (row["actions"] or "").split(";") if a.strip()]
            report.read(len(items))
            try:
                duration = parse_seconds(row["length"])
            except (ValueError, TypeError):
                if items:
                    report.flag("unknown_video", fname, where, f"length {row['length']!r} of {vid} is not a number",
                                moments=len(items))
                continue
            acts = []
            for i, item in enumerate(items):
                at = f"{where} action {i}"
                parts = item.split()
                if len(parts) != 3:
                    report.flag("malformed_row", fname, at, f"expected 'cNNN start end', got {item.strip()!r}")
                    continue
                try:
                    start, end = parse_seconds(parts[1]), parse_seconds(parts[2])
                except ValueError:
                    report.flag("malformed_timestamp", fname, at, f"times of {item.strip()!r} are not numbers")
                    continue
                if parts[0] not in action_verb:
                    report.flag("unknown_class", fname, at, f"class {parts[0]} not in {options.classes}")
                    continue
                window = report.window(start, end, duration, fname, at)
                if window is not None:
                    acts.append((f"{vid}/{i}", window[0], window[1], action_verb[parts[0]]))
            videos.append((split, row, duration, acts))

    kept = select_verbs(options.keep_verbs, action_verb.values(),
                        lambda: Counter(a[3] for s, _, _, acts in videos if s == options.count_split for a in acts),
                        options.top_k_verbs, options.count_split, options.splits, root, root / options.verb_classes)
    label_id = {v: i for i, v in enumerate(kept)}
    report.info["classes"] = kept

    records, empty = [], 0
    for split, row, duration, acts in videos:
        moments = []
        for mid, start, end, verb in acts:
            if verb not in label_id:
                report.filtered("verb_not_kept")
                continue
            moments.append(Moment(moment_id=mid, start=start, end=end, label=verb, label_id=label_id[verb]))
        if not moments:
            empty += 1
            continue
        vid = row["id"].strip()
        ego = (row["egocentric"] or "").strip().lower() in ("yes", "true", "1")
        records.append(VideoRecord(
            video_id=vid, dataset=dataset, split=split, duration=duration,
            domain=options.ego_domain if ego else options.third_domain,
            participant=(row.get("subject") or "").strip() or None,
            video_path=video_path(root, options.video_pattern, video_id=vid),
            moments=sorted(moments, key=lambda m: (m.start, m.end, m.moment_id)),
            extra={"scene": (row.get("scene") or "").strip() or None,
                   "paired_video": (row.get("charades_video") or "").strip() or None},
        ))
    report.info["videos_without_kept_moments"] = empty
    return records, report
