"""PPO agent, its callbacks, behaviour cloning and the reward-hacking report (tiny budgets)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from agents.callbacks import KLPenaltyCallback
from agents.config import PPOConfig
from agents.hacking import reward_hacking_report
from agents.policy import HistogramExtractor, policy_kwargs
from agents.ppo import make_envs, make_ppo, train_ppo
from agents.sft import ExpertData, behaviour_clone, expert_dataset

TINY = {
    "n_envs": 2,
    "n_steps": 32,
    "batch_size": 32,
    "n_epochs": 1,
    "image_size": 32,
    "features_dim": 16,
    "net_arch": (8,),
}


def test_config_validates():
    with pytest.raises(ValueError, match="extractor"):
        PPOConfig(extractor="resnet")
    with pytest.raises(ValueError, match="reward_model_path"):
        PPOConfig(backend="reward_model")
    with pytest.raises(ValueError, match="n_envs"):
        PPOConfig(n_envs=0)
    with pytest.raises(ValueError, match="reward_scale"):
        PPOConfig(reward_scale=0.0)


def test_histogram_extractor_reads_positions():
    """Coordinate channels: the same blob at two places gives different features."""
    import gymnasium as gym

    torch.manual_seed(0)
    ext = HistogramExtractor(gym.spaces.Box(0, 255, (1, 64, 64), np.uint8), features_dim=8)
    a = torch.zeros(1, 1, 64, 64)
    b = torch.zeros(1, 1, 64, 64)
    a[..., 10:14, 10:14] = 1.0
    b[..., 10:14, 40:44] = 1.0
    assert not torch.allclose(ext(a), ext(b))
    with pytest.raises(ValueError, match="histogram image"):
        HistogramExtractor(gym.spaces.Box(0, 255, (3, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="extractor"):
        policy_kwargs("resnet")


def test_train_ppo_writes_run_folder_and_tensorboard(tmp_path):
    config = PPOConfig(
        total_timesteps=128,
        eval_scenes="phantom-32",
        eval_every=1,
        image_scenes=("phantom-32",),
        image_every=1,
        display_size=32,
        checkpoint_every=64,
        **TINY,
    )
    model = train_ppo(config, tmp_path, eval_best={"phantom-32": 0.9}, progress=False)
    assert model.num_timesteps == 128
    for name in ("model.zip", "config.json", "trace.csv", "actions.npz"):
        assert (tmp_path / name).is_file(), name
    assert list((tmp_path / "checkpoints").glob("model_*_steps.zip"))
    rows = model.monitor_rows
    assert rows[0]["reward_mean"] == pytest.approx(rows[0]["oracle_mean"])  # oracle backend
    assert "eval_ratio_to_best" in rows[0]
    actions = np.load(tmp_path / "actions.npz")["actions"]
    assert actions.shape == (128, 3)
    assert np.allclose(actions[:, 1], actions[:, 2])
    events = EventAccumulator(str(next((tmp_path / "tb").iterdir())), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()
    assert {"rollout/reward_mean", "rollout/oracle_score_mean", "eval/oracle_score_mean"} <= set(
        tags["scalars"]
    )
    assert "images/phantom-32" in tags["images"]
    image = events.Images("images/phantom-32")[0]
    assert image.width > 100
    assert image.height > 100


def test_reward_scaling_reaches_ppo():
    config = PPOConfig(reward_shift=0.5, reward_scale=0.25, **TINY)
    env = make_envs(config)
    env.reset()
    _, rewards, _, infos = env.step(np.zeros((2, 8), np.float32))
    oracle = np.array([i["oracle_score"] for i in infos])
    assert np.allclose(rewards, (oracle - 0.5) / 0.25)
    env.close()


def test_kl_penalty_is_zero_against_itself_and_positive_against_another():
    config = PPOConfig(total_timesteps=64, **TINY)
    env = make_envs(config)
    model = make_ppo(config, env)
    same = KLPenaltyCallback(model.policy, beta=1.0)
    model.learn(64, callback=same)
    assert abs(same.history[-1][1]) < 1e-5  # the reference is the policy that sampled
    other = make_ppo(PPOConfig(seed=1, log_std_init=-2.0, **TINY), env)
    penalty = KLPenaltyCallback(other.policy, beta=0.5, target_kl=0.01, horizon=64)
    model.learn(64, callback=penalty, reset_num_timesteps=False)
    kl = penalty.history[-1][1]
    assert kl > 0.01
    assert penalty.beta > 0.5  # KL above target: the controller raises beta
    env.close()


def test_behaviour_cloning_lowers_the_loss_and_moves_the_mean():
    config = PPOConfig(
        n_envs=1,
        n_steps=16,
        batch_size=16,
        **{k: v for k, v in TINY.items() if k not in ("n_envs", "n_steps", "batch_size")},
    )
    model = make_ppo(config, make_envs(config))
    obs = np.zeros((6, 1, 64, 64), np.uint8)
    for i in range(6):
        obs[i, 0, 5:20, 5 + 8 * i : 12 + 8 * i] = 200
    target = np.linspace(-0.8, 0.8, 6)[:, None] * np.ones((1, 8), np.float32)
    log_std = model.policy.log_std.detach().clone()
    result = behaviour_clone(model.policy, obs, target, epochs=300, progress=False)
    assert result.losses[-1] < result.losses[0] - 1.0
    predicted, _ = model.predict(obs, deterministic=True)
    assert np.abs(predicted - target).mean() < 0.15
    assert torch.equal(model.policy.log_std, log_std)  # exploration kept for PPO
    assert model.policy.log_std.requires_grad
    with pytest.raises(ValueError, match="as many"):
        behaviour_clone(model.policy, obs, target[:3], progress=False)
    with pytest.raises(ValueError, match="finite"):
        behaviour_clone(model.policy, obs, target * np.nan, progress=False)


def test_expert_dataset_round_trip(tmp_path):
    from tfgym.scoring import ScoringSettings

    data = expert_dataset(
        ["phantom-00", "phantom-01"], ScoringSettings(image_size=32), budget=64, per_scene=3
    )
    assert set(data.scenes) == {"phantom-00", "phantom-01"}
    assert len(data) <= 6
    for scene, best in data.best.items():
        mine = data.scores[np.asarray(data.scenes) == scene]
        assert mine[0] == pytest.approx(best)
        assert (mine >= 0.97 * best - 1e-12).all()
    back = ExpertData.load(data.save(tmp_path / "e.npz"))
    assert back.scenes == data.scenes
    assert np.array_equal(back.actions, data.actions)
    assert back.best == data.best


def test_hacking_report_finds_no_parting_when_both_rise(tmp_path):
    t = np.repeat(np.arange(20.0), 30)
    rng = np.random.default_rng(1)
    rm = t + rng.normal(0, 0.5, t.size)
    oracle = 0.3 + 0.02 * t + rng.normal(0, 0.01, t.size)
    report = reward_hacking_report(np.stack([t, rm, oracle], 1), windows=10)
    assert report.parted_at is None
    assert report.overall > 0.8
    assert "did not part" in report.markdown()
    assert report.save_figure(tmp_path / "h.png").stat().st_size > 10_000
    with pytest.raises(ValueError, match="need at least"):
        reward_hacking_report(np.zeros((5, 3)), windows=10)


def test_human_backend_envs_share_one_backend(tmp_path):
    with pytest.raises(ValueError, match="needs label_db"):
        PPOConfig(backend="human")
    with pytest.raises(ValueError, match="needs reward_model_path"):
        PPOConfig(backend="human", label_db=str(tmp_path / "l.db"))
    config = PPOConfig(
        backend="human", human_mode="blocking", label_db=str(tmp_path / "l.db"), n_envs=2,
        scenes="headsq", image_size=32,
    )  # fmt: skip
    envs = make_envs(config)
    try:
        first, second = (e.unwrapped for e in envs.envs)
        assert first.backend is second.backend and first.backend.mode == "blocking"
    finally:
        envs.close()
    with pytest.raises(ValueError, match="use vec_env='dummy'"):
        make_envs(dataclasses.replace(config, vec_env="subproc"))
