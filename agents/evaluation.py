"""The result of an agent evaluation: scores, ratios, the table, JSON and the figure.

:class:`AgentEvaluation` is what :func:`agents.evaluate.evaluate_agents` returns (see there
for how the scores are made and for the definitions of the ratio and the gap closed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfgym.display import DISPLAY_WORKING_SIZE, check_views, display_figure, render_display
from tfgym.figures import figure_to_rgb, save_png
from tfgym.scene import load_scene
from tfgym.scoring import ScoringSettings

__all__ = ["BASELINES", "AgentEvaluation"]

BASELINES = ("constant", "random", "best")
"""The baselines every evaluation holds beside the agents."""


def _nan_div(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray:
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    ok = np.abs(den) > 1e-12
    return np.where(ok, num / np.where(ok, den, 1.0), np.nan)


def _fmt(x: float, spec: str = ".3f") -> str:
    return "--" if not np.isfinite(x) else format(x, spec)


@dataclass(frozen=True)
class AgentEvaluation:
    """Oracle scores of agents and baselines per scene (:func:`evaluate_agents`).

    Attributes:
        scenes: the scenes, in the order of every per-scene array.
        groups: group name -> its scenes (one group per entry of ``evaluate_agents(scenes)``).
        agents: the agents' names.
        scores: method -> oracle scores ``(n_scenes,)``; methods are the agents, then
            ``"constant"`` (when given), ``"random"`` (mean of the random actions), ``"best"``.
        actions: method -> float32 actions ``(n_scenes, 2 * n_vertices)`` (no ``"random"``).
        best_source: per scene, what the best is: ``"search"`` or a candidate's name.
        settings: the scoring settings.
        config: search name, budget, population, seed, random samples.
        seconds: time spent: ``predict`` (the agents), ``baselines`` (searches and random
            actions, or reading them from the cache), ``score`` (the candidates), ``total``.
    """

    scenes: tuple[str, ...]
    groups: dict[str, tuple[str, ...]]
    agents: tuple[str, ...]
    scores: dict[str, np.ndarray]
    actions: dict[str, np.ndarray]
    best_source: tuple[str, ...]
    settings: ScoringSettings
    config: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def methods(self) -> tuple[str, ...]:
        """The table's columns: agents, then the baselines present."""
        return (*self.agents, *(b for b in BASELINES if b in self.scores))

    def ratio(self, method: str) -> np.ndarray:
        """Per-scene score over the best score ``(n_scenes,)`` (NaN where the best is 0)."""
        return _nan_div(self.scores[method], self.scores["best"])

    def gap_closed(self, method: str) -> np.ndarray:
        """Per-scene ``(a - constant) / (best - constant)``; all NaN without a constant."""
        if "constant" not in self.scores:
            return np.full(len(self.scenes), np.nan)
        c = self.scores["constant"]
        return _nan_div(self.scores[method] - c, self.scores["best"] - c)

    def summary(self, group: str) -> dict[str, dict[str, float]]:
        """Per method the group's mean ``score``, ``ratio`` and ``gap_closed`` (ratio of means).

        Raises:
            KeyError: an unknown group.
        """
        if group not in self.groups:
            raise KeyError(f"unknown group {group!r}; groups: {list(self.groups)}")
        idx = [self.scenes.index(s) for s in self.groups[group]]
        mean = {m: float(self.scores[m][idx].mean()) for m in self.methods}
        c = mean.get("constant", np.nan)
        return {
            m: {
                "score": mean[m],
                "ratio": float(_nan_div(mean[m], mean["best"])),
                "gap_closed": float(_nan_div(mean[m] - c, mean["best"] - c)),
            }
            for m in self.methods
        }

    def table(self) -> str:
        """A markdown table per group (mean score, ratio to best, gap closed) and per scene."""
        lines = []
        for group, scenes in self.groups.items():
            n = f"{len(scenes)} scenes" if len(scenes) > 1 else scenes[0]
            lines += [f"**{group}** ({n})", "", "| method | score | / best | gap closed |"]
            lines.append("|---|---:|---:|---:|")
            for m, row in self.summary(group).items():
                cells = [_fmt(row["score"]), _fmt(row["ratio"], ".1%"), _fmt(row["gap_closed"])]
                lines.append(f"| {m} | " + " | ".join(cells) + " |")
            lines.append("")
        lines += ["**per scene**: oracle score (ratio to best)", ""]
        lines += ["| scene | " + " | ".join(self.methods) + " | best found by |"]
        lines.append("|---|" + "---:|" * len(self.methods) + "---|")
        ratios = {m: self.ratio(m) for m in self.methods}
        for i, scene in enumerate(self.scenes):
            cells = [
                f"{_fmt(self.scores[m][i])} ({_fmt(ratios[m][i], '.0%')})" for m in self.methods
            ]
            lines.append(f"| {scene} | " + " | ".join(cells) + f" | {self.best_source[i]} |")
        lines += [
            "",
            "Ratio = score / best; gap closed = (score - constant) / (best - constant); group "
            "rows are ratios of the group's mean scores.",
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values; non-finite numbers become None (see :meth:`from_dict`)."""

        def num(x: float) -> float | None:
            return float(x) if np.isfinite(x) else None

        return {
            "scenes": list(self.scenes),
            "groups": {g: list(s) for g, s in self.groups.items()},
            "agents": list(self.agents),
            "scores": {m: [num(x) for x in v] for m, v in self.scores.items()},
            "actions": {m: np.asarray(v, np.float64).tolist() for m, v in self.actions.items()},
            "best_source": list(self.best_source),
            "settings": asdict(self.settings),
            "config": self.config,
            "seconds": self.seconds,
            "summary": {
                g: {m: {k: num(v) for k, v in row.items()} for m, row in self.summary(g).items()}
                for g in self.groups
            },
            "gap_closed": {m: [num(x) for x in self.gap_closed(m)] for m in self.methods},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentEvaluation:
        """The evaluation of :meth:`to_dict`'s output (derived entries are recomputed)."""
        return cls(
            scenes=tuple(data["scenes"]),
            groups={g: tuple(s) for g, s in data["groups"].items()},
            agents=tuple(data["agents"]),
            scores={
                m: np.array([np.nan if x is None else x for x in v], np.float64)
                for m, v in data["scores"].items()
            },
            actions={m: np.asarray(v, np.float32) for m, v in data["actions"].items()},
            best_source=tuple(data["best_source"]),
            settings=ScoringSettings(**data["settings"]),
            config=dict(data.get("config", {})),
            seconds=dict(data.get("seconds", {})),
        )

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (parent folders created); returns the path."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(self.to_dict(), indent=2))
        return out

    @classmethod
    def from_json(cls, path: str | Path) -> AgentEvaluation:
        """Read a file written by :meth:`to_json`."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    def figure_scenes(self, rows: int = 3) -> tuple[str, ...]:
        """Default rows of :meth:`save_figure`, in evaluation order.

        Each group's first scene, then the scenes where the figure's columns (agents, constant,
        best) differ the most, up to ``rows``: where reading the scan matters.
        """
        chosen = list(dict.fromkeys(s[0] for s in self.groups.values()))[:rows]
        shown = np.stack([self.scores[m] for m in self.methods if m != "random"])
        for i in np.argsort(shown.min(axis=0) - shown.max(axis=0), kind="stable"):
            if len(chosen) >= rows:
                break
            if self.scenes[i] not in chosen:
                chosen.append(self.scenes[i])
        return tuple(s for s in self.scenes if s in chosen)

    def save_figure(
        self,
        path: str | Path,
        *,
        scenes: Sequence[str] | None = None,
        views: Sequence[str] = ("front",),
        working_size: int = DISPLAY_WORKING_SIZE,
    ) -> Path:
        """Save the side-by-side figure: rows = scenes, columns = agents, constant, best.

        Each cell is the TF's display-quality rendering (:func:`tfgym.display.render_display`)
        from each of ``views``, its polygon on the scene's joint histogram as an inset, and its
        oracle score and ratio to the best in the title.

        Args:
            path: the PNG file (parent folders created).
            scenes: the rows (default :meth:`figure_scenes`).
            views: camera presets per cell.
            working_size: voxels along the display volume's longest side.

        Returns:
            The path written.

        Raises:
            ValueError: a scene that was not evaluated, an unknown view, a non-PNG path.
        """
        views = check_views(views)
        rows = self.figure_scenes() if scenes is None else tuple(scenes)
        for scene in rows:
            if scene not in self.scenes:
                raise ValueError(f"scene {scene!r} was not evaluated; scenes: {self.scenes}")
        methods = [m for m in self.methods if m != "random"]
        images = []
        for scene in rows:
            i = self.scenes.index(scene)
            acts = np.stack([self.actions[m][i] for m in methods])
            s = self.settings
            shown = load_scene(scene, working_size=s.working_size, histogram_bins=s.histogram_bins)
            rendered = render_display(
                scene, acts, views=views, working_size=working_size, settings=s
            )
            titles = [
                f"{m if m != 'best' else f'best ({self.best_source[i]})'}\n"
                f"{self.scores[m][i]:.3f}  ({_fmt(self.ratio(m)[i], '.0%')} of best)"
                for m in methods
            ]
            fig = display_figure(
                rendered, titles, views=views, scene=shown, actions=acts, histogram="inset",
                suptitle=f"{scene}: oracle score (ratio to best)",
            )  # fmt: skip
            images.append(figure_to_rgb(fig))
        width = max(im.shape[1] for im in images)
        padded = [np.pad(im, ((0, 0), (0, width - im.shape[1]), (0, 0)), constant_values=255)
                  for im in images]  # fmt: skip
        return save_png(path, np.concatenate(padded, axis=0))

    def log_to(self, writer: Any, step: int = 0) -> None:
        """Log group means (``eval/<group>/<method>/score|ratio|gap_closed``) and the table.

        Args:
            writer: a ``torch.utils.tensorboard.SummaryWriter`` (or anything with
                ``add_scalar`` and ``add_text``).
            step: the global step (e.g. the agent's training timesteps).
        """
        for group in self.groups:
            for method, row in self.summary(group).items():
                for key, value in row.items():
                    if np.isfinite(value):
                        writer.add_scalar(f"eval/{group}/{method}/{key}", value, step)
        writer.add_text("eval/table", self.table(), step)
