"""stable-baselines3 trains against the env unchanged (smoke tests, tiny): PPO, SAC, TD3."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3 import PPO, SAC, TD3
from stable_baselines3.common.env_util import make_vec_env

from agents.base import Agent
from tfgym.env import TransferFunctionEnv


def test_ppo_cnn_policy_learns_a_few_steps(tmp_path):
    venv = make_vec_env(
        TransferFunctionEnv, n_envs=2, seed=0, env_kwargs={"scenes": "train", "image_size": 32}
    )
    model = PPO(
        "CnnPolicy",
        venv,
        n_steps=32,
        batch_size=32,
        n_epochs=1,
        policy_kwargs={"net_arch": [8], "features_extractor_kwargs": {"features_dim": 16}},
        seed=0,
        device="cpu",
    )
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(128)
    changed = [
        not np.allclose(a.numpy(), b.detach().numpy())
        for a, b in zip(before, model.policy.parameters(), strict=True)
    ]
    assert any(changed)
    model.save(tmp_path / "ppo")
    loaded = PPO.load(tmp_path / "ppo", device="cpu")
    obs = venv.reset()
    action, _ = loaded.predict(obs, deterministic=True)
    assert action.shape == (2, 8)
    assert np.all(np.abs(action) <= 1.0)
    venv.close()


@pytest.mark.parametrize("algo", [SAC, TD3], ids=["sac", "td3"])
def test_off_policy_cnn_agents_train_on_the_env_unchanged(algo, tmp_path):
    env = TransferFunctionEnv(scenes="train", image_size=32)
    model = algo(
        "CnnPolicy",
        env,
        buffer_size=128,
        learning_starts=16,
        batch_size=8,
        train_freq=1,
        gradient_steps=1,
        policy_kwargs={"net_arch": [8], "features_extractor_kwargs": {"features_dim": 16}},
        seed=0,
        device="cpu",
    )
    assert isinstance(model, Agent)
    before = {k: v.detach().clone() for k, v in model.policy.state_dict().items()}
    model.learn(64)
    assert model.num_timesteps == 64
    # one-step episodes: every transition in the buffer is terminal, with the step's reward
    n = model.replay_buffer.size()
    assert n == 64 and np.all(model.replay_buffer.dones[:n] == 1.0)
    assert np.all((model.replay_buffer.rewards[:n] >= 0) & (model.replay_buffer.rewards[:n] <= 1))
    after = model.policy.state_dict()
    changed = {k for k, v in before.items() if v.dtype.is_floating_point and not v.equal(after[k])}
    assert any(k.startswith("actor.") for k in changed)
    assert any(k.startswith("critic.") for k in changed)
    model.save(tmp_path / "model")
    loaded = algo.load(tmp_path / "model", device="cpu")
    obs, _ = env.reset(seed=0)
    action, _ = loaded.predict(obs, deterministic=True)
    assert action.shape == (8,) and np.all(np.abs(action) <= 1.0)
    np.testing.assert_allclose(action, model.predict(obs, deterministic=True)[0], atol=1e-6)
    batch, _ = loaded.predict(np.stack([obs, obs]), deterministic=True)
    assert batch.shape == (2, 8)
    env.close()
