"""The TransferFunction-v0 contract: spaces, checkers, determinism, pickling, vector envs."""

from __future__ import annotations

import pickle
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tfgym  # noqa: F401 - registers the env
from tfgym.backends import OracleBackend, RewardBackend
from tfgym.env import TransferFunctionEnv
from tfgym.oracle import reference_action

SCENES = ["phantom-00", "headsq"]


@pytest.fixture(scope="module")
def env() -> TransferFunctionEnv:
    e = TransferFunctionEnv(scenes=SCENES)
    yield e
    e.close()


def test_spaces_and_step(env):
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    assert obs.shape == (1, 64, 64) and obs.dtype == np.uint8
    assert env.action_space.shape == (8,) and env.action_space.dtype == np.float32
    assert info["scene"] in SCENES
    obs2, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs2)
    assert terminated and not truncated
    assert isinstance(reward, float) and 0.0 <= reward <= 1.0
    assert {"scene", "oracle_score", "visibility", "purity", "tf"} <= set(info)
    assert reward == pytest.approx(info["oracle_score"])  # oracle backend


def test_step_needs_reset():
    e = TransferFunctionEnv(scenes="headsq")
    with pytest.raises(gym.error.ResetNeeded):
        e.step(e.action_space.sample())
    e.reset(seed=0)
    e.step(e.action_space.sample())
    with pytest.raises(gym.error.ResetNeeded, match="one step"):
        e.step(e.action_space.sample())


def test_gymnasium_check_env():
    from gymnasium.utils.env_checker import check_env

    check_env(TransferFunctionEnv(scenes=SCENES, render_mode="rgb_array"), skip_render_check=False)


def test_sb3_check_env():
    from stable_baselines3.common.env_checker import check_env

    check_env(TransferFunctionEnv(scenes=SCENES), warn=True)


def test_gym_make_without_prior_import():
    code = (
        "import gymnasium as gym\n"
        "env = gym.make('tfgym:TransferFunction-v0', scenes='headsq')\n"
        "obs, _ = env.reset(seed=0)\n"
        "print(env.step(env.action_space.sample())[2], obs.shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True (1, 64, 64)"


def test_import_is_cheap():
    code = (
        "import sys, tfgym\n"
        "print(sorted(m for m in ('torch', 'pyvista', 'vtk') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _rollout(env: gym.Env, seed: int, n: int = 6) -> list:
    env.reset(seed=seed)
    env.action_space.seed(seed)
    out = []
    for _ in range(n):
        obs, info = env.reset()
        _, reward, *_ = env.step(env.action_space.sample())
        out.append((info["scene"], obs.sum(), reward))
    return out


def test_same_seed_same_rollout():
    a = _rollout(TransferFunctionEnv(scenes="train"), seed=7)
    b = _rollout(TransferFunctionEnv(scenes="train"), seed=7)
    c = _rollout(TransferFunctionEnv(scenes="train"), seed=8)
    assert a == b
    assert a != c
    assert len({s for s, *_ in a}) > 1  # scenes change between episodes


def test_scene_option_and_histogram_differs_between_scenes(env):
    obs_a, info_a = env.reset(options={"scene": "phantom-00"})
    obs_b, info_b = env.reset(options={"scene": "headsq"})
    assert (info_a["scene"], info_b["scene"]) == ("phantom-00", "headsq")
    assert not np.array_equal(obs_a, obs_b)
    with pytest.raises(ValueError, match="unknown scene 'nope'"):
        env.reset(options={"scene": "nope"})


def test_pickle_round_trip(env):
    env.reset(seed=1, options={"scene": "phantom-00"})
    clone = pickle.loads(pickle.dumps(env))
    action = reference_action(env.scene)
    r1 = env.step(action)[1]
    r2 = clone.step(action)[1]
    assert r1 == r2 > 0.5
    assert len(pickle.dumps(env)) < 100_000  # caches are not pickled


def test_subproc_vec_env():
    from stable_baselines3.common.vec_env import SubprocVecEnv

    venv = SubprocVecEnv([lambda: TransferFunctionEnv(scenes="headsq") for _ in range(2)])
    try:
        venv.seed(0)
        obs = venv.reset()
        assert obs.shape == (2, 1, 64, 64)
        actions = np.stack([np.zeros(8, np.float32), np.ones(8, np.float32)])
        obs, rewards, dones, infos = venv.step(actions)
        assert dones.all() and rewards.shape == (2,)
        assert infos[0]["scene"] == "headsq"
    finally:
        venv.close()


def test_render_rgb_array():
    e = TransferFunctionEnv(scenes="headsq", render_mode="rgb_array", image_size=64)
    e.reset(seed=0)
    assert e.render().shape == (64, 64, 3) and e.render().max() == 0  # black before a step
    e.step(reference_action(e.scene))
    img = e.render()
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8 and img.max() > 100


def test_reference_beats_random(env):
    env.reset(options={"scene": "phantom-00"})
    ref = env.step(reference_action(env.scene))[1]
    rng = np.random.default_rng(0)
    rewards, _, _ = env.evaluate(rng.uniform(-1, 1, (64, 8)), scene="phantom-00")
    assert ref > np.quantile(rewards, 0.9)


def test_evaluate_batch_matches_steps(env):
    rng = np.random.default_rng(1)
    actions = rng.uniform(-1, 1, (5, 8)).astype(np.float32)
    batch, _, info = env.evaluate(actions, scene="headsq")
    single = []
    for a in actions:
        env.reset(options={"scene": "headsq"})
        single.append(env.step(a)[1])
    np.testing.assert_allclose(batch, single, rtol=1e-5, atol=1e-6)
    assert len(info["tf"]) == 5


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.array([np.nan] + [0.0] * 7, np.float32), "NaN or inf"),
        (np.array([0.0] * 7 + [np.inf], np.float32), "NaN or inf"),
        (np.zeros(6, np.float32), r"shape \(8,\)"),
    ],
    ids=["nan", "inf", "wrong-size"],
)
def test_bad_actions_raise(env, bad, match):
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(bad)


