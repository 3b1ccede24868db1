"""Figures shared by the demo, reward-model evaluation and benchmarks.

* :func:`histogram_extent` and :func:`action_to_histogram` place actions on a scene's joint
  histogram in grey values (x) and gradient magnitude (y);
* :func:`draw_histogram` and :func:`draw_polygon` draw the histogram image and a TF's polygon
  on a matplotlib axes -- the one way tfgym shows a TF on its histogram;
* :func:`figure_to_rgb` rasterises a figure; :func:`save_png` writes an image as PNG (and
  refuses other suffixes rather than writing PNG bytes under a ``.jpg`` name).

matplotlib is imported only inside the drawing functions (``import tfgym.figures`` is cheap).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tfgym.histogram import HistogramRanges

__all__ = [
    "action_to_histogram",
    "draw_histogram",
    "draw_polygon",
    "figure_to_rgb",
    "histogram_extent",
    "save_png",
]

POLYGON_FACE = (1.0, 0.6, 0.1, 0.3)
POLYGON_EDGE = (1.0, 0.5, 0.0)


def histogram_extent(ranges: HistogramRanges) -> tuple[float, float, float, float]:
    """``(x_min, x_max, y_min, y_max)`` of the histogram in grey values and gradient magnitude.

    Example:
        >>> histogram_extent(HistogramRanges(-100.0, 900.0, 50.0))
        (-100.0, 900.0, 0.0, 50.0)
    """
    return (
        float(ranges.intensity_min),
        float(ranges.intensity_max),
        0.0,
        float(ranges.gradient_max),
    )


def action_to_histogram(xy: np.ndarray, ranges: HistogramRanges) -> np.ndarray:
    """Action coordinates ``(..., 2)`` in [-1, 1] to grey value (x) and gradient (y).

    Example:
        >>> ranges = HistogramRanges(0.0, 10.0, 4.0)
        >>> action_to_histogram(np.array([[-1.0, -1.0], [1.0, 0.0]]), ranges)
        array([[ 0.,  0.],
               [10.,  2.]])
    """
    xy = np.asarray(xy, dtype=np.float64)
    x0, x1, _, y1 = histogram_extent(ranges)
    return np.stack([x0 + (xy[..., 0] + 1) / 2 * (x1 - x0), (xy[..., 1] + 1) / 2 * y1], axis=-1)


def draw_histogram(ax: Any, observation: np.ndarray, ranges: HistogramRanges) -> None:
    """Draw a joint-histogram image (``(1, H, W)`` or ``(H, W)``) on ``ax`` in physical units."""
    extent = histogram_extent(ranges)
    image = np.asarray(observation)
    ax.imshow(
        image.reshape(image.shape[-2:]), origin="lower", extent=extent, aspect="auto", cmap="gray"
    )
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])


def draw_polygon(ax: Any, action: np.ndarray, ranges: HistogramRanges, **style: Any) -> Any:
    """Draw a TF's polygon (a flat action ``x1, y1, ...``) on a histogram axes.

    Args:
        ax: a matplotlib axes showing :func:`draw_histogram`.
        action: the flat action (or ``(n, 2)`` vertices) in [-1, 1].
        ranges: the histogram's ranges.
        **style: matplotlib ``Polygon`` keywords overriding the default orange look.

    Returns:
        The ``matplotlib.patches.Polygon`` added.
    """
    from matplotlib.patches import Polygon

    verts = action_to_histogram(np.asarray(action, dtype=np.float64).reshape(-1, 2), ranges)
    kwargs: dict[str, Any] = {
        "closed": True,
        "fill": True,
        "facecolor": POLYGON_FACE,
        "edgecolor": POLYGON_EDGE,
        "linewidth": 1.5,
    }
    kwargs.update(style)
    return ax.add_patch(Polygon(verts, **kwargs))


def figure_to_rgb(fig: Any) -> np.ndarray:
    """Rasterise a matplotlib figure to an ``(H, W, 3)`` uint8 array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an ``(H, W, 3)`` uint8 image as PNG.

    Args:
        path: output file, ending in ``.png``; missing parent folders are created.
        rgb: the image.

    Returns:
        The path written.

    Raises:
        ValueError: a path with another suffix (tfgym writes PNG only, and never PNG bytes
            under a ``.jpg`` name) or an image that is not ``(H, W, 3)``.
    """
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise ValueError(f"{out}: output images are PNG; use a .png file name")
    image = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    from PIL import Image  # pillow comes with matplotlib

    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(out, format="PNG")
    return out
