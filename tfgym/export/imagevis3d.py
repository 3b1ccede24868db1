"""ImageVis3D's 2D transfer function (``.2dt``, Tuvok's ``TransferFunction2D``).

The layout follows Tuvok's ``TransferFunction2D::Load``/``Save`` and ``TFPolygon::Load``/
``Save`` (SCI Institute, ImageVis3D's renderer); every token is separated by white space:

1. the 2D size: ``width height`` (intensity bins, gradient bins);
2. the embedded 1D TF (``TransferFunction1D::Load``): its size ``n``, then ``n`` rows of
   ``r g b a`` in [0, 1] -- written fully transparent, so only the polygon shows;
3. the number of swatches, then each swatch (``TFPolygon``): the radial flag (``0``: a linear
   gradient), the point count, the points ``x y`` in [0, 1] (x = intensity, y = gradient
   magnitude; 0 = the histogram's low edge), the gradient's two end points ``x0 y0 x1 y1``,
   the number of colour stops and each stop ``position r g b a``.

tfgym writes one swatch: the TF's polygon mapped from ``[-1, 1]`` to ``[0, 1]`` on the
histogram the TF is relative to (so it round-trips exactly, to float precision), filled with
a linear gradient along the intensity axis whose stops are the colour scheme's control
points (on the colour axis of ``ranges`` when given) with alpha = the TF's opacity.
ImageVis3D stretches the ``[0, 1]`` square over its own histogram of the data set; its alpha
is per sample of its own ray caster, not tfgym's per working-voxel slab.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfgym.histogram import HistogramRanges
from tfgym.transfer_function import COLOR_SCHEMES, TransferFunction

__all__ = ["ImageVis3DSwatch", "ImageVis3DTransferFunction", "read_2dt", "write_2dt"]

ColourStop = tuple[float, tuple[float, float, float, float]]


@dataclass(frozen=True)
class ImageVis3DSwatch:
    """One polygon of a ``.2dt`` file.

    Attributes:
        points: the polygon ``((x, y), ...)`` in [0, 1] (x = intensity, y = gradient).
        gradient: the colour gradient's end points ``((x0, y0), (x1, y1))``.
        stops: colour stops ``(position, (r, g, b, a))`` along the gradient.
        radial: True for a radial gradient (tfgym writes linear ones).
    """

    points: tuple[tuple[float, float], ...]
    gradient: tuple[tuple[float, float], tuple[float, float]]
    stops: tuple[ColourStop, ...]
    radial: bool = False

    def vertices(self) -> np.ndarray:
        """The polygon in tfgym's coordinates: float64 ``(n, 2)`` in ``[-1, 1]``."""
        return np.asarray(self.points, dtype=np.float64) * 2.0 - 1.0


@dataclass(frozen=True)
class ImageVis3DTransferFunction:
    """The content of a ``.2dt`` file.

    Attributes:
        size: ``(width, height)``: intensity and gradient bins of the 2D TF.
        tf1d: the embedded 1D TF, float64 ``(n, 4)`` RGBA.
        swatches: the polygons.
    """

    size: tuple[int, int]
    tf1d: np.ndarray
    swatches: tuple[ImageVis3DSwatch, ...]


def _scheme_stops(tf: TransferFunction, ranges: HistogramRanges | None) -> tuple[ColourStop, ...]:
    """The colour scheme's control points as stops along the intensity axis in [0, 1]."""
    scale = 1.0
    if ranges is not None:
        span = ranges.intensity_max - ranges.intensity_min
        scale = (ranges.color_top - ranges.intensity_min) / span
    return tuple(
        (float(pos * scale), (float(rgb[0]), float(rgb[1]), float(rgb[2]), float(tf.opacity)))
        for pos, rgb in COLOR_SCHEMES[tf.color_scheme]
    )


