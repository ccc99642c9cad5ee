"""Stage ``pretrain@<backbone>``: pretrain an embedded video backbone on the synthetic corpus (DESIGN §4a).

    python -m pipeline.features.pretrain --backbone slowfast --out data/pretrained/slowfast \
        --work data/pretrained/_work/slowfast --metrics reports/metrics/pretrain/slowfast.json \
        --live reports/plots/pretrain/slowfast

Real backbones are pretrained (Kinetics / EPIC for SlowFast and I3D, video–text stage 2 for InternVideo2); the
embedded ones are pretrained here, on clips of ``pipeline/synth/corpus.py`` (own seed, disjoint from every
downstream video, sampled and resized exactly as extraction decodes them):

* ``slowfast`` / ``i3d`` — supervised clip classification (the Kinetics/EPIC analogue): one linear classifier
  on the pooled pre-classifier feature with the heads listed in ``heads`` (``verb`` of the covering event or
  ``idle``, always; optionally ``shape``, ``colour`` and ``size`` of its actor, ignored on idle clips), summed
  cross-entropies. Writes the pytorchvideo format:
  ``<out>/<backbone>.pyth`` = ``{"model_state": state_dict, "heads": {head: classes}, "step": n}`` with the hub's
  key names; the classifier is ``blocks.<last>.proj`` (outputs = the concatenated heads).
* ``internvideo2`` — video–text contrastive learning (the stage-2 analogue): the vision tower, its
  ``clip_projector`` (which also pools the intermediate layers extraction stores) and ``vision_proj`` against
  the frozen embedded MiniLM text tower (the one downstream text features use) through a trainable
  ``text_proj``; the temperature ``temp`` is learnt. Captions are the full captions of the events covering
  the clip. Idle clips are kept, paired with one fixed idle caption: downstream needs "nothing happens"
  separated from events (event-vs-idle probes, moment boundaries), and with identical captions counted as
  positives of each other (``contrastive_loss``) they cost no false negatives. Writes the official stage-2
  key names: ``<out>/internvideo2.pt`` = ``{"module": {vision_encoder.*, vision_proj.*, text_proj.*, temp}}``
  (no ``text_encoder.*``: the embedded text tower is MiniLM, used as shipped).

Extraction reads the file through ``features.<backbone>.checkpoint``, like a real checkpoint. Training is
resumable: model, optimiser, RNG, step and the curve rows logged so far are saved atomically every
``checkpoint_every`` steps under ``--work`` (default ``<out.parent>/_work/<out.name>``; a
``pipeline.core.work`` folder keyed by every setting and the code, which DVC never deletes), and a restarted
run continues from the saved step with the same batches, writes the earlier curve rows back into ``--live``
(DVC deleted them with the outputs) and ends with the same checkpoint bytes. dvclive curves go to ``--live``;
the held-out check (held-out corpus videos: clip accuracy per head, or text→clip / clip→text R@1) is printed
and written to ``--metrics`` (a ``cache: false`` metrics file, so its ``seconds`` and ``resumed_from_step``
reading of this run's history change no cached output).

Params read: ``features.pretrain``, ``features.<backbone>``, ``synth`` (world settings), ``runtime``.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.cli import stage_main
from pipeline.core.params import ConfigError, load_block, load_params
from pipeline.core.work import default_work_root, open_work, replay_live
from pipeline.core.runtime import apply_runtime
from pipeline.synth.params import SynthConfig
from pipeline.core.params import RuntimeConfig
from pipeline.features.params import FeaturesConfig
from pipeline.core.io import atomic_path, write_json
from pipeline.synth import corpus

FORMAT = 1  # bump when the training recipe changes meaning (invalidates resumable work)
PYVIDEO = ("slowfast", "i3d")
HEADS = {"verb": corpus.VERB_CLASSES, "shape": corpus.SHAPE_CLASSES, "color": corpus.COLOR_CLASSES,
         "size": corpus.SIZE_CLASSES}
CHECKPOINT_NAME = {"slowfast": "slowfast.pyth", "i3d": "i3d.pyth", "internvideo2": "internvideo2.pt"}


# ---------------------------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------------------------


def sampling_weights(verb: np.ndarray, idle_fraction: float) -> np.ndarray:
    """Per-clip probabilities: ``idle_fraction`` of the mass on idle clips, the rest spread equally over the
    verbs present (then equally over each verb's clips), so rare verbs are seen as often as common ones."""
    idle = verb == corpus.VERB_CLASSES.index(corpus.IDLE)
    w = np.zeros(len(verb))
    verbs = np.unique(verb[~idle])
    for v in verbs:
        m = verb == v
        w[m] = (1.0 - (idle_fraction if idle.any() else 0.0)) / (len(verbs) * m.sum())
    if idle.any():
        w[idle] = (idle_fraction if len(verbs) else 1.0) / idle.sum()
    return w / w.sum()


def batch_indices(seed: int, step: int, weights: np.ndarray, batch_size: int) -> np.ndarray:
    """The clips of training step ``step``: a pure function of (seed, step), so a resumed run sees the same."""
    rng = np.random.default_rng([seed, 17, step])
    return rng.choice(len(weights), size=batch_size, replace=True, p=weights)


# ---------------------------------------------------------------------------------------------------------
# Objectives
# ---------------------------------------------------------------------------------------------------------


class PyVideoObjective:
    """SlowFast / I3D clip classification: feature net + one linear layer holding the configured heads."""

    def __init__(self, backbone: str, cfg: Any, spec: Any):
        import torch
        from torch import nn

        from models.backbones.pyvideo import PyVideoFeatures, create_i3d, create_slowfast

        self.torch = torch
        if backbone == "slowfast":
            net = create_slowfast(cfg.width, cfg.beta, cfg.alpha)
            dim, alpha = 32 * cfg.width + 32 * cfg.width // cfg.beta, cfg.alpha
        else:
            net = create_i3d(cfg.width)
            dim, alpha = 32 * cfg.width, None
        net.blocks[-1].dropout.p = spec.dropout
        self.features = PyVideoFeatures(net, dim, alpha)  # the extraction wrapper: same normalisation/pathways
        self.heads = {name: HEADS[name] for name in spec.heads}  # verb always; attributes optional
        self.sizes = [len(v) for v in self.heads.values()]
        self.head = nn.Linear(dim, sum(self.sizes))
        self.modules = nn.ModuleList([self.features, self.head])

    def logits(self, clips):
        out = self.head(self.features(clips)[:, 0])
        return dict(zip(self.heads, out.split(self.sizes, dim=1)))

    def loss(self, clips, bank: corpus.ClipSet, idx: np.ndarray) -> tuple[Any, dict[str, float]]:
        F = self.torch.nn.functional
        logits = self.logits(clips)
        total, logs = 0.0, {}
        for name, lg in logits.items():
            target = self.torch.from_numpy(getattr(bank, name)[idx])
            if (target >= 0).any():
                part = F.cross_entropy(lg, target, ignore_index=-1)
                total = total + part
                logs[f"loss_{name}"] = float(part.detach())
        return total, logs

    def evaluate(self, held: corpus.ClipSet, batch: int = 64) -> dict[str, float]:
        torch = self.torch
        self.modules.eval()
        preds: dict[str, list[np.ndarray]] = {k: [] for k in self.heads}
        with torch.inference_mode():
            for s in range(0, len(held), batch):
                for k, lg in self.logits(torch.from_numpy(held.clips[s:s + batch])).items():
                    preds[k].append(lg.argmax(1).numpy())
        self.modules.train()
        out = {}
        for k in self.heads:
            p, t = np.concatenate(preds[k]), getattr(held, k)
            m = t >= 0
            out[f"{k}_acc"] = float((p[m] == t[m]).mean()) if m.any() else None
        idle = corpus.VERB_CLASSES.index(corpus.IDLE)
        p = np.concatenate(preds["verb"])
        out["event_vs_idle_acc"] = float(((p == idle) == (held.verb == idle)).mean())
        ev = held.verb != idle
        out["event_verb_acc"] = float((p[ev] == held.verb[ev]).mean()) if ev.any() else None
        out["majority_verb_acc"] = float(np.bincount(held.verb).max() / len(held))
        return out

    def checkpoint(self, step: int) -> dict:
        from models.backbones.pyvideo import pyth_state

        return {"model_state": pyth_state(self.features.net, self.head),
                "heads": {k: list(v) for k, v in self.heads.items()}, "step": step}


class ContrastiveObjective:
    """InternVideo2 video–text contrastive learning against frozen MiniLM sentence vectors."""

    def __init__(self, cfg: Any, spec: Any, captions: list[str], text_batch: int = 64):
        import torch

        from models.backbones.internvideo2 import InternVideo2Contrastive, InternVideo2VisionEncoder
        from models.backbones.text import build_minilm, minilm_config

        self.torch = torch
        encoder = InternVideo2VisionEncoder(img_size=cfg.recipe.size, num_frames=cfg.recipe.frames,
                                            **dataclasses.asdict(cfg.arch))
        text_dim = minilm_config().hidden_size
        self.model = InternVideo2Contrastive(encoder, text_dim, spec.proj_dim, spec.temp)
        self.modules = self.model
        # frozen text tower: all-MiniLM's own sentence vector (mean of the last layer's tokens), computed once
        unique = sorted(set(captions))
        tower = build_minilm([minilm_config().num_layers], max_tokens=64)
        vecs = np.stack([t[:, 0].mean(0) for t in tower.encode(unique, batch_size=text_batch)])
        self.text_ids = {c: i for i, c in enumerate(unique)}
        self.text_vecs = torch.from_numpy(vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).float()

    def _ids(self, caps: list[str]):
        return self.torch.tensor([self.text_ids[c] for c in caps])

    def loss(self, clips, bank: corpus.ClipSet, idx: np.ndarray) -> tuple[Any, dict[str, float]]:
        from models.backbones.internvideo2 import contrastive_loss

        ids = self._ids([bank.captions[i] for i in idx])
        v = self.model.video_embed(clips)
        t = self.model.text_embed(self.text_vecs[ids])
        loss = contrastive_loss(v, t, self.model.logit_scale(), ids)
        return loss, {"temp": float(self.model.temp.detach())}

    def evaluate(self, held: corpus.ClipSet, batch: int = 64) -> dict[str, float]:
        """Retrieval among the held-out clips; a hit is any clip/text with the query's exact caption."""
        torch = self.torch
        self.model.eval()
        with torch.inference_mode():
            v = torch.cat([self.model.video_embed(torch.from_numpy(held.clips[s:s + batch]))
                           for s in range(0, len(held), batch)])
            ids = self._ids(held.captions)
            uniq = torch.unique(ids)
            t = self.model.text_embed(self.text_vecs[uniq])
            sim = t @ v.T  # [texts, clips]
        self.model.train()
        t2v = (ids[sim.argmax(1)] == uniq).float().mean()
        v2t = (uniq[sim.argmax(0)] == ids).float().mean()
        idle = corpus.VERB_CLASSES.index(corpus.IDLE)
        ev = torch.from_numpy(held.verb != idle)
        v2t_event = (uniq[sim.argmax(0)] == ids)[ev].float().mean() if ev.any() else torch.tensor(float("nan"))
        return {"t2v_r1": float(t2v), "v2t_r1": float(v2t), "v2t_r1_event_clips": float(v2t_event),
                "texts": int(len(uniq)), "chance_t2v_r1": float(1.0 / max(1, len(held)))}

    def checkpoint(self, step: int) -> dict:
        return {"module": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}, "step": step}


