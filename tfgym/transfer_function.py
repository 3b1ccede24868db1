"""Polygon transfer functions on the joint histogram.

An action is ``2 * n_vertices`` numbers in ``[-1, 1]``, flattened as ``x1, y1, x2, y2, ...``
(the paper's ``a = [(x_i, y_i)]``). ``x`` maps linearly onto the intensity axis of the joint
histogram (-1 = ``intensity_min``, +1 = ``intensity_max``), ``y`` onto the gradient-magnitude
axis (-1 = 0, +1 = ``gradient_max``). The closed polygon through the vertices, in order, is the
transfer function (TF).

Rasterisation onto the histogram's bins (the TF lookup table, LUT):

* **Fill rule: even-odd.** A point is inside when a ray from it crosses the polygon's boundary
  an odd number of times, so a self-intersecting ("bow-tie") quadrilateral fills its two
  triangles and a region covered twice is empty.
* **Edges: anti-aliased coverage.** A bin's opacity is ``opacity * coverage`` where coverage is
  the fraction of the bin's area inside the polygon, computed exactly along x and with 4
  sub-rows per bin along y. Smooth coverage keeps the rendering (and so the reward) a
  continuous function of the vertices.
* **Degenerate polygons** (zero area: repeated or collinear vertices) cover nothing and give a
  valid, empty TF that renders a black image.
* **Colour** depends on the bin's intensity only, through a named colour scheme (default
  ``"bone"``: dark red for low densities, through flesh tones, to ivory for bone and teeth), so
  soft tissue, bone and teeth stay distinguishable inside a single polygon.
* **Bad actions**: NaN or inf raises ``ValueError``; values outside ``[-1, 1]`` are clipped.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tfgym.histogram import HistogramRanges
from tfgym.polygon import polygon_coverage, polygon_coverage_batch

__all__ = [
    "COLOR_SCHEMES",
    "TF_MAPPINGS",
    "TransferFunction",
    "action_to_vertices",
    "color_ramp",
    "luts_from_actions",
    "ranges_color_ramp",
    "validate_actions",
]

TF_FORMAT_VERSION = 1

# Colour schemes: control points (position along the intensity axis in [0, 1], RGB).
TF_MAPPINGS = ("relative", "absolute")
"""How a TF designed on one scan is applied to another (see `TransferFunction.mapped`)."""

COLOR_SCHEMES: dict[str, tuple[tuple[float, tuple[float, float, float]], ...]] = {
    "bone": (
        (0.0, (0.45, 0.08, 0.05)),
        (0.35, (0.85, 0.45, 0.35)),
        (0.6, (0.95, 0.85, 0.7)),
        (1.0, (1.0, 1.0, 0.95)),
    ),
    "white": ((0.0, (1.0, 1.0, 1.0)), (1.0, (1.0, 1.0, 1.0))),
    "hot": ((0.0, (0.5, 0.0, 0.0)), (0.5, (1.0, 0.55, 0.0)), (1.0, (1.0, 1.0, 0.8))),
}


@functools.lru_cache(maxsize=32)
def color_ramp(scheme: str, n: int) -> np.ndarray:
    """RGB colour of each of ``n`` intensity bins, float32 ``(n, 3)`` in [0, 1] (cached, read-only).

    Raises:
        ValueError: for an unknown scheme name (the message lists the valid ones).
    """
    if scheme not in COLOR_SCHEMES:
        raise ValueError(f"unknown color scheme {scheme!r}; valid: {sorted(COLOR_SCHEMES)}")
    pos = np.array([p for p, _ in COLOR_SCHEMES[scheme]])
    rgb = np.array([c for _, c in COLOR_SCHEMES[scheme]])
    centres = (np.arange(n) + 0.5) / n
    ramp = np.stack([np.interp(centres, pos, rgb[:, c]) for c in range(3)], axis=1)
    ramp = ramp.astype(np.float32)
    ramp.setflags(write=False)
    return ramp


@functools.lru_cache(maxsize=256)
def ranges_color_ramp(scheme: str, ranges: HistogramRanges) -> np.ndarray:
    """RGB of each intensity bin of ``ranges``: the scheme over its colour axis (cached).

    The scheme runs from ``intensity_min`` to :attr:`HistogramRanges.color_top` and stays at
    its last colour above (metal). Float32 ``(n_intensity_bins, 3)``, read-only.

    Example:
        >>> r = HistogramRanges(0.0, 100.0, 1.0, 64, 64, color_max=50.0)
        >>> ramp = ranges_color_ramp("bone", r)
        >>> bool(np.allclose(ramp[32:], ramp[-1]))  # metal: the scheme's last colour
        True
        >>> bool(np.allclose(ramp[:32], color_ramp("bone", 32)))  # the scheme up to color_max
        True
    """
    if scheme not in COLOR_SCHEMES:
        raise ValueError(f"unknown color scheme {scheme!r}; valid: {sorted(COLOR_SCHEMES)}")
    n = ranges.n_intensity_bins
    top = ranges.color_top
    centres = ranges.bin_to_intensity(np.arange(n) + 0.5)
    t = np.clip((centres - ranges.intensity_min) / (top - ranges.intensity_min), 0.0, 1.0)
    pos = np.array([p for p, _ in COLOR_SCHEMES[scheme]])
    rgb = np.array([c for _, c in COLOR_SCHEMES[scheme]])
    ramp = np.stack([np.interp(t, pos, rgb[:, c]) for c in range(3)], axis=1).astype(np.float32)
    ramp.setflags(write=False)
    return ramp


def action_to_vertices(action: np.ndarray, n_vertices: int | None = None) -> np.ndarray:
    """Validate a flat action and return its vertices, clipped to ``[-1, 1]``.

    Args:
        action: ``x1, y1, x2, y2, ...``; shape ``(2 * n_vertices,)``.
        n_vertices: expected vertex count (checked when given).

    Returns:
        float64 array ``(n_vertices, 2)`` of ``(x, y)`` in ``[-1, 1]``.

    Raises:
        ValueError: wrong shape, too few vertices, or NaN/inf values.

    Example:
        >>> action_to_vertices(np.array([0.0, 2.0, -1.0, 0.5, 1.0, -3.0]))
        array([[ 0. ,  1. ],
               [-1. ,  0.5],
               [ 1. , -1. ]])
    """
    a = np.asarray(action, dtype=np.float64)
    if a.ndim != 1 or a.size % 2 or a.size < 6:
        raise ValueError(
            f"action must be a flat array x1, y1, x2, y2, ... of at least 3 vertices, "
            f"got shape {a.shape}"
        )
    if n_vertices is not None and a.size != 2 * n_vertices:
        raise ValueError(f"action must have shape ({2 * n_vertices},), got {a.shape}")
    if not np.all(np.isfinite(a)):
        bad = np.flatnonzero(~np.isfinite(a)).tolist()
        raise ValueError(f"action contains NaN or inf at positions {bad}: {a.tolist()}")
    return np.clip(a, -1.0, 1.0).reshape(-1, 2)


def validate_actions(actions: np.ndarray, n_vertices: int) -> np.ndarray:
    """Validate a batch of flat actions once and clip it to ``[-1, 1]``.

    Args:
        actions: ``(batch, 2 * n_vertices)`` (a single ``(2 * n_vertices,)`` action is a
            batch of one).
        n_vertices: the polygon's vertex count.

    Returns:
        float32 ``(batch, 2 * n_vertices)`` in ``[-1, 1]``.

    Raises:
        ValueError: wrong shape or NaN/inf values (the message names the rows).

    Example:
        >>> validate_actions(np.array([0.0, 2.0, -1.0, 0.5, 1.0, -3.0]), 3)
        array([[ 0. ,  1. , -1. ,  0.5,  1. , -1. ]], dtype=float32)
    """
    if n_vertices < 3:
        raise ValueError(f"n_vertices must be at least 3, got {n_vertices}")
    a = np.asarray(actions, dtype=np.float64)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != 2 * n_vertices:
        raise ValueError(
            f"actions must have shape (batch, {2 * n_vertices}) (x1, y1, x2, y2, ... of "
            f"{n_vertices} vertices), got {np.shape(actions)}"
        )
    finite = np.isfinite(a)
    if not finite.all():
        rows = np.flatnonzero(~finite.all(axis=1))
        where = f"row {rows[0]}" if len(a) > 1 else "the action"
        bad = np.flatnonzero(~finite[rows[0]]).tolist()
        raise ValueError(
            f"action contains NaN or inf ({where}, positions {bad}): {a[rows[0]].tolist()}"
        )
    return np.clip(a, -1.0, 1.0).astype(np.float32)


def luts_from_actions(
    actions: np.ndarray,
    ranges: HistogramRanges,
    *,
    opacity: float = 0.8,
    color_scheme: str = "bone",
) -> np.ndarray:
    """The RGBA lookup tables of a batch of validated actions (see :func:`validate_actions`).

    Equal, bin for bin, to ``TransferFunction.from_action(a, ...).lut(ranges)`` of each
    action, without building the objects (the env step's fast path).

    Returns:
        float32 ``(batch, n_gradient_bins, n_intensity_bins, 4)`` in [0, 1].
    """
    acts = np.asarray(actions, dtype=np.float64)
    verts = acts.reshape(len(acts), -1, 2)
    scale = np.array([ranges.n_intensity_bins, ranges.n_gradient_bins]) / 2.0
    coverage = polygon_coverage_batch((verts + 1.0) * scale, ranges.shape)
    out = np.empty((len(acts), *ranges.shape, 4), dtype=np.float32)
    out[..., :3] = ranges_color_ramp(color_scheme, ranges)[None, None]
    out[..., 3] = opacity * coverage
    return out


def _vertices_tuple(vertices: Any) -> tuple[tuple[float, float], ...]:
    v = action_to_vertices(np.asarray(vertices, dtype=np.float64).ravel())
    return tuple((float(x), float(y)) for x, y in v)


@dataclass(frozen=True)
class TransferFunction:
    """A polygon TF in normalised joint-histogram coordinates.

    Attributes:
        vertices: polygon vertices ``((x1, y1), ...)`` in ``[-1, 1]`` (x = intensity, y =
            gradient magnitude), relative to the histogram of the scene it is applied to.
        opacity: opacity of a fully covered bin, per working-voxel slab, in [0, 1].
        color_scheme: a key of :data:`COLOR_SCHEMES`.
        ranges: optionally the histogram ranges the TF was designed on (recorded in JSON so
            the vertices can be read in grey values; not used when building a LUT). To apply
            a TF to another scan, choose how with :meth:`mapped`.

    Example:
        >>> tf = TransferFunction.from_action(np.array([0, -1, 1, -1, 1, 1, 0, 1], np.float32))
        >>> lut = tf.lut(HistogramRanges(0.0, 1.0, 1.0, 4, 4))
        >>> lut.shape, round(float(lut[0, 3, 3]), 3), float(lut[0, 0, 3])
        ((4, 4, 4), 0.8, 0.0)
        >>> TransferFunction.from_json(tf.to_json()) == tf
        True
    """

    vertices: tuple[tuple[float, float], ...]
    opacity: float = 0.8
    color_scheme: str = "bone"
    ranges: HistogramRanges | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        """Validate and normalise the fields."""
        object.__setattr__(self, "vertices", _vertices_tuple(self.vertices))
        if not (np.isfinite(self.opacity) and 0.0 <= self.opacity <= 1.0):
            raise ValueError(f"opacity must be in [0, 1], got {self.opacity}")
        if self.color_scheme not in COLOR_SCHEMES:
            raise ValueError(
                f"unknown color scheme {self.color_scheme!r}; valid: {sorted(COLOR_SCHEMES)}"
            )

    @classmethod
    def from_action(cls, action: np.ndarray, **kwargs: Any) -> TransferFunction:
        """Build from a flat action ``x1, y1, x2, y2, ...`` (clipped, NaN rejected)."""
        return cls(vertices=_vertices_tuple(action_to_vertices(action)), **kwargs)

    @classmethod
    def from_valid_action(
        cls, action: np.ndarray, *, opacity: float = 0.8, color_scheme: str = "bone"
    ) -> TransferFunction:
        """Build from an action that :func:`validate_actions` returned, without checking again.

        The fast path of batch scoring, where every action was validated and clipped once on
        entry; ``opacity`` and ``color_scheme`` must be valid too. Use :meth:`from_action` for
        anything else.
        """
        tf = object.__new__(cls)
        v = np.asarray(action, dtype=np.float64).reshape(-1, 2).tolist()
        object.__setattr__(tf, "vertices", tuple((x, y) for x, y in v))
        object.__setattr__(tf, "opacity", opacity)
        object.__setattr__(tf, "color_scheme", color_scheme)
        object.__setattr__(tf, "ranges", None)
        return tf

    @property
    def action(self) -> np.ndarray:
        """The flat float32 action of this TF."""
        return np.asarray(self.vertices, dtype=np.float32).ravel()

    def mapped(self, ranges: HistogramRanges, mapping: str = "relative") -> TransferFunction:
        """This TF for a scan whose histogram has ``ranges``, by an explicit mapping.

        * ``"relative"``: the polygon keeps its place relative to the new scan's histogram
          axes (robust percentiles of each scan, see :mod:`tfgym.histogram`): what the env
          and an agent do; it follows a scan whose grey values are shifted or scaled.
        * ``"absolute"``: the polygon keeps its grey values and gradient magnitudes (read
          through the :attr:`ranges` the TF recorded) and is re-expressed on the new axes;
          parts outside the new histogram fall off its edges. Right for scans of one
          calibrated scanner.

        Args:
            ranges: the histogram ranges of the scan the TF is applied to.
            mapping: ``"relative"`` or ``"absolute"``.

        Returns:
            A TF whose vertices are relative to ``ranges`` and which records them.

        Raises:
            ValueError: an unknown mapping, or ``"absolute"`` for a TF that records no ranges.

        Example:
            >>> tf = TransferFunction(((0, -1), (1, -1), (1, 1), (0, 1)),
            ...                       ranges=HistogramRanges(0.0, 100.0, 10.0))
            >>> tf.mapped(HistogramRanges(0.0, 200.0, 10.0), "absolute").vertices[:2]
            ((-0.5, -1.0), (0.0, -1.0))
        """
        if mapping not in TF_MAPPINGS:
            raise ValueError(f"unknown TF mapping {mapping!r}; valid: {list(TF_MAPPINGS)}")
        if mapping == "relative":
            return replace(self, ranges=ranges)
        if self.ranges is None:
            raise ValueError(
                "this transfer function records no histogram ranges, so its grey values are "
                "unknown: it can only be mapped 'relative' to the new scan's histogram"
            )
        old = self.ranges
        v = self.vertices_in_bins(old)
        grey = old.bin_to_intensity(v[:, 0])
        grad = old.bin_to_gradient(v[:, 1])
        x = ranges.intensity_to_bin(grey) / ranges.n_intensity_bins * 2.0 - 1.0
        y = ranges.gradient_to_bin(grad) / ranges.n_gradient_bins * 2.0 - 1.0
        verts = tuple((float(a), float(b)) for a, b in zip(x, y, strict=True))
        return replace(self, vertices=verts, ranges=ranges)

    def vertices_in_bins(self, ranges: HistogramRanges) -> np.ndarray:
        """Vertices in bin units ``(u, v)`` of ``ranges`` (see ``polygon_coverage``)."""
        v = np.asarray(self.vertices, dtype=np.float64)
        scale = np.array([ranges.n_intensity_bins, ranges.n_gradient_bins]) / 2.0
        return (v + 1.0) * scale

    def lut(self, ranges: HistogramRanges) -> np.ndarray:
        """RGBA lookup table ``(n_gradient_bins, n_intensity_bins, 4)``, float32 in [0, 1]."""
        coverage = polygon_coverage(self.vertices_in_bins(ranges), ranges.shape)
        out = np.empty((*ranges.shape, 4), dtype=np.float32)
        out[..., :3] = ranges_color_ramp(self.color_scheme, ranges)[None]
        out[..., 3] = self.opacity * coverage
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with a format version)."""
        return {
            "format": "tfgym.TransferFunction",
            "version": TF_FORMAT_VERSION,
            "vertices": [list(v) for v in self.vertices],
            "opacity": self.opacity,
            "color_scheme": self.color_scheme,
            "ranges": None if self.ranges is None else asdict(self.ranges),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TransferFunction:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` for malformed input."""
        if not isinstance(d, dict) or "vertices" not in d:
            raise ValueError("not a transfer function: expected an object with 'vertices'")
        if d.get("version", TF_FORMAT_VERSION) > TF_FORMAT_VERSION:
            raise ValueError(f"TF format version {d['version']} is newer than this tfgym")
        ranges = d.get("ranges")
        if ranges is not None:
            try:
                ranges = HistogramRanges(**ranges)
            except (TypeError, ValueError) as e:
                raise ValueError(f"malformed 'ranges' in transfer function: {e}") from e
        try:
            return cls(
                vertices=d["vertices"],
                opacity=float(d.get("opacity", 0.8)),
                color_scheme=str(d.get("color_scheme", "bone")),
                ranges=ranges,
            )
        except TypeError as e:
            raise ValueError(f"malformed transfer function: {e}") from e

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> TransferFunction:
        """Parse JSON text; raises ``ValueError`` for malformed input."""
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"transfer function JSON is malformed: {e}") from e
        return cls.from_dict(d)

    def save(self, path: str | Path) -> None:
        """Write JSON to ``path``."""
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> TransferFunction:
        """Read a TF JSON file; errors name the file."""
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"transfer function file not found: {p}")
        try:
            return cls.from_json(p.read_text())
        except (ValueError, TypeError) as e:
            raise ValueError(f"{p}: {e}") from e
