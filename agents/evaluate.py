"""Agents on held-out scans: oracle scores against the random, constant and best baselines.

:func:`evaluate_agents` gives every agent (anything with Stable-Baselines3's
``predict(obs, deterministic=True) -> (action, state)``: a PPO model, a
:class:`~agents.constant.ConstantPolicy`) one deterministic forward pass per scene -- all scenes'
observations in one ``predict`` call -- and scores its polygons with the oracle, next to three
baselines on the same scenes:

* ``"random"`` -- the mean oracle score of ``random_samples`` uniform random actions (the same
  actions on every scene, drawn from ``seed``);
* ``"constant"`` -- a given constant action, e.g. the best constant polygon of the **train**
  scenes (:func:`tfgym.search.best_constant_action`); it is passed in, never fitted here;
* ``"best"`` -- per scene, a search (``SEARCHES[best_search]`` with ``best_budget`` env
  evaluations, seeded by ``seed`` and the scene's name), cached in ``out_dir`` as JSON keyed by
  scene, settings, search, budget and seed, so a rerun does not search again. The search does
  not depend on the agents (the cache stays valid when they change); the agents' and the
  constant's actions are candidates for the best as well (as the search's ``initial``
  candidates would be): "best" is the maximum over the search's best action and them, never
  below any of them (:attr:`AgentEvaluation.best_source` says which won). The random
  baseline is cached the same way.

Definitions (``a``: a method's oracle score, ``b``: best, ``c``: constant; per scene):

* ratio to best ``a / b``; gap closed ``(a - c) / (b - c)`` (0: no better than the constant,
  1: as good as the best, negative: worse than the constant); NaN where the denominator is 0;
* over a group of scenes (e.g. the 16 held-out phantoms; a real scan is its own group) the
  **ratio of means**: score ``mean(a)``, ratio ``mean(a) / mean(b)``, gap closed
  ``(mean(a) - mean(c)) / (mean(b) - mean(c))`` -- the ratio and the gap closed of the mean
  score, defined even where one scene's ``b - c`` is 0 (a mean of per-scene gaps is not).
  The per-scene values are in the JSON and the per-scene table.

Scores are computed at the settings' working size (fast); :meth:`AgentEvaluation.save_figure`
renders the same TFs at display quality (:mod:`tfgym.display`).
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from agents.base import Policy
from tfgym.display import DISPLAY_WORKING_SIZE, check_views, display_figure, render_display
from tfgym.figures import figure_to_rgb, save_png
from tfgym.scene import load_scene, resolve_scenes
from tfgym.scoring import SceneScorer, ScoringSettings
from tfgym.search import SEARCHES

__all__ = ["AgentEvaluation", "evaluate_agents"]

BASELINES = ("constant", "random", "best")


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


def _groups(
    scenes: Sequence[str | Sequence[str]] | Mapping[str, Any],
) -> dict[str, tuple[str, ...]]:
    """Group name -> resolved scenes: one group per entry (a set, a scene or a list)."""
    if isinstance(scenes, str):
        scenes = (scenes,)
    items = scenes.items() if isinstance(scenes, Mapping) else (
        (s if isinstance(s, str) else "+".join(s), s) for s in scenes
    )  # fmt: skip
    groups = {str(name): resolve_scenes(s) for name, s in items}
    if not groups:
        raise ValueError("no scenes given")
    return groups


def _predict(name: str, agent: Any, obs: np.ndarray, dim: int) -> np.ndarray:
    """The agent's deterministic actions for a batch of observations, checked."""
    if not callable(getattr(agent, "predict", None)):
        raise TypeError(f"agent {name!r} ({type(agent).__name__}) has no predict method")
    actions = np.asarray(agent.predict(obs, deterministic=True)[0], dtype=np.float32)
    if actions.shape != (len(obs), dim):
        raise ValueError(
            f"agent {name!r} returned actions of shape {actions.shape} for {len(obs)} "
            f"observations; expected ({len(obs)}, {dim}) (check its n_vertices)"
        )
    return actions


