"""Can the embedded InternVideo2 tower learn verbs by distilling the pretrained SlowFast? (issue 11, bounded CPU)

InternVideo2's stage 1 trains the vision tower to regress a teacher's features (unmasked-teacher distillation:
``clip_decoder.*`` map student tokens to the teacher's tokens, ``final_clip_decoder`` maps the pooled
``clip_projector`` output to the teacher's pooled feature). Here the teacher is the embedded SlowFast checkpoint
(``pretrain@slowfast``). Each corpus clip (IV2 recipe: 4 frames at 2 fps, the ``pretrain.internvideo2`` worlds,
the corpus' own seed) is paired with SlowFast's view of the same span (its recipe fps, a centred 16-frame
window), whose features are computed once for three teacher views (``TEACHER_VIEWS``: the 16 frames in one pass,
the centre 8 frames = its trained recipe, or both 8-frame halves averaged):

* ``pooled`` — the teacher's pooled pre-classifier vector (z-scored over the bank); student:
  ``final_clip_decoder(clip_projector(last block))``; loss 1 − cos.
* ``tokens`` — also per token: the teacher's last feature map (slow ‖ fast channels, time-averaged, z-scored,
  upsampled to the student's patch grid); student: ``clip_decoder.0`` on each patch token of the last block;
  loss 1 − cos, added to the pooled loss.
* ``ce`` — supervised verb cross-entropy on ``clip_projector`` (the previous session's reference arm).

Probe (same as the previous session): logistic regression on pooled features (``clip_projector`` of the last
block = extraction's ``adaptive`` pooling; and the token mean ``avg``) of train-bank clips, scored on held-out
corpus clips: verb accuracy at event clips, event-vs-idle accuracy, majority baselines beside.

    OMP_NUM_THREADS=1 python benchmarks/iv2_distill.py --arm teacher --teacher halves8   # bank + ceiling
    OMP_NUM_THREADS=1 python benchmarks/iv2_distill.py --arm random                      # random init
    OMP_NUM_THREADS=1 python benchmarks/iv2_distill.py --arm pooled --steps 300 [--patch-size 8 --tubelet 2 ...]
    python benchmarks/iv2_distill.py --table                                  # the table of every run so far

The bank (clips + teacher features) is cached in ``--cache`` (one per ``--worlds`` set); every run appends one JSON
line to ``--log``. Runs stop at ``--max-seconds`` of training. Held-out cos = mean cosine between the student's
``final_clip_decoder`` output and the z-scored teacher vector on held-out clips (does the regression generalise?).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


# ---------------------------------------------------------------------------------------------------------
# Bank: IV2 clips, the teacher's view of the same span, labels
# ---------------------------------------------------------------------------------------------------------


def teacher_recipe(student, teacher):
    """The SlowFast recipe stretched to the student's window: same fps, the frames of its span rounded to a
    multiple of 4 (the slow/fast fusion needs T divisible by alpha)."""
    span = student.frames / student.fps
    return dataclasses.replace(teacher, frames=max(4, int(round(span * teacher.fps / 4)) * 4))


def sample_pairs(plans, synth, s_recipe, t_recipe, clips_per_video: int, seed: int):
    """Like ``corpus.sample_clips`` (same start rule and rng), plus the teacher window of each clip."""
    from pipeline.synth import corpus

    s_pix, t_pix = corpus.PixelPath(s_recipe), corpus.PixelPath(t_recipe)
    s_parts, t_parts, verbs, vids = [], [], [], []
    for vi, plan in enumerate(plans):
        starts, labs = corpus.pick_windows(plan, s_recipe, clips_per_video, np.random.default_rng([seed, vi]))
        if not starts:
            continue
        # teacher window centred on the student window: frames j..j+T-1 at (j + 0.5)/t_fps, centre (j + T/2)/t_fps
        centre = [(k + s_recipe.frames / 2) / s_recipe.fps for k in starts]
        t_starts = [max(0, int(round(c * t_recipe.fps - t_recipe.frames / 2))) for c in centre]
        s_parts.append(corpus.render_windows(plan, synth, s_recipe, starts, s_pix))
        t_parts.append(corpus.render_windows(plan, synth, t_recipe, t_starts, t_pix))
        verbs += [corpus.VERB_CLASSES.index(x.verb) for x in labs]
        vids += [vi] * len(starts)
    return np.concatenate(s_parts), np.concatenate(t_parts), np.array(verbs), np.array(vids)


def teacher_features(clips: np.ndarray, sf_cfg, batch: int = 32):
    """(pooled [N, C], token map [N, C, 2, 2] time-averaged) of the SlowFast checkpoint on teacher clips."""
    import torch

    from models.backbones.pyvideo import build_slowfast

    model = build_slowfast(sf_cfg.width, sf_cfg.beta, sf_cfg.alpha, sf_cfg.checkpoint).eval()
    grabbed = {}
    last_stage = model.net.blocks[-3]  # res5 (+ no fusion after it): [slow, fast] maps before pooling
    last_stage.register_forward_hook(lambda m, i, o: grabbed.__setitem__("maps", o))
    pooled, maps = [], []
    with torch.inference_mode():
        for s in range(0, len(clips), batch):
            pooled.append(model(torch.from_numpy(clips[s:s + batch]))[:, 0].numpy())
            slow, fast = grabbed["maps"]
            maps.append(torch.cat([slow.mean(2), fast.mean(2)], dim=1).numpy())
    return np.concatenate(pooled), np.concatenate(maps)


TEACHER_VIEWS = {  # frames of the 16-frame (2.13-s) teacher window fed to SlowFast, averaged over the parts
    "full16": [range(0, 16)],                 # the whole span in one pass (16 frames, trained on 8)
    "centre8": [range(4, 12)],                # its trained recipe (8 frames, 1.07 s) at the clip centre
    "halves8": [range(0, 8), range(8, 16)],   # its trained recipe on both halves, features averaged
}


def build_bank(args, features, synth, seed):
    """Student clips, labels and every teacher view's (pooled, maps) of the train and held-out corpus parts."""
    from pipeline.synth import corpus

    spec = features.pretrain.internvideo2
    worlds = args.worlds or spec.worlds
    s_recipe = features.internvideo2.recipe
    t_recipe = teacher_recipe(s_recipe, features.slowfast.recipe)
    if t_recipe.frames != 16:
        raise ValueError(f"teacher views assume a 16-frame teacher window, got {t_recipe.frames}")
    out = {}
    for part, n in (("train", args.videos), ("heldout", args.heldout)):
        plans = corpus.plan_corpus(synth, worlds, seed, n, part)
        s, t, v, vid = sample_pairs(plans, synth, s_recipe, t_recipe, spec.clips_per_video,
                                    seed + (part == "heldout"))
        out.update({f"{part}_clips": s, f"{part}_verb": v, f"{part}_video": vid})
        for view, parts in TEACHER_VIEWS.items():
            feats = [teacher_features(np.ascontiguousarray(t[:, list(r)]), features.slowfast) for r in parts]
            out[f"{part}_tpooled_{view}"] = np.mean([f[0] for f in feats], axis=0)
            out[f"{part}_tmaps_{view}"] = np.mean([f[1] for f in feats], axis=0)
    return out


