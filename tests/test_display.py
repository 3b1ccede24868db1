"""Display quality: renderings a person looks at, their opacity, figures and the demo's figure."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tfgym.demo import DemoConfig, run_demo
from tfgym.display import (
    DISPLAY_IMAGE_SIZE,
    DISPLAY_SAMPLES,
    DISPLAY_VIEWS,
    DISPLAY_WORKING_SIZE,
    FIGURE_DPI,
    check_views,
    display_figure,
    display_image_size,
    display_scene,
    render_display,
)
from tfgym.figures import figure_to_rgb
from tfgym.oracle import reference_action
from tfgym.renderer import Renderer
from tfgym.scene import Scene, load_scene
from tfgym.scoring import SceneScorer, ScoringSettings
from tfgym.transfer_function import TransferFunction
from tfgym.volume import Tissue, Volume

SMALL = 48  # display working size in tests: fast, still above the 32-voxel training size


def test_display_defaults_meet_the_issue():
    assert DISPLAY_WORKING_SIZE >= 192
    assert DISPLAY_IMAGE_SIZE >= 384
    assert display_image_size(DISPLAY_WORKING_SIZE) == DISPLAY_IMAGE_SIZE
    assert len(DISPLAY_VIEWS) >= 2
    assert check_views(DISPLAY_VIEWS) == DISPLAY_VIEWS


def test_check_views_rejects_unknown_and_empty():
    assert check_views("front") == ("front",)
    with pytest.raises(ValueError, match="unknown view 'sideways'"):
        check_views(["front", "sideways"])
    with pytest.raises(ValueError, match="no views"):
        check_views([])


def test_render_display_shape_views_and_actions_equal_tfs():
    settings = ScoringSettings(working_size=32)
    scene = load_scene("headsq", working_size=32)
    acts = np.stack([reference_action(scene), np.array([0, 0, 1, 0, 1, 1, 0, 1])])
    images = render_display("headsq", acts, working_size=SMALL, settings=settings)
    size = display_image_size(SMALL)
    assert images.shape == (2, len(DISPLAY_VIEWS), size, size, 3)
    assert images.dtype == np.uint8
    front, side = images[0]
    assert (front.max(axis=2) > 30).mean() > 0.05  # the reference TF shows bone
    assert np.abs(front.astype(int) - side.astype(int)).mean() > 5  # two different views
    tfs = [TransferFunction.from_action(a) for a in acts]
    np.testing.assert_array_equal(
        render_display(scene, tfs, working_size=SMALL, settings=settings), images
    )


def test_at_the_training_size_display_is_the_scored_rendering():
    """Same size, same settings, one sample per voxel: the display rendering is the oracle's
    rendering, pixel for pixel (the look comes from the ScoringSettings); the display's
    interpolated samples change it only a little."""
    settings = ScoringSettings(working_size=32, image_size=48, view="front", opacity=0.6)
    scorer = SceneScorer("phantom-00", settings)
    act = reference_action(scorer.scene)
    scored = scorer.score(act[None], renderings=True).renderings
    assert scored is not None
    kwargs: dict = {"views": ["front"], "working_size": 32, "image_size": 48}
    shown = render_display(
        scorer.scene, act[None], settings=settings, **kwargs, samples_per_voxel=1
    )
    np.testing.assert_array_equal(shown[0, 0], scored.rgb[0])
    smooth = render_display(scorer.scene, act[None], settings=settings, **kwargs)
    assert DISPLAY_SAMPLES > 1
    assert np.abs(smooth[0, 0].astype(int) - scored.rgb[0].astype(int)).mean() < 8


def cube_volume(size: int = 64) -> Volume:
    """A cube of one grey value, half the volume wide, in air (32 mm wide, isotropic)."""
    data = np.zeros((size, size, size), np.float32)
    labels = np.full(data.shape, Tissue.AIR, np.uint8)
    q = size // 4
    data[q:-q, q:-q, q:-q] = 100.0
    labels[q:-q, q:-q, q:-q] = Tissue.SOFT_TISSUE
    return Volume(data, (32.0 / size,) * 3, name="cube", labels=labels)


def test_display_looks_as_transparent_as_the_training_rendering():
    """A display voxel is thinner than a training voxel; the display rendering of a
    semi-transparent TF accumulates the opacity the training rendering did (corrected once:
    by the renderer, not again here)."""
    volume = cube_volume()
    small = Scene.from_volume(volume, working_size=16, histogram_bins=16)
    large = Scene.from_volume(volume, working_size=48, histogram_bins=16)
    assert display_scene(large, working_size=64) is large  # in memory: rendered as it is
    tf = TransferFunction(((0.2, -1), (1, -1), (1, 1), (0.2, 1)), opacity=0.02)
    trained = Renderer(small, image_size=32, shading=False).render(tf.lut(small.ranges)[None])
    settings = ScoringSettings(working_size=16, shading=False)
    shown = render_display(large, [tf], views=["front"], image_size=32, settings=settings)
    centre = (slice(12, 20), slice(12, 20))
    expected = trained.rgb[0][centre].astype(float).mean()
    assert 60 < expected < 230  # semi-transparent: the test can tell
    assert shown[0, 0][centre].astype(float).mean() == pytest.approx(expected, rel=0.05)


def test_display_scene_reloads_named_scenes_at_display_size():
    training = load_scene("headsq", working_size=32)
    shown = display_scene(training, working_size=SMALL)
    assert shown.name == "headsq"
    assert max(shown.volume.shape) > max(training.volume.shape)
    assert display_scene("headsq", working_size=SMALL) is shown  # process cache: built once
    assert shown.ranges.shape == training.ranges.shape
    with pytest.raises(ValueError, match="working_size must be at least 8"):
        display_scene("headsq", working_size=4)


def test_display_figure_layout_and_pixels():
    scene = load_scene("headsq", working_size=32)
    rng = np.random.default_rng(0)
    acts = rng.uniform(-1, 1, (3, 8)).astype(np.float32)
    images = rng.integers(0, 255, (3, 2, 96, 96, 3), dtype=np.uint8)
    titles = ["a\nscore 1", "b\nscore 2", "c\nscore 3"]
    below = display_figure(images, titles, scene=scene, actions=acts, suptitle="t")
    assert [ax.get_title(loc="left") for ax in below.axes if ax.get_title(loc="left")] == titles
    assert len(below.axes) == 3 * 2 + 3  # the views and a histogram under each TF
    assert below.dpi == FIGURE_DPI
    inset = display_figure(images, titles, scene=scene, actions=acts, histogram="inset", columns=2)
    assert len(inset.axes) == 3 * 2  # insets are children of the last view's axes
    assert sum(len(ax.child_axes) for ax in inset.axes) == 3
    plain = display_figure(images, titles, histogram="inset")  # no scene: no histograms
    assert sum(len(ax.child_axes) for ax in plain.axes) == 0
    # about one figure pixel per image pixel: six panels of 96 pixels side by side
    big = display_figure(
        rng.integers(0, 255, (3, 2, 400, 400, 3), dtype=np.uint8), titles, scene=scene,
        actions=acts,
    )  # fmt: skip
    rgb = figure_to_rgb(big)
    assert rgb.shape[1] >= 6 * 400 and rgb.shape[0] >= 400
    with pytest.raises(ValueError, match="2 titles for 3 TFs"):
        display_figure(images, titles[:2])
    with pytest.raises(ValueError, match=r"images must be \(n_tfs, 1 views"):
        display_figure(images, titles, views=["front"])
    with pytest.raises(ValueError, match="histogram must be one of"):
        display_figure(images, titles, histogram="left")


def test_demo_figure_is_at_display_quality(tmp_path):
    config = DemoConfig(
        out=str(tmp_path), scenes=("headsq",), budget=16, population_size=8, progress=False,
        display_size=SMALL, views=("front", "top"),
    )  # fmt: skip
    summary = run_demo(config, ScoringSettings(working_size=32, image_size=32))
    folder = tmp_path / "headsq"
    best = np.asarray(Image.open(folder / "best.png"))
    assert best.shape == (32, 32, 3)  # the scored rendering, as before
    figure = np.asarray(Image.open(folder / "figure.png").convert("RGB"))
    size = display_image_size(SMALL)
    assert figure.shape[1] >= 3 * 2 * size  # three TFs x two views
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["config"]["display_size"] == SMALL
    assert saved["config"]["views"] == ["front", "top"]
    assert summary["scenes"][0]["evaluations"] == 16
    with pytest.raises(ValueError, match="unknown view"):
        DemoConfig(views=("diagonal",))
    with pytest.raises(ValueError, match="display_size must be at least 8"):
        DemoConfig(display_size=2)
