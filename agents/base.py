"""The agent interface: what SB3 models and tfgym's own agents have in common.

Two :func:`typing.runtime_checkable` protocols, so that evaluation and the command line take
any of them without knowing who made it:

* :class:`Policy` -- anything that acts: Stable-Baselines3's ``predict`` signature,
  ``predict(observation, state=None, episode_start=None, deterministic=...) -> (action,
  state)``. One observation ``(1, bins, bins)`` gives one action ``(2 * n_vertices,)``; a
  batch ``(n, 1, bins, bins)`` gives ``(n, 2 * n_vertices)``.
  :class:`agents.constant.ConstantPolicy` is one.
* :class:`Agent` -- a policy that also learns from env steps, ``learn(total_timesteps,
  ...) -> self``. An SB3 model (``PPO``, ``SAC``, ``TD3``) is one as it is, and so are the
  search agents of :mod:`agents.search_agents`.

SB3's ``predict`` defaults to ``deterministic=False`` while tfgym's agents default to
``True``: callers that evaluate should always pass ``deterministic=True``.

``isinstance(x, Agent)`` checks that the methods exist, not their signatures (Python's
runtime protocols); mypy checks the signatures.

:func:`observation_key` is the key under which agents remember a scene: a hash of the
observation's bytes (the histogram image identifies the scan and its settings).

:class:`StepAgent` is the base of tfgym's own agents (:mod:`agents.search_agents`): made
like an SB3 model, ``Agent(env, seed=...)``, it steps its env itself in ``learn`` (seeded
``reset``, one action per episode, a tqdm bar with ``progress_bar=True``), answers
``predict`` for one observation or a batch, and saves to / loads from JSON (never a pickle
of the env).

Example:
    >>> from agents.constant import ConstantPolicy
    >>> policy = ConstantPolicy(np.array([-0.2, -1, 1, -1, 1, 1, -0.2, 1]))
    >>> isinstance(policy, Policy), isinstance(policy, Agent)  # it acts but does not learn
    (True, False)
    >>> observation_key(np.zeros((1, 4, 4), np.uint8))
    'f90b174646861b4702e69a2f1b04aa32'
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections import deque
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import gymnasium as gym
import numpy as np

__all__ = ["AGENT_FORMAT", "Agent", "Policy", "StepAgent", "observation_key"]

AGENT_FORMAT = "tfgym-agent/1"
"""The ``format`` field of a saved :class:`StepAgent` (JSON)."""

_Self = TypeVar("_Self", bound="StepAgent")


@runtime_checkable
class Policy(Protocol):
    """Anything that answers SB3's ``predict``."""

    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = ...,
    ) -> tuple[np.ndarray, Any]:
        """Actions for one observation or a batch of them.

        Args:
            observation: uint8 ``(1, bins, bins)`` or a batch ``(n, 1, bins, bins)``.
            state: recurrent state (None for feed-forward agents).
            episode_start: which batch entries start an episode (recurrent agents only).
            deterministic: the most likely action instead of a sample.

        Returns:
            ``(action, state)``: float32 ``(2 * n_vertices,)`` or ``(n, 2 * n_vertices)``,
            and the next recurrent state.
        """
        ...


@runtime_checkable
class Agent(Policy, Protocol):
    """A :class:`Policy` that learns from steps of the env it was made with."""

    def learn(self, total_timesteps: int, *, progress_bar: bool = ...) -> Agent:
        """Learn from ``total_timesteps`` further env steps.

        Args:
            total_timesteps: env steps to take.
            progress_bar: show a progress bar.

        Returns:
            The agent itself.
        """
        ...


def observation_key(observation: np.ndarray) -> str:
    """The key under which an agent remembers an observation: a hash of its bytes.

    Two observations get the same key exactly when they have the same shape, dtype and
    values (a 128-bit BLAKE2b digest; collisions are not a practical concern).

    Args:
        observation: one observation, e.g. uint8 ``(1, bins, bins)``.

    Returns:
        32 hexadecimal characters.
    """
    obs = np.ascontiguousarray(observation)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{obs.dtype.str}{obs.shape}".encode())
    digest.update(obs.tobytes())
    return digest.hexdigest()


