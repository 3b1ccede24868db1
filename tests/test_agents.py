"""The agent interface and the search agents that learn from env steps."""

from __future__ import annotations

import doctest
import json

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO

import agents
import agents.base
import agents.search_agents
from agents.base import Agent, Policy, StepAgent, observation_key
from agents.constant import ConstantPolicy
from agents.search_agents import CMAESAgent, ConstantAgent, RandomSearchAgent

ENV_KWARGS = {"scenes": "train", "image_size": 32}
AGENTS = [RandomSearchAgent, CMAESAgent, ConstantAgent]
IDS = ["random", "cmaes", "constant"]


class StepLog(gym.Wrapper):
    """Records (scene, action, reward) of every step."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.steps: list[tuple[str, np.ndarray, float]] = []
        self._scene = ""

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._scene = info["scene"]
        return obs, info

    def step(self, action):
        out = self.env.step(action)
        self.steps.append((self._scene, np.array(action, np.float32), float(out[1])))
        return out


def make_env(**kwargs) -> StepLog:
    return StepLog(gym.make("tfgym:TransferFunction-v0", **{**ENV_KWARGS, **kwargs}))


@pytest.fixture(scope="module")
def train_set() -> tuple[list[str], np.ndarray, list]:
    """The train scenes' names, observations and scorers (built once per module)."""
    env = gym.make("tfgym:TransferFunction-v0", **ENV_KWARGS)
    names = list(env.unwrapped.scene_names)
    scorers = [env.unwrapped.scorer(name) for name in names]
    return names, np.stack([s.observation for s in scorers]), scorers


@pytest.fixture(scope="module")
def heldout_obs() -> np.ndarray:
    from tfgym.scoring import SceneScorer, ScoringSettings

    settings = ScoringSettings(image_size=32)
    return np.stack([SceneScorer(f"phantom-{i}", settings).observation for i in (40, 41)])


def rewards_of(actions: np.ndarray, names: list[str], scorers: list) -> np.ndarray:
    by_name = dict(zip(names, scorers, strict=True))
    return np.array([by_name[n].score(a).rewards[0] for n, a in zip(names, actions, strict=True)])


# ------------------------------------------------------------------------------ interface
def test_sb3_ppo_and_every_agent_satisfy_the_protocols():
    env = gym.make("tfgym:TransferFunction-v0", **ENV_KWARGS)
    ppo = PPO("CnnPolicy", env, n_steps=8, batch_size=8, device="cpu", seed=0)
    for agent in [ppo, *(cls(env, seed=0) for cls in AGENTS)]:
        assert isinstance(agent, Agent), type(agent)
        assert isinstance(agent, Policy)
    policy = ConstantPolicy(np.zeros(8) + 0.5)
    assert isinstance(policy, Policy) and not isinstance(policy, Agent)
    assert not isinstance(object(), Policy)
    assert isinstance(ConstantAgent(env, seed=0).policy, Policy)


def test_observation_key_identifies_bytes_shape_and_dtype():
    a = np.arange(16, dtype=np.uint8).reshape(1, 4, 4)
    assert observation_key(a) == observation_key(a.copy())
    assert observation_key(a) != observation_key(a.reshape(1, 2, 8))
    assert observation_key(a) != observation_key(a.astype(np.int16))
    b = a.copy()
    b[0, 0, 0] += 1
    assert observation_key(a) != observation_key(b)
    assert len(observation_key(a)) == 32


@pytest.mark.parametrize("module", [agents.base, agents.search_agents], ids=lambda m: m.__name__)
def test_module_doctests(module):
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried > 0
    assert failures == 0


def test_agents_package_exports_the_agents():
    for name in ("Agent", "Policy", "StepAgent", "RandomSearchAgent", "CMAESAgent"):
        assert name in agents.__all__
    assert agents.ConstantAgent is ConstantAgent and agents.Agent is Agent