# ---------------------------------------------------------------------------------------------------------
# Probe
# ---------------------------------------------------------------------------------------------------------


def probe(x_tr, y_tr, x_te, y_te, idle: int) -> dict:
    """Verb accuracy at event clips and event-vs-idle accuracy of logistic-regression probes (+ majorities)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def fit(a, b, c, d):
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.5))
        return float(clf.fit(a, b).score(c, d))

    ev_tr, ev_te = y_tr != idle, y_te != idle
    maj_v = max(np.mean(y_te[ev_te] == v) for v in np.unique(y_tr[ev_tr]))
    return {"verb": fit(x_tr[ev_tr], y_tr[ev_tr], x_te[ev_te], y_te[ev_te]), "verb_majority": float(maj_v),
            "event": fit(x_tr, ev_tr, x_te, ev_te), "event_majority": float(max(ev_te.mean(), 1 - ev_te.mean())),
            "heldout_event_clips": int(ev_te.sum()), "heldout_clips": int(len(y_te))}


# ---------------------------------------------------------------------------------------------------------
# Student
# ---------------------------------------------------------------------------------------------------------


class Student:
    """The IV2 vision tower (official class) + the distillation heads of its own config (or a CE head)."""

    def __init__(self, arch: dict, recipe, arm: str, t_dim: int, n_classes: int):
        import torch
        from torch import nn

        from models.backbones.internvideo2 import IMAGENET_MEAN, IMAGENET_STD, InternVideo2VisionEncoder

        self.torch, self.arm = torch, arm
        arch = dict(arch, clip_teacher_final_dim=t_dim, clip_teacher_embed_dim=t_dim,
                    clip_return_layer=1 if arm == "tokens" else 0)
        self.enc = InternVideo2VisionEncoder(img_size=recipe.size, num_frames=recipe.frames, **arch)
        self.head = nn.Linear(arch["clip_embed_dim"], n_classes) if arm == "ce" else None
        self.modules = nn.ModuleList([self.enc] + ([self.head] if self.head is not None else []))
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1) * 255
        self.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1) * 255

    def tokens(self, clips):
        x = (clips.permute(0, 4, 1, 2, 3).float() - self.mean) / self.std
        return self.enc.hidden_states(x, [self.enc.depth])[0]

    def loss(self, clips, pooled_t, maps_t, verb):
        F = self.torch.nn.functional
        h = self.tokens(clips)
        z = self.enc.clip_projector(h)
        if self.arm == "ce":
            return F.cross_entropy(self.head(z), verb)
        loss = (1 - F.cosine_similarity(self.enc.final_clip_decoder(z), pooled_t, dim=-1)).mean()
        if self.arm == "tokens":
            n = h.shape[1] - 1  # patch tokens (cls excluded)
            grid = self.enc.patch_embed.grid
            tgt = F.interpolate(maps_t, size=(grid, grid), mode="nearest")  # [B, C, g, g]
            tgt = tgt.flatten(2).transpose(1, 2)  # [B, g², C]
            tgt = tgt.repeat(1, n // (grid * grid), 1)  # every frame (tubelet) of the clip: same time-avg map
            pred = self.enc.clip_decoder[0](h[:, 1:])
            loss = loss + (1 - F.cosine_similarity(pred, tgt, dim=-1)).mean()
        return loss

    def features(self, clips: np.ndarray, batch: int = 64) -> dict[str, np.ndarray]:
        torch = self.torch
        self.modules.eval()
        ad, av = [], []
        with torch.inference_mode():
            for s in range(0, len(clips), batch):
                h = self.tokens(torch.from_numpy(clips[s:s + batch]))
                ad.append(self.enc.clip_projector(h).numpy())
                av.append(h.mean(1).numpy())
        self.modules.train()
        return {"adaptive": np.concatenate(ad), "avg": np.concatenate(av)}


def run_student(args, bank, features, seed) -> dict:
    import torch

    from pipeline.features.pretrain import batch_indices, sampling_weights
    from pipeline.synth import corpus

    idle = corpus.VERB_CLASSES.index(corpus.IDLE)
    recipe = features.internvideo2.recipe
    arch = dataclasses.asdict(features.internvideo2.arch)
    for key in ("patch_size", "depth", "embed_dim", "num_heads", "init_values"):
        if getattr(args, key) is not None:
            arch[key] = getattr(args, key)
    arch["tubelet_size"] = args.tubelet
    train_clips, held_clips = bank["train_clips"], bank["heldout_clips"]
    if args.frames != recipe.frames:  # fewer frames of the same span (every other frame)
        keep = np.linspace(0, recipe.frames - 1, args.frames).round().astype(int)
        train_clips, held_clips = train_clips[:, keep], held_clips[:, keep]
        recipe = dataclasses.replace(recipe, frames=args.frames)
    # teacher targets z-scored over the train bank: the raw pooled vectors share a large common component
    tp, tm = bank[f"train_tpooled_{args.teacher}"], bank[f"train_tmaps_{args.teacher}"]
    mu_p, sd_p = tp.mean(0), tp.std(0) + 1e-6
    mu_m, sd_m = tm.mean((0, 2, 3))[:, None, None], tm.std((0, 2, 3))[:, None, None] + 1e-6
    pooled_t = torch.from_numpy(((tp - mu_p) / sd_p).astype(np.float32))
    maps_t = torch.from_numpy(((tm - mu_m) / sd_m).astype(np.float32))
    verb = torch.from_numpy(bank["train_verb"])
    torch.manual_seed(seed)
    st = Student(arch, recipe, args.arm, tp.shape[1], len(corpus.VERB_CLASSES))
    params = list(st.modules.parameters())
    opt = torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.05},
                             {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}], lr=args.lr)
    weights = sampling_weights(bank["train_verb"], 0.15)
    hist, t0 = [], time.perf_counter()
    for step in range(args.steps):
        warm = 10
        lr = args.lr * ((step + 1) / warm if step < warm
                        else 0.5 * (1 + np.cos(np.pi * (step - warm) / max(1, args.steps - warm))))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.from_numpy(batch_indices(seed, step, weights, args.batch))
        loss = st.loss(torch.from_numpy(train_clips[idx.numpy()]), pooled_t[idx], maps_t[idx], verb[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        hist.append(float(loss.detach()))
        if args.probe_every and (step + 1) % args.probe_every == 0 and step + 1 < args.steps:
            p = score(st, train_clips, bank, held_clips, idle, args.probe_train)
            print(f"  step {step + 1}: loss {np.mean(hist[-10:]):.3f}, verb {p['adaptive']['verb']:.3f} / "
                  f"{p['avg']['verb']:.3f}", file=sys.stderr, flush=True)
        if time.perf_counter() - t0 > args.max_seconds:
            print(f"  stopped at step {step + 1}: time limit", file=sys.stderr)
            break
    seconds = time.perf_counter() - t0
    probes = score(st, train_clips, bank, held_clips, idle, args.probe_train)
    if args.arm != "ce":  # does the regression generalise? pooled cosine to the teacher on held-out clips
        with torch.inference_mode():
            st.modules.eval()
            z = torch.cat([st.enc.final_clip_decoder(st.enc.clip_projector(st.tokens(torch.from_numpy(
                held_clips[s:s + 64])))) for s in range(0, len(held_clips), 64)])
        held_t = torch.from_numpy(((bank[f"heldout_tpooled_{args.teacher}"] - mu_p) / sd_p).astype(np.float32))
        probes["heldout_cos"] = float(torch.nn.functional.cosine_similarity(z, held_t, dim=-1).mean())
    return {"loss_first": float(np.mean(hist[:10])), "loss_last": float(np.mean(hist[-10:])),
            "steps_done": len(hist), "train_seconds": round(seconds, 1), "probe": probes}


def score(st, train_clips, bank, held_clips, idle, n_train):
    n = min(n_train, len(train_clips))
    ftr, fte = st.features(train_clips[:n]), st.features(held_clips)
    return {k: probe(ftr[k], bank["train_verb"][:n], fte[k], bank["heldout_verb"], idle) for k in ftr}


# ---------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------


def table(log: Path) -> None:
    rows = [json.loads(x) for x in log.read_text().splitlines() if x.strip()] if log.exists() else []
    print("| run | loss first → last | verb probe adaptive / avg (majority) | event vs idle adaptive / avg "
          "(majority) | steps | s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        p = r["probe"]
        a = p.get("adaptive", p.get("teacher"))
        b = p.get("avg", a)
        loss = f"{r['loss_first']:.3f} → {r['loss_last']:.3f}" if "loss_first" in r else "—"
        cos = f", held-out cos {p['heldout_cos']:.2f}" if "heldout_cos" in p else ""
        print(f"| {r['label']} | {loss}{cos} | {a['verb']:.3f} / {b['verb']:.3f} ({a['verb_majority']:.3f}) | "
              f"{a['event']:.3f} / {b['event']:.3f} ({a['event_majority']:.3f}) | {r.get('steps_done', '—')} | "
              f"{r.get('train_seconds', '—')} |")


def main() -> int:
    import torch

    from pipeline.core.params import RuntimeConfig, load_block, load_params
    from pipeline.features.params import FeaturesConfig
    from pipeline.synth.params import SynthConfig

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arm", choices=["teacher", "random", "pooled", "tokens", "ce"], default="pooled")
    ap.add_argument("--label", help="row name (default: derived from the settings)")
    ap.add_argument("--videos", type=int, default=1000, help="train corpus videos (x clips_per_video clips)")
    ap.add_argument("--heldout", type=int, default=128, help="held-out corpus videos")
    ap.add_argument("--worlds", nargs="+", help="corpus worlds (default: features.pretrain.internvideo2.worlds); "
                    "use a separate --cache per world set")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--patch-size", dest="patch_size", type=int)
    ap.add_argument("--depth", type=int)
    ap.add_argument("--embed-dim", dest="embed_dim", type=int)
    ap.add_argument("--num-heads", dest="num_heads", type=int)
    ap.add_argument("--init-values", dest="init_values", type=float)
    ap.add_argument("--teacher", choices=["full16", "centre8", "halves8"], default="full16",
                    help="teacher view (TEACHER_VIEWS) the student regresses")
    ap.add_argument("--tubelet", type=int, default=1)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--probe-train", dest="probe_train", type=int, default=1000, help="train clips the probe fits")
    ap.add_argument("--probe-every", dest="probe_every", type=int, default=0)
    ap.add_argument("--max-seconds", dest="max_seconds", type=float, default=330.0)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/iv2_distill_bank.npz"))
    ap.add_argument("--log", type=Path, default=Path("/tmp/iv2_distill_runs.jsonl"))
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--table", action="store_true", help="print the table of --log and exit")
    args = ap.parse_args()
    if args.table:
        table(args.log)
        return 0
    torch.set_num_threads(1)
    params = load_params(args.params)
    features = load_block(FeaturesConfig, args.params, params)
    synth = load_block(SynthConfig, args.params, params)
    seed = load_block(RuntimeConfig, args.params, params).seed + features.pretrain.seed_offset
    t0 = time.perf_counter()
    if args.cache.exists():
        bank = dict(np.load(args.cache))
    else:
        bank = build_bank(args, features, synth, seed)
        np.savez(args.cache, **bank)
        print(f"bank: {len(bank['train_verb'])} train / {len(bank['heldout_verb'])} held-out clips in "
              f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    from pipeline.synth import corpus

    idle = corpus.VERB_CLASSES.index(corpus.IDLE)
    if args.arm == "teacher":
        n = min(args.probe_train, len(bank["train_verb"]))
        row = {"label": args.label or f"teacher: SlowFast checkpoint, {args.teacher} view (ceiling)",
               "probe": {"teacher": probe(bank[f"train_tpooled_{args.teacher}"][:n], bank["train_verb"][:n],
                                          bank[f"heldout_tpooled_{args.teacher}"], bank["heldout_verb"], idle)}}
    else:
        if args.arm == "random":
            args.steps = 0
        res = run_student(args, bank, features, seed) if args.steps else None
        if res is None:  # random init: probe only
            torch.manual_seed(seed)
            arch = dict(dataclasses.asdict(features.internvideo2.arch), tubelet_size=args.tubelet)
            st = Student(arch, features.internvideo2.recipe, "pooled", bank["train_tpooled_full16"].shape[1], 11)
            res = {"probe": score(st, bank["train_clips"], bank, bank["heldout_clips"], idle, args.probe_train)}
        arch_bits = [f"{k} {getattr(args, k)}" for k in ("patch_size", "depth", "embed_dim", "init_values")
                     if getattr(args, k) is not None]
        label = args.label or ", ".join([args.arm + (f" ({args.teacher})" if args.arm in ("pooled", "tokens")
                                                      else ""), f"tubelet {args.tubelet}", f"frames {args.frames}",
                                         f"lr {args.lr:g}", f"batch {args.batch}"] + arch_bits)
        row = {"label": label, "args": {k: str(v) for k, v in vars(args).items()}, **res}
    with args.log.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
