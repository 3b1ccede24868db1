"""Observation settings: exactly which joint-histogram observation a preference was labeled on.

An env observation is the joint histogram of a scene at a working size and a bin count, and an
action is a polygon with a fixed number of vertices. A preference labeled at working size 32 is
a statement about the observation at working size 32; training on the same scene at 64 would
pair the answer with a different observation. :class:`ObservationSettings` records everything
needed to rebuild the labeled observation and to notice when that is no longer possible:

* the scene (bundled name or scan path), the working size and the histogram bins, from which
  :func:`tfgym.scene.load_scene` rebuilds it;
* the working volume's content hash (:attr:`tfgym.scene.Scene.content_hash`) and the histogram
  ranges, which :meth:`ObservationSettings.load_scene` checks so that a scan file modified
  since labeling is refused with :class:`ObservationMismatchError` instead of trained on;
* the number of polygon vertices (the action size is twice that).

A trainer picks its settings with :func:`resolve_settings`: the records decide, an explicit
value may only confirm them, and records without settings (written by tfgym before
preference records carried them) fall back to the explicit value or :data:`DEFAULTS`.

Example:
    >>> from tfgym.scene import load_scene
    >>> obs = ObservationSettings.from_scene(load_scene("headsq", working_size=32), n_vertices=4)
    >>> obs.scene, obs.working_size, obs.histogram_bins, obs.content_hash[:7]
    ('headsq', 32, 64, 'sha256:')
    >>> ObservationSettings.from_dict(obs.to_dict()) == obs
    True
    >>> obs.load_scene().content_hash == obs.content_hash
    True
    >>> resolve_settings([obs, None])
    {'working_size': 32, 'histogram_bins': 64, 'n_vertices': 4}
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from types import MappingProxyType
from typing import Any

from tfgym.histogram import HistogramRanges
from tfgym.scene import DEFAULT_WORKING_SIZE, Scene
from tfgym.scene import load_scene as _load_scene

__all__ = [
    "DEFAULTS",
    "RANGE_REL_TOL",
    "RESOLVED_FIELDS",
    "ObservationMismatchError",
    "ObservationSettings",
    "resolve_settings",
]

RESOLVED_FIELDS: tuple[str, ...] = ("working_size", "histogram_bins", "n_vertices")
"""The settings a trainer chooses; :func:`resolve_settings` returns a dict with these keys."""

DEFAULTS: Mapping[str, int] = MappingProxyType(
    {"working_size": DEFAULT_WORKING_SIZE, "histogram_bins": 64, "n_vertices": 4}
)
"""The env's defaults, used for records without settings when no explicit value is given."""

RANGE_REL_TOL = 1e-6
"""Relative tolerance when comparing recomputed histogram ranges with recorded ones."""

_HASH_RE = re.compile(r"sha256:[0-9a-f]{64}")
_MINIMUM = {"working_size": 8, "histogram_bins": 2, "n_vertices": 3}
_RANGE_FIELDS = ("intensity_min", "intensity_max", "gradient_max")


class ObservationMismatchError(ValueError):
    """Recorded observation settings that do not match a scene or the requested settings."""


def _check_int(name: str, value: Any) -> int:
    """``value`` as an int of at least the field's minimum, or ValueError naming the field."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < _MINIMUM[name]:
        raise ValueError(f"{name} must be at least {_MINIMUM[name]}, got {value}")
    return int(value)


def _check_float(name: str, value: Any) -> float:
    """``value`` as a finite float, or ValueError naming the field."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


