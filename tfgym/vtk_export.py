"""Transfer functions and volumes in VTK's terms: the 2D TF image and the cell-data volume.

The mapping of tfgym's conventions onto VTK's is explained in :mod:`tfgym.vtk_render`; this
module holds the conversions themselves (pure numpy up to the last step) and the lazy loading
of VTK and pyvista, which raises ``gymnasium.error.DependencyNotInstalled`` when they are
missing.

:func:`vtk_tf_table` resamples a LUT onto VTK's axes (x: the volume's scalar range; y: VTK's
per-voxel gradient magnitude up to a quarter of that range), :func:`export_tf_to_vtk` wraps it
as ``vtkImageData``, :func:`volume_to_vtk` turns a :class:`tfgym.volume.Volume` into cell data.
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace
from typing import Any

import numpy as np

from tfgym.histogram import HistogramRanges
from tfgym.volume import Volume

__all__ = [
    "MIN_TABLE_SIZE",
    "SCALARS_NAME",
    "check_lut",
    "export_tf_to_vtk",
    "load_pyvista",
    "load_vtk",
    "table_image",
    "table_indices",
    "volume_to_vtk",
    "vtk_tf_table",
]

SCALARS_NAME = "intensity"
MIN_TABLE_SIZE = 1024  # VTK resamples 2D TF images smaller than this (or not powers of two)


def load_vtk() -> Any:
    """Import VTK's rendering modules (lazily); headless Linux renders through EGL."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    try:
        # importing the OpenGL modules registers VTK's OpenGL implementations
        import vtkmodules.vtkRenderingOpenGL2
        import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401
        from vtkmodules import vtkCommonCore, vtkCommonDataModel, vtkRenderingCore
        from vtkmodules.vtkRenderingVolume import vtkGPUVolumeRayCastMapper
    except ImportError as e:
        from gymnasium.error import DependencyNotInstalled

        raise DependencyNotInstalled(
            "VTK rendering needs pyvista and vtk; install them with `pip install pyvista`"
        ) from e
    return SimpleNamespace(
        VTK_FLOAT=vtkCommonCore.VTK_FLOAT,
        vtkUnsignedCharArray=vtkCommonCore.vtkUnsignedCharArray,
        vtkImageData=vtkCommonDataModel.vtkImageData,
        vtkRenderer=vtkRenderingCore.vtkRenderer,
        vtkRenderWindow=vtkRenderingCore.vtkRenderWindow,
        vtkVolume=vtkRenderingCore.vtkVolume,
        vtkVolumeProperty=vtkRenderingCore.vtkVolumeProperty,
        vtkGPUVolumeRayCastMapper=vtkGPUVolumeRayCastMapper,
    )


def load_pyvista() -> Any:
    """The pyvista module, or ``DependencyNotInstalled`` with the install command."""
    try:
        import pyvista
    except ImportError as e:
        from gymnasium.error import DependencyNotInstalled

        raise DependencyNotInstalled(
            "VTK rendering needs pyvista and vtk; install them with `pip install pyvista`"
        ) from e
    return pyvista


def volume_to_vtk(volume: Volume) -> Any:
    """A tfgym volume as a ``pyvista.ImageData`` (cell scalars named ``"intensity"``).

    World axes are the index axes: cell ``(i, j, k)`` holds ``volume.data[k, j, i]`` and is
    centred on ``(i * sx, j * sy, k * sz)``. Labels, if any, are added as cell array
    ``"labels"``.

    Args:
        volume: the volume.

    Returns:
        ``pyvista.ImageData`` with ``(nx + 1, ny + 1, nz + 1)`` points.

    Raises:
        gymnasium.error.DependencyNotInstalled: pyvista is missing.

    Example:
        >>> import numpy as np
        >>> grid = volume_to_vtk(Volume(np.zeros((3, 4, 5), np.float32), (1.5, 1.0, 2.0)))
        >>> grid.dimensions, grid.bounds[:2]
        ((6, 5, 4), (-1.0, 9.0))
    """
    pv = load_pyvista()
    nz, ny, nx = volume.shape
    sz, sy, sx = volume.spacing
    grid = pv.ImageData(
        dimensions=(nx + 1, ny + 1, nz + 1),
        spacing=(sx, sy, sz),
        origin=(-sx / 2, -sy / 2, -sz / 2),
    )
    # numpy (z, y, x) C order is VTK's x-fastest order.
    grid.cell_data[SCALARS_NAME] = np.ascontiguousarray(volume.data, dtype=np.float32).ravel()
    if volume.labels is not None:
        grid.cell_data["labels"] = volume.labels.ravel()
    grid.set_active_scalars(SCALARS_NAME, preference="cell")
    return grid


