"""Export a tfgym 2D transfer function for VTK: a ``.vti`` table and a pyvista script.

The ``.vti`` file (VTK XML image data) holds the TF as VTK's 2D transfer-function image, on
the axes :mod:`tfgym.vtk_render` explains: ``size x size`` float RGBA point scalars named
``"rgba"``, column ``c`` the scalar value ``smin + (c + 0.5) / size * (smax - smin)``, row
``r`` the gradient magnitude ``(r + 0.5) / size * gradient_max`` (grey values per mm). Its
field data records those axes (:class:`TfAxes`), so a reader can put the table on the axes of
any other volume of the same scan (another resolution has another scalar range and voxel size,
and VTK's axes follow the volume it renders): that is what the written script does before it
renders.

:func:`export_vtk` writes both files for one scene; :func:`write_vti` / :func:`read_vti` are
the table's round trip (exact, float32), :func:`retable` the re-axing (pure numpy), and
:func:`write_pyvista_script` the stand-alone script (numpy, SimpleITK, pyvista).

Example:
    >>> from tfgym.scene import load_scene  # doctest: +SKIP
    >>> out = export_vtk(tf, load_scene("headsq"), "bone-tf")  # doctest: +SKIP
    >>> out.script  # run it: python bone-tf/render_tf.py  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfgym.histogram import HistogramRanges
from tfgym.scene import Scene
from tfgym.transfer_function import TransferFunction
from tfgym.views import VIEWS, view_vectors
from tfgym.vtk_export import MIN_TABLE_SIZE, load_vtk, table_image, vtk_tf_table

__all__ = [
    "TfAxes",
    "VtkExport",
    "export_vtk",
    "read_vti",
    "retable",
    "scene_axes",
    "write_pyvista_script",
    "write_vti",
]

# The script written by write_pyvista_script ($names are filled in with string.Template).
SCRIPT_TEMPLATE = r'''"""Render a scan with a tfgym 2D TF in VTK (written by tfgym.export.vtk).