def _cached(
    scorer: SceneScorer,
    out_dir: Path | None,
    kind: str,
    config: Mapping[str, Any],
    compute: Callable[[], dict[str, Any]],
) -> tuple[dict[str, Any], bool]:
    """``compute()`` for the scorer's scene, or its record in ``out_dir/kind/``; cached?

    A record is reused only when its key (scene, settings, ``config``, tfgym version) matches
    and the oracle still gives its ``check_action`` its ``check_score`` (a changed renderer
    or oracle invalidates it).
    """
    from tfgym import __version__

    key = {"tfgym": __version__, "scene": scorer.name, "settings": asdict(scorer.settings)}
    key = json.loads(json.dumps({**key, **config}, default=str))
    file = None
    if out_dir is not None:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(scorer.name).name)
        file = out_dir / kind / f"{stem}-{digest}.json"
        if file.exists():
            try:
                data = json.loads(file.read_text())
                if data["key"] == key:
                    score = scorer.score(np.asarray(data["check_action"])).oracle_score[0]
                    if abs(score - data["check_score"]) < 1e-6:
                        return data, True
            except (ValueError, KeyError, TypeError):  # a damaged or old record: recompute
                pass
    data = {"key": key, **compute()}
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(data, indent=2))
    return data, False


def _search(scorer: SceneScorer, config: Mapping[str, Any], progress: bool) -> dict[str, Any]:
    """Run the best search on the scorer's scene; its record for :func:`_cached`."""
    seed = [config["seed"], zlib.crc32(scorer.name.encode())]
    options = {} if config["population"] is None else {"population_size": config["population"]}
    search = SEARCHES[config["search"]](np.random.default_rng(seed), progress=progress, **options)
    start = time.perf_counter()
    result = search.run(scorer, config["budget"])
    action = result.best_action.astype(np.float64).tolist()
    return {
        "check_action": action,
        "check_score": result.best_reward,
        "n_evaluations": result.n_evaluations,
        "seconds": time.perf_counter() - start,
    }


def _random(scorer: SceneScorer, actions: np.ndarray) -> dict[str, Any]:
    """The oracle's mean score of the random actions; its record for :func:`_cached`."""
    scores = scorer.oracle_scores(actions)
    return {
        "mean": float(scores.mean()),
        "std": float(scores.std()),
        "check_action": actions[0].tolist(),
        "check_score": float(scores[0]),
    }


