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

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tfgym.scoring import SceneScorer

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

CMAES_POPULATION = 8
"""Default population of :class:`CMAESSearch` (chosen against CEM, see the class)."""
CMAES_SIGMA0 = 0.4
"""Default initial step size of :class:`CMAESSearch`, in action units."""
CMAES_RESTARTS = ("ipop", "random", "off")
"""What :class:`CMAESSearch` does when pycma stops (see its ``restarts``)."""
CMAES_OPTIONS: dict[str, Any] = {"tolx": 1e-3, "tolfun": 1e-4}
"""pycma stopping rules of :class:`CMAESSearch`: steps below a thirtieth of a histogram bin
(the box is 2 wide, 64 bins), or rewards flat to 1e-4, end a run (and start a restart)."""
BEST_KNOWN_BUDGET = 4000
"""Default budget of :func:`best_known_action` (about 7 s a scene at the env's defaults)."""

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


def cma_strategy(
    mean: np.ndarray,
    sigma0: float,
    *,
    population_size: int,
    rng: np.random.Generator,
    **options: Any,
) -> Any:
    """A quiet pycma ``CMAEvolutionStrategy`` over the action box, drawing from ``rng``.

    The one place where tfgym configures pycma (:class:`CMAESSearch` and the search agents
    of :mod:`agents.search_agents` use it): bounds ``[-1, 1]`` (pycma's boundary
    transformation keeps every candidate in the box), no output or log files, no mirrored
    sampling, and pycma's ``randn`` option bound to ``rng`` -- pycma's ``seed`` option
    would reseed numpy's global generator, so it is not used.

    Args:
        mean: initial mean, ``(dim,)`` in ``[-1, 1]``.
        sigma0: initial step size in action units.
        population_size: pycma's ``popsize``: ``ask()`` returns that many candidates and
            ``tell`` wants that many.
        rng: the only source of randomness.
        **options: further pycma options (they override the quiet defaults, not the bounds,
            the population size or ``randn``).

    Returns:
        The ``cma.CMAEvolutionStrategy`` (it minimises: tell it negated rewards).

    Raises:
        ImportError: pycma is not installed.

    Example:
        >>> es = cma_strategy(np.zeros(8), 0.4, population_size=6, rng=np.random.default_rng(0))
        >>> candidates = es.ask()
        >>> len(candidates), bool(np.all(np.abs(candidates) <= 1.0))
        (6, True)
    """
    try:
        import cma
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise ImportError("CMA-ES needs pycma: pip install 'cma>=3.3'") from err

    def randn(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape)

    opts: dict[str, Any] = {"verbose": -9, "verb_log": 0, "verb_disp": 0, "CMA_mirrors": 0}
    opts.update(options)
    opts.update(popsize=int(population_size), bounds=[-1.0, 1.0], randn=randn)
    opts["seed"] = float("nan")  # never np.random.seed
    return cma.CMAEvolutionStrategy(np.asarray(mean, np.float64), float(sigma0), opts)


