"""Tests of the Bradley-Terry reward model: config, loss, model, data, training, checkpoints."""

from __future__ import annotations

import math
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from reward_models.checkpoint import (
    CHECKPOINT_VERSION,
    CheckpointError,
    heldout_records,
    load_checkpoint,
    read_checkpoint_info,
    save_checkpoint,
)
from reward_models.config import EvalConfig, RewardModelConfig, TrainConfig, model_config
from reward_models.data import PreferenceTensors
from reward_models.loss import bradley_terry_loss
from reward_models.model import RewardEnsemble, RewardModel, action_masks
from reward_models.train import pair_metrics, scene_batches, train_reward_model
from tests.conftest import TINY_BINS, TINY_WORKING_SIZE
from tfgym.observation import ObservationMismatchError, ObservationSettings
from tfgym.oracle import make_labeler
from tfgym.preferences import Preference, PreferenceStore
from tfgym.scoring import SceneScorer, ScoringSettings

BINS = TINY_BINS  # 16: small and fast
REPO = Path(__file__).resolve().parents[1]


def simulated_preferences(
    scorer: SceneScorer,
    actions: np.ndarray,
    n_pairs: int,
    rng: np.random.Generator,
    *,
    labeler: str = "perfect",
) -> list[Preference]:
    """``n_pairs`` answers of a simulated labeler among ``actions``, stored (with ids).

    Each record carries the scorer's observation settings, as collection writes them.
    """
    scores = scorer.oracle_scores(actions)
    i, j = rng.integers(0, len(actions), (2, 2 * n_pairs))
    i, j = i[i != j][:n_pairs], j[i != j][:n_pairs]
    mu = make_labeler(labeler).compare(scores[i], scores[j], rng)
    obs = ObservationSettings.from_scene(scorer.scene, n_vertices=scorer.settings.n_vertices)
    prefs = [
        Preference(scorer.name, actions[a], actions[b], float(m), f"sim:{labeler}", observation=obs)
        for a, b, m in zip(i, j, mu, strict=True)
        if np.isfinite(m)
    ]
    with PreferenceStore(":memory:") as store:
        store.add_many(prefs)
        return store.records()


# -- config ------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [TrainConfig, EvalConfig])
def test_every_config_field_has_one_line_help(cls) -> None:
    for f in fields(cls):
        text = f.metadata.get("help")
        assert isinstance(text, str) and text and "\n" not in text, f.name
        assert not text.endswith("."), f.name
    flags = {f.name: f.metadata.get("flag") for f in fields(TrainConfig)}
    assert flags["ensemble_size"] == "--ensemble" and flags["num_threads"] == "--threads"
    assert flags["histogram_bins"] == "--bins" and flags["epochs"] is None


def test_train_config_validation_and_architecture() -> None:
    config = TrainConfig(variant="tiny-mask")
    mc = config.architecture(histogram_bins=32, n_vertices=5)
    assert (mc.variant, mc.histogram_bins, mc.n_vertices) == ("mask", 32, 5)
    assert config.requested_bins is None and config.requested_vertices is None
    explicit = TrainConfig(model=model_config("tiny", histogram_bins=16))
    assert explicit.requested_bins == 16 and explicit.requested_vertices == 4
    with pytest.raises(ValueError, match="unknown reward model preset 'huge'"):
        TrainConfig(variant="huge")
    with pytest.raises(ValueError, match="contradicts the model's histogram_bins=16"):
        TrainConfig(histogram_bins=32, model=model_config("tiny", histogram_bins=16))
    with pytest.raises(ValueError, match="pairs must be one of"):
        EvalConfig(pairs="some")


# -- loss ------------------------------------------------------------------------------------
def test_loss_matches_hand_computed_value_with_ties() -> None:
    r_a = torch.tensor([2.0, 0.0, 1.0, -1.0])
    r_b = torch.tensor([0.0, 1.0, 1.0, 1.0])
    mu = torch.tensor([1.0, 1.0, 0.5, 0.0])

    def log_sig(x: float) -> float:
        return -math.log1p(math.exp(-x))

    expected = (
        -(
            log_sig(2.0)  # a chosen, diff 2
            + log_sig(-1.0)  # a chosen, diff -1
            + 0.5 * log_sig(0.0)
            + 0.5 * log_sig(0.0)  # tie, diff 0
            + log_sig(2.0)  # b chosen, diff -2
        )
        / 4
    )
    out = bradley_terry_loss(r_a, r_b, mu)
    assert out.loss.item() == pytest.approx(expected, rel=1e-6)
    assert out.n_unambiguous == 3
    assert out.accuracy.item() == pytest.approx(2 / 3)  # the second pair is ranked wrongly


