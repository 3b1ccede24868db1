"""Reward-model checkpoints: saving, loading, and what they record.

A checkpoint is a ``torch.save`` dict (format version 2):

* ``format``, ``format_version``, ``tfgym_version``;
* ``model_config`` (:meth:`reward_models.config.RewardModelConfig.to_dict`) and one
  ``state_dicts`` entry per member (one for a single model, k for an ensemble);
* ``train_config`` (:meth:`reward_models.config.TrainConfig.to_dict`, or None);
* ``observation``: the settings the model was trained at, ``{"working_size",
  "histogram_bins", "n_vertices"}`` (``working_size`` None when unknown), or None;
* ``validation_ids``: the store ids of the held-out validation pairs (-1 for a pair whose
  record had no id), or None.

Version-1 checkpoints (no ``observation``, no ``validation_ids``) still load; their
:class:`CheckpointInfo` has ``validation_ids=None`` and :func:`heldout_records` then replays
the seeded split. :func:`load_checkpoint` refuses, with a :class:`CheckpointError`, a missing
file, a file that is not such a checkpoint, a newer format, and state that does not fit the
recorded or the expected config.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reward_models.config import RewardModelConfig, TrainConfig
from reward_models.model import RewardEnsemble, RewardModel
from tfgym.observation import DEFAULTS

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "CheckpointInfo",
    "heldout_records",
    "load_checkpoint",
    "read_checkpoint_info",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "tfgym.RewardModel"
CHECKPOINT_VERSION = 2


class CheckpointError(ValueError):
    """A reward-model checkpoint that cannot be loaded (missing, foreign, newer, unfitting)."""


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint records besides the weights.

    Attributes:
        model_config: the architecture.
        train_config: :meth:`TrainConfig.to_dict` of the training, or None.
        validation_ids: store ids of the validation pairs (-1: a record without an id);
            None for checkpoints that did not record them (format version 1).
        observation: ``{"working_size", "histogram_bins", "n_vertices"}`` the model was
            trained at, or None (format version 1).
        n_members: models in the checkpoint (1, or the ensemble size).
        format_version: the checkpoint's format version.
        tfgym_version: the tfgym version that wrote it.
        path: the file, or None for the info of an unsaved training result.
    """

    model_config: RewardModelConfig
    train_config: dict[str, Any] | None
    validation_ids: tuple[int, ...] | None
    observation: dict[str, int | None] | None
    n_members: int = 1
    format_version: int = CHECKPOINT_VERSION
    tfgym_version: str | None = None
    path: Path | None = None

    @property
    def recorded_working_size(self) -> int | None:
        """The working size trained at as recorded, None when unknown.

        From ``observation``; for version-1 checkpoints the training config's value.
        """
        recorded = (self.observation or {}).get("working_size")
        if recorded is None:
            recorded = (self.train_config or {}).get("working_size")
        return None if recorded is None else int(recorded)

    @property
    def working_size(self) -> int:
        """The working size trained at: :attr:`recorded_working_size`, else 64 (the default)."""
        recorded = self.recorded_working_size
        return int(DEFAULTS["working_size"]) if recorded is None else recorded


def save_checkpoint(
    path: str | Path,
    model: RewardModel | RewardEnsemble,
    config: TrainConfig | None = None,
    *,
    validation_ids: Iterable[int] | None = None,
    observation: dict[str, int | None] | None = None,
) -> Path:
    """Write a model or ensemble with its configs, observation settings and validation ids.

    :meth:`reward_models.train.TrainResult.save` fills every argument from a training.

    Args:
        path: the file to write (parent folders are created).
        model: the model or ensemble.
        config: the training config (None: not recorded).
        validation_ids: store ids of the held-out pairs (None: not recorded).
        observation: the settings trained at (``working_size``, ``histogram_bins``,
            ``n_vertices``); default: the model's bins and vertices, working size unknown.

    Returns:
        The path written.
    """
    from tfgym import __version__

    members = model.members if isinstance(model, RewardEnsemble) else [model]
    mc = members[0].config
    if observation is None:
        observation = {
            "working_size": None,
            "histogram_bins": mc.histogram_bins,
            "n_vertices": mc.n_vertices,
        }
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "tfgym_version": __version__,
        "model_config": mc.to_dict(),
        "train_config": None if config is None else config.to_dict(),
        "observation": dict(observation),
        "validation_ids": None if validation_ids is None else [int(i) for i in validation_ids],
        "state_dicts": [m.state_dict() for m in members],
    }
    torch.save(state, out)
    return out


