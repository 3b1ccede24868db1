"""The constant-polygon policy: one fixed TF for every scan, whatever the observation.

The baseline every learned policy must beat on scans it has not seen: the polygon that
maximises the mean reward over the training scenes (:func:`tfgym.search.best_constant_action`),
played on every scene. It answers ``predict`` like a Stable-Baselines3 policy, so evaluation
code runs it and a trained PPO agent alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tfgym.scoring import SceneScorer
from tfgym.search import ConstantResult, best_constant_action

__all__ = ["ConstantPolicy"]


class ConstantPolicy:
    """A policy that plays the same action whatever it observes.

    Args:
        action: the action, ``(2 * n_vertices,)`` in ``[-1, 1]`` (values outside are clipped).
        result: the search that found it, if any (kept for reporting).

    Raises:
        ValueError: an action that is not a flat, finite vector of an even size >= 6.

    Example:
        >>> policy = ConstantPolicy(np.array([-0.2, -1, 1, -1, 1, 1, -0.2, 1]))
        >>> action, state = policy.predict(np.zeros((1, 64, 64), np.uint8))
        >>> action.dtype, action.shape, state
        (dtype('float32'), (8,), None)
        >>> policy.predict(np.zeros((3, 1, 64, 64), np.uint8))[0].shape  # a batch
        (3, 8)
    """

    def __init__(self, action: np.ndarray, *, result: ConstantResult | None = None) -> None:
        """Validate and store the action."""
        act = np.asarray(action, dtype=np.float64)
        if act.ndim != 1 or act.size < 6 or act.size % 2 or not np.all(np.isfinite(act)):
            raise ValueError(
                "a constant policy's action must be a finite flat vector of 2 * n_vertices "
                f"numbers (n_vertices >= 3), got shape {act.shape}"
            )
        self.action = np.clip(act, -1.0, 1.0).astype(np.float32)
        self.action.setflags(write=False)
        self.result = result

    def __repr__(self) -> str:
        return f"ConstantPolicy({np.array2string(self.action, precision=3)})"

    @classmethod
    def fit(
        cls,
        scorers: Sequence[SceneScorer],
        budget: int,
        rng: np.random.Generator,
        **kwargs: Any,
    ) -> ConstantPolicy:
        """The policy of the best constant polygon over the scorers' scenes.

        Args:
            scorers: the training scenes' scorers.
            budget: candidate polygons (see :func:`tfgym.search.best_constant_action`).
            rng: the only source of randomness.
            **kwargs: further arguments of :func:`tfgym.search.best_constant_action`.

        Returns:
            The policy, with the search's :class:`tfgym.search.ConstantResult` as ``result``.
        """
        result = best_constant_action(scorers, budget, rng, **kwargs)
        return cls(result.action, result=result)

    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        """The constant action, for one observation or a batch of them (SB3's signature).

        Args:
            observation: a JH image ``(1, bins, bins)`` or a batch ``(n, 1, bins, bins)``;
                only its batch size is read.
            state: recurrent state (unused, returned as is).
            episode_start: unused.
            deterministic: unused (the policy is deterministic).

        Returns:
            ``(action, state)``: float32 ``(2 * n_vertices,)`` or ``(n, 2 * n_vertices)``.
        """
        del episode_start, deterministic
        obs = np.asarray(observation)
        if obs.ndim == 4:
            return np.repeat(self.action[None], len(obs), axis=0), state
        return self.action.copy(), state
