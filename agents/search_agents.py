"""Search agents: per-scan search and the constant polygon, learned from env steps.

The search baselines of :mod:`tfgym.search` score whole populations on a scene they are
given; these agents get only what an RL agent gets -- a budget of env steps on the scenes
the env draws -- so their curves compare with PPO's step for step. Each is made like an SB3
model, ``Agent(env, seed=...)``, learns with ``learn(total_timesteps, progress_bar=...)``,
acts with ``predict`` and saves to JSON (:class:`agents.base.StepAgent`).

* :class:`RandomSearchAgent` -- plays uniformly random polygons and remembers, per scene
  (:func:`agents.base.observation_key` of the observation), the best polygon it saw there.
* :class:`CMAESAgent` -- one CMA-ES search per scene (pycma, one candidate per step, told
  when its population is complete), plus a constant-polygon CMA-ES on a share of the steps.
* :class:`ConstantAgent` -- one polygon for every scene: CMA-ES over the constant action,
  each candidate played on the scene the env drew; ``.policy`` is its
  :class:`agents.constant.ConstantPolicy`.

**Known and unknown scenes.** ``predict`` answers a scene seen in learning (and still
remembered: at most ``max_scenes``, least recently seen out) with the best action seen
there, whose reward was measured. Anything else -- a held-out scan -- gets the agent's
*fallback*, its estimate of the polygon with the best **mean** reward over the scenes the
env draws (an action's reward on one scene says little about the others):

* :class:`RandomSearchAgent`: each random polygon is played on ``repeats`` consecutive
  episodes (scenes drawn independently by the env; from any one scene's view the actions
  stay uniformly random), and the fallback is the polygon with the highest mean reward over
  its ``repeats`` episodes (the first such, on ties); before any polygon has completed its
  episodes, the polygon being played.
* :class:`CMAESAgent` and :class:`ConstantAgent`: the mean of the constant-polygon CMA-ES
  distribution (pycma's ``xfavorite``). That search maximises the expected reward over the
  env's scenes: each candidate is played once, on the scene the env drew, and pycma is
  told its reward minus that scene's baseline (the mean reward the search got there
  before), which removes most of the scene-to-scene noise; the distribution's mean, not
  the luckiest candidate, is the estimate.

Measured (train scenes, ``image_size=32``, mean oracle score of the answer over the 32
train scenes, 4 seeds): :class:`ConstantAgent` reaches 0.565 after 480 steps and 0.601
after 1000 (its first population averages 0.37); without the baseline it fell from 0.589
at 1000 steps to 0.515 at 3000. :func:`tfgym.search.best_constant_action`, which scores
every candidate on all 32 scenes, reaches 0.58-0.61 with 3000 evaluations.

Example:
    >>> import gymnasium as gym
    >>> env = gym.make("tfgym:TransferFunction-v0", scenes="headsq", image_size=16)
    >>> agent = CMAESAgent(env, seed=0).learn(20)
    >>> obs, _ = env.reset(seed=1)
    >>> agent.predict(obs)[0].shape, agent.predict(obs[None])[0].shape
    ((8,), (1, 8))
"""

from __future__ import annotations

from abc import abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from agents.base import StepAgent
from agents.constant import ConstantPolicy
from tfgym.search import CMAES_OPTIONS, CMAES_SIGMA0, cma_strategy

__all__ = ["MAX_BASELINES", "CMAESAgent", "ConstantAgent", "RandomSearchAgent"]

MAX_BASELINES = 4096
"""Scenes whose reward baseline a constant-polygon search keeps, least recently seen out."""


@dataclass
class _Best:
    """The best action seen on one scene."""

    action: np.ndarray
    reward: float
    steps: int = 1


