"""Tests of tfgym.oracle: the quality score, the simulated labeler and the reference TF."""

from __future__ import annotations

import numpy as np
import pytest

from tfgym.oracle import (
    LABELER_PRESETS,
    TARGETS,
    Oracle,
    SimulatedLabeler,
    make_labeler,
    reference_action,
    resolve_target,
)
from tfgym.renderer import Renderer, silhouette_area
from tfgym.scene import Scene
from tfgym.scoring import SceneScorer, ScoringSettings
from tfgym.volume import Tissue, Volume

N_SAMPLES = 20_000


def contrib(**by_label: float) -> np.ndarray:
    """A ``(1, n_labels)`` contribution row from tissue names, e.g. ``contrib(BONE=50)``."""
    row = np.zeros((1, len(Tissue)))
    for name, value in by_label.items():
        row[0, Tissue[name]] = value
    return row


# ------------------------------------------------------------------------ score formula


def test_empty_rendering_scores_zero() -> None:
    parts = Oracle().components(np.zeros((1, len(Tissue))), target_area=100.0)
    assert parts["score"][0] == 0.0
    assert parts["visibility"][0] == 0.0
    assert parts["purity"][0] == 0.0


def test_perfect_rendering_scores_one() -> None:
    """Every target ray fully absorbed by bone or teeth, nothing else drawn."""
    assert Oracle().score(contrib(BONE=80, TEETH=20), target_area=100.0)[0] == pytest.approx(1.0)
    assert Oracle(TARGETS["teeth"]).score(contrib(TEETH=7), 7.0)[0] == pytest.approx(1.0)


def test_score_is_sqrt_of_visibility_times_purity() -> None:
    rows = np.concatenate(
        [contrib(BONE=50), contrib(SOFT_TISSUE=25, BONE=75), contrib(AIR=10, BONE=30, TEETH=10)]
    )
    parts = Oracle().components(rows, target_area=100.0)
    np.testing.assert_allclose(parts["visibility"], [0.5, 0.75, 0.4])
    np.testing.assert_allclose(parts["purity"], [1.0, 0.75, 0.8])
    np.testing.assert_allclose(parts["score"], np.sqrt([0.5, 0.75 * 0.75, 0.4 * 0.8]))


def test_occlusion_lowers_the_score() -> None:
    """Soft tissue in front absorbs 30 % of every target ray: less bone is seen, more skin."""
    clear = Oracle().score(contrib(BONE=100), 100.0)[0]
    occluded = Oracle().score(contrib(SOFT_TISSUE=30, BONE=70), 100.0)[0]
    assert clear == pytest.approx(1.0)
    assert occluded == pytest.approx(0.7)


def test_visibility_is_capped_and_tiny_areas_are_safe() -> None:
    parts = Oracle().components(contrib(BONE=150), target_area=100.0)
    assert parts["visibility"][0] == 1.0
    assert Oracle().score(contrib(BONE=0.5), target_area=0.0)[0] == pytest.approx(np.sqrt(0.5))


def test_target_selects_the_labels() -> None:
    row = contrib(BONE=40, TEETH=60)
    assert Oracle(TARGETS["bone_only"]).components(row, 100.0)["purity"][0] == pytest.approx(0.4)
    assert Oracle(TARGETS["teeth"]).components(row, 100.0)["purity"][0] == pytest.approx(0.6)
    assert Oracle(TARGETS["skin"]).score(row, 100.0)[0] == 0.0


def test_score_of_real_renderings_rewards_an_unoccluded_target(tiny_scene) -> None:
    """On the tiny scene: bone alone, opaque, scores 1; opaque soft tissue around it scores less."""
    renderer = Renderer(tiny_scene, image_size=24)
    bins, labels = tiny_scene.bins, tiny_scene.labels
    target_bins = np.unique(bins[np.isin(labels, [Tissue.BONE, Tissue.TEETH])])
    soft_bins = np.unique(bins[labels == Tissue.SOFT_TISSUE])
    assert not set(target_bins) & set(soft_bins)
    luts = np.zeros((3, *tiny_scene.ranges.shape, 4), dtype=np.float32)
    flat = luts.reshape(3, -1, 4)
    flat[:, target_bins, 3] = 1.0
    flat[1, soft_bins, 3] = 0.05  # a thin veil of skin
    flat[2, soft_bins, 3] = 1.0  # opaque skin hides the skull
    out = renderer.render(luts)
    area = renderer.silhouette_area(TARGETS["bone"])
    scores = Oracle().score(out.label_contrib, area)
    assert scores[0] == pytest.approx(1.0, abs=1e-4)
    assert 0.2 < scores[1] < scores[0]
    assert out.label_contrib[2, Tissue.BONE] < 0.5  # the skull is hidden (teeth stick out)
    assert scores[2] < 0.15


