"""PyAV decoding of exactly the frames a clip recipe needs, resized on the fly.

A *recipe* samples a video on a regular grid at ``fps`` (grid point ``k`` at ``(k + 0.5) / fps`` seconds, the
centre of its frame period) and groups the grid into windows of ``frames`` consecutive points, one window every
``stride`` points. Row ``r`` of a feature array is window ``r``: it starts at ``r * stride / fps`` seconds
(``time_step``) and covers ``frames / fps`` seconds (``window``). Examples:

* EPIC-KITCHENS SlowFast: ``fps=30, frames=32, stride=16`` (time_step 0.533 s, window 1.067 s).
* InternVideo2 per 2-s clip (QVHighlights): ``fps=2, frames=4, stride=4`` — 4 frames uniformly spread over
  each 2-s clip (at 0.25, 0.75, 1.25, 1.75 s), one row per clip.

The number of windows is ``ceil((N - frames) / stride) + 1`` for ``N = ceil(duration * fps - 0.5)`` grid points
inside the video, so the last window may reach past the end; its grid points are clamped to the last one inside
the video (QVHighlights-style: a 151-s video gives 76 two-second clips). A video with ``N < frames`` is shorter
than one window and is rejected with :class:`VideoError`.

Decoding walks the stream once in presentation order. A grid time ``t`` is served by the last frame whose
timestamp is ≤ ``t`` (the frame on screen at ``t``); only those frames are converted, each with one
``reformat(width, height, "rgb24")`` call (scale + colour conversion in one swscale pass, one cached swscale
context per video). When the next
needed time is more than ``seek_gap`` seconds ahead, the decoder seeks (to the preceding keyframe) instead of
decoding the gap. Truncated, corrupt or unreadable files raise :class:`VideoError` with the reason.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, Sequence

import numpy as np

_INTERPOLATION = {"bilinear": "BILINEAR", "bicubic": "BICUBIC", "area": "AREA", "fast_bilinear": "FAST_BILINEAR"}


class VideoError(RuntimeError):
    """A video cannot give the requested clips; ``reason`` says why (corrupt, truncated, too short, ...)."""

    def __init__(self, reason: str, video: str | None = None):
        self.reason = reason
        self.video = video
        super().__init__(f"{video}: {reason}" if video else reason)


@dataclass(frozen=True)
class VideoInfo:
    """What the container header says about the first video stream."""

    duration: float | None
    fps: float | None
    width: int
    height: int
    frames: int | None


@dataclass(frozen=True)
class ClipPlan:
    """Grid times (seconds) of every window's frames: ``times[r, f]`` for row ``r`` and frame ``f``."""

    times: np.ndarray  # [windows, frames] float64
    time_step: float
    window: float

    @property
    def num_windows(self) -> int:
        return int(self.times.shape[0])


def plan_windows(duration: float, fps: float, frames: int, stride: int) -> ClipPlan:
    """The sampling plan of a video of ``duration`` seconds (see the module docstring for the grid)."""
    if fps <= 0 or frames < 1 or stride < 1:
        raise ValueError(f"bad recipe fps={fps} frames={frames} stride={stride}")
    n_grid = max(0, math.ceil(duration * fps - 0.5 - 1e-9))
    if n_grid < frames:
        raise VideoError(
            f"shorter than one window ({duration:.3f} s gives {n_grid} frames at {fps:g} fps; "
            f"a window needs {frames} = {frames / fps:.3f} s)"
        )
    n_windows = math.ceil((n_grid - frames) / stride) + 1
    idx = np.arange(n_windows)[:, None] * stride + np.arange(frames)[None, :]
    idx = np.minimum(idx, n_grid - 1)
    return ClipPlan(times=(idx + 0.5) / fps, time_step=stride / fps, window=frames / fps)


def output_size(src_w: int, src_h: int, size: int, resize: str) -> tuple[int, int]:
    """(width, height) to scale a frame to: ``squash`` → size×size; ``crop`` → short side = size (crop after)."""
    if resize == "squash":
        return size, size
    if resize == "crop":
        if src_w <= src_h:
            return size, max(size, round(src_h * size / src_w))
        return max(size, round(src_w * size / src_h)), size
    raise ValueError(f"unknown resize mode {resize!r} (squash | crop)")


