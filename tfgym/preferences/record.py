"""Preference records: one answer to a comparison of two transfer functions, and its JSON form.

A :class:`Preference` is one answer to "which of these two renderings is better?". The label
queue's own values -- the comparisons it serves, its leases and its answers, each of which
becomes preference records -- are in :mod:`tfgym.preferences.queue_types`; the validators
they share (:func:`finite_number`, :func:`finite_floats`) are here.

A preference record names the observation it was labeled on
(:class:`tfgym.observation.ObservationSettings`) so that a trainer rebuilds exactly that
observation. Preference records convert to and from JSON objects
(the JSON Lines format of :class:`tfgym.preferences.PreferenceStore`):

* version 2 (written now): the fields of :class:`Preference`, ``observation`` included (an
  object or null);
* version 1 (tfgym before observation settings): the same without ``observation``; read with
  ``observation=None``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from tfgym.observation import ObservationSettings

__all__ = [
    "MU_VALUES",
    "RECORD_FORMAT",
    "SCHEMA_VERSION",
    "Preference",
    "finite_floats",
    "finite_number",
    "utc_now",
]

SCHEMA_VERSION = 2
"""Version of the JSON record format and of the store schema (see the package docstring)."""
RECORD_FORMAT = "tfgym.Preference"
MU_VALUES: tuple[float, ...] = (1.0, 0.5, 0.0)
_REQUIRED = ("scene", "action_a", "action_b", "mu", "labeler")


def utc_now() -> str:
    """The current time as an ISO-8601 UTC string, e.g. ``2025-01-31T12:00:00.123456+00:00``."""
    return datetime.now(timezone.utc).isoformat()


def finite_number(name: str, value: Any) -> float:
    """``value`` as a float, or ValueError naming ``name`` (bools and non-finite refused).

    Example:
        >>> finite_number("priority", 2)
        2.0
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def finite_floats(name: str, value: Any) -> tuple[float, ...]:
    """``value`` as a non-empty tuple of finite floats, or ValueError naming ``name``.

    Example:
        >>> finite_floats("action", [0, 0.5])
        (0.0, 0.5)
    """
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a sequence of numbers, got {value!r}") from e
    if not out:
        raise ValueError(f"{name} must not be empty")
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"{name} must be finite, got {out}")
    return out