# ------------------------------------------------------------------------------ targets


def test_resolve_target() -> None:
    assert resolve_target("bone") == (Tissue.BONE, Tissue.TEETH)
    assert resolve_target([2, Tissue.TEETH]) == (Tissue.BONE, Tissue.TEETH)
    with pytest.raises(ValueError, match=r"unknown oracle target 'skull'.*bone.*bone_only.*skin"):
        resolve_target("skull")
    with pytest.raises(ValueError, match="at least one tissue"):
        resolve_target([])


# --------------------------------------------------------------------- simulated labeler


def test_presets_exist_and_validate() -> None:
    assert {"perfect", "noisy", "mistaken", "indecisive", "distracted"} <= set(LABELER_PRESETS)
    for name, labeler in LABELER_PRESETS.items():
        assert make_labeler(name) is labeler
    custom = SimulatedLabeler(temperature=0.2)
    assert make_labeler(custom) is custom
    with pytest.raises(ValueError, match=r"unknown labeler preset 'lazy'.*noisy.*perfect"):
        make_labeler("lazy")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"equal_band": -1.0}, "equal_band"),
        ({"mistake_rate": 1.5}, "mistake_rate"),
        ({"skip_rate": -0.2}, "skip_rate"),
    ],
    ids=["neg-temp", "nan-temp", "neg-band", "mistake>1", "skip<0"],
)
def test_labeler_rejects_bad_parameters(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        SimulatedLabeler(**kwargs)


def test_perfect_labeler_is_deterministic_and_picks_the_better(rng) -> None:
    perfect = make_labeler("perfect")
    a = rng.uniform(0, 1, 2000)
    b = rng.uniform(0, 1, 2000)
    b[:100] = a[:100]  # some exact ties
    mu = perfect.compare(a, b, rng)
    expected = np.where(a > b, 1.0, np.where(a < b, 0.0, 0.5))
    np.testing.assert_array_equal(mu, expected)
    np.testing.assert_array_equal(perfect.compare(a, b, np.random.default_rng(123)), expected)


def test_equal_band_answers_half(rng) -> None:
    labeler = SimulatedLabeler(temperature=0.05, equal_band=0.1, mistake_rate=0.5)
    a = rng.uniform(0.2, 0.8, N_SAMPLES)
    d = rng.uniform(-0.099, 0.099, N_SAMPLES)
    np.testing.assert_array_equal(labeler.compare(a, a + d, rng), 0.5)
    outside = labeler.compare(a, a + 0.2, rng)
    assert not np.any(outside == 0.5)


def _within(observed: float, p: float, n: int = N_SAMPLES) -> bool:
    """Observed frequency within 4.5 binomial standard deviations of ``p``."""
    return abs(observed - p) <= 4.5 * np.sqrt(p * (1 - p) / n) + 1e-12


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.5])
def test_mistake_rate_is_honoured(rng, rate) -> None:
    labeler = SimulatedLabeler(temperature=0.0, equal_band=0.0, mistake_rate=rate)
    a, b = np.full(N_SAMPLES, 0.9), np.full(N_SAMPLES, 0.1)
    mu = labeler.compare(a, b, rng)
    assert set(np.unique(mu)) <= {0.0, 1.0}
    assert _within(float(np.mean(mu == 0.0)), rate)


@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_skip_rate_is_honoured(rng, rate) -> None:
    labeler = SimulatedLabeler(temperature=0.05, equal_band=0.02, mistake_rate=0.1, skip_rate=rate)
    a = rng.uniform(0, 1, N_SAMPLES)
    b = rng.uniform(0, 1, N_SAMPLES)
    mu = labeler.compare(a, b, rng)
    assert _within(float(np.mean(np.isnan(mu))), rate)
    assert set(np.unique(mu[~np.isnan(mu)])) <= {0.0, 0.5, 1.0}
    assert np.isnan(LABELER_PRESETS["distracted"].compare(a, b, rng)).any()


@pytest.mark.parametrize("diff", [-0.2, -0.03, 0.05, 0.1, 0.3])
def test_bradley_terry_probability_matches_sigmoid(rng, diff) -> None:
    temperature = 0.1
    labeler = SimulatedLabeler(temperature=temperature, equal_band=0.0, mistake_rate=0.0)
    a = rng.uniform(0.3, 0.7, N_SAMPLES)
    p = 1.0 / (1.0 + np.exp(-diff / temperature))
    np.testing.assert_allclose(labeler.prob_a_better(a + diff, a), p, atol=1e-9)
    mu = labeler.compare(a + diff, a, rng)
    assert _within(float(np.mean(mu)), p)
    # with mistakes the observed preference is p (1 - m) + (1 - p) m
    noisy = SimulatedLabeler(temperature=temperature, equal_band=0.0, mistake_rate=0.2)
    assert _within(float(np.mean(noisy.compare(a + diff, a, rng))), 0.8 * p + 0.2 * (1 - p))


