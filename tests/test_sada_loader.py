"""SADA's memory-mapped data path (issue 17): videos stay in the container's float16 memory map, only the rows a
crop uses are converted, and the collated batches equal those of the former eager float32 loader bit for bit."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from pipeline.core.io import InputError
from pipeline.datasets.schema import Moment, VideoRecord
from pipeline.features.container import write_container
from pipeline.sada.data import (
    SOURCE,
    TARGET,
    FeatureRows,
    PairCollate,
    PairedDomainDataset,
    TalVideo,
    load_videos,
    open_features,
)

CLASSES = ["a", "b"]


@pytest.fixture(scope="module")
def container(tmp_path_factory):
    """Six videos of 30–90 rows, 3 stored layers of 12-d float16 rows, two labelled moments each."""
    root = tmp_path_factory.mktemp("sada_loader")
    rng = np.random.default_rng(0)
    recs, items = [], []
    for i in range(6):
        n = int(rng.integers(30, 91))
        vid = f"v{i}"
        items.append((vid, rng.standard_normal((n, 3, 12)).astype(np.float16)))
        recs.append(VideoRecord(vid, "toy", "train", n * 0.5, moments=[
            Moment(f"{vid}_0", 2.0, 6.0, label="a", label_id=0), Moment(f"{vid}_1", 8.0, 11.0, label="b", label_id=1)]))
    write_container(root / "train", items, {"layers": [1, 2, 3], "time_step": 0.5, "window": 1.0})
    return root / "train", recs


def eager(videos: list[TalVideo], container, layer: int) -> list[TalVideo]:
    """The former loader: each video's rows copied out as float32 at load time."""
    return [TalVideo(v.video_id, np.asarray(container[v.video_id], dtype=np.float32)[:, layer, :], v.segments,
                     v.labels, v.duration, v.domain) for v in videos]


@pytest.mark.parametrize("layer", [-1, 0])
def test_memory_mapped_batches_equal_the_eager_float32_ones(container, layer):
    prefix, recs = container
    cont, recipe = open_features(prefix)
    src, _ = load_videos(recs[:4], cont, recipe, CLASSES, layer, SOURCE)
    tgt, _ = load_videos(recs[4:], cont, recipe, CLASSES, layer, TARGET)
    assert all(isinstance(v.feats, FeatureRows) for v in src + tgt)
    assert np.shares_memory(src[0].feats.raw(), cont.array)  # a view of the map, not a copy
    assert src[0].feats.shape == (cont.items["v0"][1], 12)
    batches = []
    for s, t in ((src, tgt), (eager(src, cont, layer), eager(tgt, cont, layer))):
        ds = PairedDomainDataset(s, t, 48, (0.5, 1.0), 0.3)  # crops: some videos are longer than 48 rows
        torch.manual_seed(3)
        loader = torch.utils.data.DataLoader(ds, batch_size=2, shuffle=True, collate_fn=PairCollate(8, recipe),
                                             generator=torch.Generator().manual_seed(3))
        batches.append(list(loader))
    for a, b in zip(*batches, strict=True):
        assert a["feats"].dtype == torch.float32 and a["feats"].is_contiguous()
        assert torch.equal(a["feats"], b["feats"]) and torch.equal(a["mask"], b["mask"])
        assert a["video_ids"] == b["video_ids"]
        assert all(torch.equal(x, y) for x, y in zip(a["segments"], b["segments"]))


def test_feature_rows_slice_lazily_and_pickle_without_the_data(container):
    prefix, recs = container
    cont, recipe = open_features(prefix)
    video = load_videos(recs[:1], cont, recipe, CLASSES, 1, SOURCE)[0][0]
    full = np.asarray(cont["v0"], dtype=np.float32)[:, 1, :]
    crop = video.feats[5:25]
    assert isinstance(crop, FeatureRows) and crop.shape == (20, 12)
    np.testing.assert_array_equal(np.asarray(crop), full[5:25])
    blob = pickle.dumps(crop)
    assert len(blob) < 1000  # a spawned DataLoader worker gets the path and row range, not the rows
    np.testing.assert_array_equal(np.asarray(pickle.loads(blob)), full[5:25])
    assert pickle.loads(blob).raw().base is pickle.loads(blob).raw().base  # one map per file, not per video
    with pytest.raises(TypeError):
        video.feats[::2]


def test_a_layer_the_container_lacks_is_an_input_error(container):
    prefix, recs = container
    cont, recipe = open_features(prefix)
    with pytest.raises(InputError, match="layer position 3 out of range"):
        load_videos(recs[:1], cont, recipe, CLASSES, 3, SOURCE)
