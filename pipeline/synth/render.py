"""Numpy rasteriser of the synthetic world: counter background, shapes, camera and sensor.

A frame is drawn in four steps:

1. **Counter** (appearance domain): a static textured background — tiles with grout lines and speckle
   ("dark", "white") or wood grain ("other") — drawn once per video on a canvas padded for camera shake.
2. **Camera** (acquisition domain): an integer-pixel shake offset per frame (a damped random walk, clipped
   to ``shake`` pixels) selects the crop of the canvas; the shapes move with the same offset.
3. **Shapes**: each visible actor is rasterised inside its bounding box from a signed distance function
   (1-pixel anti-aliased edge) and alpha-blended over the background in actor order.
4. **Sensor**: per-channel gain (brightness × tint) and additive Gaussian noise (a per-video bank of noise
   images, one drawn per frame), then rounding to uint8.

The viewpoint domain is a zoom: scene coordinates are magnified by ``plan.zoom`` about the frame centre, so a
zoomed video sees a cropped, enlarged part of the same world. Everything is seeded by the plan.
"""
from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np

from pipeline.synth import vocab
from pipeline.synth.events import VideoPlan
from pipeline.synth.tracks import actor_tracks

NOISE_BANK = 8  # distinct noise images per video (cycled at random; cheaper than fresh noise per frame)


