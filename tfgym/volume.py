"""Volumes: a 3D scalar array with its voxel spacing and optional tissue labels.

Array conventions used everywhere in tfgym:

* ``Volume.data`` is float32 with shape ``(nz, ny, nx)`` -- numpy order, exactly what
  ``SimpleITK.GetArrayFromImage`` returns.
* ``Volume.spacing`` is in millimetres **in the same (z, y, x) order** (the reverse of
  ``SimpleITK.Image.GetSpacing()``).
* Patient orientation follows DICOM LPS on the index axes: x grows towards the patient's
  left, y towards posterior (the face is at low y), z towards superior (the top of the head
  is at high z).

Loading scans (`load_volume`, DICOM series, the bundled scans) lives in :mod:`tfgym.volume_io`,
which builds on this module; this module holds only the types and pure array code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

__all__ = [
    "Tissue",
    "Volume",
    "VolumeError",
    "regrid",
    "resample_volume",
]


class Tissue(IntEnum):
    """Tissue labels of labelled volumes (phantoms, or intensity classes of real scans)."""

    AIR = 0
    SOFT_TISSUE = 1
    BONE = 2
    TEETH = 3
    METAL = 4


class VolumeError(ValueError):
    """A volume could not be loaded or is not usable; the message names the file and problem."""


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D scan.

    Attributes:
        data: float32 array of shape ``(nz, ny, nx)``.
        spacing: voxel size in mm in ``(z, y, x)`` order.
        name: a short human-readable name (scene name or file stem).
        labels: optional uint8 array of ``Tissue`` values, same shape as ``data``.
    """

    data: np.ndarray
    spacing: tuple[float, float, float]
    name: str = "volume"
    labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        """Validate shapes and dtypes."""
        if self.data.ndim != 3:
            raise VolumeError(f"{self.name}: volume must be 3D, got shape {self.data.shape}")
        if self.data.dtype != np.float32:
            object.__setattr__(self, "data", np.ascontiguousarray(self.data, dtype=np.float32))
        if len(self.spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in self.spacing):
            raise VolumeError(
                f"{self.name}: spacing must be three positive numbers, got {self.spacing}"
            )
        object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing))
        if self.labels is not None:
            if self.labels.shape != self.data.shape:
                raise VolumeError(
                    f"{self.name}: labels shape {self.labels.shape} != data shape {self.data.shape}"
                )
            if self.labels.dtype != np.uint8:
                object.__setattr__(self, "labels", self.labels.astype(np.uint8))

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(nz, ny, nx)``."""
        return self.data.shape

    @property
    def extent_mm(self) -> tuple[float, float, float]:
        """Physical size in mm in ``(z, y, x)`` order."""
        return tuple(n * s for n, s in zip(self.shape, self.spacing, strict=True))  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# Resampling
# --------------------------------------------------------------------------------------------


def _positions(n_in: int, n_out: int, step: float) -> np.ndarray:
    """Input coordinates of centred output samples ``(n_in-1)/2 + (i-(n_out-1)/2)*step``."""
    return (n_in - 1) / 2 + (np.arange(n_out) - (n_out - 1) / 2) * step


def _resample_axis(
    array: np.ndarray, axis: int, n_out: int, step: float, *, nearest: bool
) -> np.ndarray:
    """Resample one axis at centred positions ``(n_in-1)/2 + (i-(n_out-1)/2)*step``.

    Linear (or nearest-neighbour) interpolation with edge clamping; applied axis by axis this
    is exactly trilinear (or nearest-neighbour) interpolation on the separable grid.
    """
    n_in = array.shape[axis]
    positions = np.clip(_positions(n_in, n_out, step), 0.0, n_in - 1)
    if nearest:
        return np.take(array, np.floor(positions + 0.5).astype(np.intp), axis=axis)
    lower = np.floor(positions).astype(np.intp)
    upper = np.minimum(lower + 1, n_in - 1)
    shape = [1] * array.ndim
    shape[axis] = n_out
    weight = (positions - lower).astype(array.dtype).reshape(shape)
    low = np.take(array, lower, axis=axis)
    return low + weight * (np.take(array, upper, axis=axis) - low)


def _upsample_axis_cubic(array: np.ndarray, axis: int, n_out: int, step: float) -> np.ndarray:
    """Cubic B-spline interpolation along one axis (for enlarging; edges mirrored).

    The samples are first turned into B-spline coefficients (``scipy.ndimage``'s prefilter),
    then each output sample is the weighted sum of its four neighbouring coefficients. Unlike
    linear interpolation the result is smooth (C2) across the old samples, so an iso-surface
    of an enlarged scan shows no stair-steps or stripes at the old slice positions.
    """
    from scipy import ndimage

    n_in = array.shape[axis]
    if n_in < 4:
        return _resample_axis(array, axis, n_out, step, nearest=False)
    coef = ndimage.spline_filter1d(array, order=3, axis=axis, mode="mirror", output=np.float32)
    positions = np.clip(_positions(n_in, n_out, step), 0.0, n_in - 1)
    base = np.floor(positions).astype(np.intp)
    t = positions - base
    # uniform cubic B-spline basis for the taps base-1 .. base+2
    weights = (
        (1 - t) ** 3 / 6,
        (3 * t**3 - 6 * t**2 + 4) / 6,
        (-3 * t**3 + 3 * t**2 + 3 * t + 1) / 6,
        t**3 / 6,
    )
    shape = [1] * array.ndim
    shape[axis] = n_out
    out = np.zeros(tuple(n_out if k == axis else n for k, n in enumerate(array.shape)), np.float32)
    for offset, w in zip((-1, 0, 1, 2), weights, strict=True):
        index = base + offset
        # mirror at the edges, as the prefilter assumed
        index = np.where(index < 0, -index, index)
        index = np.where(index > n_in - 1, 2 * (n_in - 1) - index, index)
        out += np.take(coef, index, axis=axis) * w.astype(np.float32).reshape(shape)
    # the spline may overshoot at sharp edges: keep values inside the scan's range
    return np.clip(out, array.min(), array.max(), out=out)


def regrid(
    data: np.ndarray,
    spacing: tuple[float, float, float],
    shape: tuple[int, int, int],
    new_spacing: tuple[float, float, float],
) -> np.ndarray:
    """Resample an array onto another grid centred on the same point (see `resample_volume`).

    Along an axis that shrinks (new spacing coarser) the data are low-pass filtered, then
    interpolated linearly; along an axis that grows they are interpolated with a cubic
    B-spline; an axis whose grid is unchanged is left alone.

    Args:
        data: array ``(nz, ny, nx)``.
        spacing: its voxel size in mm, ``(z, y, x)``.
        shape: the new grid's shape.
        new_spacing: the new grid's voxel size in mm.

    Returns:
        float32 array of ``shape``.

    Example:
        >>> regrid(np.ones((4, 4, 4), np.float32), (2.0,) * 3, (8, 8, 2), (1.0, 1.0, 4.0)).shape
        (8, 8, 2)
    """
    from scipy import ndimage

    steps = np.asarray(new_spacing, dtype=np.float64) / np.asarray(spacing, dtype=np.float64)
    # Axes that shrink most go first: later axes then work on less data.
    order = sorted(range(3), key=lambda axis: shape[axis] / data.shape[axis])
    out = data
    for axis in order:
        n_out, step = int(shape[axis]), float(steps[axis])
        if n_out == data.shape[axis] and np.isclose(step, 1.0, rtol=0, atol=1e-9):
            continue
        if step > 1.0:
            out = ndimage.gaussian_filter1d(out, (step - 1) / 2, axis=axis, mode="nearest")
            out = _resample_axis(out, axis, n_out, step, nearest=False)
        elif step < 1.0 - 1e-9:
            out = _upsample_axis_cubic(out, axis, n_out, step)
        else:
            out = _resample_axis(out, axis, n_out, step, nearest=False)
    return np.ascontiguousarray(out, dtype=np.float32)


def resample_volume(volume: Volume, max_size: int) -> Volume:
    """Resample a volume to isotropic voxels, ``max_size`` along its longest physical side.

    The new spacing is ``max(extent_mm) / max_size``; every other axis gets
    ``round(extent / spacing)`` voxels (at least 1), so the physical aspect ratio is kept. The
    new grid is centred on the old one (voxel-centre convention), so nothing shifts. Along a
    downsampled axis data are interpolated linearly after a Gaussian anti-aliasing filter
    (sigma ``(factor - 1) / 2`` old voxels, as in scikit-image); along an enlarged axis they are
    interpolated with a cubic B-spline, so surfaces stay smooth instead of showing the old
    slices as stair-steps. Labels take the nearest voxel.
    The work runs axis by axis, which gives the same result as 3D smoothing then trilinear
    interpolation, at a fraction of the cost.

    Args:
        volume: the volume to resample.
        max_size: voxels along the longest physical side, an int >= 8.

    Returns:
        A new `Volume` with the same name, isotropic spacing and resampled labels.

    Raises:
        ValueError: if ``max_size`` is not an int >= 8.

    Example:
        >>> head = Volume(np.zeros((93, 64, 64), np.float32), (1.5, 3.2, 3.2), name="headsq")
        >>> small = resample_volume(head, 32)
        >>> small.shape, small.spacing
        ((22, 32, 32), (6.4, 6.4, 6.4))
    """
    if isinstance(max_size, bool) or not isinstance(max_size, int | np.integer) or max_size < 8:
        raise ValueError(f"max_size must be an int >= 8, got {max_size!r}")
    extent = np.asarray(volume.extent_mm, dtype=np.float64)
    spacing = float(extent.max() / int(max_size))
    new_shape = np.maximum(1, np.round(extent / spacing)).astype(int)
    new_shape[int(np.argmax(extent))] = int(max_size)
    shape = (int(new_shape[0]), int(new_shape[1]), int(new_shape[2]))
    data = regrid(volume.data, volume.spacing, shape, (spacing,) * 3)
    labels = volume.labels
    if labels is not None:
        steps = spacing / np.asarray(volume.spacing)
        for axis in range(3):
            if shape[axis] != labels.shape[axis] or not np.isclose(steps[axis], 1.0):
                labels = _resample_axis(labels, axis, shape[axis], float(steps[axis]), nearest=True)
    return Volume(
        np.ascontiguousarray(data, dtype=np.float32),
        (spacing, spacing, spacing),
        name=volume.name,
        labels=None if labels is None else np.ascontiguousarray(labels),
    )
