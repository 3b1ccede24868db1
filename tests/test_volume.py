"""Tests for tfgym.volume: loading scans through SimpleITK, DICOM series, resampling."""

from __future__ import annotations

import gzip
import locale
import re
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from tfgym.volume import Tissue, Volume, VolumeError, resample_volume
from tfgym.volume_io import (
    SUPPORTED_SUFFIXES,
    DicomSeries,
    bundled_scan_path,
    list_dicom_series,
    load_volume,
)

SPACING_XYZ = (0.5, 0.7, 1.3)  # SimpleITK order
SPACING_ZYX = (1.3, 0.7, 0.5)  # tfgym order
STUDY_UID = "1.2.826.0.1.3680043.2.1125.1.1"
SERIES_A = "1.2.826.0.1.3680043.2.1125.2.1"
SERIES_B = "1.2.826.0.1.3680043.2.1125.2.2"


@pytest.fixture
def array() -> np.ndarray:
    """A small int16 scan, shape (z, y, x) = (5, 6, 7), with no symmetry."""
    return np.random.default_rng(0).integers(-1000, 3000, size=(5, 6, 7)).astype(np.int16)


def _image(array: np.ndarray, spacing=SPACING_XYZ, direction=None) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    if direction is not None:
        image.SetDirection(direction)
    return image


def _write(image: sitk.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))
    return path


