"""Evaluation of a reward model (RM) against the oracle: metrics, the paper's figures, ``eval-rm``.

Everything here works with any *scorer*: an object with
``predict(observation, actions) -> np.ndarray`` that scores a batch of actions ``(B, 2n)`` of
one scene whose joint-histogram image is ``observation`` (uint8 ``(1, H, W)``), returning
``(B,)`` rewards. :class:`reward_models.model.RewardModel` and ``RewardEnsemble`` are scorers;
so is :class:`OracleScorer`, the noise-free oracle itself (the ceiling every RM is measured
against: its Spearman rho with the oracle is 1).

Metrics (Melenberg et al., MIDL 2025, section 4):

* :func:`pair_accuracy`: on held-out pairs answered unambiguously (``mu != 0.5``), the share
  where the RM prefers the action the labeler chose; and the share where it prefers the
  action with the higher noise-free oracle score (oracle ties excluded);
* :func:`spearman_random`: Spearman's rank correlation between RM reward and oracle score over
  uniformly random actions (20,000 by default).

Figures (matplotlib, Agg; each function returns a ``matplotlib.figure.Figure``):

* :func:`reward_histogram_figure`: the paper's Figure 2 left, rewards of random actions;
* :func:`corner_point_figure`: Figure 2 right, the reward as one vertex moves over the whole
  histogram while the others stay at a good TF, one panel per vertex over the JH image;
* :func:`tf_grid_figure`: Figure 3, twelve TFs rendered, sorted by reward, each titled with
  its RM reward and oracle score;
* :func:`reward_vs_oracle_figure`: RM reward against oracle score of the random actions.

:func:`evaluate_reward_model` runs all of them, writes PNGs and ``metrics.json`` and logs to
TensorBoard; :func:`add_eval_command` registers ``tfgym eval-rm``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import matplotlib

matplotlib.use("Agg")

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Polygon

__all__ = [
    "OracleScorer",
    "Scorer",
    "add_eval_command",
    "corner_point_figure",
    "evaluate_reward_model",
    "heldout_records",
    "oracle_scores",
    "pair_accuracy",
    "predict_batched",
    "reward_histogram_figure",
    "reward_vs_oracle_figure",
    "spearman_random",
    "tf_grid_figure",
]

ORACLE_CHUNK = 512  # actions rendered per env.evaluate call
PREDICT_CHUNK = 2048  # actions per model.predict call (bounds the memory of mask rasters)


class Scorer(Protocol):
    """Anything that scores a batch of actions of one scene (an RM, an ensemble, the oracle)."""

    def predict(self, observation: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Rewards ``(B,)`` for actions ``(B, 2n)`` of the scene with JH ``observation``."""
        ...


def oracle_scores(
    env: Any, scene: str, actions: np.ndarray, *, chunk: int = ORACLE_CHUNK, progress: bool = False
) -> np.ndarray:
    """Noise-free oracle scores of actions on a scene, rendered in chunks.

    Args:
        env: a ``TransferFunction-v0`` env (wrapped or not).
        scene: scene name or path.
        actions: ``(B, 2 * n_vertices)`` in ``[-1, 1]``.
        chunk: actions per ``env.unwrapped.evaluate`` call.
        progress: show a progress bar.

    Returns:
        float64 ``(B,)`` in ``[0, 1]``.
    """
    from tqdm.auto import tqdm

    acts = np.asarray(actions, dtype=np.float32)
    out = np.empty(len(acts), dtype=np.float64)
    for start in tqdm(
        range(0, len(acts), chunk), desc=f"oracle {scene}", disable=not progress, leave=False
    ):
        info = env.unwrapped.evaluate(acts[start : start + chunk], scene=scene)[2]
        out[start : start + chunk] = info["oracle_score"]
    return out


def predict_batched(
    model: Scorer, observation: np.ndarray, actions: np.ndarray, *, chunk: int = PREDICT_CHUNK
) -> np.ndarray:
    """``model.predict`` over ``actions`` in chunks, as float64 ``(B,)``."""
    acts = np.asarray(actions, dtype=np.float32)
    parts = [
        np.asarray(model.predict(observation, acts[s : s + chunk]), dtype=np.float64).reshape(-1)
        for s in range(0, len(acts), chunk)
    ]
    out = np.concatenate(parts) if parts else np.empty(0)
    if out.shape != (len(acts),):
        raise ValueError(f"model.predict returned {out.shape} rewards for {len(acts)} actions")
    return out


