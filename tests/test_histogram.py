"""Tests of tfgym.histogram against slow per-voxel references."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from tfgym.histogram import (
    HistogramRanges,
    bin_indices,
    gradient_magnitude,
    histogram_image,
    joint_histogram,
)

# ----------------------------------------------------------------------- slow references


def reference_gradient_magnitude(
    data: np.ndarray, spacing: tuple[float, float, float]
) -> np.ndarray:
    """Per-voxel loop: central differences inside, one-sided differences on the faces."""
    out = np.zeros(data.shape, dtype=np.float64)
    shape = data.shape
    for idx in np.ndindex(shape):
        total = 0.0
        for axis in range(3):
            n, h = shape[axis], spacing[axis]
            i = idx[axis]
            lo = list(idx)
            hi = list(idx)
            if i == 0:
                hi[axis] = 1
                d = (float(data[tuple(hi)]) - float(data[idx])) / h
            elif i == n - 1:
                lo[axis] = n - 2
                d = (float(data[idx]) - float(data[tuple(lo)])) / h
            else:
                lo[axis], hi[axis] = i - 1, i + 1
                d = (float(data[tuple(hi)]) - float(data[tuple(lo)])) / (2.0 * h)
            total += d * d
        out[idx] = math.sqrt(total)
    return out


def reference_bin(value: float, low: float, high: float, n: int) -> int:
    """Bin of ``value`` among ``n`` equal bins on ``[low, high]`` by counting passed edges."""
    width = (high - low) / n
    k = 0
    for edge in range(1, n):  # interior edges; values beyond the ends stay in the end bins
        if value >= low + edge * width:
            k = edge
    return k


# ------------------------------------------------------------------- gradient magnitude


def test_gradient_magnitude_matches_loop_reference_with_anisotropic_spacing(rng) -> None:
    data = rng.normal(0.0, 100.0, size=(5, 6, 7)).astype(np.float32)
    spacing = (2.5, 0.7, 1.3)
    got = gradient_magnitude(data, spacing)
    assert got.dtype == np.float32
    assert got.shape == data.shape
    np.testing.assert_allclose(
        got, reference_gradient_magnitude(data, spacing), rtol=1e-5, atol=1e-3
    )


def test_gradient_magnitude_uses_spacing_per_axis_in_zyx_order() -> None:
    """A ramp along each axis alone: the gradient is the step divided by that axis' spacing."""
    spacing = (4.0, 2.0, 0.5)  # (z, y, x)
    for axis in range(3):
        shape = [4, 5, 6]
        ramp = np.arange(shape[axis], dtype=np.float32) * 3.0
        view = [1, 1, 1]
        view[axis] = shape[axis]
        data = np.broadcast_to(ramp.reshape(view), shape).copy()
        got = gradient_magnitude(data, spacing)
        np.testing.assert_allclose(got, 3.0 / spacing[axis], rtol=1e-6)


def test_gradient_magnitude_of_constant_is_zero_and_rejects_thin_volumes() -> None:
    assert np.all(gradient_magnitude(np.full((3, 3, 3), 7.0, np.float32), (1, 1, 1)) == 0)
    with pytest.raises(ValueError, match="at least 2 voxels"):
        gradient_magnitude(np.zeros((1, 4, 4), np.float32), (1, 1, 1))


# ------------------------------------------------------------------------- bin indices


def test_bin_indices_match_per_voxel_reference_including_clamping(rng) -> None:
    ranges = HistogramRanges(-200.0, 1800.0, 50.0, n_intensity_bins=13, n_gradient_bins=7)
    # values well beyond both ends of both axes, so clamping is exercised
    intensity = rng.uniform(-1500.0, 3000.0, size=(6, 7, 8))
    gradient = rng.uniform(0.0, 120.0, size=(6, 7, 8))
    got = bin_indices(intensity, gradient, ranges)
    assert got.dtype == np.int32
    assert got.shape == intensity.shape
    n_clamped_low = n_clamped_high = 0
    for idx in np.ndindex(intensity.shape):
        v, g = float(intensity[idx]), float(gradient[idx])
        i = reference_bin(v, -200.0, 1800.0, 13)
        j = reference_bin(g, 0.0, 50.0, 7)
        assert got[idx] == j * 13 + i, (idx, v, g)
        n_clamped_low += v < -200.0
        n_clamped_high += v > 1800.0 or g > 50.0
    assert n_clamped_low > 10
    assert n_clamped_high > 10


