"""Search baselines: CEM vs random search, determinism, budget accounting, validation."""

from __future__ import annotations

import doctest

import gymnasium as gym
import numpy as np
import pytest

from agents import CrossEntropySearch, RandomSearch, SearchResult

SCENE = "phantom-00"


@pytest.fixture(scope="module")
def env():
    # the teeth target is a small region of the histogram: a search problem where the search
    # strategy matters (for bone, random polygons already come close to the best)
    env = gym.make("tfgym:TransferFunction-v0", scenes=SCENE, image_size=64, target="teeth")
    yield env
    env.close()


def test_cem_beats_random_search_at_equal_budget(env):
    seeds, budget = range(4), 192
    cem = [
        CrossEntropySearch(np.random.default_rng(s), population_size=16).run(env, SCENE, budget)
        for s in seeds
    ]
    rnd = [
        RandomSearch(np.random.default_rng(s), population_size=16).run(env, SCENE, budget)
        for s in seeds
    ]
    assert all(r.n_evaluations == budget for r in cem + rnd)
    cem_mean = np.mean([r.best_reward for r in cem])
    rnd_mean = np.mean([r.best_reward for r in rnd])
    assert cem_mean > rnd_mean + 0.02, (cem_mean, rnd_mean)
    # CEM concentrates its population: the last population is far better than the first.
    for r in cem:
        assert r.history[-1].mean_reward > r.history[0].mean_reward + 0.1


@pytest.mark.parametrize("cls", [RandomSearch, CrossEntropySearch], ids=["random", "cem"])
def test_search_is_deterministic_for_a_fixed_rng(env, cls):
    a = cls(np.random.default_rng(7), population_size=8).run(env, SCENE, 40)
    b = cls(np.random.default_rng(7), population_size=8).run(env, SCENE, 40)
    c = cls(np.random.default_rng(8), population_size=8).run(env, SCENE, 40)
    np.testing.assert_array_equal(a.best_action, b.best_action)
    assert a.history == b.history
    assert a.best_reward == b.best_reward
    assert not np.array_equal(a.best_action, c.best_action)


@pytest.mark.parametrize("cls", [RandomSearch, CrossEntropySearch], ids=["random", "cem"])
def test_budget_is_respected_and_reported(env, cls, monkeypatch):
    base = env.unwrapped
    calls: list[int] = []
    original = base.evaluate

    def counting(actions, scene=None):
        calls.append(len(actions))
        return original(actions, scene=scene)

    monkeypatch.setattr(base, "evaluate", counting)
    result = cls(np.random.default_rng(0), population_size=16).run(env, SCENE, 50)
    assert isinstance(result, SearchResult)
    assert calls == [16, 16, 16, 2]  # one render call per population; the last one shrunk
    assert result.n_evaluations == 50
    assert [s.evaluations for s in result.history] == [16, 32, 48, 50]
    # The running best never falls and ends at the reported best, which is reproducible.
    assert np.all(np.diff(result.best_rewards) >= 0)
    assert result.best_rewards[-1] == result.best_reward
    assert result.best_action.dtype == np.float32
    assert np.all(np.abs(result.best_action) <= 1.0)
    monkeypatch.undo()
    again, _, _ = base.evaluate(result.best_action[None], scene=SCENE)
    assert again[0] == pytest.approx(result.best_reward, abs=1e-6)


def test_search_uses_current_scene_when_none_given(env):
    env.reset(seed=0)
    result = RandomSearch(np.random.default_rng(0), population_size=4).run(env, None, 4)
    assert result.scene == SCENE
    assert len(result.history) == 1
    assert result.history[0].mean_reward == pytest.approx(result.mean_rewards[0])


def test_bad_arguments_are_rejected(env):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="budget must be at least 1"):
        RandomSearch(rng).run(env, SCENE, 0)
    with pytest.raises(TypeError, match=r"numpy\.random\.Generator"):
        CrossEntropySearch(0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="elite_frac"):
        CrossEntropySearch(rng, elite_frac=0.0)
    with pytest.raises(ValueError, match="population_size"):
        RandomSearch(rng, population_size=1)
    with pytest.raises(ValueError, match="init_mean must have shape"):
        CrossEntropySearch(rng, init_mean=np.zeros(3)).run(env, SCENE, 8)


def test_module_doctests():
    import agents.search

    failures, tried = doctest.testmod(agents.search, optionflags=doctest.ELLIPSIS)
    assert tried > 0
    assert failures == 0