@dataclass(frozen=True)
class ObservationSettings:
    """Everything that determines the observation a preference was labeled on.

    Attributes:
        scene: bundled scene name (``"headsq"``, ``"phantom-03"``) or an absolute scan path.
        content_hash: :attr:`tfgym.scene.Scene.content_hash` of the working volume,
            ``"sha256:<64 hex digits>"``.
        working_size: voxels along the longest side of the working volume.
        histogram_bins: bins per joint-histogram axis.
        intensity_min: the scene's :class:`~tfgym.histogram.HistogramRanges` at these
            settings: lower edge of the intensity axis.
        intensity_max: upper edge of the intensity axis.
        gradient_max: upper edge of the gradient-magnitude axis.
        n_vertices: polygon vertices of the actions (an action has ``2 * n_vertices`` numbers).

    Raises:
        ValueError: an empty scene, a malformed hash, a size, bin or vertex count that is not
            an int at or above its minimum (8, 2, 3), or ranges that are not finite or empty.
    """

    scene: str
    content_hash: str
    working_size: int
    histogram_bins: int
    intensity_min: float
    intensity_max: float
    gradient_max: float
    n_vertices: int

    def __post_init__(self) -> None:
        """Validate and normalise the fields."""
        if not isinstance(self.scene, str) or not self.scene:
            raise ValueError(f"scene must be a non-empty string, got {self.scene!r}")
        if not isinstance(self.content_hash, str) or not _HASH_RE.fullmatch(self.content_hash):
            raise ValueError(
                f"content_hash must be 'sha256:' and 64 lowercase hex digits, "
                f"got {self.content_hash!r}"
            )
        for name in RESOLVED_FIELDS:
            object.__setattr__(self, name, _check_int(name, getattr(self, name)))
        for name in _RANGE_FIELDS:
            object.__setattr__(self, name, _check_float(name, getattr(self, name)))
        if self.intensity_max <= self.intensity_min:
            raise ValueError(
                f"intensity_max must exceed intensity_min, got "
                f"[{self.intensity_min}, {self.intensity_max}]"
            )
        if self.gradient_max <= 0:
            raise ValueError(f"gradient_max must be positive, got {self.gradient_max}")

    @classmethod
    def from_scene(cls, scene: Scene, *, n_vertices: int) -> ObservationSettings:
        """The settings of a loaded scene's observation.

        Args:
            scene: a scene from :func:`tfgym.scene.load_scene` (its ``name`` is the bundled
                name or the resolved scan path).
            n_vertices: polygon vertices of the actions labeled on it.

        Returns:
            The settings; ``working_size`` is the working volume's longest side.

        Raises:
            ValueError: the scene's histogram is not square (``load_scene`` always builds
                square ones), or ``n_vertices`` is not an int >= 3.
        """
        ranges = scene.ranges
        if ranges.n_intensity_bins != ranges.n_gradient_bins:
            raise ValueError(
                f"scene {scene.name!r} has a {ranges.n_gradient_bins}x{ranges.n_intensity_bins} "
                "histogram; observation settings describe square histograms only"
            )
        return cls(
            scene=scene.name,
            content_hash=scene.content_hash,
            working_size=int(max(scene.volume.data.shape)),
            histogram_bins=int(ranges.n_intensity_bins),
            intensity_min=float(ranges.intensity_min),
            intensity_max=float(ranges.intensity_max),
            gradient_max=float(ranges.gradient_max),
            n_vertices=n_vertices,
        )

    @property
    def ranges(self) -> HistogramRanges:
        """The recorded joint-histogram ranges and bins."""
        return HistogramRanges(
            self.intensity_min,
            self.intensity_max,
            self.gradient_max,
            self.histogram_bins,
            self.histogram_bins,
        )

    @property
    def action_size(self) -> int:
        """Numbers per action: ``2 * n_vertices``."""
        return 2 * self.n_vertices

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields (the inverse of :meth:`from_dict`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ObservationSettings:
        """Settings from :meth:`to_dict`'s output.

        Raises:
            ValueError: not a mapping, missing or unknown keys, or invalid values (the
                message names the field).

        Example:
            >>> ObservationSettings.from_dict([32, 64])
            Traceback (most recent call last):
            ...
            ValueError: observation settings must be a JSON object, got list
        """
        if not isinstance(d, Mapping):
            raise ValueError(f"observation settings must be a JSON object, got {type(d).__name__}")
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in d]
        if missing:
            raise ValueError(f"observation settings miss fields {missing}")
        unknown = sorted(str(k) for k in set(d) - set(names))
        if unknown:
            raise ValueError(f"unknown observation settings fields {unknown}")
        return cls(**{n: d[n] for n in names})

    def verify(self, scene: Scene) -> None:
        """Check that a loaded scene shows the recorded observation.

        Compares the content hash exactly and the histogram ranges with a relative tolerance
        of :data:`RANGE_REL_TOL`. Only content and ranges are compared, not the name, so a
        scan that moved keeps its preferences.

        Raises:
            ObservationMismatchError: naming the scene, the field, and both values.
        """
        where = f"scene {self.scene!r} at working_size={self.working_size}"
        if scene.content_hash != self.content_hash:
            raise ObservationMismatchError(
                f"{where} has content_hash {scene.content_hash}, but the preferences were "
                f"labeled on content_hash {self.content_hash}; the scan changed since labeling "
                "(a modified file, or a different tfgym version of a bundled scene)"
            )
        got = scene.ranges
        span = self.intensity_max - self.intensity_min
        for name in _RANGE_FIELDS:
            recorded, now = getattr(self, name), float(getattr(got, name))
            scale = self.gradient_max if name == "gradient_max" else span
            tol = {"rel_tol": RANGE_REL_TOL, "abs_tol": RANGE_REL_TOL * scale}
            if not math.isclose(now, recorded, **tol):
                raise ObservationMismatchError(
                    f"{where} has histogram {name}={now!r}, but the preferences were labeled "
                    f"with {name}={recorded!r}"
                )
        bins = (got.n_gradient_bins, got.n_intensity_bins)
        if bins != (self.histogram_bins, self.histogram_bins):
            raise ObservationMismatchError(
                f"{where} has a {bins[0]}x{bins[1]} histogram, but the preferences were labeled "
                f"with histogram_bins={self.histogram_bins}"
            )

    def load_scene(self) -> Scene:
        """Rebuild the labeled scene and check that it still shows the recorded observation.

        Returns:
            The scene from :func:`tfgym.scene.load_scene` at the recorded working size and
            histogram bins (from the process cache when already loaded).

        Raises:
            ObservationMismatchError: the rebuilt scene's content hash or histogram ranges
                differ from the recorded ones (see :meth:`verify`).
            ValueError: the scene is unknown or its file is missing.
        """
        scene = _load_scene(
            self.scene, working_size=self.working_size, histogram_bins=self.histogram_bins
        )
        self.verify(scene)
        return scene


