"""The "reward_model" backend: a trained checkpoint drives the env's reward."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from reward_models.backend import DEFAULT_CACHE_SIZE, RewardModelBackend
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


# -- the scene-feature cache ------------------------------------------------------------------
SCENES = ("phantom-00", "phantom-01", "phantom-02")


@pytest.fixture(scope="module")
def observations():
    """The histograms of three phantoms (default settings)."""
    from tfgym.scene import load_scene

    return {name: load_scene(name).observation for name in SCENES}


def _random_checkpoint(path, preset: str, members: int = 1, seed: int = 0):
    """An untrained model (or ensemble) with random weights: dropout on, no training needed."""
    from reward_models.model import RewardEnsemble

    torch.manual_seed(seed)
    models = [RewardModel(model_config(preset)) for _ in range(members)]
    return save_checkpoint(path, models[0] if members == 1 else RewardEnsemble(models))


@pytest.mark.parametrize(
    ("preset", "members"),
    [("tiny-mask", 1), ("tiny", 1), ("mask", 1), ("tiny-mask", 3), ("tiny", 2)],
    ids=["tiny-mask", "paper-tiny", "mask", "mask-ensemble3", "paper-ensemble2"],
)
def test_cached_rewards_equal_predict(tmp_path, observations, monkeypatch, preset, members):
    from reward_models import backend as backend_module
    from reward_models import model as model_module
    from reward_models.model import RewardEnsemble

    path = _random_checkpoint(tmp_path / "rm.pt", preset, members)
    backend = RewardModelBackend(str(path))
    assert isinstance(backend.model, RewardEnsemble) == (members > 1)
    # small chunks, so that chunking is exercised on both sides
    monkeypatch.setattr(backend_module, "PREDICT_CHUNK", 7)
    monkeypatch.setattr(model_module, "PREDICT_CHUNK", 7)
    rng = np.random.default_rng(0)
    for _ in range(2):  # first round fills the cache, second reads it
        for obs in observations.values():
            for actions in (rng.uniform(-1.2, 1.2, (20, 8)), rng.uniform(-1, 1, 8)):
                got = backend.rewards(obs, actions)
                want = backend.model.predict(obs, actions)
                assert got.dtype == np.float64 and got.shape == want.shape
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert backend.cache_info() == (3 * 2 * 2 - 3, 3, DEFAULT_CACHE_SIZE, 3)
    assert backend.rewards(observations[SCENES[0]], np.zeros((0, 8))).shape == (0,)


def test_cache_is_a_bounded_lru(tmp_path, observations):
    path = _random_checkpoint(tmp_path / "rm.pt", "tiny-mask")
    backend = RewardModelBackend(str(path), cache_size=2)
    a, b, c = (observations[n] for n in SCENES)
    action = np.zeros((1, 8), np.float32)
    for obs in (a, b, a, c):  # c evicts b, the least recently used
        backend.rewards(obs, action)
    assert backend.cache_info() == (1, 3, 2, 2)
    backend.rewards(a, action)  # still held
    backend.rewards(b, action)  # evicted: computed again
    assert backend.cache_info() == (2, 4, 2, 2)
    # the key is the observation's content, not the array object
    backend.rewards(b.copy(), action)
    assert backend.cache_info().hits == 3
    backend.clear_cache()
    assert backend.cache_info() == (0, 0, 2, 0)


def test_no_cache_calls_predict(tmp_path, observations, monkeypatch):
    path = _random_checkpoint(tmp_path / "rm.pt", "tiny-mask")
    backend = RewardModelBackend(str(path), cache_size=0)
    calls = []
    predict = backend.model.predict
    monkeypatch.setattr(
        backend.model, "predict", lambda obs, acts: calls.append(1) or predict(obs, acts)
    )
    obs = observations[SCENES[0]]
    backend.rewards(obs, np.zeros((2, 8)))
    assert calls == [1] and backend.cache_info() == (0, 0, 0, 0)
    backend.cache_size = 4  # the attribute switches the cache on
    backend.rewards(obs, np.zeros((2, 8)))
    assert calls == [1] and backend.cache_info() == (0, 1, 4, 1)


def test_features_are_computed_in_eval_mode(tmp_path, observations):
    """A model left in training mode (dropout on) still gets predict's eval-mode rewards."""
    path = _random_checkpoint(tmp_path / "rm.pt", "tiny-mask")
    backend = RewardModelBackend(str(path))
    obs = observations[SCENES[1]]
    actions = np.random.default_rng(2).uniform(-1, 1, (16, 8))
    backend.model.train()
    torch.manual_seed(0)
    dropped = backend.model(torch.as_tensor(obs[None]), torch.as_tensor(actions).float())
    assert not np.allclose(dropped.detach().numpy(), backend.model.predict(obs, actions))
    np.testing.assert_allclose(
        backend.rewards(obs, actions), backend.model.predict(obs, actions), rtol=0, atol=1e-6
    )
    np.testing.assert_allclose(  # from the cache, still in training mode
        backend.rewards(obs, actions), backend.model.predict(obs, actions), rtol=0, atol=1e-6
    )
    assert backend.model.training  # the mode it was left in