def test_loss_tie_pulls_rewards_together_and_is_stable() -> None:
    r_a = torch.tensor([3.0], requires_grad=True)
    out = bradley_terry_loss(r_a, torch.tensor([0.0]), torch.tensor([0.5]))
    out.loss.backward()
    assert r_a.grad is not None and r_a.grad.item() > 0  # descent lowers r_a towards r_b
    assert math.isnan(out.accuracy.item())  # no unambiguous pair
    huge = bradley_terry_loss(torch.tensor([1e4]), torch.tensor([-1e4]), torch.tensor([0.0]))
    assert huge.loss.item() == pytest.approx(2e4)  # no overflow to inf


def test_loss_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="must be \\(batch,\\) of one size"):
        bradley_terry_loss(torch.zeros(3), torch.zeros(2), torch.zeros(3))


# -- model ------------------------------------------------------------------------------------
def test_config_presets_and_validation() -> None:
    assert model_config("paper").dropout == 0.5
    with pytest.raises(ValueError, match="unknown reward model preset 'big'; valid"):
        model_config("big")
    with pytest.raises(ValueError, match="unknown reward model variant"):
        RewardModelConfig(variant="fancy")
    with pytest.raises(ValueError, match="too small"):
        RewardModelConfig(histogram_bins=8)


def test_action_masks_match_the_tf_lut(tiny_scene, rng) -> None:
    from tfgym.transfer_function import TransferFunction

    actions = rng.uniform(-1, 1, (5, 8)).astype(np.float32)
    masks = action_masks(actions, BINS, subrows=4)
    for action, mask in zip(actions, masks, strict=True):
        lut = TransferFunction.from_action(action, opacity=1.0).lut(tiny_scene.ranges)
        np.testing.assert_allclose(mask, lut[..., 3], atol=1e-5)


@pytest.mark.parametrize("variant", ["tiny", "tiny-mask"])
def test_predict_shape_dtype_and_determinism(variant, tiny_scene, rng) -> None:
    torch.manual_seed(0)
    model = RewardModel(model_config(variant, histogram_bins=BINS))
    model.train()
    actions = rng.uniform(-1, 1, (37, 8)).astype(np.float32)
    first = model.predict(tiny_scene.observation, actions)
    assert first.shape == (37,) and first.dtype == np.float64
    np.testing.assert_array_equal(first, model.predict(tiny_scene.observation, actions))
    assert model.training  # predict restores the mode
    # in train mode, dropout makes forward passes differ
    jh = torch.as_tensor(tiny_scene.observation[None])
    a = torch.as_tensor(actions)
    assert not torch.equal(model(jh, a), model(jh, a))


@pytest.mark.parametrize("variant", ["tiny", "tiny-mask"])
def test_scene_branch_once_equals_per_sample_forward(variant, rng) -> None:
    torch.manual_seed(1)
    model = RewardModel(model_config(variant, histogram_bins=BINS)).eval()
    obs = rng.integers(0, 256, (4, 1, BINS, BINS), dtype=np.uint8)
    actions = rng.uniform(-1, 1, (12, 8)).astype(np.float32)
    # scenes interleaved, of unequal counts, and scene 2 without actions
    index = rng.permutation(np.repeat([0, 1, 3], [5, 3, 4]))

    def grads(out: torch.Tensor) -> list[torch.Tensor]:
        model.zero_grad()
        out.square().sum().backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    per_sample = model(torch.as_tensor(obs[index]), torch.as_tensor(actions))
    shared = model(
        torch.as_tensor(obs), torch.as_tensor(actions), scene_index=torch.as_tensor(index)
    )
    torch.testing.assert_close(per_sample, shared, rtol=1e-5, atol=1e-5)
    for g_one, g_shared in zip(grads(per_sample), grads(shared), strict=True):
        torch.testing.assert_close(g_one, g_shared, rtol=1e-4, atol=1e-5)
    for s in (0, 1, 3):
        rows = index == s
        np.testing.assert_allclose(
            model.predict(obs[s], actions[rows]),
            per_sample[rows].detach().numpy(),
            rtol=1e-5,
            atol=1e-5,
        )