def write_2dt(
    tf: TransferFunction,
    path: str | Path,
    *,
    ranges: HistogramRanges | None = None,
    size: tuple[int, int] = (256, 256),
) -> Path:
    """Write ``tf`` as an ImageVis3D ``.2dt`` file.

    Args:
        tf: the transfer function.
        path: the file to write.
        ranges: the histogram the TF is applied to, for the colour axis (the scheme ends at
            ``ranges.color_top``); default ``tf.ranges``, else the scheme spans the axis.
        size: ``(width, height)`` of the 2D TF; the 1D TF has ``width`` entries.

    Returns:
        The path written.

    Raises:
        ValueError: a size below 1.

    Example:
        >>> import tempfile
        >>> tf = TransferFunction(((0, -1), (1, -1), (1, 1), (0, 1)))
        >>> p = write_2dt(tf, Path(tempfile.mkdtemp()) / "tf.2dt", size=(8, 8))
        >>> read_2dt(p).swatches[0].points
        ((0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0))
    """
    width, height = (int(s) for s in size)
    if width < 1 or height < 1:
        raise ValueError(f"size must be at least (1, 1), got {size}")
    ranges = ranges if ranges is not None else tf.ranges
    points = (np.asarray(tf.vertices, dtype=np.float64) + 1.0) / 2.0
    lines = [f"{width} {height}", str(width)]
    lines += ["0 0 0 0"] * width
    lines += ["1", "0", str(len(points))]
    lines += [f"{x!r} {y!r}" for x, y in points.tolist()]
    lines.append("0.0 0.5 1.0 0.5")
    stops = _scheme_stops(tf, ranges)
    lines.append(str(len(stops)))
    lines += [f"{p!r}  " + " ".join(repr(c) for c in rgba) for p, rgba in stops]
    out = Path(path)
    out.write_text("\n".join(lines) + "\n")
    return out


class _Tokens:
    """Whitespace tokens of a file, read in order with errors that say what was expected."""

    def __init__(self, text: str, name: str) -> None:
        self.tokens = text.split()
        self.i = 0
        self.name = name

    def _next(self, what: str) -> str:
        if self.i >= len(self.tokens):
            raise ValueError(f"{self.name}: file ends where {what} was expected")
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def count(self, what: str) -> int:
        tok = self._next(what)
        try:
            n = int(tok)
        except ValueError:
            raise ValueError(f"{self.name}: {what} must be an integer, got {tok!r}") from None
        if n < 0:
            raise ValueError(f"{self.name}: {what} must be >= 0, got {n}")
        return n

    def floats(self, n: int, what: str) -> list[float]:
        out = []
        for _ in range(n):
            tok = self._next(what)
            try:
                v = float(tok)
            except ValueError:
                raise ValueError(f"{self.name}: {what} must be a number, got {tok!r}") from None
            if not np.isfinite(v):
                raise ValueError(f"{self.name}: {what} must be finite, got {tok!r}")
            out.append(v)
        return out


def _read_swatch(tok: _Tokens, k: int) -> ImageVis3DSwatch:
    radial = tok.count(f"swatch {k}'s radial flag")
    if radial > 1:
        raise ValueError(f"{tok.name}: swatch {k}'s radial flag must be 0 or 1, got {radial}")
    n = tok.count(f"swatch {k}'s point count")
    pts = tok.floats(2 * n, f"swatch {k}'s points")
    g = tok.floats(4, f"swatch {k}'s gradient end points")
    n_stops = tok.count(f"swatch {k}'s colour stop count")
    stops = []
    for _ in range(n_stops):
        p, r, gg, b, a = tok.floats(5, f"swatch {k}'s colour stops")
        stops.append((p, (r, gg, b, a)))
    return ImageVis3DSwatch(
        points=tuple((pts[2 * i], pts[2 * i + 1]) for i in range(n)),
        gradient=((g[0], g[1]), (g[2], g[3])),
        stops=tuple(stops),
        radial=bool(radial),
    )


def read_2dt(path: str | Path) -> ImageVis3DTransferFunction:
    """Parse an ImageVis3D ``.2dt`` file.

    Args:
        path: the file.

    Returns:
        Its size, embedded 1D TF and swatches (polygons with their colour stops).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a malformed file (truncated, a non-number, a negative count, trailing
            tokens); the message names the file and the field.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"ImageVis3D transfer function not found: {p}")
    tok = _Tokens(p.read_text(), str(p))
    width = tok.count("the 2D width")
    height = tok.count("the 2D height")
    n1d = tok.count("the 1D TF size")
    tf1d = np.asarray(tok.floats(4 * n1d, "the 1D TF's RGBA rows"), dtype=np.float64)
    n_swatches = tok.count("the swatch count")
    swatches = tuple(_read_swatch(tok, k) for k in range(n_swatches))
    if tok.i != len(tok.tokens):
        raise ValueError(f"{p}: {len(tok.tokens) - tok.i} unexpected tokens after the swatches")
    return ImageVis3DTransferFunction((width, height), tf1d.reshape(n1d, 4), swatches)
