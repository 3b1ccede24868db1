"""Search baselines: find a good transfer function for one scene without learning.

Every search scores through a :class:`tfgym.scoring.SceneScorer` (the same batch scorer the
env's ``step`` uses, with its reward backend): a whole population of polygons is rendered and
scored in one call, so a search costs one render call per iteration, not one per action.
The budget counts **env evaluations** (actions scored), the unit of cost that compares
searches, policies and human labeling. They are core utilities: preference collection finds
its expert TFs with the same :class:`CrossEntropySearch`.

* :class:`RandomSearch` -- actions drawn uniformly from the action box, in batches.
* :class:`CrossEntropySearch` -- the cross-entropy method (CEM) over the flat action: a
  Gaussian with diagonal covariance is sampled (clipped to ``[-1, 1]``), and refitted to the
  elite fraction of its samples with smoothing and a floor on the standard deviation.
* :class:`CMAESSearch` -- CMA-ES (pycma) with a full covariance, bounded to the box, with
  IPOP restarts; the best of the three at every budget measured (see the class).
* :func:`best_known_action` -- the project's "best known" TF of a scene: CMA-ES with a
  large budget, what agents are measured against.
* :func:`best_constant_action` -- the constant-polygon baseline: the one action that
  maximises the **mean** reward over several scenes (each candidate scored on every scene,
  one render call per scene and population), found with any search. A TF that ignores the
  scan: what any learned policy must beat on scans it has not seen.

Randomness comes only from the ``rng: np.random.Generator`` given to the search, so a search
with a freshly seeded generator is reproducible.

Example:
    >>> from tfgym.scoring import SceneScorer
    >>> scorer = SceneScorer("headsq")
    >>> cem = CrossEntropySearch(np.random.default_rng(0), population_size=8)
    >>> result = cem.run(scorer, budget=20)
    >>> result.n_evaluations, [s.evaluations for s in result.history]
    (20, [8, 16, 20])
    >>> bool(0.0 <= result.best_reward <= 1.0), result.best_action.shape
    (True, (8,))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfgym.cmaes import (
    BEST_KNOWN_BUDGET,
    CMAES_OPTIONS,
    CMAES_POPULATION,
    CMAES_RESTARTS,
    CMAES_SIGMA0,
    CMAESSearch,
    best_known_action,
    cma_strategy,
)
from tfgym.scoring import SceneScorer
from tfgym.search_base import IterationStats, SearchResult, _check_scorer, _Search

__all__ = [
    "BEST_KNOWN_BUDGET",
    "CMAES_OPTIONS",
    "CMAES_POPULATION",
    "CMAES_RESTARTS",
    "CMAES_SIGMA0",
    "SEARCHES",
    "CMAESSearch",
    "ConstantResult",
    "CrossEntropySearch",
    "IterationStats",
    "RandomSearch",
    "SearchResult",
    "best_constant_action",
    "best_known_action",
    "cma_strategy",
]


class RandomSearch(_Search):
    """Uniform random search over the action box.

    Args:
        rng: the only source of randomness.
        population_size: actions scored per render call.
        progress: show a tqdm progress bar.
    """

    def __init__(
        self, rng: np.random.Generator, *, population_size: int = 32, progress: bool = False
    ) -> None:
        """Store the settings."""
        super().__init__(rng, population_size=population_size, progress=progress)

    def _propose(self, n: int, dim: int) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, size=(n, dim))


class CrossEntropySearch(_Search):
    """The cross-entropy method with a diagonal Gaussian over the flat action.

    Each iteration samples ``population_size`` actions from ``N(mean, diag(std^2))``, clipped
    to ``[-1, 1]``, scores them in one env call and refits the Gaussian to the best
    ``elite_frac`` of them: ``mean <- (1 - smoothing) * mean + smoothing * elite_mean`` and the
    same for ``std`` (floored at ``min_std`` so the search never collapses).

    Args:
        rng: the only source of randomness.
        population_size: actions per iteration (one render call).
        elite_frac: fraction of a population kept as elites (at least one).
        init_std: initial standard deviation of every coordinate.
        min_std: floor of the standard deviation.
        smoothing: weight of the new fit in the update, in (0, 1].
        init_mean: initial mean, ``(2 * n_vertices,)``; default the centre of the box.
        progress: show a tqdm progress bar.

    Raises:
        ValueError: for parameters out of range.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        *,
        population_size: int = 32,
        elite_frac: float = 0.2,
        init_std: float = 0.6,
        min_std: float = 0.03,
        smoothing: float = 0.8,
        init_mean: np.ndarray | None = None,
        progress: bool = False,
    ) -> None:
        """Validate and store the settings."""
        super().__init__(rng, population_size=population_size, progress=progress)
        if not 0.0 < elite_frac <= 1.0:
            raise ValueError(f"elite_frac must be in (0, 1], got {elite_frac}")
        if not (init_std > 0 and min_std >= 0):
            raise ValueError(f"need init_std > 0 and min_std >= 0, got {init_std}, {min_std}")
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1], got {smoothing}")
        self.elite_frac, self.init_std, self.min_std = elite_frac, init_std, min_std
        self.smoothing = smoothing
        self.init_mean = None if init_mean is None else np.asarray(init_mean, np.float64)
        self.mean = np.zeros(0)
        self.std = np.zeros(0)

    def _start(self, dim: int) -> None:
        if self.init_mean is not None and self.init_mean.shape != (dim,):
            raise ValueError(f"init_mean must have shape ({dim},), got {self.init_mean.shape}")
        self.mean = np.zeros(dim) if self.init_mean is None else self.init_mean.copy()
        self.std = np.full(dim, self.init_std)

    def _propose(self, n: int, dim: int) -> np.ndarray:
        return self.mean + self.std * self.rng.standard_normal((n, dim))

    def _update(self, actions: np.ndarray, rewards: np.ndarray) -> None:
        n_elite = max(1, round(self.elite_frac * len(rewards)))
        elite = actions[np.argsort(-rewards, kind="stable")[:n_elite]].astype(np.float64)
        a = self.smoothing
        self.mean = (1 - a) * self.mean + a * elite.mean(axis=0)
        self.std = np.maximum((1 - a) * self.std + a * elite.std(axis=0), self.min_std)


