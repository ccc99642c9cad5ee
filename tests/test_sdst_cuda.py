"""SDST through the generic loop on CUDA (bf16 autocast) — skipped where no GPU is present."""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _sdst_fixture import make_fixture  # noqa: E402

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fit_and_predict_on_cuda(tmp_path, precision):
    from models.sdst import SDST
    from models.sdst_config import SDSTConfig, SDSTModelConfig
    from pipeline.core.params import TrainConfig
    from pipeline.sdst.data import SDSTDataset, collate, select_layers
    from pipeline.core.checkpoints import load_model
    from pipeline.core.training import fit, move_to_device

    paths = make_fixture(tmp_path, n_train=12, n_val=4)
    choice = select_layers([3, 4, 5, 6], [1, 2, 3, 4], 4, [], False, "shallow_to_deep", "fixture")
    ds = SDSTDataset(paths["canonical"], "train", paths["video"], paths["text"], choice, 2.0, True)
    model = SDST(SDSTConfig(ds.video_dim, ds.text_dim, 8, choice.video, choice.text,
                            SDSTModelConfig(hidden=64, heads=4, roi_size=4)))
    cfg = TrainConfig(epochs=8, batch_size=8, lr=1e-3, schedule="cosine", warmup_iters=2, grad_clip=1.0,
                      ema_decay=0.99)
    res = fit(model, ds, functools.partial(collate, min_len=5), cfg, tmp_path / "run", device="cuda",
              precision=precision, progress=False)
    losses = [h["train/loss"] for h in res.history]
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
    rebuilt, _ = load_model(res.checkpoint, "cuda")
    rows = rebuilt.predict(move_to_device(collate([ds[i] for i in range(4)]), torch.device("cuda")))
    assert len(rows) == 4 and len(rows[0]["pred_relevant_windows"]) == 8
