"""Stage ``probe_features_<backbone>@<dataset>``: are the extracted video features informative?

    python -m pipeline.features.probes --dataset synth_tal --backbone slowfast \
        --canonical data/canonical/synth_tal.jsonl --features data/features/synth_tal/slowfast \
        --text-features data/features/text --out reports/metrics/probes/synth_tal-slowfast.json

Linear probes are fitted on the ``features.probes.train_split`` videos and scored on the held-out
``eval_split`` videos, for two arms on the SAME videos (``features.probes.max_videos`` per split, evenly spaced
over the sorted video ids; 0 = all):

* ``pretrained``: the extracted container ``<features>/<split>.{npy,json}`` (whatever
  ``features.<backbone>.checkpoint`` it was extracted with; ``pretrained_is_random: true`` in the output when
  the container meta says it was extracted without a checkpoint);
* ``random_init``: the same architecture with the checkpoint set to None (seeded by ``runtime.seed``),
  extracted here from the videos with ``pipeline.features.extract.extract_shard``.

Row ``i`` of a video covers ``[i·time_step, i·time_step + window]`` (container meta); its *centre* decides
its targets. Metrics per arm, on the last stored layer (``per_layer`` repeats verb/event per stored layer):

* ``verb_acc``: multinomial logistic regression (standardised features) on rows whose centre lies inside
  exactly one event that has a verb; ``majority_verb_acc`` = the majority verb of the training rows scored on
  the held-out rows. A moment's verb is its canonical ``label``; only when a moment has no label but a caption
  ``text`` is the verb read from the caption: the one verb of the synthetic world's closed vocabulary
  (``pipeline.synth.vocab.VERBS``: third-person form, e.g. "fades in", or generic phrase) whose words occur
  in the caption; captions naming zero or several verbs leave the moment without a verb (its rows are skipped).
* ``event_acc``: event (centre inside ≥ 1 moment) vs idle rows; ``majority_event_acc``.
* ``domain_acc`` / ``majority_domain_acc``: ``{scenario: acc}`` for every ``datasets.scenarios`` entry defined
  on this dataset: rows of source-domain vs target-domain videos (videos matching both selectors are left out).
* ``retrieval_r1`` / ``retrieval_r5`` when the records have query texts and ``<text-features>/<dataset>/<split>``
  exists: a ridge map from a query's mean-pooled text token features (last stored text layer) to the mean of
  the video rows inside the query's moment (standardised with the training moments' statistics), fitted on
  the training moments. On the held-out split every query ranks ALL held-out moments (of every video) by
  cosine to its predicted vector; R@k = share of queries with one of their own moments in the top k. Chance
  level is about k / (held-out moments); ``retrieval_candidates`` records that number.

A probe whose training rows hold a single class predicts that class; a metric whose rows are missing on
either split is left out (and listed under ``skipped`` with the reason).
"""
from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from pipeline.core.cli import stage_main
from pipeline.core.params import RuntimeConfig, load_block
from pipeline.datasets.params import DatasetsConfig
from pipeline.datasets.params import DatasetScenario
from pipeline.features.params import FeaturesConfig, ProbesConfig
from pipeline.datasets.scenarios import matches
from pipeline.datasets.schema import Moment, VideoRecord, read_records
from pipeline.core.io import InputError, write_json
from pipeline.features.container import FeatureContainer

# ---------------------------------------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def _contains(words: Sequence[str], phrase: Sequence[str]) -> bool:
    n = len(phrase)
    return any(list(words[i : i + n]) == list(phrase) for i in range(len(words) - n + 1))


def caption_verb(text: str) -> str | None:
    """The verb key of the synthetic world's vocabulary that ``text`` names, or None (zero or several).

    A verb is named when the words of its third-person form ("fades in") or generic phrase ("something fades
    in") occur consecutively in the caption.
    """
    from pipeline.synth.vocab import VERBS

    words = _words(text)
    found = {v.key for v in VERBS
             if _contains(words, _words(v.third_person)) or _contains(words, _words(v.generic))}
    return found.pop() if len(found) == 1 else None


def moment_verb(m: Moment) -> str | None:
    """The canonical ``label`` of a moment; if it has none, the verb its caption names (``caption_verb``)."""
    if m.label is not None:
        return m.label
    if m.text:
        return caption_verb(m.text)
    return None


