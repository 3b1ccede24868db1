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
from tfgym.search import (
    SEARCHES,
    CMAESSearch,
    ConstantResult,
    CrossEntropySearch,
    RandomSearch,
    SearchResult,
    best_constant_action,
    best_known_action,
    cma_strategy,
)

SCENE = "phantom-01"  # an adult in a dental field of view: teeth fill a good part of it


@pytest.fixture(scope="module")
def scorer() -> SceneScorer:
    # the teeth target is a small region of the histogram: a search problem where the search
    # strategy matters (for bone, random polygons already come close to the best)
    return SceneScorer(SCENE, ScoringSettings(image_size=64, target="teeth"))


def test_agents_reexports_the_core_searches():
    assert agents.CMAESSearch is CMAESSearch
    assert agents.CrossEntropySearch is CrossEntropySearch
    assert agents.RandomSearch is RandomSearch
    assert agents.SearchResult is SearchResult


def test_cem_and_cmaes_beat_random_search_at_equal_budget(scorer):
    seeds, budget = range(4), 192
    cem = [
        CrossEntropySearch(np.random.default_rng(s), population_size=16).run(scorer, budget)
        for s in seeds
    ]
    rnd = [
        RandomSearch(np.random.default_rng(s), population_size=16).run(scorer, budget)
        for s in seeds
    ]
    cma = [CMAESSearch(np.random.default_rng(s)).run(scorer, budget) for s in seeds]
    assert all(r.n_evaluations == budget for r in cem + rnd + cma)
    assert all(r.scene == SCENE for r in cem + rnd + cma)
    cem_mean = np.mean([r.best_reward for r in cem])
    rnd_mean = np.mean([r.best_reward for r in rnd])
    cma_mean = np.mean([r.best_reward for r in cma])
    assert cem_mean > rnd_mean + 0.02, (cem_mean, rnd_mean)
    assert cma_mean > rnd_mean + 0.03, (cma_mean, rnd_mean)
    assert cma_mean > cem_mean - 0.01, (cma_mean, cem_mean)  # measured: 0.725 vs 0.724
    # Both concentrate their population: the last population is far better than the first.
    for r in cem + cma:
        assert r.history[-1].mean_reward > r.history[0].mean_reward + 0.1


ALL = pytest.mark.parametrize(
    "cls", [RandomSearch, CrossEntropySearch, CMAESSearch], ids=["random", "cem", "cmaes"]
)


@ALL
def test_search_is_deterministic_for_a_fixed_rng(scorer, cls):
    a = cls(np.random.default_rng(7), population_size=8).run(scorer, 40)
    b = cls(np.random.default_rng(7), population_size=8).run(scorer, 40)
    c = cls(np.random.default_rng(8), population_size=8).run(scorer, 40)
    np.testing.assert_array_equal(a.best_action, b.best_action)
    assert a.history == b.history
    assert a.best_reward == b.best_reward
    assert not np.array_equal(a.best_action, c.best_action)


@ALL
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


@ALL
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
    with pytest.raises(ValueError, match="init_mean must have shape"):
        CMAESSearch(rng, init_mean=np.zeros(3)).run(scorer, 8)
    with pytest.raises(ValueError, match="init_mean must lie in the action box"):
        CMAESSearch(rng, init_mean=np.full(8, 2.0))
    with pytest.raises(ValueError, match="sigma0"):
        CMAESSearch(rng, sigma0=0.0)
    with pytest.raises(ValueError, match="unknown restarts 'bipop'"):
        CMAESSearch(rng, restarts="bipop")


# ------------------------------------------------------------------------------------ CMA-ES
def test_cmaes_uses_only_its_rng_and_leaves_numpy_global_state_alone(scorer):
    legacy = np.random  # numpy's global generator, which pycma's seed option would reseed
    legacy.seed(123)
    before = legacy.get_state()[1].copy()
    a = CMAESSearch(np.random.default_rng(5), population_size=8).run(scorer, 24, keep_all=True)
    np.testing.assert_array_equal(legacy.get_state()[1], before)
    legacy.seed(999)
    b = CMAESSearch(np.random.default_rng(5), population_size=8).run(scorer, 24, keep_all=True)
    np.testing.assert_array_equal(a.actions, b.actions)
    # pycma's bounds keep every candidate inside the box: nothing is clipped by the scorer
    assert np.all(np.abs(a.actions) <= 1.0)
    assert len(np.unique(a.actions, axis=0)) == 24


def test_cmaes_tells_only_complete_populations(scorer, monkeypatch):
    import cma

    told: list[int] = []
    original = cma.CMAEvolutionStrategy.tell

    def counting(self, solutions, values, *args, **kwargs):
        told.append(len(solutions))
        return original(self, solutions, values, *args, **kwargs)

    monkeypatch.setattr(cma.CMAEvolutionStrategy, "tell", counting)
    search = CMAESSearch(np.random.default_rng(0), population_size=8)
    result = search.run(scorer, 20, initial=np.zeros((1, 8)))
    # the initial candidate and the shrunk last population are scored, never told
    assert [s.evaluations for s in result.history] == [1, 9, 17, 20]
    assert told == [8, 8] and search.n_told == 16


