"""benchmarks/querygen_scale.py without the LLM: the ANC-shaped input, the sample, the profile projection."""
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import querygen_scale as qs  # noqa: E402


def test_synthetic_input_has_anc_train_shape():
    items = qs.synthetic_captions(37421, 10009)
    words = np.array([len(it["caption"].split()) for it in items])
    assert len(items) == 37421 and len({it["video_id"] for it in items}) == 10009
    assert len({it["qid"] for it in items}) == len(items)
    assert abs(words.mean() - 13.16) < 1.0 and 4 <= words.min()  # thesis Tab 3.1: 13.16 ± 6.1 words


def test_sample_is_evenly_spaced_and_bounded():
    items = [{"i": i} for i in range(100)]
    got = qs.sample_items(items, 5)
    assert [g["i"] for g in got] == [0, 25, 50, 74, 99]
    assert qs.sample_items(items[:3], 5) == items[:3]


def test_real_profile_projection_counts_calls():
    per_call = {k: {"seconds_per_call": 1.0, "max_new_tokens": m} for k, m in
                [("rewrite", 24), ("validate", 3), ("aggregate", 24)]}
    got = qs.profile_projection(REPO_ROOT / "profiles/real.yaml", REPO_ROOT / "params.yaml", per_call, 37421)
    rows = {(r["dataset"], r["level"]): r for r in got["datasets"]}
    assert set(rows) == {("hdepic", "S1"), ("hdepic", "S2"), ("hdepic", "S3")}  # real profile: HD-EPIC × 3 levels
    s1 = rows[("hdepic", "S1")]
    assert s1["calls"] == {"rewrite": 59454, "validate": 59454, "aggregate": 8560}
    assert s1["hours"] == pytest.approx((59454 * 2 + 8560) / 3600, abs=0.01)
    assert got["backend_in_profile"].startswith("vllm:")