# ------------------------------------------------------------------------------- learning
def test_random_search_agent_remembers_the_best_action_per_scene(train_set):
    names, obs, scorers = train_set
    env = make_env()
    agent = RandomSearchAgent(env, seed=0, repeats=4).learn(256)
    assert agent.num_timesteps == len(env.steps) == 256
    first: dict[str, float] = {}
    best: dict[str, tuple[float, np.ndarray]] = {}
    for scene, action, reward in env.steps:
        first.setdefault(scene, reward)
        if scene not in best or reward > best[scene][0]:
            best[scene] = (reward, action)
    actions, _ = agent.predict(obs)
    assert actions.shape == (len(names), 8) and actions.dtype == np.float32
    for i, name in enumerate(names):
        if name in best:  # a seen scene: the best action played there, its reward measured
            np.testing.assert_array_equal(actions[i], best[name][1])
            assert agent.scenes[observation_key(obs[i])].reward == best[name][0]
    seen = [i for i, n in enumerate(names) if n in best]
    assert len(seen) >= 28  # 256 draws over 32 scenes
    got = rewards_of(actions[seen], [names[i] for i in seen], [scorers[i] for i in seen])
    np.testing.assert_allclose(got, [best[names[i]][0] for i in seen], atol=1e-9)
    assert got.mean() > np.mean([first[names[i]] for i in seen]) + 0.1
    # the fallback: the polygon with the best mean reward over its 4 consecutive episodes
    rewards = np.array([r for _, _, r in env.steps]).reshape(-1, 4)
    k = int(np.argmax(rewards.mean(axis=1)))
    np.testing.assert_array_equal(agent.fallback, env.steps[4 * k][1])
    assert agent.best_mean_reward == pytest.approx(rewards[k].mean())
    assert np.all([np.array_equal(env.steps[4 * k][1], env.steps[4 * k + j][1]) for j in range(4)])


def test_cmaes_agent_searches_each_scene_and_the_constant(train_set, heldout_obs):
    names, obs, _ = train_set
    env = make_env(scenes=names[:4])  # 4 scenes: each gets several populations
    agent = CMAESAgent(env, seed=0, population_size=6, constant_fraction=0.2).learn(320)
    n_constant = agent.n_constant_steps
    assert 40 <= n_constant <= 100  # about a fifth of the steps went to the constant search
    assert set(agent.searches) == set(agent.scenes) and len(agent.scenes) == 4
    for name, i in zip(names[:4], range(4), strict=True):
        search = agent.searches[observation_key(obs[i])]
        assert search.es.countiter >= 5  # complete populations were told
        steps = [r for s, _, r in env.steps if s == name]
        best = agent.scenes[observation_key(obs[i])]
        assert best.reward == max(steps) and best.steps == len(steps)
        assert best.reward > np.mean(steps[:6]) + 0.05  # far better than its first population
    # unknown scans get the constant search's mean
    actions, _ = agent.predict(heldout_obs)
    np.testing.assert_array_equal(actions, np.stack([agent.constant.mean] * 2))


def test_constant_agent_learns_one_polygon_for_all_scenes(train_set, heldout_obs):
    _, obs, scorers = train_set
    env = make_env()
    agent = ConstantAgent(env, seed=0).learn(480)  # 15 populations of 32
    actions, _ = agent.predict(obs)
    assert np.all(actions == agent.action) and agent.action.shape == (8,)
    np.testing.assert_array_equal(agent.predict(heldout_obs[0])[0], agent.action)
    policy = agent.policy
    assert isinstance(policy, ConstantPolicy)
    np.testing.assert_array_equal(policy.action, agent.action)
    assert agent.search.n_told == 480

    def mean_over_train(action: np.ndarray) -> float:
        return float(np.mean([s.score(action).rewards[0] for s in scorers]))

    now = mean_over_train(agent.action)
    first = np.mean([mean_over_train(a) for _, a, _ in env.steps[:32]])  # the first population
    assert now > first + 0.1, (now, first)  # measured: 0.60 against 0.37


