"""The CBCT scanner model: blur, cupping, metal streaks, noise and grey-value mapping.

:func:`scan` turns the noise-free HU a :class:`tfgym.phantoms.grid.HeadGrid` has painted into
what a cone-beam CT scanner would reconstruct, in its uncalibrated grey values.
"""

from __future__ import annotations

import math

import numpy as np

from tfgym.phantoms.grid import HeadGrid
from tfgym.phantoms.hu import HU_AIR
from tfgym.phantoms.spec import FOV_MM, PhantomSpec
from tfgym.volume import Tissue

__all__ = ["scan"]


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur (sigma in voxels) with edge replication, float32."""
    r = max(1, math.ceil(3.0 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    for axis in range(3):
        pad = [(0, 0)] * 3
        pad[axis] = (r, r)
        p = np.pad(a, pad, mode="edge")
        n = a.shape[axis]

        def tap(j: int, p: np.ndarray = p, axis: int = axis, n: int = n) -> np.ndarray:
            index = [slice(None)] * 3
            index[axis] = slice(j, j + n)
            return p[tuple(index)]

        out = tap(r) * np.float32(k[r])
        for j in range(r):  # symmetric kernel: one multiply per pair of taps
            out += (tap(j) + tap(2 * r - j)) * np.float32(k[j])
        a = out
    return a


def scan(
    spec: PhantomSpec, head: HeadGrid, texture: np.random.Generator, noise: np.random.Generator
) -> np.ndarray:
    """Turn the painted HU volume into the scanner's grey values (artefacts, gain, offset)."""
    hu = head.hu
    # Smooth soft-tissue variation (muscle vs connective tissue, brain inhomogeneity).
    wave = np.zeros(1, np.float32)
    for k, axis in enumerate(head.axes[::-1]):  # z, y, x
        f = texture.uniform(0.02, 0.08, 3)
        ph = texture.uniform(0, 2 * np.pi, 3)
        w = np.zeros_like(axis)
        for fi, pi in zip(f, ph, strict=True):
            w += 6.0 * np.cos(fi * axis + pi)
        shape = [1, 1, 1]
        shape[k] = -1
        wave = wave + w.astype(np.float32).reshape(shape)
    hu = hu + wave * (head.lab == Tissue.SOFT_TISSUE)
    hu = _blur(hu, spec.blur)
    # Cupping: attenuation drops smoothly toward the axial centre of the field of view.
    x, y = head.axes[0], head.axes[1]
    r2 = (x[None, :] ** 2 + y[:, None] ** 2) / (0.25 * (FOV_MM[1] ** 2 + FOV_MM[2] ** 2))
    factor = (1.0 - spec.cupping * np.clip(1.0 - r2, 0.0, 1.0)).astype(np.float32)
    hu = (hu - HU_AIR) * factor + HU_AIR
    if spec.has_metal and head.metal:
        _add_streaks(hu, head, texture)
    # Slightly correlated noise (as reconstructed CBCT noise is), scaled to spec.noise HU.
    n = _blur(noise.standard_normal(hu.shape, dtype=np.float32), 0.6)
    kern = np.exp(-0.5 * (np.arange(-2, 3) / 0.6) ** 2)
    std = float(np.sqrt(np.sum((kern / kern.sum()) ** 2))) ** 3
    hu += n * np.float32(spec.noise / std)
    return spec.to_grey(hu)


def _add_streaks(hu: np.ndarray, head: HeadGrid, rng: np.random.Generator) -> None:
    """Bright and dark streaks radiating from metal in the axial slices that contain it."""
    x, y, z = (a.astype(np.float32) for a in head.axes)
    h = head.h
    width = max(1.0, 0.6 * h)
    profiles, clear = [], np.ones((y.size, x.size), np.float32)
    for (cx, cy, _), _ in head.metal:  # streaks start at the metal's edge, not inside it
        r2 = (x[None, :] - cx) ** 2 + (y[:, None] - cy) ** 2
        clear *= 1.0 - np.exp(-r2 / (2.0 * (2.5 + h) ** 2))
    for (cx, cy, cz), half in head.metal:
        prof = np.clip(1.0 - (np.abs(z - cz) - half) / (1.5 * h), 0.0, 1.0)
        profiles.append(prof)
        dx, dy = x[None, :] - cx, y[:, None] - cy
        r = np.sqrt(dx * dx + dy * dy)
        theta = np.arctan2(dy, dx)
        fine = np.cos(rng.integers(16, 40) * theta + rng.uniform(0, 2 * np.pi))
        field2d = 0.25 * fine * (0.5 + 0.5 * np.cos(3 * theta + rng.uniform(0, 2 * np.pi)))
        for ang, amp in zip(rng.uniform(0, np.pi, 8), rng.uniform(-1.0, 0.7, 8), strict=True):
            perp = np.abs(dx * math.sin(ang) - dy * math.cos(ang))
            field2d = field2d + amp * np.exp(-0.5 * (perp / width) ** 2)
        field2d *= clear * rng.uniform(600, 1100) * np.exp(-r / rng.uniform(30.0, 60.0))
        idx = np.nonzero(prof)[0]
        hu[idx] += prof[idx, None, None] * field2d.astype(np.float32)[None]
    # Dark bands between pairs of metal objects in the same slices (photon starvation).
    for i in range(len(head.metal)):
        for j in range(i + 1, len(head.metal)):
            prof = np.minimum(profiles[i], profiles[j])
            idx = np.nonzero(prof)[0]
            if idx.size == 0:
                continue
            (ax, ay, _), _ = head.metal[i]
            (bx, by, _), _ = head.metal[j]
            ex, ey = bx - ax, by - ay
            px, py = x[None, :] - ax, y[:, None] - ay
            t = np.clip((px * ex + py * ey) / max(ex * ex + ey * ey, 1e-6), 0.0, 1.0)
            d2 = (px - t * ex) ** 2 + (py - t * ey) ** 2
            band = -rng.uniform(500, 1000) * clear * np.exp(-0.5 * d2 / (2.0 * width) ** 2)
            hu[idx] += prof[idx, None, None] * band.astype(np.float32)[None]
