"""Benchmark: agents on held-out scans -- PPO, SFT + PPO, the RLHF pipeline, time to a TF.

Every learning claim is measured on the held-out phantoms (and headsq, reported apart),
against the per-scene best found by CMA-ES (``--best-budget`` evaluations per scene, the
agents' and the constant's TFs also candidates) and against the best constant polygon of the
train scenes (CEM, ``--constant-budget`` candidates), over several seeds:

* ``ppo``: PPO on the oracle reward over the train scenes, ``--ppo-steps`` env steps per
  seed; goal: >= 0.9 of the best on average and at least half of the gap between the
  constant and the best closed.
* ``sft``: the same PPO started from behaviour cloning of the train scenes' experts (the
  SFT phase); the held-out curves of both give the env steps to reach 0.8 of the best
  (experts' search evaluations are stated beside).
* ``pipeline``: the full RLHF pipeline (:func:`agents.pipeline.run_rlhf`) with the simulated
  labeler and ``--pairs`` pairs; goal: >= 0.8 of the best and better than the constant on
  average, with its reward-hacking report.
* ``rllib``: the ``ppo`` part's settings on Ray RLlib (``--env-runners`` env runners, the
  same network and PPO settings; needs the ``ray`` extra), per seed.
* ``extractor``: the histogram extractor against SB3's NatureCNN at equal budgets (seed 0).
* ``time``: time to a TF for a new scan: the agent's one forward pass against CMA-ES's time
  and renders to reach the agent's score on each held-out scene.

Writes ``benchmarks/results/bench_agents.json``, the learning-curve figure
``bench_agents_curves.png`` and each run's folder under ``--runs`` (TensorBoard inside).

Usage::

    python benchmarks/bench_agents.py --parts ppo sft --seeds 0 1 2
    python benchmarks/bench_agents.py --parts pipeline --seeds 0 1 2
    .venv-ray/bin/python benchmarks/bench_agents.py --parts rllib --ppo-steps 50000
    python benchmarks/bench_agents.py --quick --out /tmp/agents.json   # smoke test
    python benchmarks/bench_agents.py --merge a.json b.json   # parts run in parallel
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info

from agents.config import PPOConfig, RLHFConfig
from agents.evaluate import evaluate_agents
from agents.pipeline import run_rlhf
from agents.ppo import train_ppo
from agents.sft import ExpertData, behaviour_clone, expert_dataset
from tfgym.scene import resolve_scenes
from tfgym.scoring import SceneScorer, ScoringSettings
from tfgym.search import SEARCHES, best_constant_action

RESULTS = Path(__file__).resolve().parent / "results"


def _constant(args: argparse.Namespace, settings: ScoringSettings) -> np.ndarray:
    path = args.runs / "constant.json"
    if path.exists():
        return np.asarray(json.loads(path.read_text())["action"], dtype=np.float32)
    scorers = [SceneScorer(s, settings) for s in resolve_scenes("train")]
    result = best_constant_action(
        scorers, args.constant_budget, np.random.default_rng(0), progress=args.progress
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"action": result.action.tolist(), "train_mean": result.mean_reward})
    )
    return result.action


def _best(args: argparse.Namespace, settings: ScoringSettings, constant: np.ndarray) -> Any:
    return evaluate_agents(
        {},
        scenes=("heldout", "headsq"),
        settings=settings,
        constant=constant,
        best_budget=args.best_budget,
        out_dir=args.runs / "eval-cache",
        progress=args.progress,
    )


def _evaluate(args: argparse.Namespace, agents: dict[str, Any], constant: np.ndarray) -> Any:
    return evaluate_agents(
        agents,
        scenes=("heldout", "headsq"),
        settings=ScoringSettings(),
        constant=constant,
        best_budget=args.best_budget,
        out_dir=args.runs / "eval-cache",
        progress=args.progress,
    )


def _figures(evaluation: Any, method: str) -> dict[str, float]:
    held = evaluation.summary("heldout")[method]
    head = evaluation.summary("headsq")[method]
    return {
        "heldout_score": held["score"],
        "heldout_ratio": held["ratio"],
        "heldout_gap_closed": held["gap_closed"],
        "headsq_score": head["score"],
        "headsq_ratio": head["ratio"],
    }


def _curve(rows: list[dict[str, float]]) -> list[tuple[float, float]]:
    return [(r["timesteps"], r["eval_ratio_to_best"]) for r in rows if "eval_ratio_to_best" in r]


def _steps_to(curve: list[tuple[float, float]], level: float) -> float | None:
    return next((t for t, r in curve if r >= level), None)


def _ppo_config(args: argparse.Namespace, seed: int, **extra: Any) -> PPOConfig:
    return PPOConfig(
        scenes=args.ppo_scenes,
        total_timesteps=args.ppo_steps,
        seed=seed,
        eval_every=args.eval_every,
        image_every=0 if args.quick else 100,
        checkpoint_every=0,
        **extra,
    )


def _experts(args: argparse.Namespace) -> ExpertData:
    path = args.runs / "experts.npz"
    if path.exists():
        return ExpertData.load(path)
    method = "cmaes" if "cmaes" in SEARCHES else "cem"
    data = expert_dataset(
        resolve_scenes("train"),
        budget=args.expert_budget,
        per_scene=8,
        method=method,
        progress=args.progress,
    )
    data.save(path)
    return data


def part_ppo(args: argparse.Namespace, ctx: dict[str, Any], sft: bool) -> dict[str, Any]:
    """PPO on the oracle over the train scenes (from scratch or from SFT), per seed."""
    name = "sft" if sft else "ppo"
    out: dict[str, Any] = {"steps": args.ppo_steps, "scenes": args.ppo_scenes, "seeds": {}}
    for seed in args.seeds:
        config = _ppo_config(args, seed)
        init = None
        if sft:
            from agents.ppo import make_envs, make_ppo

            experts = _experts(args)
            env = make_envs(PPOConfig(n_envs=1, batch_size=64, seed=seed))
            model = make_ppo(config, env)
            bc = behaviour_clone(
                model.policy, experts.observations, experts.actions, epochs=300,
                seed=seed, progress=args.progress,
            )  # fmt: skip
            env.close()
            init = model.policy
        start = time.perf_counter()
        model = train_ppo(
            config,
            args.runs / f"{name}{args.tag}-seed{seed}",
            init_policy=init,
            eval_best=ctx["best"],
            progress=args.progress,
        )
        seconds = time.perf_counter() - start
        out["seeds"][seed] = {
            **_seed_record(args, ctx, name, model, model.monitor_rows, seconds, seed),  # type: ignore[attr-defined]
            **({"bc_loss": [bc.losses[0], bc.losses[-1]]} if sft else {}),
        }
    return _summary(out, sft)


def _seed_record(
    args: argparse.Namespace,
    ctx: dict[str, Any],
    name: str,
    policy: Any,
    rows: list[dict[str, float]],
    seconds: float,
    seed: int,
) -> dict[str, Any]:
    """One seed's trained policy, evaluated: held-out figures, speed and curve (printed)."""
    evaluation = _evaluate(args, {name: policy}, ctx["constant"])
    curve = _curve(rows)
    record = {
        **_figures(evaluation, name),
        "seconds": seconds,
        "steps_per_s": args.ppo_steps / seconds,
        "curve": curve,
        "steps_to_0.8": _steps_to(curve, 0.8),
        "steps_to_0.9": _steps_to(curve, 0.9),
    }
    print(f"[{name}] seed {seed}: {record['heldout_ratio']:.3f} of best", flush=True)
    return record


