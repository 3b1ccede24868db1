"""The demo: cross-entropy search for good transfer functions on a few scenes, with figures.

:func:`run_demo` splits a budget of env evaluations evenly over the scenes, runs
:class:`tfgym.search.CrossEntropySearch` on each (through its :class:`tfgym.scoring.SceneScorer`)
and writes, per scene, ``figure.png`` (the renderings of the best, a random and the hand-made
TF at display quality from several views, above their polygons on the joint histogram),
``best.png``, ``random.png``, ``reference.png`` (the renderings the oracle scored, at the
scoring settings' image size) and their TFs as JSON; then ``summary.json`` and TensorBoard
logs (scalars ``search/best_reward`` and ``search/mean_reward`` against env evaluations, one
run per scene, and the images). ``tfgym demo`` is a thin command over it.

The search and the scores run at the scoring settings' working size (fast); the figure renders
the same TFs with :func:`tfgym.display.render_display` on the scene's display volume
(``display_size`` voxels, :data:`tfgym.display.DISPLAY_WORKING_SIZE` by default), built once
per scene.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tfgym.display import (
    DISPLAY_VIEWS,
    DISPLAY_WORKING_SIZE,
    check_views,
    display_figure,
    render_display,
)
from tfgym.figures import figure_to_rgb, save_png
from tfgym.oracle.reference import reference_action
from tfgym.scene import resolve_scenes
from tfgym.scoring import SceneScorer, ScoreBatch, ScoringSettings
from tfgym.search import CrossEntropySearch, SearchResult

__all__ = ["DemoConfig", "run_demo", "safe_name"]

FILES = ("best", "random", "reference")


@dataclass(frozen=True)
class DemoConfig:
    """What the demo searches and where it writes (``tfgym demo`` takes these options)."""

    out: str = field(default="runs/demo", metadata={"help": "run folder"})
    scenes: tuple[str, ...] = field(
        default=("phantom-00", "phantom-01", "headsq"),
        metadata={"help": "scene names, scene sets or scan paths"},
    )
    budget: int = field(default=400, metadata={"help": "env evaluations in total"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    population_size: int = field(default=16, metadata={"help": "CEM population size"})
    progress: bool = field(default=True, metadata={"help": "progress bars"})
    display_size: int = field(
        default=DISPLAY_WORKING_SIZE,
        metadata={"help": "voxels along the longest side of the figures' display volume"},
    )
    views: tuple[str, ...] = field(
        default=DISPLAY_VIEWS, metadata={"help": "camera views of the figures"}
    )

    def __post_init__(self) -> None:
        """Validate (before any work)."""
        object.__setattr__(self, "views", check_views(self.views))
        if self.display_size < 8:
            raise ValueError(f"display_size must be at least 8, got {self.display_size}")
        if self.population_size < 2:
            raise ValueError(f"population_size must be at least 2, got {self.population_size}")
        n = len(resolve_scenes(self.scenes))
        if self.budget < 2 * n:
            raise ValueError(
                f"budget {self.budget} is too small for {n} scenes (at least 2 evaluations "
                "per scene)"
            )


def safe_name(scene: str) -> str:
    """A file-system-safe folder name for a scene name or scan path.

    Example:
        >>> safe_name("/data/scans/head 01.nii.gz"), safe_name("phantom-03")
        ('head_01', 'phantom-03')
    """
    name = Path(scene).name if ("/" in scene or "\\" in scene) else scene
    for suffix in (".gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd"):
        name = name.removesuffix(suffix)
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "scene"


def _figure(
    scorer: SceneScorer, titles: list[str], batch: ScoreBatch, config: DemoConfig
) -> np.ndarray:
    """Per TF a cell: its display renderings from each view above its polygon on the JH."""
    scene = scorer.scene
    images = render_display(
        scene,
        batch.tfs,
        views=config.views,
        working_size=config.display_size,
        settings=scorer.settings,
    )
    labels = " (approximate labels)" if scene.labels_approximate else ""
    fig = display_figure(
        images,
        [f"{t}\noracle score {batch.oracle_score[i]:.3f}" for i, t in enumerate(titles)],
        views=config.views,
        scene=scene,
        actions=batch.actions,
        histogram="below",
        suptitle=f"{scene.name}: transfer functions on the joint histogram{labels}",
    )
    return figure_to_rgb(fig)


def _log(folder: Path, result: SearchResult, batch: ScoreBatch, figure: np.ndarray) -> None:
    from torch.utils.tensorboard import SummaryWriter

    assert batch.renderings is not None
    writer = SummaryWriter(log_dir=str(folder))
    try:
        for stats in result.history:
            writer.add_scalar("search/best_reward", stats.best_reward, stats.evaluations)
            writer.add_scalar("search/mean_reward", stats.mean_reward, stats.evaluations)
        for i, name in enumerate(FILES[: len(batch)]):
            writer.add_image(f"render/{name}", batch.renderings.rgb[i], 0, dataformats="HWC")
        writer.add_image("figure", figure, 0, dataformats="HWC")
    finally:
        writer.close()


def _demo_scene(
    scorer: SceneScorer, budget: int, rng: np.random.Generator, config: DemoConfig, out: Path
) -> dict[str, Any]:
    """CEM on one scene; write its figure, renderings, TFs and TensorBoard logs."""
    search = CrossEntropySearch(
        rng, population_size=config.population_size, progress=config.progress
    )
    result = search.run(scorer, budget)
    named = {"CEM best": result.best_action, "random": rng.uniform(-1, 1, result.best_action.size)}
    with contextlib.suppress(ValueError):  # no reference panel when the target tissue is absent
        named["reference (hand-made)"] = reference_action(scorer.scene, scorer.settings.target)
    batch = scorer.score(np.stack(list(named.values())), renderings=True)
    assert batch.renderings is not None
    folder = out / safe_name(scorer.name)
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(FILES[: len(batch)]):
        save_png(folder / f"{name}.png", batch.renderings.rgb[i])
        replace(batch.tf(i), ranges=scorer.scene.ranges).save(folder / f"{name}_tf.json")
    figure = _figure(scorer, list(named), batch, config)
    save_png(folder / "figure.png", figure)
    _log(out / "tensorboard" / safe_name(scorer.name), result, batch, figure)
    return {
        "scene": scorer.name,
        "folder": str(folder),
        "labels_approximate": bool(scorer.scene.labels_approximate),
        "target_plausible": bool(batch.target_plausible),
        "target_warning": batch.target_warning,
        "evaluations": result.n_evaluations,
        "iterations": len(result.history),
        "best_reward": float(batch.rewards[0]),
        "random_reward": float(batch.rewards[1]),
        "reference_reward": float(batch.rewards[2]) if len(batch) > 2 else None,
        "best_action": [float(a) for a in result.best_action],
        "best_reward_history": [s.best_reward for s in result.history],
        "mean_reward_history": [s.mean_reward for s in result.history],
    }


def run_demo(config: DemoConfig, settings: ScoringSettings | None = None) -> dict[str, Any]:
    """Run the demo and write its files under ``config.out``.

    Args:
        config: scenes, budget, seed and output folder.
        settings: rendering and observation settings (default :class:`ScoringSettings`).

    Returns:
        The summary (also written to ``summary.json``): the config, the settings, the
        seconds taken and one row per scene.
    """
    from tfgym import __version__

    settings = settings or ScoringSettings()
    scenes = resolve_scenes(config.scenes)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = []
    for i, name in enumerate(scenes):
        budget = config.budget // len(scenes) + (i < config.budget % len(scenes))
        rng = np.random.default_rng([config.seed, i])
        rows.append(_demo_scene(SceneScorer(name, settings), budget, rng, config, out))
    summary = {
        "tfgym_version": __version__,
        "config": asdict(config),
        "settings": asdict(settings),
        "seconds": round(time.perf_counter() - start, 2),
        "scenes": rows,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
