"""The whole evaluation of a reward model (RM) on one scene: metrics, figures, TensorBoard.

* :func:`evaluate_reward_model` runs every metric of :mod:`reward_models.metrics` and every
  figure of :mod:`reward_models.figures` for a model (any scorer) and a
  :class:`~tfgym.scoring.SceneScorer`, and writes PNGs and ``metrics.json``;
* :func:`evaluate_checkpoint` does it for a checkpoint: it loads the model, picks the
  held-out (or all) preference pairs of the scene and builds the scene's scorer at the
  settings the model was trained at (what ``tfgym eval-rm`` runs). A scene with no stored
  preferences (a held-out phantom, headsq, a user's scan) is evaluated on generated actions
  instead: the paper's action set (:func:`tfgym.action_sets.paper_actions`), every pair
  labelled by the noise-free oracle -- on true tissue labels for phantoms, on approximate
  ones (intensity classes) for unlabelled scans; ``metrics["source"]`` says which.

Scores (oracle, RM) are computed at the training working size; the renderings of the TF grid
are made at display quality (:mod:`tfgym.display`).

The metrics, figures and helpers stay importable from here:
:func:`~reward_models.metrics.pair_accuracy`, :func:`~reward_models.metrics.spearman_random`,
:class:`~reward_models.metrics.OracleScorer`, the figure functions and
:func:`~reward_models.checkpoint.heldout_records`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reward_models.checkpoint import (
    CheckpointInfo,
    heldout_records,
    load_checkpoint,
    read_checkpoint_info,
)
from reward_models.config import EvalConfig
from reward_models.figures import (
    corner_point_figure,
    reward_histogram_figure,
    reward_vs_oracle_figure,
    tf_grid_figure,
)
from reward_models.metrics import (
    OracleScorer,
    Scorer,
    oracle_pair_accuracy,
    pair_accuracy,
    predict_batched,
    spearman_random,
    spearman_rho,
)
from tfgym.display import FIGURE_DPI, check_views
from tfgym.scoring import SceneScorer, ScoringSettings

__all__ = [
    "EvalConfig",
    "OracleScorer",
    "Scorer",
    "corner_point_figure",
    "evaluate_checkpoint",
    "evaluate_reward_model",
    "heldout_records",
    "oracle_pair_accuracy",
    "pair_accuracy",
    "predict_batched",
    "reward_histogram_figure",
    "reward_vs_oracle_figure",
    "spearman_random",
    "tf_grid_figure",
]

GRID_TFS = 12  # TFs in the tf_grid figure, as in the paper's Figure 3


def _good_action(scorer: SceneScorer, actions: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The hand-made reference TF of the scorer's target, else the best-scoring action."""
    from tfgym.oracle import reference_action

    try:
        ref = reference_action(scorer.scene, scorer.settings.target)
    except ValueError:  # the target tissue is absent from this scene
        ref = None
    if ref is not None and ref.size == scorer.action_dim:
        return ref.astype(np.float32)
    return np.asarray(actions[int(np.argmax(scores))], dtype=np.float32)


