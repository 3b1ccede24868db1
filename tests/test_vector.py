"""Vector envs of TransferFunction-v0: same-step autoreset, where the results are, seeding."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

import tfgym  # noqa: F401 - registers the env
from tfgym.backends import RewardBackend
from tfgym.oracle.score import Oracle, resolve_target
from tfgym.scene import load_scene
from tfgym.vector import ENV_ID, make_vector_env

SCENES = ["phantom-00", "phantom-01", "phantom-02"]
SMALL = {"scenes": SCENES, "image_size": 32}  # default working size: what users run
MODES = ["sync", "async"]


class CountingOracle(RewardBackend):
    """The oracle's score as the reward, through ``reward`` (counted), not the shortcut."""

    name = "counting-oracle"

    def __init__(self) -> None:
        self.oracle = Oracle(resolve_target("bone"))
        self.calls = 0
        self.actions = 0

    def reward(self, scene, actions, renderings):
        self.calls += 1
        self.actions += len(actions)
        return self.oracle.evaluate(renderings, scene)["score"]


def _vec(mode: str, num_envs: int = 2, **kwargs):
    """``gym.make_vec`` through the entry point; async forks (fast, as gymnasium's default)."""
    extra = {"vector_mode": "async", "context": "fork"} if mode == "async" else {}
    return gym.make_vec(ENV_ID, num_envs=num_envs, **{**SMALL, **extra, **kwargs})


def _rollout(envs, seed: int, n_steps: int, action_seed: int = 0):
    """reset(seed) then n_steps random vector steps: (reset, [step results])."""
    rng = np.random.default_rng(action_seed)
    first = envs.reset(seed=seed)
    steps = []
    for _ in range(n_steps):
        actions = rng.uniform(-1, 1, (envs.num_envs, 8)).astype(np.float32)
        steps.append(envs.step(actions))
    return first, steps


def test_make_vec_uses_the_entry_point_with_same_step_reset():
    envs = gym.make_vec(ENV_ID, num_envs=3, **SMALL)
    try:
        assert isinstance(envs, SyncVectorEnv) and envs.num_envs == 3
        assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
        assert envs.single_observation_space.shape == (1, 64, 64)
        assert envs.spec is not None and envs.spec.kwargs["vectorization_mode"] == (
            "vector_entry_point"
        )
    finally:
        envs.close()


@pytest.mark.parametrize("mode", MODES)
def test_every_vector_step_carries_a_real_reward(mode):
    """6 steps x 2 envs: 12 rewards, each the oracle score of its final_info; no empty step."""
    envs = _vec(mode)
    try:
        assert isinstance(envs, AsyncVectorEnv if mode == "async" else SyncVectorEnv)
        (obs, info), steps = _rollout(envs, seed=0, n_steps=6)
        rewards = []
        for next_obs, reward, terminated, truncated, step_info in steps:
            assert terminated.all() and not truncated.any()
            assert step_info["_final_info"].all() and step_info["_final_obs"].all()
            final = step_info["final_info"]
            assert final["_oracle_score"].all()
            np.testing.assert_array_equal(final["oracle_score"], reward)
            # the scored episode is the one the previous call started ...
            np.testing.assert_array_equal(final["scene"], info["scene"])
            for i in range(envs.num_envs):
                np.testing.assert_array_equal(step_info["final_obs"][i], obs[i])
                assert final["tf"][i].action.shape == (8,)  # the TF object survives
            # ... and the returned observation is the next episode's, already reset
            for i, name in enumerate(step_info["scene"]):
                np.testing.assert_array_equal(next_obs[i], load_scene(name).observation)
            rewards.extend(reward)
            obs, info = next_obs, step_info
        assert len(rewards) == 12 and all(0.0 < r <= 1.0 for r in rewards)
        assert len({r for r in rewards}) == 12  # 12 different renderings were scored
        scenes = {s for _, _, _, _, i in steps for s in i["final_info"]["scene"]}
        assert len(scenes) > 1  # the scene changes between episodes
    finally:
        envs.close()


@pytest.mark.parametrize("mode", MODES)
def test_each_sub_env_steps_once_per_vector_step(mode):
    envs = _vec(mode, num_envs=2, reward_backend=CountingOracle())
    try:
        _, steps = _rollout(envs, seed=1, n_steps=5)
        backends = envs.get_attr("backend")
        if mode == "sync":  # both sub-envs hold the one backend object passed in
            assert backends[0] is backends[1]
            calls, actions = backends[0].calls, backends[0].actions
        else:  # each subprocess holds its own copy
            calls = sum(b.calls for b in backends)
            actions = sum(b.actions for b in backends)
            assert [b.calls for b in backends] == [5, 5]
        assert calls == actions == 5 * 2  # one env.step per sub-env per vector step
        for _, reward, _, _, info in steps:
            np.testing.assert_array_equal(reward, info["final_info"]["oracle_score"])
    finally:
        envs.close()


