"""The search loop shared by every search baseline (:mod:`tfgym.search`, :mod:`tfgym.cmaes`).

A search proposes populations of actions, scores each through a
:class:`tfgym.scoring.SceneScorer` (one render call per population), learns from the scores
and keeps the best: :class:`_Search` is that loop, with the progress bar and the exact budget
accounting; subclasses only propose and update. :class:`SearchResult` and
:class:`IterationStats` are what every search returns.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tfgym.scoring import SceneScorer

__all__ = ["IterationStats", "SearchResult"]

# a population's scores: (validated actions (n, dim), rewards (n,), per-part rewards (n, k))
_ScoreFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class IterationStats:
    """Statistics of one search iteration (one population, one render call).

    Attributes:
        iteration: 0-based iteration index.
        evaluations: env evaluations so far, this iteration's included.
        best_reward: best reward found so far (running maximum).
        population_best: best reward within this iteration's population.
        mean_reward: mean reward of this iteration's population.
    """

    iteration: int
    evaluations: int
    best_reward: float
    population_best: float
    mean_reward: float


@dataclass(frozen=True)
class SearchResult:
    """The outcome of a search on one scene.

    Attributes:
        scene: the scene searched.
        best_action: float32 ``(2 * n_vertices,)`` in ``[-1, 1]``, the best action found.
        best_reward: its reward.
        history: one :class:`IterationStats` per iteration.
        n_evaluations: env evaluations spent (never more than the budget).
        actions: every action scored, float32 ``(n_evaluations, dim)``, in order (only
            with ``run(..., keep_all=True)``, else None).
        rewards: their rewards, float64 ``(n_evaluations,)`` (likewise).
    """

    scene: str
    best_action: np.ndarray
    best_reward: float
    history: tuple[IterationStats, ...]
    n_evaluations: int
    actions: np.ndarray | None = field(default=None, repr=False)
    rewards: np.ndarray | None = field(default=None, repr=False)

    @property
    def best_rewards(self) -> np.ndarray:
        """Running best reward per iteration, float64 ``(n_iterations,)``."""
        return np.array([s.best_reward for s in self.history], dtype=np.float64)

    @property
    def mean_rewards(self) -> np.ndarray:
        """Population mean reward per iteration, float64 ``(n_iterations,)``."""
        return np.array([s.mean_reward for s in self.history], dtype=np.float64)


class _Search(ABC):
    """Shared loop: propose a population, score it in one call, keep the best."""

    def __init__(
        self, rng: np.random.Generator, *, population_size: int, progress: bool = False
    ) -> None:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        if population_size < 2:
            raise ValueError(f"population_size must be at least 2, got {population_size}")
        self.rng = rng
        self.population_size = int(population_size)
        self.progress = bool(progress)

    def _batch_size(self) -> int:
        """Actions to propose next (the last population is shrunk to the budget)."""
        return self.population_size

    def _start(self, dim: int) -> None:  # noqa: B027 - optional hook
        """Reset the search state for an action of ``dim`` numbers."""

    @abstractmethod
    def _propose(self, n: int, dim: int) -> np.ndarray:
        """``n`` actions of ``dim`` numbers to score next."""

    def _update(self, actions: np.ndarray, rewards: np.ndarray) -> None:  # noqa: B027
        """Learn from a scored population (nothing to learn by default)."""

    def run(
        self,
        scorer: SceneScorer,
        budget: int,
        *,
        initial: np.ndarray | None = None,
        keep_all: bool = False,
    ) -> SearchResult:
        """Search for the best action on the scorer's scene.

        Args:
            scorer: the scene's batch scorer; its backend's reward is maximised.
            budget: env evaluations to spend; the last population is shrunk to fit.
            initial: actions ``(k, dim)`` to score first, before any proposal, e.g. a
                hand-made TF: candidates for the best (they count towards the budget) that do
                not move the search distribution (set ``init_mean`` for that).
            keep_all: keep every scored action and reward in the result.

        Returns:
            The :class:`SearchResult`.

        Raises:
            ValueError: for a budget below 1.
        """
        _check_scorer(scorer)

        def score(actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            batch = scorer.score(actions)
            return batch.actions, batch.rewards, batch.rewards[:, None]

        return self._loop(score, scorer.action_dim, budget, initial, keep_all, scorer.name)[0]

    def _loop(
        self,
        score: _ScoreFn,
        dim: int,
        budget: int,
        initial: np.ndarray | None,
        keep_all: bool,
        name: str,
        unit: str = "eval",
    ) -> tuple[SearchResult, np.ndarray]:
        """The search loop over populations scored by ``score`` (see :meth:`run`).

        Returns:
            The result (``scene`` is ``name``) and the best action's per-part rewards.
        """
        if budget < 1:
            raise ValueError(f"budget must be at least 1 env evaluation, got {budget}")
        self._start(dim)
        best_action, best_reward = np.zeros(dim, np.float32), -np.inf
        best_parts = np.zeros(0)
        history: list[IterationStats] = []
        kept: list[tuple[np.ndarray, np.ndarray]] = []
        spent = 0
        bar = _progress_bar(budget, name, unit) if self.progress else None
        first = None if initial is None else np.atleast_2d(np.asarray(initial))[:budget]
        try:
            while spent < budget:
                n = min(self._batch_size(), budget - spent)
                seeded = first is not None
                if first is not None:
                    proposed, first = first, None
                else:
                    proposed = self._propose(n, dim)  # the scorer clips to the box
                actions, rewards, parts = score(proposed)
                n = len(actions)
                spent += n
                i = int(np.argmax(rewards))
                if rewards[i] > best_reward:
                    best_action, best_reward = actions[i].copy(), float(rewards[i])
                    best_parts = parts[i].copy()
                if not seeded:
                    self._update(actions, rewards)
                if keep_all:
                    kept.append((actions, rewards))
                history.append(
                    IterationStats(
                        iteration=len(history),
                        evaluations=spent,
                        best_reward=best_reward,
                        population_best=float(rewards[i]),
                        mean_reward=float(rewards.mean()),
                    )
                )
                if bar is not None:
                    bar.update(n)
                    bar.set_postfix(best=f"{best_reward:.3f}", mean=f"{rewards.mean():.3f}")
        finally:
            if bar is not None:
                bar.close()
        result = SearchResult(
            scene=name,
            best_action=best_action,
            best_reward=best_reward,
            history=tuple(history),
            n_evaluations=spent,
            actions=np.concatenate([a for a, _ in kept]) if kept else None,
            rewards=np.concatenate([r for _, r in kept]) if kept else None,
        )
        return result, best_parts


def _check_scorer(scorer: object) -> None:
    if not isinstance(scorer, SceneScorer):
        raise TypeError(
            f"scorer must be a tfgym.scoring.SceneScorer, got {type(scorer).__name__}; "
            "make one with SceneScorer(scene, settings) or env.unwrapped.scorer(scene)"
        )


def _progress_bar(total: int, desc: str, unit: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)
