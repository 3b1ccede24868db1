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

Reward backends (``record["reward_backends"]``), ``gym.make`` in one process, interleaved
rounds as above:

8. ``oracle``: the default backend (as (2));
9. ``reward_model``: the learned reward model with its scene-feature cache (the JH branches
   run once per scene, :mod:`reward_models.backend`);
10. ``reward_model, no cache``: the same checkpoint with ``cache_size=0`` (``model.predict``
    at every step, the named alternative).

Ratios: (9) and (10) against (8), and (9) against (10). The checkpoint is ``--reward-model``
or, by default, a randomly initialised ``--rm-preset`` model (a step's cost does not depend
on the weights). The oracle's info is computed at every step with either backend.

Vector autoreset (``record["vector_autoreset"]``), ``gym.make_vec`` with ``n_envs`` sub-envs
in one process:

11. ``make_vec, same-step``: the registered vector entry point (:mod:`tfgym.vector`), every
    vector step scores every sub-env;
12. ``make_vec sync, next-step``: ``vectorization_mode="sync"``, Gymnasium's default
    ``NEXT_STEP`` autoreset, where every other vector step is an empty reset step.

Here the rate counts useful steps (transitions that carry a reward: terminated ones); the
ratio is (11) against (12). Vector steps per second and rewards per vector step (per policy
call and rollout-buffer slot of an agent) are reported beside it: an empty reset step costs
the env little, but an agent still spends a policy call and a buffer slot on it.

Usage::

    python benchmarks/bench_env.py                       # writes runs/bench/bench_env.json
    python benchmarks/bench_env.py --steps 600 --n-envs 4
    python benchmarks/bench_env.py --reward-model runs/rm/rm.pt --torch-threads 1
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
    backends: bool = True
    """Measure the reward backends (oracle, reward model with and without its cache)."""
    reward_model: Path | None = None
    """Checkpoint of the reward-model rows (None: a random ``rm_preset`` model)."""
    rm_preset: str = "mask"
    """Architecture of the random reward model (``reward_models.config.RM_PRESETS``)."""
    vector_autoreset: bool = True
    """Measure ``gym.make_vec`` same-step vs next-step autoreset."""
    torch_threads: int | None = None
    """torch CPU threads for the whole run (None: torch's default); recorded in the JSON."""
    many_scenes: str = "train,phantom-10000+128"
    """Scenes of the many-scenes measurement (more than an env's 64 scorers; "" skips it)."""
    many_envs: int = 8
    """Envs of the SB3 ``DummyVecEnv`` of the many-scenes measurement (as PPO trains)."""


@dataclass
class Stepper:
    """A warmed-up env loop: ``step()`` does some env steps and returns how many."""

    name: str
    processes: int
    baseline: str | None
    step: Callable[[], int]
    close: Callable[[], None]
    rates: list[float] = field(default_factory=list)
    call_rates: list[float] = field(default_factory=list)
    """``step()`` calls per second in each round (vector steps for a vector env)."""


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
            done, calls, start = 0, 0, time.perf_counter()
            while done < per_round:
                done += s.step()
                calls += 1
            seconds = time.perf_counter() - start
            s.rates.append(done / seconds)
            s.call_rates.append(calls / seconds)
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


def summarize(steppers: list[Stepper], *, vector: bool = False) -> list[dict[str, Any]]:
    """Print the table of timed steppers (median rates, ratios of medians); return its rows."""
    median = {s.name: statistics.median(s.rates) for s in steppers}
    extra = f" {'vec steps/s':>11}" if vector else ""
    print(f"{'measurement':<26} {'procs':>5} {'steps/s':>9} {'min':>8} {'max':>8}{extra}  ratio")
    rows = []
    for s in steppers:
        ratio = None if s.baseline is None else median[s.name] / median[s.baseline]
        shown = "" if ratio is None else f"{ratio:.2f}x vs {s.baseline}"
        calls = statistics.median(s.call_rates)
        extra = f" {calls:>11.1f}" if vector else ""
        print(
            f"{s.name:<26} {s.processes:>5} {median[s.name]:>9.1f} {min(s.rates):>8.1f} "
            f"{max(s.rates):>8.1f}{extra}  {shown}"
        )
        row = {
            "name": s.name,
            "processes": s.processes,
            "baseline": s.baseline,
            "steps_per_second": median[s.name],
            "rates_per_round": s.rates,
            "ratio": ratio,
        }
        if vector:
            row["vector_steps_per_second"] = calls
        rows.append(row)
    return rows


