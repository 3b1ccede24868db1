"""PPO on Ray RLlib: TransferFunction-v0 on several env runners, locally or on a Ray cluster.

``pip install tfgym[ray]`` (Ray RLlib 2.60, which pins ``gymnasium==1.2.2``). The same
:class:`~agents.config.PPOConfig` as the Stable-Baselines3 engine (:mod:`agents.ppo`) trains
the same network (:class:`~agents.actor_critic.ActorCritic`, wrapped in
:class:`TfgymRLModule`) with RLlib's PPO on the new API stack; ``tfgym train-agent --engine
rllib`` is a thin command over :func:`train_rllib`. The run folder::

    out/
      policy.pt            the trained network (ActorCritic.load; no Ray needed to use it)
      rllib_checkpoint/    RLlib's own checkpoint (Algorithm.from_checkpoint)
      checkpoints/         policy_<steps>_steps.pt every checkpoint_every env steps
      tb/                  TensorBoard: rollout/, eval/, images/, perf/
      trace.csv            per iteration: mean reward, oracle score, held-out score
      config.json          the PPOConfig (with engine "rllib")

How the settings map: ``n_envs`` envs in all are spread over ``env_runners`` Ray actors
(``ceil(n_envs / env_runners)`` each); one PPO iteration trains on ``n_envs * n_steps``
actions, in minibatches of ``batch_size``, ``n_epochs`` times -- the SB3 engine's rollout.
RLlib's PPO is set to SB3's choices where they differ (no KL loss term, no value clipping,
value-loss coefficient 0.5, gradient norm 0.5, GAE lambda 0.95); advantages are standardised
by both. One-step episodes make ``gamma`` and ``lambda`` irrelevant anyway.

Where Ray runs: :func:`init_ray` connects to ``address`` (``--address``), else to
``$RAY_ADDRESS``, else starts a local Ray bound to 127.0.0.1 (nothing listens beyond
loopback) with as many logical CPUs as the runners need. Each env runner builds its envs
itself (:func:`make_env`): the oracle needs only the package and the scenes' cache; the reward
model is loaded in every runner from ``reward_model_path`` (the path must exist on every
node); the human backend connects every runner to the label queue at ``label_db`` (a
``postgresql://`` URL on a cluster) and shares one backend among the runner's envs.
"""

from __future__ import annotations

import copy
import inspect
import ipaddress
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import Any
from unittest import mock

import gymnasium as gym
import numpy as np
import ray
import torch
from gymnasium.wrappers import TransformReward
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.ppo import PPOConfig as RLlibPPOConfig
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.tune.registry import register_env

from agents.actor_critic import ActorCritic
from agents.config import PPOConfig, scene_list
from agents.ppo import affine_reward
from tfgym.env import TransferFunctionEnv
from tfgym.scoring import SceneScorer
from tfgym.wrappers import float_image_observation

__all__ = [
    "ENV_NAME",
    "RLlibRun",
    "TfgymRLModule",
    "init_ray",
    "make_env",
    "rllib_config",
    "train_rllib",
]

ENV_NAME = "tfgym-TransferFunction-rllib"
"""The name :func:`train_rllib` registers :func:`make_env` under with Ray Tune."""

_NET_KEYS = ("extractor", "features_dim", "net_arch", "log_std_init", "share_features")

_HUMAN_BACKENDS: dict[str, Any] = {}
"""The human backend of this process, by its settings (:func:`make_env`)."""

_ENV_PARAMS = frozenset(inspect.signature(TransferFunctionEnv.__init__).parameters) - {"self"}
_BACKEND_PARAMS = frozenset({"reward_backend", "reward_kwargs", "reward_model_path"})


