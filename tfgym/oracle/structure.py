"""The oracle's structure term: does a rendering look like the target drawn alone?

A TF can score well on visibility and purity while it draws the target as a speckled,
moth-eaten surface (voxels at the edges of its band missing) or scatters clutter in front of
it. A person sees that at once; contributions summed over the image plane do not. The
structure term compares the rendering with the **target image**: the same scene, camera,
framing and headlight shading with the target tissues drawn alone, fully opaque and white
(each ray shows ``ambient + diffuse * |n . l|`` at its first target voxel, ``n`` the unit
gradient of the working volume; black where no ray meets the target).

Measure: the SSIM (:mod:`tfgym.oracle.ssim`: gaussian window of 1.5 pixels, Wang et al.
2004) between the luminance of the rendering and the target image, averaged over the image,
negative values counted as 0, so in [0, 1]. It is computed at a fixed **analysis
resolution** of :data:`ANALYSIS_SIZE` pixels on the side of the square image: the rendering,
and the target image framed and resampled at the rendering's image size, are resampled to
it (:func:`analysis_matrix`; renderings smaller than :data:`CANONICAL_SIZE` are first
enlarged to it as the renderer would have enlarged the plane). An analysis pixel is so about
one voxel of the scan's 64-voxel reference volume at every working and image size, and the
term means the same at all of them: on headsq, renderings of 64 to 512 pixels agree within
0.005 and the same TF at 64 and 256 working voxels within 0.03 (images below 64 pixels lose
detail and read higher). The colour scheme matters little: SSIM compares local structure,
and a bone-coloured rendering is about 0.9 times as bright as the white target.

The target image is computed once per scene, view, target and image size and cached with the
scene (weakly, like :func:`tfgym.voxel_classes.silhouette_area`). Cost per rendering at 128
pixels: one tent resampling to 64 x 64 and three gaussian blurs, about 0.1 ms (compiled,
serial below four renderings).

Example:
    >>> from tfgym.scene import load_scene
    >>> from tfgym.volume import Tissue
    >>> scene = load_scene("headsq")
    >>> image = target_image(scene, "front", (Tissue.BONE, Tissue.TEETH), image_size=128)
    >>> image.shape, image.dtype, bool(0.0 <= image.min() and image.max() <= 1.0)
    ((128, 128), dtype('float32'), True)
    >>> rgb = np.repeat(np.round(image * 255).astype(np.uint8)[None, ..., None], 3, axis=3)
    >>> structure(np.concatenate([rgb, 0 * rgb]), scene, "front", (Tissue.BONE,)).round(2)
    array([1.  , 0.49])
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Sequence

import numpy as np

from tfgym.oracle.ssim import SSIM_SIGMA, SSIMReference, resample_luminance
from tfgym.render_kernels import banded, resample_matrix
from tfgym.scene import Scene
from tfgym.views import AMBIENT, DIFFUSE, view_geometry, view_vectors
from tfgym.volume import Tissue

__all__ = [
    "ANALYSIS_SIZE",
    "CANONICAL_SIZE",
    "analysis_matrix",
    "structure",
    "target_image",
    "target_plane",
]

ANALYSIS_SIZE = 64  # pixels on the side of the image the SSIM is computed on
CANONICAL_SIZE = 128  # smaller renderings are enlarged to this size first (see analysis_matrix)

# per scene (weakly held): (kind, view, tissues, size) -> cached read-only array
_CACHE: weakref.WeakKeyDictionary[Scene, dict[tuple[object, ...], np.ndarray]] = (
    weakref.WeakKeyDictionary()
)
_REFERENCES: weakref.WeakKeyDictionary[Scene, dict[tuple[object, ...], SSIMReference]] = (
    weakref.WeakKeyDictionary()
)


def _first_hits(
    scene: Scene, view: str, tissues: tuple[int, ...]
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Plane mask of the rays that meet the target, and the volume indices of their first hits."""
    perm, flips = view_geometry(view)
    flip_axes = tuple(i for i, f in enumerate(flips) if f)
    is_target = np.isin(scene.labels, tissues)
    ordered = np.flip(np.transpose(is_target, perm), flip_axes)  # (depth, rows, cols)
    hit = np.asarray(ordered.any(axis=0))
    rows, cols = np.nonzero(hit)
    view_idx = (np.argmax(ordered, axis=0)[rows, cols], rows, cols)
    vol_idx: list[np.ndarray] = [rows] * 3
    for k, axis in enumerate(perm):  # back from view order to volume (z, y, x) indices
        vol_idx[axis] = ordered.shape[k] - 1 - view_idx[k] if flips[k] else view_idx[k]
    return hit, tuple(vol_idx)


