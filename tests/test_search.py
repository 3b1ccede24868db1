"""Search baselines: CEM vs random search, determinism, budget accounting, validation."""

from __future__ import annotations

import doctest

import gymnasium as gym
import numpy as np
import pytest

import agents
import tfgym.search
from tfgym.oracle import reference_action
from tfgym.scoring import SceneScorer, ScoringSettings
from tfgym.search import CrossEntropySearch, RandomSearch, SearchResult

SCENE = "phantom-00"


@pytest.fixture(scope="module")
def scorer() -> SceneScorer:
    # the teeth target is a small region of the histogram: a search problem where the search
    # strategy matters (for bone, random polygons already come close to the best)
    return SceneScorer(SCENE, ScoringSettings(image_size=64, target="teeth"))


def test_agents_reexports_the_core_searches():
    assert agents.CrossEntropySearch is CrossEntropySearch
    assert agents.RandomSearch is RandomSearch
    assert agents.SearchResult is SearchResult


def test_cem_beats_random_search_at_equal_budget(scorer):
    seeds, budget = range(4), 192
    cem = [
        CrossEntropySearch(np.random.default_rng(s), population_size=16).run(scorer, budget)
        for s in seeds
    ]
    rnd = [
        RandomSearch(np.random.default_rng(s), population_size=16).run(scorer, budget)
        for s in seeds
    ]
    assert all(r.n_evaluations == budget for r in cem + rnd)
    assert all(r.scene == SCENE for r in cem + rnd)
    cem_mean = np.mean([r.best_reward for r in cem])
    rnd_mean = np.mean([r.best_reward for r in rnd])
    assert cem_mean > rnd_mean + 0.02, (cem_mean, rnd_mean)
    # CEM concentrates its population: the last population is far better than the first.
    for r in cem:
        assert r.history[-1].mean_reward > r.history[0].mean_reward + 0.1


@pytest.mark.parametrize("cls", [RandomSearch, CrossEntropySearch], ids=["random", "cem"])
def test_search_is_deterministic_for_a_fixed_rng(scorer, cls):
    a = cls(np.random.default_rng(7), population_size=8).run(scorer, 40)
    b = cls(np.random.default_rng(7), population_size=8).run(scorer, 40)
    c = cls(np.random.default_rng(8), population_size=8).run(scorer, 40)
    np.testing.assert_array_equal(a.best_action, b.best_action)
    assert a.history == b.history
    assert a.best_reward == b.best_reward
    assert not np.array_equal(a.best_action, c.best_action)


@pytest.mark.parametrize("cls", [RandomSearch, CrossEntropySearch], ids=["random", "cem"])
def test_budget_is_respected_and_reported(scorer, cls, monkeypatch):
    calls: list[int] = []
    original = scorer.score

    def counting(actions, **kwargs):
        calls.append(len(actions))
        return original(actions, **kwargs)

    monkeypatch.setattr(scorer, "score", counting)
    result = cls(np.random.default_rng(0), population_size=16).run(scorer, 50)
    assert isinstance(result, SearchResult)
    assert calls == [16, 16, 16, 2]  # one render call per population; the last one shrunk
    assert result.n_evaluations == 50
    assert [s.evaluations for s in result.history] == [16, 32, 48, 50]
    # The running best never falls and ends at the reported best, which is reproducible.
    assert np.all(np.diff(result.best_rewards) >= 0)
    assert result.best_rewards[-1] == result.best_reward
    assert result.best_action.dtype == np.float32
    assert np.all(np.abs(result.best_action) <= 1.0)
    assert result.actions is None and result.rewards is None  # keep_all=False
    monkeypatch.undo()
    again = scorer.score(result.best_action[None]).rewards
    assert again[0] == pytest.approx(result.best_reward, abs=1e-6)


@pytest.mark.parametrize("cls", [RandomSearch, CrossEntropySearch], ids=["random", "cem"])
def test_keep_all_returns_every_scored_action(scorer, cls):
    result = cls(np.random.default_rng(3), population_size=8).run(scorer, 20, keep_all=True)
    assert result.actions is not None and result.rewards is not None
    assert result.actions.shape == (20, 8) and result.actions.dtype == np.float32
    assert result.rewards.shape == (20,) and result.rewards.dtype == np.float64
    np.testing.assert_allclose(result.rewards, scorer.score(result.actions).rewards, atol=1e-9)
    i = int(np.argmax(result.rewards))
    assert result.best_reward == result.rewards[i]
    np.testing.assert_array_equal(result.best_action, result.actions[i])
    populations = np.split(result.rewards, [8, 16])
    np.testing.assert_allclose(result.mean_rewards, [p.mean() for p in populations])


def test_initial_actions_are_scored_first(scorer):
    ref = reference_action(scorer.scene, "teeth")
    ref_reward = float(scorer.score(ref).rewards[0])
    search = CrossEntropySearch(np.random.default_rng(0), population_size=8)
    result = search.run(scorer, 9, initial=ref[None], keep_all=True)
    assert [s.evaluations for s in result.history] == [1, 9]
    np.testing.assert_array_equal(result.actions[0], ref)
    assert result.history[0].best_reward == pytest.approx(ref_reward)
    assert result.best_reward >= ref_reward


def test_search_on_the_env_scorer_of_the_current_scene():
    env = gym.make("tfgym:TransferFunction-v0", scenes=SCENE, image_size=32)
    env.reset(seed=0)
    result = RandomSearch(np.random.default_rng(0), population_size=4).run(
        env.unwrapped.scorer(), 4
    )
    assert result.scene == SCENE
    assert len(result.history) == 1
    assert result.history[0].mean_reward == pytest.approx(result.mean_rewards[0])
    with pytest.raises(TypeError, match=r"SceneScorer.*env\.unwrapped\.scorer"):
        RandomSearch(np.random.default_rng(0)).run(env, 4)  # type: ignore[arg-type]
    env.close()


def test_bad_arguments_are_rejected(scorer):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="budget must be at least 1"):
        RandomSearch(rng).run(scorer, 0)
    with pytest.raises(TypeError, match=r"numpy\.random\.Generator"):
        CrossEntropySearch(0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="elite_frac"):
        CrossEntropySearch(rng, elite_frac=0.0)
    with pytest.raises(ValueError, match="population_size"):
        RandomSearch(rng, population_size=1)
    with pytest.raises(ValueError, match="init_mean must have shape"):
        CrossEntropySearch(rng, init_mean=np.zeros(3)).run(scorer, 8)


def test_module_doctests():
    failures, tried = doctest.testmod(tfgym.search, optionflags=doctest.ELLIPSIS)
    assert tried > 0
    assert failures == 0
