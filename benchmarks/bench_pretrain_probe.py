"""Linear probes of pretrained vs random-init embedded backbones on downstream-like videos (DESIGN §4a check).

Renders videos with the downstream world settings from the corpus' ``probe`` seed stream (neither the
pretraining videos nor the pipeline's own train/val videos), cuts them into the feature rows extraction makes
(``corpus.extraction_windows``), labels each row (event = covered by an event, idle = no overlap, ambiguous
rows dropped) and fits logistic-regression probes on the first half of the videos, scoring the second half:
verb accuracy at event rows, event-vs-idle accuracy, and their majority baselines.

    OMP_NUM_THREADS=1 python benchmarks/bench_pretrain_probe.py --backbone slowfast \
        [--checkpoint data/pretrained/slowfast/slowfast.pyth] [--videos 24] [--params params.yaml]
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rows(backbone: str, features, synth, seed: int, videos: int):
    """(clips, verb labels, kind labels, video index) of every non-ambiguous extraction row."""
    from pipeline.synth import corpus

    spec = getattr(features.pretrain, backbone)
    recipe = features.backbone(backbone).recipe
    plans = corpus.plan_corpus(synth, spec.worlds, seed, videos, "probe")
    clips, verbs, vids = [], [], []
    pixels = corpus.PixelPath(recipe)
    for vi, plan in enumerate(plans):
        starts = corpus.extraction_windows(plan, recipe)
        labs = [corpus.label_window(plan, k / recipe.fps, (k + recipe.frames) / recipe.fps) for k in starts]
        keep = [i for i, lab in enumerate(labs) if lab.kind != "ambiguous"]
        clips.append(corpus.render_windows(plan, synth, recipe, [starts[i] for i in keep], pixels))
        verbs += [labs[i].verb for i in keep]
        vids += [vi] * len(keep)
    return np.concatenate(clips), np.array(verbs), np.array(vids)


def probe(x_tr, y_tr, x_te, y_te) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(set(y_tr)) < 2:
        return float("nan")
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=0.5))
    return float(clf.fit(x_tr, y_tr).score(x_te, y_te))


def main() -> int:
    import torch

    from models.backbones import build_video_backbone
    from pipeline.core.params import load_block, load_params
    from pipeline.synth.params import SynthConfig
    from pipeline.core.params import RuntimeConfig
    from pipeline.features.params import FeaturesConfig

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="slowfast")
    ap.add_argument("--checkpoint", help="default: features.<backbone>.checkpoint")
    ap.add_argument("--videos", type=int, default=24)
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args()
    torch.set_num_threads(1)
    params = load_params(args.params)
    features = load_block(FeaturesConfig, args.params, params)
    synth = load_block(SynthConfig, args.params, params)
    seed = load_block(RuntimeConfig, args.params, params).seed + features.pretrain.seed_offset
    clips, verbs, vids = rows(args.backbone, features, synth, seed, args.videos)
    cfg = features.backbone(args.backbone)
    ckpt = args.checkpoint or cfg.checkpoint
    train = vids < args.videos // 2
    event = verbs != "idle"
    print(f"{args.backbone}: {len(verbs)} rows ({event.mean():.2f} event), {args.videos} videos")
    for name, path in (("random_init", None), ("pretrained", ckpt)):
        torch.manual_seed(0)
        model = build_video_backbone(args.backbone, dataclasses.replace(cfg, checkpoint=path))
        with torch.inference_mode():
            feats = torch.cat([model(torch.from_numpy(clips[i:i + 32])) for i in range(0, len(clips), 32)]).numpy()
        for li, layer in enumerate(model.layers):
            x = feats[:, li]
            m_tr, m_te = train & event, ~train & event
            verb = probe(x[m_tr], verbs[m_tr], x[m_te], verbs[m_te])
            ev = probe(x[train], event[train], x[~train], event[~train])
            maj_v = max(np.mean(verbs[m_te] == v) for v in set(verbs[m_tr]))
            maj_e = max(event[~train].mean(), 1 - event[~train].mean())
            print(f"  {name:11s} layer {layer}: verb_acc {verb:.3f} (majority {maj_v:.3f}), "
                  f"event_acc {ev:.3f} (majority {maj_e:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
