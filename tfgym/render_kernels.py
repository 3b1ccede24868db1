"""The renderer's compiled (numba) kernels: front-to-back compositing and plane resampling.

:mod:`tfgym.renderer` arranges a scene's voxels ray by ray for a view and calls these; they
know nothing of scenes, views or rewards. Every kernel is serial unless its name says
``parallel``/``jobs``: an env step must never start numba's thread pool (its spinning
threads cost vector envs 4x on 2 cores).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = [
    "EARLY_STOP",
    "banded",
    "composite_interpolated",
    "composite_jobs",
    "composite_serial",
    "resample_matrix",
    "resample_parallel",
    "resample_serial",
]


def resample_matrix(n_in: int, n_out: int, scale: float, offset: float) -> np.ndarray:
    """Tent-filter resampling of ``n_in`` plane cells onto ``n_out`` pixels, ``(n_out, n_in)``."""
    centres_out = (np.arange(n_out) + 0.5 - n_out / 2) * scale + offset  # in cell units
    half_width = max(scale, 1.0)
    dist = np.abs(centres_out[:, None] - (np.arange(n_in) + 0.5)[None, :])
    return (np.clip(1.0 - dist / half_width, 0.0, None) / half_width).astype(np.float32)


def banded(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A banded resampling matrix as per-row ``(indices, weights)``, zero-padded."""
    width = max(1, int((matrix > 0).sum(axis=1).max()))
    idx = np.zeros((matrix.shape[0], width), dtype=np.int64)
    wts = np.zeros((matrix.shape[0], width), dtype=np.float32)
    for row in range(matrix.shape[0]):
        nz = np.flatnonzero(matrix[row])
        idx[row, : nz.size], wts[row, : nz.size] = nz, matrix[row, nz]
    return idx, wts


@numba.njit(cache=True, fastmath=True)
def _resample_one(plane, ry_idx, ry_w, rx_idx, rx_w, out):  # pragma: no cover - jit
    """Separable banded resampling of one plane ``(rows, cols, 4)`` into ``out`` ``(H, W, 4)``."""
    cols, ch = plane.shape[1], plane.shape[2]
    height, width = ry_idx.shape[0], rx_idx.shape[0]
    tmp = np.zeros((height, cols, ch), dtype=np.float32)
    for h in range(height):
        for j in range(ry_idx.shape[1]):
            w = ry_w[h, j]
            if w != 0.0:
                src = plane[ry_idx[h, j]]
                for c in range(cols):
                    for k in range(ch):
                        tmp[h, c, k] += w * src[c, k]
    for h in range(height):
        for x in range(width):
            for j in range(rx_idx.shape[1]):
                w = rx_w[x, j]
                if w != 0.0:
                    for k in range(ch):
                        out[h, x, k] += w * tmp[h, rx_idx[x, j], k]


@numba.njit(cache=True, fastmath=True)
def resample_serial(planes, ry_idx, ry_w, rx_idx, rx_w):  # pragma: no cover - jit
    """``(b, rows, cols, 4) -> (b, H, W, 4)`` on one core (no prange: no thread pool)."""
    n_tf = planes.shape[0]
    out = np.zeros((n_tf, ry_idx.shape[0], rx_idx.shape[0], planes.shape[3]), dtype=np.float32)
    for t in range(n_tf):
        _resample_one(planes[t], ry_idx, ry_w, rx_idx, rx_w, out[t])
    return out


@numba.njit(cache=True, fastmath=True, parallel=True)
def resample_parallel(planes, ry_idx, ry_w, rx_idx, rx_w):  # pragma: no cover - jit
    """``(b, rows, cols, 4) -> (b, H, W, 4)``, TFs in parallel."""
    n_tf = planes.shape[0]
    out = np.zeros((n_tf, ry_idx.shape[0], rx_idx.shape[0], planes.shape[3]), dtype=np.float32)
    for t in numba.prange(n_tf):
        _resample_one(planes[t], ry_idx, ry_w, rx_idx, rx_w, out[t])
    return out


EARLY_STOP = 1e-4  # rays stop once their transmittance falls below this


@numba.njit(cache=True, fastmath=True)
def _march_rays(bins, shade, classes, lut, contrib, out):  # pragma: no cover - jit
    """Composite rays ``(n, depth)`` front to back into ``out`` ``(n, 4)`` and ``contrib``.

    ``shade`` is uint8 (shade * 255); a ray stops once its transmittance is below
    :data:`EARLY_STOP`. ``contrib`` (class sums) is added to.
    """
    for r in range(bins.shape[0]):
        transmit, red, green, blue = 1.0, 0.0, 0.0, 0.0
        for d in range(bins.shape[1]):
            k = bins[r, d]
            a = lut[k, 3]
            if a <= 0.0:
                continue
            a = min(a, 1.0)
            w = transmit * a
            lit = w * (shade[r, d] * (1.0 / 255.0))
            red += lit * lut[k, 0]
            green += lit * lut[k, 1]
            blue += lit * lut[k, 2]
            contrib[classes[r, d]] += w
            transmit *= 1.0 - a
            if transmit < EARLY_STOP:
                break
        out[r, 0], out[r, 1], out[r, 2], out[r, 3] = red, green, blue, 1.0 - transmit


