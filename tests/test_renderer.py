"""Tests of tfgym.renderer against a slow, independently written reference renderer.

The reference derives each view's geometry from the documented conventions only (direction of
projection, view-up, image right = dop x up, row 0 at +up, depth 0 nearest the camera), then
composites every ray front to back in pure python. Images are rendered with ``image_size``
equal to the larger side of the projected plane, where the renderer's resampling is the
identity with the smaller side centred between black margins.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tfgym.renderer import Renderer
from tfgym.scene import Scene
from tfgym.transfer_function import TransferFunction
from tfgym.volume import Tissue, Volume

# The documented view presets, in world (x, y, z) coordinates: (direction of projection, up).
SPEC_VIEWS = {
    "front": ((0, 1, 0), (0, 0, 1)),
    "back": ((0, -1, 0), (0, 0, 1)),
    "left": ((-1, 0, 0), (0, 0, 1)),
    "side": ((-1, 0, 0), (0, 0, 1)),
    "right": ((1, 0, 0), (0, 0, 1)),
    "top": ((0, 0, -1), (0, -1, 0)),
    "bottom": ((0, 0, 1), (0, -1, 0)),
}
ALL_VIEWS = list(SPEC_VIEWS)


# ----------------------------------------------------------------------- slow reference


def reference_rays(shape: tuple[int, int, int], view: str) -> np.ndarray:
    """Flat voxel indices of each ray, ``(rows, cols, depth)``, depth 0 nearest the camera."""
    dop, up = (np.array(v) for v in SPEC_VIEWS[view])
    right = np.cross(dop, up)
    z, y, x = np.indices(shape)
    world = np.stack([x, y, z], axis=-1).reshape(-1, 3)  # isotropic: index = position

    def rank(coord: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.unique(coord), coord)

    d, r, c = rank(world @ dop), rank(-(world @ up)), rank(world @ right)
    rays = np.full((r.max() + 1, c.max() + 1, d.max() + 1), -1, dtype=np.int64)
    rays[r, c, d] = np.arange(world.shape[0])
    assert (rays >= 0).all()
    return rays


def reference_render(scene: Scene, lut: np.ndarray, view: str) -> tuple[np.ndarray, np.ndarray]:
    """Unshaded front-to-back compositing of every ray, in pure python (no early stop).

    A LUT's opacity holds for one reference voxel; the scene's voxels are
    ``scene.opacity_scale`` of those, so each voxel absorbs ``1 - (1 - alpha) ** scale``.

    Returns:
        ``plane`` ``(rows, cols, 4)`` (premultiplied RGB, alpha) and ``contrib`` per label.
    """
    rays = reference_rays(scene.volume.shape, view)
    bins = scene.bins.ravel().tolist()
    labels = scene.labels.ravel().tolist()
    n_i = scene.ranges.n_intensity_bins
    table = lut.astype(np.float64)
    plane = np.zeros((*rays.shape[:2], 4))
    contrib = np.zeros(len(Tissue))
    for r in range(rays.shape[0]):
        for c in range(rays.shape[1]):
            transmit, colour = 1.0, np.zeros(3)
            for voxel in rays[r, c].tolist():
                k = bins[voxel]
                red, green, blue, alpha = table[k // n_i, k % n_i]
                alpha = 1.0 - (1.0 - min(alpha, 1.0 - 1e-7)) ** scene.opacity_scale
                weight = transmit * alpha
                colour += weight * np.array([red, green, blue])
                contrib[labels[voxel]] += weight
                transmit *= 1.0 - alpha
            plane[r, c, :3] = colour
            plane[r, c, 3] = 1.0 - transmit
    return plane, contrib


def embed(plane: np.ndarray, size: int) -> np.ndarray:
    """The plane centred in a black ``size x size`` image (what identity resampling gives)."""
    rows, cols = plane.shape[:2]
    top, left = (size - rows) // 2, (size - cols) // 2
    out = np.zeros((size, size, *plane.shape[2:]), dtype=plane.dtype)
    out[top : top + rows, left : left + cols] = plane
    return out


def random_luts(scene: Scene, rng: np.random.Generator, n: int) -> np.ndarray:
    """Random RGBA LUTs, a third of the bins transparent, the rest semi-transparent."""
    shape = (n, *scene.ranges.shape)
    luts = rng.uniform(0.0, 1.0, size=(*shape, 4)).astype(np.float32)
    luts[..., 3] *= 0.7
    luts[..., 3][rng.uniform(size=shape) < 0.33] = 0.0
    return luts


def plane_size(scene: Scene, view: str) -> int:
    rays = reference_rays(scene.volume.shape, view)
    return max(rays.shape[:2])


# ------------------------------------------------------------------ reference agreement


@pytest.mark.parametrize("view", ALL_VIEWS)
def test_matches_reference_renderer_in_every_view(tiny_scene, rng, view) -> None:
    size = plane_size(tiny_scene, view)
    renderer = Renderer(tiny_scene, image_size=size, view=view, shading=False)
    rays = reference_rays(tiny_scene.volume.shape, view)
    assert (renderer.rows, renderer.cols) == rays.shape[:2]
    luts = random_luts(tiny_scene, rng, 2)
    out = renderer.render(luts)
    for b in range(2):
        plane, contrib = reference_render(tiny_scene, luts[b], view)
        expected = embed(plane, size)
        np.testing.assert_allclose(out.alpha[b], expected[..., 3], atol=2e-4)
        rgb_u8 = np.floor(expected[..., :3] * 255.0 + 0.5)
        assert np.abs(out.rgb[b].astype(int) - rgb_u8).max() <= 1
        n_rays = rays.shape[0] * rays.shape[1]
        np.testing.assert_allclose(out.label_contrib[b], contrib, atol=1e-4 * n_rays)
        assert out.rgb[b].any()  # the comparison is not between two black images


def test_view_geometry_of_the_tiny_volume(tiny_scene) -> None:
    """Plane shapes follow the view's axes: (nz, nx) front, (nz, ny) sides, (ny, nx) top."""
    nz, ny, nx = tiny_scene.volume.shape
    expected = {"front": (nz, nx), "back": (nz, nx), "left": (nz, ny), "side": (nz, ny),
                "right": (nz, ny), "top": (ny, nx), "bottom": (ny, nx)}  # fmt: skip
    for view, shape in expected.items():
        r = Renderer(tiny_scene, image_size=8, view=view)
        assert (r.rows, r.cols) == shape, view
        assert r.depth == nz * ny * nx // (shape[0] * shape[1])