def resolve_settings(
    records_settings: Iterable[ObservationSettings | None],
    *,
    working_size: int | None = None,
    histogram_bins: int | None = None,
    n_vertices: int | None = None,
) -> dict[str, int]:
    """The working size, histogram bins and vertex count to train on a set of preferences.

    For each of the three fields:

    * when records carry settings, their value is used; all records with settings must agree
      on it (the records' ``scene``, ``content_hash`` and ranges may differ: they belong to
      each scene);
    * an explicit value (not None) must equal the records' value;
    * when no record carries settings (every record was written before preferences recorded
      them, e.g. upgraded version-1 stores), the explicit value is used, else
      :data:`DEFAULTS` (working_size 64, histogram_bins 64, n_vertices 4).

    Records without settings never constrain the result: in a mixed set they are assumed to
    have been labeled at the settings of the others.

    Args:
        records_settings: each record's settings, or None for a record without them.
        working_size: the caller's explicit working size, or None to follow the records.
        histogram_bins: the caller's explicit histogram bins, or None.
        n_vertices: the caller's explicit vertex count, or None.

    Returns:
        ``{"working_size": ..., "histogram_bins": ..., "n_vertices": ...}``.

    Raises:
        ObservationMismatchError: the records disagree among themselves on a field (the
            message lists the values found), or an explicit value differs from the records'
            (the message names the field and both values).
        ValueError: an explicit value that is not an int at or above the field's minimum.

    Example:
        >>> obs = ObservationSettings("headsq", "sha256:" + "0" * 64, 32, 64, 0.0, 1.0, 2.0, 4)
        >>> resolve_settings([obs], n_vertices=4)
        {'working_size': 32, 'histogram_bins': 64, 'n_vertices': 4}
        >>> resolve_settings([None, None], working_size=128)
        {'working_size': 128, 'histogram_bins': 64, 'n_vertices': 4}
        >>> try:
        ...     resolve_settings([obs], working_size=64)
        ... except ObservationMismatchError as e:
        ...     print(e)
        the preferences were labeled at working_size=32; working_size=64 was requested
    """
    explicit = {
        "working_size": working_size,
        "histogram_bins": histogram_bins,
        "n_vertices": n_vertices,
    }
    found: dict[str, set[int]] = {name: set() for name in RESOLVED_FIELDS}
    for i, settings in enumerate(records_settings):
        if settings is None:
            continue
        if not isinstance(settings, ObservationSettings):
            raise TypeError(f"item {i} is a {type(settings).__name__}, not ObservationSettings")
        for name in RESOLVED_FIELDS:
            found[name].add(getattr(settings, name))
    out: dict[str, int] = {}
    for name in RESOLVED_FIELDS:
        want = explicit[name]
        if want is not None:
            want = _check_int(name, want)
        values = sorted(found[name])
        if len(values) > 1:
            raise ObservationMismatchError(
                f"the preferences were labeled at different {name} values {values}; "
                f"use records of one {name} at a time"
            )
        if values and want is not None and want != values[0]:
            raise ObservationMismatchError(
                f"the preferences were labeled at {name}={values[0]}; {name}={want} was requested"
            )
        out[name] = values[0] if values else (want if want is not None else DEFAULTS[name])
    return out