def _shade_at(scene: Scene, view: str, idx: tuple[np.ndarray, ...]) -> np.ndarray:
    """The renderer's headlight shading at the voxels ``idx``.

    The renderer's headlight model with the unit normal of the working volume (central
    differences). (The renderer divides by the scene's gradient magnitude, which on working
    grids finer than the reference's is not the working grid's own: it lights some surface
    voxels above 1 and clips them; the target image uses the true normal.)
    """
    data, spacing = scene.volume.data, scene.volume.spacing
    grads = []
    for axis in range(3):
        lo, hi = list(idx), list(idx)
        lo[axis] = np.maximum(idx[axis] - 1, 0)
        hi[axis] = np.minimum(idx[axis] + 1, data.shape[axis] - 1)
        step = np.maximum(hi[axis] - lo[axis], 1) * spacing[axis]
        grads.append((data[tuple(hi)] - data[tuple(lo)]) / step)
    gz, gy, gx = grads
    dop, _ = view_vectors(view)
    mag = np.sqrt(gx * gx + gy * gy + gz * gz)
    flat = mag < 1e-3 * scene.ranges.gradient_max
    cos = np.abs(gx * dop[0] + gy * dop[1] + gz * dop[2]) / np.where(flat, 1.0, mag)
    return np.clip(np.where(flat, 1.0, AMBIENT + DIFFUSE * cos), 0.0, 1.0).astype(np.float32)


def _cached(scene: Scene, key: tuple[object, ...], make: Callable[[], np.ndarray]) -> np.ndarray:
    per_scene = _CACHE.setdefault(scene, {})
    if key not in per_scene:
        value = make()
        value.setflags(write=False)
        per_scene[key] = value
    return per_scene[key]


def _tissue_key(tissues: Sequence[Tissue | int]) -> tuple[int, ...]:
    return tuple(sorted({int(Tissue(t)) for t in tissues}))


def target_plane(scene: Scene, view: str, tissues: Sequence[Tissue | int]) -> np.ndarray:
    """The target drawn alone on the projected plane: shading of each ray's first target voxel.

    Returns:
        float32 ``(rows, cols)`` in [0, 1] (the renderer's plane for ``view``), 0 where the
        ray misses the target; read-only, cached per scene.
    """
    key = _tissue_key(tissues)

    def make() -> np.ndarray:
        hit, idx = _first_hits(scene, view, key)
        plane = np.zeros(hit.shape, dtype=np.float32)
        plane[hit] = _shade_at(scene, view, idx)
        return plane

    return _cached(scene, ("plane", view, key), make)


def target_image(
    scene: Scene, view: str, tissues: Sequence[Tissue | int], *, image_size: int
) -> np.ndarray:
    """The target drawn alone, framed and resampled as the renderer frames its images.

    Args:
        scene: the scene (its labels define the target).
        view: a camera preset of :data:`tfgym.views.VIEWS`.
        tissues: the target tissues.
        image_size: side of the square image in pixels.

    Returns:
        float32 ``(image_size, image_size)`` luminance in [0, 1], read-only, cached per scene.
    """

    def make() -> np.ndarray:
        plane = target_plane(scene, view, tissues)
        rows, cols = plane.shape
        scale = max(rows, cols) / image_size
        ry = resample_matrix(rows, image_size, scale, rows / 2)
        rx = resample_matrix(cols, image_size, scale, cols / 2)
        return np.clip(ry @ plane @ rx.T, 0.0, 1.0).astype(np.float32)

    key = ("image", view, _tissue_key(tissues), int(image_size))
    return _cached(scene, key, make)


