"""Similarity grouping (thesis §3.5.2.2): per video, queries whose sentence embeddings have cosine ≥ threshold
are linked; groups are the connected components of that graph, found by depth-first search.

Grouping is transitive: a—b and b—c put a and c together even when cos(a, c) < threshold. Components come
out in the order of their first member, members in input order, so results are deterministic.
``group_rows`` applies this to the validated rows of one level (embedding them with ``querygen.encoder``).
"""
from __future__ import annotations

import networkx as nx
import numpy as np

from pipeline.querygen.encoder import encode


def similarity_graph(emb: np.ndarray, threshold: float) -> nx.Graph:
    """Graph over row indices of unit-norm ``emb`` with an edge where cosine ≥ ``threshold``."""
    n = len(emb)
    g = nx.Graph()
    g.add_nodes_from(range(n))
    if n > 1:
        sims = emb @ emb.T
        # tiny tolerance: identical texts must link even when float rounding gives 0.99999994 vs 1.0
        ii, jj = np.nonzero(np.triu(sims >= threshold - 1e-6, k=1))
        g.add_edges_from(zip(ii.tolist(), jj.tolist()))
    return g


def dfs_components(g: nx.Graph) -> list[list[int]]:
    """Connected components by iterative DFS from each unvisited node in ascending order."""
    seen: set[int] = set()
    groups = []
    for start in sorted(g.nodes):
        if start in seen:
            continue
        comp = list(nx.dfs_preorder_nodes(g, source=start))
        seen.update(comp)
        groups.append(sorted(comp))
    return groups


def group_indices(emb: np.ndarray, threshold: float) -> list[list[int]]:
    """Groups (lists of row indices) of one video's query embeddings."""
    return dfs_components(similarity_graph(emb, threshold))


def group_rows(rows: list[dict], threshold: float, model: str = "embedded", device: str = "cpu",
               batch_size: int = 64) -> dict[str, list[list[str]]]:
    """``{video_id: [[qid, ...], ...]}`` over the rows whose ``query`` is not null: per video, the queries are
    embedded with the sentence encoder ``model`` and grouped by ``group_indices``."""
    kept = [r for r in rows if r.get("query") is not None]
    emb = encode([r["query"] for r in kept], model=model, device=device, batch_size=batch_size)
    by_video: dict[str, list[int]] = {}
    for i, r in enumerate(kept):
        by_video.setdefault(r["video_id"], []).append(i)
    out = {}
    for vid in sorted(by_video):
        idx = by_video[vid]
        out[vid] = [[kept[idx[j]]["qid"] for j in comp] for comp in group_indices(emb[idx], threshold)]
    return out
