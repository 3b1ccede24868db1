"""A TF means the same anatomy at every working size (training 64 vs display 256)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from tfgym.oracle import Oracle
from tfgym.oracle.reference import reference_action
from tfgym.renderer import Renderer
from tfgym.scene import REFERENCE_SIZE, Scene
from tfgym.transfer_function import TransferFunction
from tfgym.volume_io import bundled_scan_path, load_volume


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two grey images in [0, 255] (Gaussian window, sigma 1.5)."""
    a, b = a.astype(np.float64), b.astype(np.float64)

    def blur(x: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(x, 1.5)

    ma, mb = blur(a), blur(b)
    va, vb, cov = blur(a * a) - ma * ma, blur(b * b) - mb * mb, blur(a * b) - ma * mb
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ssim = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    return float(ssim.mean())


def _grey(rgb: np.ndarray, size: int) -> np.ndarray:
    """Luminance, area-downsampled to ``size`` pixels."""
    lum = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    f = lum.shape[0] // size
    return lum[: size * f, : size * f].reshape(size, f, size, f).mean(axis=(1, 3))


@pytest.fixture(scope="module")
def headsq_scenes() -> dict[int, Scene]:
    volume = load_volume(bundled_scan_path("headsq"), name="headsq")
    return {size: Scene.from_volume(volume, working_size=size) for size in (64, 256)}


def test_every_working_size_shares_the_reference_histogram(headsq_scenes) -> None:
    small, big = headsq_scenes[64], headsq_scenes[256]
    assert REFERENCE_SIZE == 64
    assert big.ranges == small.ranges
    assert big.opacity_scale == pytest.approx(0.25) and small.opacity_scale == 1.0
    # the gradient is the reference's, interpolated: same distribution, not 4x sharper edges
    for q in (50, 90, 99):
        assert np.percentile(big.gradient, q) == pytest.approx(
            np.percentile(small.gradient, q), rel=0.15
        )
    # intensity classes use the reference's thresholds: the bone share stays put
    share = {s: float((headsq_scenes[s].labels == 2).mean()) for s in (64, 256)}
    assert share[256] == pytest.approx(share[64], rel=0.15)


@pytest.mark.parametrize("view", ["front", "left"])
def test_a_tf_renders_the_same_anatomy_at_64_and_256_voxels(headsq_scenes, view) -> None:
    small, big = headsq_scenes[64], headsq_scenes[256]
    tf = TransferFunction.from_action(reference_action(small))
    images, scores = {}, {}
    for size, scene in headsq_scenes.items():
        spv = 1 if size == 64 else 4  # training renderer vs display renderer
        batch = Renderer(scene, image_size=256, view=view, samples_per_voxel=spv).render(
            tf.lut(scene.ranges)[None]
        )
        images[size] = _grey(batch.rgb[0], 64)  # the 64-voxel plane's resolution
        scores[size] = float(Oracle().evaluate(batch, scene)["score"][0])
    assert _ssim(images[64], images[256]) >= 0.8
    assert abs(scores[64] - scores[256]) <= 0.1
    assert big.ranges == small.ranges


def test_display_sampling_matches_the_fast_renderer_on_average(headsq_scenes) -> None:
    scene = headsq_scenes[64]
    tf = TransferFunction.from_action(reference_action(scene))
    lut = tf.lut(scene.ranges)[None]
    fast = Renderer(scene, image_size=64).render(lut)
    fine = Renderer(scene, image_size=64, samples_per_voxel=4).render(lut)
    # same structures and the same coverage; only sub-voxel placement of surfaces differs
    assert abs(float(fine.alpha.mean()) - float(fast.alpha.mean())) < 0.05
    assert _ssim(_grey(fast.rgb[0], 64), _grey(fine.rgb[0], 64)) > 0.8
    np.testing.assert_allclose(fine.label_contrib.sum(), fast.label_contrib.sum(), rtol=0.1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"samples_per_voxel": 0}, "1..16"),
        ({"samples_per_voxel": 2.5}, "integer"),
        ({"samples_per_voxel": True}, "integer"),
        ({"samples_per_voxel": 4, "device": "cuda"}, "CPU only"),
    ],
)
def test_bad_samples_per_voxel_raise(headsq_scenes, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        Renderer(headsq_scenes[64], **kwargs)