@functools.lru_cache(maxsize=32)
def analysis_matrix(image_size: int) -> np.ndarray:
    """The resampling of a rendering of ``image_size`` pixels to the analysis resolution.

    Renderings of at least :data:`CANONICAL_SIZE` pixels are resampled with the renderer's
    tent filter straight to :data:`ANALYSIS_SIZE`; smaller ones are first enlarged to
    :data:`CANONICAL_SIZE` with the renderer's bilinear filter, which is what the renderer
    does to the plane, so a 64-pixel rendering of a 64-voxel plane is analysed exactly as the
    128-pixel rendering of the same plane.

    Returns:
        float32 ``(ANALYSIS_SIZE, image_size)``, read-only.
    """
    size = int(image_size)
    if size >= CANONICAL_SIZE:
        matrix = resample_matrix(size, ANALYSIS_SIZE, size / ANALYSIS_SIZE, size / 2)
    else:
        up = resample_matrix(size, CANONICAL_SIZE, size / CANONICAL_SIZE, size / 2)
        down = resample_matrix(
            CANONICAL_SIZE, ANALYSIS_SIZE, CANONICAL_SIZE / ANALYSIS_SIZE, CANONICAL_SIZE / 2
        )
        matrix = down @ up
    matrix = matrix.astype(np.float32)
    matrix.setflags(write=False)
    return matrix


@functools.lru_cache(maxsize=32)
def _analysis_banded(image_size: int) -> tuple[np.ndarray, np.ndarray]:
    return banded(analysis_matrix(image_size))


def _reference(scene: Scene, view: str, tissues: tuple[int, ...], size: int) -> SSIMReference:
    """The target image at ``size`` pixels, at analysis resolution, as an SSIM reference."""
    per_scene = _REFERENCES.setdefault(scene, {})
    key = (view, tissues, size)
    if key not in per_scene:
        m = analysis_matrix(size)
        image = m @ target_image(scene, view, tissues, image_size=size) @ m.T
        per_scene[key] = SSIMReference.of(image, SSIM_SIGMA)
    return per_scene[key]


def structure(
    rgb: np.ndarray, scene: Scene, view: str, tissues: Sequence[Tissue | int]
) -> np.ndarray:
    """SSIM of renderings against their target image at analysis resolution, ``(batch,)``.

    Args:
        rgb: uint8 ``(batch, H, H, 3)`` renderings (:attr:`tfgym.renderer.RenderBatch.rgb`).
        scene: their scene.
        view: the view they were rendered from.
        tissues: the target tissues.

    Returns:
        float64 ``(batch,)`` in [0, 1].

    Raises:
        ValueError: images that are not a batch of square rgb images.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 4 or rgb.shape[3] != 3 or rgb.shape[1] != rgb.shape[2]:
        raise ValueError(f"renderings must be (batch, H, H, 3) rgb, got shape {rgb.shape}")
    images = _normalised(resample_luminance(rgb, _analysis_banded(rgb.shape[1])))
    return _reference(scene, view, _tissue_key(tissues), rgb.shape[1]).ssim(images)


def _normalised(images: np.ndarray) -> np.ndarray:
    """Each image scaled so its 99th brightness percentile is 1 (clipped above).

    A TF's colours come from the scheme's ramp over the histogram's intensity axis: on a scan
    whose metal stretches that axis, bone sits at its dark red end and every TF draws it
    dark. The structure term is about what is drawn where (speckle, holes, clutter), not
    about that global tint, so brightness is normalised before the comparison.
    """
    flat = images.reshape(len(images), -1)
    top = np.percentile(flat, 99.0, axis=1).astype(np.float32)
    scale = np.where(top > 1e-3, 1.0 / np.maximum(top, 1e-3), 1.0).astype(np.float32)
    return np.minimum(images * scale[:, None, None], np.float32(1.0))