def part_rllib(args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    """The ppo part on Ray RLlib (same network, settings and evaluation), per seed."""
    from agents.rllib import train_rllib

    out: dict[str, Any] = {
        "steps": args.ppo_steps, "scenes": args.ppo_scenes, "env_runners": args.env_runners,
        "seeds": {},
    }  # fmt: skip
    for seed in args.seeds:
        config = _ppo_config(args, seed, engine="rllib", env_runners=args.env_runners)
        start = time.perf_counter()
        run = train_rllib(
            config, args.runs / f"rllib{args.tag}-seed{seed}", eval_best=ctx["best"],
            progress=args.progress,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        out["seeds"][seed] = _seed_record(
            args, ctx, "rllib", run.policy, run.monitor_rows, seconds, seed
        )
    return _summary(out, sft=True)


def part_pipeline(args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    """The full RLHF pipeline with the simulated labeler, per seed."""
    out: dict[str, Any] = {"pairs": args.pairs, "seeds": {}}
    for seed in args.seeds:
        config = (
            RLHFConfig.short(seed=seed)
            if args.quick
            else RLHFConfig(
                seed=seed,
                pairs=args.pairs,
                ppo_steps=args.pipeline_steps,
                kl_beta=args.kl_beta,
                kl_target=args.kl_target,
            )
        )
        folder = args.runs / f"rlhf-seed{seed}"
        start = time.perf_counter()
        run_rlhf(config, folder, progress=args.progress)
        evaluation = json.loads((folder / "eval" / "evaluation.json").read_text())
        from agents.evaluate import AgentEvaluation

        ev = AgentEvaluation.from_dict(evaluation)
        constant = ev.summary("heldout")["constant"]["score"]
        figures = _figures(ev, "rlhf")
        figures["sft_heldout_ratio"] = ev.summary("heldout")["sft"]["ratio"]
        figures["beats_constant"] = bool(figures["heldout_score"] > constant)
        state = json.loads((folder / "state.json").read_text())
        out["seeds"][seed] = {
            **figures,
            "seconds": time.perf_counter() - start,
            "phases": state["done"],
            "hacking": (folder / "hacking.md").read_text().split("\n\n")[1],
        }
        print(f"[pipeline] seed {seed}: {figures['heldout_ratio']:.3f} of best", flush=True)
    ratios = [s["heldout_ratio"] for s in out["seeds"].values()]
    beats = [s["beats_constant"] for s in out["seeds"].values()]
    out["mean_heldout_ratio"] = float(np.mean(ratios))
    out["goal"] = "PASS" if np.mean(ratios) >= 0.8 and all(beats) else "FAIL"
    return out


def part_extractor(args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    """NatureCNN against the histogram extractor (seed 0; the latter from part ppo)."""
    config = _ppo_config(args, 0, extractor="nature")
    model = train_ppo(
        config, args.runs / "nature-seed0", eval_best=ctx["best"], progress=args.progress
    )
    evaluation = _evaluate(args, {"nature": model}, ctx["constant"])
    return {"nature": {**_figures(evaluation, "nature"), "curve": _curve(model.monitor_rows)}}  # type: ignore[attr-defined]


def part_time(args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    """The agent's forward pass against CMA-ES's time and renders to reach its score."""
    from stable_baselines3 import PPO

    path = args.runs / "ppo-seed0" / "model.zip"
    if not path.exists():
        return {"skipped": f"{path} missing: run part ppo first"}
    model = PPO.load(path, device="cpu")
    settings = ScoringSettings()
    rows = []
    for scene in resolve_scenes("heldout"):
        scorer = SceneScorer(scene, settings)
        obs = scorer.observation[None]
        model.predict(obs, deterministic=True)  # warm
        start = time.perf_counter()
        for _ in range(20):
            action, _ = model.predict(obs, deterministic=True)
        forward = (time.perf_counter() - start) / 20
        target = float(scorer.score(action).oracle_score[0])
        search = SEARCHES["cmaes"](np.random.default_rng(0), population_size=32)
        start = time.perf_counter()
        result = search.run(scorer, args.best_budget)
        seconds = time.perf_counter() - start
        reached = next((h.evaluations for h in result.history if h.best_reward >= target), None)
        rows.append(
            {
                "scene": scene,
                "agent_score": target,
                "forward_ms": forward * 1e3,
                "cmaes_renders_to_agent": reached,
                "cmaes_seconds_to_agent": None
                if reached is None
                else seconds * reached / result.n_evaluations,
            }
        )
    reached = [r["cmaes_seconds_to_agent"] for r in rows if r["cmaes_seconds_to_agent"]]
    renders = [r["cmaes_renders_to_agent"] for r in rows if r["cmaes_renders_to_agent"]]
    return {
        "rows": rows,
        "forward_ms_mean": float(np.mean([r["forward_ms"] for r in rows])),
        "cmaes_seconds_median": float(np.median(reached)) if reached else None,
        "cmaes_renders_median": float(np.median(renders)) if renders else None,
        "cmaes_never_reached": sum(r["cmaes_renders_to_agent"] is None for r in rows),
        "speedup_median": float(np.median(reached))
        / (np.mean([r["forward_ms"] for r in rows]) / 1e3)
        if reached
        else None,
    }


def _plot(results: dict[str, Any], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.2), dpi=110, layout="constrained")
    ax = fig.subplots()
    styles = {
        "ppo": ("tab:blue", "-", "PPO on SB3"),
        "ppo_train_only": ("tab:cyan", "--", "PPO on SB3"),
        "ppo_train_only_150k": ("tab:purple", ":", "PPO on SB3"),
        "sft": ("tab:orange", "-", "SFT + PPO"),
        "rllib": ("tab:red", "-.", "PPO on RLlib"),
    }
    for part, (color, ls, name) in styles.items():
        runs = results.get(part, {})
        scenes = runs.get("scenes", "train").replace(",phantom-10000+512", " + 512 phantoms")
        label = f"{name} ({scenes}, {runs.get('steps', 0) // 1000}k steps)"
        for i, run in enumerate(runs.get("seeds", {}).values()):
            t, r = zip(*run["curve"], strict=True) if run["curve"] else ((), ())
            ax.plot(t, r, color=color, ls=ls, alpha=0.8, label=label if i == 0 else None)
    nature = results.get("extractor", {}).get("nature")
    if nature and nature["curve"]:
        t, r = zip(*nature["curve"], strict=True)
        ax.plot(t, r, color="tab:green", alpha=0.8, label="PPO, NatureCNN")
    ax.axhline(0.8, color="grey", ls=":", lw=1)
    ax.axhline(0.9, color="grey", ls="--", lw=1)
    ax.set_xlabel("env steps (oracle reward)")
    ax.set_ylabel("held-out score / per-scene best")
    ax.set_title("Deterministic policy on the 16 held-out phantoms", fontsize=10)
    ax.legend()
    fig.savefig(path)


def _summary(out: dict[str, Any], sft: bool) -> dict[str, Any]:
    """The means over seeds (and the goal of the ppo part) of a ppo/sft part."""
    ratios = [s["heldout_ratio"] for s in out["seeds"].values()]
    gaps = [s["heldout_gap_closed"] for s in out["seeds"].values()]
    out["mean_heldout_ratio"] = float(np.mean(ratios))
    out["mean_gap_closed"] = float(np.mean(gaps))
    if not sft:
        out["goal"] = "PASS" if np.mean(ratios) >= 0.9 and np.mean(gaps) >= 0.5 else "FAIL"
    return out


def _merge_part(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """Seeds of the same ppo/sft part (same steps and scenes) run apart join; else replace."""
    same = (
        old is not None
        and "seeds" in old
        and "seeds" in new
        and "steps" in new
        and all(old.get(k) == new.get(k) for k in ("steps", "scenes"))
        and not any(s in old["seeds"] for s in new["seeds"])
    )
    if not same or old is None:
        return new
    joined = {**old, "seeds": dict(sorted({**old["seeds"], **new["seeds"]}.items()))}
    return _summary(joined, sft="goal" not in new)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--parts", nargs="*", default=["ppo", "sft", "extractor", "time", "pipeline"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--ppo-steps", type=int, default=200_000)
    p.add_argument(
        "--ppo-scenes",
        default="train",
        help="training scenes of the ppo/sft parts, e.g. 'train,phantom-10000+512' (the "
        "train phantoms plus 512 phantoms of the procedural seed range)",
    )
    p.add_argument("--tag", default="", help="suffix of the ppo/sft run folders")
    p.add_argument("--env-runners", type=int, default=2, help="env runners of the rllib part")
    p.add_argument("--pipeline-steps", type=int, default=100_000)
    p.add_argument("--pairs", type=int, default=4000)
    p.add_argument("--kl-beta", type=float, default=RLHFConfig.kl_beta)
    p.add_argument("--kl-target", type=float, default=RLHFConfig.kl_target)
    p.add_argument("--best-budget", type=int, default=3000)
    p.add_argument("--constant-budget", type=int, default=600)
    p.add_argument("--expert-budget", type=int, default=600)
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--runs", type=Path, default=Path("runs/bench_agents"))
    p.add_argument("--out", type=Path, default=RESULTS / "bench_agents.json")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--merge", type=Path, nargs="+", help="merge these result files into --out")
    p.add_argument(
        "--plot-with",
        type=Path,
        help="draw this result file's curves in the figure too (e.g. the SB3 parts beside the "
        "rllib part); with --parts and no part, only redraw the figure",
    )
    p.add_argument("--plot-parts", nargs="+", help="of --plot-with, only these parts")
    args = p.parse_args()
    if args.merge:
        merged: dict[str, Any] = {}
        for path in args.merge:
            data = json.loads(path.read_text())
            for part, value in data["results"].items():
                merged[part] = _merge_part(merged.get(part), value)
        data["results"] = merged
        args.out.write_text(json.dumps(data, indent=2))
        _plot(merged, args.out.with_name(args.out.stem + "_curves.png"))
        return
    if args.quick:
        args.ppo_steps, args.best_budget, args.constant_budget = 2048, 200, 64
        args.expert_budget, args.eval_every, args.seeds = 96, 2, args.seeds[:1]
    torch.set_num_threads(args.threads)
    settings = ScoringSettings()
    constant = _constant(args, settings)
    known = _best(args, settings, constant)
    ctx = {
        "constant": constant,
        "best": {s: float(b) for s, b in zip(known.scenes, known.scores["best"], strict=True)},
    }
    results: dict[str, Any] = {}
    if args.out.exists():
        results = json.loads(args.out.read_text()).get("results", {})
    runners = {
        "ppo": lambda: part_ppo(args, ctx, sft=False),
        "sft": lambda: part_ppo(args, ctx, sft=True),
        "rllib": lambda: part_rllib(args, ctx),
        "extractor": lambda: part_extractor(args, ctx),
        "time": lambda: part_time(args, ctx),
        "pipeline": lambda: part_pipeline(args, ctx),
    }
    shown = json.loads(args.plot_with.read_text())["results"] if args.plot_with else {}
    shown = {k: v for k, v in shown.items() if not args.plot_parts or k in args.plot_parts}
    if not args.parts:
        _plot({**shown, **results}, args.out.with_name(args.out.stem + "_curves.png"))
    for part in args.parts:
        results[part] = runners[part]()
        results["baselines"] = {
            "constant_heldout": known.summary("heldout")["constant"],
            "random_heldout": known.summary("heldout")["random"],
            "best_heldout_score": known.summary("heldout")["best"]["score"],
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(
                {"machine": machine_info(), "args": _args(args), "results": results}, indent=2
            )
        )
        _plot({**shown, **results}, args.out.with_name(args.out.stem + "_curves.png"))
        print(json.dumps({k: v for k, v in results[part].items() if k != "seeds"}, indent=2))


def _args(args: argparse.Namespace) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


if __name__ == "__main__":
    main()