class _PlayedCMA:
    """A pycma search played one candidate per env step.

    ``candidate()`` is the next candidate of the current population (a population is asked
    when none is pending); ``record(reward)`` scores it, and a complete population is told
    (negated rewards: pycma minimises). pycma's stopping rules are
    :data:`tfgym.search.CMAES_OPTIONS`; when it stops, a fresh instance starts from a
    uniformly random point with the initial step size (``restarts`` counts them).
    """

    def __init__(
        self,
        mean: np.ndarray,
        *,
        sigma0: float,
        population_size: int,
        rng: np.random.Generator,
        restart: bool,
    ) -> None:
        self.sigma0, self.population_size, self.rng = sigma0, population_size, rng
        self.restart = restart
        self.es = self._new(mean)
        self.asked: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.restarts = 0
        self.n_told = 0  # candidates told so far

    def _new(self, mean: np.ndarray) -> Any:
        return cma_strategy(
            np.clip(mean, -1.0, 1.0), self.sigma0, population_size=self.population_size,
            rng=self.rng, **(CMAES_OPTIONS if self.restart else {}),
        )  # fmt: skip

    def candidate(self) -> np.ndarray:
        if not self.asked:
            self.asked = list(self.es.ask())
        return np.asarray(self.asked[len(self.rewards)], np.float32)

    def record(self, reward: float) -> None:
        self.rewards.append(reward)
        if len(self.rewards) == len(self.asked):
            self.es.tell(self.asked, [-r for r in self.rewards])
            self.n_told += len(self.asked)
            self.asked, self.rewards = [], []
            if self.restart and self.es.stop():
                self.es = self._new(self.rng.uniform(-1.0, 1.0, len(self.es.mean)))
                self.restarts += 1

    @property
    def mean(self) -> np.ndarray:
        """The distribution's mean in the box, float32."""
        return np.clip(np.asarray(self.es.result.xfavorite), -1.0, 1.0).astype(np.float32)


class _ConstantCMA(_PlayedCMA):
    """The constant-polygon search: rewards are told relative to the scene's baseline.

    A candidate is played on one scene, and scenes differ in how high any polygon scores on
    them; that difference is noise to the constant search (without correction pycma's step
    size collapsed and its mean drifted to worse polygons: 0.59 -> 0.51 mean train reward
    from 1000 to 3000 steps). So pycma is told ``reward - baseline``, the baseline being the
    mean reward the constant search got on that scene before (on a new scene: its mean over
    all scenes so far; 0 at first). No restarts: the mean is the answer.
    """

    def __init__(
        self, mean: np.ndarray, *, sigma0: float, population_size: int, rng: np.random.Generator
    ) -> None:
        super().__init__(
            mean, sigma0=sigma0, population_size=population_size, rng=rng, restart=False
        )
        self.scene_rewards: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self.total, self.count = 0.0, 0

    def record_on(self, key: str, reward: float) -> None:
        """Score the current candidate, played on the scene of key ``key``."""
        total, count = self.scene_rewards.pop(key, (0.0, 0))
        if count:
            baseline = total / count
        else:
            baseline = self.total / self.count if self.count else 0.0
        self.scene_rewards[key] = (total + reward, count + 1)
        if len(self.scene_rewards) > MAX_BASELINES:
            self.scene_rewards.popitem(last=False)
        self.total, self.count = self.total + reward, self.count + 1
        self.record(reward - baseline)