def _center_crop(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    if h == size and w == size:
        return img
    top, left = (h - size) // 2, (w - size) // 2
    return img[top : top + size, left : left + size]


def probe(path: str) -> VideoInfo:
    """Header facts of the first video stream; an unreadable file raises :class:`VideoError`."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError("no video stream")
            stream = container.streams.video[0]
            duration = None
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000
            rate = stream.average_rate or stream.guessed_rate
            return VideoInfo(
                duration=duration,
                fps=float(rate) if rate else None,
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                frames=stream.frames or None,
            )
    except VideoError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise VideoError(f"unreadable: {exc}") from None


def decode_at(
    path: str,
    times: Sequence[float],
    size: int,
    resize: str = "squash",
    interpolation: str = "bilinear",
    seek_gap: float = 4.0,
    max_missing: float = 1.0,
    threads: int = 0,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(i, frame)`` for every time in the sorted ``times``, in order; ``frame`` is uint8 [size, size, 3].

    Times beyond the last decodable frame reuse that frame when they lie at most ``max_missing`` seconds past
    it; further than that the video is reported as truncated. ``threads`` > 0 enables codec frame threading.
    """
    import av
    from av.video.reformatter import VideoReformatter

    times = np.asarray(times, dtype=np.float64)
    if times.size and np.any(np.diff(times) < 0):
        raise ValueError("decode_at needs sorted times")
    interp = _INTERPOLATION[interpolation]
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise VideoError(f"unreadable: {exc}") from None
    try:
        if not container.streams.video:
            raise VideoError("no video stream")
        stream = container.streams.video[0]
        if threads > 0:
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = threads
        tb_exact = stream.time_base or Fraction(1, 1_000_000)
        tb = float(tb_exact)  # float arithmetic per frame: Fraction math costs as much as decoding a small frame
        t0 = float(stream.start_time * tb_exact) if stream.start_time is not None else 0.0
        cc = stream.codec_context
        out_w, out_h = output_size(cc.width, cc.height, size, resize)
        converted: tuple[object, np.ndarray] | None = None  # (frame, array) of the last conversion
        # one reformatter for the whole video: it keeps its swscale context (a fresh one per frame costs ~10x)
        reformatter = VideoReformatter()

        def convert(frame) -> np.ndarray:
            nonlocal converted
            if converted is None or converted[0] is not frame:
                rgb = reformatter.reformat(frame, out_w, out_h, "rgb24", interpolation=interp, threads=1)
                arr = rgb.to_ndarray()
                converted = (frame, _center_crop(arr, size) if resize == "crop" else arr)
            return converted[1]

        tlist = times.tolist()  # Python floats: indexing a numpy array per frame is measurably slower
        i, n = 0, len(tlist)
        prev, prev_t = None, -math.inf
        sought = -math.inf
        decoded = 0
        frames = container.decode(stream)
        while i < n:
            try:
                frame = next(frames, None)
            except (av.error.FFmpegError, OSError, ValueError) as exc:
                raise VideoError(f"corrupt stream after {max(prev_t, 0.0):.2f} s: {exc}") from None
            if frame is None:
                break
            pts = frame.pts
            if pts is None:
                continue
            decoded += 1
            ft = pts * tb - t0
            while i < n and tlist[i] < ft - 1e-6:
                # tlist[i] lies before this frame: the previous frame is the one on screen then
                yield i, convert(prev if prev is not None else frame)
                i += 1
            prev, prev_t = frame, ft
            if i < n and tlist[i] - ft > seek_gap and tlist[i] > sought:
                # jump to the keyframe before the next needed time; never seek twice towards the same time
                # (the keyframe may lie more than seek_gap before it)
                sought = tlist[i]
                target = int(round((tlist[i] + t0) / tb_exact))
                container.seek(target, stream=stream, backward=True, any_frame=False)
                frames = container.decode(stream)
                prev, prev_t = None, -math.inf
        if i < n:
            if prev is None:
                if decoded:  # frames existed before the last seek, none after it
                    raise VideoError(f"truncated: no decodable frames from {sought:.2f} s on")
                raise VideoError("no decodable frames")
            missing = float(times[-1]) - prev_t
            if missing > max_missing:
                raise VideoError(
                    f"truncated: frames end at {prev_t:.2f} s but {float(times[-1]):.2f} s is needed"
                )
            while i < n:
                yield i, convert(prev)
                i += 1
    finally:
        container.close()


@dataclass(frozen=True)
class ClipBatch:
    """Consecutive windows of one video: ``frames`` uint8 [U, size, size, 3] holds each needed frame once and
    ``index`` int64 [b, frames] picks every window's frames from it (``frames[index]`` = the clips)."""

    frames: np.ndarray
    index: np.ndarray

    def clips(self) -> np.ndarray:
        """The windows as uint8 [b, frames, size, size, 3] (a copy; overlapping windows share frames)."""
        return self.frames[self.index]


def iter_clips(
    path: str,
    plan: ClipPlan,
    size: int,
    batch: int,
    resize: str = "squash",
    interpolation: str = "bilinear",
    seek_gap: float = 4.0,
    max_missing: float = 1.0,
    threads: int = 0,
) -> Iterator[ClipBatch]:
    """Yield the plan's windows in order, ``batch`` windows at a time, as :class:`ClipBatch`.

    Frames shared by overlapping windows are decoded, converted and shipped once (the gather into windows
    happens where the clips are used, e.g. on the GPU); only frames still needed by later windows are kept,
    so long videos stream in bounded memory.
    """
    uniq, inverse = np.unique(plan.times, return_inverse=True)
    inverse = inverse.reshape(plan.times.shape)
    # windows complete in order because the grid is monotonic; a batch needs the contiguous frame range
    # first_needed[w] .. last_needed[end - 1]
    last_needed = inverse.max(axis=1).tolist()
    first_needed = inverse.min(axis=1).tolist()
    frames: list[np.ndarray] = []  # frames first_kept, first_kept + 1, ... (those still needed)
    first_kept = 0
    w = 0
    n_win = plan.num_windows
    for j, frame in decode_at(path, uniq, size, resize, interpolation, seek_gap, max_missing, threads):
        frames.append(frame)
        while w < n_win:
            end = min(w + batch, n_win)
            if last_needed[end - 1] > j:
                break
            lo, hi = first_needed[w], last_needed[end - 1]
            block = np.empty((hi - lo + 1,) + frame.shape, dtype=np.uint8)
            for k, f in enumerate(frames[lo - first_kept : hi - first_kept + 1]):
                block[k] = f  # plain row copies: cheaper than np.stack on many small frame views
            yield ClipBatch(block, inverse[w:end] - lo)
            w = end
            keep_from = first_needed[w] if w < n_win else j + 1
            del frames[: keep_from - first_kept]
            first_kept = keep_from
