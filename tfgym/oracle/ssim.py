"""Batched SSIM against one reference image, compiled: the structure term's arithmetic.

The structural similarity index of Wang et al. (2004): local means, variances and covariance
under a gaussian window (sigma :data:`SSIM_SIGMA` pixels, radius ``3.5 sigma``, zero padding),
``C1 = 0.01^2`` and ``C2 = 0.03^2`` for values in [0, 1], averaged over the image; negative
values (anti-correlated images) count as 0. The reference's blurred statistics are computed
once (:class:`SSIMReference`), so scoring a rendering costs one shrink and three blurs.

The kernels are numba-compiled and serial for small batches: an env step must start no
thread pool (neither numba's nor OpenBLAS's -- on a busy machine BLAS threads made a product
of two 64 x 64 matrices a hundred times slower than the single-threaded product).

Example:
    >>> ref = np.zeros((16, 16), np.float32); ref[4:12, 4:12] = 1.0
    >>> noisy = np.clip(ref + np.random.default_rng(0).normal(0, 0.3, ref.shape), 0, 1)
    >>> ssim(np.stack([ref, noisy, 1 - ref]), ref).round(2)
    array([1.  , 0.53, 0.  ])
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numba
import numpy as np

__all__ = ["SSIM_SIGMA", "SSIMReference", "luminance", "resample_luminance", "ssim"]

SSIM_SIGMA = 1.5  # gaussian window in pixels (Wang et al. 2004)
SSIM_TRUNCATE = 3.5  # window radius in sigmas (an 11 x 11 window at sigma 1.5)
SSIM_C1 = 0.01**2  # (K1 * L)^2 with dynamic range L = 1
SSIM_C2 = 0.03**2
LUMA = (0.299, 0.587, 0.114)  # Rec. 601 weights
PARALLEL_MIN_BATCH = 4  # images from which the kernels run on numba's thread pool


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Luminance of rgb images ``(..., 3)`` in [0, 255], float32 ``(...)`` in [0, 1]."""
    x = np.asarray(rgb, dtype=np.float32)
    w = np.float32(1.0 / 255.0)
    return (x[..., 0] * LUMA[0] + x[..., 1] * LUMA[1] + x[..., 2] * LUMA[2]) * w