def test_out_of_range_is_clipped_and_degenerate_is_empty(env):
    env.reset(options={"scene": "headsq"})
    big = env.step(np.full(8, 5.0, np.float32) * np.array([1, 1, -1, 1, -1, -1, 1, -1]))
    env.reset(options={"scene": "headsq"})
    unit = env.step(np.array([1, 1, -1, 1, -1, -1, 1, -1], np.float32))
    assert big[1] == unit[1]
    env.reset(options={"scene": "headsq"})
    _, reward, _, _, info = env.step(np.array([0.1, 0.2] * 4, np.float32))  # one repeated point
    assert reward == 0.0 and info["visibility"] == 0.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=8, max_size=8))
def test_fuzz_actions(action):
    e = _FUZZ_ENV
    e.reset(seed=0)
    a = np.array(action, dtype=np.float32)
    if not np.all(np.isfinite(a)):
        with pytest.raises(ValueError, match="NaN or inf"):
            e.step(a)
        return
    _, reward, terminated, _, _ = e.step(a)
    assert 0.0 <= reward <= 1.0 and terminated


_FUZZ_ENV = TransferFunctionEnv(scenes="headsq", image_size=32)


class ConstantBackend(RewardBackend):
    name = "constant"

    def reward(self, actions, render, renderer):
        return np.full(len(actions), 0.25)


def test_custom_backend_and_oracle_info():
    e = TransferFunctionEnv(scenes="headsq", reward_backend=ConstantBackend())
    e.reset(seed=0)
    _, reward, _, _, info = e.step(reference_action(e.scene))
    assert reward == 0.25
    assert info["oracle_score"] > 0.5  # the oracle still scores, whatever the backend


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reward_backend": "reward_model"}, "needs the checkpoint"),
        ({"reward_backend": "human"}, "not available in this version"),
        ({"reward_model_path": "rm.pt"}, "only used with reward_backend='reward_model'"),
        ({"reward_backend": "crowd"}, "unknown reward backend 'crowd'"),
        ({"view": "diagonal"}, "unknown view 'diagonal'"),
        ({"n_vertices": 2}, "at least 3"),
        ({"scenes": "phantom-99"}, "unknown scene"),
        ({"target": "liver"}, "unknown oracle target 'liver'"),
        ({"color_scheme": "rainbow"}, "unknown color scheme"),
        ({"render_mode": "ansi"}, "unknown render_mode"),
    ],
    ids=lambda v: v if isinstance(v, str) else "-".join(map(str, v.values())),
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TransferFunctionEnv(**{"scenes": "headsq", **kwargs})


def test_target_changes_oracle():
    bone = TransferFunctionEnv(scenes="phantom-00", target="bone")
    skin = TransferFunctionEnv(scenes="phantom-00", target="skin")
    bone.reset(seed=0)
    skin.reset(seed=0)
    ref_bone = reference_action(bone.scene, "bone")
    ref_skin = reference_action(skin.scene, "skin")
    assert bone.step(ref_bone)[1] > OracleBackend("bone").oracle.score(np.zeros((1, 5)), 1)[0]
    skin.reset(seed=0)
    bone.reset(seed=0)
    assert skin.step(ref_skin)[1] > skin_score_of(ref_bone)
    assert bone.step(ref_bone)[1] > 0.5


def skin_score_of(action: np.ndarray) -> float:
    e = TransferFunctionEnv(scenes="phantom-00", target="skin")
    e.reset(seed=0)
    return e.step(action)[1]


def test_step_leaves_numba_thread_pool_unstarted():
    """An env step runs serial kernels only: a started thread pool spins and slowed
    2-process vector envs 4x on 2 cores (see benchmarks/bench_env.py)."""
    code = (
        "import numba\n"
        "from tfgym.env import TransferFunctionEnv\n"
        "e = TransferFunctionEnv(scenes='phantom-00'); e.reset(seed=0)\n"
        "e.step(e.action_space.sample())\n"
        "try:\n"
        "    print(numba.threading_layer())\n"
        "except ValueError:\n"
        "    print('unstarted')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "unstarted"