class _SceneAgent(StepAgent):
    """A :class:`StepAgent` that remembers the best action per scene (bounded, LRU)."""

    def __init__(self, env: gym.Env | None, *, seed: int | None, max_scenes: int) -> None:
        if max_scenes < 1:
            raise ValueError(f"max_scenes must be at least 1, got {max_scenes}")
        self.max_scenes = int(max_scenes)
        self.scenes: OrderedDict[str, _Best] = OrderedDict()
        super().__init__(env, seed=seed)

    def _remember(self, key: str, action: np.ndarray, reward: float) -> None:
        best = self.scenes.get(key)
        if best is None:
            self.scenes[key] = _Best(action.copy(), reward)
            while len(self.scenes) > self.max_scenes:
                self._forget(self.scenes.popitem(last=False)[0])
            return
        self.scenes.move_to_end(key)
        best.steps += 1
        if reward > best.reward:
            best.action, best.reward = action.copy(), reward

    def _forget(self, key: str) -> None:
        """Hook: ``key`` fell out of the memory."""

    @property
    @abstractmethod
    def fallback(self) -> np.ndarray:
        """The answer for an unknown observation (see the module docstring)."""

    def _action_for(self, key: str) -> np.ndarray:
        best = self.scenes.get(key)
        return self.fallback if best is None else best.action

    def _scenes_state(self) -> list[list[Any]]:
        return [[k, b.action.tolist(), b.reward, b.steps] for k, b in self.scenes.items()]

    def _load_scenes(self, rows: list[list[Any]]) -> None:
        self.scenes = OrderedDict(
            (k, _Best(np.asarray(a, np.float32), float(r), int(n))) for k, a, r, n in rows
        )