@functools.lru_cache(maxsize=16)
def gaussian_kernel(sigma: float = SSIM_SIGMA) -> np.ndarray:
    """The normalised 1D gaussian window, float32 ``(2 * radius + 1,)`` (cached, read-only)."""
    radius = int(SSIM_TRUNCATE * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = (kernel / kernel.sum()).astype(np.float32)
    kernel.setflags(write=False)
    return kernel


@numba.njit(cache=True, fastmath=True)
def _blur(image, kernel, tmp, out):  # pragma: no cover - jit
    """Separable zero-padded convolution of a square ``image`` with the 1D ``kernel``."""
    n, radius = image.shape[0], kernel.shape[0] // 2
    tmp[:] = 0.0
    out[:] = 0.0
    for h in range(n):
        for j in range(kernel.shape[0]):
            src = h + j - radius
            if 0 <= src < n:
                w = kernel[j]
                for c in range(n):
                    tmp[h, c] += w * image[src, c]
    for h in range(n):
        for j in range(kernel.shape[0]):
            off = j - radius
            w = kernel[j]
            for c in range(max(0, -off), min(n, n - off)):
                out[h, c] += w * tmp[h, c + off]


@numba.njit(cache=True, fastmath=True)
def _ssim_one(x, y, mu_y, sq_y, kernel, c1, c2):  # pragma: no cover - jit
    """Mean SSIM map of one image: the three blurs of ``x``, ``x^2``, ``x y`` fused."""
    n, taps = x.shape[0], kernel.shape[0]
    radius = taps // 2
    rows = np.zeros((3, n, n), np.float32)  # the blurs along the first axis
    for h in range(n):
        for j in range(taps):
            src = h + j - radius
            if 0 <= src < n:
                w = kernel[j]
                for c in range(n):
                    v = x[src, c]
                    rows[0, h, c] += w * v
                    rows[1, h, c] += w * v * v
                    rows[2, h, c] += w * v * y[src, c]
    total = 0.0
    stats = np.zeros((3, n), np.float32)
    cf1, cf2 = np.float32(c1), np.float32(c2)
    for h in range(n):
        stats[:] = 0.0
        for j in range(taps):
            off = j - radius
            w = kernel[j]
            for c in range(max(0, -off), min(n, n - off)):
                stats[0, c] += w * rows[0, h, c + off]
                stats[1, c] += w * rows[1, h, c + off]
                stats[2, c] += w * rows[2, h, c + off]
        row_total = np.float32(0.0)
        for c in range(n):
            mx, my = stats[0, c], mu_y[h, c]
            var_x = stats[1, c] - mx * mx
            var_y = sq_y[h, c] - my * my
            cov = stats[2, c] - mx * my
            num = (np.float32(2.0) * mx * my + cf1) * (np.float32(2.0) * cov + cf2)
            row_total += num / ((mx * mx + my * my + cf1) * (var_x + var_y + cf2))
        total += row_total
    return max(0.0, min(1.0, total / (n * n)))


@numba.njit(cache=True, fastmath=True)
def _ssim_serial(images, y, mu_y, sq_y, kernel, c1, c2):  # pragma: no cover - jit
    out = np.empty(images.shape[0], np.float64)
    for i in range(images.shape[0]):
        out[i] = _ssim_one(images[i], y, mu_y, sq_y, kernel, c1, c2)
    return out


@numba.njit(cache=True, fastmath=True, parallel=True)
def _ssim_parallel(images, y, mu_y, sq_y, kernel, c1, c2):  # pragma: no cover - jit
    out = np.empty(images.shape[0], np.float64)
    for i in numba.prange(images.shape[0]):
        out[i] = _ssim_one(images[i], y, mu_y, sq_y, kernel, c1, c2)
    return out


@numba.njit(cache=True, fastmath=True)
def _shrink_one(rgb, r_idx, r_w, out):  # pragma: no cover - jit
    """Luminance of one uint8 rgb image, resampled by the banded matrix on both axes."""
    size, m = rgb.shape[0], r_idx.shape[0]
    lum = np.empty((size, size), np.float32)
    for h in range(size):
        for c in range(size):
            px = rgb[h, c]
            lum[h, c] = (
                np.float32(LUMA[0]) * px[0]
                + np.float32(LUMA[1]) * px[1]
                + np.float32(LUMA[2]) * px[2]
            ) * np.float32(1.0 / 255.0)
    tmp = np.zeros((m, size), np.float32)
    for h in range(m):
        for j in range(r_idx.shape[1]):
            w = r_w[h, j]
            if w != 0.0:
                src = r_idx[h, j]
                for c in range(size):
                    tmp[h, c] += w * lum[src, c]
    for h in range(m):
        for c in range(m):
            acc = np.float32(0.0)
            for j in range(r_idx.shape[1]):
                acc += r_w[c, j] * tmp[h, r_idx[c, j]]
            out[h, c] = acc


@numba.njit(cache=True, fastmath=True)
def _shrink_serial(rgb, r_idx, r_w):  # pragma: no cover - jit
    out = np.empty((rgb.shape[0], r_idx.shape[0], r_idx.shape[0]), np.float32)
    for i in range(rgb.shape[0]):
        _shrink_one(rgb[i], r_idx, r_w, out[i])
    return out


@numba.njit(cache=True, fastmath=True, parallel=True)
def _shrink_parallel(rgb, r_idx, r_w):  # pragma: no cover - jit
    out = np.empty((rgb.shape[0], r_idx.shape[0], r_idx.shape[0]), np.float32)
    for i in numba.prange(rgb.shape[0]):
        _shrink_one(rgb[i], r_idx, r_w, out[i])
    return out


def resample_luminance(rgb: np.ndarray, matrix: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Luminance of uint8 rgb images ``(batch, H, H, 3)``, resampled as ``M @ lum @ M.T``.

    Args:
        rgb: the images.
        matrix: the resampling matrix ``M`` of shape ``(size, H)`` in banded form, as
            :func:`tfgym.render_kernels.banded` returns it (per row: indices, weights).

    Returns:
        float32 ``(batch, size, size)``.

    Raises:
        ValueError: images that are not square rgb, or a matrix reaching past them.
    """
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 4 or rgb.shape[3] != 3 or rgb.shape[1] != rgb.shape[2]:
        raise ValueError(f"renderings must be (batch, H, H, 3) rgb, got shape {rgb.shape}")
    idx, w = matrix
    if idx.size and int(idx.max()) >= rgb.shape[1]:
        raise ValueError(f"the resampling matrix reaches past images of {rgb.shape[1]} pixels")
    kernel = _shrink_parallel if len(rgb) >= PARALLEL_MIN_BATCH else _shrink_serial
    return kernel(rgb, idx, w)


@dataclass(frozen=True)
class SSIMReference:
    """A reference image with its blurred statistics, ready to compare images against.

    Attributes:
        image: float32 ``(H, H)`` in [0, 1].
        mean: its local means under the window; ``square``: the local means of its square.
        kernel: the 1D gaussian window.
    """

    image: np.ndarray
    mean: np.ndarray
    square: np.ndarray
    kernel: np.ndarray

    @classmethod
    def of(cls, image: np.ndarray, sigma: float = SSIM_SIGMA) -> SSIMReference:
        """Precompute the statistics of ``image`` (square, values in [0, 1]).

        Raises:
            ValueError: an image that is not square.
        """
        y = np.ascontiguousarray(image, dtype=np.float32)
        if y.ndim != 2 or y.shape[0] != y.shape[1]:
            raise ValueError(f"the SSIM reference must be a square image, got shape {y.shape}")
        kernel = gaussian_kernel(float(sigma))
        tmp, mean, square = (np.empty_like(y) for _ in range(3))
        _blur(y, kernel, tmp, mean)
        _blur(y * y, kernel, tmp, square)
        for a in (y, mean, square):
            a.setflags(write=False)
        return cls(y, mean, square, kernel)

    def ssim(self, images: np.ndarray) -> np.ndarray:
        """Mean SSIM of each of ``images`` ``(batch, H, H)`` against the reference.

        Returns:
            float64 ``(batch,)`` in [0, 1].

        Raises:
            ValueError: images of another shape than the reference.
        """
        x = np.ascontiguousarray(images, dtype=np.float32)
        if x.ndim != 3 or x.shape[1:] != self.image.shape:
            raise ValueError(f"images {x.shape} must be (batch, *{self.image.shape})")
        kernel = _ssim_parallel if len(x) >= PARALLEL_MIN_BATCH else _ssim_serial
        args = (self.image, self.mean, self.square, self.kernel, SSIM_C1, SSIM_C2)
        return kernel(x, *args)


def ssim(images: np.ndarray, reference: np.ndarray, *, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """Mean SSIM of each image ``(batch, H, H)`` against one reference ``(H, H)``, in [0, 1].

    Raises:
        ValueError: non-square images, or images unlike the reference.
    """
    return SSIMReference.of(reference, sigma).ssim(images)
