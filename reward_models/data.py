"""Preference records as arrays for reward-model training.

:class:`PreferenceTensors` holds every pair of a preference data set as flat arrays: the JH
image of each distinct scene once (``observations``), and per pair the scene's row
(``scene_index``), the two actions and the answer ``mu``. It is built from any sequence of
records with ``.scene``, ``.action_a``, ``.action_b`` and ``.mu`` (e.g.
:class:`tfgym.preferences.Preference`); each scene is loaded once with
:func:`tfgym.scene.load_scene`. Splits and bootstrap resamples take an explicit
``np.random.Generator``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PreferenceTensors"]


@dataclass(frozen=True)
class PreferenceTensors:
    """Preference pairs as arrays.

    Attributes:
        scene_names: the distinct scenes, in order of first appearance.
        observations: their JH images, uint8 ``(n_scenes, 1, bins, bins)``.
        scene_index: each pair's row of ``observations``, int64 ``(n,)``.
        action_a: float32 ``(n, 2 * n_vertices)`` in [-1, 1].
        action_b: float32 ``(n, 2 * n_vertices)``.
        mu: float32 ``(n,)`` answers in [0, 1] (1 = a chosen, 0.5 = tie, 0 = b chosen).

    Example:
        >>> obs = np.zeros((1, 1, 8, 8), np.uint8)
        >>> a = np.zeros((4, 8), np.float32)
        >>> data = PreferenceTensors(("s",), obs, np.zeros(4, np.int64), a, a + 0.5,
        ...                          np.array([1, 0, 0.5, 1], np.float32))
        >>> train, val = data.split(0.25, np.random.default_rng(0))
        >>> len(train), len(val), data.n_ties
        (3, 1, 1)
    """

    scene_names: tuple[str, ...]
    observations: np.ndarray
    scene_index: np.ndarray
    action_a: np.ndarray
    action_b: np.ndarray
    mu: np.ndarray

    def __post_init__(self) -> None:
        """Check shapes and values."""
        n = len(self.mu)
        obs = self.observations
        if obs.ndim != 4 or obs.shape[1] != 1 or obs.shape[0] != len(self.scene_names):
            raise ValueError(
                f"observations must be (n_scenes={len(self.scene_names)}, 1, bins, bins), "
                f"got {obs.shape}"
            )
        if self.action_a.shape != self.action_b.shape or self.action_a.shape[:1] != (n,):
            raise ValueError(
                f"action_a and action_b must both be ({n}, action_dim), got "
                f"{self.action_a.shape} and {self.action_b.shape}"
            )
        if self.scene_index.shape != (n,):
            raise ValueError(f"scene_index must be ({n},), got {self.scene_index.shape}")
        if n and (self.scene_index.min() < 0 or self.scene_index.max() >= len(obs)):
            raise ValueError("scene_index out of range of observations")
        if not np.all((self.mu >= 0) & (self.mu <= 1)):
            raise ValueError("mu must be in [0, 1] (NaN, i.e. skipped pairs, is not allowed)")

    def __len__(self) -> int:
        return len(self.mu)

    @property
    def histogram_bins(self) -> int:
        """Bins per JH axis."""
        return int(self.observations.shape[-1])

    @property
    def n_vertices(self) -> int:
        """Polygon vertices per action."""
        return int(self.action_a.shape[1] // 2)

    @property
    def n_ties(self) -> int:
        """Number of pairs answered "about equal" (``mu == 0.5``)."""
        return int(np.sum(self.mu == 0.5))

    @classmethod
    def from_records(
        cls,
        records: Sequence[Any],
        *,
        working_size: int = 64,
        histogram_bins: int = 64,
        observations: dict[str, np.ndarray] | None = None,
    ) -> PreferenceTensors:
        """Arrays from preference records (skipped pairs, ``mu`` NaN, are dropped).

        Args:
            records: objects with ``.scene``, ``.action_a``, ``.action_b`` and ``.mu``.
            working_size: working size at which scenes are loaded.
            histogram_bins: JH bins per axis.
            observations: JH images of scenes by name, used instead of loading them.

        Raises:
            ValueError: no usable records, actions of different lengths, ``mu`` outside
                [0, 1], or an unknown scene.
        """
        from tfgym.scene import load_scene

        kept = [r for r in records if np.isfinite(float(r.mu))]
        if not kept:
            raise ValueError(f"no usable preference records ({len(records)} given, none answered)")
        lengths = {len(r.action_a) for r in kept} | {len(r.action_b) for r in kept}
        if len(lengths) != 1:
            raise ValueError(f"preference actions have different lengths: {sorted(lengths)}")
        names = tuple(dict.fromkeys(str(r.scene) for r in kept))
        given = observations or {}
        images = []
        for name in names:
            if name in given:
                image = np.asarray(given[name], dtype=np.uint8)
            else:
                image = load_scene(
                    name, working_size=working_size, histogram_bins=histogram_bins
                ).observation
            images.append(image.reshape(1, *image.shape[-2:]))
        row = {name: i for i, name in enumerate(names)}
        return cls(
            scene_names=names,
            observations=np.stack(images),
            scene_index=np.array([row[str(r.scene)] for r in kept], dtype=np.int64),
            action_a=np.array([r.action_a for r in kept], dtype=np.float32),
            action_b=np.array([r.action_b for r in kept], dtype=np.float32),
            mu=np.array([float(r.mu) for r in kept], dtype=np.float32),
        )

    def subset(self, indices: np.ndarray) -> PreferenceTensors:
        """The pairs at ``indices`` (repeats allowed); scenes are kept as they are."""
        idx = np.asarray(indices, dtype=np.int64)
        return PreferenceTensors(
            self.scene_names,
            self.observations,
            self.scene_index[idx],
            self.action_a[idx],
            self.action_b[idx],
            self.mu[idx],
        )

    def split(
        self, val_fraction: float, rng: np.random.Generator
    ) -> tuple[PreferenceTensors, PreferenceTensors]:
        """A random train / validation split (validation gets ``round(n * val_fraction)``).

        Raises:
            ValueError: ``val_fraction`` outside [0, 1) or leaving no training pair.
        """
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        order = rng.permutation(len(self))
        n_val = round(len(self) * val_fraction)
        if n_val >= len(self):
            raise ValueError(f"val_fraction {val_fraction} leaves no training pair of {len(self)}")
        return self.subset(np.sort(order[n_val:])), self.subset(np.sort(order[:n_val]))

    def bootstrap(self, rng: np.random.Generator) -> PreferenceTensors:
        """A bootstrap resample: ``len(self)`` pairs drawn with replacement."""
        return self.subset(rng.integers(0, len(self), size=len(self)))
