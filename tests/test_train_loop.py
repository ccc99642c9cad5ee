"""The generic training loop: learning, frozen params, checkpoints that rebuild, resume, EMA, DDP (gloo)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from pipeline.core.params import TrainConfig
from pipeline.core.checkpoints import load_model
from pipeline.core.training import GlobalBatchSampler, DistInfo, fit, lr_factor

sys.path.insert(0, str(Path(__file__).parent))
from _train_toy import ToyConfig, ToyRegressor, collate, toy_data  # noqa: E402

CFG = TrainConfig(epochs=4, batch_size=16, lr=1e-2, schedule="cosine", warmup_iters=2, grad_clip=1.0)


def _model():
    torch.manual_seed(0)
    return ToyRegressor(ToyConfig())


def test_fit_learns_and_checkpoint_rebuilds(tmp_path):
    model = _model()
    frozen_before = model.frozen.weight.clone()
    res = fit(model, toy_data(), collate, CFG, tmp_path, progress=False)
    assert res.history[-1]["train/mse"] < res.history[0]["train/mse"]
    assert torch.equal(model.frozen.weight, frozen_before) and model.frozen.weight.grad is None
    rebuilt, ckpt = load_model(res.checkpoint)
    assert ckpt["train_config"]["lr"] == CFG.lr and ckpt["model_config"] == {"dim": 4, "hidden": 16}
    for a, b in zip(rebuilt.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)
    assert (tmp_path / "live" / "plots" / "metrics" / "train" / "loss.tsv").exists()


def test_resume_equals_uninterrupted(tmp_path):
    full = fit(_model(), toy_data(), collate, CFG, tmp_path / "a", progress=False)
    part = fit(_model(), toy_data(), collate, CFG, tmp_path / "b", progress=False, stop_after_epochs=2)
    assert not part.finished and part.checkpoint is None
    rest = fit(_model(), toy_data(), collate, CFG, tmp_path / "b", progress=False)
    assert [h["epoch"] for h in rest.history] == [1, 2, 3, 4]
    for a, b in zip(full.model.state_dict().values(), rest.model.state_dict().values()):
        assert torch.equal(a, b)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_resume_from_a_work_dir_after_the_outputs_were_deleted_gives_the_same_bytes(tmp_path, capsys):
    """``dvc repro`` deletes a stage's outputs before rerunning it: the resume state lives in ``work_dir``, and
    the rerun writes the uninterrupted run's bytes (model.pt and every curve file; no wall-clock values)."""
    import shutil

    cfg = TrainConfig(epochs=4, batch_size=16, lr=1e-2, schedule="cosine", warmup_iters=2, ema_decay=0.9)
    fit(_model(), toy_data(), collate, cfg, tmp_path / "clean", progress=False, work_dir=tmp_path / "w_clean")
    part = fit(_model(), toy_data(), collate, cfg, tmp_path / "out", progress=False, work_dir=tmp_path / "w",
               stop_after_epochs=2)
    assert not part.finished and not (tmp_path / "out" / "last.pt").exists()  # state is outside the outputs
    shutil.rmtree(tmp_path / "out")  # as DVC does before it reruns the stage
    capsys.readouterr()
    rest = fit(_model(), toy_data(), collate, cfg, tmp_path / "out", work_dir=tmp_path / "w")
    log = capsys.readouterr().out
    assert f"[train] resuming {tmp_path / 'w' / 'last.pt'} after epoch 2" in log
    assert "epoch 3/4" in log and "epoch 1/4" not in log and " s)" in log  # timings go to the log only
    assert [h["epoch"] for h in rest.history] == [1, 2, 3, 4]
    clean, resumed = _tree(tmp_path / "clean"), _tree(tmp_path / "out")
    assert "model.pt" in clean and "live/plots/metrics/train/loss.tsv" in clean
    assert clean.keys() == resumed.keys() and all(clean[k] == resumed[k] for k in clean), \
        [k for k in clean if clean[k] != resumed.get(k)]
    assert "epoch_seconds" not in str(torch.load(tmp_path / "out" / "model.pt", weights_only=True)["history"])


