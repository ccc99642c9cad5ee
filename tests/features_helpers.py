"""Tiny video fixtures for the feature tests: PyAV-written H.264 clips with moving coloured shapes."""
from __future__ import annotations

from pathlib import Path

import numpy as np

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 70, 220), "yellow": (230, 210, 40)}


def render_frames(n: int, size: int = 64, colour: str = "red", shape: str = "square", motion: str = "right",
                  background: int = 30, seed: int = 0) -> np.ndarray:
    """``n`` RGB frames [n, size, size, 3] of one shape moving across a noisy background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    frames = np.empty((n, size, size, 3), dtype=np.uint8)
    r = size // 6
    for k in range(n):
        p = k / max(1, n - 1)
        cx = int(r + p * (size - 2 * r)) if motion == "right" else int(size - r - p * (size - 2 * r))
        cy = size // 2
        if shape == "square":
            mask = (abs(xx - cx) <= r) & (abs(yy - cy) <= r)
        else:
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        img = np.full((size, size, 3), background, dtype=np.int16) + rng.integers(-8, 9, (size, size, 3))
        img[mask] = COLOURS[colour]
        frames[k] = np.clip(img, 0, 255).astype(np.uint8)
    return frames


def write_video(path: Path, frames: np.ndarray, fps: int = 10, faststart: bool = False) -> Path:
    """Write uint8 RGB frames as an H.264 yuv420p mp4 (PyAV); ``faststart`` puts the index first, so a cut
    file still opens and fails mid-stream."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), mode="w", options=options) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "g": "10"}
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_video(path: Path, seconds: float, fps: int = 10, size: int = 64, faststart: bool = False, **kw) -> Path:
    """A ``seconds``-long clip of a moving shape."""
    return write_video(path, render_frames(int(round(seconds * fps)), size=size, **kw), fps=fps, faststart=faststart)


def truncate(path: Path, keep: float = 0.4) -> Path:
    """Cut the file to ``keep`` of its bytes (a download that stopped half way)."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * keep)])
    return Path(path)