# ------------------------------------------------------------------- orientation markers

MARKER_SHAPE = (24, 20, 16)  # (nz, ny, nx)
FACE, TOP, SIDE = Tissue.TEETH, Tissue.METAL, Tissue.SOFT_TISSUE  # marker labels


@pytest.fixture(scope="module")
def marker_scene() -> Scene:
    """A bone ball with three 2x2x2 markers on its axes: on the face side (low y), on top
    (high z) and on the patient's right (low x); the ball hides each one from the opposite
    view. Noise-free, so every label has its own intensity bins."""
    labels = np.zeros(MARKER_SHAPE, dtype=np.uint8)
    z, y, x = np.indices(MARKER_SHAPE)
    labels[(z - 11.5) ** 2 + (y - 9.5) ** 2 + (x - 7.5) ** 2 <= 4.5**2] = Tissue.BONE
    labels[11:13, 1:3, 7:9] = FACE
    labels[21:23, 9:11, 7:9] = TOP
    labels[11:13, 9:11, 1:3] = SIDE
    values = {Tissue.AIR: -1000.0, Tissue.BONE: 1000.0, FACE: 2000.0, TOP: 3000.0, SIDE: 40.0}
    data = np.zeros(MARKER_SHAPE, dtype=np.float32)
    for tissue, value in values.items():
        data[labels == tissue] = value
    volume = Volume(data, (2.0, 2.0, 2.0), name="markers", labels=labels)
    return Scene.from_volume(volume, working_size=24, histogram_bins=16)


COLOURS = {
    Tissue.BONE: (1.0, 0.0, 0.0),
    FACE: (0.0, 1.0, 0.0),
    TOP: (0.0, 0.0, 1.0),
    SIDE: (1.0, 1.0, 0.0),
}