class CMAESSearch(_Search):
    """CMA-ES (pycma's ``cma.CMAEvolutionStrategy``) over the flat action, bounded to the box.

    Each iteration asks pycma for a full population, scores it in one env call and tells
    pycma the negated rewards (pycma minimises). The box ``[-1, 1]`` is pycma's ``bounds``
    option (:func:`cma_strategy`: every candidate is inside the box). When the budget leaves
    less than a population, the last candidates are the first ones of a full ``ask``, scored
    and never told (pycma learns from complete populations only). When pycma's stopping
    rules fire (:data:`CMAES_OPTIONS`: a converged or flat population), ``restarts`` decides:
    ``"ipop"`` starts a fresh instance from a uniformly random point with twice the
    population (IPOP-CMA-ES, Auger and Hansen 2005), ``"random"`` the same with the same
    population, ``"off"`` keeps the stopped instance sampling. :attr:`n_restarts` counts
    them, :attr:`n_told` the candidates told.

    Randomness: pycma's ``randn`` draws from ``rng`` (see :func:`cma_strategy`), so a run
    depends on ``rng`` only and numpy's global generator is left alone.

    Defaults, measured against CEM and random search (their defaults: population 32) at
    the env's default settings on phantom-32..35 and headsq: best reward after each budget,
    mean over the 5 scenes and 3 seeds (pycma 4.5; about 8 s a 4000-evaluation run for
    every method: pycma's own cost is negligible next to rendering):

    =========================  ======  ======  ======  ======
    budget (env evaluations)      500    1000    2000    4000
    =========================  ======  ======  ======  ======
    random search              0.8682  0.8763  0.8819  0.8855
    CEM                        0.8948  0.9018  0.9058  0.9095
    CMA-ES 8 (default)         0.9065  0.9117  0.9121  0.9125
    CMA-ES 16                  0.9049  0.9109  0.9113  0.9123
    CMA-ES 8, restarts "off"   0.9065  0.9117  0.9119  0.9119
    =========================  ======  ======  ======  ======

    The best rewards ever seen on these scenes average 0.9138: CMA-ES is within 0.0021 of
    them after 1000 evaluations, CEM within 0.0042 after 4000. sigma0 0.25 was worse and
    0.6 no better than 0.4 (populations 8, 16, 32, budgets up to 2000). IPOP restarts pay
    off on multimodal scenes: with two other seeds, CMA-ES 16 without restarts stayed at
    0.944 on headsq where IPOP found 0.9645.

    Args:
        rng: the only source of randomness.
        population_size: candidates per iteration (pycma's ``popsize``; one render call).
        sigma0: initial step size, in action units (the box is 2 wide).
        init_mean: initial mean, ``(2 * n_vertices,)`` in ``[-1, 1]``; default the centre.
        restarts: ``"ipop"``, ``"random"`` or ``"off"`` (above).
        options: further pycma options (e.g. ``{"tolx": 1e-2}``), over
            :data:`CMAES_OPTIONS`.
        progress: show a tqdm progress bar.

    Raises:
        ValueError: for parameters out of range.

    Example:
        >>> from tfgym.scoring import SceneScorer, ScoringSettings
        >>> scorer = SceneScorer("headsq", ScoringSettings(image_size=32))
        >>> cmaes = CMAESSearch(np.random.default_rng(0), population_size=8)
        >>> result = cmaes.run(scorer, budget=20)
        >>> [s.evaluations for s in result.history], cmaes.n_told
        ([8, 16, 20], 16)
    """

    def __init__(
        self,
        rng: np.random.Generator,
        *,
        population_size: int = CMAES_POPULATION,
        sigma0: float = CMAES_SIGMA0,
        init_mean: np.ndarray | None = None,
        restarts: str = "ipop",
        options: dict[str, Any] | None = None,
        progress: bool = False,
    ) -> None:
        """Validate and store the settings."""
        super().__init__(rng, population_size=population_size, progress=progress)
        if not (np.isfinite(sigma0) and 0.0 < sigma0 <= 2.0):
            raise ValueError(f"sigma0 must be in (0, 2], got {sigma0}")
        if restarts not in CMAES_RESTARTS:
            raise ValueError(f"unknown restarts {restarts!r}; valid: {CMAES_RESTARTS}")
        self.sigma0, self.restarts = float(sigma0), restarts
        self.init_mean = None if init_mean is None else np.asarray(init_mean, np.float64)
        if self.init_mean is not None and np.any(np.abs(self.init_mean) > 1.0):
            raise ValueError("init_mean must lie in the action box [-1, 1]")
        self.options = {**CMAES_OPTIONS, **(options or {})}
        self.n_restarts = 0
        self.n_told = 0
        self._popsize = self.population_size
        self._es: Any = None
        self._asked: list[np.ndarray] | None = None

    def _new_es(self, mean: np.ndarray) -> Any:
        return cma_strategy(
            mean, self.sigma0, population_size=self._popsize, rng=self.rng, **self.options
        )

    def _batch_size(self) -> int:
        return self._popsize

    def _start(self, dim: int) -> None:
        if self.init_mean is not None and self.init_mean.shape != (dim,):
            raise ValueError(f"init_mean must have shape ({dim},), got {self.init_mean.shape}")
        mean = np.zeros(dim) if self.init_mean is None else self.init_mean
        self._popsize = self.population_size
        self._es, self._asked = self._new_es(mean), None
        self.n_restarts = self.n_told = 0

    def _propose(self, n: int, dim: int) -> np.ndarray:
        asked = self._es.ask()
        self._asked = asked if n == len(asked) else None  # a partial population is not told
        return np.asarray(asked[:n], dtype=np.float64)

    def _update(self, actions: np.ndarray, rewards: np.ndarray) -> None:
        if self._asked is None:
            return
        self._es.tell(self._asked, [-float(r) for r in rewards])
        self.n_told += len(rewards)
        self._asked = None
        if self.restarts != "off" and self._es.stop():
            if self.restarts == "ipop":
                self._popsize *= 2
            self._es = self._new_es(self.rng.uniform(-1.0, 1.0, len(self._es.mean)))
            self.n_restarts += 1


SEARCHES: dict[str, type[_Search]] = {
    "cem": CrossEntropySearch,
    "cmaes": CMAESSearch,
    "random": RandomSearch,
}
"""The searches :func:`best_constant_action` can run, by name."""


def best_known_action(
    scorer: SceneScorer,
    budget: int = BEST_KNOWN_BUDGET,
    rng: np.random.Generator | None = None,
    *,
    initial: np.ndarray | None = None,
    keep_all: bool = False,
    progress: bool = False,
    **options: Any,
) -> SearchResult:
    """The best TF known for one scene: CMA-ES with IPOP restarts and a large budget.

    The yardstick of the project: a policy's TF for a scan is compared with this one. A
    single IPOP run was as good as several independent runs of the same total budget in the
    comparison of :class:`CMAESSearch` (mean gap to the best reward ever seen on its five
    scenes at 4000 evaluations, 2 seeds: 0.0011 against 0.0016 for four runs of 1000).

    Args:
        scorer: the scene's batch scorer.
        budget: env evaluations.
        rng: the only source of randomness; default ``np.random.default_rng(0)``, so the
            best known TF of a scene at given settings is reproducible.
        initial: actions ``(k, dim)`` scored first (e.g. a policy's TF and the hand-made
            reference TF), so the result is never worse than any of them.
        keep_all: keep every scored action and reward in the result.
        progress: show a tqdm progress bar.
        **options: further arguments of :class:`CMAESSearch` (``population_size``,
            ``sigma0``, ``restarts``, ``options``).

    Returns:
        The :class:`SearchResult`.

    Example:
        >>> from tfgym.scoring import SceneScorer, ScoringSettings
        >>> scorer = SceneScorer("headsq", ScoringSettings(image_size=32))
        >>> best = best_known_action(scorer, 64, initial=np.zeros((1, 8)))
        >>> best.n_evaluations, best.best_reward > 0.9
        (64, True)
    """
    rng = np.random.default_rng(0) if rng is None else rng
    search = CMAESSearch(rng, progress=progress, **options)
    return search.run(scorer, budget, initial=initial, keep_all=keep_all)


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