def test_work_dir_keys_and_cleanup(tmp_path):
    """A work folder is git-ignored, keyed by what the run reads (params, input files, code); opening one
    removes the states of other keys and a killed writer's temp files; removing it leaves nothing."""
    from pipeline.core.work import WorkDir, default_work_root, open_work, run_key

    data = tmp_path / "in.jsonl"
    data.write_text("a\n")
    key = run_key("pipeline.sdst.train", {"lr": 1}, [data])
    assert key == run_key("pipeline.sdst.train", {"lr": 1}, [data])
    assert key != run_key("pipeline.sdst.train", {"lr": 2}, [data])
    assert key != run_key("pipeline.sada.train", {"lr": 1}, [data])  # other code
    data.write_text("ab\n")
    assert key != run_key("pipeline.sdst.train", {"lr": 1}, [data])  # other input bytes
    root = default_work_root(tmp_path / "models" / "sdst")
    assert root == tmp_path / "models" / "_work" / "sdst"
    old = WorkDir(root, "old")
    (old.sub("seed_0") / ".last.pt.x.pt.tmp").write_bytes(b"")
    assert (WorkDir(root, "old").dir / "seed_0").exists() and not list(root.rglob("*.tmp"))
    new = open_work(root, "pipeline.sdst.train", {"lr": 1}, [data])
    assert (root / ".gitignore").read_text() == "*\n" and not old.dir.exists() and new.dir.exists()
    new.remove()
    assert not root.parent.exists()


def test_ema_weights_go_to_final_checkpoint(tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=16, lr=1e-2, ema_decay=0.9)
    res = fit(_model(), toy_data(), collate, cfg, tmp_path, progress=False)
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    final = torch.load(res.checkpoint, weights_only=True)
    assert torch.equal(final["state_dict"]["net.0.weight"], last["ema"]["net.0.weight"])
    assert not torch.equal(final["state_dict"]["net.0.weight"], last["state_dict"]["net.0.weight"])


def test_schedules_and_sampler_shares():
    step = TrainConfig(epochs=4, batch_size=2, lr=1.0, schedule="step", step_epochs=2, step_gamma=0.1,
                       warmup_iters=10, warmup_ratio=0.0)
    assert lr_factor(0, step, 10) == 0.0 and lr_factor(5, step, 10) == pytest.approx(0.5)
    assert lr_factor(19, step, 10) == 1.0 and lr_factor(20, step, 10) == pytest.approx(0.1)
    one = GlobalBatchSampler(10, 4, 0, DistInfo())
    two = [GlobalBatchSampler(10, 4, 0, DistInfo(rank=r, world_size=2)) for r in range(2)]
    for g, a, b in zip(one, *two):
        assert sorted(set(a) | set(b)) == sorted(g) and len(a) == len(b)


def test_ema_decay_warms_up_so_the_initial_weights_do_not_linger():
    """Hand-computed: decay_n = min(0.99, (1 + n) / (10 + n)); a net moved from 0 to 1 after init."""
    import torch
    from torch import nn

    from pipeline.core.training import EMA

    net = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.zero_()
    ema = EMA(net, 0.99)
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema.update(net)  # decay 1/10 → 0.1 * 0 + 0.9 * 1
    assert abs(float(ema.state_dict()["weight"]) - 0.9) < 1e-6
    ema.update(net)  # decay 2/11 → 0.9 * 2/11 + 9/11
    assert abs(float(ema.state_dict()["weight"]) - (0.9 * 2 / 11 + 9 / 11)) < 1e-6
    for _ in range(118):
        ema.update(net)
    # with a constant 0.99 the initial 0 would still weigh 0.99^120 ≈ 0.30 here
    assert float(ema.state_dict()["weight"]) > 0.999
    assert abs(ema.current_decay() - 121 / 130) < 1e-12  # still warming up; reaches 0.99 after 890 updates