@dataclass(frozen=True)
class OracleScorer:
    """The noise-free oracle as a scorer with an RM's ``predict`` signature.

    It renders the actions on its scene and returns their oracle scores; the observation is
    only checked against the scene's. Useful as the ceiling of every metric here.

    Attributes:
        env: a ``TransferFunction-v0`` env (wrapped or not).
        scene: the scene name the observations belong to.
    """

    env: Any
    scene: str

    def predict(self, observation: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Oracle scores ``(B,)`` of ``actions`` on :attr:`scene`."""
        expected = self.env.unwrapped.renderer_for(self.scene).scene.observation
        if not np.array_equal(np.asarray(observation), expected):
            raise ValueError(f"observation is not the joint histogram of scene {self.scene!r}")
        return oracle_scores(self.env, self.scene, np.atleast_2d(actions))


def _scene_observation(env: Any, scene: str) -> np.ndarray:
    return env.unwrapped.renderer_for(scene).scene.observation


def pair_accuracy(model: Scorer, records: Sequence[Any], *, env: Any) -> dict[str, Any]:
    """Pairwise accuracy of an RM on held-out preferences.

    A pair counts as correct when the RM gives the preferred action the higher reward; equal
    rewards count half.

    Args:
        model: the scorer.
        records: :class:`tfgym.preferences.Preference` records (any scenes).
        env: a ``TransferFunction-v0`` env that can load the records' scenes (it renders both
            actions of every pair once to get their noise-free oracle scores).

    Returns:
        ``n_pairs``; ``n_unambiguous`` (``mu != 0.5``); ``accuracy_labeler``: accuracy against
        the labeler's answers on the unambiguous pairs; ``n_oracle``, ``accuracy_oracle``:
        against the oracle on unambiguous pairs whose oracle scores differ;
        ``n_oracle_all``, ``accuracy_oracle_all``: the same over all pairs, ties answered
        0.5 included; ``labeler_vs_oracle``: how often the labeler itself agreed with the
        oracle on the unambiguous pairs (its noise ceiling). Accuracies are NaN without pairs.
    """
    by_scene: dict[str, list[Any]] = defaultdict(list)
    for r in records:
        by_scene[r.scene].append(r)
    mu, r_diff, s_diff = [], [], []
    for scene, recs in by_scene.items():
        a = np.array([r.action_a for r in recs], dtype=np.float32)
        b = np.array([r.action_b for r in recs], dtype=np.float32)
        unique, inverse = np.unique(np.concatenate([a, b]), axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        rewards = predict_batched(model, _scene_observation(env, scene), unique)[inverse]
        scores = oracle_scores(env, scene, unique)[inverse]
        n = len(recs)
        mu.append(np.array([r.mu for r in recs]))
        r_diff.append(rewards[:n] - rewards[n:])
        s_diff.append(scores[:n] - scores[n:])
    mu_ = np.concatenate(mu) if mu else np.empty(0)
    rd = np.concatenate(r_diff) if r_diff else np.empty(0)
    sd = np.concatenate(s_diff) if s_diff else np.empty(0)

    def agree(pred: np.ndarray, truth_a_better: np.ndarray) -> float:
        if pred.size == 0:
            return float("nan")
        hit = np.where(pred == 0, 0.5, (pred > 0) == truth_a_better)
        return float(np.mean(hit))

    clear = mu_ != 0.5
    oracle_clear = clear & (sd != 0)
    return {
        "n_pairs": len(mu_),
        "n_unambiguous": int(clear.sum()),
        "accuracy_labeler": agree(rd[clear], mu_[clear] == 1.0),
        "n_oracle": int(oracle_clear.sum()),
        "accuracy_oracle": agree(rd[oracle_clear], sd[oracle_clear] > 0),
        "n_oracle_all": int((sd != 0).sum()),
        "accuracy_oracle_all": agree(rd[sd != 0], sd[sd != 0] > 0),
        "labeler_vs_oracle": agree(
            np.where(mu_ == 1.0, 1.0, -1.0)[oracle_clear], sd[oracle_clear] > 0
        ),
    }


def spearman_random(
    model: Scorer,
    env: Any,
    scene: str,
    rng: np.random.Generator,
    *,
    n: int = 20000,
    actions: np.ndarray | None = None,
    progress: bool = False,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Spearman rho between RM reward and oracle score over uniformly random actions.

    Args:
        model: the scorer.
        env: a ``TransferFunction-v0`` env (its ``n_vertices`` sets the action size).
        scene: scene name or path.
        rng: draws the actions, ``uniform(-1, 1, (n, 2 * n_vertices))``.
        n: number of random actions.
        actions: score these instead of drawing (``rng`` and ``n`` are then unused).
        progress: show a progress bar while the oracle renders.

    Returns:
        ``(rho, rewards (n,), oracle_scores (n,))``; rho is NaN when either is constant.
    """
    if actions is None:
        if n < 2:
            raise ValueError(f"need at least 2 random actions, got n={n}")
        actions = rng.uniform(-1.0, 1.0, size=(n, env.unwrapped.action_space.shape[0]))
    rewards = predict_batched(model, _scene_observation(env, scene), actions)
    scores = oracle_scores(env, scene, actions, progress=progress)
    return _spearman(rewards, scores), rewards, scores


