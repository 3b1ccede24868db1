"""The "reward_model" backend: a trained checkpoint drives the env's reward."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from reward_models.backend import RewardModelBackend
from reward_models.checkpoint import CheckpointError, save_checkpoint
from reward_models.config import TrainConfig, model_config
from reward_models.model import RewardModel
from reward_models.train import train_reward_model
from tfgym.backends import make_backend
from tfgym.env import TransferFunctionEnv
from tfgym.oracle import make_labeler, reference_action
from tfgym.preferences import Preference
from tfgym.scoring import SceneScorer, ScoringSettings

SCENE = "phantom-00"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small model trained on oracle preferences of one phantom (records without settings)."""
    rng = np.random.default_rng(0)
    scorer = SceneScorer(SCENE, ScoringSettings(image_size=32))
    actions = rng.uniform(-1, 1, (60, 8)).astype(np.float32)
    actions[0] = reference_action(scorer.scene)
    scores = scorer.oracle_scores(actions)
    i, j = rng.integers(0, len(actions), (2, 600))
    keep = i != j
    mu = make_labeler("perfect").compare(scores[i[keep]], scores[j[keep]], rng)
    records = [
        Preference(SCENE, tuple(actions[a]), tuple(actions[b]), float(m), "sim:perfect")
        for a, b, m in zip(i[keep], j[keep], mu, strict=True)
    ]
    config = TrainConfig(epochs=8, variant="tiny-mask", seed=0)
    result = train_reward_model(records, config, progress=False)
    return result.save(tmp_path_factory.mktemp("rm") / "rm.pt")


def test_env_reward_comes_from_the_model(checkpoint):
    env = TransferFunctionEnv(
        scenes=SCENE, reward_backend="reward_model", reward_model_path=str(checkpoint)
    )
    env.reset(seed=0)
    action = reference_action(env.scene)
    _, reward, terminated, _, info = env.step(action)
    expected = env.backend.model.predict(env.scene.observation, action[None])[0]
    assert terminated
    assert reward == pytest.approx(expected)
    assert 0.0 <= info["oracle_score"] <= 1.0  # the oracle still reports
    rng = np.random.default_rng(1)
    batch = rng.uniform(-1, 1, (16, 8))
    scored = env.scorer().score(batch)
    model_rewards = env.backend.model.predict(env.scene.observation, batch)
    np.testing.assert_allclose(scored.rewards, model_rewards)
    # a model trained on the oracle's preferences ranks like the oracle
    assert np.corrcoef(scored.rewards, scored.oracle_score)[0, 1] > 0.3


def test_backend_scores_the_scene_observation_in_one_call(checkpoint, rng):
    backend = make_backend("reward_model", path=str(checkpoint))
    assert isinstance(backend, RewardModelBackend)
    scorer = SceneScorer(SCENE, ScoringSettings(image_size=16))
    actions = rng.uniform(-1, 1, (5, 8)).astype(np.float32)
    batch = scorer.score(actions, renderings=True)
    rewards = backend.reward(scorer.scene, actions, batch.renderings)
    assert rewards.dtype == np.float64
    np.testing.assert_array_equal(rewards, backend.model.predict(scorer.observation, actions))


def test_checkers_pass_with_the_model_backend(checkpoint):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    kwargs = {
        "scenes": SCENE,
        "reward_backend": "reward_model",
        "reward_model_path": str(checkpoint),
    }
    check_env(TransferFunctionEnv(**kwargs))
    sb3_check_env(TransferFunctionEnv(**kwargs))


def test_backend_pickles_by_path(checkpoint):
    env = TransferFunctionEnv(
        scenes=SCENE, reward_backend="reward_model", reward_model_path=str(checkpoint)
    )
    env.reset(seed=0)
    assert len(pickle.dumps(env.backend)) < 1000  # the path and the checks, not the weights
    clone = pickle.loads(pickle.dumps(env))
    assert clone.backend.path == str(checkpoint) and clone.backend.model is not env.backend.model
    action = reference_action(env.scene)
    assert clone.step(action)[1] == pytest.approx(env.step(action)[1])


def test_missing_checkpoint_fails_at_construction(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        TransferFunctionEnv(
            scenes=SCENE, reward_backend="reward_model", reward_model_path=str(tmp_path / "no.pt")
        )


def test_incompatible_checkpoint_fails_at_construction(tmp_path):
    path = tmp_path / "rm16.pt"
    torch.manual_seed(0)
    save_checkpoint(path, RewardModel(model_config("tiny", histogram_bins=16)))
    with pytest.raises(CheckpointError, match="histogram_bins=16"):
        TransferFunctionEnv(
            scenes=SCENE, reward_backend="reward_model", reward_model_path=str(path)
        )
    env = TransferFunctionEnv(
        scenes=SCENE, histogram_bins=16, reward_backend="reward_model", reward_model_path=str(path)
    )
    env.reset(seed=0)
    assert np.isfinite(env.step(env.action_space.sample())[1])


def test_backend_checks_the_recorded_working_size(checkpoint):
    backend = RewardModelBackend(str(checkpoint), working_size=64)  # trained at the default
    assert pickle.loads(pickle.dumps(backend)).working_size == 64
    with pytest.raises(
        CheckpointError, match="trained at working_size=64, expected working_size=32"
    ):
        RewardModelBackend(str(checkpoint), working_size=32)
