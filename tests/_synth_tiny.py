"""A tiny synthetic-world config for tests: the shipped ``synth`` block with small sizes merged over it."""
from __future__ import annotations

import copy

import av
import numpy as np

from pipeline.synth.params import SynthConfig
from pipeline.core.params import build, load_params
from pipeline.profiles import deep_merge

from conftest import REPO_ROOT

TINY = {
    "resolution": 48,
    "tal": {"participants": 2, "old_videos": 2, "new_videos": 2, "val_videos": 1, "zoomed_participants": 1,
            "duration": [4.0, 5.0], "gap": [0.3, 0.8]},
    "captions": {"train_videos": 2, "val_videos": 1, "duration": [12.0, 14.0], "gap": [0.5, 1.5]},
    "qvh": {"train_videos": 2, "val_videos": 1, "duration": [14.0, 16.0], "gap": [2.0, 2.0]},
}

# no camera shake, no sensor noise, no idle wobble: every pixel change is an event
CLEAN = {
    "idle_amplitude": 0.0,
    "acquisition": {"old": {"shake": 0.0, "noise": 0.0}, "new": {"shake": 0.0, "noise": 0.0}},
}


def tiny_config(**extra) -> SynthConfig:
    """The shipped synth block with ``TINY`` (and ``extra``) overrides."""
    block = load_params(REPO_ROOT / "params.yaml")["synth"]
    merged = deep_merge(block, TINY, "synth")
    for overrides in extra.values():
        merged = deep_merge(merged, overrides, "synth")
    return build(SynthConfig, copy.deepcopy(merged), "synth")


def decode(path) -> tuple[list[np.ndarray], dict]:
    """All frames of an mp4 as RGB uint8 arrays, plus facts of its video stream."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        facts = {"codec": stream.codec_context.name, "pix_fmt": stream.codec_context.pix_fmt,
                 "fps": float(stream.average_rate), "width": stream.width, "height": stream.height}
    return frames, facts
