"""The paper's figures of a reward model (RM) (Melenberg et al., MIDL 2025, Figures 2 and 3).

Each function returns a ``matplotlib.figure.Figure`` (no pyplot, no global backend: save it
with ``fig.savefig``). Histograms and polygons are drawn with :mod:`tfgym.figures`.

* :func:`reward_histogram_figure`: Figure 2 left, rewards of random actions;
* :func:`corner_point_figure`: Figure 2 right, the reward as one vertex moves over the whole
  histogram while the others stay at a good TF, one panel per vertex over the JH image;
* :func:`tf_grid_figure`: Figure 3, TFs rendered at display quality from several views
  (:mod:`tfgym.display`), sorted by reward, each titled with its RM reward and oracle score;
* :func:`reward_vs_oracle_figure`: RM reward against oracle score of random actions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from reward_models.config import EvalConfig
from reward_models.metrics import Scorer, predict_batched
from tfgym.display import DISPLAY_VIEWS, DISPLAY_WORKING_SIZE, display_figure, render_display
from tfgym.figures import action_to_histogram, draw_histogram, draw_polygon, histogram_extent
from tfgym.scene import Scene
from tfgym.scoring import SceneScorer

__all__ = [
    "corner_point_figure",
    "reward_histogram_figure",
    "reward_vs_oracle_figure",
    "tf_grid_figure",
]


def reward_histogram_figure(
    rewards: np.ndarray, *, marks: dict[str, float] | None = None, title: str | None = None
) -> Figure:
    """The paper's Figure 2 left: a histogram of RM rewards (of random actions).

    Args:
        rewards: ``(n,)`` rewards.
        marks: optional named rewards drawn as vertical lines (e.g. the reference TF's).
        title: figure title.
    """
    r = np.asarray(rewards, dtype=np.float64)
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.subplots()
    ax.hist(r, bins=60, color="tab:blue", alpha=0.85)
    for (name, value), color in zip(
        (marks or {}).items(), ("tab:red", "tab:green", "tab:purple"), strict=False
    ):
        ax.axvline(value, color=color, linestyle="--", linewidth=1.5, label=f"{name}: {value:.2f}")
    if marks:
        ax.legend(loc="upper right", fontsize=9)
    ax.set_xlabel("reward")
    ax.set_ylabel("number of actions")
    ax.set_title(title or f"rewards of {len(r):,} random actions")
    return fig


def reward_vs_oracle_figure(
    rewards: np.ndarray, scores: np.ndarray, *, rho: float | None = None, title: str | None = None
) -> Figure:
    """RM reward against oracle score (one point per action), with Spearman rho in the title."""
    fig = Figure(figsize=(5.6, 4.6), layout="constrained")
    ax = fig.subplots()
    ax.scatter(scores, rewards, s=3, alpha=0.25, color="tab:blue", linewidths=0)
    ax.set_xlabel("oracle score")
    ax.set_ylabel("RM reward")
    head = title or f"{len(rewards):,} random actions"
    ax.set_title(head if rho is None else f"{head}: Spearman rho = {rho:.3f}")
    ax.grid(alpha=0.3)
    return fig


def corner_point_figure(
    model: Scorer, scene: Scene, base_action: np.ndarray, *, grid: int = EvalConfig.grid
) -> Figure:
    """The paper's Figure 2 right: reward as one vertex moves over the whole histogram.

    For each vertex ``i`` of ``base_action``, the vertex takes each of ``grid x grid``
    positions in ``[-1, 1]^2`` while the others stay put; the panel shows the reward at each
    position as a heat map over the scene's JH image (low gradient at the bottom), the base
    polygon and its vertices, the moving vertex as a star and the best position as a cross.
    All panels share one colour scale.

    Args:
        model: the scorer.
        scene: the scene (its ``observation``, ``ranges`` and ``name``).
        base_action: a good TF, flat ``(2 * n_vertices,)`` in [-1, 1].
        grid: positions per axis.
    """
    base = np.asarray(base_action, dtype=np.float32).reshape(-1)
    n_vert = base.size // 2
    coords = np.linspace(-1.0, 1.0, grid, dtype=np.float32)
    gx, gy = np.meshgrid(coords, coords)  # row = y (gradient), column = x (intensity)
    maps = []
    for i in range(n_vert):
        acts = np.repeat(base[None], grid * grid, axis=0)
        acts[:, 2 * i], acts[:, 2 * i + 1] = gx.ravel(), gy.ravel()
        maps.append(predict_batched(model, scene.observation, acts).reshape(grid, grid))
    vmin, vmax = float(min(m.min() for m in maps)), float(max(m.max() for m in maps))
    base_reward = float(predict_batched(model, scene.observation, base[None])[0])

    half = 1.0 / (grid - 1)  # heat-map cells centred on the grid positions
    cell = action_to_histogram(
        np.array([[-1 - half, -1 - half], [1 + half, 1 + half]]), scene.ranges
    )
    heat_extent = (cell[0, 0], cell[1, 0], cell[0, 1], cell[1, 1])
    verts = action_to_histogram(base.reshape(n_vert, 2), scene.ranges)
    extent = histogram_extent(scene.ranges)
    cols = min(n_vert, 4)
    rows = -(-n_vert // cols)
    fig = Figure(figsize=(3.6 * cols + 0.8, 3.3 * rows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    image = None
    for i, ax in enumerate(axes):
        if i >= n_vert:
            ax.set_axis_off()
            continue
        draw_histogram(ax, scene.observation, scene.ranges)
        image = ax.imshow(
            maps[i], origin="lower", extent=heat_extent, aspect="auto", cmap="inferno",
            vmin=vmin, vmax=vmax, alpha=0.6, interpolation="nearest",
        )  # fmt: skip
        draw_polygon(ax, base, scene.ranges, fill=False, edgecolor="cyan", linewidth=1.2)
        ax.plot(verts[:, 0], verts[:, 1], "o", color="cyan", markersize=5, clip_on=False, zorder=5)
        ax.plot(*verts[i], "*", color="lime", ms=15, mec="black", clip_on=False, zorder=6)
        best = np.unravel_index(int(np.argmax(maps[i])), maps[i].shape)
        best_xy = action_to_histogram(np.array([gx[best], gy[best]]), scene.ranges)
        ax.plot(*best_xy, "x", color="white", ms=9, clip_on=False, zorder=6)
        ax.set_xlim(extent[0], extent[1])  # the heat map's cells reach past the histogram
        ax.set_ylim(extent[2], extent[3])
        ax.set_title(f"vertex {i + 1} moved (star); best: x", fontsize=10)
        ax.set_xlabel("intensity", fontsize=9)
        ax.set_ylabel("gradient magnitude" if i % cols == 0 else "", fontsize=9)
        ax.tick_params(labelsize=7)
    if image is not None:
        fig.colorbar(image, ax=axes.tolist(), shrink=0.8, label="reward")
    fig.suptitle(f"{scene.name}: reward per vertex position (base TF reward {base_reward:.2f})")
    return fig


def tf_grid_figure(
    model: Scorer,
    scorer: SceneScorer,
    actions: np.ndarray,
    *,
    columns: int = 3,
    views: Sequence[str] = DISPLAY_VIEWS,
    display_size: int = DISPLAY_WORKING_SIZE,
) -> Figure:
    """The paper's Figure 3: TFs rendered in a grid, sorted by RM reward (best first).

    Each TF is a cell of its renderings at display quality
    (:func:`tfgym.display.render_display`: the scene's ``display_size``-voxel volume, one
    image per view), titled with its rank, RM reward and oracle score (at the scorer's
    settings), with the polygon over the JH as an inset in the last view's lower right corner.

    Args:
        model: the scorer.
        scorer: scores the actions (oracle score) at its settings; its scene is shown at
            display quality with the same TF look.
        actions: ``(k, 2 * n_vertices)``, 12 in the paper.
        columns: TF cells per row.
        views: camera views of each TF.
        display_size: voxels along the longest side of the display volume.
    """
    acts = np.asarray(actions, dtype=np.float32)
    scene = scorer.scene
    rewards = predict_batched(model, scene.observation, acts)
    batch = scorer.score(acts)
    order = np.argsort(-rewards, kind="stable")
    images = render_display(
        scene, batch.actions[order], views=views, working_size=display_size,
        settings=scorer.settings,
    )  # fmt: skip
    titles = [
        f"#{rank + 1}  RM {rewards[k]:.2f}\noracle {batch.oracle_score[k]:.3f}"
        for rank, k in enumerate(order)
    ]
    return display_figure(
        images,
        titles,
        views=views,
        scene=scene,
        actions=batch.actions[order],
        histogram="inset",
        columns=columns,
        suptitle=f"{scene.name}: {len(acts)} TFs sorted by RM reward (inset: TF on the histogram)",
    )