def row_centres(n_rows: int, time_step: float, window: float) -> np.ndarray:
    """Centre time (s) of each of ``n_rows`` feature rows: row i spans [i·step, i·step + window]."""
    return np.arange(n_rows) * float(time_step) + float(window) / 2.0


def row_targets(rec: VideoRecord, n_rows: int, time_step: float, window: float
                ) -> tuple[np.ndarray, list[str | None]]:
    """(event flag per row, verb per row): a row is an event row when its centre lies in ≥ 1 moment
    ([start, end)); its verb is set only when the centre lies in exactly one moment and that moment has a verb."""
    centres = row_centres(n_rows, time_step, window)
    inside = np.zeros((n_rows, len(rec.moments)), dtype=bool)
    for j, m in enumerate(rec.moments):
        inside[:, j] = (centres >= m.start) & (centres < m.end)
    count = inside.sum(axis=1)
    verbs: list[str | None] = [None] * n_rows
    labels = [moment_verb(m) for m in rec.moments]
    for i in np.flatnonzero(count == 1):
        verbs[i] = labels[int(np.flatnonzero(inside[i])[0])]
    return count > 0, verbs


# ---------------------------------------------------------------------------------------------------------
# Probes
# ---------------------------------------------------------------------------------------------------------


def majority_accuracy(y_train: Sequence, y_eval: Sequence) -> float:
    """Accuracy on ``y_eval`` of always predicting the most frequent training label (ties: smallest label)."""
    values, counts = np.unique(np.asarray(y_train), return_counts=True)
    top = values[np.argmax(counts)]
    return float(np.mean(np.asarray(y_eval) == top))


