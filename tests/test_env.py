"""The TransferFunction-v0 contract: spaces, checkers, determinism, pickling, vector envs."""

from __future__ import annotations

import pickle
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tfgym  # noqa: F401 - registers the env
from tfgym.backends import RewardBackend
from tfgym.env import TransferFunctionEnv
from tfgym.oracle import reference_action
from tfgym.scoring import SceneScorer, ScoringSettings

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
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, encoding="utf-8", check=True
    )
    assert out.stdout.strip() == "True (1, 64, 64)"


HEAVY = ("torch", "vtk", "pyvista", "matplotlib")


def _heavy_modules_after(code: str) -> str:
    code += f"\nimport sys\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, encoding="utf-8", check=True
    )
    return out.stdout.strip().splitlines()[-1]


def test_cpu_step_loads_no_heavy_library():
    """The CPU renderer imports torch only for a torch device; nothing draws figures."""
    code = (
        "import gymnasium as gym\n"
        "env = gym.make('tfgym:TransferFunction-v0', scenes='headsq', image_size=32)\n"
        "env.reset(seed=0)\n"
        "env.step(env.action_space.sample())\n"
    )
    assert _heavy_modules_after(code) == "[]"


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
    rewards = env.scorer("phantom-00").score(rng.uniform(-1, 1, (64, 8))).rewards
    assert ref > np.quantile(rewards, 0.9)


def test_scorer_batch_matches_steps(env):
    rng = np.random.default_rng(1)
    actions = rng.uniform(-1, 1, (5, 8)).astype(np.float32)
    batch = env.scorer("headsq").score(actions)
    single, infos = [], []
    for a in actions:
        env.reset(options={"scene": "headsq"})
        _, reward, _, _, info = env.step(a)
        single.append(reward)
        infos.append(info)
    np.testing.assert_allclose(batch.rewards, single, rtol=1e-5, atol=1e-6)
    assert len(batch.tfs) == 5
    for i, info in enumerate(infos):
        assert {k: v for k, v in batch.info(i).items() if k != "tf"} == pytest.approx(
            {k: v for k, v in info.items() if k != "tf"}
        )
        np.testing.assert_array_equal(info["tf"].action, batch.tf(i).action)


def test_scorer_is_cached_and_shares_the_env_settings(env):
    scorer = env.scorer("headsq")
    assert env.scorer("headsq") is scorer
    assert scorer.settings is env.settings and scorer.backend is env.backend
    assert scorer.name == "headsq" and scorer.is_oracle
    env.reset(options={"scene": "phantom-00"})
    assert env.scorer() is env.scorer("phantom-00")
    with pytest.raises(gym.error.ResetNeeded, match="reset"):
        TransferFunctionEnv(scenes="headsq").scorer()


def test_settings_come_from_the_constructor():
    wrapped = gym.make(
        "tfgym:TransferFunction-v0", scenes="headsq", n_vertices=5, target="teeth", image_size=32
    )
    settings = wrapped.unwrapped.settings
    assert isinstance(settings, ScoringSettings)
    assert (settings.n_vertices, settings.target, settings.image_size) == (5, "teeth", 32)
    assert settings.action_dim == wrapped.action_space.shape[0] == 10
    wrapped.close()


def test_step_info_holds_python_types(env):
    env.reset(options={"scene": "headsq"})
    _, reward, terminated, truncated, info = env.step(np.zeros(8, np.float32))
    assert type(reward) is float
    assert type(terminated) is bool and type(truncated) is bool
    for key in ("oracle_score", "visibility", "purity"):
        assert type(info[key]) is float, (key, type(info[key]))
    assert type(info["labels_approximate"]) is bool
    assert type(info["scene"]) is str
    assert info["labels_approximate"] is True  # headsq has no labels


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="this machine has CUDA: device='cuda' is valid"
)
def test_cuda_device_without_cuda_fails_at_make():
    with pytest.raises(ValueError, match=r"device 'cuda' needs CUDA.*device='cpu'"):
        gym.make("tfgym:TransferFunction-v0", scenes="headsq", device="cuda")


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

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[int, ...], int]] = []

    def reward(self, scene, actions, renderings):
        self.calls.append((scene.name, actions.shape, len(renderings)))
        return np.full(len(actions), 0.25)