def test_forward_keeps_gradients_and_checks_jh_count(rng) -> None:
    model = RewardModel(model_config("tiny-mask", histogram_bins=BINS))
    jh = torch.zeros(1, 1, BINS, BINS)
    out = model(jh, torch.as_tensor(rng.uniform(-1, 1, (4, 8)), dtype=torch.float32))
    assert out.shape == (4,) and out.requires_grad
    with pytest.raises(ValueError, match="jh has 2 images for 4 actions"):
        model(torch.zeros(2, 1, BINS, BINS), torch.zeros(4, 8))


def test_ensemble_mean_and_std(tiny_scene, rng) -> None:
    torch.manual_seed(0)
    cfg = model_config("tiny", histogram_bins=BINS)
    ensemble = RewardEnsemble([RewardModel(cfg) for _ in range(3)])
    actions = rng.uniform(-1, 1, (6, 8))
    each = ensemble.predict_all(tiny_scene.observation, actions)
    assert each.shape == (3, 6)
    np.testing.assert_allclose(ensemble.predict(tiny_scene.observation, actions), each.mean(0))
    std = ensemble.predict_std(tiny_scene.observation, actions)
    assert std.shape == (6,) and np.all(std > 0)
    with pytest.raises(ValueError, match="share one RewardModelConfig"):
        RewardEnsemble(
            [RewardModel(cfg), RewardModel(model_config("tiny-mask", histogram_bins=16))]
        )


