"""Training reward models on preferences.

The protocol is the paper's (Melenberg et al., MIDL 2025): the cross-entropy of eq. (2) on
soft targets (:func:`reward_models.loss.bradley_terry_loss`), Adam with its default learning
rate, batch size 128, 75 epochs, with a seeded held-out validation split. An ensemble of k
members trains each member on a bootstrap resample of the training split.

Minibatches hold the pairs of at most ``TrainConfig.scenes_per_batch`` scenes (default 1;
:func:`scene_batches`): the model's JH branches run once per scene in a batch, so a random
mix of pairs from many scenes would cost one JH pass per scene and step.

Each epoch logs to TensorBoard (``log_dir``; one sub-folder ``member-<i>`` per member of an
ensemble): ``losses/train``, ``losses/val``, ``charts/accuracy``, ``charts/val_accuracy``,
``charts/reward_mean``, ``charts/reward_min``, ``charts/reward_max``.

Training rebuilds the observation each preference was labeled on
(:meth:`reward_models.data.PreferenceTensors.from_records`): preferences collected at
working size 32 train at 32 unless the config names another size, which raises
:class:`tfgym.observation.ObservationMismatchError`. :meth:`TrainResult.save` writes a
checkpoint (:mod:`reward_models.checkpoint`, re-exported here) with the settings trained at
and the record ids of the validation pairs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reward_models.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CheckpointError,
    CheckpointInfo,
    load_checkpoint,
    save_checkpoint,
)
from reward_models.config import TrainConfig
from reward_models.data import PreferenceTensors
from reward_models.loss import bradley_terry_loss
from reward_models.model import RewardEnsemble, RewardModel
from tfgym.observation import ObservationMismatchError

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "CheckpointInfo",
    "EpochStats",
    "TrainConfig",
    "TrainResult",
    "load_checkpoint",
    "pair_metrics",
    "save_checkpoint",
    "scene_batches",
    "train_reward_model",
]

MASK_CACHE_BYTES = 256 * 2**20  # precompute the masks of all distinct actions below this


@dataclass(frozen=True)
class EpochStats:
    """Metrics of one epoch of one member (validation metrics NaN without a validation set)."""

    member: int
    epoch: int
    loss: float
    accuracy: float
    reward_mean: float
    reward_min: float
    reward_max: float
    val_loss: float
    val_accuracy: float
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    """A trained model (or ensemble) and its history.

    Attributes:
        model: the :class:`RewardModel`, or a :class:`RewardEnsemble` when ``ensemble_size > 1``.
        history: per member and epoch, in training order.
        config: the training config as trained: ``histogram_bins``, ``working_size`` and
            ``model`` resolved from the preferences.
        train: the training split; validation: the held-out split.
        seconds: wall time of the training.
    """

    model: RewardModel | RewardEnsemble
    history: tuple[EpochStats, ...]
    config: TrainConfig
    train: PreferenceTensors
    validation: PreferenceTensors
    seconds: float

    @property
    def observation(self) -> dict[str, int | None]:
        """The settings trained at: ``working_size`` (None if unknown), bins, vertices."""
        return {
            "working_size": self.train.working_size,
            "histogram_bins": self.train.histogram_bins,
            "n_vertices": self.train.n_vertices,
        }

    @property
    def info(self) -> CheckpointInfo:
        """What :meth:`save` records besides the weights (e.g. for ``heldout_records``)."""
        return CheckpointInfo(
            model_config=self.model.config,
            train_config=self.config.to_dict(),
            validation_ids=tuple(int(i) for i in self.validation.record_ids),
            observation=self.observation,
            n_members=len(self.model) if isinstance(self.model, RewardEnsemble) else 1,
        )

    def save(self, path: str | Path) -> Path:
        """Write the checkpoint: model, configs, observation settings, validation ids.

        Returns:
            The path written (parent folders are created).
        """
        return save_checkpoint(
            path,
            self.model,
            self.config,
            validation_ids=self.validation.record_ids.tolist(),
            observation=self.observation,
        )


class _Pairs:
    """Torch tensors of a split plus (optionally) the precomputed masks of distinct actions."""

    def __init__(self, data: PreferenceTensors, model: RewardModel, device: str) -> None:
        self.data, self.model, self.device = data, model, device
        self.obs = torch.as_tensor(data.observations, device=device)
        self.scene = torch.as_tensor(data.scene_index, device=device)
        self.a = torch.as_tensor(data.action_a, device=device)
        self.b = torch.as_tensor(data.action_b, device=device)
        self.mu = torch.as_tensor(data.mu, device=device)
        self.masks: torch.Tensor | None = None
        if model.config.variant == "mask" and len(data):
            both = np.concatenate([data.action_a, data.action_b])
            distinct, inverse = np.unique(both, axis=0, return_inverse=True)
            if distinct.nbytes // distinct.shape[1] * data.histogram_bins**2 <= MASK_CACHE_BYTES:
                self.masks = torch.as_tensor(model.masks(distinct), device=device)
                index = torch.as_tensor(inverse.reshape(-1), device=device)
                self.mask_a, self.mask_b = index[: len(data)], index[len(data) :]

    def rewards(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rewards of both actions of the pairs ``idx`` in one forward pass."""
        scenes, inverse = torch.unique(self.scene[idx], return_inverse=True)
        actions = torch.cat([self.a[idx], self.b[idx]])
        masks = None
        if self.model.config.variant == "mask":
            if self.masks is not None:
                masks = self.masks[torch.cat([self.mask_a[idx], self.mask_b[idx]])]
            else:
                masks = torch.as_tensor(self.model.masks(actions.cpu().numpy()), device=self.device)
        r = self.model(self.obs[scenes], actions, masks, scene_index=torch.cat([inverse, inverse]))
        return r[: len(idx)], r[len(idx) :]


