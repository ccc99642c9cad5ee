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
maps the test CSV to ``val``. Videos left with no kept action are not written (named in ``videos_lost``).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.datasets.badrows import TOLERANCE, BadRowReport
from pipeline.datasets.common import parse_seconds, read_csv, select_verbs, text_lines, video_path
from pipeline.datasets.schema import Moment, VideoRecord
from pipeline.core.io import InputError
from pipeline.core.params import PositiveInt


@dataclass(frozen=True)
class Options:
    """``datasets.sources.<name>.options`` of a ``charades_ego`` source."""

    splits: dict[str, str] = field(
        default_factory=lambda: {"train": "CharadesEgo_v1_train.csv", "val": "CharadesEgo_v1_test.csv"}
    )
    classes: str = "CharadesEgo_v1_classes.txt"
    mapping: str = "CharadesEgo_v1_mapping.txt"
    verb_classes: str = "CharadesEgo_v1_verbclasses.txt"
    top_k_verbs: PositiveInt | None = 10
    keep_verbs: list[str] | None = None  # explicit verbs to keep, in label order (overrides top_k_verbs)
    count_split: str = "train"
    ego_domain: str = "ego"
    third_domain: str = "third_person"
    video_pattern: str | None = None  # e.g. "videos/{video_id}.mp4"


def _read_id_lines(path: Path, n_fields: int) -> dict[str, list[str]]:
    """Whitespace-separated ``id field...`` lines (the last field may contain spaces when n_fields == 2)."""
    out = {}
    for lineno, line in text_lines(path):
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


def load(root: Path, options: Options, policy: str = "clip", dataset: str = "charades_ego",
         tolerance: float = TOLERANCE) -> tuple[list[VideoRecord], BadRowReport]:
    """Read the configured Charades-Ego splits into one record per (split, video)."""
    root = Path(root)
    report = BadRowReport(policy, root, tolerance)
    action_verb = _action_verbs(root, options)

    videos = []  # (split, row, duration, [(moment_id, start, end, verb)])
    no_actions = 0
    for split, fname in options.splits.items():
        report.begin_split(split, fname)

        def short_row(line: int, detail: str, fname: str = fname) -> None:
            report.flag("malformed_row", fname, f"line {line}", detail, moments=0)

        for line, row in read_csv(root / fname, ("id", "actions", "length", "egocentric"), bad=short_row):
            where = f"line {line}"
            vid = row["id"].strip()
            items = [a for a in (row["actions"] or "").split(";") if a.strip()]
            report.read(len(items))
            if not items:
                no_actions += 1  # Charades has videos without any action: nothing to lose
                continue
            if not vid:
                report.flag("malformed_row", fname, where, "empty id", moments=len(items))
                continue
            try:
                duration = parse_seconds(row["length"])
            except (ValueError, TypeError):
                report.flag("unknown_video", fname, where, f"length {row['length']!r} of {vid} is not a number",
                            moments=len(items))
                report.video_lost(f"{split}/{vid}", "all_moments_dropped")
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

    records = []
    for split, row, duration, acts in videos:
        moments = []
        for mid, start, end, verb in acts:
            if verb not in label_id:
                report.filtered("verb_not_kept")
                continue
            moments.append(Moment(moment_id=mid, start=start, end=end, label=verb, label_id=label_id[verb]))
        vid = row["id"].strip()
        if not moments:
            report.video_lost(f"{split}/{vid}", "all_moments_filtered" if acts else "all_moments_dropped")
            continue
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
    report.info["videos_without_actions"] = no_actions
    return records, report
