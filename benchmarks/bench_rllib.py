"""Benchmark: env steps per second with Ray RLlib (1 and 2 env runners) vs SB3's SubprocVecEnv.

Needs the ray extra (``pip install 'tfgym[ray]'``). Every measurement has the same number of
envs in all (``--n-envs``, default 4), the PPOConfig defaults otherwise (scenes ``"train"``,
128 px images, the oracle backend, tfgym's policy network), and is timed in interleaved
rounds (every measurement once per round, the median rate over rounds; ratios of medians),
after a warm-up that loads every scene in every process.

Two sections:

1. **sampling** -- acting with the current policy, no learning (the env runners' job):

   * ``SB3 SubprocVecEnv xN``: Stable-Baselines3's subprocess vector env, one process per
     env, the policy's ``predict`` in the trainer process -- the named baseline;
   * ``SB3 DummyVecEnv xN``: every env in the trainer process (tfgym's default);
   * ``RLlib 1 runner xN``, ``RLlib 2 runners xN/2``: RLlib's env runners (Ray actors, each
     with its own copy of the policy and a synchronous vector of envs), sampling in parallel.

2. **training** -- whole PPO iterations (sampling ``n_envs * n_steps`` actions, then
   ``n_epochs`` epochs of minibatch updates): SB3 PPO on the SubprocVecEnv and on the
   DummyVecEnv against RLlib PPO on 1 and 2 env runners, the same settings.

Usage (in the environment with the ray extra)::

    python benchmarks/bench_rllib.py            # writes runs/bench/bench_rllib.json
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import tyro
from _common import machine_info
from bench_env import Stepper, summarize, time_rounds
from tqdm import tqdm


@dataclass
class Args:
    """Benchmark options."""

    out: Path = Path("runs/bench/bench_rllib.json")
    """Where to write the JSON results."""
    scenes: str = "train"
    """Training scenes of every env."""
    n_envs: int = 4
    """Envs in all, in every measurement."""
    n_steps: int = 128
    """Steps per env per PPO iteration (an iteration = n_envs * n_steps actions)."""
    image_size: int = 128
    """Env rendering size (the oracle's image)."""
    steps: int = 3000
    """Env steps timed per sampling measurement, over all rounds."""
    train_iterations: int = 6
    """PPO iterations timed per training measurement, over all rounds."""
    rounds: int = 3
    """Interleaved timing rounds."""
    sampling: bool = True
    """Measure sampling."""
    training: bool = True
    """Measure training."""
    seed: int = 0


def _config(args: Args, **extra: Any) -> Any:
    from agents.config import PPOConfig

    return PPOConfig(
        scenes=args.scenes, n_envs=args.n_envs, n_steps=args.n_steps, image_size=args.image_size,
        batch_size=min(256, args.n_envs * args.n_steps), eval_every=0, image_every=0,
        checkpoint_every=0, seed=args.seed, **extra,
    )  # fmt: skip


def _warm_sb3(venv: Any, policy: Any, args: Args) -> None:
    """Every scene loaded in every env process (one reset + step per scene and env)."""
    from tfgym.scene import resolve_scenes

    names = list(resolve_scenes(args.scenes))
    for i in range(venv.num_envs):
        for name in names:
            venv.env_method("reset", options={"scene": name}, indices=i)
    obs = venv.reset()
    for _ in range(3):
        obs = venv.step(policy.predict(obs)[0])[0]


def sb3_sampler(args: Args, vec_env: str) -> Stepper:
    from agents.ppo import make_envs, make_ppo

    config = _config(args, vec_env=vec_env)
    venv = make_envs(config)
    model = make_ppo(config, venv)
    _warm_sb3(venv, model, args)
    state = {"obs": venv.reset()}

    def step() -> int:
        actions, _ = model.predict(state["obs"], deterministic=False)
        state["obs"] = venv.step(actions)[0]
        return args.n_envs

    name = f"SB3 {'SubprocVecEnv' if vec_env == 'subproc' else 'DummyVecEnv'} x{args.n_envs}"
    baseline = None if vec_env == "subproc" else f"SB3 SubprocVecEnv x{args.n_envs}"
    return Stepper(name, args.n_envs if vec_env == "subproc" else 1, baseline, step, venv.close)


def sb3_trainer(args: Args, vec_env: str) -> Stepper:
    from agents.ppo import make_envs, make_ppo

    config = _config(args, vec_env=vec_env)
    venv = make_envs(config)
    model = make_ppo(config, venv)
    _warm_sb3(venv, model, args)
    batch = args.n_envs * args.n_steps
    model.learn(batch, reset_num_timesteps=False)  # setup and one untimed iteration

    def step() -> int:
        model.learn(batch, reset_num_timesteps=False)
        return batch

    name = f"SB3 PPO, SubprocVecEnv x{args.n_envs}" if vec_env == "subproc" else (
        f"SB3 PPO, DummyVecEnv x{args.n_envs}"
    )  # fmt: skip
    baseline = None if vec_env == "subproc" else f"SB3 PPO, SubprocVecEnv x{args.n_envs}"
    return Stepper(name, args.n_envs if vec_env == "subproc" else 1, baseline, step, venv.close)


def _rllib_algo(args: Args, runners: int) -> Any:
    from ray.tune.registry import register_env

    from agents.rllib import ENV_NAME, make_env, rllib_config
    from tfgym.scene import resolve_scenes

    register_env(ENV_NAME, make_env)
    config = _config(args, engine="rllib", env_runners=runners)
    algo = rllib_config(config).build_algo()
    names = list(resolve_scenes(args.scenes))

    def warm(runner: Any) -> int:  # every scene in every env of the runner
        for env in runner.env.unwrapped.envs:
            for name in names:
                env.reset(options={"scene": name})
        return len(runner.sample(num_timesteps=3 * runner.num_envs, random_actions=True))

    algo.env_runner_group.foreach_env_runner(warm, local_env_runner=False)
    return algo


def rllib_sampler(args: Args, runners: int) -> Stepper:
    algo = _rllib_algo(args, runners)
    chunk = max(1, args.steps // args.rounds // 10 // runners)

    def sample(runner: Any) -> int:
        return sum(len(episode) for episode in runner.sample(num_timesteps=chunk))

    def step() -> int:
        return sum(algo.env_runner_group.foreach_env_runner(sample, local_env_runner=False))

    envs = -(-args.n_envs // runners)
    name = f"RLlib {runners} runner{'s' if runners > 1 else ''} x{envs}"
    return Stepper(name, runners, f"SB3 SubprocVecEnv x{args.n_envs}", step, algo.stop)


def rllib_trainer(args: Args, runners: int) -> Stepper:
    algo = _rllib_algo(args, runners)
    algo.train()  # one untimed iteration
    batch = args.n_envs * args.n_steps

    def step() -> int:
        algo.train()
        return batch

    name = f"RLlib PPO, {runners} runner{'s' if runners > 1 else ''}"
    return Stepper(name, runners, f"SB3 PPO, SubprocVecEnv x{args.n_envs}", step, algo.stop)


def _time(builders: list[Any], args: Args, what: str, steps: int) -> list[Stepper]:
    steppers = []
    try:
        for build in tqdm(builders, desc=f"{what}: setup", unit="config"):
            steppers.append(build())
        time_rounds(steppers, replace(args, steps=steps))
    finally:
        for s in steppers:
            s.close()
    return steppers


def main(args: Args) -> dict[str, Any]:
    import ray
    import torch

    from agents.rllib import init_ray

    init_ray(num_cpus=max(os.cpu_count() or 1, 3))
    record: dict[str, Any] = {
        "benchmark": "bench_rllib",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items()},
        "machine": machine_info(torch_threads=torch.get_num_threads(), ray=ray.__version__),
    }
    try:
        if args.sampling:
            steppers = _time(
                [
                    lambda: sb3_sampler(args, "subproc"),
                    lambda: sb3_sampler(args, "dummy"),
                    lambda: rllib_sampler(args, 1),
                    lambda: rllib_sampler(args, 2),
                ],
                args, "sampling", args.steps,
            )  # fmt: skip
            print(f"\nsampling with the policy, {args.n_envs} envs in all, scenes={args.scenes!r}")
            record["sampling"] = summarize(steppers)
        if args.training:
            batch = args.n_envs * args.n_steps
            steppers = _time(
                [
                    lambda: sb3_trainer(args, "subproc"),
                    lambda: sb3_trainer(args, "dummy"),
                    lambda: rllib_trainer(args, 1),
                    lambda: rllib_trainer(args, 2),
                ],
                args, "training", args.train_iterations * batch,
            )  # fmt: skip
            print(f"\nPPO training, iterations of {batch} actions, {args.n_envs} envs in all")
            record["training"] = summarize(steppers)
    finally:
        ray.shutdown()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2, default=float))
    print(f"wrote {args.out}")
    return record


if __name__ == "__main__":
    main(tyro.cli(Args))
