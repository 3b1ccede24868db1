"""The phases of the RLHF pipeline (:mod:`agents.pipeline`), one function each.

Each phase reads what earlier phases wrote into the run folder and writes its own files;
it returns a small dict of figures recorded in ``state.json``. A phase that is interrupted
leaves no ``state.json`` entry and starts again from scratch on resume (its partial files
are overwritten).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from agents.config import PPOConfig, RLHFConfig, scene_list
from agents.run import RunState, phase_rng
from tfgym.scene import resolve_scenes
from tfgym.scoring import SceneScorer, ScoringSettings

__all__ = [
    "phase_baselines",
    "phase_evaluate",
    "phase_experts",
    "phase_ppo",
    "phase_prefs",
    "phase_report",
    "phase_rm",
    "phase_round",
    "phase_samples",
    "phase_sft",
]

SAMPLE_MIX = (0.4, 0.3, 0.3)
"""Shares of the actions to label per scene: SFT-policy samples, expert shifts, random."""
SHIFT_STD = 0.08  # std of the Gaussian shift of an expert's vertices (action units)


def _settings(config: RLHFConfig) -> ScoringSettings:
    return ScoringSettings(image_size=config.image_size)


def _train_scenes(config: RLHFConfig) -> list[str]:
    return list(resolve_scenes(scene_list(config.train_scenes)))


def _eval_scenes(config: RLHFConfig) -> list[str]:
    names = list(resolve_scenes(scene_list(config.eval_scenes)))
    return [*names, "headsq"] if "headsq" not in names else names


def _search_method() -> str:
    from tfgym.search import SEARCHES

    return "cmaes" if "cmaes" in SEARCHES else "cem"


def _ppo_config(config: RLHFConfig, **overrides: Any) -> PPOConfig:
    n_steps = min(64, max(8, config.ppo_steps // config.n_envs))
    values: dict[str, Any] = {
        "scenes": config.train_scenes,
        "n_steps": n_steps,
        "batch_size": min(256, n_steps * config.n_envs),
        "display_size": config.display_size,
        "total_timesteps": config.ppo_steps,
        "n_envs": config.n_envs,
        "learning_rate": config.ppo_lr,
        "kl_beta": config.kl_beta,
        "kl_target": config.kl_target,
        "image_size": config.image_size,
        "seed": config.seed,
        "eval_scenes": config.eval_scenes,
    }
    values.update(overrides)
    return PPOConfig(**values)


# -- phases ------------------------------------------------------------------------------------
def phase_experts(run: RunState, progress: bool) -> dict[str, Any]:
    """Expert TFs per train scene: the oracle search's best and near-best actions."""
    from agents.sft import expert_dataset

    c = run.config
    data = expert_dataset(
        _train_scenes(c),
        _settings(c),
        budget=c.expert_budget,
        per_scene=c.experts_per_scene,
        method=_search_method(),
        seed=c.seed,
        progress=progress,
    )
    data.save(run.folder / "experts.npz")
    return {"experts": len(data), "mean_best": float(np.mean(list(data.best.values())))}


def phase_baselines(run: RunState, progress: bool) -> dict[str, Any]:
    """The best constant polygon over the train scenes (the baseline to beat)."""
    from tfgym.search import best_constant_action

    c = run.config
    from agents.sft import ExpertData

    experts = ExpertData.load(run.folder / "experts.npz")
    scorers = [SceneScorer(s, _settings(c)) for s in _train_scenes(c)]
    firsts = {s: i for i, s in reversed(list(enumerate(experts.scenes)))}
    initial = experts.actions[sorted(firsts.values())]  # each scene's best as a candidate
    result = best_constant_action(
        scorers, c.constant_budget, phase_rng(c, "baselines"), initial=initial, progress=progress
    )
    out = {
        "constant_action": [float(x) for x in result.action],
        "constant_train_mean": result.mean_reward,
        "search": "cem",
        "candidates": result.n_candidates,
    }
    (run.folder / "baselines.json").write_text(json.dumps(out, indent=2) + "\n")
    # the per-scene best of the evaluation scenes (cached in eval/ for the evaluate phase):
    # PPO's held-out curve is logged as a ratio to it
    from agents.evaluate import evaluate_agents

    known = evaluate_agents(
        {},
        scenes=(scene_list(c.eval_scenes), "headsq"),
        settings=_settings(c),
        best_budget=c.best_budget,
        seed=c.seed,
        constant=result.action,
        out_dir=run.folder / "eval",
        progress=progress,
    )
    best = {s: float(v) for s, v in zip(known.scenes, known.scores["best"], strict=True)}
    (run.folder / "best_known.json").write_text(json.dumps(best, indent=2) + "\n")
    return {"constant_train_mean": round(result.mean_reward, 4)}