def timed(builders: list[Callable[[], Stepper]], args: Args, what: str) -> list[Stepper]:
    """Build, warm up and time steppers in interleaved rounds; close them."""
    steppers = [build() for build in tqdm(builders, desc=f"{what}: setup", unit="env")]
    try:
        time_rounds(steppers, args)
    finally:
        for s in steppers:
            s.close()
    return steppers


def random_checkpoint(args: Args, folder: str) -> Path:
    """A randomly initialised ``rm_preset`` reward model, saved in ``folder``."""
    import torch

    from reward_models.checkpoint import save_checkpoint
    from reward_models.model import RewardModel, model_config

    torch.manual_seed(args.seed)
    path = Path(folder) / f"random-{args.rm_preset}.pt"
    return save_checkpoint(path, RewardModel(model_config(args.rm_preset)))


def reward_backends(args: Args) -> dict[str, Any]:
    """Oracle vs reward model with and without its scene-feature cache (gym.make)."""
    import gymnasium as gym

    from reward_models.checkpoint import read_checkpoint_info

    with tempfile.TemporaryDirectory(prefix="bench-env-rm-") as folder:
        path = args.reward_model or random_checkpoint(args, folder)
        info = read_checkpoint_info(path)
        rm = {"reward_backend": "reward_model", "reward_model_path": str(path)}

        def make(**kwargs: Any) -> Any:
            return gym.make(ENV_ID, scenes=args.scenes, **kwargs)

        builders = [
            lambda: single(make(), "oracle", args, None),
            lambda: single(make(**rm), "reward_model", args, "oracle"),
            lambda: single(
                make(**rm, reward_kwargs={"cache_size": 0}),
                "reward_model, no cache",
                args,
                "oracle",
            ),
        ]
        steppers = timed(builders, args, "reward backends")
    print(f"\nreward backends, gym.make, scenes={args.scenes!r}, one process")
    print(
        f"reward model: {'random ' + args.rm_preset if args.reward_model is None else path} "
        f"({info.model_config.variant} variant, {info.n_members} member(s))"
    )
    rows = summarize(steppers)
    rate = {r["name"]: r["steps_per_second"] for r in rows}
    cache_ratio = rate["reward_model"] / rate["reward_model, no cache"]
    print(f"reward_model with cache vs without: {cache_ratio:.2f}x")
    extra_ms = {  # what the model adds to a step that renders and scores with the oracle anyway
        name: 1e3 * (1 / rate[name] - 1 / rate["oracle"])
        for name in ("reward_model", "reward_model, no cache")
    }
    print(
        "reward model's ms per step over the oracle's: "
        + ", ".join(f"{name} {ms:.3f}" for name, ms in extra_ms.items())
    )
    met = rate["reward_model"] >= args.goal
    print(f"goal: >= {args.goal:.0f} steps/s with the reward model: {'met' if met else 'MISSED'}")
    return {
        "reward_model": "random " + args.rm_preset if args.reward_model is None else str(path),
        "model_variant": info.model_config.variant,
        "members": info.n_members,
        "results": rows,
        "cache_vs_no_cache_ratio": cache_ratio,
        "model_ms_per_step": extra_ms,
        "goal_met": met,
    }


def make_vec_stepper(args: Args, name: str, baseline: str | None, **vec: Any) -> Stepper:
    """``gym.make_vec`` in one process; ``step()`` returns the transitions that carry a reward."""
    import gymnasium as gym

    from tfgym.scene import scene_pool

    venv = gym.make_vec(ENV_ID, num_envs=args.n_envs, scenes=args.scenes, **vec)
    for scene in scene_pool(args.scenes).names:  # load every scene before timing
        venv.reset(seed=args.seed, options={"scene": scene})
    venv.reset(seed=args.seed)
    actions = _actions(args, int(np.prod(venv.single_action_space.shape or (0,))), args.n_envs)

    def step() -> int:
        terminated = venv.step(next(actions))[2]
        return int(np.count_nonzero(terminated))

    for _ in range(args.warmup):
        step()
    return Stepper(name, 1, baseline, step, venv.close)


