"""Bradley-Terry reward models trained on pairwise preferences (Melenberg et al., MIDL 2025).

* :mod:`reward_models.model` -- :class:`RewardModel` (variants ``"paper"`` and ``"mask"``) and
  :class:`RewardEnsemble`;
* :mod:`reward_models.loss` -- the Bradley-Terry cross-entropy on soft targets;
* :mod:`reward_models.data` -- preference records as arrays, splits and bootstrap resamples;
* :mod:`reward_models.train` -- training, checkpoints and the ``tfgym train-rm`` command.

Importing this package imports torch.
"""

from __future__ import annotations

from reward_models.data import PreferenceTensors
from reward_models.loss import LossAndMetrics, bradley_terry_loss
from reward_models.model import (
    RM_PRESETS,
    RewardEnsemble,
    RewardModel,
    RewardModelConfig,
    action_masks,
    model_config,
)
from reward_models.train import (
    CheckpointError,
    TrainConfig,
    TrainResult,
    load_checkpoint,
    save_checkpoint,
    train_reward_model,
)

__all__ = [
    "RM_PRESETS",
    "CheckpointError",
    "LossAndMetrics",
    "PreferenceTensors",
    "RewardEnsemble",
    "RewardModel",
    "RewardModelConfig",
    "TrainConfig",
    "TrainResult",
    "action_masks",
    "bradley_terry_loss",
    "load_checkpoint",
    "model_config",
    "save_checkpoint",
    "train_reward_model",
]
