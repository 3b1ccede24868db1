"""The engine-free policy network, the float-image wrapper and ``tfgym evaluate`` of agent runs.

None of this needs Ray: an RLlib run's ``policy.pt`` is evaluated here without it (the RLlib
engine itself is tested in ``test_rllib.py``, in the environment with the ``ray`` extra).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from agents.actor_critic import ActorCritic
from agents.agent_eval import evaluate_agent_run, is_agent_run, load_agent_run
from agents.config import PPOConfig
from agents.ppo import make_envs, make_ppo
from tfgym.cli import main
from tfgym.env import TransferFunctionEnv
from tfgym.wrappers import float_image_observation, to_float_image

TINY = {"features_dim": 16, "net_arch": (8,)}


def test_actor_critic_has_the_sb3_policy_architecture():
    """Same extractors, heads and initial log std as SB3's CnnPolicy with tfgym's kwargs."""
    for share in (False, True):
        config = PPOConfig(n_envs=1, n_steps=8, batch_size=8, image_size=32, share_features=share)
        env = make_envs(config)
        try:
            sb3 = make_ppo(config, env).policy
        finally:
            env.close()
        net = ActorCritic(
            64, 8, features_dim=config.features_dim, net_arch=config.net_arch,
            log_std_init=config.log_std_init, share_features=share,
        )  # fmt: skip
        assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in sb3.parameters())
        assert torch.equal(net.log_std.detach(), sb3.log_std.detach())


def test_actor_critic_predict_matches_forward_and_clips():
    torch.manual_seed(0)
    net = ActorCritic(32, 8, **TINY)
    obs = np.random.default_rng(0).integers(0, 256, (5, 1, 32, 32), dtype=np.uint8)
    actions, state = net.predict(obs, deterministic=True)
    assert state is None and actions.shape == (5, 8) and actions.dtype == np.float32
    mean, log_std, value = net(torch.as_tensor(obs, dtype=torch.float32) / 255)
    np.testing.assert_allclose(actions, np.clip(mean.detach().numpy(), -1, 1), atol=1e-6)
    assert value.shape == (5,) and log_std.shape == (8,)
    one, _ = net.predict(obs[0])
    np.testing.assert_allclose(one, actions[0], atol=1e-6)
    sampled = [net.predict(obs, deterministic=False)[0] for _ in range(2)]
    assert not np.array_equal(sampled[0], sampled[1])
    with torch.no_grad():
        net.mean.bias.fill_(5.0)  # far outside the box: clipped
    assert np.all(net.predict(obs)[0] == 1.0)
    with pytest.raises(ValueError, match=r"expected observations \(n, 1, 32, 32\)"):
        net.predict(np.zeros((2, 1, 16, 16), np.uint8))
    with pytest.raises(ValueError, match="unknown extractor"):
        ActorCritic(32, 8, extractor="resnet")


def test_actor_critic_save_load_roundtrip_and_bad_files(tmp_path):
    torch.manual_seed(1)
    net = ActorCritic(32, 8, extractor="histogram", **TINY)
    path = net.save(tmp_path / "policy.pt", engine="rllib")
    back = ActorCritic.load(path)
    obs = np.random.default_rng(1).integers(0, 256, (3, 1, 32, 32), dtype=np.uint8)
    np.testing.assert_array_equal(back.predict(obs)[0], net.predict(obs)[0])
    assert back.hparams == net.hparams
    with pytest.raises(FileNotFoundError):
        ActorCritic.load(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a tfgym policy file"):
        ActorCritic.load(tmp_path / "junk.pt")
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a tfgym policy file"):
        ActorCritic.load(tmp_path / "other.pt")


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped")  # checking the wrapper
def test_float_image_observation_wrapper():
    env = float_image_observation(TransferFunctionEnv(scenes="headsq", image_size=32))
    obs, _ = env.reset(seed=0)
    raw = env.unwrapped.observation_space.sample()
    assert obs.shape == (64, 64, 1) and obs.dtype == np.float32
    assert env.observation_space.contains(obs) and 0.0 <= obs.min() and obs.max() <= 1.0
    np.testing.assert_allclose(to_float_image(raw)[..., 0], raw[0] / 255.0, rtol=1e-6)
    check_env(env, skip_render_check=True)
    with pytest.raises(ValueError, match="uint8"):
        float_image_observation(gym.make("CartPole-v1"))


def _rllib_like_run(folder, *, eval_scenes="phantom-32,phantom-33"):
    """A run folder as the RLlib engine writes it (config.json and policy.pt), no Ray."""
    config = PPOConfig(
        engine="rllib", scenes="phantom-00,phantom-01", eval_scenes=eval_scenes,
        image_size=32, display_size=32, **TINY,
    )  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(dataclasses.asdict(config)))
    torch.manual_seed(0)
    ActorCritic(64, 8, **TINY).save(folder / "policy.pt")
    return config


def test_evaluate_agent_run_scores_a_policy_file_with_the_table(tmp_path):
    run = tmp_path / "run"
    _rllib_like_run(run)
    assert is_agent_run(run) and not is_agent_run(tmp_path)
    policy, config = load_agent_run(run)
    assert isinstance(policy, ActorCritic) and config.engine == "rllib"
    ev = evaluate_agent_run(run, best_budget=8, constant_budget=8, progress=False)
    assert ev.agents == ("ppo-rllib",) and ev.scenes == ("phantom-32", "phantom-33", "headsq")
    assert all(ev.scores["best"] >= ev.scores["ppo-rllib"])
    table = (run / "eval" / "table.md").read_text()
    assert "| ppo-rllib |" in table and "| constant |" in table
    assert (run / "eval" / "renderings.png").stat().st_size > 1000
    constant = json.loads((run / "eval" / "constant.json").read_text())
    assert len(constant["action"]) == 8
    # the constant and the best are cached: a second evaluation finds both
    again = evaluate_agent_run(run, best_budget=8, constant_budget=8, progress=False)
    assert again.config["searches_cached"] == 3
    np.testing.assert_array_equal(again.scores["constant"], ev.scores["constant"])


def test_cli_evaluate_takes_train_agent_folders(tmp_path, capsys):
    run = tmp_path / "run"
    _rllib_like_run(run, eval_scenes="phantom-32")
    code = main(["evaluate", str(run), "--best-budget", "4", "--constant-budget", "4",
                 "--no-progress"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "| ppo-rllib |" in out and "**headsq**" in out
    assert main(["evaluate", str(tmp_path / "nothing")]) == 2
    assert "neither an RLHF run folder" in capsys.readouterr().err
    (run / "config.json").write_text('{"n_envs": 0}')
    assert main(["evaluate", str(run), "--no-progress"]) == 2
    assert "not a PPO config" in capsys.readouterr().err


@pytest.mark.skipif(
    importlib.util.find_spec("ray") is not None,
    reason="Ray is installed here: test_rllib.py covers the engine",
)
def test_train_agent_rllib_without_ray_says_how_to_install(tmp_path, capsys):
    code = main(["train-agent", "--engine", "rllib", "--out", str(tmp_path / "r"), "--steps", "8"])
    assert code == 2
    assert "pip install 'tfgym[ray]'" in capsys.readouterr().err