def _triangle_sdf(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Equilateral triangle, apex up, circumradius 1.2 (approximate SDF: max of the three half-planes).

    Larger than the unit circle so that its area is comparable to the other shapes of the same size."""
    d1 = v  # bottom edge, normal pointing down
    d2 = -0.866 * u - 0.5 * v
    d3 = 0.866 * u - 0.5 * v
    return np.maximum(np.maximum(d1, d2), d3) - 0.6


def _star_sdf(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Five-pointed star, tip up, outer radius 1.15, inner radius 0.6 (radial distance to the outline)."""
    rho = np.hypot(u, v)
    phi = np.arctan2(u, -v)  # 0 at the top tip
    sector = 2.0 * np.pi / 5.0
    t = np.abs(np.mod(phi + sector / 2.0, sector) - sector / 2.0) / (sector / 2.0)  # 0 at tip, 1 between
    return rho - (1.15 - 0.55 * t)


def shape_sdf(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance (in radii) of local coordinates ``u, v`` to the unit shape; < 0 is inside."""
    if shape == "circle":
        return np.hypot(u, v) - 1.0
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) - 0.8
    if shape == "triangle":
        return _triangle_sdf(u, v)
    if shape == "star":
        return _star_sdf(u, v)
    raise ValueError(f"unknown shape {shape!r}")


def counter_canvas(counter: str, size: int, pad: int, zoom: float, seed: int) -> np.ndarray:
    """Static counter background ``[size+2*pad, size+2*pad, 3]`` float32 for one kitchen (seeded)."""
    spec = vocab.COUNTERS[counter]
    rng = np.random.default_rng(seed)
    n = size + 2 * pad
    pix = (np.arange(n) - pad + 0.5 - size / 2.0) / (size * zoom) + 0.5  # pixel → scene coordinate
    sx, sy = np.meshgrid(pix, pix)
    ox, oy = rng.uniform(0, 1, 2)
    if spec.texture == "tiles":
        tile = 0.25
        fx = np.abs(np.mod(sx + ox, tile) - tile / 2.0)
        fy = np.abs(np.mod(sy + oy, tile) - tile / 2.0)
        grout = (np.maximum(fx, fy) > tile / 2.0 - 0.012).astype(np.float32) * spec.grout
        blotch = sum(np.sin(2 * np.pi * (rng.uniform(0.5, 2.0) * sx + rng.uniform(0.5, 2.0) * sy)
                            + rng.uniform(0, 2 * np.pi)) for _ in range(3)) / 3.0
        tex = grout + spec.contrast * (0.5 * blotch + rng.standard_normal((n, n)))
    else:  # wood grain: wavy stripes plus fine grain
        wave = 0.08 * np.sin(2 * np.pi * (1.3 * sx + ox))
        tex = spec.contrast * (np.sin(2 * np.pi * 7.0 * (sy + wave + oy))
                               + 0.4 * rng.standard_normal((n, n)))
    canvas = np.asarray(spec.base, dtype=np.float32)[None, None, :] + tex.astype(np.float32)[:, :, None]
    return np.clip(canvas, 0, 255).astype(np.float32)


def shake_offsets(rng: np.random.Generator, n_frames: int, shake: float) -> np.ndarray:
    """Integer camera offsets ``[n_frames, 2]`` (dx, dy): a smooth damped random walk (head-motion-like
    drift rather than per-frame jitter) clipped to ``shake`` pixels."""
    out = np.zeros((n_frames, 2), dtype=np.int64)
    if shake <= 0:
        return out
    o = np.zeros(2)
    for i in range(n_frames):
        o = np.clip(0.92 * o + rng.normal(0.0, 0.3 * shake, 2), -shake, shake)
        out[i] = np.rint(o)
    return out


class Renderer:
    """Renders the frames of one plan (see the module docstring); ``acq`` is an acquisition config."""

    def __init__(self, plan: VideoPlan, resolution: int, acq: Any, idle_amplitude: float, idle_period: float):
        self.plan = plan
        self.size = resolution
        self.tracks = actor_tracks(plan, idle_amplitude, idle_period)
        rng = np.random.default_rng(plan.render_seed)
        self.pad = int(math.ceil(acq.shake)) + 1
        self.canvas = counter_canvas(plan.counter, resolution, self.pad, plan.zoom, plan.texture_seed)
        self.offsets = shake_offsets(rng, plan.n_frames, acq.shake)
        self.gain = (acq.brightness * np.asarray(acq.tint, dtype=np.float32)).astype(np.float32)
        self.noise = (rng.standard_normal((NOISE_BANK, resolution, resolution, 3)) * acq.noise).astype(np.float32)
        self.noise_index = rng.integers(NOISE_BANK, size=plan.n_frames)
        self._coords = np.arange(resolution, dtype=np.float32) + 0.5

    def _draw_actor(self, img: np.ndarray, shape: str, cx: float, cy: float, radius: float, angle: float,
                    alpha: float, rgb: np.ndarray) -> None:
        """Blend one shape (pixel centre ``cx, cy``, pixel ``radius``) into ``img`` in place."""
        reach = radius * 1.25 + 1.5  # every unit shape lies within 1.2 radii
        x0, x1 = max(0, int(cx - reach)), min(self.size, int(math.ceil(cx + reach)))
        y0, y1 = max(0, int(cy - reach)), min(self.size, int(math.ceil(cy + reach)))
        if x0 >= x1 or y0 >= y1:
            return
        dx = (self._coords[x0:x1] - cx)[None, :]
        dy = (self._coords[y0:y1] - cy)[:, None]
        if angle != 0.0:  # rotate the sampling grid by -angle to rotate the shape by +angle
            ca, sa = math.cos(angle), math.sin(angle)
            u = (ca * dx + sa * dy) / radius
            v = (-sa * dx + ca * dy) / radius
        else:
            u, v = dx / radius, dy / radius
        cover = np.clip(0.5 - shape_sdf(shape, u, v) * radius, 0.0, 1.0) * alpha
        region = img[y0:y1, x0:x1]
        region += cover[:, :, None] * (rgb[None, None, :] - region)

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` as ``uint8 [H, W, 3]`` RGB."""
        p, s = self.pad, self.size
        dx, dy = self.offsets[i]
        img = self.canvas[p + dy: p + dy + s, p + dx: p + dx + s].copy()
        scale = s * self.plan.zoom
        for actor, tr in zip(self.plan.actors, self.tracks):
            alpha = float(tr["alpha"][i])
            if alpha <= 1e-3:
                continue
            cx = (tr["x"][i] - 0.5) * scale + s / 2.0 - dx  # the world moves against the camera
            cy = (tr["y"][i] - 0.5) * scale + s / 2.0 - dy
            self._draw_actor(img, actor.shape, cx, cy, tr["r"][i] * scale, float(tr["angle"][i]), alpha,
                             tr["rgb"][i].astype(np.float32))
        img *= self.gain
        img += self.noise[self.noise_index[i]]
        np.clip(img, 0.0, 255.0, out=img)
        return np.rint(img).astype(np.uint8)

    def frames(self) -> Iterator[np.ndarray]:
        """All frames in order."""
        for i in range(self.plan.n_frames):
            yield self.frame(i)
