"""VTK reference rendering: tfgym transfer functions on VTK's GPU ray caster.

tfgym renders with its own fast renderer (:mod:`tfgym.renderer`); this module renders the
same volume and transfer function (TF) with VTK's ``vtkOpenGLGPUVolumeRayCastMapper`` in 2D
transfer-function mode, as an independent reference and for interactive viewing.

How tfgym's conventions map onto VTK's (measured on VTK 9.7, see ``tests/test_vtk_render.py``):

* **Volume.** ``Volume.data[z, y, x]`` becomes the *cell* scalars of a ``vtkImageData`` with
  ``nx x ny x nz`` cells of the volume's spacing; voxel ``(z, y, x)`` is the box centred on
  world point ``(x * sx, y * sy, z * sz)``, so the volume fills ``[-s/2, (n - 1/2) s]`` on
  each axis (``n * s`` mm, ``Volume.extent_mm``).
* **2D TF axes.** VTK looks a sample up in the TF image at ``(u, v)`` in [0, 1]:
  ``u = (value - smin) / (smax - smin)`` over the volume's scalar range ``[smin, smax]`` (its
  minimum and maximum), and ``v = clamp(g_vtk / (0.25 * (smax - smin)), 0, 1)``, where
  ``g_vtk`` is the gradient magnitude VTK computes: central differences *across one voxel*
  on each axis, scaled by ``avg_spacing / spacing_axis``. In tfgym's units (grey values per
  mm) that is ``g_vtk = mean(spacing) * |grad I|``: for isotropic voxels, grey values per
  voxel. Gradients above a quarter of the scalar range saturate in VTK's top row.
* **Resampling.** :func:`vtk_tf_table` gives each VTK texel the tfgym LUT entry of the bin
  that contains the texel's centre (nearest bin, clamped into the edge bins like tfgym).
  VTK resizes a TF image whose sides are not powers of two of at least 1024 (with a blurring
  filter), so the table is 1024 x 1024 by default.
* **Opacity.** VTK does not correct 2D-TF opacities for the sample distance: an alpha is the
  opacity of one ray sample. With one sample per voxel (the default here) tfgym's
  per-voxel-slab alpha is used as is; another sample distance rescales it by
  ``1 - (1 - alpha) ** (sample_distance / mean(spacing))``.
* **Samples.** One ray sample per voxel (sample distance = mean spacing), on the voxel centres
  along the view axis: VTK's first sample would sit on the volume's face, so the ray origin is
  moved back half a step (a one-line fragment-shader replacement); nearest-voxel
  interpolation by default, so every voxel is classified by its own bin as in tfgym.
  Gradients differ from tfgym's on the volume's outer faces only (VTK clamps the texture,
  ``np.gradient`` takes one-sided differences there).
* **Camera.** The view presets of :data:`VIEWS` (direction of projection and view-up, in world
  axes = index axes), orthographic, focal point at the volume's centre, parallel scale half
  the larger projected side; image row 0 is the top, black background.
* **Lighting.** As :mod:`tfgym.renderer`: a headlight, ``ambient 0.3 + diffuse 0.7 * |n . l|``
  (two-sided), no specular. Voxels with a zero gradient get the ambient term only in VTK,
  full light in tfgym.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from tfgym.histogram import HistogramRanges
from tfgym.views import AMBIENT, DIFFUSE, VIEWS, view_vectors
from tfgym.volume import Volume

__all__ = [
    "VIEWS",
    "VtkRenderer",
    "VtkRendering",
    "export_tf_to_vtk",
    "render_with_vtk",
    "show_interactive",
    "volume_to_vtk",
    "vtk_tf_table",
]

INTERPOLATIONS = ("nearest", "linear")
SCALARS_NAME = "intensity"
_HALF_STEP_BACK = "g_rayOrigin -= 0.5 * g_dirStep;"  # GLSL, see _volume_actor
MIN_TABLE_SIZE = 1024  # VTK resamples 2D TF images smaller than this (or not powers of two)


def _vtk() -> Any:
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


def _pyvista() -> Any:
    try:
        import pyvista
    except ImportError as e:
        from gymnasium.error import DependencyNotInstalled

        raise DependencyNotInstalled(
            "VTK rendering needs pyvista and vtk; install them with `pip install pyvista`"
        ) from e
    return pyvista


def _view(view: str) -> tuple[np.ndarray, np.ndarray]:
    dop, up = view_vectors(view)
    return np.asarray(dop, dtype=np.float64), np.asarray(up, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class VtkRendering:
    """An image rendered by VTK.

    Attributes:
        rgb: uint8 ``(H, W, 3)``, the volume composited over black; row 0 is the top.
        alpha: float32 ``(H, W)``, accumulated opacity in [0, 1].
    """

    rgb: np.ndarray
    alpha: np.ndarray


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
    pv = _pyvista()
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


def _table_indices(
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


def _check_lut(lut: np.ndarray, ranges: HistogramRanges) -> np.ndarray:
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
    lut = _check_lut(lut, ranges)
    rows, cols = _table_indices(ranges, scalar_range=scalar_range, voxel_size=voxel_size, size=size)
    table = lut[rows[:, None], cols[None, :]]
    if sample_distance is not None and sample_distance != voxel_size:
        if not (np.isfinite(sample_distance) and sample_distance > 0):
            raise ValueError(f"sample_distance must be positive, got {sample_distance}")
        alpha = np.clip(table[..., 3], 0.0, 1.0)
        table[..., 3] = 1.0 - (1.0 - alpha) ** (sample_distance / voxel_size)
    return np.ascontiguousarray(table, dtype=np.float32)


def _table_image(table: np.ndarray) -> Any:
    vtk = _vtk()
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
    return _table_image(table)


class VtkRenderer:
    """Offscreen VTK GPU ray casting of one volume; one render window reused across calls.

    Args:
        volume: the volume to render.
        ranges: the joint-histogram ranges the LUTs are defined on.
        image_size: side of the square image in pixels.
        shading: headlight shading, ambient 0.3 + diffuse 0.7 (two-sided), no specular, as
            :mod:`tfgym.renderer`.
        interpolation: ``"nearest"`` (one classification per voxel, as tfgym) or ``"linear"``
            (trilinear samples and TF lookups: smoother).

    Example:
        >>> with VtkRenderer(scene.volume, scene.ranges) as vr:  # doctest: +SKIP
        ...     image = vr.render(lut, view="front")
    """

    def __init__(
        self,
        volume: Volume,
        ranges: HistogramRanges,
        *,
        image_size: int = 128,
        shading: bool = True,
        interpolation: str = "nearest",
    ) -> None:
        """Build the VTK pipeline and the offscreen window."""
        if image_size < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        vtk = _vtk()
        self.volume = volume
        self.ranges = ranges
        self.image_size = int(image_size)
        data = volume.data
        self.scalar_range = (float(data.min()), float(data.max()))
        self.voxel_size = float(np.mean(volume.spacing))
        self.table_size = MIN_TABLE_SIZE
        self._rows, self._cols = _table_indices(
            ranges,
            scalar_range=self.scalar_range,
            voxel_size=self.voxel_size,
            size=self.table_size,
        )
        self._tf_image = _table_image(np.zeros((self.table_size,) * 2 + (4,), np.float32))
        self._actor = _volume_actor(
            volume_to_vtk(volume),
            self._tf_image,
            self.voxel_size,
            shading=shading,
            interpolation=interpolation,
        )
        self._renderer = vtk.vtkRenderer()
        self._renderer.SetBackground(0.0, 0.0, 0.0)
        self._renderer.SetBackgroundAlpha(0.0)
        self._renderer.AddVolume(self._actor)
        self._window = vtk.vtkRenderWindow()
        self._window.SetOffScreenRendering(1)
        self._window.SetAlphaBitPlanes(1)
        self._window.SetMultiSamples(0)
        self._window.AddRenderer(self._renderer)
        self._window.SetSize(self.image_size, self.image_size)
        self._rgba = vtk.vtkUnsignedCharArray()

    @property
    def opengl_renderer(self) -> str:
        """The OpenGL renderer string (e.g. ``llvmpipe`` for Mesa's CPU rasteriser)."""
        if self._window is None:
            raise RuntimeError("the VTK render window is closed")
        self._window.Render()
        for line in self._window.ReportCapabilities().splitlines():
            if line.startswith("OpenGL renderer string:"):
                return line.split(":", 1)[1].strip()
        return "unknown"

    def set_lut(self, lut: np.ndarray) -> None:
        """Upload a tfgym LUT ``(n_gradient_bins, n_intensity_bins, 4)`` as the 2D TF."""
        from vtkmodules.util.numpy_support import vtk_to_numpy

        lut = _check_lut(lut, self.ranges)
        target = vtk_to_numpy(self._tf_image.GetPointData().GetScalars())
        target.reshape(self.table_size, self.table_size, 4)[:] = lut[
            self._rows[:, None], self._cols[None, :]
        ]
        self._tf_image.Modified()

    def render(self, lut: np.ndarray | None, *, view: str = "front") -> VtkRendering:
        """Render one LUT from one view preset.

        Args:
            lut: float RGBA ``(n_gradient_bins, n_intensity_bins, 4)``, or ``None`` to keep
                the current TF (no new texture upload).
            view: a key of :data:`VIEWS`.

        Returns:
            The rendering.

        Raises:
            ValueError: unknown view or bad LUT shape.
            RuntimeError: the renderer is closed.
        """
        from vtkmodules.util.numpy_support import vtk_to_numpy

        if self._window is None:
            raise RuntimeError("this VtkRenderer is closed")
        _place_camera(self._renderer.GetActiveCamera(), self.volume, view)
        self._renderer.ResetCameraClippingRange()
        if lut is not None:
            self.set_lut(lut)
        self._window.Render()
        n = self.image_size
        self._window.GetRGBACharPixelData(0, 0, n - 1, n - 1, 0, self._rgba)
        rgba = vtk_to_numpy(self._rgba).reshape(n, n, 4)[::-1]  # VTK's row 0 is the bottom
        return VtkRendering(
            rgb=np.ascontiguousarray(rgba[..., :3]),
            alpha=rgba[..., 3].astype(np.float32) / 255.0,
        )

    def close(self) -> None:
        """Release the window and its OpenGL context."""
        if self._window is not None:
            self._window.Finalize()
            self._window = None

    def __enter__(self) -> VtkRenderer:
        """Use as a context manager that closes the window."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the window."""
        self.close()


def _volume_actor(
    grid: Any, tf_image: Any, voxel_size: float, *, shading: bool, interpolation: str
) -> Any:
    """A ``vtkVolume`` with a 2D-TF property and a GPU ray-cast mapper."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {interpolation!r}; valid: {INTERPOLATIONS}")
    vtk = _vtk()
    mapper = vtk.vtkGPUVolumeRayCastMapper()
    mapper.SetInputData(grid)
    mapper.SetScalarModeToUseCellFieldData()
    mapper.SelectScalarArray(SCALARS_NAME)
    mapper.SetAutoAdjustSampleDistances(0)
    mapper.SetSampleDistance(voxel_size)
    mapper.SetImageSampleDistance(1.0)
    mapper.SetUseJittering(0)
    prop = vtk.vtkVolumeProperty()
    prop.SetTransferFunctionMode(vtk.vtkVolumeProperty.TF_2D)
    prop.SetTransferFunction2D(tf_image)
    prop.SetScalarOpacityUnitDistance(voxel_size)  # used by 1D TFs only; kept consistent
    if interpolation == "nearest":
        prop.SetInterpolationTypeToNearest()
    else:
        prop.SetInterpolationTypeToLinear()
    prop.SetShade(int(shading))
    prop.SetAmbient(AMBIENT)
    prop.SetDiffuse(DIFFUSE)
    prop.SetSpecular(0.0)
    actor = vtk.vtkVolume()
    actor.SetMapper(mapper)
    actor.SetProperty(prop)
    # VTK's first sample lies one step inside the volume's box; with cell data and a step of
    # one voxel every sample then falls on a voxel boundary, which skips the first voxel slab
    # and samples the last one twice. Moving the ray origin back half a step puts the samples
    # on the voxel centres, where tfgym samples: each voxel once.
    actor.GetShaderProperty().AddFragmentShaderReplacement(
        "//VTK::Cropping::Init", True, f"{_HALF_STEP_BACK}\n  //VTK::Cropping::Init", False
    )
    return actor


def _place_camera(camera: Any, volume: Volume, view: str) -> None:
    """Point a ``vtkCamera`` at ``volume`` from a view preset of :data:`VIEWS`."""
    dop, up = _view(view)
    extent = np.array(volume.extent_mm[::-1])  # (x, y, z) in mm
    centre = (np.array(volume.shape[::-1]) - 1) / 2 * np.array(volume.spacing[::-1])
    distance = 10.0 * float(np.linalg.norm(extent))  # far: headlight rays nearly parallel
    right = np.cross(dop, up)
    camera.ParallelProjectionOn()
    camera.SetFocalPoint(*centre)
    camera.SetPosition(*(centre - distance * dop))
    camera.SetViewUp(*up)
    camera.SetParallelScale(max(abs(right @ extent), abs(up @ extent)) / 2)


def render_with_vtk(
    volume: Volume,
    lut: np.ndarray,
    ranges: HistogramRanges,
    *,
    view: str = "front",
    image_size: int = 128,
    shading: bool = True,
    interpolation: str = "nearest",
) -> VtkRendering:
    """Render one LUT with VTK's GPU ray caster, offscreen (see :class:`VtkRenderer`).

    Args:
        volume: the volume.
        lut: float RGBA ``(n_gradient_bins, n_intensity_bins, 4)`` on ``ranges``.
        ranges: the joint-histogram ranges.
        view: a key of :data:`VIEWS`.
        image_size: side of the square image in pixels.
        shading: headlight shading (see :class:`VtkRenderer`).
        interpolation: ``"nearest"`` or ``"linear"``.

    Returns:
        The rendering.

    Raises:
        ValueError: unknown view or interpolation, bad LUT shape.
        gymnasium.error.DependencyNotInstalled: VTK is missing.
    """
    with VtkRenderer(
        volume, ranges, image_size=image_size, shading=shading, interpolation=interpolation
    ) as renderer:
        return renderer.render(lut, view=view)


def show_interactive(
    volume: Volume,
    lut: np.ndarray,
    ranges: HistogramRanges,
    *,
    view: str = "front",
    shading: bool = True,
    off_screen: bool = False,
) -> Any:
    """Open an interactive pyvista window on the volume rendered with a LUT.

    Blocks until the window is closed, unless ``off_screen`` (then nothing is shown and the
    plotter is returned for a screenshot or a test).

    Args:
        volume: the volume.
        lut: float RGBA ``(n_gradient_bins, n_intensity_bins, 4)`` on ``ranges``.
        ranges: the joint-histogram ranges.
        view: the initial view, a key of :data:`VIEWS`.
        shading: headlight shading (see :class:`VtkRenderer`).
        off_screen: build the plotter without opening a window.

    Returns:
        The ``pyvista.Plotter``.
    """
    pv = _pyvista()
    _vtk()
    voxel_size = float(np.mean(volume.spacing))
    data = volume.data
    tf_image = export_tf_to_vtk(
        lut, ranges, scalar_range=(float(data.min()), float(data.max())), voxel_size=voxel_size
    )
    actor = _volume_actor(
        volume_to_vtk(volume), tf_image, voxel_size, shading=shading, interpolation="linear"
    )
    plotter = pv.Plotter(off_screen=off_screen, title=f"tfgym: {volume.name}")
    plotter.background_color = "black"
    plotter.add_actor(actor)
    _place_camera(plotter.camera, volume, view)
    plotter.camera_set = True
    plotter.reset_camera_clipping_range()
    if not off_screen:
        plotter.show()
    return plotter