def _load_policy(path: Path) -> Any:
    from stable_baselines3 import PPO

    return PPO.load(path, device="cpu")


def phase_sft(run: RunState, progress: bool) -> dict[str, Any]:
    """Behaviour cloning of the experts into the PPO policy; saves ``sft/policy.zip``."""
    from torch.utils.tensorboard import SummaryWriter

    from agents.ppo import make_envs, make_ppo
    from agents.sft import ExpertData, behaviour_clone

    c = run.config
    experts = ExpertData.load(run.folder / "experts.npz")
    pc = _ppo_config(c, n_envs=1, batch_size=64)
    env = make_envs(pc)
    try:
        model = make_ppo(pc, env)
        writer = SummaryWriter(str(run.folder / "tb" / "sft"))
        try:
            result = behaviour_clone(
                model.policy,
                experts.observations,
                experts.actions,
                epochs=c.sft_epochs,
                val_fraction=0.1,
                seed=c.seed,
                progress=progress,
                writer=writer,
            )
        finally:
            writer.close()
        (run.folder / "sft").mkdir(exist_ok=True)
        model.save(run.folder / "sft" / "policy.zip")
    finally:
        env.close()
    _plot_curve(
        run.folder / "sft" / "bc_loss.png",
        {"train": result.losses, "validation": result.val_losses},
        "behaviour cloning: -log pi(expert action | histogram)",
        "epoch",
    )
    return {"bc_loss_first": result.losses[0], "bc_loss_last": result.losses[-1]}


def _plot_curve(path: Path, curves: dict[str, Any], title: str, xlabel: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.6), dpi=110, layout="constrained")
    ax = fig.subplots()
    for label, ys in curves.items():
        if len(ys):
            ax.plot(np.arange(1, len(ys) + 1), ys, label=label)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.legend()
    fig.savefig(path)


def _sample_actions(
    policy_model: Any, scorer: SceneScorer, experts: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[str]]:
    """``n`` actions of one scene: policy samples, expert shifts and random polygons."""
    n_policy = round(SAMPLE_MIX[0] * n)
    n_shift = round(SAMPLE_MIX[1] * n) if len(experts) else 0
    n_random = n - n_policy - n_shift
    obs = np.repeat(scorer.observation[None], n_policy, axis=0)
    parts, kinds = [], []
    if n_policy:
        acts, _ = policy_model.predict(obs, deterministic=False)
        parts.append(np.clip(acts, -1, 1))
        kinds += ["policy"] * n_policy
    if n_shift:
        base = experts[rng.integers(len(experts), size=n_shift)]
        parts.append(np.clip(base + rng.normal(0, SHIFT_STD, base.shape), -1, 1))
        kinds += ["shift"] * n_shift
    if n_random:
        parts.append(rng.uniform(-1, 1, (n_random, scorer.action_dim)))
        kinds += ["random"] * n_random
    return np.concatenate(parts).astype(np.float32), kinds


def phase_samples(run: RunState, progress: bool) -> dict[str, Any]:
    """Actions to label per train scene (the SFT policy's samples, shifts, random)."""
    from agents.sft import ExpertData

    c = run.config
    experts = ExpertData.load(run.folder / "experts.npz")
    sft = _load_policy(run.folder / "sft" / "policy.zip")
    sft.set_random_seed(c.seed)
    rng = phase_rng(c, "samples")
    names, actions, kinds = [], [], []
    for scene in _train_scenes(c):
        scorer = SceneScorer(scene, _settings(c))
        mine = experts.actions[np.asarray(experts.scenes) == scorer.name]
        acts, k = _sample_actions(sft, scorer, mine, c.samples_per_scene, rng)
        names += [scorer.name] * len(acts)
        actions.append(acts)
        kinds += k
    np.savez_compressed(
        run.folder / "samples.npz",
        scenes=np.array(names),
        actions=np.concatenate(actions),
        kinds=np.array(kinds),
    )
    return {"samples": len(names)}