def test_custom_backend_and_oracle_info():
    backend = ConstantBackend()
    e = TransferFunctionEnv(scenes="headsq", reward_backend=backend)
    e.reset(seed=0)
    _, reward, _, _, info = e.step(reference_action(e.scene))
    assert reward == 0.25
    assert info["oracle_score"] > 0.5  # the oracle still scores, whatever the backend
    assert backend.calls == [("headsq", (1, 8), 1)]  # scene, validated actions, renderings
    assert not e.scorer().is_oracle


def test_reward_kwargs_reach_the_backend():
    """The oracle backend's own target (teeth) sets the reward; info keeps the env's (bone)."""
    e = TransferFunctionEnv(scenes="phantom-00", reward_kwargs={"target": "teeth"})
    e.reset(seed=0)
    action = reference_action(e.scene, "bone")
    _, reward, _, _, info = e.step(action)
    teeth = SceneScorer("phantom-00", ScoringSettings(target="teeth")).score(action)
    bone = SceneScorer("phantom-00").score(action)
    assert reward == pytest.approx(float(teeth.oracle_score[0]))
    assert info["oracle_score"] == pytest.approx(float(bone.oracle_score[0]))
    assert info["oracle_score"] > reward + 0.1  # a bone TF: good for bone, poor for teeth
    with pytest.raises(ValueError, match="backend options"):
        TransferFunctionEnv(
            scenes="headsq", reward_backend=ConstantBackend(), reward_kwargs={"target": "teeth"}
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reward_backend": "reward_model"}, "needs the checkpoint"),
        ({"reward_backend": "human"}, "needs db="),
        (
            {"reward_backend": "human", "db": "a.db", "reward_kwargs": {"db": "b.db"}},
            r"given twice \(also in reward_kwargs\): \['db'\]",
        ),
        ({"reward_model_path": "rm.pt"}, "only used with reward_backend='reward_model'"),
        ({"reward_backend": "crowd"}, "unknown reward backend 'crowd'"),
        ({"view": "diagonal"}, "unknown view 'diagonal'"),
        ({"n_vertices": 2}, "at least 3"),
        ({"scenes": "phantom-x"}, "bad phantom name 'phantom-x'"),
        ({"scenes": "nope"}, "unknown scene 'nope'"),
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
    """Each target's hand-made TF wins under its own target and loses under the other."""
    bone = TransferFunctionEnv(scenes="phantom-00", target="bone", image_size=64)
    skin = TransferFunctionEnv(scenes="phantom-00", target="skin", image_size=64)
    bone.reset(seed=0)
    ref_bone = reference_action(bone.scene, "bone")
    ref_skin = reference_action(bone.scene, "skin")

    def reward(env: TransferFunctionEnv, action: np.ndarray) -> float:
        env.reset(seed=0)
        return env.step(action)[1]

    assert reward(bone, ref_bone) > 0.5
    assert reward(skin, ref_skin) > 0.5
    assert reward(bone, ref_skin) < 0.3  # the skin TF hides the skull
    # the skull's surface voxels touch soft tissue: they count as the skin target's shell,
    # so the bone TF keeps a fair skin score (0.79 on phantom-00), below its bone score
    assert reward(bone, ref_bone) > reward(skin, ref_bone) + 0.05
    assert reward(skin, ref_skin) > reward(skin, ref_bone) + 0.1
    # and the bone TF beats 95 % of random polygons under the bone target
    random = np.random.default_rng(0).uniform(-1, 1, (200, 8))
    assert reward(bone, ref_bone) > np.quantile(bone.scorer().score(random).rewards, 0.95)


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
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, encoding="utf-8", check=True
    )
    assert out.stdout.strip() == "unstarted"