def probe_accuracy(x_train: np.ndarray, y_train: Sequence, x_eval: np.ndarray, y_eval: Sequence,
                   C: float = 1.0, max_iter: int = 500, seed: int = 0) -> float:
    """Held-out accuracy of a logistic regression on standardised features (scaler fitted on train).

    A single training class is predicted everywhere (what any classifier fitted on it would do).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    y_train, y_eval = np.asarray(y_train), np.asarray(y_eval)
    if len(np.unique(y_train)) < 2:
        return float(np.mean(y_eval == y_train[0]))
    scaler = StandardScaler().fit(x_train.astype(np.float64))
    clf = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():  # an unconverged probe still gives a valid (lower-bound) accuracy
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(scaler.transform(x_train.astype(np.float64)), y_train)
    pred = clf.predict(scaler.transform(x_eval.astype(np.float64)))
    return float(np.mean(pred == y_eval))


def retrieval_recall(text_train: np.ndarray, video_train: np.ndarray, text_eval: np.ndarray,
                     cand_eval: np.ndarray, positives: Sequence[Sequence[int]], alpha: float = 1.0,
                     ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """R@k of text → video retrieval through a ridge map fitted on (text_train → video_train) pairs.

    ``text_eval[q]`` is ranked against every row of ``cand_eval`` by cosine of its predicted video vector;
    ``positives[q]`` lists the candidate indices that answer query q. Text and video are standardised with
    training statistics (the video side so that the features' common offset does not dominate the cosine).
    """
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    ts = StandardScaler().fit(text_train.astype(np.float64))
    vs = StandardScaler().fit(video_train.astype(np.float64))
    ridge = Ridge(alpha=alpha).fit(ts.transform(text_train.astype(np.float64)),
                                   vs.transform(video_train.astype(np.float64)))
    pred = ridge.predict(ts.transform(text_eval.astype(np.float64)))
    cand = vs.transform(cand_eval.astype(np.float64))
    pred /= np.linalg.norm(pred, axis=1, keepdims=True) + 1e-12
    cand /= np.linalg.norm(cand, axis=1, keepdims=True) + 1e-12
    sims = pred @ cand.T
    order = np.argsort(-sims, axis=1, kind="stable")
    out = {}
    for k in ks:
        top = order[:, :k]
        out[k] = float(np.mean([bool(set(top[q].tolist()) & set(positives[q])) for q in range(len(positives))]))
    return out


# ---------------------------------------------------------------------------------------------------------
# Data assembly
# ---------------------------------------------------------------------------------------------------------


def pick_videos(records: list[VideoRecord], split: str, max_videos: int) -> list[VideoRecord]:
    """The ``split`` records sorted by id; ``max_videos`` > 0 keeps that many, evenly spaced over the list."""
    recs = sorted((r for r in records if r.split == split), key=lambda r: r.video_id)
    if max_videos <= 0 or len(recs) <= max_videos:
        return recs
    idx = np.unique(np.linspace(0, len(recs) - 1, max_videos).round().astype(int))
    return [recs[i] for i in idx]


@dataclasses.dataclass
class SplitRows:
    """All rows of one split's chosen videos: features [rows, L, D] and per-row targets."""

    x: np.ndarray
    video: np.ndarray  # index into ``records``
    event: np.ndarray
    verb: list[str | None]
    records: list[VideoRecord]
    spans: dict[str, tuple[int, int]]  # video_id → (offset, length) into x


def gather_rows(container: FeatureContainer, records: list[VideoRecord]) -> SplitRows:
    """Stack the rows of ``records`` from ``container`` (videos missing from it are skipped)."""
    step, window = container.meta.get("time_step"), container.meta.get("window")
    if step is None or window is None:
        raise InputError(f"{container.prefix}: container meta lacks time_step/window")
    xs, vids, events, verbs, kept, spans, offset = [], [], [], [], [], {}, 0
    for rec in records:
        if rec.video_id not in container:
            continue
        feats = np.asarray(container[rec.video_id], dtype=np.float32)
        if feats.ndim == 2:
            feats = feats[:, None, :]
        ev, vb = row_targets(rec, len(feats), step, window)
        xs.append(feats)
        vids.append(np.full(len(feats), len(kept)))
        events.append(ev)
        verbs.extend(vb)
        spans[rec.video_id] = (offset, len(feats))
        offset += len(feats)
        kept.append(rec)
    if not xs:
        raise InputError(f"{container.prefix}: none of the {len(records)} chosen videos has features")
    return SplitRows(np.concatenate(xs), np.concatenate(vids), np.concatenate(events), verbs, kept, spans)


def _moment_vectors(rows: SplitRows, layer: int, step: float, window: float
                    ) -> tuple[list[str], np.ndarray]:
    """(query id per moment, mean video row of each moment with a query id at ``layer``).

    A moment shorter than a row's spacing contains no row centre; it takes the row nearest its centre.
    """
    qids, vecs = [], []
    for rec in rows.records:
        off, n = rows.spans[rec.video_id]
        centres = row_centres(n, step, window)
        for m in rec.moments:
            if m.query_id is None:
                continue
            inside = np.flatnonzero((centres >= m.start) & (centres < m.end))
            if inside.size == 0:
                inside = np.array([int(np.argmin(np.abs(centres - (m.start + m.end) / 2)))])
            vecs.append(rows.x[off + inside, layer].mean(axis=0))
            qids.append(m.query_id)
    return qids, np.asarray(vecs, dtype=np.float32).reshape(len(vecs), -1)


def _text_vectors(text: FeatureContainer, qids: Sequence[str]) -> np.ndarray:
    missing = [q for q in qids if q not in text]
    if missing:
        raise InputError(f"{text.prefix}: no text features for {len(missing)} queries (e.g. {missing[0]!r})")
    return np.stack([np.asarray(text[q], dtype=np.float32)[:, -1].mean(axis=0) if np.ndim(text[q]) == 3
                     else np.asarray(text[q], dtype=np.float32).mean(axis=0) for q in qids])


def probe_arm(train: SplitRows, held: SplitRows, step: float, window: float, probes: ProbesConfig,
              scenarios: Mapping[str, DatasetScenario], text: tuple[FeatureContainer, FeatureContainer] | None,
              layer_ids: Sequence[int], seed: int = 0) -> tuple[dict, dict]:
    """Every metric of one arm (see the module docstring) and {metric: reason} for the ones left out."""
    out: dict = {}
    skipped: dict = {}
    fit = lambda xt, yt, xe, ye: probe_accuracy(xt, yt, xe, ye, probes.C, probes.max_iter, seed)  # noqa: E731

    def verb_event(layer: int) -> dict:
        res = {}
        vt = np.array([v is not None for v in train.verb])
        ve = np.array([v is not None for v in held.verb])
        if vt.any() and ve.any():
            yt = np.array([v for v in train.verb if v is not None])
            ye = np.array([v for v in held.verb if v is not None])
            res["verb_acc"] = fit(train.x[vt, layer], yt, held.x[ve, layer], ye)
            res["majority_verb_acc"] = majority_accuracy(yt, ye)
        else:
            skipped["verb_acc"] = "no row centre lies inside exactly one event with a verb on one of the splits"
        res["event_acc"] = fit(train.x[:, layer], train.event, held.x[:, layer], held.event)
        res["majority_event_acc"] = majority_accuracy(train.event, held.event)
        res["verb_rows"] = {"train": int(vt.sum()), "eval": int(ve.sum())}
        res["event_rows"] = {"train": int(train.event.sum()), "eval": int(held.event.sum()),
                             "idle_train": int((~train.event).sum()), "idle_eval": int((~held.event).sum())}
        return res

    last = train.x.shape[1] - 1
    out.update(verb_event(last))
    if train.x.shape[1] > 1:
        out["per_layer"] = {str(layer_ids[i]): {k: v for k, v in verb_event(i).items() if k.endswith("_acc")}
                            for i in range(train.x.shape[1])}

    domain, majority = {}, {}
    for name, sc in sorted(scenarios.items()):
        def labels(rows: SplitRows) -> np.ndarray:
            lab = np.full(len(rows.records), -1)
            for i, rec in enumerate(rows.records):
                src, tgt = matches(rec, sc.source), matches(rec, sc.target)
                if src != tgt:
                    lab[i] = 0 if src else 1
            return lab[rows.video]
        lt, le = labels(train), labels(held)
        mt, me = lt >= 0, le >= 0
        if len(np.unique(lt[mt])) < 2 or not me.any():
            skipped[f"domain_acc.{name}"] = "source and target videos not both present in train and eval rows"
            continue
        domain[name] = fit(train.x[mt, last], lt[mt], held.x[me, last], le[me])
        majority[name] = majority_accuracy(lt[mt], le[me])
    if domain:
        out["domain_acc"], out["majority_domain_acc"] = domain, majority

    if text is not None:
        q_train, v_train = _moment_vectors(train, last, step, window)
        q_held, v_held = _moment_vectors(held, last, step, window)
        if q_train and q_held:
            uniq = list(dict.fromkeys(q_held))
            positives = [[i for i, q in enumerate(q_held) if q == u] for u in uniq]
            rec = retrieval_recall(_text_vectors(text[0], q_train), v_train, _text_vectors(text[1], uniq),
                                   v_held, positives, probes.ridge_alpha)
            out["retrieval_r1"], out["retrieval_r5"] = rec[1], rec[5]
            out["retrieval_queries"] = len(uniq)
            out["retrieval_candidates"] = len(q_held)
        else:
            skipped["retrieval"] = "no moments with a query id on one of the splits"
    return out, skipped


# ---------------------------------------------------------------------------------------------------------
# The stage
# ---------------------------------------------------------------------------------------------------------


def random_init_config(features: FeaturesConfig, backbone: str) -> FeaturesConfig:
    """``features`` with backbone ``backbone``'s checkpoint set to None (CLIP: ``model.checkpoint``)."""
    cfg = features.backbone(backbone)
    if hasattr(cfg, "checkpoint"):
        cfg = dataclasses.replace(cfg, checkpoint=None)
    elif hasattr(cfg, "model"):
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, checkpoint=None))
    return dataclasses.replace(features, **{backbone: cfg})