def _label(
    run: RunState,
    scene_actions: dict[str, np.ndarray],
    pairs: dict[str, np.ndarray] | None,
    n_pairs: int,
    rng: np.random.Generator,
    progress: bool,
    *,
    phase: str,
) -> int:
    """Label pairs of each scene's actions into the run's store; returns records added.

    The simulated labeler answers at once; with ``labeler="human"`` the pairs go to the label
    queue and the phase waits for people's answers (:mod:`agents.human_labels`).
    """
    from tqdm.auto import tqdm

    from tfgym.collect import collect_preferences
    from tfgym.preferences import PreferenceStore

    c = run.config
    if c.labeler == "human":
        from agents.human_labels import label_with_people

        records = label_with_people(
            run.folder, c, _settings(c), scene_actions, pairs, n_pairs, rng,
            phase=phase, progress=progress,
        )  # fmt: skip
        with PreferenceStore(run.folder / "prefs.sqlite") as store:
            store.add_many(records)
        return len(records)
    per_scene = max(1, n_pairs // len(scene_actions))
    added = 0
    with PreferenceStore(run.folder / "prefs.sqlite") as store:
        for scene, acts in tqdm(scene_actions.items(), desc="label", disable=not progress):
            scorer = SceneScorer(scene, _settings(c))
            possible = len(acts) * (len(acts) - 1) // 2
            prefs = collect_preferences(
                scorer,
                acts,
                n_pairs=min(per_scene, possible),
                labeler=c.labeler_preset,
                rng=rng,
                store=store,
                pairs=None if pairs is None else pairs[scene],
            )
            added += len(prefs)
    return added


def phase_prefs(run: RunState, progress: bool) -> dict[str, Any]:
    """Preferences over the samples (simulated labeler or people), into ``prefs.sqlite``."""
    c = run.config
    (run.folder / "prefs.sqlite").unlink(missing_ok=True)  # an interrupted phase restarts
    with np.load(run.folder / "samples.npz") as f:
        scenes, actions = f["scenes"], f["actions"]
    groups = {str(s): actions[scenes == s] for s in dict.fromkeys(scenes.tolist())}
    added = _label(run, groups, None, c.pairs, phase_rng(c, "prefs"), progress, phase="prefs")
    return {"pairs": added}


def _train_rm(run: RunState, name: str, progress: bool) -> dict[str, Any]:
    from reward_models.config import TrainConfig
    from reward_models.train import train_reward_model
    from tfgym.preferences import PreferenceStore

    c = run.config
    with PreferenceStore(run.folder / "prefs.sqlite") as store:
        records = store.records()
    config = TrainConfig(
        epochs=c.rm_epochs, variant=c.rm_variant, ensemble_size=c.rm_ensemble, seed=c.seed
    )
    result = train_reward_model(
        records, config, log_dir=run.folder / "tb" / name, progress=progress
    )
    result.save(run.folder / f"{name}.pt")
    # standardise the RM's reward on the labeled samples: PPO's beta then means the same
    with np.load(run.folder / "samples.npz") as f:
        scenes, actions = f["scenes"], f["actions"]
    rewards = []
    for s in dict.fromkeys(scenes.tolist()):
        obs = SceneScorer(str(s), _settings(c)).observation
        rewards.append(result.model.predict(obs, actions[scenes == s]))
    r = np.concatenate(rewards)
    scale = {"shift": float(r.mean()), "scale": float(max(r.std(), 1e-6))}
    (run.folder / f"{name}.scale.json").write_text(json.dumps(scale) + "\n")
    last = result.history[-1]
    return {"pairs": len(records), "val_accuracy": getattr(last, "val_accuracy", None), **scale}


def phase_rm(run: RunState, progress: bool) -> dict[str, Any]:
    """The reward-model ensemble on the labeled pairs: ``rm.pt`` and ``rm.scale.json``."""
    return _train_rm(run, "rm", progress)


def _best_known(run: RunState) -> dict[str, float]:
    path = run.folder / "best_known.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _run_ppo(run: RunState, rm: str, folder: str, init: Path, progress: bool) -> dict[str, Any]:
    from agents.ppo import train_ppo

    c = run.config
    scale = json.loads((run.folder / f"{rm}.scale.json").read_text())
    config = _ppo_config(
        c,
        backend="reward_model",
        reward_model_path=str(run.folder / f"{rm}.pt"),
        reward_shift=scale["shift"],
        reward_scale=scale["scale"],
    )
    sft = _load_policy(run.folder / "sft" / "policy.zip")
    start = _load_policy(init)
    model = train_ppo(
        config,
        run.folder / folder,
        init_policy=start.policy,
        reference=sft.policy,
        eval_best=_best_known(run),
        progress=progress,
    )
    rows = model.monitor_rows  # type: ignore[attr-defined]
    final = [r for r in rows if "eval_oracle_mean" in r]
    return {"steps": int(model.num_timesteps), "heldout_oracle": final[-1]["eval_oracle_mean"]}


def phase_ppo(run: RunState, progress: bool) -> dict[str, Any]:
    """PPO against the RM, from the SFT policy, KL-penalised toward it: ``ppo/``."""
    return _run_ppo(run, "rm", "ppo", run.folder / "sft" / "policy.zip", progress)


def _latest_ppo(run: RunState, before: int) -> Path:
    for k in range(before - 1, 1, -1):
        if (run.folder / f"ppo-{k}" / "model.zip").exists():
            return run.folder / f"ppo-{k}" / "model.zip"
    return run.folder / "ppo" / "model.zip"


def phase_round(run: RunState, k: int, progress: bool) -> dict[str, Any]:
    """Round ``k``: label the PPO policy's samples where the ensemble disagrees most."""
    from reward_models.checkpoint import load_checkpoint
    from reward_models.model import RewardEnsemble

    c = run.config
    rng = np.random.default_rng([c.seed, 1000 + k])
    policy = _load_policy(_latest_ppo(run, k))
    policy.set_random_seed(c.seed + k)
    ensemble = load_checkpoint(run.folder / ("rm.pt" if k == 2 else f"rm-{k - 1}.pt"))
    groups: dict[str, np.ndarray] = {}
    chosen: dict[str, np.ndarray] = {}
    per_scene = max(1, c.pairs // len(_train_scenes(c)))
    for scene in _train_scenes(c):
        scorer = SceneScorer(scene, _settings(c))
        obs = np.repeat(scorer.observation[None], c.samples_per_scene, axis=0)
        acts = np.clip(policy.predict(obs, deterministic=False)[0], -1, 1).astype(np.float32)
        groups[scorer.name] = acts
        i, j = np.triu_indices(len(acts), k=1)
        if isinstance(ensemble, RewardEnsemble):
            r = ensemble.predict_all(scorer.observation, acts)  # (members, n)
            disagreement = (r[:, i] - r[:, j]).std(axis=0)
            top = np.argsort(-disagreement, kind="stable")[:per_scene]
        else:  # one model: random pairs (the alternative to disagreement)
            top = rng.choice(len(i), size=min(per_scene, len(i)), replace=False)
        chosen[scorer.name] = np.stack([i[top], j[top]], axis=1)
    added = _label(run, groups, chosen, c.pairs, rng, progress, phase=f"round-{k}")
    info = _train_rm(run, f"rm-{k}", progress)
    ppo = _run_ppo(run, f"rm-{k}", f"ppo-{k}", _latest_ppo(run, k), progress)
    return {"pairs_added": added, **{f"rm_{a}": b for a, b in info.items()}, **ppo}


def final_policy_path(run: RunState) -> Path:
    """The last PPO round's model."""
    return _latest_ppo(run, run.config.rounds + 1)


def phase_evaluate(run: RunState, progress: bool) -> dict[str, Any]:
    """Held-out evaluation: the agent against random, constant, SFT and the per-scene best."""
    from agents.evaluate import evaluate_agents

    c = run.config
    baselines = json.loads((run.folder / "baselines.json").read_text())
    agents = {
        "rlhf": _load_policy(final_policy_path(run)),
        "sft": _load_policy(run.folder / "sft" / "policy.zip"),
    }
    evaluation = evaluate_agents(
        agents,
        scenes=(scene_list(c.eval_scenes), "headsq"),
        settings=_settings(c),
        best_budget=c.best_budget,
        seed=c.seed,
        constant=np.asarray(baselines["constant_action"], dtype=np.float32),
        out_dir=run.folder / "eval",
        progress=progress,
    )
    table = evaluation.table()
    (run.folder / "eval").mkdir(exist_ok=True)
    (run.folder / "eval" / "table.md").write_text(table)
    evaluation.to_json(run.folder / "eval" / "evaluation.json")
    evaluation.save_figure(run.folder / "eval" / "renderings.png", working_size=c.display_size)
    return {"table": "eval/table.md"}


def phase_report(run: RunState, progress: bool) -> dict[str, Any]:
    """The reward-hacking report of every PPO round: ``hacking.md`` and ``hacking.png``."""
    from agents.hacking import reward_hacking_report

    del progress
    folder = final_policy_path(run).parent
    report = reward_hacking_report(folder / "actions.npz")
    (run.folder / "hacking.md").write_text(report.markdown())
    report.save_figure(run.folder / "hacking.png")
    return {"parted_at": report.parted_at, "spearman": round(report.overall, 4)}
