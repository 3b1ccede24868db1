"""PPO (Stable-Baselines3) on TransferFunction-v0, against any reward backend.

:func:`train_ppo` builds the vectorised envs, the policy (:mod:`agents.policy`), the
callbacks (:mod:`agents.callbacks`: TensorBoard scalars and images, the held-out curve,
checkpoints, optionally the KL penalty toward a reference policy) and trains; everything
goes into one folder::

    out/
      model.zip            the trained SB3 PPO model (PPO.load)
      checkpoints/         model_<steps>_steps.zip every checkpoint_every env steps
      tb/                  TensorBoard (rollout/, eval/, images/, kl/, train/)
      trace.csv            per rollout: mean reward, oracle score, held-out score, KL
      config.json          the PPOConfig

One-step episodes: the advantage is ``r - V(s)``, so ``gamma`` and ``gae_lambda`` have no
effect and are left at SB3's defaults. ``tfgym train-agent`` is a thin command over
:func:`train_ppo`.

Example:
    >>> from agents.config import PPOConfig, scene_list
    >>> config = PPOConfig(total_timesteps=64, n_envs=2, n_steps=16, batch_size=32,
    ...                    image_size=32, features_dim=16, net_arch=(8,), eval_every=0)
    >>> model = train_ppo(config, progress=False)
    >>> model.num_timesteps
    64
"""

from __future__ import annotations

import json
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any, SupportsFloat

import torch
from gymnasium.wrappers import TransformReward
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from agents.callbacks import KLPenaltyCallback, MonitorCallback
from agents.config import PPOConfig, scene_list
from agents.policy import policy_kwargs
from tfgym.env import TransferFunctionEnv

__all__ = ["PPOConfig", "affine_reward", "make_envs", "make_ppo", "train_ppo"]


def affine_reward(reward: SupportsFloat, shift: float, scale: float) -> float:
    """``(reward - shift) / scale``: the config's reward standardisation (picklable)."""
    return (float(reward) - shift) / scale


def make_envs(config: PPOConfig) -> VecEnv:
    """The SB3 vector env of a config (seeded; each env its own scene stream).

    With ``backend="human"`` all envs share one backend (one label queue connection, one
    reward model and its retraining thread); it needs ``vec_env="dummy"``.
    """
    vec_cls = SubprocVecEnv if config.vec_env == "subproc" else DummyVecEnv
    wrapper: Any = None
    wrapper_kwargs: dict[str, Any] | None = None
    if (config.reward_shift, config.reward_scale) != (0.0, 1.0):
        wrapper = TransformReward
        func = partial(affine_reward, shift=config.reward_shift, scale=config.reward_scale)
        wrapper_kwargs = {"func": func}
    env_kwargs = config.env_kwargs()
    if config.backend == "human":
        # one backend for all envs: one queue connection, one reward model, one trainer thread
        if config.vec_env == "subproc":
            raise ValueError(
                "the human backend runs in the trainer's process (its queue connection and "
                "background threads cannot be copied into env workers): use vec_env='dummy'"
            )
        shared = TransferFunctionEnv(**env_kwargs).backend
        for key in ("db", "mode", "reward_model_path"):
            env_kwargs.pop(key, None)
        env_kwargs["reward_backend"] = shared
    return make_vec_env(
        TransferFunctionEnv,
        n_envs=config.n_envs,
        seed=config.seed,
        env_kwargs=env_kwargs,
        vec_env_cls=vec_cls,
        wrapper_class=wrapper,
        wrapper_kwargs=wrapper_kwargs,
    )


def make_ppo(config: PPOConfig, env: VecEnv, *, tensorboard_log: str | None = None) -> PPO:
    """A fresh SB3 PPO model with the config's policy on ``env``."""
    return PPO(
        "CnnPolicy",
        env,
        learning_rate=config.learning_rate,
        n_steps=config.n_steps,
        batch_size=config.batch_size,
        n_epochs=config.n_epochs,
        ent_coef=config.ent_coef,
        clip_range=config.clip_range,
        policy_kwargs=policy_kwargs(
            config.extractor,
            features_dim=config.features_dim,
            net_arch=config.net_arch,
            log_std_init=config.log_std_init,
            share_features=config.share_features,
        ),
        tensorboard_log=tensorboard_log,
        seed=config.seed,
        device=config.device,
        verbose=0,
    )


def _eval_scenes(config: PPOConfig) -> tuple[str, ...]:
    if not config.eval_scenes or not config.eval_every:
        return ()
    from tfgym.scene import resolve_scenes

    return tuple(resolve_scenes(scene_list(config.eval_scenes)))


def train_ppo(
    config: PPOConfig,
    out_dir: str | Path | None = None,
    *,
    init_policy: ActorCriticPolicy | None = None,
    reference: ActorCriticPolicy | None = None,
    eval_best: dict[str, float] | None = None,
    callbacks: list[BaseCallback] | None = None,
    progress: bool = True,
) -> PPO:
    """Train PPO on the config's envs (see module docstring for the folder it writes).

    Args:
        config: the settings.
        out_dir: the run folder (None: nothing written, no TensorBoard).
        init_policy: a policy whose weights start training (e.g. the SFT policy); its
            architecture must be the config's.
        reference: the frozen reference of the KL penalty (``config.kl_beta``); None: no
            penalty.
        eval_best: per-scene best oracle scores of the evaluation scenes (for the ratio).
        callbacks: further SB3 callbacks.
        progress: SB3's progress bar.

    Returns:
        The trained model (also saved as ``out_dir/model.zip``).
    """
    out = None if out_dir is None else Path(out_dir)
    env = make_envs(config)
    try:
        model = make_ppo(config, env, tensorboard_log=None if out is None else str(out / "tb"))
        if init_policy is not None:
            model.policy.load_state_dict(init_policy.state_dict())
        kl = None
        if reference is not None and config.kl_beta > 0:
            kl = KLPenaltyCallback(reference, config.kl_beta, target_kl=config.kl_target)
        monitor = MonitorCallback(
            config.settings,
            eval_scenes=_eval_scenes(config),
            eval_best=eval_best,
            eval_every=config.eval_every,
            image_scenes=config.image_scenes if out is not None else (),
            image_every=config.image_every,
            display_size=config.display_size,
            trace_path=None if out is None else out / "trace.csv",
            kl=kl,
        )
        chain: list[BaseCallback] = [] if kl is None else [kl]
        chain.append(monitor)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / "config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
            (out / "trace.csv").unlink(missing_ok=True)
            if config.checkpoint_every > 0:
                every = max(config.checkpoint_every // config.n_envs, 1)
                chain.append(CheckpointCallback(every, str(out / "checkpoints"), "model"))
        chain += callbacks or []
        # denormal floats make CPU convolutions several times slower: train with them flushed
        flushed = torch.set_flush_denormal(True)
        try:
            model.learn(
                config.total_timesteps,
                callback=CallbackList(chain),
                tb_log_name="ppo",
                progress_bar=progress,
            )
        finally:
            if flushed:
                torch.set_flush_denormal(False)
        model.monitor_rows = monitor.rows  # type: ignore[attr-defined]
        if out is not None:
            model.save(out / "model.zip")
    finally:
        env.close()
    return model
