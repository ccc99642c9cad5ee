"""Range checks of the ``synth`` params block: a bad value names its dotted key before any video is made."""
import copy

import pytest

from conftest import REPO_ROOT
from pipeline.core.params import ConfigError, build, load_params
from pipeline.synth.params import SynthConfig


def _block():
    return copy.deepcopy(load_params(REPO_ROOT / "params.yaml")["synth"])


def test_shipped_synth_block_is_in_range():
    assert build(SynthConfig, _block(), "synth").tal.zoom >= 1


@pytest.mark.parametrize("path, value, message", [
    ("resolution", 8, "synth.resolution: must be ≥ 16, got 8"),
    ("crf", 60, "synth.crf: must be ≤ 51, got 60"),
    ("gop", 0, "synth.gop: must be > 0, got 0.0"),
    ("idle_period", -1.0, "synth.idle_period: must be > 0, got -1.0"),
    ("acquisition.old.noise", -2.0, "synth.acquisition.old.noise: must be ≥ 0, got -2.0"),
    ("acquisition.new.tint", [1.0, -0.5, 1.0], "synth.acquisition.new.tint[1]: must be ≥ 0, got -0.5"),
    ("tal.participants", 120, "synth.tal.participants: must be ≤ 99, got 120"),
    ("tal.old_videos", 100, "synth.tal.old_videos: must be ≤ 99, got 100"),
    ("tal.zoom", 0.5, "synth.tal.zoom: must be ≥ 1, got 0.5"),
    ("tal.fps", 0, "synth.tal.fps: must be ≥ 1, got 0"),
    ("captions.twin_prob", 1.5, "synth.captions.twin_prob: must be ≤ 1, got 1.5"),
    ("captions.gap", [-1.0, 2.0], "synth.captions.gap[0]: must be > 0, got -1.0"),
    ("qvh.train_videos", 0, "synth.qvh.train_videos: must be ≥ 1, got 0"),
    ("qvh.queries_per_video", 0, "synth.qvh.queries_per_video: must be ≥ 1, got 0"),
    ("qvh.seed_offset", -1, "synth.qvh.seed_offset: must be ≥ 0, got -1"),
])
def test_out_of_range_synth_knob_names_the_key(path, value, message):
    block = _block()
    *parents, last = path.split(".")
    node = block
    for key in parents:
        node = node[key]
    node[last] = value
    with pytest.raises(ConfigError) as err:
        build(SynthConfig, block, "synth")
    assert str(err.value) == message