@pytest.mark.parametrize("cls", AGENTS, ids=IDS)
def test_agents_are_deterministic_for_a_seed(cls, train_set):
    obs = train_set[1]

    def run(seed: int) -> tuple[np.ndarray, list]:
        env = make_env()
        agent = cls(env, seed=seed).learn(40)
        return agent.predict(obs)[0], [a for _, a, _ in env.steps]

    a, steps_a = run(3)
    b, steps_b = run(3)
    _, steps_c = run(4)
    np.testing.assert_array_equal(a, b)
    assert all(np.array_equal(x, y) for x, y in zip(steps_a, steps_b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(steps_a, steps_c, strict=True))


def test_learning_continues_across_calls_and_shows_progress(capsys):
    env = make_env()
    agent = CMAESAgent(env, seed=0)
    assert agent.learn(10, progress_bar=True) is agent
    agent.learn(5)
    assert agent.num_timesteps == 15 == len(env.steps)
    assert "CMAESAgent" in capsys.readouterr().err


# ------------------------------------------------------------------------- predict, save, load
@pytest.mark.parametrize("cls", AGENTS, ids=IDS)
def test_predict_shapes_and_save_load_round_trip(cls, tmp_path, train_set, heldout_obs):
    obs = train_set[1]
    env = make_env()
    agent = cls(env, seed=1)
    with pytest.raises(RuntimeError, match="learn"):
        agent.predict(obs[0])
    agent.learn(48)
    one, state = agent.predict(obs[0], state="s")
    assert one.shape == (8,) and one.dtype == np.float32 and state == "s"
    batch = np.concatenate([obs[:3], heldout_obs])
    many, _ = agent.predict(batch, deterministic=False)
    assert many.shape == (5, 8) and np.all(np.abs(many) <= 1.0)
    np.testing.assert_array_equal(many[0], one)
    with pytest.raises(ValueError, match="observation must have shape"):
        agent.predict(obs[0, 0])
    path = agent.save(tmp_path / "sub" / "agent.json")
    data = json.loads(path.read_text())
    assert data["class"] == cls.__name__ and data["num_timesteps"] == 48
    loaded = cls.load(path)
    np.testing.assert_array_equal(loaded.predict(batch)[0], many)
    assert loaded.num_timesteps == 48 and loaded.env is None
    with pytest.raises(RuntimeError, match="set_env"):
        loaded.learn(1)
    loaded.set_env(make_env())
    loaded.learn(16)
    assert loaded.num_timesteps == 64
    other = next(c for c in AGENTS if c is not cls)
    with pytest.raises(ValueError, match=f"holds a {cls.__name__}"):
        other.load(path)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a saved tfgym agent"):
        cls.load(tmp_path / "bad.json")


def test_memory_is_bounded_least_recently_seen_out(train_set):
    env = make_env()
    agent = CMAESAgent(env, seed=0, max_scenes=3).learn(30)
    assert len(agent.scenes) == 3 and set(agent.searches) <= set(agent.scenes)
    last = observation_key(env.unwrapped.scene.observation)
    assert list(agent.scenes)[-1] == last


def test_bad_envs_and_settings_are_rejected():
    env = gym.make("tfgym:TransferFunction-v0", **ENV_KWARGS)
    with pytest.raises(TypeError, match="one Gymnasium env"):
        RandomSearchAgent(gym.make_vec("tfgym:TransferFunction-v0", num_envs=2))
    with pytest.raises(ValueError, match=r"Box\(-1, 1\)"):
        ConstantAgent(gym.make("Pendulum-v1"))
    with pytest.raises(ValueError, match="repeats"):
        RandomSearchAgent(env, repeats=0)
    with pytest.raises(ValueError, match="constant_fraction"):
        CMAESAgent(env, constant_fraction=1.5)
    with pytest.raises(ValueError, match="init_action"):
        ConstantAgent(env, init_action=np.zeros(3))
    with pytest.raises(ValueError, match="total_timesteps"):
        ConstantAgent(env).learn(-1)
    agent = ConstantAgent(env, seed=0).learn(1)
    with pytest.raises(ValueError, match="differ from the agent's"):
        agent.set_env(gym.make("tfgym:TransferFunction-v0", n_vertices=5, **ENV_KWARGS))

    class TwoSteps(gym.Wrapper):
        def step(self, action):
            obs, reward, _, truncated, info = self.env.step(action)
            return obs, reward, False, truncated, info

    with pytest.raises(ValueError, match="one-step episodes"):
        RandomSearchAgent(TwoSteps(env), seed=0).learn(1)


def test_step_agent_is_abstract():
    with pytest.raises(TypeError):
        StepAgent(None)  # type: ignore[abstract]