def evaluate_agents(
    agents: Mapping[str, Policy],
    scenes: Sequence[str | Sequence[str]] | Mapping[str, Any] = ("heldout", "headsq"),
    *,
    settings: ScoringSettings | None = None,
    constant: np.ndarray | None = None,
    best_search: str = "cmaes",
    best_budget: int = 3000,
    best_population: int | None = 64,
    seed: int = 0,
    random_samples: int = 256,
    out_dir: str | Path | None = None,
    progress: bool = True,
) -> AgentEvaluation:
    """Score agents and the random, constant and best baselines on the scenes with the oracle.

    Args:
        agents: name -> agent with SB3's ``predict(obs, deterministic=True)``; each is called
            once, on the observations ``(n_scenes, 1, bins, bins)`` of all scenes.
        scenes: one group per entry: a scene set (``"heldout"``), a scene name or a list of
            names; a mapping names the groups. Each group gets its mean row in the table.
        settings: scoring settings (default :class:`~tfgym.scoring.ScoringSettings`); the
            agents must have been trained with the same histogram bins and ``n_vertices``.
        constant: the constant baseline's action ``(2 * n_vertices,)``, fitted elsewhere
            (train scenes); None: no constant column and no gap closed.
        best_search: the per-scene search, a key of :data:`tfgym.search.SEARCHES`.
        best_budget: env evaluations of the search per scene.
        best_population: the search's population (actions per render call; large batches
            render faster per action); None: the search's default.
        seed: seeds the random actions and (with each scene's name) the searches.
        random_samples: uniform random actions per scene of the ``"random"`` baseline.
        out_dir: cache of the baselines (``best_search/*.json``, ``random/*.json``); None: none.
        progress: show the searches' progress bars.

    Returns:
        The :class:`AgentEvaluation`.

    Raises:
        ValueError: an agent named like a baseline, an unknown search or scene,
            a budget or sample count below 1, or an agent's actions of the wrong shape.
        TypeError: an agent without ``predict``.

    Example:
        >>> from agents.constant import ConstantPolicy
        >>> polygon = np.array([0.2, -1, 1, -1, 1, 1, 0.2, 1])
        >>> result = evaluate_agents(
        ...     {"fixed": ConstantPolicy(polygon)}, "headsq", constant=polygon, best_budget=16,
        ...     settings=ScoringSettings(working_size=32, image_size=16), progress=False,
        ... )
        >>> result.methods
        ('fixed', 'constant', 'random', 'best')
        >>> row = result.summary("headsq")["fixed"]
        >>> row["gap_closed"], bool(row["ratio"] <= 1.0)
        (0.0, True)
    """
    clash = sorted(set(agents) & set(BASELINES))
    if clash:
        raise ValueError(f"agent names {clash} are taken by the baselines {BASELINES}")
    if best_search not in SEARCHES:
        raise ValueError(
            f"unknown search {best_search!r} for the best baseline; valid: {sorted(SEARCHES)}"
        )
    if best_budget < 1 or random_samples < 1:
        raise ValueError(
            f"best_budget and random_samples must be at least 1, got {best_budget}, "
            f"{random_samples}"
        )
    start = time.perf_counter()
    s = settings or ScoringSettings()
    groups = _groups(scenes)
    names = tuple(dict.fromkeys(x for g in groups.values() for x in g))
    scorers = [SceneScorer(name, s) for name in names]
    obs = np.stack([scorer.observation for scorer in scorers])
    t0 = time.perf_counter()
    actions = {n: _predict(n, agent, obs, s.action_dim) for n, agent in agents.items()}
    t1 = time.perf_counter()
    if constant is not None:
        const = np.clip(np.asarray(constant, np.float32).reshape(-1), -1, 1)
        if const.shape != (s.action_dim,):
            raise ValueError(f"constant must have {s.action_dim} numbers, got {const.shape}")
        actions["constant"] = np.repeat(const[None], len(names), axis=0)
    config = {
        "search": best_search,
        "budget": int(best_budget),
        "population": best_population,
        "seed": int(seed),
    }
    cache = None if out_dir is None else Path(out_dir)
    rnd = np.random.default_rng(seed).uniform(-1, 1, (random_samples, s.action_dim))
    rand = {"seed": int(seed), "random_samples": int(random_samples)}
    found, randoms = [], []
    for scorer in scorers:
        found.append(
            _cached(
                scorer, cache, "best_search", config, partial(_search, scorer, config, progress)
            )
        )
        randoms.append(_cached(scorer, cache, "random", rand, partial(_random, scorer, rnd)))
    t2 = time.perf_counter()
    candidates = list(actions)
    scores = {m: np.empty(len(names)) for m in (*candidates, "random", "best")}
    actions["best"] = np.empty((len(names), s.action_dim), np.float32)
    sources = []
    for i, scorer in enumerate(scorers):
        searched = np.asarray(found[i][0]["check_action"], np.float32)
        batch = scorer.score(np.stack([*(actions[m][i] for m in candidates), searched]))
        for j, m in enumerate(candidates):
            scores[m][i] = batch.oracle_score[j]
            actions[m][i] = batch.actions[j]
        k = int(np.argmax(batch.oracle_score))  # the search's action last: ties go to agents
        scores["best"][i], actions["best"][i] = batch.oracle_score[k], batch.actions[k]
        sources.append("search" if k == len(candidates) else candidates[k])
        scores["random"][i] = randoms[i][0]["mean"]
    t3 = time.perf_counter()
    return AgentEvaluation(
        scenes=names,
        groups=groups,
        agents=tuple(agents),
        scores=scores,
        actions=actions,
        best_source=tuple(sources),
        settings=s,
        config={
            **config,
            "random_samples": int(random_samples),
            "searches_cached": int(sum(c for _, c in found)),
            "randoms_cached": int(sum(c for _, c in randoms)),
        },
        seconds={
            "predict": t1 - t0,
            "baselines": t2 - t1,
            "score": t3 - t2,
            "total": t3 - start,
        },
    )
