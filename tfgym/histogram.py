"""Joint histogram of intensity and gradient magnitude (pure numpy, no I/O).

The joint histogram (JH) is the space in which a 2D transfer function is drawn: intensity on
the x axis, gradient magnitude on the y axis. Axis ranges are chosen robustly so that the
structure of interest fills the image:

* intensity: from the 0.5th to the 99.95th percentile of the voxel values. The lower end sits
  in the air peak; the upper end keeps teeth and cortical bone inside the range while single
  outliers (metal, hot pixels) are clamped into the last bin;
* gradient magnitude (grey-value units per mm, central differences): from 0 to the 99.5th
  percentile, so the few voxels at the skin/air and metal edges do not squeeze everything
  else into the first rows.

Values outside the ranges are clamped into the edge bins (as VTK's texture lookup does), so
every voxel has a bin. Bin ``(j, i)`` is gradient bin ``j`` (row) and intensity bin ``i``
(column); the flat index is ``j * n_intensity_bins + i``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "HistogramRanges",
    "bin_indices",
    "gradient_magnitude",
    "histogram_image",
    "joint_histogram",
]

INTENSITY_PERCENTILES = (0.5, 99.95)
GRADIENT_PERCENTILE = 99.5
COLOR_PERCENTILE = 99.5


def gradient_magnitude(data: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """Gradient magnitude by central differences, in grey-value units per mm.

    Args:
        data: array of shape ``(nz, ny, nx)``.
        spacing: voxel size in mm, ``(z, y, x)`` order.

    Returns:
        float32 array of the same shape.

    Example:
        >>> import numpy as np
        >>> ramp = np.tile(np.arange(5, dtype=np.float32), (3, 3, 1))  # +1 per voxel along x
        >>> float(gradient_magnitude(ramp, (1.0, 1.0, 2.0))[1, 1, 2])
        0.5
    """
    if any(n < 2 for n in data.shape):
        raise ValueError(f"volume must be at least 2 voxels along each axis, got {data.shape}")
    gz, gy, gx = np.gradient(data.astype(np.float32, copy=False), *spacing)
    return np.sqrt(gz * gz + gy * gy + gx * gx).astype(np.float32, copy=False)


@dataclass(frozen=True)
class HistogramRanges:
    """Axis ranges and bin counts of a joint histogram.

    Attributes:
        intensity_min: lower edge of intensity bin 0.
        intensity_max: upper edge of the last intensity bin.
        gradient_max: upper edge of the last gradient bin (the axis starts at 0).
        n_intensity_bins: number of bins along x.
        n_gradient_bins: number of bins along y.
        color_max: top of the colour axis: TF colour schemes run from ``intensity_min`` to
            here (default ``intensity_max``). :meth:`from_data` puts it at the 99.5th
            percentile, below the few metal voxels that stretch the histogram's axis, so
            bone keeps its colours on a scan with fillings. Not compared by ``==``.
    """

    intensity_min: float
    intensity_max: float
    gradient_max: float
    n_intensity_bins: int = 64
    n_gradient_bins: int = 64
    color_max: float | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        """Validate the ranges."""
        if not (np.isfinite(self.intensity_min) and np.isfinite(self.intensity_max)):
            raise ValueError("intensity range must be finite")
        if self.intensity_max <= self.intensity_min:
            raise ValueError(
                f"empty intensity range [{self.intensity_min}, {self.intensity_max}]: "
                "the volume is constant"
            )
        if not (np.isfinite(self.gradient_max) and self.gradient_max > 0):
            raise ValueError(f"gradient_max must be positive, got {self.gradient_max}")
        if self.n_intensity_bins < 2 or self.n_gradient_bins < 2:
            raise ValueError("a joint histogram needs at least 2 bins per axis")
        if self.color_max is not None and not (
            np.isfinite(self.color_max) and self.color_max > self.intensity_min
        ):
            raise ValueError(f"color_max must exceed intensity_min, got {self.color_max}")

    @property
    def color_top(self) -> float:
        """The top of the colour axis (:attr:`color_max`, or ``intensity_max``)."""
        return (
            self.intensity_max
            if self.color_max is None
            else min(float(self.color_max), self.intensity_max)
        )

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_gradient_bins, n_intensity_bins)``: the shape of a LUT's first two axes."""
        return (self.n_gradient_bins, self.n_intensity_bins)

    @classmethod
    def from_data(
        cls, intensity: np.ndarray, gradient: np.ndarray, *, bins: int | tuple[int, int] = 64
    ) -> HistogramRanges:
        """Robust ranges for a volume (see the module docstring).

        Args:
            intensity: voxel values, any shape.
            gradient: gradient magnitudes, same shape.
            bins: bins per axis, or ``(n_intensity_bins, n_gradient_bins)``.

        Returns:
            The ranges.

        Example:
            >>> import numpy as np
            >>> r = HistogramRanges.from_data(np.linspace(0, 1, 1000), np.linspace(0, 2, 1000))
            >>> round(r.intensity_min, 3), round(r.intensity_max, 3), r.shape
            (0.005, 1.0, (64, 64))
        """
        nx, ny = (bins, bins) if isinstance(bins, int) else bins
        sample = np.asarray(intensity, dtype=np.float32).ravel()
        lo, hi = np.percentile(sample, INTENSITY_PERCENTILES)
        if hi <= lo:  # nearly constant volume: fall back to the full range
            lo, hi = float(sample.min()), float(sample.max())
        gmax = float(np.percentile(np.asarray(gradient, dtype=np.float32), GRADIENT_PERCENTILE))
        if gmax <= 0:
            gmax = float(np.max(gradient)) or 1.0
        top = float(np.percentile(sample, COLOR_PERCENTILE))
        color_max = top if lo < top < hi else None
        return cls(float(lo), float(hi), gmax, int(nx), int(ny), color_max)

    def intensity_to_bin(self, value: np.ndarray | float) -> np.ndarray:
        """Continuous intensity coordinate in bin units (0 = lower edge, nx = upper edge)."""
        width = self.intensity_max - self.intensity_min
        return (
            (np.asarray(value, dtype=np.float64) - self.intensity_min)
            / width
            * self.n_intensity_bins
        )

    def gradient_to_bin(self, value: np.ndarray | float) -> np.ndarray:
        """Continuous gradient coordinate in bin units (0 = zero gradient, ny = gradient_max)."""
        return np.asarray(value, dtype=np.float64) / self.gradient_max * self.n_gradient_bins

    def bin_to_intensity(self, u: np.ndarray | float) -> np.ndarray:
        """Inverse of :meth:`intensity_to_bin`."""
        width = self.intensity_max - self.intensity_min
        return self.intensity_min + np.asarray(u, dtype=np.float64) / self.n_intensity_bins * width

    def bin_to_gradient(self, v: np.ndarray | float) -> np.ndarray:
        """Inverse of :meth:`gradient_to_bin`."""
        return np.asarray(v, dtype=np.float64) / self.n_gradient_bins * self.gradient_max


