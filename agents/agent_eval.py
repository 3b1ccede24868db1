"""``tfgym evaluate`` for ``tfgym train-agent`` run folders, whichever engine trained them.

A train-agent folder holds ``config.json`` (the :class:`~agents.config.PPOConfig`) and the
policy: ``model.zip`` (Stable-Baselines3) or ``policy.pt`` (Ray RLlib,
:class:`~agents.actor_critic.ActorCritic`). :func:`evaluate_agent_run` scores it with
:func:`agents.evaluate.evaluate_agents` -- the table of the RLHF pipeline's evaluation --
on the run's evaluation scenes and headsq, against random TFs, the best constant polygon of
the run's **training** scenes (CEM, fitted here once and cached in ``eval/constant.json``)
and the per-scene best found by CMA-ES (cached in ``eval/best_search/``). It writes
``eval/table.md``, ``eval/evaluation.json`` and ``eval/renderings.png``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np

from agents.config import PPOConfig, scene_list
from agents.evaluation import AgentEvaluation

__all__ = ["agent_name", "evaluate_agent_run", "is_agent_run", "load_agent_run"]


def is_agent_run(folder: str | Path) -> bool:
    """Whether a folder holds a train-agent run (config and a policy)."""
    path = Path(folder)
    return (path / "config.json").is_file() and any(
        (path / name).is_file() for name in ("policy.pt", "model.zip")
    )


def load_agent_run(folder: str | Path) -> tuple[Any, PPOConfig]:
    """The policy (SB3's ``predict``) and the config of a train-agent run folder.

    Raises:
        FileNotFoundError: the folder holds no train-agent run.
        ValueError: its config or policy cannot be read.
    """
    path = Path(folder)
    if not is_agent_run(path):
        raise FileNotFoundError(
            f"{path} is not a train-agent run folder (config.json and policy.pt or model.zip)"
        )
    try:
        stored = json.loads((path / "config.json").read_text())
        names = {f.name for f in fields(PPOConfig)}
        config = PPOConfig(**{k: v for k, v in stored.items() if k in names})
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path}/config.json is not a PPO config: {err}") from err
    if (path / "policy.pt").is_file():
        from agents.actor_critic import ActorCritic

        return ActorCritic.load(path / "policy.pt"), config
    from stable_baselines3 import PPO

    return PPO.load(path / "model.zip", device="cpu"), config


def agent_name(config: PPOConfig) -> str:
    """The agent's column in the table: ``ppo-sb3`` or ``ppo-rllib``."""
    return f"ppo-{config.engine}"


def _constant(folder: Path, config: PPOConfig, budget: int, progress: bool) -> np.ndarray:
    """The best constant polygon of the run's training scenes (cached in the folder)."""
    from tfgym.scene import resolve_scenes
    from tfgym.scoring import SceneScorer
    from tfgym.search import best_constant_action

    key = {
        "scenes": config.scenes,
        "budget": int(budget),
        "seed": config.seed,
        "settings": asdict(config.settings),
    }
    file = folder / "eval" / "constant.json"
    if file.is_file():
        data = json.loads(file.read_text())
        if data.get("key") == json.loads(json.dumps(key)):
            return np.asarray(data["action"], np.float32)
    scorers = [SceneScorer(s, config.settings) for s in resolve_scenes(scene_list(config.scenes))]
    result = best_constant_action(
        scorers, budget, np.random.default_rng([config.seed, 1]), progress=progress
    )
    file.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "key": key,
        "action": [float(x) for x in result.action],
        "train_mean": result.mean_reward,
    }
    file.write_text(json.dumps(record, indent=2) + "\n")
    return np.asarray(result.action, np.float32)


def evaluate_agent_run(
    folder: str | Path,
    *,
    best_budget: int = 3000,
    constant_budget: int = 600,
    scenes: str | None = None,
    display_size: int | None = None,
    progress: bool = True,
) -> AgentEvaluation:
    """Evaluate a train-agent run's policy on held-out scans (module docstring).

    Args:
        folder: the run folder.
        best_budget: CMA-ES evaluations per scene of the per-scene best.
        constant_budget: candidate polygons of the best-constant search over the train scenes.
        scenes: the held-out scenes (default: the run's ``eval_scenes``, else ``"heldout"``);
            headsq is always added.
        display_size: working size of ``renderings.png`` (default: the run's).
        progress: progress bars.

    Returns:
        The evaluation (also written to ``folder/eval/``).
    """
    from agents.evaluate import evaluate_agents

    path = Path(folder)
    policy, config = load_agent_run(path)
    constant = _constant(path, config, constant_budget, progress)
    held_out = scenes or config.eval_scenes or "heldout"
    evaluation = evaluate_agents(
        {agent_name(config): policy},
        scenes=(scene_list(held_out), "headsq"),
        settings=config.settings,
        constant=constant,
        best_budget=best_budget,
        seed=config.seed,
        out_dir=path / "eval",
        progress=progress,
    )
    out = path / "eval"
    out.mkdir(exist_ok=True)
    (out / "table.md").write_text(evaluation.table())
    evaluation.to_json(out / "evaluation.json")
    evaluation.save_figure(out / "renderings.png", working_size=display_size or config.display_size)
    return evaluation
