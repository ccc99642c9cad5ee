"""Scores of the generated queries against an oracle (the synthetic world's ``oracle/``), per level.

* rewrite accuracy — ``exact``: the normalised rewrite (lowercase, words only) equals the oracle text;
  ``token_f1``: word-level F1 between them (SQuAD style); ``partial``: share with ``token_f1 ≥ 0.5``.
* grouping — adjusted Rand index between predicted and oracle groups over all moments (labels are
  ``video:group``), and its mean over videos with at least two moments.

Oracle items are matched to canonical query ids by (video id, caption index); the index is the last
``/``-separated part of the query id (the ANC adapter's ``<split>/<video>/<index>``) and the caption texts are
checked to agree, so a mismatch between oracle and data is an error rather than a silent misalignment.
"""
from __future__ import annotations

import re
from collections import Counter

import numpy as np
from sklearn.metrics import adjusted_rand_score

from pipeline.core.io import InputError


def norm_words(text: str) -> list[str]:
    """Lowercase word tokens (punctuation dropped)."""
    return re.findall(r"[a-z0-9]+", text.lower())


def token_f1(pred: str, gold: str) -> float:
    """Word-overlap F1 of two texts (1.0 when both are empty)."""
    p, g = norm_words(pred), norm_words(gold)
    if not p and not g:
        return 1.0
    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    prec, rec = common / len(p), common / len(g)
    return 2 * prec * rec / (prec + rec)


def rewrite_scores(pairs: list[tuple[str, str]]) -> dict[str, float]:
    """Exact / partial match and mean token F1 of (prediction, oracle) pairs."""
    if not pairs:
        return {"n": 0, "exact": 0.0, "partial": 0.0, "token_f1": 0.0}
    f1 = np.array([token_f1(p, g) for p, g in pairs])
    exact = np.array([norm_words(p) == norm_words(g) for p, g in pairs], dtype=float)
    return {"n": len(pairs), "exact": float(exact.mean()), "partial": float((f1 >= 0.5).mean()),
            "token_f1": float(f1.mean())}


def caption_index(qid: str) -> int:
    """Caption index encoded at the end of a canonical query id (``<split>/<video>/<index>``)."""
    tail = qid.rsplit("/", 1)[-1]
    if not tail.isdigit():
        raise InputError(f"query id {qid!r} does not end in a caption index; cannot align it with the oracle")
    return int(tail)


def align(items: list[dict], oracle: dict) -> list[tuple[dict, dict]]:
    """Pair rows ``{qid, video_id, caption, ...}`` with their oracle entries ``{index, caption, S1, ...}``."""
    out = []
    for row in items:
        entries = oracle.get(row["video_id"])
        if entries is None:
            raise InputError(f"oracle: no entry for video {row['video_id']!r}")
        idx = caption_index(row["qid"])
        by_index = {e["index"]: e for e in entries}
        if idx not in by_index:
            raise InputError(f"oracle: video {row['video_id']!r} has no caption index {idx}")
        entry = by_index[idx]
        if norm_words(entry["caption"]) != norm_words(row["caption"]):
            raise InputError(f"oracle: caption of {row['qid']!r} differs: {row['caption']!r} vs {entry['caption']!r}")
        out.append((row, entry))
    return out


def grouping_scores(pred: dict[str, list[list[str]]], gold: dict[str, list[list[str]]]) -> dict[str, float]:
    """ARI between two groupings ``{video: [[qid, ...], ...]}`` over the qids both contain."""
    def labels(groups: dict[str, list[list[str]]]) -> dict[str, str]:
        return {q: f"{v}:{i}" for v, gs in groups.items() for i, g in enumerate(gs) for q in g}

    lp, lg = labels(pred), labels(gold)
    common = sorted(set(lp) & set(lg))
    if not common:
        return {"n": 0, "ari": 0.0, "ari_per_video_mean": 0.0}
    per_video = []
    for vid in sorted(gold):
        qs = [q for q in common if q in lg and lg[q].rsplit(":", 1)[0] == vid]
        if len(qs) >= 2:
            per_video.append(adjusted_rand_score([lg[q] for q in qs], [lp[q] for q in qs]))
    return {"n": len(common), "ari": float(adjusted_rand_score([lg[q] for q in common], [lp[q] for q in common])),
            "ari_per_video_mean": float(np.mean(per_video)) if per_video else 0.0}