def _spearman(rewards: np.ndarray, scores: np.ndarray) -> float:
    """Spearman rho, NaN when either side is constant."""
    from scipy.stats import spearmanr

    if len(rewards) < 2 or np.ptp(rewards) == 0 or np.ptp(scores) == 0:
        return float("nan")
    return float(spearmanr(rewards, scores).statistic)


# -- figures -----------------------------------------------------------------------------------
def _jh_extent(ranges: Any) -> tuple[float, float, float, float]:
    return (ranges.intensity_min, ranges.intensity_max, 0.0, ranges.gradient_max)


def _to_jh(xy: np.ndarray, ranges: Any) -> np.ndarray:
    """Action coordinates ``(..., 2)`` in [-1, 1] to grey value (x) and gradient (y)."""
    xy = np.asarray(xy, dtype=np.float64)
    x0, x1, _, y1 = _jh_extent(ranges)
    return np.stack([x0 + (xy[..., 0] + 1) / 2 * (x1 - x0), (xy[..., 1] + 1) / 2 * y1], axis=-1)


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
    model: Scorer, scene: Any, base_action: np.ndarray, *, grid: int = 32
) -> Figure:
    """The paper's Figure 2 right: reward as one vertex moves over the whole histogram.

    For each vertex ``i`` of ``base_action``, the vertex takes each of ``grid x grid``
    positions in ``[-1, 1]^2`` while the others stay put; the panel shows the reward at each
    position as a heat map over the scene's JH image (low gradient at the bottom), the base
    polygon and its vertices, the moving vertex as a star and the best position as a cross.
    All panels share one colour scale.

    Args:
        model: the scorer.
        scene: a :class:`tfgym.scene.Scene` (its ``observation`` and ``ranges``).
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

    extent = _jh_extent(scene.ranges)
    half = 1.0 / (grid - 1)  # heat-map cells centred on the grid positions
    cell = _to_jh(np.array([[-1 - half, -1 - half], [1 + half, 1 + half]]), scene.ranges)
    heat_extent = (cell[0, 0], cell[1, 0], cell[0, 1], cell[1, 1])
    verts = _to_jh(base.reshape(n_vert, 2), scene.ranges)
    cols = min(n_vert, 4)
    rows = -(-n_vert // cols)
    fig = Figure(figsize=(3.6 * cols + 0.8, 3.3 * rows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    image = None
    for i, ax in enumerate(axes):
        if i >= n_vert:
            ax.set_axis_off()
            continue
        ax.imshow(scene.observation[0], origin="lower", extent=extent, aspect="auto", cmap="gray")
        image = ax.imshow(
            maps[i], origin="lower", extent=heat_extent, aspect="auto", cmap="inferno",
            vmin=vmin, vmax=vmax, alpha=0.6, interpolation="nearest",
        )  # fmt: skip
        ax.add_patch(Polygon(verts, closed=True, fill=False, edgecolor="cyan", linewidth=1.2))
        ax.plot(verts[:, 0], verts[:, 1], "o", color="cyan", markersize=5, clip_on=False, zorder=5)
        ax.plot(*verts[i], "*", color="lime", ms=15, mec="black", clip_on=False, zorder=6)
        best = np.unravel_index(int(np.argmax(maps[i])), maps[i].shape)
        ax.plot(
            *_to_jh(np.array([gx[best], gy[best]]), scene.ranges),
            "x",
            color="white",
            ms=9,
            clip_on=False,
            zorder=6,
        )
        ax.set_xlim(extent[0], extent[1])
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
    model: Scorer, env: Any, scene: str, actions: np.ndarray, *, columns: int = 4
) -> Figure:
    """The paper's Figure 3: TFs rendered in a grid, sorted by RM reward (best first).

    Each panel is the rendering, titled with its rank, RM reward and oracle score, with the
    polygon over the JH as an inset in its lower right corner.

    Args:
        model: the scorer.
        env: a ``TransferFunction-v0`` env (renders and scores with its settings).
        scene: scene name or path.
        actions: ``(k, 2 * n_vertices)``, 12 in the paper.
        columns: panels per row.
    """
    acts = np.asarray(actions, dtype=np.float32)
    sc = env.unwrapped.renderer_for(scene).scene
    rewards = predict_batched(model, sc.observation, acts)
    _, batch, info = env.unwrapped.evaluate(acts, scene=scene)
    order = np.argsort(-rewards, kind="stable")
    rows = -(-len(acts) // columns)
    fig = Figure(figsize=(2.8 * columns, 3.0 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    extent = _jh_extent(sc.ranges)
    for ax in axes[len(acts) :]:
        ax.set_axis_off()
    for rank, (ax, k) in enumerate(zip(axes, order, strict=False)):
        ax.imshow(batch.rgb[k])
        ax.set_title(
            f"#{rank + 1}  RM {rewards[k]:.2f}\noracle {info['oracle_score'][k]:.3f}", fontsize=10
        )
        ax.set_xticks([])
        ax.set_yticks([])
        inset = ax.inset_axes((0.68, 0.0, 0.32, 0.32))
        inset.imshow(sc.observation[0], origin="lower", extent=extent, aspect="auto", cmap="gray")
        poly = _to_jh(acts[k].reshape(-1, 2), sc.ranges)
        inset.add_patch(Polygon(poly, closed=True, fill=True, fc=(1, 0.6, 0.1, 0.35), ec="orange"))
        inset.set_xlim(extent[0], extent[1])
        inset.set_ylim(extent[2], extent[3])
        inset.set_xticks([])
        inset.set_yticks([])
    fig.suptitle(f"{scene}: {len(acts)} TFs sorted by RM reward (inset: TF on the histogram)")
    return fig


# -- the whole evaluation ----------------------------------------------------------------------
def _good_action(env: Any, scene: str, actions: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The hand-made reference TF of the env's target, else the best-scoring of ``actions``."""
    from tfgym.oracle import reference_action

    base = env.unwrapped
    try:
        ref = reference_action(base.renderer_for(scene).scene, base.target)
    except ValueError:  # the target tissue is absent from this scene
        ref = None
    if ref is not None and ref.size == base.action_space.shape[0]:
        return ref
    return np.asarray(actions[int(np.argmax(scores))], dtype=np.float32)