@pytest.mark.parametrize("mode", MODES)
def test_seeded_rollouts_are_reproducible(mode):
    runs = []
    for _ in range(2):
        envs = _vec(mode)
        try:
            (obs, info), steps = _rollout(envs, seed=7, n_steps=3)
        finally:
            envs.close()
        runs.append(
            (obs, list(info["scene"]), [s[1] for s in steps], [s[4]["scene"] for s in steps])
        )
    (obs_a, scene_a, rew_a, next_a), (obs_b, scene_b, rew_b, next_b) = runs
    np.testing.assert_array_equal(obs_a, obs_b)
    assert scene_a == scene_b
    np.testing.assert_array_equal(np.stack(rew_a), np.stack(rew_b))
    np.testing.assert_array_equal(np.stack(next_a), np.stack(next_b))


def test_sub_env_i_is_seeded_with_seed_plus_i():
    """Gymnasium's rule: distinct, reproducible scene streams per sub-env."""
    envs = make_vector_env(3, scenes=[*SCENES, "phantom-03"], image_size=32)
    single = gym.make(ENV_ID, scenes=[*SCENES, "phantom-03"], image_size=32)
    try:
        actions = np.zeros((3, 8), np.float32)
        _, info = envs.reset(seed=10)
        streams = [list(info["scene"])]
        for _ in range(4):
            streams.append(list(envs.step(actions)[4]["scene"]))
        for i in range(3):
            expected = [single.reset(seed=10 + i)[1]["scene"]]
            for _ in range(4):
                single.step(actions[i])
                expected.append(single.reset()[1]["scene"])
            assert [s[i] for s in streams] == expected
        assert len({tuple(s[i] for s in streams) for i in range(3)}) == 3
    finally:
        envs.close()
        single.close()


def test_explicit_sync_mode_is_gymnasiums_next_step_default():
    """What the module docstring warns of: every other step is an empty reset step."""
    envs = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="sync", **SMALL)
    same = gym.make_vec(
        ENV_ID,
        num_envs=2,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        **SMALL,
    )
    try:
        assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
        _, steps = _rollout(envs, seed=0, n_steps=4)
        terminated = np.array([s[2] for s in steps])
        rewards = np.array([s[1] for s in steps])
        assert terminated.all(axis=1).tolist() == [True, False, True, False]
        assert (rewards[1::2] == 0).all() and (rewards[0::2] > 0).all()
        assert "final_info" not in steps[0][4]  # the step's info is the top-level info
        np.testing.assert_array_equal(steps[0][4]["oracle_score"], rewards[0])
        assert same.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
        _, same_steps = _rollout(same, seed=0, n_steps=2)
        assert all(s[2].all() and (s[1] > 0).all() for s in same_steps)
    finally:
        envs.close()
        same.close()


def test_autoreset_mode_by_value_and_env_kwargs_reach_the_sub_envs():
    envs = make_vector_env(2, autoreset_mode="NextStep", scenes="phantom-01", image_size=32)
    try:
        assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
        assert envs.get_attr("settings")[1].image_size == 32
        _, info = envs.reset(seed=0)
        assert list(info["scene"]) == ["phantom-01", "phantom-01"]
    finally:
        envs.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_envs": 0}, "num_envs must be a positive int, got 0"),
        ({"num_envs": "2"}, "num_envs must be a positive int"),
        ({"num_envs": True}, "num_envs must be a positive int"),
        ({"vector_mode": "threads"}, r"unknown vector_mode 'threads'; valid: \['sync', 'async'\]"),
        ({"autoreset_mode": "sometimes"}, "unknown autoreset_mode 'sometimes'; valid"),
        ({"context": "fork"}, "context='fork' is only used with vector_mode='async'"),
        ({"vector_mode": "async", "context": "thread"}, "unknown context 'thread'"),
        ({"n_vertices": 0}, "n_vertices"),  # a sub-env argument, checked in this process
    ],
    ids=[
        "zero-envs",
        "str-envs",
        "bool-envs",
        "mode",
        "autoreset",
        "sync-context",
        "bad-context",
        "env-kwarg",
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_vector_env(**{"num_envs": 2, **SMALL, **kwargs})


def test_make_vec_entry_point_refuses_vector_kwargs():
    with pytest.raises(gym.error.Error, match="vector_kwargs"):
        gym.make_vec(ENV_ID, num_envs=2, vector_kwargs={"copy": False}, **SMALL)


def test_vector_envs_keep_their_own_autoreset_metadata():
    """Gymnasium 1.2's SyncVectorEnv writes its mode into its first env's metadata: each env
    has its own, so two vector envs never report each other's mode."""
    from tfgym.env import TransferFunctionEnv

    a = SyncVectorEnv(
        [lambda: TransferFunctionEnv(**SMALL)], autoreset_mode=AutoresetMode.SAME_STEP
    )
    b = SyncVectorEnv(
        [lambda: TransferFunctionEnv(**SMALL)], autoreset_mode=AutoresetMode.NEXT_STEP
    )
    try:
        assert a.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
        assert b.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
        assert "autoreset_mode" not in TransferFunctionEnv.metadata
    finally:
        a.close()
        b.close()
