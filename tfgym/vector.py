"""Vector envs of TransferFunction-v0 that reset in the same step.

TransferFunction-v0 episodes last one step. Gymnasium's default vector autoreset
(``AutoresetMode.NEXT_STEP``) spends the vector step after every episode's end on the reset
alone -- reward 0, no rendering, action ignored -- so half of all vector steps of this env
would be empty. :func:`make_vector_env` builds the vector env with
``AutoresetMode.SAME_STEP``: every sub-env steps, is scored and is reset in the same vector
step, so every step's reward is a real one. It is the env's registered
``vector_entry_point``, hence what ``gym.make_vec`` returns by default::

    envs = gym.make_vec("tfgym:TransferFunction-v0", num_envs=4, scenes="train")
    envs = gym.make_vec("tfgym:TransferFunction-v0", num_envs=4, vector_mode="async")

Keyword arguments other than the vector's own (``vector_mode``, ``autoreset_mode``,
``context``) go to every sub-env (:class:`tfgym.env.TransferFunctionEnv`), each made by
``gym.make`` (with its order-enforcing and passive-checker wrappers, as in ``make_vec``'s
own ``"sync"`` mode).

Where the step's results are (Gymnasium 1.4, same-step autoreset)
------------------------------------------------------------------
``obs, rewards, terminations, truncations, info = envs.step(actions)``:

* ``rewards[i]``: the reward of sub-env ``i``'s finished episode; ``terminations`` is all
  True, ``truncations`` all False.
* ``obs[i]``: the histogram of the NEXT episode's scene (the sub-env was reset already);
  ``info["scene"]`` (an object array of ``str``, mask ``info["_scene"]``) names it.
* ``info["final_obs"]``: object array ``(num_envs,)``, element ``i`` the finished episode's
  observation (uint8 ``(1, bins, bins)``); mask ``info["_final_obs"]``.
* ``info["final_info"]``: ONE dict of per-env arrays (not a list of dicts), mask
  ``info["_final_info"]`` (bool ``(num_envs,)``, all True here since every episode ends):

  ======================  ====================  =========================================
  key                     array dtype           value for sub-env ``i``
  ======================  ====================  =========================================
  ``oracle_score``        float64               the oracle's score of the step
  ``visibility``,         float64               its components
  ``purity``,
  ``structure``
  ``labels_approximate``  bool
  ``target_plausible``    bool
  ``scene``               object (``str``)      the scene that was scored
  ``tf``                  object                the step's
                                                :class:`tfgym.transfer_function.TransferFunction`
  ``target_warning``      object (``str``)      only where a target is implausible
  ======================  ====================  =========================================

  and for each key a mask ``info["final_info"]["_<key>"]`` (bool ``(num_envs,)``): e.g.
  ``info["final_info"]["oracle_score"][i]`` is valid where
  ``info["final_info"]["_oracle_score"][i]``. Strings and TFs stay Python objects in
  object arrays, as Gymnasium does for any non-numeric info; that is the intended form, so
  ``final_info["tf"][i].lut(ranges)`` works as on a single env.

With the default ``NEXT_STEP`` mode instead, the step's info is the top-level ``info`` of
the same call (no ``final_info``), and the next vector step returns reward 0 and
``terminations`` False for the reset.

Explicit vectorization modes
----------------------------
``gym.make_vec(..., vectorization_mode="sync")`` (or ``"async"``) bypasses this entry point
and builds Gymnasium's vector env with ITS defaults, i.e. ``NEXT_STEP``; pass
``vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}`` to get the
behaviour documented here. With the entry point (no ``vectorization_mode``), ``make_vec``
refuses ``vector_kwargs=`` and ``wrappers=``; use this function's keywords instead.

Seeding: ``envs.reset(seed=s)`` seeds sub-env ``i`` with ``s + i`` (Gymnasium's rule), so
each sub-env draws its own scene stream, reproducibly.

Example:
    >>> import gymnasium as gym
    >>> import numpy as np
    >>> envs = gym.make_vec(
    ...     "tfgym:TransferFunction-v0", num_envs=2, scenes="phantom-00", image_size=32
    ... )
    >>> obs, info = envs.reset(seed=0)
    >>> obs.shape
    (2, 1, 64, 64)
    >>> obs, rewards, terminations, truncations, info = envs.step(envs.action_space.sample())
    >>> bool(terminations.all()), bool(info["_final_info"].all())
    (True, True)
    >>> bool(np.allclose(info["final_info"]["oracle_score"], rewards))
    True
    >>> envs.close()
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

__all__ = ["ENV_ID", "VECTOR_MODES", "make_vector_env"]

ENV_ID = "tfgym:TransferFunction-v0"
"""The id each sub-env is made from (the module prefix imports tfgym in any process)."""

VECTOR_MODES = ("sync", "async")
"""``"sync"``: :class:`gymnasium.vector.SyncVectorEnv` (one process, sub-envs in turn);
``"async"``: :class:`gymnasium.vector.AsyncVectorEnv` (one subprocess per sub-env)."""


def _autoreset_mode(mode: AutoresetMode | str) -> AutoresetMode:
    """An :class:`AutoresetMode`, or ValueError listing the valid ones."""
    if isinstance(mode, AutoresetMode):
        return mode
    valid = [m.value for m in AutoresetMode]
    if isinstance(mode, str):
        for m in AutoresetMode:
            if mode in (m.value, m.name):
                return m
    raise ValueError(f"unknown autoreset_mode {mode!r}; valid: AutoresetMode members or {valid}")


def make_vector_env(
    num_envs: int = 1,
    *,
    vector_mode: str = "sync",
    autoreset_mode: AutoresetMode | str = AutoresetMode.SAME_STEP,
    context: str | None = None,
    **env_kwargs: Any,
) -> SyncVectorEnv | AsyncVectorEnv:
    """A vector env of ``num_envs`` TransferFunction-v0 envs, same-step autoreset by default.

    The ``vector_entry_point`` of TransferFunction-v0: ``gym.make_vec(id, num_envs, **kw)``
    calls ``make_vector_env(num_envs=num_envs, **kw)``. See the module docstring for where
    each step's reward, observation and info are.

    Args:
        num_envs: sub-envs, at least 1.
        vector_mode: ``"sync"`` (one process) or ``"async"`` (a subprocess per sub-env,
            :data:`VECTOR_MODES`).
        autoreset_mode: a :class:`gymnasium.vector.AutoresetMode` or its value
            (``"SameStep"``, ``"NextStep"``, ``"Disabled"``); default ``SAME_STEP``.
        context: multiprocessing start method of the async mode (``"fork"``, ``"spawn"``,
            ``"forkserver"``; None: Python's default). Only with ``vector_mode="async"``.
        **env_kwargs: arguments of every sub-env (:class:`tfgym.env.TransferFunctionEnv`,
            e.g. ``scenes``, ``reward_backend``, ``image_size``).

    Returns:
        A :class:`gymnasium.vector.SyncVectorEnv` or :class:`gymnasium.vector.AsyncVectorEnv`.

    Raises:
        ValueError: a bad ``num_envs``, ``vector_mode``, ``autoreset_mode`` or ``context``,
            or a bad sub-env argument (the first sub-env is built in this process).

    Example:
        >>> envs = make_vector_env(2, scenes="phantom-00", image_size=32)
        >>> type(envs).__name__, envs.metadata["autoreset_mode"].value
        ('SyncVectorEnv', 'SameStep')
        >>> envs.close()
    """
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
    if vector_mode not in VECTOR_MODES:
        raise ValueError(f"unknown vector_mode {vector_mode!r}; valid: {list(VECTOR_MODES)}")
    mode = _autoreset_mode(autoreset_mode)
    make = functools.partial(gym.make, ENV_ID, **env_kwargs)
    if vector_mode == "sync":
        if context is not None:
            raise ValueError(f"context={context!r} is only used with vector_mode='async'")
        return SyncVectorEnv([make] * num_envs, autoreset_mode=mode)
    if context is not None and context not in ("fork", "spawn", "forkserver"):
        raise ValueError(
            f"unknown context {context!r}; valid: 'fork', 'spawn', 'forkserver' or None"
        )
    return AsyncVectorEnv([make] * num_envs, autoreset_mode=mode, context=context)
