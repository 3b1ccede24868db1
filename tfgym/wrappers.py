"""Wrappers that adapt TransferFunction-v0 to RL libraries with other conventions.

:func:`float_image_observation` gives the histogram image as ``float32`` in [0, 1],
channel-last ``(bins, bins, 1)``: the convention of Ray RLlib's default image encoders (which
fail on the env's ``uint8``, channel-first ``(1, bins, bins)``) and of most TensorFlow-era
code. It is Gymnasium's own :class:`~gymnasium.wrappers.TransformObservation` with the
matching observation space, so it vectorises and pickles like any Gymnasium wrapper.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import TransformObservation

__all__ = ["float_image_observation", "to_float_image"]


def to_float_image(obs: np.ndarray) -> np.ndarray:
    """A ``uint8`` channel-first image ``(c, h, w)`` as float32 channel-last in [0, 1].

    Example:
        >>> to_float_image(np.full((1, 2, 2), 255, np.uint8)).shape
        (2, 2, 1)
    """
    return np.ascontiguousarray(np.moveaxis(np.asarray(obs), 0, -1), dtype=np.float32) / 255.0


def float_image_observation(env: gym.Env[Any, Any]) -> gym.Env[Any, Any]:
    """Wrap an env with ``Box(0, 255, (c, h, w), uint8)`` observations: float32 [0, 1], HWC.

    Raises:
        ValueError: the env's observations are not a ``uint8`` image ``(c, h, w)``.

    Example:
        >>> import tfgym
        >>> env = float_image_observation(gym.make("TransferFunction-v0", scenes="headsq"))
        >>> obs, _ = env.reset(seed=0)
        >>> obs.shape, obs.dtype, env.observation_space.contains(obs)
        ((64, 64, 1), dtype('float32'), True)
    """
    space = env.observation_space
    if not (
        isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3
    ):
        raise ValueError(f"expected a uint8 (c, h, w) image observation space, got {space}")
    c, h, w = space.shape
    new_space = gym.spaces.Box(0.0, 1.0, (h, w, c), dtype=np.float32)
    return TransformObservation(env, to_float_image, new_space)
