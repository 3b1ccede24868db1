"""Training reward models on preferences, checkpoints, and the ``tfgym train-rm`` command.

The protocol is the paper's (Melenberg et al., MIDL 2025): the cross-entropy of eq. (2) on
soft targets (:func:`reward_models.loss.bradley_terry_loss`), Adam with its default learning
rate, batch size 128, 75 epochs, with a seeded held-out validation split. An ensemble of k
members trains each member on a bootstrap resample of the training split.

Each epoch logs to TensorBoard (``log_dir``; one sub-folder ``member-<i>`` per member of an
ensemble): ``losses/train``, ``losses/val``, ``charts/accuracy``, ``charts/val_accuracy``,
``charts/reward_mean``, ``charts/reward_min``, ``charts/reward_max``.

A checkpoint is a ``torch.save`` dict: format name and version, tfgym version, the model
config, the training config, and one state dict per member. :func:`load_checkpoint` refuses,
with a :class:`CheckpointError`, a missing file, a file that is not such a checkpoint, a newer
format, and state that does not fit the recorded or the expected config.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reward_models.data import PreferenceTensors
from reward_models.loss import bradley_terry_loss
from reward_models.model import RewardEnsemble, RewardModel, RewardModelConfig, model_config

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "EpochStats",
    "TrainConfig",
    "TrainResult",
    "add_train_command",
    "load_checkpoint",
    "pair_metrics",
    "save_checkpoint",
    "train_reward_model",
]

CHECKPOINT_FORMAT = "tfgym.RewardModel"
CHECKPOINT_VERSION = 1
MASK_CACHE_BYTES = 256 * 2**20  # precompute the masks of all distinct actions below this


class CheckpointError(ValueError):
    """A reward-model checkpoint that cannot be loaded (missing, foreign, newer, unfitting)."""


@dataclass
class TrainConfig:
    """Reward-model training settings (defaults: the paper's protocol).

    Attributes:
        epochs: passes over the training split.
        batch_size: pairs per gradient step.
        lr: Adam learning rate (Adam's default).
        val_fraction: share of pairs held out for validation.
        seed: seeds the split, the bootstrap resamples, the shuffling and the weights.
        model: the architecture (``model.variant``: ``"paper"`` or ``"mask"``).
        ensemble_size: members; more than one trains each on a bootstrap resample.
        device: torch device.
        working_size: working size at which scenes are loaded for their JH images.
        num_threads: torch CPU threads, set process-wide (None: leave torch's setting). One
            by default: the model's ops are small, and on the 2-core CPU two threads made the
            paper protocol 9x slower (219 s vs 24 s) whenever other processes were busy.
    """

    epochs: int = 75
    batch_size: int = 128
    lr: float = 1e-3
    val_fraction: float = 0.1
    seed: int = 0
    model: RewardModelConfig = field(default_factory=RewardModelConfig)
    ensemble_size: int = 1
    device: str = "cpu"
    working_size: int = 64
    num_threads: int | None = 1

    def __post_init__(self) -> None:
        """Validate."""
        if self.epochs < 1 or self.batch_size < 1 or self.ensemble_size < 1:
            raise ValueError("epochs, batch_size and ensemble_size must be at least 1")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (the model config nested)."""
        return asdict(self)


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
        config: the training config.
        train: the training split; validation: the held-out split.
        seconds: wall time of the training.
    """

    model: RewardModel | RewardEnsemble
    history: tuple[EpochStats, ...]
    config: TrainConfig
    train: PreferenceTensors
    validation: PreferenceTensors
    seconds: float


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
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)), device=pairs.device)
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
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    history = []
    for epoch in range(config.epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(train), generator=gen).to(config.device)
        loss_sum, correct, n_clear, rewards = 0.0, 0.0, 0, []
        for first in range(0, len(train), config.batch_size):
            idx = order[first : first + config.batch_size]
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


def train_reward_model(
    records: Sequence[Any] | PreferenceTensors,
    config: TrainConfig | None = None,
    *,
    log_dir: str | Path | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train a reward model (or an ensemble) on preferences.

    Args:
        records: preference records (``.scene``, ``.action_a``, ``.action_b``, ``.mu``) or a
            ready :class:`PreferenceTensors`.
        config: training settings (default :class:`TrainConfig`).
        log_dir: TensorBoard folder (None: no logging).
        progress: show a tqdm progress bar over epochs.

    Returns:
        :class:`TrainResult`.

    Raises:
        ValueError: no usable pairs, or data that does not fit the model config
            (histogram bins, number of vertices).
    """
    config = config or TrainConfig()
    mc = config.model
    data = (
        records
        if isinstance(records, PreferenceTensors)
        else PreferenceTensors.from_records(
            records, working_size=config.working_size, histogram_bins=mc.histogram_bins
        )
    )
    if data.histogram_bins != mc.histogram_bins or data.n_vertices != mc.n_vertices:
        raise ValueError(
            f"preferences have {data.histogram_bins} histogram bins and {data.n_vertices} "
            f"vertices; the model config expects {mc.histogram_bins} and {mc.n_vertices}"
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


# -- checkpoints ------------------------------------------------------------------------------
def save_checkpoint(
    path: str | Path, model: RewardModel | RewardEnsemble, config: TrainConfig | None = None
) -> Path:
    """Write a model or ensemble, its config, the training config and the tfgym version.

    Returns:
        The path written (parent folders are created).
    """
    from tfgym import __version__

    members = model.members if isinstance(model, RewardEnsemble) else [model]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "tfgym_version": __version__,
        "model_config": members[0].config.to_dict(),
        "train_config": None if config is None else config.to_dict(),
        "state_dicts": [m.state_dict() for m in members],
    }
    torch.save(state, out)
    return out


def _read_checkpoint(p: Path) -> dict[str, Any]:
    if not p.is_file():
        raise CheckpointError(f"reward model checkpoint not found: {p}")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for foreign files
        raise CheckpointError(f"{p} is not a tfgym reward model checkpoint ({e})") from e
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{p} is not a tfgym reward model checkpoint (no format marker)")
    version = state.get("format_version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{p} has checkpoint format version {version}, newer than this tfgym's "
            f"{CHECKPOINT_VERSION} (saved by tfgym {state.get('tfgym_version')}); upgrade tfgym"
        )
    return state


def load_checkpoint(
    path: str | Path, *, expect: dict[str, Any] | None = None, device: str = "cpu"
) -> RewardModel | RewardEnsemble:
    """Load a model or ensemble saved by :func:`save_checkpoint`, in eval mode.

    Args:
        path: the checkpoint file.
        expect: config fields the model must have, e.g. ``{"histogram_bins": 64,
            "n_vertices": 4}`` for an env with those settings.
        device: torch device to load onto.

    Raises:
        CheckpointError: missing file, not a checkpoint, a newer format, a config that does
            not match ``expect``, or state that does not fit the recorded config.
    """
    p = Path(path)
    state = _read_checkpoint(p)
    try:
        mc = RewardModelConfig.from_dict(dict(state["model_config"]))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{p} has an invalid reward model config: {e}") from e
    for key, want in (expect or {}).items():
        if not hasattr(mc, key):
            raise CheckpointError(f"expect= names an unknown reward model config field {key!r}")
        if getattr(mc, key) != want:
            raise CheckpointError(
                f"{p} is incompatible: its model has {key}={getattr(mc, key)!r}, "
                f"expected {key}={want!r}"
            )
    members = []
    for i, sd in enumerate(state.get("state_dicts") or []):
        model = RewardModel(mc)
        try:
            model.load_state_dict(sd)
        except (RuntimeError, TypeError, AttributeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
            raise CheckpointError(
                f"{p}: state of member {i} does not fit its recorded config ({first})"
            ) from e
        members.append(model.to(device).eval())
    if not members:
        raise CheckpointError(f"{p} holds no model state")
    return members[0] if len(members) == 1 else RewardEnsemble(members)


# -- command line -----------------------------------------------------------------------------
def _cmd_train_rm(args: argparse.Namespace) -> int:
    from tfgym.preferences import PreferenceStore

    if not Path(args.db).is_file():
        raise FileNotFoundError(f"preference store not found: {args.db}")
    records = PreferenceStore(args.db).records()
    if not records:
        raise ValueError(f"{args.db} holds no preferences")
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        val_fraction=args.val_fraction,
        seed=args.seed,
        model=model_config(args.variant, histogram_bins=args.bins),
        ensemble_size=args.ensemble,
        device=args.device,
        working_size=args.working_size,
        num_threads=args.threads,
    )
    result = train_reward_model(records, config, log_dir=args.logdir, progress=not args.no_progress)
    out = save_checkpoint(args.out, result.model, config)
    last = result.history[-1]
    print(
        f"trained {config.ensemble_size} x {args.variant} on {len(result.train)} pairs "
        f"({len(result.validation)} held out) in {result.seconds:.1f} s: train loss "
        f"{last.loss:.3f}, accuracy {last.accuracy:.3f}, validation loss {last.val_loss:.3f}, "
        f"accuracy {last.val_accuracy:.3f}"
    )
    print(f"wrote {out}")
    if args.logdir:
        print(f"TensorBoard: tensorboard --logdir {args.logdir}")
    return 0


def add_train_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``tfgym train-rm`` on an argparse subparsers object; returns its parser."""
    p = subparsers.add_parser(
        "train-rm",
        help="train a Bradley-Terry reward model on a preference store",
        description="Train a reward model (the paper's protocol by default: eq. 2 "
        "cross-entropy, Adam, batch 128, 75 epochs) on every record of a preference store "
        "and save a checkpoint.",
    )
    p.add_argument("--db", required=True, help="preference store (SQLite file)")
    p.add_argument("--out", required=True, help="checkpoint file to write (e.g. rm.pt)")
    p.add_argument("--variant", default="paper", help="model preset: paper, mask, tiny, ...")
    p.add_argument("--epochs", type=int, default=75, help="passes over the training pairs")
    p.add_argument("--ensemble", type=int, default=1, help="ensemble members (bootstrap)")
    p.add_argument("--batch-size", type=int, default=128, help="pairs per gradient step")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--val-fraction", type=float, default=0.1, help="held-out share of pairs")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--bins", type=int, default=64, help="joint-histogram bins per axis")
    p.add_argument("--working-size", type=int, default=64, help="voxels along the longest side")
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--logdir", help="TensorBoard folder")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_cmd_train_rm)
    return p
