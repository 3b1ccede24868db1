"""Reward backends: one small interface, several implementations.

The env never knows which backend it holds. A backend receives the batch of actions, their
renderings and the renderer (which knows the scene) and returns one float reward per action.
Backends that score batches in one call make search baselines and vector evaluation cheap.

Available now: ``"oracle"`` (the synthetic preference oracle's quality score, the default).
``"reward_model"`` (a learned Bradley-Terry reward model) and ``"human"`` (a live labeling
queue) arrive with their own modules; any object implementing :class:`RewardBackend` can be
passed directly.
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

__all__ = ["BACKENDS", "OracleBackend", "RewardBackend", "make_backend"]


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


BACKENDS: dict[str, str] = {
    "oracle": "synthetic preference oracle (default)",
    "reward_model": "learned Bradley-Terry reward model (not available yet)",
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
    if backend in BACKENDS:
        raise ValueError(
            f"reward backend {backend!r} is not available in this version of tfgym; "
            "use 'oracle' or pass a RewardBackend instance"
        )
    raise ValueError(f"unknown reward backend {backend!r}; valid: {sorted(BACKENDS)}")