def make_env(env_config: Mapping[str, Any]) -> gym.Env[Any, Any]:
    """One env of an env runner: TransferFunction-v0 with float32 [0, 1] HWC observations.

    Args:
        env_config: :class:`~tfgym.env.TransferFunctionEnv` keyword arguments (those of
            :meth:`agents.config.PPOConfig.env_kwargs`, backend options) plus
            ``reward_shift`` and ``reward_scale``; an RLlib ``EnvContext`` is such a mapping.

    With ``reward_backend="human"`` all envs of a process share one backend (one queue
    connection; in ``"async"`` mode one reward model and one trainer thread per runner).
    """
    kwargs = dict(env_config)
    shift = float(kwargs.pop("reward_shift", 0.0))
    scale = float(kwargs.pop("reward_scale", 1.0))
    env: gym.Env[Any, Any]
    if kwargs.get("reward_backend") == "human":
        backend_keys = sorted(k for k in kwargs if k not in _ENV_PARAMS or k in _BACKEND_PARAMS)
        key = repr([(k, kwargs[k]) for k in backend_keys])
        if key in _HUMAN_BACKENDS:
            kept = {k: v for k, v in kwargs.items() if k not in backend_keys}
            env = TransferFunctionEnv(**{**kept, "reward_backend": _HUMAN_BACKENDS[key]})
        else:
            first = TransferFunctionEnv(**kwargs)
            _HUMAN_BACKENDS[key] = first.backend
            env = first
    else:
        env = TransferFunctionEnv(**kwargs)
    if (shift, scale) != (0.0, 1.0):
        env = TransformReward(env, partial(affine_reward, shift=shift, scale=scale))
    return float_image_observation(_RunnerSeed(env, int(getattr(env_config, "worker_index", 0))))


class _RunnerSeed(gym.Wrapper[Any, Any, Any, Any]):
    """Reset seeds that differ between env runners.

    RLlib seeds runner ``k``'s vector env with ``seed + k``, whose sub-envs take
    ``seed + k + i``: runners 1 and 2 would share all but one of their envs' seeds, hence
    their scene streams. A seed ``s`` becomes ``SeedSequence([s, k])``'s, so every sub-env of
    every runner has its own stream (and a run stays reproducible).
    """

    def __init__(self, env: gym.Env[Any, Any], worker_index: int) -> None:
        super().__init__(env)
        self.worker_index = worker_index

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset, with the seed mixed with the runner's index."""
        if seed is not None:
            seed = int(np.random.SeedSequence([seed, self.worker_index]).generate_state(1)[0])
        return self.env.reset(seed=seed, options=options)


class TfgymRLModule(TorchRLModule, ValueFunctionAPI):
    """RLlib's view of :class:`~agents.actor_critic.ActorCritic` (SB3's policy network).

    ``model_config``: the :class:`ActorCritic` keyword arguments (``extractor``,
    ``features_dim``, ``net_arch``, ``log_std_init``, ``share_features``). Observations are
    float32 ``(batch, bins, bins, 1)`` in [0, 1] (:func:`make_env`); the action distribution
    is RLlib's diagonal Gaussian over ``[mean, log_std]``.
    """

    def setup(self) -> None:
        """Build the network for the observation and action spaces."""
        obs_space, action_space = self.observation_space, self.action_space
        if not (isinstance(obs_space, gym.spaces.Box) and isinstance(action_space, gym.spaces.Box)):
            raise TypeError(f"expected Box spaces, got {obs_space} and {action_space}")
        bins, action_dim = int(obs_space.shape[0]), int(action_space.shape[0])
        config: Any = self.model_config or {}
        given = config if isinstance(config, dict) else vars(config)  # RLlib adds its defaults
        self.net = ActorCritic(bins, action_dim, **{k: given[k] for k in _NET_KEYS if k in given})

    @staticmethod
    def _images(batch: Mapping[str, Any]) -> torch.Tensor:
        return batch[Columns.OBS].permute(0, 3, 1, 2)

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        mean, log_std = self.net.actor(self._images(batch))
        return {Columns.ACTION_DIST_INPUTS: torch.cat([mean, log_std.expand_as(mean)], dim=-1)}

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        """The value of each observation ``(batch,)``."""
        return self.net.critic(self._images(batch))


