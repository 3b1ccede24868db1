"""Preference records as arrays for reward-model training.

:class:`PreferenceTensors` holds every pair of a preference data set as flat arrays: the JH
image of each distinct scene once (``observations``), and per pair the scene's row
(``scene_index``), the two actions, the answer ``mu`` and the record's store id
(``record_ids``, -1 for a record without one). It is built from any sequence of records with
``.scene``, ``.action_a``, ``.action_b`` and ``.mu`` (e.g.
:class:`tfgym.preferences.Preference`), optionally ``.id`` and ``.observation``.

Each scene's observation is the one its preferences were labeled on: a record that carries
:class:`tfgym.observation.ObservationSettings` gets its scene from
:meth:`~tfgym.observation.ObservationSettings.load_scene` (which refuses a scan changed since
labeling); records without settings load :func:`tfgym.scene.load_scene` at the working size
and bins that :func:`tfgym.observation.resolve_settings` picks. Splits and bootstrap
resamples take an explicit ``np.random.Generator``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tfgym.observation import ObservationMismatchError, ObservationSettings, resolve_settings
from tfgym.scene import Scene, load_scene

__all__ = ["PreferenceTensors", "record_scenes"]


def record_scenes(
    records: Sequence[Any], *, working_size: int, histogram_bins: int
) -> dict[str, Scene]:
    """The scene each record was labeled on, by scene name, each loaded once.

    Records with ``observation`` settings rebuild (and verify) that observation; a scene
    whose records all lack settings is loaded at ``working_size`` and ``histogram_bins``.

    Raises:
        ObservationMismatchError: a scan changed since labeling, or records of one scene
            name labeled on different observations.
        ValueError: an unknown scene or a missing scan file.
    """
    settings: dict[str, set[ObservationSettings]] = {}
    for r in records:
        obs = getattr(r, "observation", None)
        settings.setdefault(str(r.scene), set())
        if obs is not None:
            settings[str(r.scene)].add(obs)
    scenes = {}
    for name, recorded in settings.items():
        if not recorded:
            scenes[name] = load_scene(
                name, working_size=working_size, histogram_bins=histogram_bins
            )
            continue
        loaded = [s.load_scene() for s in sorted(recorded, key=repr)]
        if any(not np.array_equal(s.observation, loaded[0].observation) for s in loaded):
            raise ObservationMismatchError(
                f"the preferences of scene {name!r} were labeled on {len(loaded)} different "
                "observations; use records of one observation per scene"
            )
        scenes[name] = loaded[0]
    return scenes


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
        record_ids: int64 ``(n,)``, each pair's record id in its store, -1 for none
            (default: all -1).
        working_size: the working size the observations were built at, None when unknown
            (arrays built by hand).

    Example:
        >>> obs = np.zeros((1, 1, 8, 8), np.uint8)
        >>> a = np.zeros((4, 8), np.float32)
        >>> data = PreferenceTensors(("s",), obs, np.zeros(4, np.int64), a, a + 0.5,
        ...                          np.array([1, 0, 0.5, 1], np.float32),
        ...                          record_ids=np.array([7, 8, 9, 10]))
        >>> train, val = data.split(0.25, np.random.default_rng(0))
        >>> len(train), len(val), data.n_ties, val.record_ids.tolist()
        (3, 1, 1, [9])
    """

    scene_names: tuple[str, ...]
    observations: np.ndarray
    scene_index: np.ndarray
    action_a: np.ndarray
    action_b: np.ndarray
    mu: np.ndarray
    record_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    working_size: int | None = None

    def __post_init__(self) -> None:
        """Check shapes and values; default the record ids to -1."""
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
        ids = np.asarray(self.record_ids, dtype=np.int64)
        if ids.size == 0 and n:
            ids = np.full(n, -1, dtype=np.int64)
        if ids.shape != (n,):
            raise ValueError(f"record_ids must be ({n},), got {ids.shape}")
        object.__setattr__(self, "record_ids", ids)

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
        working_size: int | None = None,
        histogram_bins: int | None = None,
        n_vertices: int | None = None,
        observations: dict[str, np.ndarray] | None = None,
    ) -> PreferenceTensors:
        """Arrays from preference records (skipped pairs, ``mu`` NaN, are dropped).

        The working size, histogram bins and vertex count come from the records'
        observation settings (:func:`tfgym.observation.resolve_settings`); a value given
        here must match them, and applies to records without settings (default 64, 64).

        Args:
            records: objects with ``.scene``, ``.action_a``, ``.action_b`` and ``.mu``, and
                optionally ``.id`` and ``.observation``.
            working_size: the working size, or None to follow the records.
            histogram_bins: JH bins per axis, or None to follow the records.
            n_vertices: polygon vertices, or None to follow the records (and the actions).
            observations: JH images of scenes by name, used instead of loading them.

        Raises:
            ObservationMismatchError: a given value differs from the records', the records
                disagree, or a scan changed since labeling.
            ValueError: no usable records, actions of different lengths, ``mu`` outside
                [0, 1], or an unknown scene.
        """
        kept = [r for r in records if np.isfinite(float(r.mu))]
        if not kept:
            raise ValueError(f"no usable preference records ({len(records)} given, none answered)")
        lengths = {len(r.action_a) for r in kept} | {len(r.action_b) for r in kept}
        if len(lengths) != 1:
            raise ValueError(f"preference actions have different lengths: {sorted(lengths)}")
        n_numbers = lengths.pop()
        resolved = resolve_settings(
            (getattr(r, "observation", None) for r in kept),
            working_size=working_size,
            histogram_bins=histogram_bins,
            n_vertices=n_numbers // 2 if n_vertices is None else n_vertices,
        )
        if 2 * resolved["n_vertices"] != n_numbers:
            raise ObservationMismatchError(
                f"the preference actions have {n_numbers} numbers ({n_numbers // 2} vertices); "
                f"n_vertices={resolved['n_vertices']} was requested"
            )
        names = tuple(dict.fromkeys(str(r.scene) for r in kept))
        given = observations or {}
        scenes = record_scenes(
            [r for r in kept if str(r.scene) not in given],
            working_size=resolved["working_size"],
            histogram_bins=resolved["histogram_bins"],
        )
        images = []
        for name in names:
            image = np.asarray(given[name] if name in given else scenes[name].observation)
            images.append(image.astype(np.uint8).reshape(1, *image.shape[-2:]))
        row = {name: i for i, name in enumerate(names)}
        ids = [-1 if getattr(r, "id", None) is None else int(r.id) for r in kept]
        return cls(
            scene_names=names,
            observations=np.stack(images),
            scene_index=np.array([row[str(r.scene)] for r in kept], dtype=np.int64),
            action_a=np.array([r.action_a for r in kept], dtype=np.float32),
            action_b=np.array([r.action_b for r in kept], dtype=np.float32),
            mu=np.array([float(r.mu) for r in kept], dtype=np.float32),
            record_ids=np.array(ids, dtype=np.int64),
            working_size=resolved["working_size"],
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
            self.record_ids[idx],
            self.working_size,
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
