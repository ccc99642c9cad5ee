"""Grouping on hand-made embeddings: cosine graph + DFS connected components."""
import numpy as np
import pytest

from pipeline.querygen.grouping import dfs_components, group_indices, similarity_graph


def unit(*angles_deg):
    """2-D unit vectors at the given angles (cosine between two = cos of the angle difference)."""
    a = np.deg2rad(np.array(angles_deg, dtype=float))
    return np.stack([np.cos(a), np.sin(a)], axis=1).astype(np.float32)


def test_transitive_chain_merges():
    # 0-1 and 1-2 are 20° apart (cos 0.94 ≥ 0.9), 0-2 are 40° apart (cos 0.77 < 0.9): one group via 1
    emb = unit(0, 20, 40, 120)
    assert group_indices(emb, 0.9) == [[0, 1, 2], [3]]


def test_threshold_edge_is_inclusive():
    emb = unit(0, 60)  # cosine exactly 0.5
    assert group_indices(emb, 0.5) == [[0, 1]]
    assert group_indices(emb, 0.5 + 1e-3) == [[0], [1]]


def test_identical_texts_always_link_and_singletons_stay():
    emb = unit(10, 10, 200)
    assert group_indices(emb, 1.0) == [[0, 1], [2]]
    assert group_indices(unit(0), 0.85) == [[0]]


def test_components_are_deterministic_and_partition():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(30, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    groups = group_indices(emb, 0.3)
    flat = sorted(i for g in groups for i in g)
    assert flat == list(range(30))
    assert groups == sorted(groups, key=lambda g: g[0])
    g = similarity_graph(emb, 0.3)
    assert dfs_components(g) == groups
    # every edge stays inside one group
    where = {i: k for k, grp in enumerate(groups) for i in grp}
    assert all(where[u] == where[v] for u, v in g.edges)


@pytest.mark.parametrize("threshold", [0.0, 0.85, 1.0])
def test_empty_input(threshold):
    assert group_indices(np.zeros((0, 4), np.float32), threshold) == []
