"""Benchmark: env steps per second of TransferFunction-v0 with the oracle backend.

Measured in one run, at the env's default configuration (scenes ``"train"``, 64-voxel working
volumes, 128 px images, 64-bin histograms, oracle reward), each loop doing ``reset`` + ``step``
with pre-drawn random actions:

1. ``unwrapped``: ``TransferFunctionEnv`` used directly, one process;
2. ``gym.make``: the same env through ``gym.make`` (order enforcing and passive checker
   wrappers), one process -- the ratio to (1) is the wrappers' cost;
3. ``AsyncVectorEnv xN``: gymnasium's subprocess vector env (same-step autoreset), N
   processes -- the ratio to (2) is the speed-up from processes;
4. ``SubprocVecEnv xN``: Stable-Baselines3's subprocess vector env (what PPO uses), N
   processes, ratio to (2).

All four are built and warmed up first (every scene loaded and the renderer compiled, in
every process); then the timing runs in ``rounds`` interleaved rounds (1, 2, 3, 4, 1, 2, ...),
each measurement taking ``steps / rounds`` steps per round, so that a change of machine load
hits all of them alike. The table reports the median rate over the rounds and the ratios of
medians. Steps per second count env transitions: one vector step of N envs is N steps.

Then the ``"procedural"`` set (a fresh phantom seed at each reset, so every reset builds a
new scene), through ``gym.make`` in one process, ``procedural_resets`` reset + step loops
from the same env seed, hence the same phantoms, in a temporary disk cache:

5. ``cold disk cache``: each reset generates its phantom and writes it to the disk cache;
6. ``warm disk cache``: the same seeds again, each volume read from the disk cache;
7. ``no disk cache`` (``TFGYM_CACHE_DIR=""``): the same seeds, generated, nothing written.

Ratios are against (7), and (6) against the in-memory default set (2). A breakdown of one
warm reset (volume read, scene build, scorer build) and the generation time follow.

Usage::

    python benchmarks/bench_env.py                       # writes runs/bench/bench_env.json
    python benchmarks/bench_env.py --steps 600 --n-envs 4
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tyro
from _common import machine_info
from tqdm import tqdm

ENV_ID = "tfgym:TransferFunction-v0"


@dataclass
class Args:
    """Benchmark options."""

    out: Path = Path("runs/bench/bench_env.json")
    """Where to write the JSON results."""
    scenes: str = "train"
    """Scene set (or scene) of the env."""
    steps: int = 2000
    """Env steps timed per measurement, over all rounds."""
    rounds: int = 5
    """Interleaved timing rounds; the table shows the median rate."""
    warmup: int = 20
    """Untimed steps per process after every scene is loaded."""
    n_envs: int = 2
    """Processes of the vector envs."""
    goal: float = 1000.0
    """Target steps/s of the one-process ``gym.make`` env."""
    seed: int = 0
    """Seed of env resets and of the random actions."""
    procedural_resets: int = 24
    """Reset + step loops timed on the procedural set per measurement (0: skip it)."""


@dataclass
class Stepper:
    """A warmed-up env loop: ``step()`` does some env steps and returns how many."""

    name: str
    processes: int
    baseline: str | None
    step: Callable[[], int]
    close: Callable[[], None]
    rates: list[float] = field(default_factory=list)


def _actions(args: Args, dim: int, n: int) -> Iterator[np.ndarray]:
    """An endless cycle of pre-drawn actions ``(n, dim)`` (n = envs per step)."""
    rng = np.random.default_rng(args.seed)
    pool = rng.uniform(-1, 1, size=(256, n, dim)).astype(np.float32)
    while True:
        yield from pool


def single(env: Any, name: str, args: Args, baseline: str | None) -> Stepper:
    """reset + step loop on one env (wrapped or not), in this process."""
    for scene in env.unwrapped.scene_pool.names:  # load every scene before timing
        env.reset(seed=args.seed, options={"scene": scene})
        env.step(env.action_space.sample())
    actions = _actions(args, env.action_space.shape[0], 1)
    env.reset(seed=args.seed)

    def step() -> int:
        env.step(next(actions)[0])
        env.reset()
        return 1

    for _ in range(args.warmup):
        step()
    return Stepper(name, 1, baseline, step, env.close)


def gym_vector(args: Args, baseline: str) -> Stepper:
    """gymnasium ``AsyncVectorEnv`` with same-step autoreset."""
    import gymnasium as gym
    from gymnasium.vector import AsyncVectorEnv, AutoresetMode

    from tfgym.scene import scene_pool

    make = functools.partial(gym.make, ENV_ID, scenes=args.scenes)
    venv = AsyncVectorEnv(
        [make] * args.n_envs, autoreset_mode=AutoresetMode.SAME_STEP, context="forkserver"
    )
    for scene in scene_pool(args.scenes).names:
        venv.reset(seed=args.seed, options={"scene": scene})
    venv.reset(seed=args.seed)
    actions = _actions(args, int(np.prod(venv.single_action_space.shape or (0,))), args.n_envs)

    def step() -> int:
        venv.step(next(actions))
        return args.n_envs

    for _ in range(args.warmup):
        step()
    return Stepper(f"AsyncVectorEnv x{args.n_envs}", args.n_envs, baseline, step, venv.close)


def sb3_vector(args: Args, baseline: str) -> Stepper:
    """Stable-Baselines3 ``SubprocVecEnv`` (auto-resets in the same step)."""
    import gymnasium as gym
    from stable_baselines3.common.vec_env import SubprocVecEnv

    from tfgym.scene import scene_pool

    make = functools.partial(gym.make, ENV_ID, scenes=args.scenes)
    venv = SubprocVecEnv([make] * args.n_envs, start_method="forkserver")
    venv.seed(args.seed)
    for scene in scene_pool(args.scenes).names:
        venv.set_options({"scene": scene})
        venv.reset()
    venv.set_options({})
    venv.reset()
    actions = _actions(args, int(np.prod(venv.action_space.shape or (0,))), args.n_envs)

    def step() -> int:
        venv.step(next(actions))
        return args.n_envs

    for _ in range(args.warmup):
        step()
    return Stepper(f"SubprocVecEnv x{args.n_envs}", args.n_envs, baseline, step, venv.close)


def time_rounds(steppers: list[Stepper], args: Args) -> None:
    """Interleaved timing: each round runs every stepper for ``steps / rounds`` steps."""
    per_round = max(1, args.steps // args.rounds)
    bar = tqdm(total=args.rounds * len(steppers), desc="timing", unit="run")
    for _ in range(args.rounds):
        for s in steppers:
            done, start = 0, time.perf_counter()
            while done < per_round:
                done += s.step()
            s.rates.append(done / (time.perf_counter() - start))
            bar.update(1)
    bar.close()


@contextlib.contextmanager
def cache_dir(value: str) -> Iterator[None]:
    """Set ``TFGYM_CACHE_DIR`` (read at each cache access) for the block."""
    saved = os.environ.get("TFGYM_CACHE_DIR")
    os.environ["TFGYM_CACHE_DIR"] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TFGYM_CACHE_DIR")
        else:
            os.environ["TFGYM_CACHE_DIR"] = saved


def procedural_loop(args: Args) -> dict[str, Any]:
    """``procedural_resets`` reset + step loops of a new procedural env, from ``args.seed``."""
    import gymnasium as gym

    env = gym.make(ENV_ID, scenes="procedural")
    actions = _actions(args, int(np.prod(env.action_space.shape or (0,))), 1)
    resets, loops, scenes = [], [], []
    for i in range(args.procedural_resets):
        start = time.perf_counter()
        _, info = env.reset(seed=args.seed if i == 0 else None)
        reset = time.perf_counter()
        env.step(next(actions)[0])
        resets.append(reset - start)
        loops.append(time.perf_counter() - start)
        scenes.append(info["scene"])
    env.close()
    return {
        "steps_per_second": len(loops) / sum(loops),
        "reset_s_median": statistics.median(resets),
        "reset_s_max": max(resets),
        "scenes": scenes,
    }


def reset_breakdown(args: Args, scenes: list[str]) -> dict[str, float]:
    """Median seconds of the parts of a warm procedural reset, and of a generation."""
    from tfgym.cache import cached_phantom
    from tfgym.phantoms import make_phantom
    from tfgym.scene import Scene, phantom_seed
    from tfgym.scoring import SceneScorer, ScoringSettings

    parts: dict[str, list[float]] = {k: [] for k in ("read", "scene", "scorer", "generate")}
    for name in scenes[: max(3, min(8, len(scenes)))]:
        seed = phantom_seed(name)
        assert seed is not None
        start = time.perf_counter()
        volume = cached_phantom(seed, size=64)
        parts["read"].append(time.perf_counter() - start)
        start = time.perf_counter()
        scene = Scene.from_volume(volume, name=name)
        parts["scene"].append(time.perf_counter() - start)
        start = time.perf_counter()
        SceneScorer(scene, ScoringSettings()).score(np.zeros(8, np.float32))
        parts["scorer"].append(time.perf_counter() - start)
        start = time.perf_counter()
        make_phantom(seed, size=64)
        parts["generate"].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in parts.items()}


def procedural(args: Args, default_rate: float) -> dict[str, Any]:
    """The procedural set with a cold, a warm and no disk cache (see the module docstring)."""
    print("\nscenes='procedural' (a fresh phantom seed at each reset), gym.make, one process")
    with tempfile.TemporaryDirectory(prefix="bench-env-cache-") as folder:
        with cache_dir(folder):
            cold = procedural_loop(args)
            warm = procedural_loop(args)
            breakdown = reset_breakdown(args, warm["scenes"])
        with cache_dir(""):
            off = procedural_loop(args)
    assert cold["scenes"] == warm["scenes"] == off["scenes"]
    runs = [("no disk cache", off), ("cold disk cache", cold), ("warm disk cache", warm)]
    print(f"{args.procedural_resets} reset + step loops each, the same seeds in each")
    print(f"{'measurement':<20} {'steps/s':>9} {'reset ms':>9} {'max ms':>8}  ratio")
    rows = []
    for name, run in runs:
        ratio = run["steps_per_second"] / off["steps_per_second"]
        shown = "" if run is off else f"{ratio:.2f}x vs no disk cache"
        print(
            f"{name:<20} {run['steps_per_second']:>9.1f} {1e3 * run['reset_s_median']:>9.1f} "
            f"{1e3 * run['reset_s_max']:>8.1f}  {shown}"
        )
        row = {k: v for k, v in run.items() if k != "scenes"}
        rows.append({"name": name, **row, "baseline": None if run is off else "no disk cache"})
        rows[-1]["ratio"] = None if run is off else ratio
    vs_default = warm["steps_per_second"] / default_rate
    print(f"warm disk cache vs the default set in memory (gym.make): {vs_default:.4f}x")
    print(
        "one warm reset: read volume {read:.1f} ms + build scene {scene:.1f} ms + build scorer "
        "and score {scorer:.1f} ms; generating the volume takes {generate:.1f} ms".format(
            **{k: 1e3 * v for k, v in breakdown.items()}
        )
    )
    return {
        "resets": args.procedural_resets,
        "results": rows,
        "warm_vs_default_ratio": vs_default,
        "warm_reset_breakdown_s": breakdown,
    }


def main(args: Args) -> dict[str, Any]:
    import gymnasium as gym

    from tfgym.env import TransferFunctionEnv

    builders = [
        lambda: single(TransferFunctionEnv(args.scenes), "unwrapped", args, None),
        lambda: single(gym.make(ENV_ID, scenes=args.scenes), "gym.make", args, "unwrapped"),
        lambda: gym_vector(args, "gym.make"),
        lambda: sb3_vector(args, "gym.make"),
    ]
    steppers = [build() for build in tqdm(builders, desc="setup + warm-up", unit="env")]
    try:
        time_rounds(steppers, args)
    finally:
        for s in steppers:
            s.close()
    median = {s.name: statistics.median(s.rates) for s in steppers}
    rows = []
    print(f"\nTransferFunction-v0, scenes={args.scenes!r}, oracle backend, default settings")
    print(f"median of {args.rounds} interleaved rounds of {args.steps // args.rounds} steps")
    print(f"{'measurement':<20} {'procs':>5} {'steps/s':>9} {'min':>8} {'max':>8}  ratio")
    for s in steppers:
        ratio = None if s.baseline is None else median[s.name] / median[s.baseline]
        shown = "" if ratio is None else f"{ratio:.2f}x vs {s.baseline}"
        print(
            f"{s.name:<20} {s.processes:>5} {median[s.name]:>9.1f} {min(s.rates):>8.1f} "
            f"{max(s.rates):>8.1f}  {shown}"
        )
        rows.append(
            {
                "name": s.name,
                "processes": s.processes,
                "baseline": s.baseline,
                "steps_per_second": median[s.name],
                "rates_per_round": s.rates,
                "ratio": ratio,
            }
        )
    met = median["gym.make"] >= args.goal
    verdict = "met" if met else "MISSED"
    print(f"goal: >= {args.goal:.0f} steps/s in one process (gym.make): {verdict}")
    record = {
        "benchmark": "bench_env",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items()},
        "machine": machine_info(),
        "results": rows,
        "goal_steps_per_second": args.goal,
        "goal_met": met,
    }
    if args.procedural_resets > 0:
        record["procedural"] = procedural(args, median["gym.make"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    print(f"wrote {args.out}")
    return record


if __name__ == "__main__":
    main(tyro.cli(Args))