class StepAgent(ABC):
    """Base of agents that learn from the steps of a one-step env (a contextual bandit).

    ``learn`` runs the loop ``obs = reset(); action = act(obs); reward = step(action)``:
    the first reset after :meth:`set_env` is seeded with ``seed`` (fresh agents) and every
    episode must end after its one step (else ``ValueError``). Subclasses say what to play
    (:meth:`_act`), what to learn from the reward (:meth:`_record`), what to answer
    (:meth:`_action_for`) and what to save (:meth:`_config`, :meth:`_state`,
    :meth:`_load_state`).

    Args:
        env: a Gymnasium env with a ``Box(-1, 1, (dim,))`` action space (``gym.make``'s
            wrappers are fine; not a vector env). None only for :meth:`load`.
        seed: seeds the agent's generator and the env's first reset.

    Raises:
        TypeError: a vector env or something that is not a Gymnasium env.
        ValueError: an action space that is not a flat ``Box(-1, 1)``.
    """

    def __init__(self, env: gym.Env | None, *, seed: int | None = None) -> None:
        """Store the seed and check the env."""
        self.seed = None if seed is None else int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.num_timesteps = 0
        self.env: gym.Env | None = None
        self.observation_shape: tuple[int, ...] = ()
        self.observation_dtype: np.dtype[Any] = np.dtype(np.uint8)
        self.action_dim = 0
        self._obs: np.ndarray | None = None
        self._seeded = False
        if env is not None:
            self.set_env(env)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_timesteps={self.num_timesteps})"

    # -- the env --------------------------------------------------------------------------
    def set_env(self, env: gym.Env) -> None:
        """Use ``env`` for further learning (its spaces must match the agent's).

        Raises:
            TypeError: a vector env or something that is not a Gymnasium env.
            ValueError: unsuitable spaces, or spaces that differ from the agent's.
        """
        if not isinstance(env, gym.Env):  # vector envs (Gymnasium, SB3) are not
            raise TypeError(
                f"{type(self).__name__} steps one Gymnasium env (gym.make(...)), "
                f"got {type(env).__name__}"
            )
        space = env.action_space
        if not (
            isinstance(space, gym.spaces.Box)
            and len(space.shape) == 1
            and np.all(space.low == -1.0)
            and np.all(space.high == 1.0)
        ):
            raise ValueError(f"the env's action space must be a flat Box(-1, 1), got {space}")
        obs_shape = tuple(int(n) for n in env.observation_space.shape or ())
        obs_dtype = np.dtype(env.observation_space.dtype)
        if self.action_dim and (space.shape[0], obs_shape) != (
            self.action_dim,
            self.observation_shape,
        ):
            raise ValueError(
                f"the env's spaces (action {space.shape[0]}, observation {obs_shape}) differ "
                f"from the agent's (action {self.action_dim}, observation "
                f"{self.observation_shape})"
            )
        self.env, self.action_dim = env, int(space.shape[0])
        self.observation_shape, self.observation_dtype = obs_shape, obs_dtype
        self._obs, self._seeded = None, False

    def _reset(self) -> np.ndarray:
        assert self.env is not None
        if self._seeded:
            seed = None
        elif self.num_timesteps == 0:
            seed = self.seed  # a fresh agent: the env's first reset is seeded like SB3's
        else:
            seed = int(self.rng.integers(2**31))  # a loaded agent: derived from its seed
        self._seeded = True
        obs, _ = self.env.reset(seed=seed)
        return np.asarray(obs)

    # -- learning -------------------------------------------------------------------------
    def learn(self: _Self, total_timesteps: int, *, progress_bar: bool = False) -> _Self:
        """Take ``total_timesteps`` env steps and learn from each.

        Args:
            total_timesteps: env steps (episodes) to take; learning continues where the
                previous call stopped.
            progress_bar: show a tqdm bar with the mean reward of the last 100 steps.

        Returns:
            The agent itself.

        Raises:
            RuntimeError: the agent has no env (loaded without one: :meth:`set_env`).
            ValueError: a negative ``total_timesteps``, or an episode that did not end
                after one step.
        """
        if self.env is None:
            raise RuntimeError(f"{type(self).__name__} has no env: call set_env(env) first")
        if total_timesteps < 0:
            raise ValueError(f"total_timesteps must be >= 0, got {total_timesteps}")
        bar = None
        if progress_bar:
            from tqdm.auto import tqdm

            bar = tqdm(total=int(total_timesteps), desc=type(self).__name__, unit="step")
        recent: deque[float] = deque(maxlen=100)
        try:
            for _ in range(int(total_timesteps)):
                obs = self._reset() if self._obs is None else self._obs
                key = observation_key(obs)
                action = np.clip(np.asarray(self._act(key), np.float32), -1.0, 1.0)
                self._obs = None
                _, reward, terminated, truncated, _ = self.env.step(action)
                if not (terminated or truncated):
                    raise ValueError(
                        f"{type(self).__name__} needs one-step episodes (TransferFunction-v0); "
                        "this env's episode did not end after its step"
                    )
                self.num_timesteps += 1
                self._record(key, action, float(reward))
                recent.append(float(reward))
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(mean_reward=f"{np.mean(recent):.3f}", refresh=False)
        finally:
            if bar is not None:
                bar.close()
        return self

    @abstractmethod
    def _act(self, key: str) -> np.ndarray:
        """The action to play on the observation of key ``key`` (during learning)."""

    @abstractmethod
    def _record(self, key: str, action: np.ndarray, reward: float) -> None:
        """Learn from the reward of ``action`` (float32, in the box) on observation ``key``."""

    @abstractmethod
    def _action_for(self, key: str) -> np.ndarray:
        """The deterministic answer for an observation of key ``key``."""

    # -- acting ---------------------------------------------------------------------------
    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        """The agent's action for one observation or a batch (SB3's signature).

        Args:
            observation: ``observation_shape`` or a batch ``(n, *observation_shape)``.
            state: recurrent state (unused, returned as is).
            episode_start: unused.
            deterministic: unused (the answer is always deterministic).

        Returns:
            ``(action, state)``: float32 ``(dim,)`` or ``(n, dim)`` in ``[-1, 1]``.

        Raises:
            ValueError: an observation of the wrong shape.
            RuntimeError: the agent has not learned anything yet.
        """
        del episode_start, deterministic
        if self.num_timesteps == 0:
            raise RuntimeError(f"{type(self).__name__} has not learned yet: call learn() first")
        obs = np.asarray(observation)
        shape = self.observation_shape
        if obs.shape == shape:
            return self._answer(obs), state
        if obs.ndim == len(shape) + 1 and obs.shape[1:] == shape:
            return np.stack([self._answer(o) for o in obs]), state
        raise ValueError(f"observation must have shape {shape} or (n, *{shape}), got {obs.shape}")

    def _answer(self, obs: np.ndarray) -> np.ndarray:
        key = observation_key(obs.astype(self.observation_dtype, copy=False))
        action = np.clip(np.asarray(self._action_for(key), np.float32), -1.0, 1.0)
        return action.reshape(self.action_dim)

    # -- saving ---------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        """Constructor keyword arguments (besides ``env`` and ``seed``), JSON-serialisable."""
        return {}

    @abstractmethod
    def _state(self) -> dict[str, Any]:
        """What :meth:`predict` needs, JSON-serialisable."""

    @abstractmethod
    def _load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`_state`."""

    def save(self, path: str | Path) -> Path:
        """Write the agent as JSON: its settings and everything ``predict`` needs.

        The searches' internal state (e.g. CMA-ES covariances) is not saved: a loaded agent
        predicts exactly as the saved one, and further learning restarts the searches from
        the saved actions.

        Args:
            path: the file to write (folders are created).

        Returns:
            The path written.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "format": AGENT_FORMAT,
            "class": type(self).__name__,
            "seed": self.seed,
            "num_timesteps": self.num_timesteps,
            "observation_shape": list(self.observation_shape),
            "observation_dtype": self.observation_dtype.str,
            "action_dim": self.action_dim,
            "config": self._config(),
            "state": self._state(),
        }
        path.write_text(json.dumps(data))
        return path

    @classmethod
    def load(cls: type[_Self], path: str | Path, env: gym.Env | None = None) -> _Self:
        """Read an agent that :meth:`save` wrote.

        Args:
            path: the JSON file.
            env: the env for further learning (optional; see :meth:`set_env`).

        Returns:
            The agent; its generator is seeded from the saved seed and step count.

        Raises:
            ValueError: not a saved tfgym agent, or one of another class.
        """
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict) or data.get("format") != AGENT_FORMAT:
            raise ValueError(f"{path} is not a saved tfgym agent (format {AGENT_FORMAT})")
        if data["class"] != cls.__name__:
            raise ValueError(f"{path} holds a {data['class']}, not a {cls.__name__}")
        agent = cls(None, seed=data["seed"], **data["config"])
        agent.num_timesteps = int(data["num_timesteps"])
        if agent.seed is not None:
            agent.rng = np.random.default_rng([agent.seed, agent.num_timesteps])
        agent.observation_shape = tuple(int(n) for n in data["observation_shape"])
        agent.observation_dtype = np.dtype(data["observation_dtype"])
        agent.action_dim = int(data["action_dim"])
        agent._load_state(data["state"])
        if env is not None:
            agent.set_env(env)
        return agent