def _grid_actions(good: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> np.ndarray:
    """``good`` plus 11 random actions at evenly spaced ranks of RM reward (best first)."""
    order = np.argsort(-rewards, kind="stable")
    ranks = np.linspace(0, len(order) - 1, GRID_TFS - 1).round().astype(int)
    return np.concatenate([good[None], actions[order[np.unique(ranks)]]]).astype(np.float32)


def _json_value(v: Any) -> Any:
    """Plain JSON values (non-finite floats become null)."""
    if isinstance(v, float | np.floating):
        return None if not np.isfinite(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, dict):
        return {k: _json_value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_value(x) for x in v]
    return v


def _write(
    out: Path, log_dir: str | Path | None, metrics: dict[str, Any], figures: dict[str, Any],
    rewards: np.ndarray,
) -> dict[str, Any]:  # fmt: skip
    """Save the figures as PNG and the metrics as JSON (and to TensorBoard with ``log_dir``)."""
    for name, fig in figures.items():
        path = out / f"{name}.png"
        fig.savefig(path, dpi=FIGURE_DPI)
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


def evaluate_reward_model(
    model: Scorer,
    scorer: SceneScorer,
    records: Sequence[Any],
    rng: np.random.Generator,
    *,
    out_dir: str | Path,
    log_dir: str | Path | None = None,
    n_random: int = EvalConfig.n_random,
    grid: int = EvalConfig.grid,
    progress: bool = False,
    actions: np.ndarray | None = None,
    source: str | None = None,
    display_size: int = EvalConfig.display_size,
    views: Sequence[str] = EvalConfig.views,
) -> dict[str, Any]:
    """Run every metric and figure for one scene; write PNGs and JSON.

    Writes, under ``out_dir``: ``reward_histogram.png`` (Figure 2 left),
    ``corner_points.png`` (Figure 2 right), ``tf_grid.png`` (Figure 3, the good TF and 11
    random actions at evenly spaced reward ranks, rendered at display quality from each of
    ``views``), ``reward_vs_oracle.png`` and ``metrics.json``. With ``log_dir``, the figures
    (``add_figure``), the metrics (scalars under ``eval/``) and the reward histogram go to
    TensorBoard.

    Args:
        model: the scorer (an RM, an ensemble, :class:`OracleScorer`).
        scorer: the scene's batch scorer; its settings (image size, target) define the
            oracle score, its scene's observation is what the model scores.
        records: held-out preference records for :func:`pair_accuracy` (any scenes; may be
            empty: then the accuracies are :func:`oracle_pair_accuracy` over ``actions``, or
            NaN / null without them).
        rng: draws the random actions.
        out_dir: output folder (created).
        log_dir: TensorBoard folder, or None.
        n_random: random actions for the Spearman rho and the histogram.
        grid: positions per axis in the corner-point plot.
        progress: show progress bars.
        actions: the evaluation actions ``(n, 2 * n_vertices)`` (e.g. the paper's action
            set, or the stored pairs' actions), or None: adds ``n_actions`` and
            ``spearman_rho_actions`` (RM reward against oracle score over them).
        source: where the evaluation's pairs came from, in words (``metrics["source"]``).
        display_size: voxels along the longest side of the TF grid's display volume.
        views: camera views of the TF grid.

    Returns:
        The metrics, exactly as written to ``metrics.json``: ``scene``, ``source``,
        ``pair_labels`` (``"preferences"``: ``records``; ``"oracle"``: every pair of
        ``actions`` labelled by the oracle; None: no pairs), ``labels_approximate`` (the
        oracle judged intensity classes, not true labels), the :func:`pair_accuracy`
        entries, ``spearman_rho``, ``n_random``, ``n_actions`` and ``spearman_rho_actions``
        (None without ``actions``), reward and oracle-score summaries, the good TF's reward,
        timings in seconds (``seconds_predict`` for RM scoring of the random actions,
        ``seconds_oracle`` for rendering them) and the PNG paths (``files``). Non-finite
        values are None.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scene = scorer.scene
    acts = rng.uniform(-1.0, 1.0, size=(n_random, scorer.action_dim)).astype(np.float32)

    t0 = time.perf_counter()
    rho_actions = float("nan")
    if actions is not None:
        eval_rewards = predict_batched(model, scene.observation, actions)
        eval_scores = scorer.oracle_scores(actions, progress=progress)
        rho_actions = spearman_rho(eval_rewards, eval_scores)
    if records or actions is None:
        accuracy = pair_accuracy(model, records, settings=scorer.settings)
    else:
        accuracy = oracle_pair_accuracy(eval_rewards, eval_scores)
    t1 = time.perf_counter()
    rewards = predict_batched(model, scene.observation, acts)
    t2 = time.perf_counter()
    scores = scorer.oracle_scores(acts, progress=progress)
    t3 = time.perf_counter()
    rho = spearman_rho(rewards, scores)
    good = _good_action(scorer, acts, scores)
    good_reward = float(predict_batched(model, scene.observation, good[None])[0])
    grid_actions = _grid_actions(good, acts, rewards)
    figures = {
        "reward_histogram": reward_histogram_figure(
            rewards,
            marks={"good TF": good_reward},
            title=f"{scene.name}: RM rewards of {n_random:,} random actions",
        ),
        "reward_vs_oracle": reward_vs_oracle_figure(rewards, scores, rho=rho, title=scene.name),
        "corner_points": corner_point_figure(model, scene, good, grid=grid),
        "tf_grid": tf_grid_figure(
            model, scorer, grid_actions, views=views, display_size=display_size
        ),
    }
    t4 = time.perf_counter()
    metrics: dict[str, Any] = {
        "scene": scene.name,
        "source": source,
        "pair_labels": "preferences" if records else (None if actions is None else "oracle"),
        "labels_approximate": bool(scene.labels_approximate),
        **accuracy,
        "spearman_rho": rho,
        "n_random": n_random,
        "n_actions": None if actions is None else len(actions),
        "spearman_rho_actions": rho_actions,
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
    return _write(out, log_dir, metrics, figures, rewards)


def _generated_source(scorer: SceneScorer, action_set: Any, why: str) -> str:
    """The sentence saying how the generated evaluation actions were made and labelled."""
    counts = ", ".join(
        f"{int(action_set.mask(kind).sum())} {kind}" for kind in ("expert", "shift", "random")
    )
    labels = (
        "APPROXIMATE labels (intensity classes of an unlabelled scan)"
        if scorer.scene.labels_approximate
        else "true tissue labels"
    )
    return (
        f"{why}; generated the paper's action set ({counts} actions), every pair labelled "
        f"by the noise-free oracle on {labels}"
    )


def _scene_records(
    records: Sequence[Any], info: CheckpointInfo, scene: str, pairs: str
) -> tuple[list[Any], str]:
    """The scene's held-out (or all) records, and why there are none when so."""
    selected = list(records)
    if not selected:
        return [], "no preference store given"
    if pairs == "heldout":
        selected = heldout_records(selected, info)
    selected = [r for r in selected if r.scene == scene]
    return selected, f"the preference store holds no {pairs} preferences of scene {scene!r}"


def evaluate_checkpoint(
    path: str | Path,
    records: Sequence[Any],
    scene: str,
    config: EvalConfig | None = None,
    *,
    out_dir: str | Path,
    log_dir: str | Path | None = None,
    device: str = "cpu",
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate a checkpoint on one scene (``tfgym eval-rm``).

    The scene is scored at the settings the model was trained at (the checkpoint's working
    size, the model's histogram bins and vertices) and ``config.image_size``; the figures'
    renderings at ``config.display_size`` from ``config.views``. The pairs come from one of
    two sources, named in ``metrics["source"]``:

    * stored preferences: the scene's records among ``records`` -- the training's validation
      pairs (:func:`~reward_models.checkpoint.heldout_records`) or all of them
      (``config.pairs``); the evaluation actions are the pairs' distinct actions;
    * generated, when there are none (no records, or none of this scene): the paper's action
      set for the scene (:func:`tfgym.action_sets.paper_actions`: 10 expert TFs from a small
      oracle-driven search, 40 shifts of them, 50 random), every pair of it labelled by the
      noise-free oracle (:func:`oracle_pair_accuracy`). On unlabelled scans (headsq, user
      files) the oracle judges approximate labels, and the source says so.

    Args:
        path: the checkpoint.
        records: the preference store's records (the one the model was trained on for
            ``pairs="heldout"``), or empty.
        scene: one scene name or scan path.
        config: evaluation settings (default :class:`EvalConfig`).
        out_dir: output folder of PNGs and ``metrics.json``.
        log_dir: TensorBoard folder, or None.
        device: torch device of the model.
        progress: show progress bars.

    Returns:
        The metrics of :func:`evaluate_reward_model`.

    Raises:
        reward_models.checkpoint.CheckpointError: a missing or unusable checkpoint.
        ValueError: a scene set instead of one scene, an unknown view, or held-out pairs
            that are not in ``records``.
    """
    from tfgym.action_sets import paper_actions
    from tfgym.scene import resolve_scenes

    config = config or EvalConfig()
    names = resolve_scenes(scene)
    if len(names) != 1:
        raise ValueError(f"scene {scene!r} is a scene set; name one scene of it")
    views = check_views(config.views)
    info = read_checkpoint_info(path)
    model = load_checkpoint(path, device=device)
    selected, why = _scene_records(records, info, names[0], config.pairs)
    mc = info.model_config
    settings = ScoringSettings(
        n_vertices=mc.n_vertices,
        histogram_bins=mc.histogram_bins,
        working_size=info.working_size,
        image_size=config.image_size,
    )
    scorer = SceneScorer(names[0], settings)
    if selected:
        pairs = [(r.action_a, r.action_b) for r in selected]
        actions = np.unique(np.asarray(pairs, dtype=np.float32).reshape(-1, mc.action_dim), axis=0)
        source = f"{len(selected)} stored {config.pairs} preferences of scene {names[0]!r}"
    else:
        action_set = paper_actions(scorer, np.random.default_rng([config.seed, 1]))
        actions = action_set.actions
        source = _generated_source(scorer, action_set, why)
    return evaluate_reward_model(
        model,
        scorer,
        selected,
        np.random.default_rng(config.seed),
        out_dir=out_dir,
        log_dir=log_dir,
        n_random=config.n_random,
        grid=config.grid,
        progress=progress,
        actions=actions,
        source=source,
        display_size=config.display_size,
        views=views,
    )