def test_prob_a_better_is_stable_for_extreme_differences() -> None:
    labeler = SimulatedLabeler(temperature=1e-6)
    with np.errstate(all="raise"):
        p = labeler.prob_a_better(np.array([1.0, 0.0, 0.5]), np.array([0.0, 1.0, 0.5]))
    np.testing.assert_allclose(p, [1.0, 0.0, 0.5])


# ---------------------------------------------------------------------- reference action


def test_reference_action_brackets_the_bone_band(tiny_scene) -> None:
    action = reference_action(tiny_scene)
    assert action.dtype == np.float32
    assert action.shape == (8,)
    x0, y0, x1, _, x1b, y1, x0b, _ = action
    assert (y0, y1) == (-1.0, 1.0)
    assert x0 == x0b
    assert x1 == x1b
    ranges = tiny_scene.ranges

    def to_x(value: float) -> float:
        return float(ranges.intensity_to_bin(value) / ranges.n_intensity_bins * 2 - 1)

    soft = tiny_scene.tissue_intensity(Tissue.SOFT_TISSUE, (95.0, 50.0))[0]
    bone = tiny_scene.tissue_intensity(Tissue.BONE, (5.0, 50.0))[0]
    assert to_x(soft) < x0 < to_x(bone)
    assert x1 == 1.0  # nothing denser than teeth


def test_reference_action_needs_the_target(tiny_volume) -> None:
    labels = tiny_volume.labels.copy()
    labels[labels == Tissue.TEETH] = Tissue.BONE
    volume = Volume(tiny_volume.data, tiny_volume.spacing, labels=labels)
    scene = Scene.from_volume(volume, working_size=24, histogram_bins=16)
    with pytest.raises(ValueError, match="none of the target tissues"):
        reference_action(scene, "teeth")


# --------------------------------------------------------------------- oracle sanity

SANITY_SCENES = [*(f"phantom-{i:02d}" for i in range(16)), "headsq"]
N_RANDOM = 1000
# The score does not depend on the image size (contributions are counted on the projected
# plane), so small images keep the sanity tests fast.
SMALL = ScoringSettings(image_size=16)


def test_evaluate_reads_the_view_of_the_batch(tiny_scene) -> None:
    """``Oracle.evaluate`` takes the target's silhouette from the view the batch was rendered
    from: the same TF seen from the front and from the top gives each view's own area."""
    lut = np.zeros((1, *tiny_scene.ranges.shape, 4), dtype=np.float32)
    target_bins = np.unique(tiny_scene.bins[np.isin(tiny_scene.labels, TARGETS["bone"])])
    lut.reshape(1, -1, 4)[:, target_bins, 3] = 1.0
    areas = {}
    for view in ("front", "top"):
        batch = Renderer(tiny_scene, image_size=24, view=view).render(lut)
        assert batch.view == view
        areas[view] = silhouette_area(tiny_scene, view, TARGETS["bone"], shell=True)
        parts = Oracle().evaluate(batch, tiny_scene)
        expected = Oracle().components(batch.class_contrib, areas[view])
        for key in ("visibility", "purity", "score"):
            np.testing.assert_array_equal(parts[key], expected[key])
        # the drawn target does not cover its shell: visibility is below its cap of 1, so
        # it depends on the area (a wrong view's area would change it)
        assert 0.5 < parts["visibility"][0] < 1.0
        assert parts["purity"][0] == pytest.approx(1.0)
    assert areas["front"] != areas["top"]  # the tiny volume is no cube


def test_score_does_not_depend_on_image_size() -> None:
    scorer = SceneScorer("headsq", SMALL)
    action = reference_action(scorer.scene)[None]
    small = scorer.score(action).oracle_score
    big = SceneScorer("headsq").score(action).oracle_score  # 128 px
    np.testing.assert_allclose(small, big, rtol=1e-6)


@pytest.mark.parametrize("name", SANITY_SCENES)
def test_reference_tf_beats_random_tfs(name) -> None:
    """The hand-made bone TF scores above 95 % of uniformly random 4-vertex TFs."""
    scorer = SceneScorer(name, SMALL)
    reference = reference_action(scorer.scene)
    actions = np.random.default_rng(0).uniform(-1.0, 1.0, size=(N_RANDOM, 8))
    scores = scorer.oracle_scores(np.vstack([reference[None], actions]))
    fraction = float(np.mean(scores[1:] < scores[0]))
    print(f"{name}: reference {scores[0]:.3f} beats {fraction:.1%} of random TFs")
    assert fraction >= 0.95, (
        f"{name}: reference TF scores {scores[0]:.3f}, above only {fraction:.1%} of "
        f"{N_RANDOM} random TFs (best random {scores[1:].max():.3f})"
    )
