"""Bradley-Terry reward models trained on pairwise preferences (Melenberg et al., MIDL 2025).

* :mod:`reward_models.config` -- :class:`RewardModelConfig` and its presets,
  :class:`TrainConfig`, :class:`EvalConfig` (no torch);
* :mod:`reward_models.model` -- :class:`RewardModel` (variants ``"paper"`` and ``"mask"``) and
  :class:`RewardEnsemble`;
* :mod:`reward_models.loss` -- the Bradley-Terry cross-entropy on soft targets;
* :mod:`reward_models.data` -- preference records as arrays (at the observation they were
  labeled on), splits and bootstrap resamples;
* :mod:`reward_models.train` -- training;
* :mod:`reward_models.checkpoint` -- checkpoints, what they record, the held-out records;
* :mod:`reward_models.metrics`, :mod:`reward_models.figures`, :mod:`reward_models.evaluate`
  -- evaluation against the oracle;
* :mod:`reward_models.backend` -- the env's ``"reward_model"`` reward backend;
* :mod:`reward_models.human_backend` -- the ``"human"`` reward backend (blocking and async;
  the async mode in :mod:`reward_models.human_async`); :mod:`reward_models.finetune`
  (fine-tuning on new answers) and :mod:`reward_models.query_selection` (which pairs to ask
  people).

Names are imported from their modules on first use (PEP 562), so ``import reward_models`` and
``import reward_models.config`` load no torch; the model, training and checkpoints do.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "RM_PRESETS",
    "CheckpointError",
    "CheckpointInfo",
    "EvalConfig",
    "LossAndMetrics",
    "PreferenceTensors",
    "RewardEnsemble",
    "RewardModel",
    "RewardModelBackend",
    "RewardModelConfig",
    "TrainConfig",
    "TrainResult",
    "action_masks",
    "bradley_terry_loss",
    "evaluate_checkpoint",
    "evaluate_reward_model",
    "heldout_records",
    "load_checkpoint",
    "model_config",
    "read_checkpoint_info",
    "save_checkpoint",
    "train_reward_model",
]

_MODULES = {
    "RM_PRESETS": "config",
    "EvalConfig": "config",
    "RewardModelConfig": "config",
    "TrainConfig": "config",
    "model_config": "config",
    "PreferenceTensors": "data",
    "LossAndMetrics": "loss",
    "bradley_terry_loss": "loss",
    "RewardEnsemble": "model",
    "RewardModel": "model",
    "action_masks": "model",
    "TrainResult": "train",
    "train_reward_model": "train",
    "CheckpointError": "checkpoint",
    "CheckpointInfo": "checkpoint",
    "heldout_records": "checkpoint",
    "load_checkpoint": "checkpoint",
    "read_checkpoint_info": "checkpoint",
    "save_checkpoint": "checkpoint",
    "evaluate_checkpoint": "evaluate",
    "evaluate_reward_model": "evaluate",
    "RewardModelBackend": "backend",
}


def __getattr__(name: str) -> Any:
    """Import a public name from its submodule on first access."""
    if name not in _MODULES:
        raise AttributeError(f"module 'reward_models' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"reward_models.{_MODULES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names (for tab completion)."""
    return sorted([*globals(), *__all__])
