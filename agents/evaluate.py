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
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from agents.base import Policy
from agents.evaluation import BASELINES, AgentEvaluation
from tfgym.scene import resolve_scenes
from tfgym.scoring import SceneScorer, ScoringSettings
from tfgym.search import SEARCHES

__all__ = ["AgentEvaluation", "evaluate_agents"]


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
