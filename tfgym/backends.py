"""Reward backends: one small interface, several implementations.

The env never knows which backend it holds. A backend receives the batch of actions, their
renderings and the renderer (which knows the scene) and returns one float reward per action.
Backends that score batches in one call make search baselines and vector evaluation cheap.

Available: ``"oracle"`` (the synthetic preference oracle's quality score, the default) and
``"reward_model"`` (a learned Bradley-Terry reward model loaded from a checkpoint of
:mod:`reward_models`; a whole batch of actions of one scene is scored in one forward pass,
the joint-histogram branch once per scene). ``"human"`` (a live labeling queue) arrives with
its own module; any object implementing :class:`RewardBackend` can be passed directly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tfgym.oracle import Oracle, resolve_target
from tfgym.volume import Tissue

if TYPE_CHECKING:
    from tfgym.renderer import RenderBatch, Renderer

__all__ = ["BACKENDS", "OracleBackend", "RewardBackend", "RewardModelBackend", "make_backend"]


class RewardBackend(ABC):
    """Scores renderings of transfer functions."""

    name: str = "backend"

    @abstractmethod
    def reward(self, actions: np.ndarray, render: RenderBatch, renderer: Renderer) -> np.ndarray:
        """Rewards for a batch.

        Args:
            actions: float32 ``(batch, 2 * n_vertices)`` in [-1, 1] (already validated).
            render: their renderings.
            renderer: the renderer that made them (``renderer.scene`` is the scene).

        Returns:
            float64 ``(batch,)``.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release resources (files, connections)."""


class OracleBackend(RewardBackend):
    """The synthetic oracle's quality score as the reward (see :mod:`tfgym.oracle`).

    Args:
        target: a name of :data:`tfgym.oracle.TARGETS` or a sequence of tissues.
    """

    name = "oracle"

    def __init__(self, target: str | Sequence[Tissue] = "bone") -> None:
        """Resolve the target."""
        self.oracle = Oracle(resolve_target(target))

    def reward(self, actions: np.ndarray, render: RenderBatch, renderer: Renderer) -> np.ndarray:
        """Quality scores of the renderings."""
        del actions
        return self.oracle.evaluate(render, renderer)["score"]


class RewardModelBackend(RewardBackend):
    """A learned Bradley-Terry reward model as the reward.

    Args:
        path: a checkpoint written by :func:`reward_models.train.save_checkpoint`.
        histogram_bins: the env's histogram bins (the model must have been trained on them).
        n_vertices: the env's polygon vertex count (likewise).
        device: torch device of the model.

    Raises:
        ValueError: (``reward_models.train.CheckpointError``) a missing, foreign, newer or
            incompatible checkpoint -- at construction, not at the first step.
    """

    name = "reward_model"

    def __init__(
        self,
        path: str,
        *,
        histogram_bins: int = 64,
        n_vertices: int = 4,
        device: str = "cpu",
    ) -> None:
        """Load and check the checkpoint."""
        from reward_models.train import load_checkpoint

        self.path = str(path)
        expect = {"histogram_bins": histogram_bins, "n_vertices": n_vertices}
        self.model = load_checkpoint(path, expect=expect, device=device)

    def reward(self, actions: np.ndarray, render: RenderBatch, renderer: Renderer) -> np.ndarray:
        """The model's rewards for the scene's histogram and the actions."""
        del render
        return np.asarray(self.model.predict(renderer.scene.observation, actions), np.float64)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the checkpoint path, not the model."""
        return {"path": self.path, "config": self.model_config_expect()}

    def model_config_expect(self) -> dict[str, int]:
        """The config fields checked on loading."""
        members = getattr(self.model, "members", [self.model])
        config = members[0].config
        return {"histogram_bins": config.histogram_bins, "n_vertices": config.n_vertices}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Reload the checkpoint (so SubprocVecEnv workers get their own model)."""
        self.__init__(state["path"], **state["config"])  # type: ignore[misc]


BACKENDS: dict[str, str] = {
    "oracle": "synthetic preference oracle (default)",
    "reward_model": "learned Bradley-Terry reward model (needs reward_model_path=)",
    "human": "live human labeling queue (not available yet)",
}


def make_backend(backend: str | RewardBackend, **kwargs: Any) -> RewardBackend:
    """Build a backend from its name, or pass an instance through.

    Raises:
        ValueError: unknown or not yet available backend name.
    """
    if isinstance(backend, RewardBackend):
        if kwargs:
            raise ValueError(f"backend options {sorted(kwargs)} given with a backend instance")
        return backend
    if backend == "oracle":
        return OracleBackend(**kwargs)
    if backend == "reward_model":
        if not kwargs.get("path"):
            raise ValueError(
                "reward_backend='reward_model' needs the checkpoint: pass reward_model_path="
            )
        return RewardModelBackend(**kwargs)
    if backend in BACKENDS:
        raise ValueError(
            f"reward backend {backend!r} is not available in this version of tfgym; "
            "use 'oracle' or pass a RewardBackend instance"
        )
    raise ValueError(f"unknown reward backend {backend!r}; valid: {sorted(BACKENDS)}")
