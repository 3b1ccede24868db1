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

from dataclasses import dataclass
from typing import Any

import numpy as np

from tfgym.histogram import HistogramRanges
from tfgym.views import AMBIENT, DIFFUSE, VIEWS, view_vectors
from tfgym.volume import Volume
from tfgym.vtk_export import (
    MIN_TABLE_SIZE,
    SCALARS_NAME,
    check_lut,
    export_tf_to_vtk,
    load_pyvista,
    load_vtk,
    table_image,
    table_indices,
    volume_to_vtk,
    vtk_tf_table,
)

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
_HALF_STEP_BACK = "g_rayOrigin -= 0.5 * g_dirStep;"  # GLSL, see _volume_actor


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
        vtk = load_vtk()
        self.volume = volume
        self.ranges = ranges
        self.image_size = int(image_size)
        data = volume.data
        self.scalar_range = (float(data.min()), float(data.max()))
        self.voxel_size = float(np.mean(volume.spacing))
        self.table_size = MIN_TABLE_SIZE
        self._rows, self._cols = table_indices(
            ranges,
            scalar_range=self.scalar_range,
            voxel_size=self.voxel_size,
            size=self.table_size,
        )
        self._tf_image = table_image(np.zeros((self.table_size,) * 2 + (4,), np.float32))
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

        lut = check_lut(lut, self.ranges)
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
    vtk = load_vtk()
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
    pv = load_pyvista()
    load_vtk()
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