def test_bin_indices_edges_and_extremes() -> None:
    ranges = HistogramRanges(0.0, 4.0, 2.0, n_intensity_bins=4, n_gradient_bins=2)
    intensity = np.array([0.0, 1.0, 3.999, 4.0, 1e30, -1e30, 2.5])
    gradient = np.array([0.0, 0.999, 1.0, 2.0, 1e30, 0.0, 1.5])
    got = bin_indices(intensity, gradient, ranges)
    # lower edges belong to their bin; the upper end (and beyond) is clamped into the last bin
    np.testing.assert_array_equal(got, [0, 1, 4 + 3, 4 + 3, 4 + 3, 0, 4 + 2])


# ------------------------------------------------------------------- joint histogram


def test_joint_histogram_counts_every_voxel_once(rng) -> None:
    ranges = HistogramRanges(0.0, 1.0, 1.0, n_intensity_bins=9, n_gradient_bins=5)
    intensity = rng.normal(0.5, 0.5, size=(10, 11, 12))
    gradient = np.abs(rng.normal(0.5, 0.5, size=(10, 11, 12)))
    bins = bin_indices(intensity, gradient, ranges)
    counts = joint_histogram(bins, ranges)
    assert counts.shape == (5, 9)  # (gradient bins, intensity bins)
    assert counts.sum() == intensity.size
    expected = Counter(int(b) for b in bins.ravel())
    for j in range(5):
        for i in range(9):
            assert counts[j, i] == expected.get(j * 9 + i, 0)


def test_joint_histogram_rows_are_gradient_columns_are_intensity() -> None:
    ranges = HistogramRanges(0.0, 10.0, 10.0, n_intensity_bins=10, n_gradient_bins=5)
    bins = bin_indices(np.array([9.5, 9.5, 0.5]), np.array([0.5, 0.5, 9.5]), ranges)
    counts = joint_histogram(bins, ranges)
    assert counts[0, 9] == 2  # high intensity, low gradient
    assert counts[4, 0] == 1  # low intensity, high gradient
    assert counts.sum() == 3


# ------------------------------------------------------------------- histogram image


def test_histogram_image_log_scaling_dtype_and_shape() -> None:
    counts = np.array([[0, 1, 9], [99, 999, 0], [3, 0, 0], [0, 0, 7]])
    img = histogram_image(counts)
    assert img.dtype == np.uint8
    assert img.shape == (1, 4, 3)
    expected = np.round(255 * np.log(1 + counts) / np.log(1 + 999)).astype(np.uint8)
    np.testing.assert_array_equal(img[0], expected)
    assert img[0, 1, 1] == 255  # the peak is white
    assert np.all(img[0][counts == 0] == 0)  # empty bins are black
    # log, not linear: 9 of 999 counts is far brighter than 9/999 of full scale
    assert img[0, 0, 2] == round(255 * math.log(10) / math.log(1000))


def test_histogram_image_of_empty_histogram_is_black() -> None:
    img = histogram_image(np.zeros((4, 5), dtype=np.int64))
    assert img.shape == (1, 4, 5)
    assert img.dtype == np.uint8
    assert not img.any()