SEARCHES: dict[str, type[_Search]] = {
    "cem": CrossEntropySearch,
    "cmaes": CMAESSearch,
    "random": RandomSearch,
}
"""The searches :func:`best_constant_action` can run, by name."""


@dataclass(frozen=True)
class ConstantResult:
    """The best constant polygon over several scenes (:func:`best_constant_action`).

    Attributes:
        scenes: the scenes' names, in the order of ``scene_rewards``.
        action: float32 ``(2 * n_vertices,)`` in ``[-1, 1]``, the polygon used on every scene.
        mean_reward: its mean reward over the scenes (the quantity maximised).
        scene_rewards: its reward on each scene, float64 ``(n_scenes,)``.
        history: one :class:`IterationStats` per iteration, of the **mean** reward; there
            ``evaluations`` counts candidate polygons, each scored on every scene.
        n_candidates: candidate polygons scored (never more than the budget).
        n_evaluations: env evaluations spent, ``n_candidates * n_scenes``.
    """

    scenes: tuple[str, ...]
    action: np.ndarray
    mean_reward: float
    scene_rewards: np.ndarray
    history: tuple[IterationStats, ...]
    n_candidates: int
    n_evaluations: int

    def reward_of(self, scene: str) -> float:
        """The constant's reward on one of the scenes, by name.

        Raises:
            KeyError: a scene that was not searched over.
        """
        if scene not in self.scenes:
            raise KeyError(f"scene {scene!r} is not one of the searched scenes {self.scenes}")
        return float(self.scene_rewards[self.scenes.index(scene)])


def best_constant_action(
    scorers: Sequence[SceneScorer],
    budget: int,
    rng: np.random.Generator,
    *,
    method: str = "cem",
    population_size: int = 32,
    initial: np.ndarray | None = None,
    progress: bool = False,
    **options: Any,
) -> ConstantResult:
    """The one polygon that maximises the mean reward over several scenes.

    The constant-polygon baseline: a TF that ignores the scan. Each candidate is scored on
    every scene (one render call per scene and population) and the search maximises the
    mean of the scorers' rewards (the oracle score with the default backend).

    Args:
        scorers: one :class:`tfgym.scoring.SceneScorer` per scene, with the same number of
            polygon vertices.
        budget: candidate polygons to score (each costs ``len(scorers)`` env evaluations).
        rng: the only source of randomness.
        method: the search, a key of :data:`SEARCHES` (``"cem"`` or ``"random"``).
        population_size: candidates per iteration.
        initial: candidates ``(k, dim)`` scored first, e.g. each scene's hand-made TF (see
            :meth:`CrossEntropySearch.run`).
        progress: show a tqdm progress bar (of candidates).
        **options: further settings of the search, e.g. ``init_std`` for CEM.

    Returns:
        The :class:`ConstantResult`.

    Raises:
        ValueError: no scorers, scorers of different action sizes, an unknown method or a
            budget below 1.
        TypeError: something that is not a ``SceneScorer`` among the scorers.

    Example:
        >>> from tfgym.scoring import SceneScorer, ScoringSettings
        >>> settings = ScoringSettings(working_size=24, image_size=16)
        >>> scorers = [SceneScorer(s, settings) for s in ("phantom-00", "phantom-01")]
        >>> result = best_constant_action(scorers, 24, np.random.default_rng(0), population_size=8)
        >>> result.scenes, result.n_candidates, result.n_evaluations
        (('phantom-00', 'phantom-01'), 24, 48)
        >>> bool(np.isclose(result.scene_rewards.mean(), result.mean_reward))
        True
    """
    scorers = list(scorers)
    if not scorers:
        raise ValueError("best_constant_action needs at least one scorer")
    for scorer in scorers:
        _check_scorer(scorer)
    dims = sorted({scorer.action_dim for scorer in scorers})
    if len(dims) > 1:
        raise ValueError(f"the scorers' actions differ in size ({dims}); use one n_vertices")
    if method not in SEARCHES:
        raise ValueError(f"unknown search method {method!r}; valid: {sorted(SEARCHES)}")
    search = SEARCHES[method](rng, population_size=population_size, progress=progress, **options)

    def score(actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        batches = [scorer.score(actions) for scorer in scorers]
        per_scene = np.stack([b.rewards for b in batches], axis=1)  # (n, n_scenes)
        return batches[0].actions, per_scene.mean(axis=1), per_scene

    name = f"constant over {len(scorers)} scenes"
    out, per_scene = search._loop(score, dims[0], budget, initial, False, name, "polygon")
    return ConstantResult(
        scenes=tuple(scorer.name for scorer in scorers),
        action=out.best_action,
        mean_reward=out.best_reward,
        scene_rewards=per_scene.astype(np.float64),
        history=out.history,
        n_candidates=out.n_evaluations,
        n_evaluations=out.n_evaluations * len(scorers),
    )