@pytest.mark.parametrize("restarts", ["ipop", "random", "off"])
def test_cmaes_restarts_when_pycma_stops(scorer, restarts):
    # tolx=0.5: pycma's stopping rule fires within a few iterations
    search = CMAESSearch(
        np.random.default_rng(0), population_size=4, restarts=restarts, options={"tolx": 0.5}
    )
    result = search.run(scorer, 60)
    sizes = np.diff([0] + [s.evaluations for s in result.history])
    assert result.n_evaluations == 60
    if restarts == "off":
        assert search.n_restarts == 0 and set(sizes) == {4}
    elif restarts == "random":
        assert search.n_restarts >= 3 and set(sizes) == {4}
    else:  # IPOP: each restart doubles the population (the last one shrunk to the budget)
        assert search.n_restarts >= 2
        full = sizes[:-1]
        assert set(full) <= {4 * 2**k for k in range(search.n_restarts + 1)}
        assert list(full) == sorted(full) and max(sizes) > 4
        assert search.n_told == 60 - sizes[-1]


def test_cma_strategy_is_bounded_quiet_and_seeded_by_the_rng(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    es = cma_strategy(np.full(8, 0.9), 0.8, population_size=12, rng=np.random.default_rng(1))
    first = np.array(es.ask())
    assert first.shape == (12, 8) and np.all(np.abs(first) <= 1.0)
    assert np.any(np.abs(first) > 0.95)  # near the bound, not clipped to it
    again = np.array(cma_strategy(np.full(8, 0.9), 0.8, population_size=12,
                                  rng=np.random.default_rng(1)).ask())  # fmt: skip
    np.testing.assert_array_equal(first, again)
    es.tell(list(first), list(-first.sum(axis=1)))
    assert capsys.readouterr().out == "" and list(tmp_path.iterdir()) == []  # no output, no logs


def test_best_known_action_is_reproducible_and_never_below_its_initial(scorer):
    ref = reference_action(scorer.scene, "teeth")
    ref_reward = float(scorer.score(ref).rewards[0])
    a = best_known_action(scorer, 48, initial=ref[None])
    b = best_known_action(scorer, 48, initial=ref[None])
    assert a.n_evaluations == 48 and a.best_reward >= ref_reward
    np.testing.assert_array_equal(a.best_action, b.best_action)
    c = best_known_action(scorer, 48, np.random.default_rng(1), population_size=16)
    assert [s.evaluations for s in c.history] == [16, 32, 48]


def test_cmaes_is_a_named_search_for_the_constant_baseline(tiny_scorers):
    assert SEARCHES["cmaes"] is CMAESSearch
    result = best_constant_action(tiny_scorers, 24, np.random.default_rng(0), method="cmaes")
    assert result.n_candidates == 24 and result.n_evaluations == 72
    again = best_constant_action(tiny_scorers, 24, np.random.default_rng(0), method="cmaes")
    np.testing.assert_array_equal(result.action, again.action)
    assert result.mean_reward > 0.3


def test_module_doctests():
    failures, tried = doctest.testmod(tfgym.search, optionflags=doctest.ELLIPSIS)
    assert tried > 0
    assert failures == 0


# ------------------------------------------------------------- the constant-polygon baseline
CONSTANT_SCENES = ("phantom-00", "phantom-01", "phantom-02")


@pytest.fixture(scope="module")
def tiny_scorers() -> list[SceneScorer]:
    settings = ScoringSettings(working_size=32, image_size=32)
    return [SceneScorer(s, settings) for s in CONSTANT_SCENES]


def test_constant_beats_every_hand_made_tf_played_on_every_scene(tiny_scorers):
    refs = np.stack([reference_action(s.scene) for s in tiny_scorers])
    # scores of each scene's reference TF on every scene: a hand-made TF played as a constant
    as_constant = np.mean([s.score(refs).rewards for s in tiny_scorers], axis=0)
    for seed in range(2):
        result = best_constant_action(
            tiny_scorers, 96, np.random.default_rng(seed), population_size=16
        )
        assert result.mean_reward > as_constant.max() + 0.02, (result.mean_reward, as_constant)
        # yet the scans differ: no constant is as good as each scan's own reference TF
        own = [float(s.score(r).rewards[0]) for s, r in zip(tiny_scorers, refs, strict=True)]
        assert result.mean_reward < np.mean(own)


def test_constant_over_one_scene_is_the_cem_search_of_that_scene(tiny_scorers):
    scorer = tiny_scorers[0]
    constant = best_constant_action([scorer], 40, np.random.default_rng(3), population_size=8)
    cem = CrossEntropySearch(np.random.default_rng(3), population_size=8).run(scorer, 40)
    np.testing.assert_array_equal(constant.action, cem.best_action)
    assert constant.history == cem.history
    assert constant.scene_rewards.tolist() == [cem.best_reward] == [constant.mean_reward]
    assert constant.n_evaluations == constant.n_candidates == cem.n_evaluations == 40


def test_constant_result_is_consistent_and_accounted(tiny_scorers, monkeypatch):
    calls: list[tuple[str, int]] = []
    for scorer in tiny_scorers:
        original = scorer.score

        def counting(actions, _original=original, _name=scorer.name, **kwargs):
            calls.append((_name, len(actions)))
            return _original(actions, **kwargs)

        monkeypatch.setattr(scorer, "score", counting)
    result = best_constant_action(
        tiny_scorers, 20, np.random.default_rng(0), population_size=8, initial=np.zeros((1, 8))
    )
    monkeypatch.undo()
    assert isinstance(result, ConstantResult)
    # one render call per scene and population: 1 seeded candidate, then 8, 8 and 3
    assert [n for _, n in calls] == [1] * 3 + [8] * 6 + [3] * 3
    assert [name for name, _ in calls[:3]] == list(CONSTANT_SCENES)
    assert result.scenes == CONSTANT_SCENES
    assert result.n_candidates == 20 and result.n_evaluations == 60
    assert [h.evaluations for h in result.history] == [1, 9, 17, 20]
    assert result.history[0].best_reward == 0.0  # the all-zero polygon draws nothing
    assert np.all(np.diff([h.best_reward for h in result.history]) >= 0)
    assert result.action.dtype == np.float32 and result.action.shape == (8,)
    again = np.array([s.score(result.action).rewards[0] for s in tiny_scorers])
    np.testing.assert_allclose(result.scene_rewards, again, atol=1e-9)
    assert result.mean_reward == pytest.approx(again.mean())
    assert result.history[-1].best_reward == result.mean_reward
    assert result.reward_of("phantom-01") == result.scene_rewards[1]
    with pytest.raises(KeyError, match="phantom-09"):
        result.reward_of("phantom-09")


def test_constant_search_is_deterministic_for_a_fixed_rng(tiny_scorers):
    def run(seed: int) -> ConstantResult:
        return best_constant_action(
            tiny_scorers[:2], 24, np.random.default_rng(seed), population_size=8
        )

    a, b, c = run(5), run(5), run(6)
    np.testing.assert_array_equal(a.action, b.action)
    assert a.history == b.history
    np.testing.assert_array_equal(a.scene_rewards, b.scene_rewards)
    assert not np.array_equal(a.action, c.action)


def test_constant_search_rejects_bad_arguments(tiny_scorers):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="at least one scorer"):
        best_constant_action([], 8, rng)
    with pytest.raises(ValueError, match="unknown search method 'grid'"):
        best_constant_action(tiny_scorers, 8, rng, method="grid")
    with pytest.raises(ValueError, match="budget must be at least 1"):
        best_constant_action(tiny_scorers, 0, rng)
    five = SceneScorer("phantom-00", ScoringSettings(working_size=32, image_size=32, n_vertices=5))
    with pytest.raises(ValueError, match="actions differ in size"):
        best_constant_action([tiny_scorers[0], five], 8, rng)
    with pytest.raises(TypeError, match="SceneScorer"):
        best_constant_action([tiny_scorers[0], "phantom-01"], 8, rng)


