"""benchmarks/gpu_check.py: its CPU dry run goes through the same functions as the GPU run and writes the table."""
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_check  # noqa: E402


def test_dry_run_writes_every_row(tmp_path, capsys):
    out = tmp_path / "gpu_check.json"
    # SADA's builder is the rehearsal's (tests/test_rehearsal.py runs it); kept out here for time
    assert gpu_check.main(["--dry-run", "--iters", "1", "--methods", "sdst", "search_vmr", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = {(r["component"], r["precision"]): r for r in result["rows"]}
    assert set(rows) == {(c, p) for c in ("internvideo2_1b extract", "sdst train", "search_vmr train")
                         for p in ("fp32", "bf16")}
    for r in rows.values():
        assert r["it_per_s"] > 0 and r["peak_memory_gb"] > 0
        assert r["samples_per_s"] == pytest.approx(r["it_per_s"] * r["batch"])
    assert result["dry_run"] and result["device"] == "cpu"
    # the extraction row ran the tiny tower: both configured layers, pooled to clip_embed_dim
    assert rows[("internvideo2_1b extract", "fp32")]["output_shape"] == [2, 2, gpu_check.TINY_IV2["clip_embed_dim"]]
    printed = capsys.readouterr().out
    assert "DRY RUN" in printed and "sdst train" in printed


def test_real_iv2_config_is_the_official_1b_tower(tmp_path):
    cfg, batch = gpu_check.iv2_config(gpu_check.rehearsal.real_params(tmp_path), dry_run=False)
    from models.backbones.internvideo2 import IV2_1B

    assert (cfg.arch.embed_dim, cfg.arch.depth, cfg.arch.num_heads) == (IV2_1B["embed_dim"], IV2_1B["depth"],
                                                                      IV2_1B["num_heads"])
    assert (cfg.recipe.size, cfg.recipe.frames, list(cfg.layers)) == (224, 4, [36, 37, 38, 39, 40])
    assert cfg.checkpoint is None and batch > 2


def test_unknown_precision_fails_before_work():
    with pytest.raises(ValueError, match="unknown precision"):
        gpu_check.run("cpu", True, 1, ["fp8"], ["sdst"])
