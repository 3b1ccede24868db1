"""Loading volumes: DICOM series, NIfTI, NRRD and MetaImage files, and the bundled scans.

Every loader returns a :class:`tfgym.volume.Volume` in tfgym's conventions (float32
``(nz, ny, nx)`` data, spacing in ``(z, y, x)`` order, index axes reoriented to DICOM LPS) and
reports every problem as a :class:`tfgym.volume.VolumeError` that names the file. SimpleITK
is imported on first use.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tfgym.volume import Volume, VolumeError

if TYPE_CHECKING:  # SimpleITK is imported lazily: `import tfgym` stays cheap.
    import SimpleITK as sitk

__all__ = [
    "BUNDLED_SCANS",
    "SUPPORTED_SUFFIXES",
    "DicomSeries",
    "bundled_scan_path",
    "list_dicom_series",
    "load_volume",
]

#: File name endings that `load_volume` reads (a DICOM series is given as its directory).
SUPPORTED_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")

#: Names of the scans shipped inside the package (see `bundled_scan_path`).
BUNDLED_SCANS = ("headsq",)

_DETACHED_HEADERS = (".nhdr", ".mhd")
_DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")


@dataclass(frozen=True)
class DicomSeries:
    """One DICOM series found in a directory.

    Attributes:
        series_id: the Series Instance UID (0020,000E); pass it to `load_volume` as ``series_id``.
        n_files: number of files (slices) in the series.
        description: the Series Description (0008,103E), ``""`` when absent.
    """

    series_id: str
    n_files: int
    description: str = ""

    def __str__(self) -> str:
        """One line for error messages and listings."""
        description = f", {self.description!r}" if self.description else ""
        return f"{self.series_id} ({self.n_files} files{description})"


def _suffix(path: Path) -> str:
    """The lower-case file ending, with ``.nii.gz`` as one suffix."""
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return path.suffix.lower()


def _stem(path: Path) -> str:
    """The file name without its (possibly double) suffix."""
    suffix = _suffix(path)
    return path.name[: len(path.name) - len(suffix)] if suffix else path.name


def _sitk_reason(error: RuntimeError) -> str:
    """The useful part of a SimpleITK exception message, on one line."""
    lines = [line.strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line and not line.startswith("Exception thrown in")]
    text = " ".join(lines) or str(error)
    text = re.sub(r"(sitk::|ITK )ERROR: ", "", text)
    text = re.sub(r"\s*Reason: No such file or directory", "", text)  # a stale errno, not news
    return re.sub(r"\w+\(0x[0-9a-fA-F]+\): ", "", text)


@contextlib.contextmanager
def _quiet_itk() -> Iterator[None]:
    """Silence ITK warnings on stderr (e.g. "No Series were found"): our errors say it better."""
    import SimpleITK as sitk

    previous = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(previous)


def _check_directory(directory: str | os.PathLike[str]) -> Path:
    path = Path(directory).expanduser()
    if not path.exists():
        raise VolumeError(f"{path}: no such file or directory")
    if not path.is_dir():
        raise VolumeError(f"{path}: not a directory (a DICOM series is read from its directory)")
    return path


def list_dicom_series(directory: str | os.PathLike[str]) -> list[DicomSeries]:
    """List the DICOM series in a directory (not its subdirectories).

    Args:
        directory: a directory holding DICOM files.

    Returns:
        One `DicomSeries` per series, in the order GDCM finds them; empty when there is none.

    Raises:
        VolumeError: if ``directory`` does not exist or is not a directory.
    """
    import SimpleITK as sitk

    path = _check_directory(directory)
    with _quiet_itk():
        series_ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(path))
        found = []
        for series_id in series_ids:
            file_names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(path), series_id)
            found.append(
                DicomSeries(series_id, len(file_names), _series_description(file_names[0]))
            )
    return found


def _series_description(file_name: str) -> str:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(file_name)
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return ""
    tag = "0008|103e"
    return reader.GetMetaData(tag).strip() if reader.HasMetaDataKey(tag) else ""


def _read_dicom(path: Path, series_id: str | None) -> sitk.Image:
    import SimpleITK as sitk

    series = list_dicom_series(path)
    if not series:
        hint = ""
        images = sorted(p.name for p in path.iterdir() if _suffix(p) in SUPPORTED_SUFFIXES)
        if images:
            hint = f"; it holds {', '.join(images[:5])}: pass a file's path to load it"
        elif any(p.is_dir() for p in path.iterdir()):
            hint = "; subdirectories are not searched: pass the directory of the series itself"
        raise VolumeError(f"{path}: no DICOM series found in this directory{hint}")
    listing = "\n".join(f"  {s}" for s in series)
    if series_id is None:
        if len(series) > 1:
            raise VolumeError(
                f"{path}: the directory holds {len(series)} DICOM series; pass "
                f"series_id= to choose one of:\n{listing}"
            )
        series_id = series[0].series_id
    elif series_id not in {s.series_id for s in series}:
        raise VolumeError(f"{path}: no DICOM series {series_id!r} here; valid ids:\n{listing}")
    with _quiet_itk():
        file_names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(path), series_id)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(file_names)
    try:
        return reader.Execute()
    except RuntimeError as error:
        raise VolumeError(
            f"{path}: cannot read DICOM series {series_id}: {_sitk_reason(error)}"
        ) from error


def _read_file(path: Path) -> sitk.Image:
    import SimpleITK as sitk

    suffix = _suffix(path)
    if suffix not in SUPPORTED_SUFFIXES:
        hint = " (for DICOM, pass the directory of the series)" if suffix in _DICOM_SUFFIXES else ""
        raise VolumeError(
            f"{path}: unsupported file type {suffix or '(no extension)'!r}{hint}; supported: "
            f"{', '.join(SUPPORTED_SUFFIXES)} files, or a DICOM series directory"
        )
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        hint = " (its data file must sit next to it)" if suffix in _DETACHED_HEADERS else ""
        raise VolumeError(
            f"{path}: cannot read the file: it is corrupt, truncated or not a valid "
            f"{suffix} image{hint}. SimpleITK says: {_sitk_reason(error)}"
        ) from error
    if suffix in (".nii", ".nii.gz"):
        _check_nifti_complete(path)
    return image


def _nifti_expected_bytes(header: bytes) -> int | None:
    """Header plus voxel bytes that a NIfTI-1/2 file must hold; None if the header is odd."""
    for order in "<>":
        if len(header) >= 348 and struct.unpack(f"{order}i", header[:4])[0] == 348:
            dims = struct.unpack(f"{order}8h", header[40:56])
            bitpix = struct.unpack(f"{order}h", header[72:74])[0]
            offset = int(struct.unpack(f"{order}f", header[108:112])[0])
            break
        if len(header) >= 540 and struct.unpack(f"{order}i", header[:4])[0] == 540:
            dims = struct.unpack(f"{order}8q", header[16:80])
            bitpix = struct.unpack(f"{order}h", header[14:16])[0]
            offset = struct.unpack(f"{order}q", header[168:176])[0]
            break
    else:
        return None
    if not 1 <= dims[0] <= 7 or bitpix <= 0:
        return None
    n_voxels = int(np.prod([max(int(d), 1) for d in dims[1 : dims[0] + 1]]))
    return max(offset, 348) + n_voxels * bitpix // 8


def _check_nifti_complete(path: Path) -> None:
    """Raise if a NIfTI file holds fewer voxel bytes than its header promises.

    ITK's NIfTI reader silently returns zeros or garbage for a truncated file, so this checks
    the size itself: the file size for ``.nii``; for ``.nii.gz`` the gzip trailer, falling back
    to decompressing the whole file when the trailer disagrees (multi-member gzip files).
    """
    compressed = _suffix(path) == ".nii.gz"
    try:
        with gzip.open(path) if compressed else open(path, "rb") as stream:
            expected = _nifti_expected_bytes(stream.read(540))
        if expected is None:
            return
        if compressed:
            with open(path, "rb") as raw:
                raw.seek(-4, os.SEEK_END)
                trailer_size = struct.unpack("<I", raw.read(4))[0]
            if trailer_size == expected % 2**32:
                return
            actual = 0
            with gzip.open(path) as stream:
                while chunk := stream.read(1 << 24):
                    actual += len(chunk)
        else:
            actual = path.stat().st_size
    except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError
        raise VolumeError(f"{path}: the file is corrupt or truncated ({error})") from error
    if actual < expected:
        raise VolumeError(
            f"{path}: the file is truncated: the header promises {expected} bytes, "
            f"the file holds {actual}"
        )


def _check_image(image: sitk.Image, path: Path) -> None:
    """Raise unless the image is a scalar, real-valued 3D image with >= 2 voxels per axis."""
    import SimpleITK as sitk

    size = image.GetSize()
    components = image.GetNumberOfComponentsPerPixel()
    if image.GetDimension() != 3:
        what = "a time series or multi-volume image?" if image.GetDimension() > 3 else "one slice"
        raise VolumeError(
            f"{path}: expected a 3D image, got a {image.GetDimension()}D image of size "
            f"{size} ({what})"
        )
    if components != 1:
        raise VolumeError(
            f"{path}: expected a scalar 3D image, got {components} components per voxel "
            f"({image.GetPixelIDTypeAsString()}; a 4D, vector or RGB image?)"
        )
    if image.GetPixelID() in (sitk.sitkComplexFloat32, sitk.sitkComplexFloat64):
        raise VolumeError(f"{path}: complex-valued images are not supported")
    if min(size) < 2:
        raise VolumeError(
            f"{path}: a volume needs at least 2 voxels along every axis, got size {size} (x, y, z)"
        )


def load_volume(
    path: str | os.PathLike[str],
    *,
    series_id: str | None = None,
    name: str | None = None,
) -> Volume:
    """Load a CT scan from a DICOM series directory, NIfTI, NRRD or MetaImage file.

    The image is reoriented (axes permuted and flipped, never resampled) so that its index axes
    follow DICOM LPS: x to the patient's left, y to posterior, z to superior. An oblique scan
    gets the closest such orientation. Intensities are kept as stored (DICOM rescale slope and
    intercept applied) and converted to float32.

    Args:
        path: a DICOM series directory, or a file ending in one of `SUPPORTED_SUFFIXES`.
        series_id: the DICOM Series Instance UID to load when the directory holds several
            series (see `list_dicom_series`).
        name: the volume's name; defaults to the file name without its suffix (or the
            directory name).

    Returns:
        The `Volume`, with spacing in (z, y, x) order and no labels.

    Raises:
        VolumeError: the path is missing; the file type is unsupported; the file is corrupt or
            truncated; the image is not a scalar 3D image; it holds NaN or infinite values;
            the directory holds no DICOM series, or several and ``series_id`` is not given, or
            not the given ``series_id``.

    Example:
        >>> volume = load_volume(bundled_scan_path("headsq"))
        >>> volume.shape, volume.spacing, volume.name
        ((93, 64, 64), (1.5, 3.2, 3.2), 'headsq')
    """
    import SimpleITK as sitk

    file = Path(path).expanduser()
    if not file.exists():
        raise VolumeError(f"{file}: no such file or directory")
    if file.is_dir():
        image = _read_dicom(file, series_id)
        default_name = file.resolve().name
    else:
        if series_id is not None:
            raise VolumeError(f"{file}: series_id= applies to DICOM directories, not to files")
        image = _read_file(file)
        default_name = _stem(file)
    _check_image(image, file)
    image = sitk.DICOMOrient(image, "LPS")
    try:
        data = sitk.GetArrayFromImage(sitk.Cast(image, sitk.sitkFloat32))
    except RuntimeError as error:
        raise VolumeError(
            f"{file}: cannot convert {image.GetPixelIDTypeAsString()} voxels to float32: "
            f"{_sitk_reason(error)}"
        ) from error
    finite = np.isfinite(data)
    if not finite.all():
        n_nan = int(np.isnan(data).sum())
        raise VolumeError(
            f"{file}: {n_nan} NaN and {data.size - int(finite.sum()) - n_nan} infinite voxel "
            f"values (of {data.size}); a volume must hold finite intensities"
        )
    spacing = tuple(float(s) for s in reversed(image.GetSpacing()))
    if not all(np.isfinite(s) and s > 0 for s in spacing):
        raise VolumeError(f"{file}: voxel spacing must be positive, got {spacing} (z, y, x)")
    return Volume(data, spacing, name=name or default_name)  # type: ignore[arg-type]


def bundled_scan_path(name: str = "headsq") -> Path:
    """Path of a scan shipped inside the package.

    Args:
        name: one of `BUNDLED_SCANS`.

    Returns:
        The path of the scan's MetaImage file, ready for `load_volume`.

    Raises:
        ValueError: if ``name`` is not a bundled scan.
        VolumeError: if the data file is missing from the installation.

    Example:
        >>> bundled_scan_path().name
        'headsq.mha'
    """
    if name not in BUNDLED_SCANS:
        raise ValueError(f"unknown bundled scan {name!r}; valid names: {', '.join(BUNDLED_SCANS)}")
    path = Path(str(files(__package__ or "tfgym") / "data" / name / f"{name}.mha"))
    if not path.is_file():
        raise VolumeError(f"{path}: bundled scan {name!r} is missing; reinstall tfgym")
    return path
