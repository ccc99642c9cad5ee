"""PyAV decoding: the sampling grid, which frame serves which time, seeking, batching and bad files."""
from __future__ import annotations

import numpy as np
import pytest
from features_helpers import make_video, render_frames, truncate, write_video

from pipeline.features.decode import VideoError, decode_at, iter_clips, output_size, plan_windows, probe


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """6 s at 10 fps, 64², keyframe every 10 frames; returns (path, rendered frames)."""
    frames = render_frames(60, size=64, seed=3)
    path = write_video(tmp_path_factory.mktemp("dec") / "v.mp4", frames, fps=10)
    return path, frames


def _closest(img: np.ndarray, frames: np.ndarray) -> int:
    return int(np.argmin(np.abs(frames.astype(np.int16) - img.astype(np.int16)).mean(axis=(1, 2, 3))))


def test_plan_grid_counts_and_clamping():
    plan = plan_windows(151.0, fps=2, frames=4, stride=4)  # QVHighlights-style 2-s clips
    assert plan.num_windows == 76 and plan.time_step == 2.0 and plan.window == 2.0
    np.testing.assert_allclose(plan.times[0], [0.25, 0.75, 1.25, 1.75])
    assert plan.times.max() < 151.0  # the last, partial clip repeats the last grid point inside the video
    epic = plan_windows(10.0, fps=30, frames=32, stride=16)
    assert epic.num_windows == 18 and epic.times.shape == (18, 32)
    assert np.all(np.diff(epic.times[:, 0]) > 0)


def test_plan_rejects_video_shorter_than_one_window():
    with pytest.raises(VideoError, match="shorter than one window"):
        plan_windows(1.4, fps=2, frames=4, stride=4)


def test_decode_serves_frame_on_screen(video):
    path, frames = video
    info = probe(path)
    assert (info.width, info.height, info.fps) == (64, 64, 10.0) and abs(info.duration - 6.0) < 1e-6
    times = [0.0, 0.05, 0.14, 0.21, 3.33, 5.95]
    got = dict(decode_at(str(path), times, size=64))
    assert [_closest(got[i], frames) for i in range(len(times))] == [0, 0, 1, 2, 33, 59]


def test_seek_gives_the_same_frames(video):
    path, _ = video
    times = [0.05, 0.15, 4.55, 5.25]
    seq = dict(decode_at(str(path), times, size=32, seek_gap=100.0))
    seek = dict(decode_at(str(path), times, size=32, seek_gap=0.5))
    for i in range(len(times)):
        np.testing.assert_array_equal(seq[i], seek[i])


@pytest.mark.parametrize("frames,stride", [(4, 4), (8, 3), (3, 5)])
def test_clip_batches_are_the_planned_frames(video, frames, stride):
    path, _ = video
    plan = plan_windows(6.0, fps=10, frames=frames, stride=stride)
    single = dict(decode_at(str(path), (np.arange(60) + 0.5) / 10, size=48))
    batches = list(iter_clips(str(path), plan, size=48, batch=3))
    clips = np.concatenate([b.clips() for b in batches])
    assert clips.shape == (plan.num_windows, frames, 48, 48, 3) and clips.dtype == np.uint8
    expected = np.stack([np.stack([single[int(t * 10)] for t in row]) for row in plan.times])
    np.testing.assert_array_equal(clips, expected)
    # overlapping windows ship each frame once
    assert sum(len(b.frames) for b in batches) <= len(np.unique(plan.times)) + 2 * len(batches) * frames


def test_crop_resize_keeps_aspect(tmp_path):
    path = write_video(tmp_path / "wide.mp4", render_frames(20, size=64)[:, 8:56, :, :], fps=10)  # 64x48
    assert output_size(64, 48, 32, "crop") == (43, 32)
    (i, img), = decode_at(str(path), [0.5], size=32, resize="crop")
    assert img.shape == (32, 32, 3)


def test_bad_files_are_reported(tmp_path, video):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video" * 50)
    with pytest.raises(VideoError, match="unreadable"):
        list(decode_at(str(garbage), [0.5], size=32))
    with pytest.raises(VideoError, match="unreadable"):
        list(decode_at(str(tmp_path / "missing.mp4"), [0.5], size=32))
    cut = truncate(make_video(tmp_path / "cut.mp4", 6.0, fps=10, faststart=True), keep=0.6)
    with pytest.raises(VideoError, match="truncated|corrupt|no decodable frames"):
        list(decode_at(str(cut), [0.5, 5.5], size=32))
    path, _ = video
    with pytest.raises(VideoError, match="truncated"):
        list(decode_at(str(path), [0.5, 9.0], size=32, max_missing=1.0))
    # a tail within max_missing reuses the last frame
    assert len(list(decode_at(str(path), [0.5, 6.5], size=32, max_missing=1.0))) == 2
