"""Standalone evaluation CLI over the public file formats (no training code, no torch).

    python -m pipeline.evaluate tal          --ground-truth anet.json  --predictions preds.csv  [--subset validation]
    python -m pipeline.evaluate qvhighlights --ground-truth val.jsonl  --predictions sub.jsonl
    python -m pipeline.evaluate grounding    --ground-truth gt.jsonl   --predictions preds.jsonl [--iou 0.3 0.5 0.7]
    python -m pipeline.evaluate search       --ground-truth gt.jsonl   --predictions preds.jsonl [--splits splits.json
                                             --splits-key search] [--active-threshold 0.5]

Inputs:
  * ``tal``: ground truth = ActivityNet-style ``{"database": {vid: {"subset", "annotations": [{"segment",
    "label_id"}]}}}``; predictions = CSV with header ``video-id,t-start,t-end,label,score``, JSON (a list of
    such rows, a dict of columns, or an ActivityNet submission ``{"results": {vid: [{"segment", "label",
    "score"}]}}``) or JSONL rows.
  * ``qvhighlights``: moment_detr's JSONL ground truth (with the highlight fields ``duration``,
    ``relevant_clip_ids``, ``saliency_scores``: moment-only ground truth belongs to ``grounding``) and
    submission (without ``pred_saliency_scores`` only MR is scored, with a warning).
  * ``grounding`` / ``search``: JSONL (or a JSON list) with ``qid``, ``relevant_windows`` (GT) and ``qid``,
    ``pred_relevant_windows`` (predictions).

The result JSON is printed to stdout and, with ``--out``, written atomically. Bad input exits with status 2
and one line ``error: <file>: row N (qid ..): <problem>`` on stderr (a CSV names the line, an ActivityNet
JSON the video and annotation; a file that is not UTF-8 text names the file); metric warnings go to stderr too.
Times must be non-negative numbers (``true``/``false`` are not numbers), and GT windows need end > start.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

from pipeline.core.cli import run_main
from pipeline.core.io import InputError, _finite, read_json, read_jsonl, write_json
from pipeline.metrics import (
    GROUNDING_THRESHOLDS,
    SEARCH_THRESHOLDS,
    TAL_THRESHOLDS,
    MetricsWarning,
    grounding_eval,
    load_anet_ground_truth,
    qvhighlights_eval,
    search_eval,
    tal_map,
)
from pipeline.metrics.tal import PRED_FIELDS


# ----------------------------------------------------------------------------- file readers


def decoded(path: str, read: Callable[[str], Any]) -> Any:
    """``read(path)``, reporting a file that is not UTF-8 text (a binary, a wrong file) as bad input naming it."""
    try:
        return read(path)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not UTF-8 text (undecodable byte at offset {exc.start}); expected a JSON, JSONL or CSV file"
        ) from None
    except csv.Error as exc:  # e.g. NUL bytes in a binary file read as CSV
        raise InputError(f"{path}: not a readable CSV file ({exc})") from None


def read_rows(path: str) -> list[Any]:
    """JSONL rows, or the list inside a ``.json`` file."""
    if Path(path).suffix.lower() == ".json":
        data = decoded(path, read_json)
        if not isinstance(data, list):
            raise InputError(f"{path}: expected a JSON list of rows")
        return data
    return decoded(path, read_jsonl)


def _int_label(value: Any, where: str) -> Any:
    """Labels of integer GT classes read from text files arrive as strings: convert, or say where not."""
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise InputError(f"{where}: label {value!r} is not an integer class id") from None
    return value


def read_tal_predictions(path: str, int_labels: bool) -> list[dict]:
    """Prediction rows ``{video-id, t-start, t-end, label, score}`` from CSV, JSON or JSONL."""
    return decoded(path, lambda p: _read_tal_predictions(p, int_labels))


def _read_tal_predictions(path: str, int_labels: bool) -> list[dict]:
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        if not Path(path).exists():
            raise InputError(f"{path}: file not found")
        # utf-8-sig: spreadsheet programs save CSV with a byte-order mark, which would spoil the first column name
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = [f for f in PRED_FIELDS if f not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"{path}: header lacks column(s) {missing} (need {list(PRED_FIELDS)})")
            rows = []
            for lineno, rec in enumerate(reader, start=2):
                row: dict[str, Any] = {"video-id": rec["video-id"], "label": rec["label"]}
                for f in ("t-start", "t-end", "score"):
                    try:
                        row[f] = float(rec[f])
                    except (TypeError, ValueError):
                        raise InputError(f"{path}: line {lineno}: '{f}' must be a number, got {rec[f]!r}") from None
                    if not math.isfinite(row[f]):
                        raise InputError(f"{path}: line {lineno}: '{f}' is NaN or infinite")
                # checked here too (tal_map checks again) so that the message gives the CSV line, not a row index
                if row["t-start"] < 0:
                    raise InputError(f"{path}: line {lineno}: 't-start' is negative ({rec['t-start']})")
                if row["t-start"] > row["t-end"]:
                    raise InputError(f"{path}: line {lineno}: 't-start' {rec['t-start']} > 't-end' {rec['t-end']}")
                if int_labels:
                    row["label"] = _int_label(row["label"], f"{path}: line {lineno}")
                rows.append(row)
            return rows
    if suffix == ".json":
        data = read_json(path)  # decoding errors: see decoded()
        if isinstance(data, dict) and isinstance(data.get("results"), dict):
            rows = []
            for vid, dets in data["results"].items():
                for j, det in enumerate(dets if isinstance(dets, list) else [None]):
                    seg = det.get("segment") if isinstance(det, dict) else None
                    if not isinstance(seg, list) or len(seg) != 2 or "label" not in det or "score" not in det:
                        raise InputError(
                            f"{path}: results[{vid!r}][{j}]: expected {{'segment': [s, e], 'label', 'score'}}"
                        )
                    rows.append(
                        {
                            "video-id": vid,
                            "t-start": seg[0],
                            "t-end": seg[1],
                            "label": det["label"],
                            "score": det["score"],
                        }
                    )
        elif isinstance(data, (list, dict)):
            rows = data
        else:
            raise InputError(f"{path}: expected a list of rows, a dict of columns or an ActivityNet 'results' dict")
    elif suffix == ".jsonl":
        rows = read_jsonl(path)
    else:
        raise InputError(f"{path}: unknown predictions format {suffix!r} (use .csv, .json or .jsonl)")
    if int_labels and isinstance(rows, list):
        rows = [
            {**r, "label": _int_label(r["label"], f"{path}: row {i + 1}")}
            if isinstance(r, dict) and "label" in r
            else r
            for i, r in enumerate(rows)
        ]
    return rows


def read_splits(path: str, key: str | None) -> dict[str, list]:
    """``{"single": [...], "multi": [...]}`` from a splits file, picking ``key`` in a nested one."""
    data = decoded(path, read_json)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object of qid lists")
    if key is not None:
        if key not in data:
            raise InputError(f"{path}: no key {key!r} (keys: {sorted(data)})")
        data = data[key]
    elif any(isinstance(v, dict) for v in data.values()):
        raise InputError(f"{path}: nested splits file: choose one with --splits-key (one of {sorted(data)})")
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise InputError(f"{path}: expected {{split name: [qids]}}")
    return data


# ----------------------------------------------------------------------------- commands


def _thresholds(values: Sequence[float] | None, default: Sequence[float]) -> Sequence[float]:
    if values is None:
        return default
    bad = [v for v in values if not (0 <= v <= 1)]
    if bad:
        raise InputError(f"--iou values must lie in [0, 1], got {bad}")
    return values


def run_tal(args: argparse.Namespace) -> dict:
    gt_json = decoded(args.ground_truth, read_json)
    gt = load_anet_ground_truth(gt_json, args.subset, args.label_field, src=args.ground_truth)
    int_labels = bool(gt) and all(isinstance(r["label"], int) and not isinstance(r["label"], bool) for r in gt)
    preds = read_tal_predictions(args.predictions, int_labels)
    result = tal_map(
        gt,
        preds,
        _thresholds(args.iou, TAL_THRESHOLDS),
        ground_truth_name=args.ground_truth,
        predictions_name=args.predictions,
    )
    n_short = result["dropped"]["gt_short"]
    if n_short:  # the reference's clean-up, kept for equal numbers, but said aloud
        warnings.warn(
            f"{args.ground_truth}: {n_short} ground-truth segment(s) shorter than 0.001 s (zero-length included) "
            "dropped, as ActionFormer's evaluator does",
            MetricsWarning,
        )
    return result


# moment_detr's highlight-detection GT keys: without them a QVHighlights evaluation is moment retrieval only
HD_GT_KEYS = ("duration", "relevant_clip_ids", "saliency_scores")


def run_qvhighlights(args: argparse.Namespace) -> dict:
    if args.iou is not None:
        raise InputError("qvhighlights uses the reference's fixed thresholds; --iou does not apply")
    gt = read_rows(args.ground_truth)
    # A moment-only (grounding-format) GT would silently yield MR numbers without any HL score; the
    # qvhighlights task promises both, so such a file is refused and pointed at the task that fits it.
    for i, row in enumerate(gt):
        missing = [k for k in HD_GT_KEYS if isinstance(row, dict) and k not in row]
        if missing:
            qid = f" (qid {row['qid']!r})" if "qid" in row else ""
            raise InputError(
                f"{args.ground_truth}: row {i + 1}{qid}: highlight (saliency) field(s) {missing} missing: "
                "the qvhighlights task needs moment_detr's full ground truth; evaluate moment-only ground "
                "truth with the grounding or search task"
            )
    sub = read_rows(args.predictions)
    if sub and not any(isinstance(r, dict) and "pred_saliency_scores" in r for r in sub):
        warnings.warn(
            f"{args.predictions}: no row has 'pred_saliency_scores': highlight scores (HL-*) are not computed",
            MetricsWarning,
        )
    return qvhighlights_eval(sub, gt, submission_name=args.predictions, ground_truth_name=args.ground_truth)


def run_grounding(args: argparse.Namespace) -> dict:
    return grounding_eval(
        read_rows(args.ground_truth),
        read_rows(args.predictions),
        _thresholds(args.iou, GROUNDING_THRESHOLDS),
        args.top_k,
        ground_truth_name=args.ground_truth,
        predictions_name=args.predictions,
    )


def run_search(args: argparse.Namespace) -> dict:
    splits = read_splits(args.splits, args.splits_key) if args.splits else None
    return search_eval(
        read_rows(args.ground_truth),
        read_rows(args.predictions),
        _thresholds(args.iou, SEARCH_THRESHOLDS),
        splits,
        args.active_threshold,
        max_windows=None if args.max_windows == 0 else args.max_windows,
        active_iou=args.active_iou,
        ground_truth_name=args.ground_truth,
        predictions_name=args.predictions,
    )


COMMANDS: dict[str, Callable[[argparse.Namespace], dict]] = {
    "tal": run_tal,
    "qvhighlights": run_qvhighlights,
    "grounding": run_grounding,
    "search": run_search,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline.evaluate", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    helps = {
        "tal": "TAL mAP@tIoU (ActionFormer ANETdetection)",
        "qvhighlights": "QVHighlights MR + HD (moment_detr eval_submission)",
        "grounding": "R1@IoU and mIoU (Charades-STA / TACoS)",
        "search": "R_m, mAP_m, mAP for multi-moment search queries",
    }
    for name, text in helps.items():
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--ground-truth", required=True, help="ground-truth file")
        p.add_argument("--predictions", required=True, help="predictions file")
        p.add_argument("--iou", type=float, nargs="+", help="IoU thresholds (not for qvhighlights)")
        p.add_argument("--out", help="also write the result JSON here (atomically)")
        p.add_argument("--debug", action="store_true", help="show the traceback of unexpected failures")
        if name == "tal":
            p.add_argument("--subset", help="keep GT videos of this subset (e.g. validation); default all")
            p.add_argument("--label-field", default="label_id", help="annotation key of the class (default label_id)")
        if name == "grounding":
            p.add_argument("--top-k", type=int, nargs="+", default=[1], help="k of R{k}@IoU (default 1)")
        if name == "search":
            p.add_argument("--splits", help="splits JSON ({name: [qids]} or nested, see --splits-key)")
            p.add_argument("--splits-key", help="entry of a nested splits file, e.g. search or caption")
            p.add_argument("--active-threshold", type=float, help="score of an active decoder query")
            p.add_argument("--active-iou", type=float, default=0.1, help="IoU of %%match P / %%match GT (0.1)")
            p.add_argument("--max-windows", type=int, default=10, help="windows kept per query, 0 = all (10)")
    return parser


def run_command(args: argparse.Namespace) -> int:
    """Run the evaluation ``args`` ask for: warnings to stderr, the result JSON to stdout (and ``--out``)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MetricsWarning)
        result = COMMANDS[args.command](args)
    for w in caught:
        if issubclass(w.category, MetricsWarning):
            print(f"warning: {w.message}", file=sys.stderr)
    if args.out:
        write_json(args.out, result)
    print(json.dumps(_finite(result), indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one evaluation; returns the exit status (0 ok, 2 bad input, 1 unexpected failure)."""
    args = build_parser().parse_args(argv)
    try:
        return run_main(lambda: run_command(args))
    except Exception as exc:  # the CLI never shows a bare traceback unless asked to
        if args.debug:
            raise
        print(
            f"error: unexpected failure ({type(exc).__name__}: {exc}); rerun with --debug for the traceback",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