def extract_random_init(records: list[VideoRecord], dataset: str, backbone: str, features: FeaturesConfig,
                        runtime: RuntimeConfig, work: Path, root: Path = Path("."), progress: bool = True
                        ) -> tuple[Path, dict]:
    """Extract ``records`` with the random-init backbone into ``work``; (container dir, extraction report)."""
    from pipeline.features.extract import extract_shard

    out = work / "random_init"
    # a sample of the videos, and gather_rows tolerates gaps: the stage-level skip limit does not apply here
    report = extract_shard(records, backbone, random_init_config(features, backbone), runtime, out,
                           work / "random_init_work", dataset, root=root, progress=progress,
                           enforce_skip_limit=False)
    return out, report


def run_probes(dataset: str, backbone: str, canonical: Path, features_dir: Path, text_root: Path | None,
               features: FeaturesConfig, runtime: RuntimeConfig, scenarios: Mapping[str, DatasetScenario],
               root: Path = Path("."), progress: bool = True,
               random_init: Callable[[list[VideoRecord], Path], Path] | None = None) -> dict:
    """Probe both arms of (``dataset``, ``backbone``) and return the metrics dict the stage writes.

    ``random_init(records, workdir) -> container dir`` overrides how the random-init arm is extracted (tests);
    by default ``extract_random_init`` with ``features`` and ``runtime``.
    """
    t0 = time.perf_counter()
    probes = features.probes
    records = read_records(canonical)
    chosen = {s: pick_videos(records, s, probes.max_videos) for s in (probes.train_split, probes.eval_split)}
    for split, recs in chosen.items():
        if not recs:
            raise InputError(f"{canonical}: no videos in split {split!r} (features.probes.*_split)")
    own = {n: sc for n, sc in scenarios.items() if sc.dataset == dataset}
    pre = {s: FeatureContainer(features_dir / s) for s in chosen}
    meta = pre[probes.train_split].meta
    step, window = float(meta["time_step"]), float(meta["window"])
    layer_ids = [int(x) for x in meta.get("layers", [1])]

    text = None
    has_text = any(m.query_id is not None and m.text for r in records for m in r.moments)
    if has_text and text_root is not None and (text_root / dataset).is_dir():
        text = (FeatureContainer(text_root / dataset / probes.train_split),
                FeatureContainer(text_root / dataset / probes.eval_split))

    result: dict = {"dataset": dataset, "backbone": backbone, "checkpoint": meta.get("checkpoint"),
                    "pretrained_is_random": meta.get("checkpoint") is None,
                    "train_split": probes.train_split, "eval_split": probes.eval_split,
                    "layers": layer_ids, "scenarios": sorted(own)}
    skipped_all: dict = {}
    arms = {"pretrained": pre}
    with tempfile.TemporaryDirectory(prefix=f"probe-{dataset}-{backbone}-") as tmp:
        subset = [r for s in chosen for r in chosen[s]]
        if random_init is not None:
            rand_dir = random_init(subset, Path(tmp))
        else:
            rand_dir, rep = extract_random_init(subset, dataset, backbone, features, runtime, Path(tmp), root,
                                                progress)
            if rep["skipped"]:
                result["random_init_skipped_videos"] = rep["skipped"]
        arms["random_init"] = {s: FeatureContainer(rand_dir / s) for s in chosen}
        videos = {}
        for arm, conts in arms.items():
            train = gather_rows(conts[probes.train_split], chosen[probes.train_split])
            held = gather_rows(conts[probes.eval_split], chosen[probes.eval_split])
            videos[arm] = {"train": len(train.records), "eval": len(held.records),
                           "train_rows": int(len(train.x)), "eval_rows": int(len(held.x))}
            result[arm], skipped = probe_arm(train, held, step, window, probes, own, text, layer_ids,
                                             runtime.seed)
            if skipped:
                skipped_all[arm] = skipped
    result["videos"] = {"available": {s: sum(r.split == s for r in records) for s in chosen}, **videos}
    if skipped_all:
        result["skipped"] = skipped_all
    result["seconds"] = round(time.perf_counter() - t0, 2)
    return result


@stage_main(ValueError)
def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring); bad params or input → exit code 2."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--backbone", required=True)
    parser.add_argument("--canonical", required=True, help="data/canonical/<dataset>.jsonl")
    parser.add_argument("--features", required=True, help="data/features/<dataset>/<backbone>")
    parser.add_argument("--text-features", default=None, help="data/features/text (retrieval when <dataset>/ exists)")
    parser.add_argument("--out", required=True, help="reports/metrics/probes/<dataset>-<backbone>.json")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    features = load_block(FeaturesConfig, args.params)
    runtime = load_block(RuntimeConfig, args.params)
    datasets = load_block(DatasetsConfig, args.params)
    features.backbone(args.backbone)
    result = run_probes(args.dataset, args.backbone, Path(args.canonical), Path(args.features),
                        Path(args.text_features) if args.text_features else None, features, runtime,
                        datasets.scenarios)
    write_json(args.out, result)
    summary = ", ".join(f"{arm}: " + " ".join(f"{k}={result[arm][k]:.3f}" for k in ("verb_acc", "event_acc",
                        "retrieval_r1") if k in result[arm]) for arm in ("pretrained", "random_init"))
    print(f"{args.dataset}/{args.backbone} probes ({result['seconds']} s): {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