def test_constant_policy_plays_one_action_whatever_it_sees(tiny_scorers):
    policy = agents.ConstantPolicy.fit(
        tiny_scorers[:2], 16, np.random.default_rng(0), population_size=8
    )
    assert policy.result is not None
    np.testing.assert_array_equal(policy.action, policy.result.action)
    for scorer in tiny_scorers:
        action, state = policy.predict(scorer.observation)
        np.testing.assert_array_equal(action, policy.result.action)
        assert state is None
    batch, _ = policy.predict(np.stack([s.observation for s in tiny_scorers]))
    assert batch.shape == (3, 8) and batch.dtype == np.float32
    assert np.all(batch == policy.action)
    # it acts in the env like any policy: the reward is the constant's score on the scene
    first = policy.result.scenes[0]
    env = gym.make("tfgym:TransferFunction-v0", scenes=first, image_size=32, working_size=32)
    obs, _ = env.reset(seed=0)
    _, reward, *_ = env.step(policy.predict(obs)[0])
    assert reward == pytest.approx(policy.result.reward_of(first), abs=1e-6)
    env.close()
    clipped = agents.ConstantPolicy(np.array([2.0, -1, 1, -1, 1, 1, -3, 1]))
    assert clipped.action.min() == -1.0 and clipped.action.max() == 1.0
    with pytest.raises(ValueError, match="2 \\* n_vertices"):
        agents.ConstantPolicy(np.zeros(5))
    with pytest.raises(ValueError, match="finite"):
        agents.ConstantPolicy(np.full(8, np.nan))


def test_agents_constant_doctests():
    import agents.constant

    failures, tried = doctest.testmod(agents.constant, optionflags=doctest.ELLIPSIS)
    assert tried > 0
    assert failures == 0


def test_agents_reexports_the_constant_baseline():
    assert agents.best_constant_action is best_constant_action
    assert agents.ConstantResult is ConstantResult
    assert {"ConstantPolicy", "best_constant_action"} <= set(agents.__all__)
