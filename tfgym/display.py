"""Display quality: what a person looks at (figures of the demo and of reward-model evaluation).

Search, training and the oracle run at the fast training size (a 64-voxel working volume,
128-pixel images). What a person looks at -- the demo's figures, the paper's Figure 3 of an
evaluation -- is rendered at display quality: the same scene at
:data:`DISPLAY_WORKING_SIZE` voxels along its longest side, images of
:func:`display_image_size` pixels (1.5 pixels per voxel, :data:`DISPLAY_IMAGE_SIZE` at the
default size), from the :data:`DISPLAY_VIEWS`.

A TF is a polygon in relative joint-histogram coordinates, and every working size of a scan
shares one histogram definition (:mod:`tfgym.scene`), so the same TF is rendered on the
display volume with ``tf.lut(display_scene.ranges)`` and selects the same anatomy. Everything
else that decides its look comes from the :class:`~tfgym.scoring.ScoringSettings` it was
scored with: histogram bins, shading and, for actions, opacity and colour scheme. The renderer
corrects a TF's opacity for the display volume's thinner voxels
(:attr:`tfgym.scene.Scene.opacity_scale`), so a TF looks as transparent as the oracle saw it,
and samples each voxel :data:`DISPLAY_SAMPLES` times (post-classification, on the CPU) so that
smooth surfaces show no terraces.

Measured on the shared 2-core development CPU: a 256-voxel display scene takes 13 s to build
the first time for a phantom (4 s at 192 voxels), 1.3 s from the disk cache and 1.3 s for
headsq; rendering 12 TFs from two views at 384 pixels, renderers included, 1.6 s (phantom-00)
and 2.3 s (headsq) with one sample per voxel, 5.3 s and 4.9 s with two. ``tfgym demo`` with its
defaults (three scenes, three figures) took 53 s in all, ``tfgym eval-rm`` on headsq 74 s
(of which 48 s scoring the 20,000 random actions, 11 s the figures).

:func:`render_display` renders TFs at display quality; :func:`display_figure` lays out a
matplotlib figure of several TFs x views with titles (matplotlib is imported only there).

Example:
    >>> from tfgym.transfer_function import TransferFunction
    >>> tf = TransferFunction(((0.2, -1), (1, -1), (1, 1), (0.2, 1)))
    >>> images = render_display("headsq", [tf], working_size=32)
    >>> images.shape, images.dtype
    ((1, 2, 48, 48, 3), dtype('uint8'))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tfgym.figures import draw_histogram, draw_polygon
from tfgym.renderer import Renderer
from tfgym.scene import Scene, load_scene, resolve_scenes
from tfgym.scoring import ScoringSettings
from tfgym.transfer_function import TransferFunction, validate_actions
from tfgym.views import view_vectors

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DISPLAY_IMAGE_SIZE",
    "DISPLAY_SAMPLES",
    "DISPLAY_VIEWS",
    "DISPLAY_WORKING_SIZE",
    "FIGURE_DPI",
    "check_views",
    "display_figure",
    "display_image_size",
    "display_scene",
    "render_display",
]

DISPLAY_WORKING_SIZE = 256
"""Voxels along the longest side of a display volume (4x the training size in each axis)."""
DISPLAY_IMAGE_SIZE = 384
"""Image side of a display rendering at :data:`DISPLAY_WORKING_SIZE` (1.5 pixels per voxel)."""
DISPLAY_SAMPLES = 2
"""Samples per voxel along a display ray (:class:`tfgym.renderer.Renderer`)."""
DISPLAY_VIEWS: tuple[str, ...] = ("front", "side")
"""Camera presets of display renderings (:data:`tfgym.views.VIEWS`)."""
FIGURE_DPI = 110
"""Dots per inch of display figures: an image panel is ``image_size / FIGURE_DPI`` inches."""
HISTOGRAM_PLACES = ("below", "inset", "none")
MIN_PANEL_INCHES = 1.6  # panels of small test renderings still fit their titles


def display_image_size(working_size: int) -> int:
    """Image side for a display volume of ``working_size`` voxels: 1.5 pixels per voxel.

    Example:
        >>> display_image_size(DISPLAY_WORKING_SIZE) == DISPLAY_IMAGE_SIZE, display_image_size(4)
        (True, 8)
    """
    return max(8, round(1.5 * int(working_size)))


def check_views(views: Sequence[str]) -> tuple[str, ...]:
    """The views as a tuple, validated.

    Raises:
        ValueError: no views, or an unknown view (the message lists the valid ones).
    """
    out = (views,) if isinstance(views, str) else tuple(views)
    if not out:
        raise ValueError("no views given")
    for view in out:
        view_vectors(view)
    return out


def _loadable(name: str) -> bool:
    """Whether a scene name (or path) can be loaded again by name."""
    try:
        return resolve_scenes(name) == (name,)
    except ValueError:
        return False


def display_scene(
    scene: str | Path | Scene,
    *,
    working_size: int = DISPLAY_WORKING_SIZE,
    histogram_bins: int = 64,
) -> Scene:
    """The scene to render at display quality.

    Args:
        scene: a scene name or scan path, or a :class:`~tfgym.scene.Scene` (e.g. a scorer's).
            A scene whose name loads again (a bundled scene or an existing scan) is loaded at
            ``working_size``; one built from an in-memory volume is returned as it is.
        working_size: voxels along the display volume's longest side.
        histogram_bins: joint-histogram bins per axis (the training scene's, so that a TF's
            LUT has the same bins).

    Returns:
        The display scene (from the process cache of :func:`tfgym.scene.load_scene`).

    Raises:
        ValueError: an unknown scene name; ``working_size`` below 8.
    """
    if int(working_size) < 8:
        raise ValueError(f"working_size must be at least 8, got {working_size}")
    if not isinstance(scene, Scene):
        return load_scene(scene, working_size=working_size, histogram_bins=histogram_bins)
    same = max(scene.volume.shape) == working_size and scene.ranges.shape == (
        histogram_bins,
        histogram_bins,
    )
    if same or not _loadable(scene.name):
        return scene
    return load_scene(scene.name, working_size=working_size, histogram_bins=histogram_bins)


def _tfs(tfs: Sequence[TransferFunction] | np.ndarray, settings: ScoringSettings) -> list[Any]:
    """TransferFunction objects of TFs or of a batch of actions (the settings' look)."""
    if isinstance(tfs, np.ndarray) or (len(tfs) and not isinstance(tfs[0], TransferFunction)):
        acts = validate_actions(np.asarray(tfs, dtype=np.float32), settings.n_vertices)
        return [
            TransferFunction.from_valid_action(
                a, opacity=settings.opacity, color_scheme=settings.color_scheme
            )
            for a in acts
        ]
    return list(tfs)


def render_display(
    scene: str | Path | Scene,
    tfs: Sequence[TransferFunction] | np.ndarray,
    *,
    views: Sequence[str] = DISPLAY_VIEWS,
    working_size: int = DISPLAY_WORKING_SIZE,
    image_size: int | None = None,
    settings: ScoringSettings | None = None,
    samples_per_voxel: int = DISPLAY_SAMPLES,
) -> np.ndarray:
    """Render TFs of one scene at display quality from several views.

    Args:
        scene: a scene name, scan path or :class:`~tfgym.scene.Scene` (see
            :func:`display_scene`); the display volume is built once (process cache).
        tfs: transfer functions, or actions ``(n_tfs, 2 * n_vertices)`` in [-1, 1] (drawn
            with the settings' opacity and colour scheme).
        views: camera presets, one image each.
        working_size: voxels along the display volume's longest side.
        image_size: image side in pixels (default :func:`display_image_size`).
        settings: the settings the TFs were scored with (default
            :class:`~tfgym.scoring.ScoringSettings`): histogram bins, shading and device
            (with one sample per voxel; more render on the CPU).
        samples_per_voxel: samples per voxel along each ray; 1 is the training renderer.

    Returns:
        uint8 ``(n_tfs, n_views, image_size, image_size, 3)``, colour over black.

    Raises:
        ValueError: no TFs, malformed actions, an unknown view or scene.
    """
    s = settings or ScoringSettings()
    views = check_views(views)
    items = _tfs(tfs, s)
    if not items:
        raise ValueError("no transfer functions to render")
    shown = display_scene(scene, working_size=working_size, histogram_bins=s.histogram_bins)
    size = display_image_size(working_size) if image_size is None else int(image_size)
    luts = np.stack([tf.lut(shown.ranges) for tf in items])
    device = s.device if samples_per_voxel == 1 else "cpu"  # interpolation: the CPU kernel
    out = np.empty((len(items), len(views), size, size, 3), dtype=np.uint8)
    for v, view in enumerate(views):
        renderer = Renderer(
            shown, image_size=size, view=view, shading=s.shading, device=device,
            samples_per_voxel=samples_per_voxel,
        )  # fmt: skip
        out[:, v] = renderer.render(luts).rgb
    return out


def _figure_size(
    n_cells: int, columns: int, n_views: int, panel: float, histogram: str
) -> tuple[float, float, int]:
    rows = -(-n_cells // columns)
    width = columns * n_views * panel + (columns - 1) * 0.1 * panel + 0.6
    row_height = panel + 0.55 + (0.7 * panel + 0.5 if histogram == "below" else 0.0)
    return width, rows * row_height + 0.5, rows


def display_figure(
    images: np.ndarray,
    titles: Sequence[str],
    *,
    views: Sequence[str] = DISPLAY_VIEWS,
    scene: Scene | None = None,
    actions: np.ndarray | None = None,
    histogram: str = "below",
    columns: int | None = None,
    suptitle: str | None = None,
) -> Figure:
    """A figure of several TFs x views: per TF a cell of its views side by side, titled.

    Each image panel shows its rendering at about one figure pixel per image pixel (at
    :data:`FIGURE_DPI`) with the view's name in its corner; the TF's title stands over its
    first view. With ``scene`` and ``actions``, the TF's polygon is drawn on the scene's
    joint histogram (the training observation): in a panel below the cell (``"below"``) or
    as an inset in the last view's lower right corner (``"inset"``).

    Args:
        images: uint8 ``(n_tfs, n_views, H, W, 3)`` (from :func:`render_display`).
        titles: one title per TF.
        views: the views' names, in the order of ``images``' second axis.
        scene: the scene whose joint histogram to draw the polygons on.
        actions: ``(n_tfs, 2 * n_vertices)``, the TFs' polygons.
        histogram: ``"below"``, ``"inset"`` or ``"none"``.
        columns: TF cells per row (default: all in one row).
        suptitle: the figure's title.

    Returns:
        The ``matplotlib.figure.Figure`` (no pyplot): save it with ``fig.savefig`` or
        rasterise it with :func:`tfgym.figures.figure_to_rgb`.

    Raises:
        ValueError: shapes that do not match, or an unknown ``histogram`` place.
    """
    from matplotlib.figure import Figure

    imgs = np.asarray(images)
    views = check_views(views)
    if imgs.ndim != 5 or imgs.shape[1] != len(views) or imgs.shape[-1] != 3:
        raise ValueError(f"images must be (n_tfs, {len(views)} views, H, W, 3), got {imgs.shape}")
    if len(titles) != len(imgs):
        raise ValueError(f"{len(titles)} titles for {len(imgs)} TFs")
    if histogram not in HISTOGRAM_PLACES:
        raise ValueError(f"histogram must be one of {HISTOGRAM_PLACES}, got {histogram!r}")
    if scene is None or actions is None:
        histogram = "none"
    elif len(actions) != len(imgs):
        raise ValueError(f"{len(actions)} actions for {len(imgs)} TFs")
    n, nv = len(imgs), len(views)
    cols = n if columns is None else max(1, min(int(columns), n))
    panel = max(MIN_PANEL_INCHES, imgs.shape[2] / FIGURE_DPI)
    width, height, rows = _figure_size(n, cols, nv, panel, histogram)
    fig = Figure(figsize=(width, height), dpi=FIGURE_DPI, layout="constrained")
    below = histogram == "below"
    # panel columns per cell, with a narrow spacer column between cells
    width_ratios = ([1.0] * nv + [0.1]) * cols
    height_ratios = ([1.0, 0.7] if below else [1.0]) * rows
    grid = fig.add_gridspec(
        len(height_ratios), len(width_ratios) - 1, width_ratios=width_ratios[:-1],
        height_ratios=height_ratios,
    )  # fmt: skip
    per_row = 2 if below else 1
    for k in range(n):
        r, c = divmod(k, cols)
        first = c * (nv + 1)
        for v, view in enumerate(views):
            ax = fig.add_subplot(grid[r * per_row, first + v])
            ax.imshow(imgs[k, v])
            ax.set_xticks([])
            ax.set_yticks([])
            ax.text(
                0.02, 0.98, view, transform=ax.transAxes, va="top", ha="left",
                color="white", fontsize=8, alpha=0.8,
            )  # fmt: skip
            if v == 0:
                ax.set_title(titles[k], fontsize=10, loc="left")
        if histogram == "none":
            continue
        assert scene is not None
        assert actions is not None
        if below:
            hist = fig.add_subplot(grid[r * per_row + 1, first : first + nv])
            hist.set_xlabel("intensity", fontsize=9)
            hist.set_ylabel("gradient magnitude" if c == 0 else "", fontsize=9)
            hist.tick_params(labelsize=7)
        else:
            hist = ax.inset_axes((0.68, 0.0, 0.32, 0.32))
            hist.set_xticks([])
            hist.set_yticks([])
        draw_histogram(hist, scene.observation, scene.ranges)
        draw_polygon(hist, actions[k], scene.ranges)
    if suptitle:
        fig.suptitle(suptitle)
    return fig