class RandomSearchAgent(_SceneAgent):
    """Uniform random search per scene; the fallback is the best random polygon on average.

    Args:
        env: the env to learn in (see :class:`agents.base.StepAgent`).
        seed: seeds the agent and the env's first reset.
        repeats: consecutive episodes each random polygon is played on (the fallback's
            mean reward is over them).
        max_scenes: scenes remembered, least recently seen out.

    Raises:
        ValueError: ``repeats`` or ``max_scenes`` below 1.

    Example:
        >>> import gymnasium as gym
        >>> env = gym.make("tfgym:TransferFunction-v0", scenes="headsq", image_size=16)
        >>> agent = RandomSearchAgent(env, seed=0, repeats=2).learn(6)
        >>> obs, _ = env.reset()
        >>> from agents.base import observation_key
        >>> best = agent.scenes[observation_key(obs)]
        >>> best.steps, bool(np.array_equal(agent.predict(obs)[0], best.action))
        (6, True)
    """

    def __init__(
        self,
        env: gym.Env | None,
        *,
        seed: int | None = None,
        repeats: int = 8,
        max_scenes: int = 1024,
    ) -> None:
        """Check the settings and the env."""
        if repeats < 1:
            raise ValueError(f"repeats must be at least 1, got {repeats}")
        self.repeats = int(repeats)
        self._candidate: np.ndarray | None = None  # the polygon being played
        self._sum, self._n = 0.0, 0  # its reward sum and episodes so far
        self._best: np.ndarray | None = None  # the best polygon that completed its episodes
        self.best_mean_reward = -np.inf
        super().__init__(env, seed=seed, max_scenes=max_scenes)

    def _act(self, key: str) -> np.ndarray:
        if self._candidate is None or self._n >= self.repeats:
            self._candidate = self.rng.uniform(-1.0, 1.0, self.action_dim).astype(np.float32)
            self._sum, self._n = 0.0, 0
        return self._candidate

    def _record(self, key: str, action: np.ndarray, reward: float) -> None:
        self._remember(key, action, reward)
        self._sum, self._n = self._sum + reward, self._n + 1
        if self._n == self.repeats and self._sum / self._n > self.best_mean_reward:
            assert self._candidate is not None
            self._best, self.best_mean_reward = self._candidate.copy(), self._sum / self._n

    @property
    def fallback(self) -> np.ndarray:
        """The polygon with the best mean reward over its ``repeats`` episodes."""
        action = self._best if self._best is not None else self._candidate
        if action is None:
            raise RuntimeError("RandomSearchAgent has not learned yet: call learn() first")
        return action

    def _config(self) -> dict[str, Any]:
        return {"repeats": self.repeats, "max_scenes": self.max_scenes}

    def _state(self) -> dict[str, Any]:
        return {
            "scenes": self._scenes_state(),
            "fallback": self.fallback.tolist(),
            "best_mean_reward": None if self._best is None else self.best_mean_reward,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self._load_scenes(state["scenes"])
        self._candidate = np.asarray(state["fallback"], np.float32)
        self._n = self.repeats  # a new polygon at the next step
        if state["best_mean_reward"] is not None:
            self._best, self.best_mean_reward = self._candidate, float(state["best_mean_reward"])


class CMAESAgent(_SceneAgent):
    """CMA-ES per scene, and CMA-ES over the constant polygon for unknown scenes.

    On each step, with probability ``constant_fraction`` the agent plays the next candidate
    of its constant-polygon search (whatever the scene); otherwise the next candidate of the
    scene's own search. A scene's search starts, when the scene is first seen, at the
    constant search's current mean (what the agent would answer for it), with step size
    ``sigma0``. Every step's reward also updates the scene's best action.

    Args:
        env: the env to learn in (see :class:`agents.base.StepAgent`).
        seed: seeds the agent and the env's first reset.
        population_size: candidates per population of a scene's search (a population is
            complete after that many visits of the scene).
        constant_population_size: candidates per population of the constant search.
        sigma0: initial step size of every search, in action units.
        constant_fraction: share of the steps given to the constant search, in [0, 1].
        max_scenes: scenes (and their searches) remembered, least recently seen out.

    Raises:
        ValueError: settings out of range.
    """

    def __init__(
        self,
        env: gym.Env | None,
        *,
        seed: int | None = None,
        population_size: int = 8,
        constant_population_size: int = 32,
        sigma0: float = CMAES_SIGMA0,
        constant_fraction: float = 0.25,
        max_scenes: int = 1024,
    ) -> None:
        """Check the settings and the env."""
        if min(population_size, constant_population_size) < 2:
            raise ValueError("population sizes must be at least 2")
        if not 0.0 < sigma0 <= 2.0:
            raise ValueError(f"sigma0 must be in (0, 2], got {sigma0}")
        if not 0.0 <= constant_fraction <= 1.0:
            raise ValueError(f"constant_fraction must be in [0, 1], got {constant_fraction}")
        self.population_size = int(population_size)
        self.constant_population_size = int(constant_population_size)
        self.sigma0, self.constant_fraction = float(sigma0), float(constant_fraction)
        self.searches: dict[str, _PlayedCMA] = {}
        self._constant: _ConstantCMA | None = None
        self._start: np.ndarray | None = None  # the constant search's start (after a load)
        self._playing_constant = False
        self.n_constant_steps = 0  # steps given to the constant search
        super().__init__(env, seed=seed, max_scenes=max_scenes)

    @property
    def constant(self) -> _ConstantCMA:
        """The constant-polygon search (made on first use)."""
        if self._constant is None:
            start = np.zeros(self.action_dim) if self._start is None else self._start
            self._constant = _ConstantCMA(
                start, sigma0=self.sigma0, population_size=self.constant_population_size,
                rng=self.rng,
            )  # fmt: skip
        return self._constant

    @property
    def fallback(self) -> np.ndarray:
        """The constant search's mean (before any learning: its start)."""
        if self._constant is None and self._start is not None:
            return self._start.astype(np.float32)
        return self.constant.mean

    def _act(self, key: str) -> np.ndarray:
        self._playing_constant = bool(self.rng.random() < self.constant_fraction)
        if self._playing_constant:
            return self.constant.candidate()
        search = self.searches.get(key)
        if search is None:
            best = self.scenes.get(key)
            search = self.searches[key] = _PlayedCMA(
                self.fallback if best is None else best.action, sigma0=self.sigma0,
                population_size=self.population_size, rng=self.rng, restart=True,
            )  # fmt: skip
        return search.candidate()

    def _record(self, key: str, action: np.ndarray, reward: float) -> None:
        if self._playing_constant:
            self.constant.record_on(key, reward)
            self.n_constant_steps += 1
        else:
            self.searches[key].record(reward)
        self._remember(key, action, reward)

    def _forget(self, key: str) -> None:
        self.searches.pop(key, None)

    def _config(self) -> dict[str, Any]:
        return {
            "population_size": self.population_size,
            "constant_population_size": self.constant_population_size,
            "sigma0": self.sigma0,
            "constant_fraction": self.constant_fraction,
            "max_scenes": self.max_scenes,
        }

    def _state(self) -> dict[str, Any]:
        return {"scenes": self._scenes_state(), "fallback": self.fallback.tolist()}

    def _load_state(self, state: dict[str, Any]) -> None:
        self._load_scenes(state["scenes"])
        self._start, self._constant = np.asarray(state["fallback"], np.float32), None


class ConstantAgent(StepAgent):
    """One polygon for every scene: CMA-ES over the constant action, from env steps.

    Every step plays the next candidate of one CMA-ES search on the scene the env drew
    (told relative to the scene's baseline, see the module docstring); the answer for
    every observation is the search's mean (:attr:`action`). The noise of one-scene
    evaluations wants a large population (32: 0.61 mean train reward after 3000 steps,
    against 0.59 with 16).

    Args:
        env: the env to learn in (see :class:`agents.base.StepAgent`).
        seed: seeds the agent and the env's first reset.
        population_size: candidates per population (each on its own episode).
        sigma0: initial step size in action units.
        init_action: where the search starts, ``(dim,)`` in ``[-1, 1]``; default the centre.

    Raises:
        ValueError: settings out of range.
    """

    def __init__(
        self,
        env: gym.Env | None,
        *,
        seed: int | None = None,
        population_size: int = 32,
        sigma0: float = CMAES_SIGMA0,
        init_action: np.ndarray | list[float] | None = None,
    ) -> None:
        """Check the settings and the env."""
        if population_size < 2:
            raise ValueError(f"population_size must be at least 2, got {population_size}")
        if not 0.0 < sigma0 <= 2.0:
            raise ValueError(f"sigma0 must be in (0, 2], got {sigma0}")
        self.population_size, self.sigma0 = int(population_size), float(sigma0)
        self.init_action = None if init_action is None else np.asarray(init_action, np.float32)
        self._search: _ConstantCMA | None = None
        self._action: np.ndarray | None = None  # the saved action of a loaded agent
        super().__init__(env, seed=seed)
        dim = self.action_dim
        if self.init_action is not None and dim and self.init_action.shape != (dim,):
            raise ValueError(
                f"init_action must have shape ({self.action_dim},), got {self.init_action.shape}"
            )

    @property
    def search(self) -> _ConstantCMA:
        """The CMA-ES search (made on first use; after a load it starts at the action)."""
        if self._search is None:
            start = self._action if self._action is not None else self.init_action
            self._search = _ConstantCMA(
                np.zeros(self.action_dim) if start is None else start, sigma0=self.sigma0,
                population_size=self.population_size, rng=self.rng,
            )  # fmt: skip
        return self._search

    @property
    def action(self) -> np.ndarray:
        """The constant polygon, float32 ``(dim,)`` in ``[-1, 1]``: the search's mean."""
        if self._search is None and self._action is not None:
            return self._action
        return self.search.mean

    @property
    def policy(self) -> ConstantPolicy:
        """The :class:`agents.constant.ConstantPolicy` of :attr:`action`."""
        return ConstantPolicy(self.action)

    def _act(self, key: str) -> np.ndarray:
        return self.search.candidate()

    def _record(self, key: str, action: np.ndarray, reward: float) -> None:
        self.search.record_on(key, reward)

    def _action_for(self, key: str) -> np.ndarray:
        return self.action

    def _config(self) -> dict[str, Any]:
        init = None if self.init_action is None else self.init_action.tolist()
        return {"population_size": self.population_size, "sigma0": self.sigma0, "init_action": init}

    def _state(self) -> dict[str, Any]:
        return {"action": self.action.tolist()}

    def _load_state(self, state: dict[str, Any]) -> None:
        self._action, self._search = np.asarray(state["action"], np.float32), None