# ---------------------------------------------------------------------------------------------------------
# The stage
# ---------------------------------------------------------------------------------------------------------


def build_corpus(backbone: str, spec: Any, recipe: Any, synth: Any, seed: int, progress: bool = True):
    """(train bank, held-out bank) of labelled clips for ``backbone``."""
    train = corpus.plan_corpus(synth, spec.worlds, seed, spec.videos, "train")
    held = corpus.plan_corpus(synth, spec.worlds, seed, spec.heldout_videos, "heldout")
    bank = corpus.sample_clips(train, synth, recipe, spec.clips_per_video, seed, progress, f"{backbone} corpus")
    check = corpus.sample_clips(held, synth, recipe, spec.clips_per_video, seed + 1, progress,
                                f"{backbone} held-out")
    return bank, check


def pretrain(backbone: str, features: Any, synth: Any, runtime: Any, out_dir: Path, work_root: Path,
             live_dir: Path | None = None, progress: bool = True, stop_after: int | None = None) -> dict:
    """Pretrain ``backbone``; write ``out_dir/<checkpoint>`` atomically and return the metrics dict.

    ``stop_after`` (tests) raises ``KeyboardInterrupt`` after that many steps of this call, like a killed run.
    """
    import torch
    from tqdm import tqdm

    pre = features.pretrain
    spec = getattr(pre, backbone, None) if backbone in CHECKPOINT_NAME else None
    if spec is None:
        raise ConfigError(f"features.pretrain.{backbone}: no pretraining spec for this backbone "
                          f"(known: {', '.join(CHECKPOINT_NAME)})")
    cfg = features.backbone(backbone)
    seed = runtime.seed + pre.seed_offset
    apply_runtime(runtime)
    t_start = time.perf_counter()
    bank, held = build_corpus(backbone, spec, cfg.recipe, synth, seed, progress)
    torch.manual_seed(seed)
    objective = (PyVideoObjective(backbone, cfg, spec) if backbone in PYVIDEO
                 else ContrastiveObjective(cfg, spec, bank.captions + held.captions))
    params = [p for p in objective.modules.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]  # norms, biases, LayerScale, temp: no weight decay
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": spec.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=spec.lr)

    def lr_at(step: int) -> float:  # linear warm-up, then cosine to 0
        if step < spec.warmup_steps:
            return spec.lr * (step + 1) / spec.warmup_steps
        p = (step - spec.warmup_steps) / max(1, spec.steps - spec.warmup_steps)
        return spec.lr * 0.5 * (1.0 + np.cos(np.pi * p))

    # the corpus is rendered in memory from these settings: no input files besides the code
    work = open_work(work_root, "pipeline.features.pretrain",
                     {"format": FORMAT, "backbone": backbone, "spec": spec, "backbone_cfg": cfg, "synth": synth,
                      "seed": seed, "runtime": runtime})
    state_path = work.dir / "state.pt"
    start, history, curve = 0, [], []
    if state_path.exists():
        st = torch.load(state_path, map_location="cpu", weights_only=False)
        objective.modules.load_state_dict(st["modules"])
        opt.load_state_dict(st["optimizer"])
        torch.set_rng_state(st["torch_rng"])
        start, history, curve = st["step"], st["history"], st.get("curve", [])
        print(f"[pretrain] resuming {backbone} at step {start}/{spec.steps} from {state_path}", file=sys.stderr)

    # the rows logged before the saved step go back first: DVC deleted --live with the outputs
    live = replay_live(live_dir, curve) if live_dir is not None else None
    weights = sampling_weights(bank.verb, spec.idle_fraction)
    objective.modules.train()
    bar = tqdm(total=spec.steps, initial=start, desc=f"pretrain {backbone}", disable=not progress,
               mininterval=2.0, file=sys.stderr)
    recent: list[float] = []
    done_here = 0
    for step in range(start, spec.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        idx = batch_indices(seed, step, weights, spec.batch_size)
        loss, logs = objective.loss(torch.from_numpy(bank.clips[idx]), bank, idx)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"pretrain {backbone}: non-finite loss at step {step + 1} ({logs})")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        value = float(loss.detach())
        history.append(value)
        recent = history[-spec.log_every:]
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(recent):.3f}")
        # the last step always logs, so a run shorter than log_every still writes its curves (a DVC plots out)
        if (step + 1) % spec.log_every == 0 or step + 1 == spec.steps:
            curve.append({"train/loss": float(np.mean(recent)), "train/lr": float(lr_at(step)),
                          **{f"train/{k}": v for k, v in logs.items()}})
            if live is not None:
                for k, v in curve[-1].items():
                    live.log_metric(k, v)
                live.next_step()
        done_here += 1
        last = step + 1 == spec.steps
        if (step + 1) % spec.checkpoint_every == 0 and not last:
            with atomic_path(state_path, suffix=".pt") as tmp:
                torch.save({"modules": objective.modules.state_dict(), "optimizer": opt.state_dict(),
                            "torch_rng": torch.get_rng_state(), "step": step + 1, "history": history,
                            "curve": curve}, tmp)
        if stop_after is not None and done_here >= stop_after and not last:
            bar.close()
            if live is not None:
                live.end()
            raise KeyboardInterrupt(f"stopped after {done_here} steps (test hook)")
    bar.close()

    heldout = objective.evaluate(held)
    metrics = {
        "backbone": backbone,
        "objective": "classification" if backbone in PYVIDEO else "video-text contrastive",
        "steps": spec.steps,
        "final_loss": float(np.mean(history[-spec.log_every:])),
        "first_loss": float(np.mean(history[:spec.log_every])),
        "seconds": round(time.perf_counter() - t_start, 1),
        "resumed_from_step": start,
        "corpus": {"train_videos": spec.videos, "train_clips": len(bank), "heldout_videos": spec.heldout_videos,
                   "heldout_clips": len(held), "worlds": list(spec.worlds), "seed": seed},
        "heldout": heldout,
    }
    if live is not None:
        for k, v in heldout.items():
            if isinstance(v, float):
                live.log_metric(f"heldout/{k}", v, plot=False)
        live.end()
    out_dir = Path(out_dir)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        torch.save(objective.checkpoint(spec.steps), tmp / CHECKPOINT_NAME[backbone])
    work.remove()
    return metrics


@stage_main(ValueError)
def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring); bad params or input → exit code 2."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", required=True, help="slowfast | i3d | internvideo2")
    ap.add_argument("--out", required=True, help=f"output directory; holds {CHECKPOINT_NAME}")
    ap.add_argument("--work", type=Path, help="scratch directory for the resumable training state "
                    "(default <out.parent>/_work/<out.name>)")
    ap.add_argument("--metrics", help="held-out check (JSON)")
    ap.add_argument("--live", help="dvclive directory (training curves)")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    features = load_block(FeaturesConfig, args.params, params)
    synth = load_block(SynthConfig, args.params, params)
    runtime = load_block(RuntimeConfig, args.params, params)
    work = args.work if args.work is not None else default_work_root(args.out)
    metrics = pretrain(args.backbone, features, synth, runtime, Path(args.out), work,
                       Path(args.live) if args.live else None)
    if args.metrics:
        write_json(args.metrics, metrics)
    print(f"pretrain {args.backbone}: {metrics['steps']} steps in {metrics['seconds']} s, loss "
          f"{metrics['first_loss']:.3f} → {metrics['final_loss']:.3f}; held-out "
          + ", ".join(f"{k} {v:.3f}" for k, v in metrics["heldout"].items() if isinstance(v, float)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
