"""Tests of tfgym.scoring: what a ScoreBatch carries from the oracle into the env's info."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from tfgym.oracle import Oracle, reference_action, target_plausibility
from tfgym.scene import Scene, load_scene
from tfgym.scoring import SceneScorer, ScoringSettings
from tfgym.volume import Volume

SMALL = ScoringSettings(image_size=64)


def test_batch_carries_every_oracle_component() -> None:
    scorer = SceneScorer("headsq", SMALL)
    actions = np.stack([reference_action(scorer.scene), np.zeros(8, np.float32)])
    batch = scorer.score(actions, renderings=True)
    assert batch.renderings is not None
    parts = Oracle().evaluate(batch.renderings, scorer.scene)
    for key, values in (
        ("score", batch.oracle_score),
        ("visibility", batch.visibility),
        ("purity", batch.purity),
        ("structure", batch.structure),
    ):
        assert values.shape == (2,) and values.dtype == np.float64
        np.testing.assert_array_equal(values, parts[key])
    np.testing.assert_array_equal(batch.rewards, batch.oracle_score)  # the oracle backend
    assert batch.oracle_score[1] == 0.0  # an empty TF
    assert batch.structure[0] > batch.structure[1]


def test_info_holds_plain_values_and_plausibility() -> None:
    scorer = SceneScorer("headsq", SMALL)
    info = scorer.score(reference_action(scorer.scene)).info(0)
    for key in ("oracle_score", "visibility", "purity", "structure"):
        assert type(info[key]) is float, key
        assert 0.0 <= info[key] <= 1.0
    assert info["labels_approximate"] is True
    assert info["target_plausible"] is True
    assert "target_warning" not in info  # only when the target is implausible
    assert scorer.plausibility == target_plausibility(scorer.scene, "bone")


def test_info_warns_when_the_target_is_implausible() -> None:
    """Teeth cannot be told from bone by intensity classes: a teeth score on headsq is noise."""
    scorer = SceneScorer("headsq", ScoringSettings(image_size=64, target="teeth"))
    batch = scorer.score(np.zeros((2, 8), np.float32))
    assert not batch.target_plausible
    info = batch.info(1)
    assert info["target_plausible"] is False
    assert "teeth" in info["target_warning"]
    assert type(info["oracle_score"]) is float  # still reported, meaningless


def test_true_labels_without_the_target_are_implausible(tiny_volume) -> None:
    labels = tiny_volume.labels.copy()
    labels[labels == 3] = 2  # the teeth become bone
    scene = Scene.from_volume(
        Volume(tiny_volume.data, tiny_volume.spacing, labels=labels), working_size=24
    )
    teeth = SceneScorer(scene, ScoringSettings(image_size=32, target="teeth"))
    assert not teeth.score(np.zeros(8, np.float32)).info()["target_plausible"]
    bone = SceneScorer(scene, ScoringSettings(image_size=32))
    assert bone.score(np.zeros(8, np.float32)).info()["target_plausible"] is True


@pytest.mark.parametrize("size", [64, 128])
def test_a_step_scores_in_well_under_a_millisecond_of_oracle_time(size) -> None:
    """The structure term adds little to a one-action step: compiled, serial, cached target."""
    scene = load_scene("headsq")
    scorer = SceneScorer(scene, ScoringSettings(image_size=size))
    action = reference_action(scene)[None]
    batch = scorer.score(action, renderings=True)
    assert batch.renderings is not None
    oracle = scorer.oracle
    oracle.evaluate(batch.renderings, scene)  # compile and cache
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(20):
            oracle.evaluate(batch.renderings, scene)
        times.append((time.perf_counter() - start) / 20)
    assert min(times) < 2e-3  # about 0.1 ms on an idle core; generous for busy machines


def test_scorers_of_a_scene_share_one_renderer_and_fresh_scenes_keep_theirs():
    from tfgym.env import TransferFunctionEnv
    from tfgym.scoring import RENDERER_CACHE

    settings = ScoringSettings(image_size=16, working_size=24)
    a, b = SceneScorer("headsq", settings), SceneScorer("headsq", settings)
    assert a.renderer is b.renderer  # built once per process and settings
    other = SceneScorer("headsq", dataclasses.replace(settings, view="side"))
    assert other.renderer is not a.renderer and other.renderer.view == "side"
    private = SceneScorer("headsq", settings, share_renderer=False)
    assert private.renderer is not a.renderer
    actions = np.array([[0.2, -1, 1, -1, 1, 1, 0.2, 1]])
    np.testing.assert_array_equal(private.score(actions).rewards, a.score(actions).rewards)
    # two envs over the same scenes share renderers; a fresh procedural scene is not cached
    envs = [TransferFunctionEnv("headsq", image_size=16, working_size=24) for _ in range(2)]
    for env in envs:
        env.reset(seed=0)
    assert envs[0]._scorers["headsq"].renderer is envs[1]._scorers["headsq"].renderer
    before = len(RENDERER_CACHE)
    fresh = TransferFunctionEnv("procedural", image_size=16, working_size=24)
    fresh.reset(seed=0)
    assert len(RENDERER_CACHE) == before
    # with the cache off (budget 0), scorers build private renderers as before
    budget = RENDERER_CACHE.max_bytes
    try:
        RENDERER_CACHE.max_bytes = 0
        c, d = SceneScorer("headsq", settings), SceneScorer("headsq", settings)
        assert c.renderer is not d.renderer and len(RENDERER_CACHE) == 0
    finally:
        RENDERER_CACHE.max_bytes = budget
