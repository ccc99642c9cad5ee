"""A tiny QVHighlights-style world for SDST tests: canonical records + multi-layer feature containers.

Each query names one of ``n_concepts`` concepts; video rows inside its window(s) carry that concept's video
pattern, other rows carry random other concepts; the text tokens carry the concept's text pattern. Deeper
stored layers are less noisy. Learnable, small and fast.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.datasets.schema import Moment, Saliency, VideoRecord, write_records
from pipeline.features.container import write_container


def make_fixture(root: Path, n_train: int = 24, n_val: int = 8, video_dim: int = 32, text_dim: int = 24,
                 video_layers=(3, 4, 5, 6), text_layers=(1, 2, 3, 4), n_concepts: int = 6, seed: int = 0,
                 time_step: float = 2.0) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    v_pat = rng.normal(size=(n_concepts, video_dim))
    t_pat = rng.normal(size=(n_concepts, text_dim))
    records, video_items, text_items = {"train": [], "val": []}, {"train": [], "val": []}, {"train": [], "val": []}
    for split, n in (("train", n_train), ("val", n_val)):
        for vi in range(n):
            vid = f"{split}_v{vi}"
            rows = int(rng.integers(12, 24))
            duration = rows * time_step
            concept_of_row = rng.integers(0, n_concepts, size=rows)
            moments, saliency = [], {}
            for qi in range(2):
                qid = f"{vid}_q{qi}"
                concept = int(rng.integers(0, n_concepts))
                concept_of_row[concept_of_row == concept] = (concept + 1) % n_concepts
                n_rows = int(rng.integers(2, max(3, rows // 3)))
                start = int(rng.integers(0, rows - n_rows))
                concept_of_row[start : start + n_rows] = concept
                moments.append(Moment(moment_id=f"{qid}_m0", start=start * time_step, end=(start + n_rows) * time_step,
                                      text=f"concept {concept}", query_id=qid))
                clip_ids = list(range(start, start + n_rows))
                saliency[qid] = Saliency(clip_ids=clip_ids, scores=[[4, 3, 4] for _ in clip_ids])
                n_tok = int(rng.integers(5, 9))
                text = np.stack([t_pat[concept] * (0.5 + 0.5 * li / len(text_layers)) for li in range(len(text_layers))])
                text = text[None] + rng.normal(scale=0.5, size=(n_tok, len(text_layers), text_dim))
                text_items[split].append((qid, text))
            # later queries overwrite rows of earlier ones; keep each query's own window rows consistent
            for m in moments:
                c = int(m.text.split()[1])
                concept_of_row[int(m.start / time_step) : int(m.end / time_step)] = c
            noise = [1.5 - 1.0 * li / len(video_layers) for li in range(len(video_layers))]
            video = np.stack([v_pat[concept_of_row] + rng.normal(scale=s, size=(rows, video_dim)) for s in noise], 1)
            video_items[split].append((vid, video))
            records[split].append(VideoRecord(video_id=vid, dataset="toy_qvh", split=split, duration=duration,
                                              moments=moments, saliency=saliency))
    paths = {"canonical": root / "canonical" / "toy_qvh.jsonl", "video": root / "video", "text": root / "text"}
    write_records(paths["canonical"], records["train"] + records["val"])
    for split in ("train", "val"):
        write_container(paths["video"] / split, video_items[split],
                        {"backbone": "toy", "dim": video_dim, "layers": list(video_layers), "time_step": time_step,
                         "window": time_step, "pooling": "adaptive"})
        write_container(paths["text"] / split, text_items[split],
                        {"backbone": "toy_text", "dim": text_dim, "layers": list(text_layers)})
    return paths


def write_oracle_video_features(canonical: Path, text_dir: Path, out_dir: Path, splits=("train", "val"),
                                video_dim: int = 32, layers=(3, 4, 5, 6), time_step: float = 2.0,
                                noise: float = 0.1, seed: int = 0) -> Path:
    """Oracle video containers ``<out_dir>/<split>`` that encode the ground truth.

    Row ``t`` of a video (centre ``(t + 0.5) · time_step``) at every stored layer = a fixed random projection
    of the mean last-layer text feature of each query with a window covering it (summed when several do),
    plus Gaussian noise; uncovered rows are noise only. A model that reads the data path correctly can then
    localise every query; one that misaligns rows, splits or layers cannot.
    """
    from pipeline.datasets.schema import iter_queries, read_records
    from pipeline.features.container import FeatureContainer

    rng = np.random.default_rng(seed)
    proj = None
    for split in splits:
        text = FeatureContainer(Path(text_dir) / split)
        items = []
        for rec in read_records(canonical, split=split):
            rows = max(1, int(round(rec.duration / time_step)))
            centres = (np.arange(rows) + 0.5) * time_step
            video = rng.normal(scale=noise, size=(rows, len(layers), video_dim))
            for q in iter_queries([rec]):
                t = np.asarray(text[q.qid], dtype=np.float64)[:, -1].mean(0)
                if proj is None:
                    proj = rng.normal(size=(t.shape[0], video_dim)) / np.sqrt(t.shape[0])
                code = t @ proj
                code = code / (np.linalg.norm(code) + 1e-8) * np.sqrt(video_dim)
                for s, e in q.windows:
                    video[(centres >= s) & (centres < e)] += code[None]
            items.append((rec.video_id, video))
        write_container(Path(out_dir) / split, items,
                        {"backbone": "oracle", "dim": video_dim, "layers": list(layers), "time_step": time_step,
                         "window": time_step, "pooling": "oracle"})
    return Path(out_dir)


def overfit_tiny(tmp_path: Path, model_cfg, epochs: int = 30) -> tuple[list[float], float, float]:
    """Train a tiny side-tuner (``model_cfg``: an ``SDSTModelConfig``; its ``architecture`` picks SDST or R2-Tuning)
    on 12 fixture queries; return the per-epoch train losses and R1@0.5 on those queries before / after."""
    import torch

    from models.common import temporal_iou_np
    from models.sdst_config import SDSTConfig
    from models.side_tuners import build_side_tuner
    from pipeline.core.params import TrainConfig
    from pipeline.core.training import fit
    from pipeline.sdst.data import SDSTDataset, collate, select_layers

    paths = make_fixture(tmp_path, n_train=12, n_val=2)
    choice = select_layers([3, 4, 5, 6], [1, 2, 3, 4], 2, [], False, "shallow_to_deep", "fixture")
    ds = SDSTDataset(paths["canonical"], "train", paths["video"], paths["text"], choice, 2.0, True)
    torch.manual_seed(0)
    model = build_side_tuner(SDSTConfig(ds.video_dim, ds.text_dim, 8, choice.video, choice.text, model_cfg))

    def r1(m) -> float:
        m.eval()
        rows = m.predict(collate([ds[i] for i in range(len(ds))]))
        hits = [temporal_iou_np(np.array(r["pred_relevant_windows"][0][:2])[None], np.array(q.windows)).max() >= 0.5
                for r, q in zip(rows, ds.queries)]
        return float(np.mean(hits))

    before = r1(model)
    cfg = TrainConfig(epochs=epochs, batch_size=8, lr=2e-3, schedule="constant", grad_clip=1.0)
    res = fit(model, ds, collate, cfg, tmp_path / "run", progress=False)
    return [h["train/loss"] for h in res.history], before, r1(res.model)