class _EpisodeSums(RLlibCallback):
    """Per-iteration sums of the episodes' rewards and oracle scores (``info``), and a count.

    Sums (reset every iteration, added up over the runners) give the exact mean over the
    iteration's actions; RLlib's ``episode_return_mean`` is smoothed over 100 episodes.
    """

    def on_episode_end(self, *, episode: Any, metrics_logger: Any = None, **kwargs: Any) -> None:
        if metrics_logger is None:
            return
        metrics_logger.log_value("tfgym_episodes", 1, reduce="sum")
        metrics_logger.log_value("tfgym_reward_sum", float(episode.get_return()), reduce="sum")
        infos = episode.get_infos(-1)
        score = infos.get("oracle_score") if isinstance(infos, Mapping) else None
        if score is not None and np.isfinite(score):
            metrics_logger.log_value("tfgym_oracle_episodes", 1, reduce="sum")
            metrics_logger.log_value("tfgym_oracle_sum", float(score), reduce="sum")


def _loopback(address: str) -> bool:
    """Whether a Ray address (``host:port``, ``ray://host:port``) names this machine's loopback."""
    host = address.split("://")[-1].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def init_ray(address: str | None = None, *, num_cpus: int | None = None) -> str:
    """Connect to a Ray cluster, or start a local Ray bound to 127.0.0.1 (module docstring).

    Returns:
        ``"cluster"`` or ``"local"`` (``"existing"`` when Ray was already initialised).
    """
    if ray.is_initialized():
        return "existing"
    address = address or os.environ.get("RAY_ADDRESS") or None
    # Ray turns a loopback node address into the machine's network address (so that other
    # machines could join), when it starts a node and when a driver joins one, and its servers
    # then listen there; only where clusters are off (its macOS/Windows default) does a node
    # stay on 127.0.0.1. A local run needs no other machine: start (or join, for a Ray
    # started on loopback) with clusters off.
    from ray._private import ray_constants

    local = address is None or _loopback(address)
    with mock.patch.object(ray_constants, "ENABLE_RAY_CLUSTER", not local):
        if address:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
            return "cluster"
        ray.init(
            _node_ip_address="127.0.0.1",
            num_cpus=num_cpus,
            include_dashboard=False,
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
    return "local"


def _runner_envs(config: PPOConfig) -> int:
    return max(1, math.ceil(config.n_envs / max(config.env_runners, 1)))


def rllib_config(config: PPOConfig, env_options: Mapping[str, Any] | None = None) -> RLlibPPOConfig:
    """RLlib's PPO config for a :class:`PPOConfig` (module docstring: how settings map).

    ``env_options``: further :class:`~tfgym.env.TransferFunctionEnv` keyword arguments of
    every runner's envs (e.g. the human backend's ``timeout_s``).
    """
    env_config = {
        **config.env_kwargs(),
        **dict(env_options or {}),
        "reward_shift": config.reward_shift,
        "reward_scale": config.reward_scale,
    }
    model = {
        "extractor": config.extractor,
        "features_dim": config.features_dim,
        "net_arch": list(config.net_arch),
        "log_std_init": config.log_std_init,
        "share_features": config.share_features,
    }
    batch = config.n_envs * config.n_steps
    return (
        RLlibPPOConfig()
        .environment(ENV_NAME, env_config=env_config)
        .framework("torch")
        .env_runners(
            num_env_runners=config.env_runners,
            num_envs_per_env_runner=_runner_envs(config),
            rollout_fragment_length="auto",
        )
        .learners(num_learners=0)
        .training(
            train_batch_size_per_learner=batch,
            minibatch_size=min(config.batch_size, batch),
            num_epochs=config.n_epochs,
            lr=config.learning_rate,
            entropy_coeff=config.ent_coef,
            clip_param=config.clip_range,
            use_kl_loss=False,
            vf_clip_param=float("inf"),
            vf_loss_coeff=0.5,
            grad_clip=0.5,
            lambda_=0.95,
            gamma=0.99,
        )
        .rl_module(rl_module_spec=RLModuleSpec(module_class=TfgymRLModule, model_config=model))
        .callbacks(_EpisodeSums)
        .debugging(seed=config.seed, log_level="WARN")
    )


class RLlibRun:
    """An RLlib training: the algorithm, its monitor rows and its network.

    Attributes:
        algo: RLlib's algorithm (None once :func:`train_rllib` stopped it).
        monitor_rows: one row per iteration (``timesteps``, ``reward_mean``, ...).
    """

    def __init__(self, algo: Algorithm | None, rows: list[dict[str, float]]) -> None:
        self.algo = algo
        self.monitor_rows = rows
        self._final: ActorCritic | None = None

    @property
    def policy(self) -> ActorCritic:
        """The network: the learner's live one while training, then a copy of the final one."""
        if self._final is not None:
            return self._final
        assert self.algo is not None
        module = self.algo.get_module()
        assert isinstance(module, TfgymRLModule)
        return module.net

    def finish(self, stop: bool) -> None:
        """Keep a copy of the final network; stop the algorithm (``stop``)."""
        self._final = copy.deepcopy(self.policy).eval()
        if stop and self.algo is not None:
            self.algo.stop()
            self.algo = None

    @property
    def num_timesteps(self) -> int:
        """Env steps sampled so far."""
        return int(self.monitor_rows[-1]["timesteps"]) if self.monitor_rows else 0


def _steps(result: Mapping[str, Any]) -> int:
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

    value = result.get(NUM_ENV_STEPS_SAMPLED_LIFETIME)
    if value is None:
        value = result.get(ENV_RUNNER_RESULTS, {}).get(NUM_ENV_STEPS_SAMPLED_LIFETIME, 0)
    return int(value)


class _Monitor:
    """Per iteration: the row, held-out scores, images, TensorBoard, trace and checkpoints."""

    def __init__(
        self, config: PPOConfig, out: Path | None, eval_best: Mapping[str, float] | None
    ) -> None:
        self.config, self.out, self.eval_best = config, out, eval_best
        self.writer: Any = None
        if out is not None:
            from torch.utils.tensorboard import SummaryWriter

            out.mkdir(parents=True, exist_ok=True)
            (out / "config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
            (out / "trace.csv").unlink(missing_ok=True)
            self.writer = SummaryWriter(str(out / "tb"))
        self.eval_scenes: tuple[str, ...] = ()
        if config.eval_scenes and config.eval_every:
            from tfgym.scene import resolve_scenes

            self.eval_scenes = tuple(resolve_scenes(scene_list(config.eval_scenes)))
        self.scorers: dict[str, SceneScorer] = {}
        self.last_checkpoint = 0

    def scorer(self, name: str) -> SceneScorer:
        if name not in self.scorers:
            self.scorers[name] = SceneScorer(name, self.config.settings)
        return self.scorers[name]

    def iteration(
        self, it: int, last: bool, result: Mapping[str, Any], seconds: float, run: RLlibRun
    ) -> dict[str, float]:
        from agents.callbacks import evaluate_policy, write_trace_row

        c = self.config
        steps = _steps(result)
        row: dict[str, float] = {"timesteps": float(steps)}
        row.update(_iteration_means(result.get("env_runners", {})))
        row["steps_per_s"] = c.n_envs * c.n_steps / seconds
        if self.eval_scenes and (it % c.eval_every == 0 or last):
            scorers = [self.scorer(s) for s in self.eval_scenes]
            row.update(evaluate_policy(run.policy, scorers, self.eval_best))
        if self.writer is not None:
            _log_row(self.writer, row, steps)
            if c.image_scenes and c.image_every and (it % c.image_every == 0 or last):
                self.images(run, steps)
            self.writer.flush()
        if self.out is not None:
            write_trace_row(self.out / "trace.csv", row)
            if c.checkpoint_every > 0 and steps - self.last_checkpoint >= c.checkpoint_every:
                run.policy.save(self.out / "checkpoints" / f"policy_{steps}_steps.pt")
                self.last_checkpoint = steps
        return row

    def images(self, run: RLlibRun, steps: int) -> None:
        from agents.callbacks import policy_image

        for name in self.config.image_scenes:
            rgb = policy_image(run.policy, self.scorer(name), self.config.display_size,
                               f"step {steps}")  # fmt: skip
            self.writer.add_image(f"images/{name}", rgb, steps, dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def train_rllib(
    config: PPOConfig,
    out_dir: str | Path | None = None,
    *,
    eval_best: Mapping[str, float] | None = None,
    env_options: Mapping[str, Any] | None = None,
    on_iteration: Callable[[dict[str, float]], None] | None = None,
    progress: bool = True,
    keep_ray: bool = False,
) -> RLlibRun:
    """Train RLlib's PPO with ``config.env_runners`` env runners (see the module docstring).

    Args:
        config: the settings (``engine`` is ignored: this is the RLlib engine).
        out_dir: the run folder (None: nothing written).
        eval_best: per-scene best oracle scores of the evaluation scenes (for the ratio).
        env_options: further env keyword arguments of every runner (:func:`rllib_config`).
        on_iteration: called with each iteration's row (timesteps, reward, oracle, ...).
        progress: a progress bar over env steps.
        keep_ray: leave the algorithm and Ray running afterwards (default: stop the
            algorithm; stop the local Ray this call started, or disconnect from the cluster
            it connected to; a Ray initialised before the call is left as it is).

    Returns:
        The :class:`RLlibRun`; its ``policy`` is also saved as ``out_dir/policy.pt``.
    """
    from tqdm.auto import tqdm

    config = replace(config, engine="rllib")
    out = None if out_dir is None else Path(out_dir)
    mode = init_ray(config.ray_address, num_cpus=max(os.cpu_count() or 1, config.env_runners + 1))
    register_env(ENV_NAME, make_env)
    monitor = _Monitor(config, out, eval_best)
    run = RLlibRun(rllib_config(config, env_options).build_algo(), [])
    batch = config.n_envs * config.n_steps
    iterations = max(1, math.ceil(config.total_timesteps / batch))
    bar = tqdm(total=iterations * batch, unit="step", disable=not progress, desc="rllib ppo")
    flushed = torch.set_flush_denormal(True)  # denormals make CPU convolutions slow
    try:
        for it in range(iterations):
            start = time.perf_counter()
            assert run.algo is not None
            result = run.algo.train()
            row = monitor.iteration(it, it == iterations - 1, result,
                                    time.perf_counter() - start, run)  # fmt: skip
            run.monitor_rows.append(row)
            if on_iteration is not None:
                on_iteration(row)
            bar.update(batch)
            shown = ("reward_mean", "eval_oracle_mean")
            bar.set_postfix({k: f"{row[k]:.3f}" for k in shown if k in row})
        if out is not None:
            run.policy.save(out / "policy.pt", engine="rllib", timesteps=run.num_timesteps)
            assert run.algo is not None
            run.algo.save_to_path(str((out / "rllib_checkpoint").resolve()))
    finally:
        if flushed:
            torch.set_flush_denormal(False)
        bar.close()
        monitor.close()
        run.finish(stop=not keep_ray)
        if not keep_ray and mode != "existing":
            ray.shutdown()  # a local Ray stops; from a cluster, the driver disconnects
    return run


def _iteration_means(runners: Mapping[str, Any]) -> dict[str, float]:
    """``reward_mean`` and ``oracle_mean`` of an iteration's episodes (:class:`_EpisodeSums`)."""
    out = {}
    for key, total, count in (
        ("reward_mean", "tfgym_reward_sum", "tfgym_episodes"),
        ("oracle_mean", "tfgym_oracle_sum", "tfgym_oracle_episodes"),
    ):
        n = float(runners.get(count, 0) or 0)
        if n > 0:
            out[key] = float(runners[total]) / n
            out.setdefault("episodes", n)
    return out


def _log_row(writer: Any, row: Mapping[str, float], step: int) -> None:
    names = {
        "reward_mean": "rollout/reward_mean",
        "oracle_mean": "rollout/oracle_score_mean",
        "eval_oracle_mean": "eval/oracle_score_mean",
        "eval_ratio_to_best": "eval/ratio_to_best",
        "steps_per_s": "perf/env_steps_per_s",
    }
    for key, tag in names.items():
        if key in row:
            writer.add_scalar(tag, row[key], step)