@dataclass(frozen=True)
class Preference:
    """One comparison of two actions on a scene and its answer.

    Attributes:
        scene: scene name or scan path.
        action_a: flat action ``x1, y1, x2, y2, ...`` of the first TF (floats).
        action_b: the second, same length.
        mu: the answer: 1.0 = a chosen, 0.5 = about equal (a tie), 0.0 = b chosen.
        labeler: who answered: a person's id, or ``"sim:<preset>"`` for the simulated labeler.
        created: when, ISO-8601 with a UTC offset (default: now).
        tf_a: the first TF as :meth:`tfgym.transfer_function.TransferFunction.to_dict`, or None.
        tf_b: the second TF, or None.
        render_a: a reference (path, URL) to the first rendering, or None.
        render_b: the second rendering, or None.
        observation: the observation the answer was given on (scene, content hash, working
            size, histogram bins and ranges, vertex count), or None for records written
            before tfgym recorded it.
        id: the record's id in its store (None until stored).

    Raises:
        ValueError: for an empty scene or labeler, ``mu`` outside {1, 0.5, 0}, empty,
            non-finite or unequal-length actions, a malformed ``created`` time, or an
            ``observation`` that is not :class:`~tfgym.observation.ObservationSettings` or
            whose ``n_vertices`` does not fit the actions' length.

    Example:
        >>> p = Preference("headsq", [0, 0, 1, 1], [1, 0, 0, 1], mu=0, labeler="bob")
        >>> p.action_a, p.mu, p.winner
        ((0.0, 0.0, 1.0, 1.0), 0.0, 'b')
        >>> Preference("headsq", [0, 0], [0, 0, 1, 1], mu=1, labeler="bob")
        Traceback (most recent call last):
        ...
        ValueError: action_a and action_b must have the same length, got 2 and 4
    """

    scene: str
    action_a: tuple[float, ...]
    action_b: tuple[float, ...]
    mu: float
    labeler: str
    created: str = field(default_factory=utc_now)
    tf_a: dict[str, Any] | None = field(default=None, hash=False)
    tf_b: dict[str, Any] | None = field(default=None, hash=False)
    render_a: str | None = None
    render_b: str | None = None
    observation: ObservationSettings | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        """Validate and normalise the fields."""
        if not isinstance(self.scene, str) or not self.scene:
            raise ValueError(f"scene must be a non-empty string, got {self.scene!r}")
        if not isinstance(self.labeler, str) or not self.labeler:
            raise ValueError(f"labeler must be a non-empty string, got {self.labeler!r}")
        a = finite_floats("action_a", self.action_a)
        b = finite_floats("action_b", self.action_b)
        if len(a) != len(b):
            raise ValueError(
                f"action_a and action_b must have the same length, got {len(a)} and {len(b)}"
            )
        try:
            mu = float(self.mu)
        except (TypeError, ValueError) as e:
            raise ValueError(f"mu must be one of {MU_VALUES}, got {self.mu!r}") from e
        if mu not in MU_VALUES:
            raise ValueError(f"mu must be one of {MU_VALUES}, got {self.mu!r}")
        if not isinstance(self.created, str):
            raise ValueError(f"created must be an ISO-8601 string, got {self.created!r}")
        try:
            stamp = datetime.fromisoformat(self.created.replace("Z", "+00:00"))
        except ValueError as e:
            raise ValueError(f"created is not an ISO-8601 time: {self.created!r}") from e
        if stamp.utcoffset() is None:
            raise ValueError(f"created must carry a UTC offset, got {self.created!r}")
        for name in ("tf_a", "tf_b"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), dict):
                raise ValueError(f"{name} must be a dict (TransferFunction.to_dict()) or None")
        for name in ("render_a", "render_b"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string or None")
        self._check_observation(len(a))
        if self.id is not None and (isinstance(self.id, bool) or not isinstance(self.id, int)):
            raise ValueError(f"id must be an int or None, got {self.id!r}")
        object.__setattr__(self, "action_a", a)
        object.__setattr__(self, "action_b", b)
        object.__setattr__(self, "mu", mu)

    def _check_observation(self, action_size: int) -> None:
        obs = self.observation
        if obs is None:
            return
        if not isinstance(obs, ObservationSettings):
            raise ValueError(
                f"observation must be ObservationSettings or None, got {type(obs).__name__}"
            )
        if obs.action_size != action_size:
            raise ValueError(
                f"observation has n_vertices={obs.n_vertices} ({obs.action_size} numbers per "
                f"action), but the actions have {action_size}"
            )

    @property
    def winner(self) -> str:
        """``"a"``, ``"b"`` or ``"tie"``."""
        return {1.0: "a", 0.0: "b"}.get(self.mu, "tie")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with a format tag and version (the JSON Lines record)."""
        d = asdict(self)
        d["action_a"], d["action_b"] = list(self.action_a), list(self.action_b)
        d["observation"] = None if self.observation is None else self.observation.to_dict()
        return {"format": RECORD_FORMAT, "version": SCHEMA_VERSION, **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preference:
        """Inverse of :meth:`to_dict`; also reads version-1 records (``observation=None``).

        Raises:
            ValueError: malformed input: not an object, another format, a newer version,
                unknown or missing fields, an ``observation`` in a version-1 record, or
                invalid values.
        """
        if not isinstance(d, dict):
            raise ValueError(f"expected a JSON object, got {type(d).__name__}")
        if d.get("format", RECORD_FORMAT) != RECORD_FORMAT:
            raise ValueError(f"not a preference record: format {d.get('format')!r}")
        version = d.get("version", SCHEMA_VERSION)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ValueError(
                f"preference record version {version!r} is newer than this tfgym "
                f"(reads up to {SCHEMA_VERSION})"
            )
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names - {"format", "version"})
        if unknown:
            raise ValueError(f"unknown preference fields {unknown}")
        missing = [n for n in _REQUIRED if n not in d]
        if missing:
            raise ValueError(f"missing preference fields {missing}")
        kwargs = {k: v for k, v in d.items() if k in names}
        obs = kwargs.get("observation")
        if obs is not None:
            if version < 2:
                raise ValueError(
                    f"a version-{version} preference record cannot carry 'observation'"
                )
            try:
                kwargs["observation"] = ObservationSettings.from_dict(obs)
            except ValueError as e:
                raise ValueError(f"malformed observation: {e}") from e
        return cls(**kwargs)