def scene_batches(
    scene_index: np.ndarray,
    batch_size: int,
    *,
    scenes_per_batch: int,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """One epoch's minibatches: arrays of pair indices that hold every pair exactly once.

    ``scenes_per_batch=0``: a random permutation cut into batches of ``batch_size`` (pairs of
    all scenes mixed). ``k >= 1``: each scene's pairs are shuffled and cut into near-equal
    chunks of at most ``batch_size // k`` pairs, the chunks of all scenes are shuffled, and
    each batch joins ``k`` consecutive chunks: at most ``k`` scenes and ``batch_size`` pairs
    a batch. A scene's last batch may be smaller (its pairs do not fill whole batches), so
    there can be up to about ``n_scenes / k`` more batches than pairs / ``batch_size``.

    Args:
        scene_index: each pair's scene, int ``(n,)``.
        batch_size: most pairs a batch.
        scenes_per_batch: most scenes a batch (0: no limit).
        rng: the shuffling's generator.

    Returns:
        Index arrays (int64), in training order.

    Raises:
        ValueError: ``batch_size < 1`` or ``scenes_per_batch`` outside ``[0, batch_size]``.

    Example:
        >>> scenes = np.array([0, 0, 0, 1, 1, 1, 1, 2])
        >>> batches = scene_batches(scenes, 4, scenes_per_batch=1, rng=np.random.default_rng(0))
        >>> sorted(sorted(scenes[b].tolist()) for b in batches)
        [[0, 0, 0], [1, 1, 1, 1], [2]]
        >>> sorted(np.concatenate(batches).tolist()) == list(range(8))
        True
    """
    if batch_size < 1 or not 0 <= scenes_per_batch <= batch_size:
        raise ValueError(
            f"need batch_size >= 1 and 0 <= scenes_per_batch <= batch_size, got "
            f"batch_size={batch_size}, scenes_per_batch={scenes_per_batch}"
        )
    scene_index = np.asarray(scene_index)
    n = len(scene_index)
    if scenes_per_batch == 0:
        order = rng.permutation(n)
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if n == 0:
        return []
    chunk = batch_size // scenes_per_batch
    chunks: list[np.ndarray] = []
    by_scene = np.argsort(scene_index, kind="stable")
    counts = np.unique(scene_index, return_counts=True)[1]
    for pairs in np.split(by_scene, np.cumsum(counts)[:-1]):
        chunks += np.array_split(rng.permutation(pairs), -(-len(pairs) // chunk))
    order = rng.permutation(len(chunks))
    return [
        np.concatenate([chunks[c] for c in order[i : i + scenes_per_batch]])
        for i in range(0, len(chunks), scenes_per_batch)
    ]


@torch.no_grad()
def pair_metrics(
    model: RewardModel, data: PreferenceTensors, *, batch_size: int = 1024
) -> tuple[float, float]:
    """Mean loss and accuracy (unambiguous pairs) of a model on pairs, in eval mode.

    Returns:
        ``(loss, accuracy)``; NaN for no pairs (accuracy: no unambiguous pairs).
    """
    if not len(data):
        return math.nan, math.nan
    return _pair_metrics(_Pairs(data, model, str(next(model.parameters()).device)), batch_size)


@torch.no_grad()
def _pair_metrics(pairs: _Pairs, batch_size: int = 1024) -> tuple[float, float]:
    model, data = pairs.model, pairs.data
    if not len(data):
        return math.nan, math.nan
    was_training = model.training
    model.eval()
    loss_sum, correct, n_clear = 0.0, 0.0, 0
    by_scene = torch.argsort(pairs.scene, stable=True)  # few scenes per batch: few JH passes
    for start in range(0, len(data), batch_size):
        idx = by_scene[start : start + batch_size]
        out = bradley_terry_loss(*pairs.rewards(idx), pairs.mu[idx])
        loss_sum += out.loss.item() * len(idx)
        if out.n_unambiguous:
            correct += out.accuracy.item() * out.n_unambiguous
            n_clear += out.n_unambiguous
    model.train(was_training)
    return loss_sum / len(data), (correct / n_clear if n_clear else math.nan)


def _fit_member(
    member: int,
    model: RewardModel,
    train: PreferenceTensors,
    val: PreferenceTensors,
    config: TrainConfig,
    rng: np.random.Generator,
    writer: Any,
    bar: Any,
) -> list[EpochStats]:
    """Train one model for ``config.epochs``; returns its per-epoch stats."""
    pairs, val_pairs = _Pairs(train, model, config.device), _Pairs(val, model, config.device)
    if config.num_threads is not None:  # numba's parallel mask kernel may have changed it
        torch.set_num_threads(config.num_threads)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    batch_rng = np.random.default_rng(int(rng.integers(2**62)))
    history = []
    for epoch in range(config.epochs):
        start = time.perf_counter()
        model.train()
        batches = scene_batches(
            train.scene_index,
            config.batch_size,
            scenes_per_batch=config.scenes_per_batch,
            rng=batch_rng,
        )
        loss_sum, correct, n_clear, rewards = 0.0, 0.0, 0, []
        for batch in batches:
            idx = torch.as_tensor(batch, device=config.device)
            r_a, r_b = pairs.rewards(idx)
            out = bradley_terry_loss(r_a, r_b, pairs.mu[idx])
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            optimizer.step()
            loss_sum += out.loss.item() * len(idx)
            correct += out.accuracy.item() * out.n_unambiguous if out.n_unambiguous else 0.0
            n_clear += out.n_unambiguous
            rewards.append(torch.cat([r_a, r_b]).detach())
        r = torch.cat(rewards)
        val_loss, val_acc = _pair_metrics(val_pairs)
        stats = EpochStats(
            member=member,
            epoch=epoch,
            loss=loss_sum / len(train),
            accuracy=correct / n_clear if n_clear else math.nan,
            reward_mean=r.mean().item(),
            reward_min=r.min().item(),
            reward_max=r.max().item(),
            val_loss=val_loss,
            val_accuracy=val_acc,
            seconds=time.perf_counter() - start,
        )
        history.append(stats)
        if writer is not None:
            for tag, value in (
                ("losses/train", stats.loss),
                ("losses/val", stats.val_loss),
                ("charts/accuracy", stats.accuracy),
                ("charts/val_accuracy", stats.val_accuracy),
                ("charts/reward_mean", stats.reward_mean),
                ("charts/reward_min", stats.reward_min),
                ("charts/reward_max", stats.reward_max),
            ):
                writer.add_scalar(tag, value, epoch)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{stats.loss:.3f}", val_acc=f"{stats.val_accuracy:.3f}")
    return history


def _check_requested(data: PreferenceTensors, config: TrainConfig) -> None:
    """Explicit settings of ``config`` must match ready-made arrays."""
    for name, want, got in (
        ("working_size", config.working_size, data.working_size),
        ("histogram_bins", config.requested_bins, data.histogram_bins),
        ("n_vertices", config.requested_vertices, data.n_vertices),
    ):
        if want is not None and got is not None and want != got:
            raise ObservationMismatchError(
                f"the preferences have {name}={got}; {name}={want} was requested"
            )


def train_reward_model(
    records: Sequence[Any] | PreferenceTensors,
    config: TrainConfig | None = None,
    *,
    log_dir: str | Path | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train a reward model (or an ensemble) on preferences.

    The working size, histogram bins and polygon vertices are the preferences' own (see
    :meth:`PreferenceTensors.from_records`); the config's explicit values
    (``working_size``, ``histogram_bins`` or ``model``) must match them.

    Args:
        records: preference records (``.scene``, ``.action_a``, ``.action_b``, ``.mu``,
            optionally ``.id`` and ``.observation``) or a ready :class:`PreferenceTensors`.
        config: training settings (default :class:`TrainConfig`).
        log_dir: TensorBoard folder (None: no logging).
        progress: show a tqdm progress bar over epochs.

    Returns:
        :class:`TrainResult`, its config resolved to the settings trained at.

    Raises:
        ObservationMismatchError: an explicit working size, bin count or vertex count that
            differs from the preferences', records that disagree on them, or a scan changed
            since labeling.
        ValueError: no usable pairs, or an architecture that does not fit the data (e.g.
            too few histogram bins for its layers).
    """
    config = config or TrainConfig()
    if isinstance(records, PreferenceTensors):
        data = records
    else:
        data = PreferenceTensors.from_records(
            records,
            working_size=config.working_size,
            histogram_bins=config.requested_bins,
            n_vertices=config.requested_vertices,
        )
    _check_requested(data, config)
    mc = config.architecture(histogram_bins=data.histogram_bins, n_vertices=data.n_vertices)
    config = replace(
        config, histogram_bins=mc.histogram_bins, working_size=data.working_size, model=mc
    )
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    train, val = data.split(config.val_fraction, rng)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.epochs * config.ensemble_size, desc="train-rm", unit="epoch")
    start = time.perf_counter()
    members, history = [], []
    try:
        for k in range(config.ensemble_size):
            model = RewardModel(mc).to(config.device)
            member_train = train.bootstrap(rng) if config.ensemble_size > 1 else train
            writer = None
            if log_dir is not None:
                from torch.utils.tensorboard import SummaryWriter

                folder = Path(log_dir) / f"member-{k}" if config.ensemble_size > 1 else log_dir
                writer = SummaryWriter(log_dir=str(folder))
            try:
                history += _fit_member(k, model, member_train, val, config, rng, writer, bar)
            finally:
                if writer is not None:
                    writer.close()
            members.append(model.eval())
    finally:
        if bar is not None:
            bar.close()
    result_model = members[0] if len(members) == 1 else RewardEnsemble(members)
    return TrainResult(
        result_model, tuple(history), config, train, val, time.perf_counter() - start
    )