# -- data from the oracle ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def oracle_data() -> tuple[PreferenceTensors, np.ndarray, np.ndarray, np.ndarray]:
    """600 oracle-labelled pairs of 60 actions on the tiny scene, and 300 scored test actions."""
    from tests.conftest import make_tiny_volume
    from tfgym.oracle import Oracle, make_labeler
    from tfgym.renderer import Renderer
    from tfgym.scene import Scene
    from tfgym.transfer_function import TransferFunction

    scene = Scene.from_volume(
        make_tiny_volume(), working_size=TINY_WORKING_SIZE, histogram_bins=BINS
    )
    renderer = Renderer(scene, image_size=24)
    rng = np.random.default_rng(0)

    def score(actions: np.ndarray) -> np.ndarray:
        luts = np.stack([TransferFunction.from_action(a).lut(scene.ranges) for a in actions])
        return Oracle().evaluate(renderer.render(luts), scene)["score"]

    actions = rng.uniform(-1, 1, (60, 8)).astype(np.float32)
    scores = score(actions)
    pairs = rng.choice(60, size=(600, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    mu = make_labeler("perfect").compare(scores[pairs[:, 0]], scores[pairs[:, 1]], rng)
    data = PreferenceTensors(
        ("tiny",),
        scene.observation[None],
        np.zeros(len(pairs), np.int64),
        actions[pairs[:, 0]],
        actions[pairs[:, 1]],
        mu.astype(np.float32),
    )
    test_actions = rng.uniform(-1, 1, (300, 8)).astype(np.float32)
    return data, scene.observation, test_actions, score(test_actions)


@pytest.mark.parametrize("variant", ["tiny", "tiny-mask"])
def test_training_changes_parameters_and_lowers_loss(variant, oracle_data, tmp_path) -> None:
    data = oracle_data[0]
    cfg = TrainConfig(epochs=12, batch_size=64, model=model_config(variant, histogram_bins=BINS))
    torch.manual_seed(cfg.seed)
    initial = [
        p.detach().clone()
        for p in RewardModel(model_config(variant, histogram_bins=BINS)).parameters()
    ]
    result = train_reward_model(data, cfg, log_dir=tmp_path / "tb", progress=False)
    assert isinstance(result.model, RewardModel)
    changed = [
        not torch.equal(a, b) for a, b in zip(initial, result.model.parameters(), strict=True)
    ]
    assert all(changed)
    first, last = result.history[0], result.history[-1]
    assert last.loss < first.loss - 0.05
    assert last.val_loss < first.val_loss
    assert len(result.history) == 12 and len(result.validation) == round(len(data) * 0.1)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_training_is_seeded(oracle_data) -> None:
    data, obs, test_actions, _ = oracle_data
    cfg = TrainConfig(epochs=2, model=model_config("tiny", histogram_bins=BINS), seed=3)
    one = train_reward_model(data, cfg, progress=False)
    two = train_reward_model(data, cfg, progress=False)
    np.testing.assert_array_equal(
        one.model.predict(obs, test_actions), two.model.predict(obs, test_actions)
    )
    assert [h.loss for h in one.history] == [h.loss for h in two.history]


def test_mask_model_learns_held_out_preferences(oracle_data) -> None:
    data = oracle_data[0]
    model = model_config("tiny-mask", histogram_bins=BINS)
    result = train_reward_model(
        data, TrainConfig(epochs=30, batch_size=64, model=model), progress=False
    )
    assert result.history[0].val_accuracy < 0.7
    assert result.history[-1].val_accuracy > 0.75  # perfect labeler, 57 held-out pairs


def test_ensemble_training_uses_bootstrap_members(oracle_data, tmp_path) -> None:
    data, obs, test_actions, _ = oracle_data
    cfg = TrainConfig(epochs=2, ensemble_size=2, model=model_config("tiny", histogram_bins=BINS))
    result = train_reward_model(data, cfg, log_dir=tmp_path, progress=False)
    assert isinstance(result.model, RewardEnsemble) and len(result.model) == 2
    assert {h.member for h in result.history} == {0, 1}
    assert np.all(result.model.predict_std(obs, test_actions) > 0)
    assert (tmp_path / "member-1").is_dir()


# -- many scenes: scene-grouped minibatches --------------------------------------------------------
@pytest.mark.parametrize("per_batch", [0, 1, 2, 3], ids=lambda k: f"scenes_per_batch={k}")
def test_scene_batches_cover_every_pair_once_per_epoch(per_batch) -> None:
    scene_index = np.random.default_rng(9).permutation(np.repeat(range(5), [1, 40, 7, 129, 23]))
    rng = np.random.default_rng(0)
    epochs = [scene_batches(scene_index, 16, scenes_per_batch=per_batch, rng=rng) for _ in range(2)]
    for batches in epochs:
        everything = np.concatenate(batches)
        np.testing.assert_array_equal(np.sort(everything), np.arange(len(scene_index)))
        assert all(0 < len(b) <= 16 for b in batches)
        if per_batch:
            assert max(len(np.unique(scene_index[b])) for b in batches) <= per_batch
            # at most one part-filled chunk per scene beyond the full batches
            assert len(batches) <= math.ceil(len(scene_index) / 16) + 5
        else:  # unrestricted: plain random batches, which mix scenes
            assert [len(b) for b in batches] == [16] * 12 + [8]
            assert max(len(np.unique(scene_index[b])) for b in batches) >= 3
    assert not np.array_equal(np.concatenate(epochs[0]), np.concatenate(epochs[1]))
    again = scene_batches(scene_index, 16, scenes_per_batch=per_batch, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(np.concatenate(again), np.concatenate(epochs[0]))
    assert scene_batches(np.zeros(0, np.int64), 16, scenes_per_batch=per_batch, rng=rng) == []


def test_scenes_per_batch_is_validated() -> None:
    for bad in (-1, 9):
        with pytest.raises(
            ValueError, match=f"scenes_per_batch must be in \\[0, batch_size=8\\], got {bad}"
        ):
            TrainConfig(batch_size=8, scenes_per_batch=bad)
        with pytest.raises(ValueError, match="0 <= scenes_per_batch <= batch_size"):
            scene_batches(
                np.zeros(3, np.int64), 8, scenes_per_batch=bad, rng=np.random.default_rng()
            )


@pytest.fixture(scope="module")
def multi_scene_data() -> PreferenceTensors:
    """700 perfectly labeled pairs on 6 synthetic scenes whose best polygon differs.

    Each scene's JH is a bright blob at its own place on a dim background; an action's true
    reward is how much blob its polygon covers minus how much background it covers, so the
    same polygon is good on one scene and bad on another.
    """
    rng = np.random.default_rng(0)
    n_scenes, n_actions, n_pairs = 6, 60, 700
    grid = (np.arange(BINS) + 0.5) / BINS * 2 - 1
    rows, cols = np.meshgrid(grid, grid, indexing="ij")
    centres = rng.uniform(-0.6, 0.6, (n_scenes, 2))
    blobs = np.exp(-((cols - centres[:, :1, None]) ** 2 + (rows - centres[:, 1:, None]) ** 2) / 0.1)
    obs = (40 + 215 * blobs).astype(np.uint8)[:, None]
    centre_actions = rng.uniform(-0.7, 0.7, (n_actions, 1, 2))
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * rng.uniform(
        0.1, 0.4, (n_actions, 1, 1)
    )
    actions = (centre_actions + corners).reshape(n_actions, 8).clip(-1, 1).astype(np.float32)
    masks = action_masks(actions, BINS)
    truth = np.einsum("aij,sij->sa", masks, blobs - 0.3)
    scene = rng.integers(0, n_scenes, n_pairs)
    i, j = rng.integers(0, n_actions, (2, n_pairs))
    mu = (truth[scene, i] > truth[scene, j]).astype(np.float32)
    mu[truth[scene, i] == truth[scene, j]] = 0.5
    names = tuple(f"blob-{k}" for k in range(n_scenes))
    return PreferenceTensors(names, obs, scene, actions[i], actions[j], mu)


@pytest.mark.parametrize("per_batch", [1, 0], ids=["grouped", "mixed"])
def test_multi_scene_training_learns_and_is_seeded(per_batch, multi_scene_data) -> None:
    data = multi_scene_data
    cfg = TrainConfig(
        epochs=25,
        batch_size=64,
        scenes_per_batch=per_batch,
        val_fraction=0.2,
        model=model_config("tiny-mask", histogram_bins=BINS),
    )
    result = train_reward_model(data, cfg, progress=False)
    assert isinstance(result.model, RewardModel)
    val = result.validation
    assert len(set(val.scene_index.tolist())) == 6
    accuracy = pair_metrics(result.model, val)[1]
    assert accuracy == result.history[-1].val_accuracy > 0.85  # chance 0.5; 140 held out
    # it reads the scene: the same pairs judged on another scene's JH are mostly wrong
    elsewhere = replace(val, scene_index=(val.scene_index + 3) % 6)
    assert pair_metrics(result.model, elsewhere)[1] < accuracy - 0.15
    again = train_reward_model(data, cfg, progress=False)
    assert [h.loss for h in again.history] == [h.loss for h in result.history]
    obs, actions = data.observations[2], data.action_a[:20]
    np.testing.assert_array_equal(
        result.model.predict(obs, actions), again.model.predict(obs, actions)
    )
    other = train_reward_model(
        data, replace(cfg, epochs=1, scenes_per_batch=1 - per_batch), progress=False
    )
    assert other.history[0].loss != result.history[0].loss  # the batching is in effect


def test_multi_scene_ensemble_trains_saves_and_loads(multi_scene_data, tmp_path) -> None:
    data = multi_scene_data
    cfg = TrainConfig(
        epochs=2, ensemble_size=3, model=model_config("tiny-mask", histogram_bins=BINS)
    )
    result = train_reward_model(data, cfg, progress=False)
    assert isinstance(result.model, RewardEnsemble) and len(result.model) == 3
    assert [h.member for h in result.history] == [0, 0, 1, 1, 2, 2]
    path = result.save(tmp_path / "ensemble.pt")
    info = read_checkpoint_info(path)
    assert info.train_config is not None and info.n_members == 3
    assert info.train_config["ensemble_size"] == 3
    assert info.train_config["scenes_per_batch"] == 1
    loaded = load_checkpoint(path, expect={"histogram_bins": BINS})
    assert isinstance(loaded, RewardEnsemble) and len(loaded) == 3
    obs, actions = data.observations[1], data.action_b[:30]
    np.testing.assert_array_equal(
        loaded.predict_all(obs, actions), result.model.predict_all(obs, actions)
    )
    assert np.all(loaded.predict_std(obs, actions) > 0)  # bootstrap members differ


# -- preference records ---------------------------------------------------------------------------
def test_from_records_with_real_preferences(rng) -> None:
    from tfgym.scene import load_scene

    a, b = rng.uniform(-1, 1, (2, 8)).round(3)
    records = [
        Preference("phantom-00", a, b, mu=1, labeler="sim:noisy", id=11),
        Preference("headsq", b, a, mu=0.5, labeler="bob"),
        Preference("phantom-00", b, a, mu=0, labeler="sim:noisy", id=13),
    ]
    data = PreferenceTensors.from_records(records, working_size=32, histogram_bins=BINS)
    assert data.scene_names == ("phantom-00", "headsq")
    assert data.observations.shape == (2, 1, BINS, BINS)
    np.testing.assert_array_equal(
        data.observations[1, 0],
        load_scene("headsq", working_size=32, histogram_bins=BINS).observation[0],
    )
    assert data.scene_index.tolist() == [0, 1, 0]
    assert data.mu.tolist() == [1.0, 0.5, 0.0]
    assert data.record_ids.tolist() == [11, -1, 13] and data.working_size == 32
    np.testing.assert_allclose(data.action_a[0], a, rtol=1e-6)
    with pytest.raises(ValueError, match="no usable preference records"):
        PreferenceTensors.from_records([])
    with pytest.raises(ObservationMismatchError, match=r"8 numbers \(4 vertices\); n_vertices=5"):
        PreferenceTensors.from_records(records, working_size=32, n_vertices=5)


def test_from_records_rebuilds_the_labeled_observation(rng) -> None:
    scorer = SceneScorer("phantom-00", ScoringSettings(working_size=32, histogram_bins=BINS))
    obs = ObservationSettings.from_scene(scorer.scene, n_vertices=4)
    a, b = rng.uniform(-1, 1, (2, 8)).round(3)
    records = [Preference("phantom-00", a, b, mu=1, labeler="t", observation=obs)]
    data = PreferenceTensors.from_records(records)  # nothing named: the record decides
    assert data.working_size == 32 and data.histogram_bins == BINS
    np.testing.assert_array_equal(data.observations[0], scorer.observation)
    changed = replace(obs, content_hash="sha256:" + "0" * 64)
    with pytest.raises(ObservationMismatchError, match="content_hash"):
        PreferenceTensors.from_records([replace(records[0], observation=changed)])


def test_subsets_carry_record_ids(oracle_data) -> None:
    data = oracle_data[0]
    data = replace(data, record_ids=np.arange(len(data)) + 100)
    train, val = data.split(0.2, np.random.default_rng(5))
    assert sorted([*train.record_ids, *val.record_ids]) == list(range(100, 100 + len(data)))
    boot = train.bootstrap(np.random.default_rng(1))
    assert set(boot.record_ids) <= set(train.record_ids)
    np.testing.assert_array_equal(boot.action_a, data.action_a[boot.record_ids - 100])


def test_split_and_bootstrap_are_seeded(oracle_data) -> None:
    data = oracle_data[0]
    train, val = data.split(0.2, np.random.default_rng(5))
    _train2, val2 = data.split(0.2, np.random.default_rng(5))
    np.testing.assert_array_equal(val.action_a, val2.action_a)
    assert len(train) + len(val) == len(data) and len(val) == round(0.2 * len(data))
    boot = data.bootstrap(np.random.default_rng(1))
    assert len(boot) == len(data)
    with pytest.raises(ValueError, match="val_fraction must be in"):
        data.split(1.0, np.random.default_rng(0))


# -- checkpoints -----------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["tiny", "tiny-mask"])
def test_checkpoint_round_trip(variant, tmp_path, tiny_scene, rng) -> None:
    torch.manual_seed(0)
    model = RewardModel(model_config(variant, histogram_bins=BINS))
    path = save_checkpoint(tmp_path / "sub" / "rm.pt", model, TrainConfig(model=model.config))
    loaded = load_checkpoint(path, expect={"histogram_bins": BINS, "n_vertices": 4})
    assert isinstance(loaded, RewardModel) and loaded.config == model.config
    assert not loaded.training
    actions = rng.uniform(-1, 1, (9, 8))
    np.testing.assert_array_equal(
        loaded.predict(tiny_scene.observation, actions),
        model.predict(tiny_scene.observation, actions),
    )
    ensemble = RewardEnsemble([model, RewardModel(model.config)])
    loaded_e = load_checkpoint(save_checkpoint(tmp_path / "e.pt", ensemble))
    assert isinstance(loaded_e, RewardEnsemble) and len(loaded_e) == 2
    np.testing.assert_array_equal(
        loaded_e.predict_std(tiny_scene.observation, actions),
        ensemble.predict_std(tiny_scene.observation, actions),
    )
    info = read_checkpoint_info(path)
    assert info.model_config == model.config and info.n_members == 1
    assert info.train_config is not None
    assert info.train_config["model"] == model.config.to_dict()
    assert info.validation_ids is None  # not given
    assert info.observation == {"working_size": None, "histogram_bins": BINS, "n_vertices": 4}
    assert read_checkpoint_info(tmp_path / "e.pt").n_members == 2


def test_checkpoint_errors(tmp_path) -> None:
    model = RewardModel(model_config("tiny", histogram_bins=BINS))
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="is not a tfgym reward model checkpoint"):
        load_checkpoint(junk)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="no format marker"):
        load_checkpoint(foreign)
    path = save_checkpoint(tmp_path / "rm.pt", model)
    with pytest.raises(CheckpointError, match="has histogram_bins=16, expected histogram_bins=64"):
        load_checkpoint(path, expect={"histogram_bins": 64})
    with pytest.raises(CheckpointError, match="n_vertices=4, expected n_vertices=5"):
        load_checkpoint(path, expect={"n_vertices": 5})
    state = torch.load(path, weights_only=True)
    newer = tmp_path / "newer.pt"
    torch.save({**state, "format_version": CHECKPOINT_VERSION + 1}, newer)
    with pytest.raises(CheckpointError, match="newer than this tfgym"):
        load_checkpoint(newer)
    mismatch = tmp_path / "mismatch.pt"
    other = model_config("tiny", histogram_bins=32).to_dict()
    torch.save({**state, "model_config": {**other, "conv_channels": (4, 8, 8)}}, mismatch)
    with pytest.raises(CheckpointError, match="does not fit its recorded config"):
        load_checkpoint(mismatch)
    bad_cfg = tmp_path / "bad_cfg.pt"
    torch.save({**state, "model_config": {**state["model_config"], "variant": "x"}}, bad_cfg)
    with pytest.raises(CheckpointError, match="invalid reward model config"):
        load_checkpoint(bad_cfg)
    assert issubclass(CheckpointError, ValueError)


def test_version_1_checkpoints_still_load(tmp_path, tiny_scene, rng) -> None:
    torch.manual_seed(0)
    model = RewardModel(model_config("tiny", histogram_bins=BINS))
    state = torch.load(save_checkpoint(tmp_path / "v2.pt", model), weights_only=True)
    del state["observation"], state["validation_ids"]
    old_config = {"seed": 3, "val_fraction": 0.25, "working_size": 32}
    torch.save({**state, "format_version": 1, "train_config": old_config}, tmp_path / "v1.pt")
    loaded = load_checkpoint(tmp_path / "v1.pt")
    actions = rng.uniform(-1, 1, (5, 8))
    np.testing.assert_array_equal(
        loaded.predict(tiny_scene.observation, actions),
        model.predict(tiny_scene.observation, actions),
    )
    info = read_checkpoint_info(tmp_path / "v1.pt")
    assert info.format_version == 1 and info.validation_ids is None and info.observation is None
    assert info.working_size == 32  # from the old training config
    # without ids, the held-out records are the replayed seeded split
    a = rng.uniform(-1, 1, (8, 8))
    records = [Preference("headsq", x, -x, mu=1, labeler="t") for x in a]
    order = np.random.default_rng(3).permutation(8)
    assert heldout_records(records, info) == [records[i] for i in sorted(order[:2])]


# -- observation settings and held-out records -----------------------------------------------
@pytest.fixture(scope="module")
def records_at_32() -> list[Preference]:
    """300 stored preferences labeled at working size 32 and 16 histogram bins."""
    scorer = SceneScorer(
        "phantom-00", ScoringSettings(working_size=32, histogram_bins=BINS, image_size=32)
    )
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (40, 8)).astype(np.float32)
    return simulated_preferences(scorer, actions, 300, rng)