def label_lut(scene: Scene, tissues) -> np.ndarray:
    """An opaque LUT over the bins of ``tissues``, each tissue in its own pure colour."""
    lut = np.zeros((*scene.ranges.shape, 4), dtype=np.float32)
    flat = lut.reshape(-1, 4)
    others = set(np.unique(scene.bins[~np.isin(scene.labels, list(tissues))]).tolist())
    for t in tissues:
        bins = np.unique(scene.bins[scene.labels == t])
        assert not others & set(bins.tolist()), "label bins overlap: the LUT would be ambiguous"
        flat[bins, :3] = COLOURS[t]
        flat[bins, 3] = 1.0
    return lut


def seen(scene: Scene, view: str, tissue: Tissue) -> np.ndarray:
    """Mask of the image pixels (image = plane + margins) showing ``tissue`` in front."""
    size = plane_size(scene, view)  # identity resampling
    out = Renderer(scene, image_size=size, view=view, shading=False).render(
        label_lut(scene, list(COLOURS))
    )
    return np.all(out.rgb[0] == np.round(np.array(COLOURS[tissue]) * 255), axis=-1)


def centre(mask: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(mask)
    return float(rows.mean()), float(cols.mean())


def test_front_and_back_views(marker_scene) -> None:
    front_face, back_face = seen(marker_scene, "front", FACE), seen(marker_scene, "back", FACE)
    assert front_face.sum() == 4
    assert centre(front_face) == (11.5, 11.5)
    assert back_face.sum() == 0  # hidden behind it
    assert seen(marker_scene, "back", Tissue.BONE)[11:13, 11:13].all()
    # top marker: high z is at the top of the image (z 21..22 -> rows 1..2)
    assert centre(seen(marker_scene, "front", TOP)) == (1.5, 11.5)
    assert centre(seen(marker_scene, "back", TOP)) == (1.5, 11.5)
    # patient's right (low x) is on the image left from the front, on the right from the back
    assert centre(seen(marker_scene, "front", SIDE)) == (11.5, 4 + 1.5)
    assert centre(seen(marker_scene, "back", SIDE)) == (11.5, 23 - 4 - 1.5)


@pytest.mark.parametrize("view", ["left", "side"])
def test_left_view_looks_at_the_patients_left(marker_scene, view) -> None:
    assert seen(marker_scene, view, SIDE).sum() == 0  # the marker on the right is hidden
    assert centre(seen(marker_scene, view, FACE)) == (11.5, 2 + 1.5)  # face to the image left
    assert centre(seen(marker_scene, view, TOP))[0] == 1.5


def test_right_view_looks_at_the_patients_right(marker_scene) -> None:
    assert seen(marker_scene, "right", SIDE).sum() == 4
    assert centre(seen(marker_scene, "right", SIDE)) == (11.5, 2 + 9.5)
    assert centre(seen(marker_scene, "right", FACE)) == (11.5, 23 - 2 - 1.5)  # face to the right
    assert centre(seen(marker_scene, "right", TOP))[0] == 1.5


def test_top_and_bottom_views(marker_scene) -> None:
    """Top/bottom: view-up is -y, so the face is at the top of the image (20 x 20 images)."""
    assert seen(marker_scene, "top", TOP).sum() == 4
    assert seen(marker_scene, "bottom", TOP).sum() == 0
    assert centre(seen(marker_scene, "top", FACE)) == (1.5, 2 + 7.5)
    assert centre(seen(marker_scene, "bottom", FACE)) == (1.5, 2 + 7.5)
    # from above the patient's right is on the image right, from below on the left
    assert centre(seen(marker_scene, "top", SIDE)) == (9.5, 19 - 2 - 1.5)
    assert centre(seen(marker_scene, "bottom", SIDE)) == (9.5, 2 + 1.5)


def test_occluded_marker_contributes_nothing(marker_scene) -> None:
    lut = label_lut(marker_scene, list(COLOURS))
    front = Renderer(marker_scene, image_size=24, view="front").render(lut)
    back = Renderer(marker_scene, image_size=24, view="back").render(lut)
    assert front.label_contrib[0, FACE] == pytest.approx(4.0)  # 2x2 opaque pixels
    assert back.label_contrib[0, FACE] == 0.0


# ------------------------------------------------------------------------- special LUTs


@pytest.mark.parametrize("view", ["front", "left", "top"])
def test_empty_lut_renders_black(tiny_scene, view) -> None:
    renderer = Renderer(tiny_scene, image_size=32, view=view)
    empty = np.zeros((1, *tiny_scene.ranges.shape, 4), dtype=np.float32)
    empty[..., :3] = 1.0  # colour without opacity draws nothing
    degenerate = TransferFunction(((0.0, 0.0),) * 4).lut(tiny_scene.ranges)[None]
    for lut in (empty, degenerate):
        out = renderer.render(lut)
        assert not out.rgb.any()
        assert not out.alpha.any()
        assert not out.label_contrib.any()


@pytest.mark.parametrize("view", ALL_VIEWS)
def test_opaque_lut_covers_the_silhouette(tiny_scene, view) -> None:
    """Opaque on every bin but air's: alpha is 1 exactly where a ray meets tissue."""
    size = plane_size(tiny_scene, view)
    renderer = Renderer(tiny_scene, image_size=size, view=view, shading=False)
    tissue = [Tissue.SOFT_TISSUE, Tissue.BONE, Tissue.TEETH]
    lut = np.ones((*tiny_scene.ranges.shape, 4), dtype=np.float32)
    air_bins = np.unique(tiny_scene.bins[tiny_scene.labels == Tissue.AIR])
    assert not set(air_bins) & set(np.unique(tiny_scene.bins[tiny_scene.labels > 0]))
    lut.reshape(-1, 4)[air_bins, 3] = 0.0
    out = renderer.render(lut)
    rays = reference_rays(tiny_scene.volume.shape, view)
    silhouette = (tiny_scene.labels.ravel()[rays] > 0).any(axis=-1)
    np.testing.assert_allclose(out.alpha[0], embed(silhouette.astype(np.float32), size), atol=1e-6)
    assert out.label_contrib[0].sum() == pytest.approx(silhouette.sum(), rel=1e-6)
    assert renderer.silhouette_area(tissue) == silhouette.sum()
    assert out.label_contrib[0, Tissue.AIR] == 0.0


def test_fully_opaque_lut_shows_only_the_first_voxel(tiny_scene) -> None:
    renderer = Renderer(tiny_scene, image_size=24, view="front", shading=False)
    out = renderer.render(np.ones((*tiny_scene.ranges.shape, 4), dtype=np.float32))
    n_rays = renderer.rows * renderer.cols
    first = tiny_scene.labels[:, 0, :]  # y = 0: the slice nearest the front camera
    expected = np.bincount(first.ravel(), minlength=len(Tissue))
    np.testing.assert_allclose(out.label_contrib[0], expected, atol=1e-6)
    assert out.alpha[0].sum() == pytest.approx(n_rays)


# --------------------------------------------------------------------- batches, shading


def test_batch_equals_one_by_one(tiny_scene, rng) -> None:
    renderer = Renderer(tiny_scene, image_size=40, view="left")
    luts = random_luts(tiny_scene, rng, 6)
    batch = renderer.render(luts)
    assert len(batch) == 6
    for b in range(6):
        single = renderer.render(luts[b])  # no batch axis
        np.testing.assert_array_equal(batch.rgb[b], single.rgb[0])
        np.testing.assert_allclose(batch.alpha[b], single.alpha[0], atol=1e-6)
        np.testing.assert_allclose(batch.label_contrib[b], single.label_contrib[0], rtol=1e-5)


@pytest.mark.parametrize("view", ["front", "right", "bottom"])
def test_label_contrib_sums_to_plane_alpha(tiny_scene, rng, view) -> None:
    renderer = Renderer(tiny_scene, image_size=plane_size(tiny_scene, view), view=view)
    out = renderer.render(random_luts(tiny_scene, rng, 4))
    np.testing.assert_allclose(out.label_contrib.sum(axis=1), out.alpha.sum(axis=(1, 2)), rtol=1e-4)
    assert (out.label_contrib >= 0).all()


def test_shading_only_darkens(tiny_scene, rng) -> None:
    luts = random_luts(tiny_scene, rng, 3)
    for view in ("front", "top"):
        flat = Renderer(tiny_scene, image_size=24, view=view, shading=False).render(luts)
        lit = Renderer(tiny_scene, image_size=24, view=view, shading=True).render(luts)
        np.testing.assert_allclose(lit.alpha, flat.alpha, atol=1e-6)
        np.testing.assert_allclose(lit.label_contrib, flat.label_contrib, rtol=1e-6)
        assert (lit.rgb <= flat.rgb).all()
        assert lit.rgb.astype(int).sum() < 0.95 * flat.rgb.astype(int).sum()  # it does shade
        assert (lit.rgb.astype(float) >= 0.3 * flat.rgb - 1).all()  # ambient light remains


# -------------------------------------------------------------------------- torch path


def test_torch_path_agrees_with_compiled_kernel(tiny_scene, rng) -> None:
    luts = random_luts(tiny_scene, rng, 3)
    luts[1, ..., 3] = np.where(luts[1, ..., 3] > 0, 1.0, 0.0)  # opaque: early ray stops
    for view in ("front", "side"):
        renderer = Renderer(tiny_scene, image_size=24, view=view, device="cpu")
        kernel = renderer.render(luts)
        dense = renderer.render(torch.from_numpy(luts))
        n_rays = renderer.rows * renderer.cols
        np.testing.assert_allclose(dense.alpha, kernel.alpha, atol=1e-4)
        assert np.abs(dense.rgb.astype(int) - kernel.rgb).max() <= 1
        np.testing.assert_allclose(
            dense.label_contrib / n_rays, kernel.label_contrib / n_rays, atol=1e-4
        )
        assert dense.rgb.dtype == np.uint8
        assert dense.alpha.dtype == np.float32
        assert dense.label_contrib.shape == kernel.label_contrib.shape


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("view", ALL_VIEWS)
def test_cuda_path_matches_reference_and_kernel(tiny_scene, rng, view) -> None:
    size = plane_size(tiny_scene, view)
    luts = random_luts(tiny_scene, rng, 5)
    gpu = Renderer(tiny_scene, image_size=size, view=view, shading=False, device="cuda")
    cpu = Renderer(tiny_scene, image_size=size, view=view, shading=False)
    out, kernel = gpu.render(luts), cpu.render(luts)
    n_rays = gpu.rows * gpu.cols
    np.testing.assert_allclose(out.alpha, kernel.alpha, atol=1e-4)
    assert np.abs(out.rgb.astype(int) - kernel.rgb).max() <= 1
    np.testing.assert_allclose(out.label_contrib / n_rays, kernel.label_contrib / n_rays, atol=1e-4)
    plane, contrib = reference_render(tiny_scene, luts[0], view)
    np.testing.assert_allclose(out.alpha[0], embed(plane, size)[..., 3], atol=2e-4)
    np.testing.assert_allclose(out.label_contrib[0], contrib, atol=1e-4 * n_rays)
    shaded = Renderer(tiny_scene, image_size=size, view=view, device="cuda").render(luts)
    shaded_cpu = Renderer(tiny_scene, image_size=size, view=view).render(luts)
    assert np.abs(shaded.rgb.astype(int) - shaded_cpu.rgb).max() <= 1


# ------------------------------------------------------------------------------ errors


def test_unknown_view_lists_valid_names(tiny_scene) -> None:
    with pytest.raises(
        ValueError, match=r"unknown view 'diagonal'.*back.*bottom.*front.*left.*right.*side.*top"
    ):
        Renderer(tiny_scene, view="diagonal")


@pytest.mark.parametrize("shape", [(1, 8, 8, 4), (16, 16, 3), (2, 16, 16), (16, 16, 4, 1)], ids=str)
def test_wrong_lut_shape_raises(tiny_scene, shape) -> None:
    renderer = Renderer(tiny_scene, image_size=16)
    with pytest.raises(ValueError, match="LUTs must have shape"):
        renderer.render(np.zeros(shape, dtype=np.float32))
    with pytest.raises(ValueError, match="LUTs must have shape"):
        renderer.render(torch.zeros(shape))


def test_too_small_image_raises(tiny_scene) -> None:
    with pytest.raises(ValueError, match="image_size"):
        Renderer(tiny_scene, image_size=4)