def vector_autoreset(args: Args) -> dict[str, Any]:
    """``gym.make_vec`` same-step (tfgym's entry point) vs Gymnasium's next-step default."""
    builders = [
        lambda: make_vec_stepper(args, "make_vec sync, next-step", None, vectorization_mode="sync"),
        lambda: make_vec_stepper(args, "make_vec, same-step", "make_vec sync, next-step"),
    ]
    steppers = timed(builders, args, "vector autoreset")
    print(f"\ngym.make_vec, {args.n_envs} sub-envs in one process, scenes={args.scenes!r}")
    print("steps/s: useful steps (transitions carrying a reward); vec steps/s: step() calls")
    rows = summarize(steppers, vector=True)
    per_step = {r["name"]: r["steps_per_second"] / r["vector_steps_per_second"] for r in rows}
    print(
        "rewards per vector step (per policy call and rollout slot): "
        + ", ".join(f"{name} {n:.2f}" for name, n in per_step.items())
    )
    for row in rows:
        row["rewards_per_vector_step"] = per_step[row["name"]]
    return {"n_envs": args.n_envs, "results": rows, "ratio": rows[1]["ratio"]}


def many_scenes(args: Args) -> dict[str, Any]:
    """Many scenes in one process: renderers shared across scorers and envs vs private ones.

    8 envs of a ``DummyVecEnv`` (as PPO trains) over more scenes than an env keeps scorers:
    with the shared :data:`tfgym.scoring.RENDERER_CACHE` (default) a scene's renderer is built
    once per process; with the cache off (budget 0, the alternative) every new scorer builds
    its own, as before tfgym 0.5.0.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv

    from tfgym.env import TransferFunctionEnv
    from tfgym.scene import load_scene, resolve_scenes
    from tfgym.scoring import RENDERER_CACHE, ScoringSettings, shared_renderer

    names = list(resolve_scenes([n for n in args.many_scenes.split(",") if n]))
    s = ScoringSettings()
    budget = RENDERER_CACHE.max_bytes
    for name in tqdm(names, desc="many scenes: load", unit="scene"):  # scene cache warm
        scene = load_scene(name)
        shared_renderer(
            scene, image_size=s.image_size, view=s.view, shading=s.shading, device=s.device
        )

    def stepper(shared: bool) -> Stepper:
        venv = DummyVecEnv(
            [functools.partial(TransferFunctionEnv, names) for _ in range(args.many_envs)]
        )
        venv.seed(args.seed)
        venv.reset()
        actions = _actions(args, venv.action_space.shape[0], args.many_envs)

        def step() -> int:
            RENDERER_CACHE.max_bytes = budget if shared else 0
            venv.step(next(actions))
            return args.many_envs

        name = "shared renderers" if shared else "private renderers"
        return Stepper(name, 1, None if not shared else "private renderers", step, venv.close)

    steppers = timed([lambda: stepper(False), lambda: stepper(True)], args, "many scenes")
    RENDERER_CACHE.max_bytes = budget
    print(f"\n{len(names)} scenes, {args.many_envs} envs in a DummyVecEnv (one process)")
    rows = summarize(steppers)
    return {"scenes": len(names), "n_envs": args.many_envs, "results": rows,
            "ratio": rows[1]["ratio"]}  # fmt: skip


def main(args: Args) -> dict[str, Any]:
    import gymnasium as gym
    import torch

    from tfgym.env import TransferFunctionEnv

    if args.torch_threads is not None:
        torch.set_num_threads(args.torch_threads)
    builders = [
        lambda: single(TransferFunctionEnv(args.scenes), "unwrapped", args, None),
        lambda: single(gym.make(ENV_ID, scenes=args.scenes), "gym.make", args, "unwrapped"),
        lambda: gym_vector(args, "gym.make"),
        lambda: sb3_vector(args, "gym.make"),
    ]
    steppers = timed(builders, args, "oracle")
    print(f"\nTransferFunction-v0, scenes={args.scenes!r}, oracle backend, default settings")
    print(f"median of {args.rounds} interleaved rounds of {args.steps // args.rounds} steps")
    rows = summarize(steppers)
    rate = {r["name"]: r["steps_per_second"] for r in rows}
    met = rate["gym.make"] >= args.goal
    verdict = "met" if met else "MISSED"
    print(f"goal: >= {args.goal:.0f} steps/s in one process (gym.make): {verdict}")
    record = {
        "benchmark": "bench_env",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items()},
        "machine": machine_info(torch_threads=torch.get_num_threads()),
        "results": rows,
        "goal_steps_per_second": args.goal,
        "goal_met": met,
    }
    if args.procedural_resets > 0:
        record["procedural"] = procedural(args, rate["gym.make"])
    if args.backends:
        record["reward_backends"] = reward_backends(args)
    if args.vector_autoreset:
        record["vector_autoreset"] = vector_autoreset(args)
    if args.many_scenes:
        record["many_scenes"] = many_scenes(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    print(f"wrote {args.out}")
    return record


if __name__ == "__main__":
    main(tyro.cli(Args))