# --------------------------------------------------------------------- ranges


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"intensity_min": 5.0, "intensity_max": 5.0, "gradient_max": 1.0}, "constant"),
        ({"intensity_min": 5.0, "intensity_max": 1.0, "gradient_max": 1.0}, "empty intensity"),
        ({"intensity_min": float("nan"), "intensity_max": 1.0, "gradient_max": 1.0}, "finite"),
        ({"intensity_min": 0.0, "intensity_max": float("inf"), "gradient_max": 1.0}, "finite"),
        ({"intensity_min": 0.0, "intensity_max": 1.0, "gradient_max": 0.0}, "gradient_max"),
        ({"intensity_min": 0.0, "intensity_max": 1.0, "gradient_max": float("nan")}, "gradient"),
        (
            {"intensity_min": 0.0, "intensity_max": 1.0, "gradient_max": 1.0, "n_gradient_bins": 1},
            "at least 2 bins",
        ),
    ],
    ids=["equal", "reversed", "nan-min", "inf-max", "zero-gradient", "nan-gradient", "one-bin"],
)
def test_histogram_ranges_validation(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        HistogramRanges(**kwargs)


def test_from_data_on_constant_volume_raises_clear_error() -> None:
    data = np.full((6, 6, 6), 42.0, dtype=np.float32)
    grad = gradient_magnitude(data, (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="constant"):
        HistogramRanges.from_data(data, grad)


def test_from_data_nearly_constant_volume_falls_back_to_full_range() -> None:
    """One voxel differs: the percentiles collapse, the full min..max range is used."""
    data = np.zeros((20, 20, 20), dtype=np.float32)
    data[5, 5, 5] = 3.0
    r = HistogramRanges.from_data(data, gradient_magnitude(data, (1.0, 1.0, 1.0)), bins=8)
    assert (r.intensity_min, r.intensity_max) == (0.0, 3.0)
    assert r.gradient_max > 0


def test_from_data_bins_order_and_percentiles(rng) -> None:
    intensity = rng.uniform(-1000.0, 3000.0, size=100_000)
    gradient = rng.uniform(0.0, 200.0, size=100_000)
    r = HistogramRanges.from_data(intensity, gradient, bins=(32, 16))
    assert (r.n_intensity_bins, r.n_gradient_bins) == (32, 16)
    assert r.shape == (16, 32)
    # uniform data: the 0.5th / 99.95th / 99.5th percentiles are at known places
    assert r.intensity_min == pytest.approx(-1000.0 + 0.005 * 4000.0, abs=15.0)
    assert r.intensity_max == pytest.approx(-1000.0 + 0.9995 * 4000.0, abs=15.0)
    assert r.gradient_max == pytest.approx(0.995 * 200.0, abs=1.5)


def test_robust_ranges_ignore_a_single_huge_outlier(rng) -> None:
    data = rng.normal(0.0, 1.0, size=(30, 30, 30)).astype(np.float32)
    data[10:20, 10:20, 10:20] += 50.0  # a "bone" block
    spacing = (1.0, 1.0, 1.0)
    clean = HistogramRanges.from_data(data, gradient_magnitude(data, spacing))
    spiked = data.copy()
    spiked[15, 5, 5] = 1e6  # one hot voxel (or a metal bead)
    robust = HistogramRanges.from_data(spiked, gradient_magnitude(spiked, spacing))
    assert robust.intensity_min == pytest.approx(clean.intensity_min, rel=0.01)
    assert robust.intensity_max == pytest.approx(clean.intensity_max, rel=0.02)
    assert robust.gradient_max == pytest.approx(clean.gradient_max, rel=0.02)
    assert robust.intensity_max < 100.0
    assert robust.gradient_max < 1000.0
    # ...and the outlier is clamped into the last intensity bin, not lost
    bins = bin_indices(spiked, gradient_magnitude(spiked, spacing), robust)
    assert bins[15, 5, 5] % robust.n_intensity_bins == robust.n_intensity_bins - 1


def test_bin_coordinate_conversions_are_inverse(rng) -> None:
    r = HistogramRanges(-300.0, 2700.0, 80.0, n_intensity_bins=48, n_gradient_bins=24)
    u = rng.uniform(0.0, 48.0, 50)
    v = rng.uniform(0.0, 24.0, 50)
    np.testing.assert_allclose(r.intensity_to_bin(r.bin_to_intensity(u)), u, atol=1e-9)
    np.testing.assert_allclose(r.gradient_to_bin(r.bin_to_gradient(v)), v, atol=1e-9)
    assert float(r.intensity_to_bin(-300.0)) == 0.0
    assert float(r.intensity_to_bin(2700.0)) == 48.0
    assert float(r.gradient_to_bin(80.0)) == 24.0


def test_colour_axis_stops_below_a_few_metal_voxels():
    rng = np.random.default_rng(0)
    tissue = rng.normal(1000.0, 300.0, 100_000)
    metal = np.full(200, 30_000.0)  # 0.2 % of the voxels, far above everything else
    data = np.concatenate([tissue, metal]).astype(np.float32)
    r = HistogramRanges.from_data(data, np.abs(data - 1000.0))
    assert r.color_max is not None and r.color_top < 0.2 * r.intensity_max
    assert r == HistogramRanges(r.intensity_min, r.intensity_max, r.gradient_max)  # not compared
    with pytest.raises(ValueError, match="color_max"):
        HistogramRanges(0.0, 1.0, 1.0, color_max=-1.0)


def test_bone_keeps_bone_colours_on_a_scan_with_metal():
    from tfgym.oracle.reference import reference_action
    from tfgym.scene import load_scene
    from tfgym.transfer_function import TransferFunction
    from tfgym.volume import Tissue

    scene = load_scene("phantom-41")  # a maxillofacial field of view with metal crowns
    assert scene.ranges.color_top < 0.5 * scene.ranges.intensity_max
    lut = TransferFunction.from_action(reference_action(scene)).lut(scene.ranges)
    bone = scene.tissue_intensity(Tissue.BONE, [50.0])[0]
    column = int(np.clip(scene.ranges.intensity_to_bin(bone), 0, 63))
    red, green, _ = lut[0, column, :3]
    assert red > 0.8 and green > 0.5  # flesh to ivory, not the scheme's dark red