def table_indices(
    ranges: HistogramRanges,
    *,
    scalar_range: tuple[float, float],
    voxel_size: float,
    size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Row (gradient) bin per VTK texel row and column (intensity) bin per texel column."""
    smin, smax = (float(v) for v in scalar_range)
    if not (np.isfinite(smin) and np.isfinite(smax) and smax > smin):
        raise ValueError(f"scalar_range must be finite and increasing, got {scalar_range}")
    if not (np.isfinite(voxel_size) and voxel_size > 0):
        raise ValueError(f"voxel_size must be a positive number of mm, got {voxel_size}")
    if size < MIN_TABLE_SIZE or size & (size - 1):
        raise ValueError(
            f"size must be a power of two >= {MIN_TABLE_SIZE}, got {size}: VTK would resample "
            "(and blur) any other 2D transfer function image"
        )
    centres = (np.arange(size) + 0.5) / size
    value = smin + centres * (smax - smin)
    grad_per_mm = centres * 0.25 * (smax - smin) / voxel_size
    cols = np.floor(ranges.intensity_to_bin(value)).clip(0, ranges.n_intensity_bins - 1)
    rows = np.floor(ranges.gradient_to_bin(grad_per_mm)).clip(0, ranges.n_gradient_bins - 1)
    return rows.astype(np.intp), cols.astype(np.intp)


def check_lut(lut: np.ndarray, ranges: HistogramRanges) -> np.ndarray:
    """The LUT as float32, checked against the histogram's shape."""
    lut = np.asarray(lut, dtype=np.float32)
    if lut.shape != (*ranges.shape, 4):
        raise ValueError(
            f"LUT must have shape (n_gradient_bins, n_intensity_bins, 4) = "
            f"{(*ranges.shape, 4)}, got {lut.shape}"
        )
    return lut


def vtk_tf_table(
    lut: np.ndarray,
    ranges: HistogramRanges,
    *,
    scalar_range: tuple[float, float],
    voxel_size: float,
    size: int = MIN_TABLE_SIZE,
    sample_distance: float | None = None,
) -> np.ndarray:
    """Resample a tfgym LUT onto VTK's 2D transfer-function axes (pure numpy).

    Column ``c`` of the result is VTK's scalar texel ``c`` (centre value
    ``smin + (c + 0.5) / size * (smax - smin)``), row ``r`` is VTK's gradient texel ``r``
    (centre ``(r + 0.5) / size * 0.25 * (smax - smin)`` grey values per voxel, that is
    ``... / voxel_size`` per mm). Each texel takes the LUT entry of the tfgym bin containing
    its centre, clamped into the edge bins.

    Args:
        lut: float RGBA ``(n_gradient_bins, n_intensity_bins, 4)`` in [0, 1].
        ranges: the histogram ranges the LUT is defined on.
        scalar_range: ``(min, max)`` of the volume VTK renders.
        voxel_size: mean voxel spacing in mm of the rendered volume.
        size: table side; a power of two >= 1024 (VTK resamples any other size).
        sample_distance: ray step in mm; alphas are corrected from one-voxel slabs to this
            step. ``None`` means one sample per voxel (no correction).

    Returns:
        float32 ``(size, size, 4)``; row 0 = zero gradient.

    Raises:
        ValueError: bad LUT shape, empty scalar range, bad voxel size or table size.

    Example:
        >>> r = HistogramRanges(0.0, 100.0, 10.0, 2, 2)
        >>> lut = np.zeros((2, 2, 4), np.float32); lut[0, 1, 3] = 1.0  # high value, low grad
        >>> t = vtk_tf_table(lut, r, scalar_range=(0.0, 100.0), voxel_size=1.0)
        >>> float(t[0, 511, 3]), float(t[0, 512, 3]), float(t[1023, 1023, 3])
        (0.0, 1.0, 0.0)
    """
    lut = check_lut(lut, ranges)
    rows, cols = table_indices(ranges, scalar_range=scalar_range, voxel_size=voxel_size, size=size)
    table = lut[rows[:, None], cols[None, :]]
    if sample_distance is not None and sample_distance != voxel_size:
        if not (np.isfinite(sample_distance) and sample_distance > 0):
            raise ValueError(f"sample_distance must be positive, got {sample_distance}")
        alpha = np.clip(table[..., 3], 0.0, 1.0)
        table[..., 3] = 1.0 - (1.0 - alpha) ** (sample_distance / voxel_size)
    return np.ascontiguousarray(table, dtype=np.float32)


def table_image(table: np.ndarray) -> Any:
    """A ``(size, size, 4)`` float table as VTK image data (RGBA point scalars)."""
    vtk = load_vtk()
    from vtkmodules.util.numpy_support import numpy_to_vtk

    image = vtk.vtkImageData()
    image.SetDimensions(table.shape[1], table.shape[0], 1)
    scalars = numpy_to_vtk(table.reshape(-1, 4), deep=True, array_type=vtk.VTK_FLOAT)
    scalars.SetName("rgba")
    image.GetPointData().SetScalars(scalars)
    return image


def export_tf_to_vtk(
    lut: np.ndarray,
    ranges: HistogramRanges,
    *,
    scalar_range: tuple[float, float],
    voxel_size: float,
    size: int = MIN_TABLE_SIZE,
    sample_distance: float | None = None,
) -> Any:
    """The VTK 2D transfer-function image of a tfgym LUT.

    Use it with ``vtkVolumeProperty.SetTransferFunctionMode(vtkVolumeProperty.TF_2D)`` and
    ``SetTransferFunction2D(image)`` on a volume whose scalar range is ``scalar_range``. The
    image's x axis spans the scalar range, its y axis VTK's gradient magnitude from 0 to a
    quarter of the scalar range per voxel; the module docstring explains the mapping, and
    :func:`vtk_tf_table` the resampling (the arguments are the same).

    Returns:
        ``vtkImageData`` of ``size x size x 1`` points with float RGBA point scalars.

    Raises:
        ValueError: see :func:`vtk_tf_table`.
        gymnasium.error.DependencyNotInstalled: VTK is missing.
    """
    table = vtk_tf_table(
        lut,
        ranges,
        scalar_range=scalar_range,
        voxel_size=voxel_size,
        size=size,
        sample_distance=sample_distance,
    )
    return table_image(table)