@numba.njit(cache=True, fastmath=True)
def composite_serial(ray_bins, ray_shade, ray_classes, lut, n_classes):  # pragma: no cover
    """All rays of each LUT ``(b, K, 4)`` on one core (small jobs such as an env step)."""
    n_tf, n_rays = lut.shape[0], ray_bins.shape[0]
    planes = np.zeros((n_tf, n_rays, 4), dtype=np.float32)
    contrib = np.zeros((n_tf, n_classes), dtype=np.float64)
    for t in range(n_tf):
        _march_rays(ray_bins, ray_shade, ray_classes, lut[t], contrib[t], planes[t])
    return planes, contrib


@numba.njit(parallel=True, cache=True, fastmath=True)
def composite_jobs(ray_bins, ray_shade, ray_classes, lut, n_classes, n_blocks):  # pragma: no cover
    """(TF, block of rays) jobs in one parallel region, one row of class sums per job.

    One region per call (not one per TF): a barrier per TF was slow on busy cores. The
    ``+=`` on class sums stays out of the prange body (inside `_march_rays`) and rows are
    indexed by the prange variable itself; otherwise numba builds a whole-array reduction
    with per-thread copies, which ran ten times slower on 16 cores.
    """
    n_tf, n_rays = lut.shape[0], ray_bins.shape[0]
    planes = np.zeros((n_tf, n_rays, 4), dtype=np.float32)
    contrib = np.zeros((n_tf * n_blocks, n_classes), dtype=np.float64)
    size = (n_rays + n_blocks - 1) // n_blocks
    for job in numba.prange(n_tf * n_blocks):
        t, c = job // n_blocks, job % n_blocks
        lo, hi = c * size, min(n_rays, (c + 1) * size)
        _march_rays(
            ray_bins[lo:hi],
            ray_shade[lo:hi],
            ray_classes[lo:hi],
            lut[t],
            contrib[job],
            planes[t, lo:hi],
        )
    return planes, contrib.reshape(n_tf, n_blocks, n_classes).sum(axis=1)


@numba.njit(cache=True, fastmath=True)
def _march_rays_interpolated(u, v, shade, classes, lut, nx, k, contrib, out):  # pragma: no cover
    """Like `_march_rays`, post-classified at ``k`` samples per voxel step.

    ``u``/``v`` are continuous histogram coordinates (intensity, gradient, in bins) per voxel;
    between two voxels of a ray they are interpolated linearly and each sample looks up its
    own bin, so a surface where the grey value crosses the TF's edge is placed to a fraction
    of a voxel instead of a whole one (no "wood-grain" terraces at grazing angles). ``lut``
    alpha must already be corrected for the shorter sample step.
    """
    n_u, n_v = nx, lut.shape[0] // nx
    depth = u.shape[1]
    for r in range(u.shape[0]):
        transmit, red, green, blue = 1.0, 0.0, 0.0, 0.0
        for d in range(depth):
            nxt = min(d + 1, depth - 1)
            u0, du = u[r, d], u[r, nxt] - u[r, d]
            v0, dv = v[r, d], v[r, nxt] - v[r, d]
            s0, ds = float(shade[r, d]), float(shade[r, nxt]) - float(shade[r, d])
            for j in range(k):
                t = j / k
                iu = min(max(int(u0 + du * t), 0), n_u - 1)
                iv = min(max(int(v0 + dv * t), 0), n_v - 1)
                idx = iv * n_u + iu
                a = lut[idx, 3]
                if a <= 0.0:
                    continue
                a = min(a, 1.0)
                w = transmit * a
                lit = w * ((s0 + ds * t) * (1.0 / 255.0))
                red += lit * lut[idx, 0]
                green += lit * lut[idx, 1]
                blue += lit * lut[idx, 2]
                contrib[classes[r, d] if t < 0.5 else classes[r, nxt]] += w
                transmit *= 1.0 - a
            if transmit < EARLY_STOP:
                break
        out[r, 0], out[r, 1], out[r, 2], out[r, 3] = red, green, blue, 1.0 - transmit


@numba.njit(parallel=True, cache=True, fastmath=True)
def composite_interpolated(
    u, v, shade, classes, lut, nx, k, n_classes, n_blocks
):  # pragma: no cover
    """Post-classified compositing (display quality) in (TF, block of rays) parallel jobs."""
    n_tf, n_rays = lut.shape[0], u.shape[0]
    planes = np.zeros((n_tf, n_rays, 4), dtype=np.float32)
    contrib = np.zeros((n_tf * n_blocks, n_classes), dtype=np.float64)
    size = (n_rays + n_blocks - 1) // n_blocks
    for job in numba.prange(n_tf * n_blocks):
        t, c = job // n_blocks, job % n_blocks
        lo, hi = c * size, min(n_rays, (c + 1) * size)
        _march_rays_interpolated(
            u[lo:hi],
            v[lo:hi],
            shade[lo:hi],
            classes[lo:hi],
            lut[t],
            nx,
            k,
            contrib[job],
            planes[t, lo:hi],
        )
    return planes, contrib.reshape(n_tf, n_blocks, n_classes).sum(axis=1)