def bin_indices(intensity: np.ndarray, gradient: np.ndarray, ranges: HistogramRanges) -> np.ndarray:
    """Flat JH bin index ``j * n_intensity_bins + i`` of every voxel, clamped to the edges.

    Args:
        intensity: voxel values.
        gradient: gradient magnitudes, same shape.
        ranges: the histogram ranges.

    Returns:
        int32 array of the input's shape.

    Example:
        >>> r = HistogramRanges(0.0, 4.0, 2.0, 4, 2)
        >>> bin_indices(np.array([-1.0, 0.5, 3.9, 9.0]), np.array([0.0, 1.5, 0.1, 5.0]), r)
        array([0, 4, 3, 7], dtype=int32)
    """
    i = np.floor(ranges.intensity_to_bin(intensity)).clip(0, ranges.n_intensity_bins - 1)
    j = np.floor(ranges.gradient_to_bin(gradient)).clip(0, ranges.n_gradient_bins - 1)
    return (j.astype(np.int32) * ranges.n_intensity_bins + i.astype(np.int32)).astype(np.int32)


def joint_histogram(bins: np.ndarray, ranges: HistogramRanges) -> np.ndarray:
    """Voxel counts per JH bin, shape ``(n_gradient_bins, n_intensity_bins)``, int64."""
    counts = np.bincount(bins.ravel(), minlength=ranges.n_intensity_bins * ranges.n_gradient_bins)
    return counts.reshape(ranges.shape)


def histogram_image(counts: np.ndarray) -> np.ndarray:
    """Log-scaled uint8 image of a joint histogram, channel-first ``(1, ny, nx)``.

    ``pixel = 255 * log(1 + count) / log(1 + max count)``; row ``j`` is gradient bin ``j``
    (row 0 = zero gradient), column ``i`` is intensity bin ``i``.

    Example:
        >>> histogram_image(np.array([[0, 1], [3, 0]]))
        array([[[  0, 128],
                [255,   0]]], dtype=uint8)
    """
    logc = np.log1p(counts.astype(np.float64))
    peak = logc.max()
    scaled = logc / peak if peak > 0 else logc
    return np.round(scaled * 255).astype(np.uint8)[None]
