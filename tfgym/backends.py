"""Reward backends: one small interface, several implementations.

The env never knows which backend it holds. A backend receives the scene, a batch of
validated actions and their renderings, and returns one float reward per action. Backends
that score a batch in one call make search baselines and vector evaluation cheap.

Backends are registered by name in :data:`BACKENDS` with a string entry point
``"module:Class"`` that is imported only when the backend is made -- as Gymnasium does for
envs -- so the core never imports the layers above it:

| name             | entry point                                  | what                        |
|------------------|----------------------------------------------|-----------------------------|
| ``oracle``       | ``tfgym.backends:OracleBackend``             | the synthetic oracle        |
| ``reward_model`` | ``reward_models.backend:RewardModelBackend`` | a learned Bradley-Terry RM  |
| ``human``        | ``reward_models.human_backend:HumanBackend`` | the live human label queue: |
|                  |                                              | ``mode="blocking"`` waits   |
|                  |                                              | for answers, ``"async"``    |
|                  |                                              | retrains an RM on them      |

The ``human`` backend needs ``db=`` (the label queue's database); its blocking mode lives in
the core (:mod:`tfgym.labeling.blocking`), its asynchronous mode needs a reward model
(``path=``, a checkpoint) and so lives above the core.

:func:`register_backend` adds more; any :class:`RewardBackend` instance can also be passed
directly.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfgym.oracle.score import Oracle, resolve_target
from tfgym.renderer import RenderBatch
from tfgym.scene import Scene
from tfgym.volume import Tissue

__all__ = [
    "BACKENDS",
    "BackendSpec",
    "OracleBackend",
    "RewardBackend",
    "make_backend",
    "register_backend",
]


class RewardBackend(ABC):
    """Scores renderings of transfer functions."""

    name: str = "backend"

    @abstractmethod
    def reward(self, scene: Scene, actions: np.ndarray, renderings: RenderBatch) -> np.ndarray:
        """Rewards for a batch of actions of one scene.

        Args:
            scene: the scene (observation, volume, labels).
            actions: float32 ``(batch, 2 * n_vertices)`` in [-1, 1] (already validated).
            renderings: their renderings.

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

    def reward(self, scene: Scene, actions: np.ndarray, renderings: RenderBatch) -> np.ndarray:
        """Quality scores of the renderings."""
        del actions
        return self.oracle.evaluate(renderings, scene)["score"]


@dataclass(frozen=True)
class BackendSpec:
    """A registered backend.

    Attributes:
        entry_point: ``"module:Class"``, imported lazily; None when not available yet.
        description: one line for error messages and ``--help``.
    """

    entry_point: str | None
    description: str


BACKENDS: dict[str, BackendSpec] = {
    "oracle": BackendSpec("tfgym.backends:OracleBackend", "synthetic preference oracle (default)"),
    "reward_model": BackendSpec(
        "reward_models.backend:RewardModelBackend",
        "learned Bradley-Terry reward model (needs reward_model_path=)",
    ),
    "human": BackendSpec(
        "reward_models.human_backend:HumanBackend",
        "live human label queue (needs db=; mode='blocking' or 'async' with path=)",
    ),
}


def register_backend(
    name: str, entry_point: str, description: str = "", *, overwrite: bool = False
) -> None:
    """Register a backend class under ``name`` by its ``"module:Class"`` entry point.

    Raises:
        ValueError: a malformed entry point, or a name taken (unless ``overwrite``).
    """
    if ":" not in entry_point:
        raise ValueError(f"entry point must be 'module:Class', got {entry_point!r}")
    if name in BACKENDS and not overwrite:
        raise ValueError(f"reward backend {name!r} is registered already")
    BACKENDS[name] = BackendSpec(entry_point, description or entry_point)


def _load(entry_point: str) -> type[RewardBackend]:
    module, _, attr = entry_point.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, RewardBackend)):
        raise TypeError(f"{entry_point} is not a RewardBackend subclass")
    return cls


def make_backend(backend: str | RewardBackend, **kwargs: Any) -> RewardBackend:
    """Build a backend from its registered name, or pass an instance through.

    Args:
        backend: a name of :data:`BACKENDS` or a :class:`RewardBackend`.
        **kwargs: the backend's constructor arguments.

    Raises:
        ValueError: unknown or not yet available backend name, or options given with an
            instance.

    Example:
        >>> make_backend("oracle", target="teeth").oracle.target
        (<Tissue.TEETH: 3>,)
    """
    if isinstance(backend, RewardBackend):
        if kwargs:
            raise ValueError(f"backend options {sorted(kwargs)} given with a backend instance")
        return backend
    if backend not in BACKENDS:
        raise ValueError(f"unknown reward backend {backend!r}; valid: {sorted(BACKENDS)}")
    spec = BACKENDS[backend]
    if spec.entry_point is None:
        raise ValueError(
            f"reward backend {backend!r} is not available in this version of tfgym; "
            "use 'oracle' or pass a RewardBackend instance"
        )
    return _load(spec.entry_point)(**kwargs)
