"""``tfgym train-agent``, ``tfgym rlhf`` and ``tfgym evaluate``: the agents' commands.

Options come from :class:`agents.config.PPOConfig` and :class:`agents.config.RLHFConfig`
(no torch at import); Stable-Baselines3 and torch load only when a command runs.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from agents.config import PPOConfig, RLHFConfig
from tfgym.cli.common import CliError, add_command
from tfgym.cli.options import add_config_options

__all__ = ["register"]


def _train_rllib(args: argparse.Namespace, config: PPOConfig) -> int:
    try:
        from agents.rllib import train_rllib
    except ImportError as err:
        raise CliError(
            f"--engine rllib needs Ray RLlib ({err}); install it with: pip install 'tfgym[ray]'"
        ) from err
    if args.init:
        raise CliError("--init starts an SB3 policy; it is not used with --engine rllib")
    try:
        run = train_rllib(config, args.out, progress=not args.no_progress)
    except ConnectionError as err:
        raise CliError(
            f"cannot reach the Ray cluster ({err}); a cluster with token authentication (Ray's "
            "default) also needs RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN or "
            "~/.ray/auth_token) here"
        ) from err
    rows = [r for r in run.monitor_rows if "eval_oracle_mean" in r]
    if rows:
        print(
            f"held-out oracle score of the deterministic policy: {rows[-1]['eval_oracle_mean']:.3f}"
        )
    print(
        f"wrote {args.out}/policy.pt and {args.out}/rllib_checkpoint "
        f"(evaluate: tfgym evaluate {args.out}; TensorBoard: tensorboard --logdir {args.out}/tb)"
    )
    return 0


def _train_agent(args: argparse.Namespace) -> int:
    from agents.ppo import train_ppo

    config = PPOConfig(**args.command_spec.values(args, "ppo"))
    if config.engine == "rllib":
        return _train_rllib(args, config)
    init = None
    if args.init:
        from stable_baselines3 import PPO

        if not Path(args.init).is_file():
            raise CliError(f"initial policy not found: {args.init}")
        init = PPO.load(args.init, device="cpu").policy
    model = train_ppo(config, args.out, init_policy=init, progress=not args.no_progress)
    rows = [r for r in model.monitor_rows if "eval_oracle_mean" in r]  # type: ignore[attr-defined]
    if rows:
        print(
            f"held-out oracle score of the deterministic policy: {rows[-1]['eval_oracle_mean']:.3f}"
        )
    print(
        f"wrote {args.out}/model.zip (evaluate: tfgym evaluate {args.out}; "
        f"TensorBoard: tensorboard --logdir {args.out}/tb)"
    )
    return 0


def _rlhf_config(args: argparse.Namespace) -> RLHFConfig:
    """The config of the options; with --short, options left at their default are small."""
    given = args.command_spec.values(args, "rlhf")
    if not args.short:
        return RLHFConfig(**given)
    defaults = {f.name: f.default for f in dataclasses.fields(RLHFConfig)}
    changed = {k: v for k, v in given.items() if v != defaults.get(k)}
    return RLHFConfig.short(**changed)


def _rlhf(args: argparse.Namespace) -> int:
    from agents.pipeline import run_rlhf

    config = _rlhf_config(args)
    run = run_rlhf(config, args.out, progress=not args.no_progress)
    _print_evaluation(run.folder)
    return 0


def _print_evaluation(folder: Path) -> None:
    table = folder / "eval" / "table.md"
    if table.exists():
        print()
        print(table.read_text())
    hacking = folder / "hacking.md"
    if hacking.exists():
        print(hacking.read_text().split("\n\n")[1])
    print(f"\nrun folder: {folder}/  (eval/table.md, eval/renderings.png, hacking.png, ...)")
    print(f"TensorBoard: tensorboard --logdir {folder}/")


def _evaluate_agent(args: argparse.Namespace, folder: Path) -> int:
    from agents.agent_eval import evaluate_agent_run

    try:
        evaluate_agent_run(
            folder,
            best_budget=3000 if args.best_budget is None else args.best_budget,
            constant_budget=args.constant_budget,
            scenes=args.scenes,
            progress=not args.no_progress,
        )
    except (FileNotFoundError, ValueError) as err:
        raise CliError(str(err)) from err
    print()
    print((folder / "eval" / "table.md").read_text())
    print(f"\nrun folder: {folder}/  (eval/table.md, eval/evaluation.json, eval/renderings.png)")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from agents.agent_eval import is_agent_run
    from agents.pipeline import RunState, run_rlhf

    folder = Path(args.run)
    state = folder / "state.json"
    if not state.is_file():
        if is_agent_run(folder):
            return _evaluate_agent(args, folder)
        raise CliError(
            f"{folder} is neither an RLHF run folder (state.json; see tfgym rlhf) nor a "
            "train-agent run folder (config.json with model.zip or policy.pt)"
        )
    run = RunState.read(folder)
    if args.best_budget is not None:
        run.config = dataclasses.replace(run.config, best_budget=args.best_budget)
    missing = [p for p in ("ppo",) if not run.finished(p)]
    if missing:
        raise CliError(f"{folder}: phase {missing[0]!r} has not finished; resume with tfgym rlhf")
    for phase in ("evaluate", "report"):
        run.done.pop(phase, None)
    run.save()
    run_rlhf(run.config, folder, progress=not args.no_progress)
    _print_evaluation(folder)
    return 0


def register(subparsers: Any) -> None:
    """Add ``train-agent``, ``rlhf`` and ``evaluate``."""
    p, command = add_command(
        subparsers,
        "train-agent",
        _train_agent,
        help="train a PPO agent (Stable-Baselines3 or Ray RLlib) against a reward backend",
        description="Train PPO with a policy that reads the joint histogram, on vectorised "
        "envs, against the oracle, a reward-model checkpoint or the human queue. Writes "
        "model.zip (--engine sb3) or policy.pt and rllib_checkpoint/ (--engine rllib: RLlib's "
        "PPO on --env-runners Ray actors, locally or on the Ray cluster at --address or "
        "$RAY_ADDRESS), checkpoints, trace.csv and TensorBoard logs (mean reward, the "
        "oracle's score of the same actions, the held-out curve, renderings of the current "
        "policy) under --out. Evaluate the result with tfgym evaluate OUT.",
    )
    p.add_argument("--out", default="runs/ppo", help="run folder (default: %(default)s)")
    p.add_argument("--init", help="an SB3 PPO model.zip whose policy starts training (e.g. SFT)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    command.add_group("ppo", add_config_options(p, PPOConfig))
    command.options.update(out="--out", init="--init")

    p, command = add_command(
        subparsers,
        "rlhf",
        _rlhf,
        help="the full RLHF pipeline: SFT, preferences, reward model, PPO, evaluation",
        description="Run (or resume) the RLHF pipeline of Ziegler et al. (2020) in one run "
        "folder: expert TFs, behaviour cloning (SFT), sampling, preference labeling, a "
        "reward-model ensemble, PPO against it with a KL penalty toward the SFT policy, the "
        "held-out evaluation and the reward-hacking report. Finished phases are skipped when "
        "the same command runs again.",
    )
    p.add_argument("--out", default="runs/rlhf", help="run folder (default: %(default)s)")
    p.add_argument(
        "--short",
        action="store_true",
        help="small budgets (a few minutes) for every option left at its default",
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    command.add_group("rlhf", add_config_options(p, RLHFConfig))
    command.options.update(out="--out")

    p, command = add_command(
        subparsers,
        "evaluate",
        _evaluate,
        help="evaluate an agent (tfgym rlhf or train-agent run) on held-out scans",
        description="Evaluate a run's agent (one deterministic forward pass per scan) on the "
        "held-out set and headsq against random TFs, the best constant polygon of the "
        "training scenes, the SFT policy (RLHF runs) and the per-scene best found by CMA-ES; "
        "prints the table and writes eval/table.md, eval/evaluation.json and "
        "eval/renderings.png in the run folder. Takes an RLHF run folder (tfgym rlhf) or a "
        "train-agent run folder of either engine (model.zip: Stable-Baselines3, policy.pt: "
        "Ray RLlib).",
    )
    p.add_argument("run", help="the run folder of tfgym rlhf or tfgym train-agent")
    p.add_argument(
        "--best-budget", type=int, help="per-scene search budget of the best (default: 3000)"
    )
    p.add_argument(
        "--constant-budget",
        type=int,
        default=600,
        help="train-agent runs: candidates of the best-constant search (default: %(default)s)",
    )
    p.add_argument(
        "--scenes", help="train-agent runs: held-out scenes (default: the run's eval scenes)"
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    command.options.update(
        best_budget="--best-budget", constant_budget="--constant-budget", scenes="--scenes"
    )