def _read(p: Path) -> dict[str, Any]:
    if not p.is_file():
        raise CheckpointError(f"reward model checkpoint not found: {p}")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for foreign files
        # torch's own message for a file it will not load safely advises weights_only=False,
        # i.e. running arbitrary code from the file: never pass that on to a user
        if not zipfile.is_zipfile(p):
            kind = "not a torch file: empty, truncated or another format"
        elif "weights_only" in str(e) or "Weights only" in str(e):
            kind = "it holds objects other than tensors and plain data, which tfgym never unpickles"
        else:
            kind = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        raise CheckpointError(f"{p} is not a tfgym reward model checkpoint ({kind})") from e
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{p} is not a tfgym reward model checkpoint (no format marker)")
    version = state.get("format_version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{p} has checkpoint format version {version}, newer than this tfgym's "
            f"{CHECKPOINT_VERSION} (saved by tfgym {state.get('tfgym_version')}); upgrade tfgym"
        )
    return state


def _info(p: Path, state: dict[str, Any]) -> CheckpointInfo:
    try:
        mc = RewardModelConfig.from_dict(dict(state["model_config"]))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{p} has an invalid reward model config: {e}") from e
    ids = state.get("validation_ids")
    observation = state.get("observation")
    return CheckpointInfo(
        model_config=mc,
        train_config=state.get("train_config"),
        validation_ids=None if ids is None else tuple(int(i) for i in ids),
        observation=None if observation is None else dict(observation),
        n_members=len(state.get("state_dicts") or []),
        format_version=int(state["format_version"]),
        tfgym_version=state.get("tfgym_version"),
        path=p,
    )


def read_checkpoint_info(path: str | Path) -> CheckpointInfo:
    """The configs, observation settings and validation ids of a checkpoint (no model built).

    Raises:
        CheckpointError: missing file, not a checkpoint, a newer format, or an invalid
            model config.
    """
    p = Path(path)
    return _info(p, _read(p))


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
    state = _read(p)
    mc = _info(p, state).model_config
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


def heldout_records(records: Sequence[Any], info: CheckpointInfo) -> list[Any]:
    """The records of the validation pairs that a training held out.

    With the ids the checkpoint recorded (format 2, records from a store), these are the
    records whose ``id`` is among them, whatever their order or the records added since.
    Without usable ids (a version-1 checkpoint, or training records that had no ids), the
    seeded split of :func:`reward_models.train.train_reward_model` is replayed from the
    training config: ``PreferenceTensors.split(val_fraction, default_rng(seed))`` over the
    answered records -- right only for the very records, in the same order, it trained on.

    Args:
        records: preference records (``.id``, ``.mu``), e.g. a store's ``records()``.
        info: :func:`read_checkpoint_info` of the checkpoint, or ``TrainResult.info``.

    Returns:
        The held-out records, in their given order.

    Raises:
        ValueError: the training held nothing out, or some validation ids are missing from
            ``records`` (another store).
    """
    ids = info.validation_ids
    if ids is not None and not ids:
        raise ValueError("the checkpoint records no validation split (val_fraction 0)")
    if ids is not None and min(ids) >= 0:
        wanted = set(ids)
        held = [r for r in records if getattr(r, "id", None) in wanted]
        if len(held) != len(wanted):
            raise ValueError(
                f"the records hold {len(held)} of the checkpoint's {len(wanted)} validation "
                "pairs (by record id); evaluate with the store the model was trained on"
            )
        return held
    train_config = info.train_config
    if not train_config or not train_config.get("val_fraction"):
        raise ValueError(
            "the checkpoint records no validation split (val_fraction 0 or no training config)"
        )
    kept = [r for r in records if np.isfinite(float(r.mu))]
    order = np.random.default_rng(train_config["seed"]).permutation(len(kept))
    n_val = round(len(kept) * float(train_config["val_fraction"]))
    return [kept[i] for i in np.sort(order[:n_val])]