Needs numpy, SimpleITK and pyvista. Usage: python THIS.py [--png OUT.png] [--scan SCAN]
Without a PNG path it opens a window. The TF table's axes are in the .vti's field data.
"""

import argparse
import os
import sys

if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")  # headless

import numpy as np
import pyvista as pv
import SimpleITK as sitk
import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401  (registers the GPU ray caster)
from vtkmodules.vtkRenderingCore import vtkVolume, vtkVolumeProperty
from vtkmodules.vtkRenderingVolume import vtkGPUVolumeRayCastMapper

VTI = $vti
SCAN = $scan
PNG = $png
# view "$view": direction of projection and view-up, in world axes = the scan's index axes
DOP, UP = $dop, $up
IMAGE_SIZE = $image_size

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--png", default=PNG, help="save the image here instead of opening a window")
parser.add_argument("--scan", default=SCAN, help="the scan (a file or DICOM folder)")
parser.add_argument("--size", type=int, default=IMAGE_SIZE, help="image side in pixels")
parser.add_argument(
    "--voxels",
    choices=("smooth", "blocks"),
    default="smooth",
    help="smooth: linear interpolation between voxel centres (as a viewer shows a scan); "
    "blocks: each voxel a constant box, as tfgym's fast training renderer sees it",
)
args = parser.parse_args()

# The scan, reoriented so that its index axes are LPS (as tfgym loads it): data[z, y, x].
path = args.scan
if os.path.isdir(path):  # a DICOM series
    path = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(path)
image = sitk.DICOMOrient(sitk.ReadImage(path), "LPS")
data = sitk.GetArrayFromImage(image).astype(np.float32)
spacing = np.array(image.GetSpacing())  # (x, y, z) in mm
lo, hi, voxel = float(data.min()), float(data.max()), float(spacing.mean())

# The 2D TF: x = scalar value over its scalar range, y = gradient magnitude per mm from 0.
tf = pv.read(VTI)
size = tf.dimensions[0]
table = np.asarray(tf.point_data["rgba"]).reshape(size, size, 4)
lo0, hi0 = tf.field_data["scalar_range"]
gmax0 = tf.field_data["gradient_range"][1]
unit0 = tf.field_data["opacity_unit_distance"][0]

# VTK's axes for this scan: its scalar range, and gradients up to a quarter of the range per
# voxel; each texel takes the table's texel holding its centre. Alphas per one-voxel step.
centre = (np.arange(size) + 0.5) / size
col = np.floor((lo + centre * (hi - lo) - lo0) / (hi0 - lo0) * size).clip(0, size - 1)
row = np.floor(centre * 0.25 * (hi - lo) / voxel / gmax0 * size).clip(0, size - 1)
table = table[row.astype(int)[:, None], col.astype(int)[None, :]]
table[..., 3] = 1.0 - (1.0 - table[..., 3].clip(0, 1)) ** (voxel / unit0)
tf_image = pv.ImageData(dimensions=(size, size, 1))
tf_image.point_data["rgba"] = table.reshape(-1, 4).astype(np.float32)

nz, ny, nx = data.shape
mapper = vtkGPUVolumeRayCastMapper()
if args.voxels == "smooth":
    # point data: voxel (z, y, x) is the sample at (x, y, z) * spacing, interpolated linearly
    grid = pv.ImageData(dimensions=(nx, ny, nz), spacing=spacing, origin=(0.0, 0.0, 0.0))
    grid.point_data["intensity"] = data.ravel()
    mapper.SetScalarModeToUsePointFieldData()
else:
    # cell data: voxel (z, y, x) is the box centred on (x, y, z) * spacing
    grid = pv.ImageData(dimensions=(nx + 1, ny + 1, nz + 1), spacing=spacing, origin=-spacing / 2)
    grid.cell_data["intensity"] = data.ravel()
    mapper.SetScalarModeToUseCellFieldData()
mapper.SetInputData(grid)
mapper.SelectScalarArray("intensity")
mapper.SetAutoAdjustSampleDistances(0)
mapper.SetSampleDistance(voxel)  # one sample per voxel
mapper.SetUseJittering(0)
prop = vtkVolumeProperty()
prop.SetTransferFunctionMode(vtkVolumeProperty.TF_2D)
prop.SetTransferFunction2D(tf_image)
if args.voxels == "smooth":
    prop.SetInterpolationTypeToLinear()
else:
    prop.SetInterpolationTypeToNearest()
prop.ShadeOn()
prop.SetAmbient(0.3)
prop.SetDiffuse(0.7)
prop.SetSpecular(0.0)
volume = vtkVolume()
volume.SetMapper(mapper)
volume.SetProperty(prop)
if args.voxels == "blocks":  # samples on the voxel centres (VTK's first is a step inside)
    init = "//VTK::Cropping::Init"
    volume.GetShaderProperty().AddFragmentShaderReplacement(
        init, True, "g_rayOrigin -= 0.5 * g_dirStep;\n" + init, False
    )

window = (args.size, args.size)
plotter = pv.Plotter(off_screen=bool(args.png), window_size=window, lighting="none")
plotter.add_light(pv.Light(light_type="headlight"))
plotter.background_color = "black"
plotter.add_actor(volume)
extent = np.array([nx, ny, nz]) * spacing
focal = (np.array([nx, ny, nz]) - 1) / 2 * spacing
dop, up = np.array(DOP, float), np.array(UP, float)
camera = plotter.camera
camera.SetParallelProjection(True)
camera.SetFocalPoint(*focal)
camera.SetPosition(*(focal - 10 * np.linalg.norm(extent) * dop))
camera.SetViewUp(*up)
camera.SetParallelScale(max(abs(np.cross(dop, up) @ extent), abs(up @ extent)) / 2)
plotter.camera_set = True
plotter.reset_camera_clipping_range()
if args.png:
    plotter.screenshot(args.png, transparent_background=True)
    print(f"saved {args.png}")
else:
    plotter.show()
'''


@dataclass(frozen=True)
class TfAxes:
    """The physical axes of a VTK 2D TF table (stored in the ``.vti`` file's field data).

    Attributes:
        scalar_range: ``(min, max)`` grey values spanned by the table's x axis (the scalar
            range of the volume it was made for).
        gradient_max: gradient magnitude (grey values per mm) at the top of the y axis; the
            y axis starts at 0. VTK's value is ``0.25 * (max - min) / voxel_size``.
        voxel_size: mean voxel edge (mm) of the volume the table was made for.
        opacity_unit_distance: ray step (mm) the table's alphas are the opacity of.
    """

    scalar_range: tuple[float, float]
    gradient_max: float
    voxel_size: float
    opacity_unit_distance: float

    def __post_init__(self) -> None:
        """Check the axes."""
        lo, hi = self.scalar_range
        if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
            raise ValueError(f"scalar_range must be finite and increasing, got {self.scalar_range}")
        for name in ("gradient_max", "voxel_size", "opacity_unit_distance"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value}")


@dataclass(frozen=True)
class VtkExport:
    """The files :func:`export_vtk` wrote.

    Attributes:
        vti: the 2D TF table (VTK XML image data).
        script: the pyvista script rendering the scan with it.
        axes: the table's axes.
    """

    vti: Path
    script: Path
    axes: TfAxes


def scene_axes(scene: Scene) -> TfAxes:
    """VTK's TF axes for a scene's working volume, one ray sample per voxel."""
    data = scene.volume.data
    lo, hi = float(data.min()), float(data.max())
    voxel = float(np.mean(scene.volume.spacing))
    return TfAxes((lo, hi), 0.25 * (hi - lo) / voxel, voxel, voxel)


def _scene_lut(tf: TransferFunction | np.ndarray, scene: Scene) -> np.ndarray:
    """The LUT on the scene's ranges, alphas per working voxel (as tfgym's renderer uses)."""
    lut = tf.lut(scene.ranges) if isinstance(tf, TransferFunction) else np.array(tf, np.float32)
    if abs(scene.opacity_scale - 1.0) > 1e-9:
        alpha = np.clip(lut[..., 3], 0.0, 1.0 - 1e-7)
        lut[..., 3] = 1.0 - np.power(1.0 - alpha, scene.opacity_scale)
    return lut


def write_vti(
    tf: TransferFunction | np.ndarray,
    path: str | os.PathLike[str],
    scene: Scene | tuple[HistogramRanges, TfAxes],
    *,
    size: int = MIN_TABLE_SIZE,
) -> TfAxes:
    """Write a 2D TF as VTK's TF image in a ``.vti`` file, its axes in the field data.

    Args:
        tf: a :class:`TransferFunction`, or a float LUT ``(n_gradient_bins,
            n_intensity_bins, 4)`` on the scene's ranges (alphas per reference voxel).
        path: the ``.vti`` file to write.
        scene: the scene whose working volume the table is made for; or
            ``(ranges, axes)``: the LUT's ranges and the table's axes (alphas then per
            ``axes.opacity_unit_distance``, no correction).
        size: table side, a power of two >= 1024 (VTK resamples other sizes).

    Returns:
        The axes written.

    Raises:
        ValueError: bad LUT shape or table size.
        gymnasium.error.DependencyNotInstalled: VTK is missing.
    """
    if isinstance(scene, Scene):
        ranges, axes = scene.ranges, scene_axes(scene)
        lut = _scene_lut(tf, scene)
    else:
        ranges, axes = scene
        lut = tf.lut(ranges) if isinstance(tf, TransferFunction) else np.asarray(tf, np.float32)
    table = vtk_tf_table(
        lut,
        ranges,
        scalar_range=axes.scalar_range,
        voxel_size=axes.voxel_size,
        size=size,
        sample_distance=axes.opacity_unit_distance,
    )
    if not np.isclose(axes.gradient_max, 0.25 * np.ptp(axes.scalar_range) / axes.voxel_size):
        raise ValueError("gradient_max must be VTK's 0.25 * (max - min) / voxel_size")
    load_vtk()
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkIOXML import vtkXMLImageDataWriter

    image = table_image(table)
    fields = {
        "scalar_range": axes.scalar_range,
        "gradient_range": (0.0, axes.gradient_max),
        "voxel_size": (axes.voxel_size,),
        "opacity_unit_distance": (axes.opacity_unit_distance,),
    }
    for name, values in fields.items():
        array = numpy_to_vtk(np.array(values, np.float64), deep=True)
        array.SetName(name)
        image.GetFieldData().AddArray(array)
    writer = vtkXMLImageDataWriter()
    writer.SetFileName(os.fspath(path))
    writer.SetInputData(image)
    if not writer.Write():
        raise OSError(f"VTK could not write {os.fspath(path)!r}")
    return axes


def read_vti(path: str | os.PathLike[str]) -> tuple[np.ndarray, TfAxes]:
    """Read a table written by :func:`write_vti`.

    Returns:
        The table, float32 ``(size, size, 4)`` (row 0 = zero gradient), and its axes.

    Raises:
        ValueError: the file is no 2D TF table of :func:`write_vti`.
        gymnasium.error.DependencyNotInstalled: VTK is missing.
    """
    load_vtk()
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkIOXML import vtkXMLImageDataReader

    if not Path(path).is_file():
        raise FileNotFoundError(f"no such .vti file: {os.fspath(path)!r}")
    reader = vtkXMLImageDataReader()
    reader.SetFileName(os.fspath(path))
    reader.Update()
    image = reader.GetOutput()
    nx, ny, nz = image.GetDimensions()
    scalars = image.GetPointData().GetScalars()
    fields = image.GetFieldData()
    names = ("scalar_range", "gradient_range", "voxel_size", "opacity_unit_distance")
    if scalars is None or nz != 1 or scalars.GetNumberOfComponents() != 4:
        raise ValueError(f"{os.fspath(path)!r} holds no RGBA 2D transfer-function image")
    missing = [n for n in names if fields.GetArray(n) is None]
    if missing:
        raise ValueError(f"{os.fspath(path)!r} lacks the field data {missing}")
    field = {n: vtk_to_numpy(fields.GetArray(n)).astype(float) for n in names}
    table = np.array(vtk_to_numpy(scalars), dtype=np.float32).reshape(ny, nx, 4)
    axes = TfAxes(
        (float(field["scalar_range"][0]), float(field["scalar_range"][1])),
        float(field["gradient_range"][1]),
        float(field["voxel_size"][0]),
        float(field["opacity_unit_distance"][0]),
    )
    return table, axes


def retable(table: np.ndarray, axes: TfAxes, target: TfAxes) -> np.ndarray:
    """Put a table on another volume's axes (nearest texel, clamped; pure numpy).

    Each texel of the result takes the texel of ``table`` containing its centre's scalar value
    and gradient; alphas are corrected from ``axes.opacity_unit_distance`` to
    ``target.opacity_unit_distance``. The written script does the same in a few lines.

    Returns:
        float32, the shape of ``table``.

    Example:
        >>> t = np.random.default_rng(0).random((4, 4, 4)).astype(np.float32)
        >>> a = TfAxes((0.0, 4.0), 1.0, 1.0, 1.0)
        >>> bool(np.array_equal(retable(t, a, a), t))
        True
    """
    rows, cols = table.shape[:2]
    centre_x = (np.arange(cols) + 0.5) / cols
    centre_y = (np.arange(rows) + 0.5) / rows
    (lo0, hi0), (lo1, hi1) = axes.scalar_range, target.scalar_range
    col = np.floor((lo1 + centre_x * (hi1 - lo1) - lo0) / (hi0 - lo0) * cols)
    row = np.floor(centre_y * target.gradient_max / axes.gradient_max * rows)
    col_i = col.clip(0, cols - 1).astype(np.intp)
    row_i = row.clip(0, rows - 1).astype(np.intp)
    out = np.array(table[row_i[:, None], col_i[None, :]], dtype=np.float32)
    exponent = target.opacity_unit_distance / axes.opacity_unit_distance
    if exponent != 1.0:
        out[..., 3] = 1.0 - np.power(1.0 - np.clip(out[..., 3], 0.0, 1.0), exponent)
    return out


def write_pyvista_script(
    vti_path: str | os.PathLike[str],
    scan_path: str | os.PathLike[str],
    script_path: str | os.PathLike[str],
    *,
    png_path: str | os.PathLike[str] | None = None,
    view: str = "front",
    image_size: int = 512,
) -> Path:
    """Write a stand-alone Python script that renders a scan with a ``.vti`` 2D TF in VTK.

    The script (numpy, SimpleITK and pyvista; no tfgym) reads the scan (any file or DICOM
    directory SimpleITK reads, reoriented to LPS as tfgym does), puts the table on the scan's
    axes, and ray casts it as :mod:`tfgym.vtk_render` does (cell data, one sample per voxel on
    the voxel centres, headlight shading, orthographic view preset). It saves an RGBA PNG
    (the volume over a transparent background) when given one (or ``--png PATH``), else
    opens a window; ``--scan`` and ``--size`` override the scan and the image side. Paths
    are written absolute.

    Args:
        vti_path: the table from :func:`write_vti`.
        scan_path: the scan.
        script_path: the script to write.
        png_path: default PNG to save; ``None``: open a window unless ``--png`` is given.
        view: a key of :data:`tfgym.views.VIEWS`.
        image_size: side of the square image in pixels.

    Returns:
        ``script_path`` as a ``Path``.

    Raises:
        ValueError: unknown view or non-positive image size.
    """
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; valid: {sorted(VIEWS)}")
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    dop, up = view_vectors(view)
    png = None if png_path is None else str(Path(png_path).resolve())
    text = string.Template(SCRIPT_TEMPLATE).substitute(
        vti=json.dumps(str(Path(vti_path).resolve())),
        scan=json.dumps(str(Path(scan_path).resolve())),
        png="None" if png is None else json.dumps(png),
        view=view,
        dop=tuple(float(v) for v in dop),
        up=tuple(float(v) for v in up),
        image_size=int(image_size),
    )
    out = Path(script_path)
    out.write_text(text)
    return out


def export_vtk(
    tf: TransferFunction | np.ndarray,
    scene: Scene,
    out_dir: str | os.PathLike[str],
    *,
    scan_path: str | os.PathLike[str] | None = None,
    view: str = "front",
    image_size: int = 512,
) -> VtkExport:
    """Write ``tf.vti`` and ``render_tf.py`` (rendering ``render_tf.png``) into ``out_dir``.

    Args:
        tf: the TF (or its LUT on ``scene.ranges``).
        scene: the scene it was made on.
        out_dir: the folder to write into (created if missing).
        scan_path: the scan the script opens; default: the scene's own file (the bundled
            path for ``headsq``, the scan's path for a scene loaded from a file).
        view: the script's view preset.
        image_size: the script's image side in pixels.

    Returns:
        The files written and the table's axes.

    Raises:
        ValueError: no scan path for a phantom scene; see :func:`write_vti`.
    """
    if scan_path is None:
        from tfgym.volume_io import BUNDLED_SCANS, bundled_scan_path

        if scene.name in BUNDLED_SCANS:
            scan_path = bundled_scan_path(scene.name)
        elif Path(scene.name).exists():
            scan_path = scene.name
        else:
            raise ValueError(f"scene {scene.name!r} has no scan file; pass scan_path")
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    vti = folder / "tf.vti"
    axes = write_vti(tf, vti, scene)
    script = write_pyvista_script(
        vti,
        scan_path,
        folder / "render_tf.py",
        png_path=folder / "render_tf.png",
        view=view,
        image_size=image_size,
    )
    return VtkExport(vti, script, axes)