def test_training_follows_the_labeled_observation(records_at_32, tmp_path) -> None:
    from tfgym.scene import load_scene

    config = TrainConfig(epochs=1, variant="tiny")  # neither working size nor bins named
    result = train_reward_model(records_at_32, config, progress=False)
    assert result.config.working_size == 32 and result.config.histogram_bins == BINS
    assert result.model.config.histogram_bins == BINS
    expected = load_scene("phantom-00", working_size=32, histogram_bins=BINS).observation
    np.testing.assert_array_equal(result.train.observations[0], expected)
    info = read_checkpoint_info(result.save(tmp_path / "rm.pt"))
    assert info.observation == {"working_size": 32, "histogram_bins": BINS, "n_vertices": 4}
    assert info.train_config is not None
    assert info.working_size == 32 and info.train_config["working_size"] == 32
    assert info.format_version == CHECKPOINT_VERSION == 2


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"working_size": 64}, "working_size"),
        ({"histogram_bins": 64}, "histogram_bins"),
        ({"model": model_config("tiny")}, "histogram_bins"),  # an explicit model: 64 bins
    ],
)
def test_naming_other_settings_than_labeled_raises(records_at_32, override, field) -> None:
    labeled = 32 if field == "working_size" else BINS
    config = TrainConfig(epochs=1, variant="tiny", **override)
    with pytest.raises(ObservationMismatchError, match=f"{field}={labeled}.*{field}=64"):
        train_reward_model(records_at_32, config, progress=False)


