"""The ``"reward_model"`` reward backend: a trained checkpoint drives the env's reward.

Registered in the core by its entry point ``"reward_models.backend:RewardModelBackend"``
(:data:`tfgym.backends.BACKENDS`) and imported only when an env asks for it::

    env = TransferFunctionEnv(reward_backend="reward_model", reward_model_path="rm.pt")
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reward_models.checkpoint import CheckpointError, load_checkpoint, read_checkpoint_info
from tfgym.backends import RewardBackend
from tfgym.renderer import RenderBatch
from tfgym.scene import Scene

__all__ = ["RewardModelBackend"]


class RewardModelBackend(RewardBackend):
    """A learned Bradley-Terry reward model as the reward.

    Args:
        path: a checkpoint written by :func:`reward_models.checkpoint.save_checkpoint`.
        histogram_bins: the env's histogram bins (the model must have been trained on them).
        n_vertices: the env's polygon vertex count (likewise).
        device: torch device of the model.
        working_size: the env's working size, checked against the one the checkpoint
            records (None: not checked). A model trained on observations at working size 32
            has never seen those at 64.

    Raises:
        reward_models.checkpoint.CheckpointError: (a ``ValueError``) a missing, foreign,
            newer or incompatible checkpoint -- at construction, not at the first step.
    """

    name = "reward_model"

    def __init__(
        self,
        path: str,
        *,
        histogram_bins: int = 64,
        n_vertices: int = 4,
        device: str = "cpu",
        working_size: int | None = None,
    ) -> None:
        """Load and check the checkpoint."""
        self.path = str(path)
        self.device = device
        self.working_size = working_size
        self.expect = {"histogram_bins": int(histogram_bins), "n_vertices": int(n_vertices)}
        trained = read_checkpoint_info(self.path).recorded_working_size
        if working_size is not None and trained is not None and trained != working_size:
            raise CheckpointError(
                f"{self.path} is incompatible: its model was trained at working_size={trained}, "
                f"expected working_size={working_size}"
            )
        self.model = load_checkpoint(self.path, expect=self.expect, device=device)

    def reward(self, scene: Scene, actions: np.ndarray, renderings: RenderBatch) -> np.ndarray:
        """The model's rewards of the actions on the scene's histogram (one predict call)."""
        del renderings
        return np.asarray(self.model.predict(scene.observation, actions), dtype=np.float64)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the checkpoint path and the checks, not the model."""
        return {
            "path": self.path,
            "device": self.device,
            "working_size": self.working_size,
            **self.expect,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Reload the checkpoint (so SubprocVecEnv workers get their own model)."""
        self.__init__(  # type: ignore[misc]
            state["path"],
            histogram_bins=state["histogram_bins"],
            n_vertices=state["n_vertices"],
            device=state["device"],
            working_size=state["working_size"],
        )
