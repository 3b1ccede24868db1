"""stable-baselines3 trains against the env unchanged (smoke test, tiny)."""

from __future__ import annotations

import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

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
