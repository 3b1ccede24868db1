"""The ``"human"`` reward backend: people's answers from the label queue drive the reward.

Registered in the core as ``"reward_models.human_backend:HumanBackend"``
(:data:`tfgym.backends.BACKENDS`); :class:`HumanBackend` runs one of two modes:

* ``mode="blocking"`` -- :class:`tfgym.labeling.blocking.BlockingHumanBackend` (core): each
  step queues comparisons of the new TF against the scene's references, waits for the
  answers and returns a Bradley-Terry utility. For small sessions with a search agent.
* ``mode="async"`` -- :class:`AsyncHumanBackend` (after Christiano et al., 2017): each step
  returns the current reward model's reward at once; people's answers retrain the model in
  the background.

The asynchronous mode lives in :mod:`reward_models.human_async`.

A backend holds threads and a live model, so it is not picklable: run envs with it in one
process (``DummyVecEnv``), so that one trainer sees every answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reward_models.human_async import ASYNC_PRIORITY, SELECTIONS, AsyncHumanBackend
from tfgym.backends import RewardBackend
from tfgym.labeling.blocking import BlockingHumanBackend
from tfgym.renderer import RenderBatch
from tfgym.scene import Scene

__all__ = ["ASYNC_PRIORITY", "MODES", "SELECTIONS", "AsyncHumanBackend", "HumanBackend"]

MODES = ("blocking", "async")


class HumanBackend(RewardBackend):
    """The registered ``"human"`` backend: a blocking or an asynchronous human queue.

    Args:
        db: the label queue's database (path, URL, engine or preference store) or a
            :class:`~tfgym.preferences.queue.LabelQueue` to share.
        mode: ``"blocking"`` or ``"async"``.
        **kwargs: the mode's options: :class:`~tfgym.labeling.blocking.BlockingHumanBackend`
            or :class:`AsyncHumanBackend` (which needs ``path=``, a reward-model checkpoint).

    Raises:
        ValueError: an unknown mode, or the mode's own errors.

    Example:
        >>> from tfgym.backends import make_backend
        >>> backend = make_backend("human", db=":memory:", mode="blocking", timeout_s=60)
        >>> backend.mode, type(backend.impl).__name__, backend.stats()["queued"]
        ('blocking', 'BlockingHumanBackend', 0)
        >>> backend.close()
    """

    name = "human"

    def __init__(self, db: Any = None, *, mode: str = "blocking", **kwargs: Any) -> None:
        """Build the mode's backend."""
        if mode not in MODES:
            raise ValueError(f"unknown human backend mode {mode!r}; valid: {MODES}")
        self.mode = mode
        self.impl: BlockingHumanBackend | AsyncHumanBackend = (
            BlockingHumanBackend(db, **kwargs)
            if mode == "blocking"
            else AsyncHumanBackend(db, **kwargs)
        )

    def reward(self, scene: Scene, actions: np.ndarray, renderings: RenderBatch) -> np.ndarray:
        """The mode's rewards."""
        return self.impl.reward(scene, actions, renderings)

    def stats(self) -> dict[str, Any]:
        """The mode's counters."""
        return self.impl.stats()

    def close(self) -> None:
        """Stop the mode's threads and close its queue."""
        self.impl.close()

    def __getstate__(self) -> dict[str, Any]:
        """Refuse pickling (see the module docstring)."""
        raise TypeError("the human reward backend holds a live queue; use it in one process")