def write_dicom_series(
    directory: Path,
    array: np.ndarray,
    *,
    spacing=SPACING_XYZ,
    series_uid: str = SERIES_A,
    description: str = "synthetic head",
    prefix: str = "slice",
) -> None:
    """Write ``array`` as a CT series, one file per slice with the tags a reader needs.

    ITK's DICOM writer (GDCM) switches the process to the C locale; the caller's locale is
    restored, or later subprocess output in the same pytest process decodes as ASCII.
    """
    saved = locale.setlocale(locale.LC_ALL)
    try:
        _write_dicom_series(directory, array, spacing, series_uid, description, prefix)
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def _write_dicom_series(
    directory: Path,
    array: np.ndarray,
    spacing: tuple[float, float, float],
    series_uid: str,
    description: str,
    prefix: str,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    image = _image(array, spacing)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(array.shape[0]):
        slice_k = image[:, :, k]
        position = image.TransformIndexToPhysicalPoint((0, 0, k))
        tags = {
            "0008|0016": "1.2.840.10008.5.1.4.1.1.2",  # SOP class: CT image storage
            "0008|0018": f"{series_uid}.{k + 1}",  # SOP instance UID
            "0008|0060": "CT",
            "0008|103e": description,
            "0018|0050": str(spacing[2]),  # slice thickness
            "0020|000d": STUDY_UID,
            "0020|000e": series_uid,
            "0020|0013": str(k + 1),  # instance number
            "0020|0032": "\\".join(f"{p:g}" for p in position),  # image position (patient)
            "0020|0037": "1\\0\\0\\0\\1\\0",  # image orientation (patient)
        }
        for tag, value in tags.items():
            slice_k.SetMetaData(tag, value)
        writer.SetFileName(str(directory / f"{prefix}{k:03d}.dcm"))
        writer.Execute(slice_k)


# ------------------------------------------------------------------------------------------
# Round trips
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", SUPPORTED_SUFFIXES)
def test_file_round_trip(tmp_path, array, suffix):
    path = _write(_image(array), tmp_path / suffix.strip(".") / f"scan{suffix}")
    volume = load_volume(path)
    assert volume.data.dtype == np.float32
    assert volume.shape == array.shape
    np.testing.assert_array_equal(volume.data, array)
    np.testing.assert_allclose(volume.spacing, SPACING_ZYX, rtol=1e-6)
    assert volume.name == "scan"
    assert volume.labels is None


def test_dicom_series_round_trip(tmp_path, array):
    write_dicom_series(tmp_path / "ct", array)
    volume = load_volume(tmp_path / "ct")
    np.testing.assert_array_equal(volume.data, array)
    np.testing.assert_allclose(volume.spacing, SPACING_ZYX, rtol=1e-6)
    assert volume.name == "ct"
    assert list_dicom_series(tmp_path / "ct") == [DicomSeries(SERIES_A, 5, "synthetic head")]


def test_name_and_path_types(tmp_path, array):
    path = _write(_image(array), tmp_path / "my.scan.nii.gz")
    assert load_volume(path).name == "my.scan"
    assert load_volume(str(path), name="head").name == "head"


@pytest.mark.parametrize("suffix", [".mha", ".nii"])
@pytest.mark.parametrize(
    ("direction", "expected"),
    [
        ((-1, 0, 0, 0, 1, 0, 0, 0, 1), lambda a: a[:, :, ::-1]),  # x index runs to the right
        ((1, 0, 0, 0, -1, 0, 0, 0, 1), lambda a: a[:, ::-1, :]),  # y index runs anterior
        ((1, 0, 0, 0, 1, 0, 0, 0, -1), lambda a: a[::-1]),  # z index runs inferior
        ((-1, 0, 0, 0, -1, 0, 0, 0, 1), lambda a: a[:, ::-1, ::-1]),  # RAS-like, as NIfTI
    ],
    ids=["flip-x", "flip-y", "flip-z", "flip-xy"],
)
def test_flipped_axes_read_back_in_lps(tmp_path, array, suffix, direction, expected):
    path = _write(_image(array, direction=direction), tmp_path / f"flipped{suffix}")
    volume = load_volume(path)
    np.testing.assert_array_equal(volume.data, expected(array))
    np.testing.assert_allclose(volume.spacing, SPACING_ZYX, rtol=1e-6)


def test_permuted_axes_read_back_in_lps(tmp_path, array):
    # Index axis 0 runs along physical y, index axis 1 along physical x (columns of the matrix).
    direction = (0, 1, 0, 1, 0, 0, 0, 0, 1)
    volume = load_volume(_write(_image(array, direction=direction), tmp_path / "swapped.mha"))
    np.testing.assert_array_equal(volume.data, array.transpose(0, 2, 1))
    # Physical x now has index axis 1's spacing (0.7), physical y index axis 0's (0.5).
    np.testing.assert_allclose(volume.spacing, (1.3, 0.5, 0.7), rtol=1e-6)


def test_lps_puts_each_voxel_at_its_physical_position(tmp_path, array):
    """Independent check: LPS index order sorts voxels by their physical coordinates."""
    direction = (0, 0, -1, 1, 0, 0, 0, -1, 0)  # a rotation: axes permuted and flipped
    image = _image(array, direction=direction)
    volume = load_volume(_write(image, tmp_path / "rotated.nrrd"))
    points = np.array(
        [image.TransformIndexToPhysicalPoint((i, j, k)) for k, j, i in np.ndindex(array.shape)]
    )
    order = np.lexsort((points[:, 0], points[:, 1], points[:, 2]))  # z slowest, x fastest
    np.testing.assert_array_equal(volume.data.ravel(), array.ravel()[order])


# ------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------


def test_missing_path(tmp_path):
    with pytest.raises(VolumeError, match=r"nothere\.nii: no such file or directory"):
        load_volume(tmp_path / "nothere.nii")


@pytest.mark.parametrize(
    ("file_name", "match"),
    [
        ("scan.png", r"unsupported file type '\.png'.*\.nii\.gz.*\.mhd"),
        ("scan", r"unsupported file type '\(no extension\)'"),
        ("IM0001.dcm", r"for DICOM, pass the directory of the series"),
    ],
)
def test_unsupported_extension(tmp_path, file_name, match):
    (tmp_path / file_name).write_bytes(b"\x00" * 64)
    with pytest.raises(VolumeError, match=match):
        load_volume(tmp_path / file_name)


@pytest.mark.parametrize("suffix", [".mha", ".nii", ".nii.gz", ".nrrd"])
def test_random_bytes(tmp_path, suffix):
    path = tmp_path / f"noise{suffix}"
    path.write_bytes(np.random.default_rng(1).bytes(2000))
    with pytest.raises(VolumeError, match=rf"noise{suffix}: cannot read the file") as info:
        load_volume(path)
    assert isinstance(info.value.__cause__, RuntimeError)


@pytest.mark.parametrize(
    ("suffix", "match"),
    [
        (".mha", "cannot read the file: it is corrupt, truncated"),
        (".nrrd", "cannot read the file: it is corrupt, truncated"),
        (".nii", r"truncated: the header promises \d+ bytes, the file holds \d+"),
        (".nii.gz", "corrupt or truncated"),
    ],
)
def test_truncated_file(tmp_path, array, suffix, match):
    full = _write(_image(array), tmp_path / f"full{suffix}")
    cut = tmp_path / f"cut{suffix}"
    content = full.read_bytes()
    cut.write_bytes(content[: int(len(content) * 0.8)])
    with pytest.raises(VolumeError, match=match):
        load_volume(cut)


def test_multi_member_gzip_nifti_is_not_mistaken_for_truncated(tmp_path, array):
    raw = _write(_image(array), tmp_path / "plain.nii").read_bytes()
    path = tmp_path / "members.nii.gz"
    path.write_bytes(gzip.compress(raw[:400]) + gzip.compress(raw[400:]))
    np.testing.assert_array_equal(load_volume(path).data, array)


def test_missing_detached_data_file(tmp_path, array):
    header = _write(_image(array), tmp_path / "detached.mhd")
    for data_file in tmp_path.glob("detached.*raw"):
        data_file.unlink()
    with pytest.raises(VolumeError, match=r"detached\.mhd: cannot read.*data file must sit next"):
        load_volume(header)


def test_2d_image(tmp_path):
    path = _write(sitk.GetImageFromArray(np.zeros((6, 7), np.float32)), tmp_path / "slice.nii")
    with pytest.raises(VolumeError, match=r"slice\.nii: expected a 3D image, got a 2D image"):
        load_volume(path)


def test_4d_image(tmp_path):
    image = sitk.GetImageFromArray(np.zeros((6, 7, 8, 9), np.float32), isVector=False)
    path = _write(image, tmp_path / "series.mha")
    with pytest.raises(VolumeError, match=r"expected a 3D image, got a 4D image of size \(9, 8"):
        load_volume(path)


@pytest.mark.parametrize("suffix", [".mha", ".nii"])
def test_vector_image(tmp_path, suffix):
    image = sitk.GetImageFromArray(np.zeros((5, 6, 7, 3), np.float32), isVector=True)
    path = _write(image, tmp_path / f"rgb{suffix}")
    with pytest.raises(VolumeError, match="expected a scalar 3D image, got 3 components"):
        load_volume(path)


def test_single_slice_volume(tmp_path):
    path = _write(_image(np.zeros((1, 6, 7), np.int16)), tmp_path / "thin.mha")
    with pytest.raises(VolumeError, match=r"at least 2 voxels along every axis.*\(7, 6, 1\)"):
        load_volume(path)


@pytest.mark.parametrize(
    ("bad", "match"), [(np.nan, "2 NaN and 0 infinite"), (np.inf, "0 NaN and 2 infinite")]
)
def test_non_finite_voxels(tmp_path, bad, match):
    data = np.ones((4, 5, 6), np.float32)
    data[1, 2, 3] = data[2, 3, 4] = bad
    path = _write(_image(data), tmp_path / "holes.mha")
    with pytest.raises(VolumeError, match=rf"holes\.mha: {match} voxel values"):
        load_volume(path)


def test_empty_directory(tmp_path):
    with pytest.raises(VolumeError, match="no DICOM series found in this directory"):
        load_volume(tmp_path)
    assert list_dicom_series(tmp_path) == []


def test_directory_without_dicom_names_its_images(tmp_path, array):
    _write(_image(array), tmp_path / "scan.nii.gz")
    with pytest.raises(VolumeError, match=r"no DICOM series.*scan\.nii\.gz: pass a file's path"):
        load_volume(tmp_path)


def test_dicom_series_in_subdirectory_hint(tmp_path, array):
    write_dicom_series(tmp_path / "study" / "series1", array)
    with pytest.raises(VolumeError, match="subdirectories are not searched"):
        load_volume(tmp_path / "study")


def test_two_series(tmp_path, array):
    write_dicom_series(tmp_path, array, series_uid=SERIES_A, description="bone", prefix="a")
    other = array[:3, ::-1] + 7
    write_dicom_series(
        tmp_path,
        other,
        spacing=(0.5, 0.7, 2.0),
        series_uid=SERIES_B,
        description="soft",
        prefix="b",
    )
    with pytest.raises(VolumeError, match=r"holds 2 DICOM series; pass series_id=") as info:
        load_volume(tmp_path)
    message = str(info.value)
    assert f"{SERIES_A} (5 files, 'bone')" in message
    assert f"{SERIES_B} (3 files, 'soft')" in message

    first = load_volume(tmp_path, series_id=SERIES_A)
    np.testing.assert_array_equal(first.data, array)
    second = load_volume(tmp_path, series_id=SERIES_B)
    np.testing.assert_array_equal(second.data, other)
    np.testing.assert_allclose(second.spacing, (2.0, 0.7, 0.5), rtol=1e-6)
    listed = {s.series_id: s for s in list_dicom_series(tmp_path)}
    assert listed[SERIES_B] == DicomSeries(SERIES_B, 3, "soft")


def test_unknown_series_id(tmp_path, array):
    write_dicom_series(tmp_path, array)
    valid = re.escape(f"valid ids:\n  {SERIES_A} (5 files, 'synthetic head')")
    with pytest.raises(VolumeError, match=rf"no DICOM series '1\.2\.3' here; {valid}"):
        load_volume(tmp_path, series_id="1.2.3")


def test_series_id_with_a_file(tmp_path, array):
    path = _write(_image(array), tmp_path / "scan.mha")
    with pytest.raises(VolumeError, match="series_id= applies to DICOM directories"):
        load_volume(path, series_id=SERIES_A)


def test_list_dicom_series_bad_directory(tmp_path):
    with pytest.raises(VolumeError, match="no such file or directory"):
        list_dicom_series(tmp_path / "absent")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(VolumeError, match="not a directory"):
        list_dicom_series(tmp_path / "file.txt")


# ------------------------------------------------------------------------------------------
# Bundled scan
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def headsq() -> Volume:
    return load_volume(bundled_scan_path())


def test_bundled_headsq(headsq):
    assert bundled_scan_path().is_file()
    assert headsq.shape == (93, 64, 64)
    assert headsq.spacing == pytest.approx((1.5, 3.2, 3.2))
    assert headsq.name == "headsq"
    assert 0 <= headsq.data.min() < 100 < 3000 < headsq.data.max() <= 3926


def test_bundled_headsq_top_of_head_at_high_z(headsq):
    cross_section = (headsq.data > 400).sum(axis=(1, 2))
    assert cross_section[-10:].mean() > cross_section[:10].mean()  # skull wider than the neck


def test_unknown_bundled_scan():
    with pytest.raises(ValueError, match="unknown bundled scan 'chest'; valid names: headsq"):
        bundled_scan_path("chest")


# ------------------------------------------------------------------------------------------
# Resampling
# ------------------------------------------------------------------------------------------


def _centre_of_mass_mm(volume: Volume) -> np.ndarray:
    """Centre of mass relative to the volume's centre, in mm (z, y, x)."""
    weights = volume.data.astype(np.float64)
    grids = np.indices(volume.shape, dtype=np.float64)
    index = np.array([(g * weights).sum() / weights.sum() for g in grids])
    return (index - (np.array(volume.shape) - 1) / 2) * np.array(volume.spacing)


def test_resample_headsq_keeps_aspect(headsq):
    small = resample_volume(headsq, 64)
    assert small.shape == (44, 64, 64)  # 93 * 1.5 / 3.2 = 43.6
    assert small.spacing == pytest.approx((3.2, 3.2, 3.2))
    assert small.name == "headsq"
    assert small.data.dtype == np.float32
    ratio_before = np.array(headsq.extent_mm) / max(headsq.extent_mm)
    ratio_after = np.array(small.extent_mm) / max(small.extent_mm)
    np.testing.assert_allclose(ratio_after, ratio_before, atol=1 / 64)
    assert small.data.mean() == pytest.approx(headsq.data.mean(), rel=0.01)
    np.testing.assert_allclose(_centre_of_mass_mm(small), _centre_of_mass_mm(headsq), atol=0.5)


@pytest.mark.parametrize("max_size", [16, 32, 128])
def test_resample_headsq_sizes(headsq, max_size):
    out = resample_volume(headsq, max_size)
    assert max(out.shape) == max_size
    assert out.shape[1:] == (max_size, max_size)
    assert out.shape[0] == round(139.5 / (204.8 / max_size))
    assert out.data.mean() == pytest.approx(headsq.data.mean(), rel=0.02)
    assert headsq.data.min() - 1e-3 <= out.data.min() <= out.data.max() <= headsq.data.max() + 1e-3
    np.testing.assert_allclose(_centre_of_mass_mm(out), _centre_of_mass_mm(headsq), atol=1.0)


def test_resample_is_identity_on_an_isotropic_volume_of_that_size():
    data = np.random.default_rng(2).normal(size=(10, 12, 16)).astype(np.float32)
    volume = Volume(data, (1.0, 1.0, 1.0))
    out = resample_volume(volume, 16)
    np.testing.assert_array_equal(out.data, data)


def test_resample_off_centre_blob_does_not_move():
    z, y, x = np.indices((40, 60, 90), dtype=np.float32)
    spacing = (2.0, 1.0, 0.5)
    centre = (12.0, 41.0, 30.0)  # index coordinates, deliberately off-centre
    r2 = sum(((g - c) * s) ** 2 for g, c, s in zip((z, y, x), centre, spacing, strict=True))
    blob = Volume(np.exp(-r2 / (2 * 8.0**2)).astype(np.float32), spacing)
    for max_size in (8, 20, 37, 150):
        out = resample_volume(blob, max_size)
        np.testing.assert_allclose(
            _centre_of_mass_mm(out), _centre_of_mass_mm(blob), atol=0.1 * out.spacing[0]
        )


def test_resample_downsampling_suppresses_aliasing():
    # A one-voxel checkerboard along x is above the new Nyquist limit: it must not survive
    # (without the anti-aliasing filter, linear interpolation at x = 3.25 + 7.5 i leaves
    # a 0.25 / 0.75 pattern).
    pattern = np.indices((16, 16, 120)).sum(axis=0) % 2
    out = resample_volume(Volume(pattern.astype(np.float32), (7.0, 7.0, 1.0)), 16)
    assert out.shape == (15, 15, 16)
    assert out.data.std() < 0.02
    assert out.data.mean() == pytest.approx(0.5, abs=0.02)


def test_resample_labels_take_the_nearest_voxel():
    # Upsampling 8 -> 24: new voxel centre (i + 0.5) / 3 lies inside old voxel i // 3.
    labels = np.broadcast_to(np.arange(8, dtype=np.uint8), (8, 8, 8))
    volume = Volume(np.zeros((8, 8, 8), np.float32), (1.0, 1.0, 1.0), labels=labels.copy())
    out = resample_volume(volume, 24)
    np.testing.assert_array_equal(out.labels[5, 7], np.arange(24) // 3)


def test_resample_labels_nearest():
    rng = np.random.default_rng(3)
    data = rng.normal(size=(20, 24, 30)).astype(np.float32)
    labels = np.zeros((20, 24, 30), np.uint8)
    labels[5:15, 6:18, 8:22] = Tissue.SOFT_TISSUE
    labels[8:12, 10:14, 12:18] = Tissue.BONE
    labels[0, 0, 0] = Tissue.METAL
    volume = Volume(data, (1.5, 1.0, 1.0), labels=labels)
    for max_size in (8, 13, 64):
        out = resample_volume(volume, max_size)
        assert out.labels is not None
        assert out.labels.dtype == np.uint8
        assert out.labels.shape == out.shape
        assert set(np.unique(out.labels)) <= {0, 1, 2, 4}
    big = resample_volume(volume, 60)
    soft_fraction = (labels > 0).mean()
    assert (big.labels > 0).mean() == pytest.approx(soft_fraction, rel=0.1)


def test_resample_upsampling_reproduces_a_ramp_inside():
    ramp = np.broadcast_to(np.arange(16, dtype=np.float32), (2, 3, 16)).copy()
    out = resample_volume(Volume(ramp, (4.0, 4.0, 4.0)), 64)
    assert out.shape == (8, 12, 64)
    assert out.spacing == (1.0, 1.0, 1.0)
    # New voxel centre x = i + 0.5 mm sits at old continuous index x / 4 - 0.5; the cubic
    # B-spline reproduces a linear ramp away from the (mirrored) edges.
    expected = (np.arange(64) + 0.5) / 4 - 0.5
    inner = slice(24, 40)
    np.testing.assert_allclose(
        out.data[..., inner], np.broadcast_to(expected[inner], (8, 12, 16)), atol=1e-3
    )
    assert ramp.min() <= out.data.min() and out.data.max() <= ramp.max()


def test_resample_upsampling_is_smooth_across_old_samples():
    """Linear interpolation is faceted between the old samples (stripes on surfaces).

    The cubic spline follows a smooth anatomy-like profile far more closely.
    """
    x = np.arange(16, dtype=np.float64)
    signal = np.sin(x * 2 * np.pi / 7).astype(np.float32)
    data = np.broadcast_to(signal, (2, 2, 16)).copy()
    out = resample_volume(Volume(data, (1.0, 1.0, 4.0)), 64).data[0, 0, 8:-8]
    fine = ((np.arange(64) + 0.5) / 4 - 0.5)[8:-8]
    truth = np.sin(fine * 2 * np.pi / 7)
    linear = np.interp(fine, x, signal)
    assert np.abs(out - truth).max() < 0.25 * np.abs(linear - truth).max()


@pytest.mark.parametrize("max_size", [7, 0, -64, 64.0, True, "64", None])
def test_resample_rejects_bad_max_size(headsq, max_size):
    with pytest.raises(ValueError, match="max_size must be an int >= 8"):
        resample_volume(headsq, max_size)  # type: ignore[arg-type]