def test_the_cache_follows_the_weights(tmp_path, observations):
    """New weights in place (load_state_dict, an optimizer step) or a new model: recomputed."""
    path = _random_checkpoint(tmp_path / "rm.pt", "tiny-mask")
    backend = RewardModelBackend(str(path))
    obs, actions = observations[SCENES[0]], np.random.default_rng(3).uniform(-1, 1, (3, 8))

    def check() -> None:
        np.testing.assert_allclose(
            backend.rewards(obs, actions), backend.model.predict(obs, actions), rtol=0, atol=1e-6
        )
        assert backend.cache_info()[:2] == (0, 1)  # the change emptied the cache

    backend.rewards(obs, actions)
    backend.rewards(obs, actions)
    assert backend.cache_info()[:2] == (1, 1)
    backend.model.load_state_dict(RewardModel(model_config("tiny-mask")).state_dict())
    check()
    model = backend.model
    assert isinstance(model, RewardModel)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model(torch.as_tensor(obs[None]), torch.as_tensor(actions).float()).sum().backward()
    optimizer.step()
    model.eval()
    check()
    backend.model = RewardModel(model_config("tiny-mask")).eval()  # a new object
    check()


def test_env_steps_use_the_cache(checkpoint):
    env = TransferFunctionEnv(
        scenes=["phantom-00", "phantom-01"],
        reward_backend="reward_model",
        reward_model_path=str(checkpoint),
        image_size=32,
    )
    for _ in range(6):
        env.reset()
        action = env.action_space.sample()
        reward = env.step(action)[1]
        expected = env.backend.model.predict(env.scene.observation, action)[0]
        assert reward == pytest.approx(expected, abs=1e-6)
    info = env.backend.cache_info()
    assert info.misses <= 2 and info.hits + info.misses == 6


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cache_size": -1}, "cache_size must be an int >= 0"),
        ({"cache_size": 2.5}, "cache_size must be an int >= 0"),
        ({"cache_size": True}, "cache_size must be an int >= 0"),
        ({"num_threads": 0}, "num_threads must be an int >= 1 or None, got 0"),
        ({"num_threads": "2"}, "num_threads must be an int >= 1 or None"),
    ],
    ids=["negative", "float", "bool", "zero-threads", "str-threads"],
)
def test_bad_backend_kwargs_raise(checkpoint, kwargs, match):
    with pytest.raises(ValueError, match=match):
        TransferFunctionEnv(
            scenes=SCENE,
            reward_backend="reward_model",
            reward_model_path=str(checkpoint),
            reward_kwargs=kwargs,
        )


@pytest.mark.parametrize("num_threads", [1, None])
def test_a_cache_miss_runs_with_scoped_threads(checkpoint, observations, monkeypatch, num_threads):
    backend = RewardModelBackend(str(checkpoint), num_threads=num_threads)
    model = backend.model
    assert isinstance(model, RewardModel)
    seen = []
    scene_features = model.scene_features

    def spy(jh):
        seen.append(torch.get_num_threads())
        return scene_features(jh)

    monkeypatch.setattr(model, "scene_features", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        backend.rewards(observations[SCENES[0]], np.zeros((1, 8)))
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(before)
    assert seen == [1 if num_threads == 1 else 2]


def test_cache_settings_survive_pickling(checkpoint):
    backend = RewardModelBackend(str(checkpoint), cache_size=3, num_threads=None)
    clone = pickle.loads(pickle.dumps(backend))
    assert clone.cache_size == 3 and clone.cache_info() == (0, 0, 3, 0)
    assert clone.num_threads is None