def _grid_actions(
    good: np.ndarray, actions: np.ndarray, rewards: np.ndarray, k: int = 12
) -> np.ndarray:
    """``good`` plus ``k - 1`` random actions at evenly spaced ranks of RM reward (best first)."""
    order = np.argsort(-rewards, kind="stable")
    picks = order[np.unique(np.linspace(0, len(order) - 1, k - 1).round().astype(int))]
    return np.concatenate([good[None], actions[picks]]).astype(np.float32)


def _json_value(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        return None if not np.isfinite(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, dict):
        return {k: _json_value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_value(x) for x in v]
    return v


def evaluate_reward_model(
    model: Scorer,
    env: Any,
    scene: str,
    records: Sequence[Any],
    rng: np.random.Generator,
    *,
    out_dir: str | Path,
    log_dir: str | Path | None = None,
    n_random: int = 20000,
    grid: int = 32,
    progress: bool = False,
) -> dict[str, Any]:
    """Run every metric and figure of this module for one scene; write PNGs and JSON.

    Writes, under ``out_dir``: ``reward_histogram.png`` (Figure 2 left),
    ``corner_points.png`` (Figure 2 right), ``tf_grid.png`` (Figure 3, the good TF and 11
    random actions at evenly spaced reward ranks), ``reward_vs_oracle.png`` and
    ``metrics.json``. With ``log_dir``, the figures (``add_figure``), the metrics (scalars
    under ``eval/``) and the reward histogram go to TensorBoard.

    Args:
        model: the scorer (an RM, an ensemble, :class:`OracleScorer`).
        env: a ``TransferFunction-v0`` env whose settings (image size, target) define the
            oracle score.
        scene: the scene of the random actions and figures.
        records: held-out preference records for :func:`pair_accuracy` (any scenes; may be
            empty, then the accuracies are NaN / null).
        rng: draws the random actions.
        out_dir: output folder (created).
        log_dir: TensorBoard folder, or None.
        n_random: random actions for the Spearman rho and the histogram.
        grid: positions per axis in the corner-point plot.
        progress: show progress bars.

    Returns:
        The metrics (also in ``metrics.json``): the :func:`pair_accuracy` entries,
        ``spearman_rho``, ``n_random``, reward and oracle-score summaries, the good TF's
        reward, and timings in seconds (``seconds_predict`` for RM scoring of the random
        actions, ``seconds_oracle`` for rendering them).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sc = env.unwrapped.renderer_for(scene).scene
    acts = rng.uniform(-1.0, 1.0, size=(n_random, env.unwrapped.action_space.shape[0]))
    acts = acts.astype(np.float32)

    t0 = time.perf_counter()
    accuracy = pair_accuracy(model, records, env=env)
    t1 = time.perf_counter()
    rewards = predict_batched(model, sc.observation, acts)
    t2 = time.perf_counter()
    scores = oracle_scores(env, scene, acts, progress=progress)
    t3 = time.perf_counter()
    rho = _spearman(rewards, scores)
    good = _good_action(env, scene, acts, scores)
    good_reward = float(predict_batched(model, sc.observation, good[None])[0])
    figures = {
        "reward_histogram": reward_histogram_figure(
            rewards,
            marks={"good TF": good_reward},
            title=f"{scene}: RM rewards of {n_random:,} random actions",
        ),
        "reward_vs_oracle": reward_vs_oracle_figure(rewards, scores, rho=rho, title=scene),
        "corner_points": corner_point_figure(model, sc, good, grid=grid),
        "tf_grid": tf_grid_figure(model, env, scene, _grid_actions(good, acts, rewards)),
    }
    t4 = time.perf_counter()
    metrics: dict[str, Any] = {
        "scene": scene,
        **accuracy,
        "spearman_rho": rho,
        "n_random": n_random,
        "reward_mean": float(rewards.mean()),
        "reward_std": float(rewards.std()),
        "reward_min": float(rewards.min()),
        "reward_max": float(rewards.max()),
        "oracle_mean": float(scores.mean()),
        "good_tf_action": [float(x) for x in good],
        "good_tf_reward": good_reward,
        "good_tf_reward_percentile": float(100.0 * np.mean(rewards < good_reward)),
        "seconds_pair_accuracy": t1 - t0,
        "seconds_predict": t2 - t1,
        "seconds_oracle": t3 - t2,
        "seconds_figures": t4 - t3,
        "files": {},
    }
    for name, fig in figures.items():
        path = out / f"{name}.png"
        fig.savefig(path, dpi=110)
        metrics["files"][name] = str(path)
    metrics = _json_value(metrics)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if log_dir is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=str(log_dir))
        try:
            for key, value in metrics.items():
                if isinstance(value, float) and not key.startswith("seconds"):
                    writer.add_scalar(f"eval/{key}", value, 0)
            writer.add_histogram("eval/random_rewards", rewards, 0)
            for name, fig in figures.items():
                writer.add_figure(f"eval/{name}", fig, 0, close=False)
        finally:
            writer.close()
    return metrics


# -- command line ------------------------------------------------------------------------------
def heldout_records(records: Sequence[Any], train_config: dict[str, Any] | None) -> list[Any]:
    """The validation split that :func:`reward_models.train.train_reward_model` held out.

    Training splits ``PreferenceTensors.from_records(records)`` with
    ``PreferenceTensors.split(val_fraction, np.random.default_rng(seed))``; this replays that
    split from the checkpoint's training config, so it is right only for the very records
    (same store, same order) the model was trained on.

    Args:
        records: all records the model was trained on, in the order it saw them.
        train_config: the checkpoint's ``train_config`` dict (``seed``, ``val_fraction``).

    Returns:
        The held-out records, in their original order.

    Raises:
        ValueError: no training config, or one that held nothing out.
    """
    if not train_config or not train_config.get("val_fraction"):
        raise ValueError(
            "the checkpoint records no validation split (val_fraction 0 or no training "
            "config); use --pairs all"
        )
    kept = [r for r in records if np.isfinite(float(r.mu))]
    order = np.random.default_rng(train_config["seed"]).permutation(len(kept))
    n_val = round(len(kept) * float(train_config["val_fraction"]))
    return [kept[i] for i in np.sort(order[:n_val])]


def _cmd_eval_rm(args: argparse.Namespace) -> int:
    import gymnasium as gym
    import torch

    from reward_models.train import load_checkpoint
    from tfgym.preferences import PreferenceStore
    from tfgym.scene import resolve_scenes

    scenes = resolve_scenes(args.scene)
    if len(scenes) != 1:
        raise ValueError(f"--scene {args.scene!r} is a scene set; name one scene of it")
    if args.n_random < 2:
        raise ValueError(f"--n-random must be at least 2, got {args.n_random}")
    if not Path(args.db).is_file():
        raise FileNotFoundError(f"preference store not found: {args.db}")
    model = load_checkpoint(args.model)
    train_config = torch.load(args.model, map_location="cpu", weights_only=True)["train_config"]
    with PreferenceStore(args.db) as store:
        records = store.records()
    if args.pairs == "heldout":
        records = heldout_records(records, train_config)
    records = [r for r in records if r.scene == scenes[0]]
    if not records:
        raise ValueError(f"{args.db} holds no {args.pairs} preferences of scene {scenes[0]!r}")
    cfg = model.config
    env = gym.make(
        "tfgym:TransferFunction-v0",
        scenes=scenes[0],
        n_vertices=cfg.n_vertices,
        histogram_bins=cfg.histogram_bins,
        working_size=(train_config or {}).get("working_size", 64),
        image_size=args.image_size,
    )
    metrics = evaluate_reward_model(
        model,
        env,
        scenes[0],
        records,
        np.random.default_rng(args.seed),
        out_dir=args.out,
        log_dir=args.logdir,
        n_random=args.n_random,
        progress=not args.no_progress,
    )
    env.close()

    def fmt(v: Any) -> str:
        return "-" if v is None else f"{v:.3f}"

    print(f"{'metric':<34} value")
    print(f"{'held-out pairs (unambiguous)':<34} {metrics['n_pairs']} ({metrics['n_unambiguous']})")
    print(f"{'accuracy vs labeler':<34} {fmt(metrics['accuracy_labeler'])}")
    print(f"{'accuracy vs oracle':<34} {fmt(metrics['accuracy_oracle'])}")
    print(f"{'labeler vs oracle (ceiling)':<34} {fmt(metrics['labeler_vs_oracle'])}")
    print(f"{'Spearman rho, random actions':<34} {fmt(metrics['spearman_rho'])}")
    print(f"{'RM scoring time, random actions':<34} {metrics['seconds_predict']:.2f} s")
    print(f"\nwrote {args.out}/ (metrics.json, {', '.join(metrics['files'])} PNGs)")
    if args.logdir:
        print(f"TensorBoard: tensorboard --logdir {args.logdir}")
    return 0


def add_eval_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``tfgym eval-rm`` on an argparse subparsers object.

    Args:
        subparsers: the result of ``ArgumentParser.add_subparsers()``.

    Returns:
        The ``eval-rm`` parser (its ``func`` default runs the command and returns 0; user
        errors raise ``ValueError`` or ``OSError``, which ``tfgym``'s main turns into one line
        on stderr and exit status 2).
    """
    p = subparsers.add_parser(
        "eval-rm",
        help="evaluate a reward model against the oracle: metrics, figures, TensorBoard",
        description="Evaluate a reward-model checkpoint on one scene: accuracy on held-out "
        "preference pairs (against the labeler and the noise-free oracle), Spearman rho "
        "between reward and oracle score over random actions, and the paper's figures (reward "
        "histogram, corner-point plots, 12 TFs sorted by reward), written as PNGs with "
        "metrics.json under --out.",
    )
    p.add_argument("--model", required=True, help="reward model checkpoint (from train-rm)")
    p.add_argument("--db", required=True, help="preference store the model was trained on")
    p.add_argument("--scene", required=True, help="scene name or scan path")
    p.add_argument("--out", default="runs/eval", help="output folder")
    p.add_argument("--n-random", type=int, default=20000, help="random actions for Spearman rho")
    p.add_argument(
        "--pairs",
        choices=("heldout", "all"),
        default="heldout",
        help="pairs for accuracy: the training's validation split (replayed from the "
        "checkpoint's seed; needs the same store) or every pair of the scene",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random actions")
    p.add_argument("--image-size", type=int, default=128, help="rendering side for the oracle")
    p.add_argument("--logdir", help="TensorBoard folder")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=_cmd_eval_rm)
    return p