def test_checkpoint_stores_validation_ids_for_heldout_records(records_at_32, tmp_path) -> None:
    config = TrainConfig(epochs=1, variant="tiny", val_fraction=0.2, seed=1)
    result = train_reward_model(records_at_32, config, progress=False)
    info = read_checkpoint_info(result.save(tmp_path / "rm.pt"))
    ids = result.validation.record_ids
    assert len(ids) == round(0.2 * len(records_at_32)) and min(ids) >= 1
    assert info.validation_ids == tuple(ids.tolist()) == result.info.validation_ids
    # the ids decide, not the order: shuffled records and records added since
    shuffled = list(np.random.default_rng(2).permutation(np.array(records_at_32, dtype=object)))
    extra = replace(records_at_32[0], id=10_000)
    held = heldout_records([extra, *shuffled], info)
    assert sorted(r.id for r in held) == sorted(ids.tolist())
    by_id = {r.id: r for r in records_at_32}
    np.testing.assert_array_equal(
        np.array([by_id[i].action_a for i in ids], np.float32), result.validation.action_a
    )
    with pytest.raises(ValueError, match=r"hold \d+ of the checkpoint's 60 validation pairs"):
        heldout_records(records_at_32[:100], info)
    none_held = train_reward_model(records_at_32, replace(config, val_fraction=0.0), progress=False)
    with pytest.raises(ValueError, match="no validation split"):
        heldout_records(records_at_32, none_held.info)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"garbage", "not a torch file"),
        (b"", "not a torch file"),
        ("pickle", "objects other than tensors and plain data"),
    ],
    ids=["text", "empty", "arbitrary-pickle"],
)
def test_foreign_checkpoint_error_never_advises_unsafe_loading(tmp_path, content, reason) -> None:
    path = tmp_path / "model.pt"
    if content == "pickle":
        torch.save({"array": np.zeros(3)}, path)  # a numpy object: refused by weights_only
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=reason) as info:
        load_checkpoint(path)
    assert "weights_only" not in str(info.value)
