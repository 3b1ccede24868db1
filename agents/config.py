"""Settings of the agents: PPO (:class:`PPOConfig`) and the RLHF pipeline (:class:`RLHFConfig`).

Light on purpose (no torch, no Stable-Baselines3): the command line builds its options from
these dataclasses' fields (:mod:`tfgym.cli.options`) without loading either.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from tfgym.scoring import ScoringSettings

__all__ = ["ENGINES", "EXTRACTOR_NAMES", "PPOConfig", "RLHFConfig", "scene_list"]

EXTRACTOR_NAMES = ("histogram", "nature")
"""Feature extractors of the PPO policy (:data:`agents.policy.EXTRACTORS`)."""

ENGINES = ("sb3", "rllib")
"""RL libraries that train the PPO agent: Stable-Baselines3 and Ray RLlib."""


def scene_list(scenes: str) -> list[str] | str:
    """A comma-separated list of scenes as a list; one name or set name as it is.

    Example:
        >>> scene_list("phantom-00,phantom-01"), scene_list("train")
        (['phantom-00', 'phantom-01'], 'train')
    """
    parts = [s.strip() for s in scenes.split(",") if s.strip()]
    return parts if len(parts) > 1 else scenes.strip()


def _help(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}


@dataclass(frozen=True)
class PPOConfig:
    """PPO on TransferFunction-v0 (defaults: what learned best here, see the README).

    Attributes:
        scenes: training scenes (a set name, ``"procedural"``, names).
        backend: ``"oracle"``, ``"reward_model"`` or ``"human"``.
        reward_model_path: the checkpoint of the ``reward_model`` backend (and of the
            ``human`` backend's ``async`` mode).
        label_db: the ``human`` backend's label queue (SQLite file or ``postgresql://`` URL).
        human_mode: the ``human`` backend's mode: ``"async"`` (the reward model's reward at
            once, retrained as people answer; for PPO) or ``"blocking"``.
        engine: ``"sb3"`` (Stable-Baselines3, :mod:`agents.ppo`) or ``"rllib"`` (Ray RLlib,
            :mod:`agents.rllib`; the same network and PPO settings).
        env_runners: the rllib engine's env runners (Ray actors); ``n_envs`` is spread over
            them.
        ray_address: the rllib engine's Ray cluster (None: ``$RAY_ADDRESS``, else a local Ray
            bound to 127.0.0.1).
        total_timesteps: env steps to train for.
        n_envs: parallel envs.
        vec_env: ``"dummy"`` (one process) or ``"subproc"``.
        n_steps: steps per env per rollout (rollout = ``n_envs * n_steps`` actions).
        batch_size: minibatch size of the PPO update.
        n_epochs: passes over a rollout per update.
        learning_rate: Adam learning rate.
        ent_coef: entropy bonus.
        clip_range: PPO's clip range.
        log_std_init: initial log standard deviation of the Gaussian policy.
        extractor: ``"histogram"`` (:class:`agents.policy.HistogramExtractor`) or ``"nature"``.
        features_dim: feature size of the extractor.
        share_features: the policy and the value function share one feature extractor
            (False: each has its own, so value learning cannot move the policy's features).
        net_arch: hidden layers of the policy and value heads.
        image_size: rendering size of the env (the oracle's image).
        seed: seeds the envs, the policy and PPO.
        eval_scenes: scenes of the held-out curve (``eval_every`` rollouts).
        eval_every: rollouts between held-out evaluations (0: none).
        image_scenes: scenes whose renderings go to TensorBoard.
        image_every: rollouts between images (0: none).
        display_size: working size of the logged renderings (256: display quality).
        checkpoint_every: env steps between checkpoints (0: none).
        kl_beta: KL penalty coefficient toward the reference policy (with one).
        kl_target: target KL of the adaptive coefficient (None: fixed ``kl_beta``).
        reward_shift: subtracted from the backend's reward before PPO sees it.
        reward_scale: the shifted reward is divided by it (standardises an RM's reward; the
            per-action trace records the standardised reward).
        device: torch device.
    """

    scenes: str = field(
        default="train", metadata=_help("training scenes (a set, a name, or names,comma,separated)")
    )
    backend: str = field(
        default="oracle",
        metadata=_help("reward backend", choices=("oracle", "reward_model", "human")),
    )
    reward_model_path: str | None = field(
        default=None, metadata=_help("reward-model checkpoint", flag="--reward-model")
    )
    label_db: str | None = field(
        default=None, metadata=_help("label queue of the human backend (file or URL)")
    )
    human_mode: str = field(
        default="async", metadata=_help("human backend mode", choices=("async", "blocking"))
    )
    engine: str = field(
        default="sb3",
        metadata=_help(
            "RL library: Stable-Baselines3, or Ray RLlib (pip install tfgym[ray])",
            choices=ENGINES,
        ),
    )
    env_runners: int = field(
        default=2, metadata=_help("RLlib env runners (Ray actors); the n_envs spread over them")
    )
    ray_address: str | None = field(
        default=None,
        metadata=_help(
            "Ray cluster address of the rllib engine",
            flag="--address",
            default_help="$RAY_ADDRESS, else a local Ray bound to 127.0.0.1",
        ),
    )
    total_timesteps: int = field(default=200_000, metadata=_help("env steps", flag="--steps"))
    n_envs: int = field(default=8, metadata=_help("parallel envs"))
    vec_env: str = field(
        default="dummy", metadata=_help("vector env", choices=("dummy", "subproc"))
    )
    n_steps: int = field(default=64, metadata=_help("steps per env per rollout"))
    batch_size: int = field(default=256, metadata=_help("PPO minibatch size"))
    n_epochs: int = field(default=4, metadata=_help("PPO epochs per rollout"))
    learning_rate: float = field(default=3e-4, metadata=_help("Adam learning rate", flag="--lr"))
    ent_coef: float = field(default=0.0, metadata=_help("entropy bonus"))
    clip_range: float = field(default=0.2, metadata=_help("PPO clip range"))
    log_std_init: float = field(default=-1.0, metadata=_help("initial log std of the policy"))
    extractor: str = field(
        default="histogram", metadata=_help("feature extractor", choices=EXTRACTOR_NAMES)
    )
    features_dim: int = field(default=128, metadata=_help("extractor features"))
    share_features: bool = field(
        default=False, metadata=_help("one feature extractor for the policy and the value")
    )
    net_arch: tuple[int, ...] = field(default=(64,), metadata=_help("hidden layers", cli=False))
    image_size: int = field(default=128, metadata=_help("env rendering size"))
    seed: int = field(default=0, metadata=_help("random seed"))
    eval_scenes: str | None = field(
        default="heldout", metadata=_help("scenes of the held-out curve")
    )
    eval_every: int = field(default=10, metadata=_help("rollouts between held-out evaluations"))
    image_scenes: tuple[str, ...] = field(
        default=("phantom-32", "headsq"), metadata=_help("scenes of logged images", cli=False)
    )
    image_every: int = field(default=25, metadata=_help("rollouts between logged images"))
    display_size: int = field(default=256, metadata=_help("working size of logged renderings"))
    checkpoint_every: int = field(default=50_000, metadata=_help("env steps between checkpoints"))
    kl_beta: float = field(default=0.02, metadata=_help("KL penalty toward the reference policy"))
    kl_target: float | None = field(default=None, metadata=_help("adaptive KL target"))
    reward_shift: float = field(default=0.0, metadata=_help("reward shift", cli=False))
    reward_scale: float = field(default=1.0, metadata=_help("reward scale", cli=False))
    device: str = field(default="cpu", metadata=_help("torch device"))

    def __post_init__(self) -> None:
        """Validate the settings."""
        for name in ("total_timesteps", "n_envs", "n_steps", "batch_size", "n_epochs"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.engine not in ENGINES:
            raise ValueError(f"unknown engine {self.engine!r}; valid: {list(ENGINES)}")
        if int(self.env_runners) < 0:
            raise ValueError(f"env_runners must be at least 0, got {self.env_runners}")
        if self.vec_env not in ("dummy", "subproc"):
            raise ValueError(f"vec_env must be 'dummy' or 'subproc', got {self.vec_env!r}")
        if self.extractor not in EXTRACTOR_NAMES:
            raise ValueError(
                f"unknown extractor {self.extractor!r}; valid: {list(EXTRACTOR_NAMES)}"
            )
        if not (np.isfinite(self.reward_scale) and self.reward_scale > 0):
            raise ValueError(f"reward_scale must be a finite number > 0, got {self.reward_scale}")
        if self.backend == "reward_model" and not self.reward_model_path:
            raise ValueError("backend='reward_model' needs reward_model_path")
        if self.backend == "human":
            if not self.label_db:
                raise ValueError(
                    "backend='human' needs label_db: the label queue people answer in "
                    "(serve it with `tfgym label --db ...`)"
                )
            if self.human_mode == "async" and not self.reward_model_path:
                raise ValueError(
                    "backend='human' in mode 'async' needs reward_model_path: the reward "
                    "model that answers at once and is retrained as people answer"
                )
        object.__setattr__(self, "net_arch", tuple(int(n) for n in self.net_arch))
        object.__setattr__(self, "image_scenes", tuple(self.image_scenes))

    @property
    def settings(self) -> ScoringSettings:
        """The env's scoring settings."""
        return ScoringSettings(image_size=self.image_size)

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of each :class:`tfgym.env.TransferFunctionEnv`."""
        kwargs: dict[str, Any] = {
            "scenes": scene_list(self.scenes),
            "reward_backend": self.backend,
            "image_size": self.image_size,
        }
        if self.backend == "reward_model":
            kwargs["reward_model_path"] = self.reward_model_path
        elif self.backend == "human":
            kwargs["db"] = self.label_db
            kwargs["mode"] = self.human_mode
            if self.reward_model_path:
                kwargs["reward_model_path"] = self.reward_model_path
        return kwargs


@dataclass(frozen=True)
class RLHFConfig:
    """The pipeline's settings (defaults: the full run; :meth:`short` is the README's).

    Attributes:
        labeler: ``"oracle"`` (the simulated labeler) or ``"human"`` (the labeling queue).
        labeler_preset: the simulated labeler's preset (:data:`tfgym.oracle.LABELER_PRESETS`).
        label_db: the label queue people answer in (``labeler="human"``): an SQLite file or
            a ``postgresql://`` URL; None: ``labels.sqlite`` in the run folder
            (:mod:`agents.human_labels`).
        label_poll_s: seconds between checks for new answers while the pipeline waits.
        train_scenes: scenes of every training phase.
        eval_scenes: held-out scenes of the evaluation (headsq is added).
        expert_budget: oracle evaluations of each train scene's expert search.
        experts_per_scene: expert actions kept per scene.
        constant_budget: candidate polygons of the best-constant search.
        sft_epochs: behaviour-cloning epochs.
        samples_per_scene: actions sampled per train scene for labeling.
        pairs: preference pairs in all (over the train scenes, per round).
        rm_variant: reward-model preset; rm_epochs; rm_ensemble: members.
        ppo_steps: PPO env steps per round; n_envs; ppo_lr; kl_beta; kl_target.
        rounds: labeling rounds (1: one RM, one PPO; more: the PPO policy's samples).
        best_budget: per-scene search budget of the evaluation's "best".
        image_size: env rendering size.
        display_size: working size of the renderings in figures and TensorBoard (256:
            display quality).
        seed: seeds every phase.
    """

    labeler: str = field(default="oracle", metadata=_help("labeler", choices=("oracle", "human")))
    labeler_preset: str = field(default="noisy", metadata=_help("simulated labeler preset"))
    label_db: str | None = field(
        default=None,
        metadata=_help(
            "label queue of labeler 'human' (SQLite file or postgresql:// URL; default: the "
            "run folder's labels.sqlite)"
        ),
    )
    label_poll_s: float = field(
        default=2.0, metadata=_help("seconds between checks for people's answers")
    )
    train_scenes: str = field(default="train", metadata=_help("training scenes"))
    eval_scenes: str = field(default="heldout", metadata=_help("held-out evaluation scenes"))
    expert_budget: int = field(default=600, metadata=_help("oracle evals per expert search"))
    experts_per_scene: int = field(default=8, metadata=_help("expert actions per scene"))
    constant_budget: int = field(default=600, metadata=_help("best-constant candidates"))
    sft_epochs: int = field(default=300, metadata=_help("behaviour-cloning epochs"))
    samples_per_scene: int = field(default=40, metadata=_help("actions per scene to label"))
    pairs: int = field(default=4000, metadata=_help("preference pairs per round"))
    rm_variant: str = field(default="mask", metadata=_help("reward-model preset"))
    rm_epochs: int = field(default=40, metadata=_help("reward-model epochs"))
    rm_ensemble: int = field(default=3, metadata=_help("reward-model ensemble members"))
    ppo_steps: int = field(default=100_000, metadata=_help("PPO env steps per round"))
    n_envs: int = field(default=8, metadata=_help("parallel envs"))
    ppo_lr: float = field(default=3e-4, metadata=_help("PPO learning rate"))
    kl_beta: float = field(default=0.1, metadata=_help("initial KL penalty toward the SFT policy"))
    kl_target: float | None = field(
        default=3.0, metadata=_help("target KL per action of the adaptive penalty (nats)")
    )
    rounds: int = field(default=1, metadata=_help("labeling rounds"))
    best_budget: int = field(default=3000, metadata=_help("per-scene best search budget"))
    image_size: int = field(default=128, metadata=_help("env rendering size"))
    display_size: int = field(default=256, metadata=_help("working size of the figures"))
    seed: int = field(default=0, metadata=_help("random seed"))

    def __post_init__(self) -> None:
        """Validate the settings."""
        if self.labeler not in ("oracle", "human"):
            raise ValueError(f"labeler must be 'oracle' or 'human', got {self.labeler!r}")
        if not (np.isfinite(self.label_poll_s) and self.label_poll_s > 0):
            raise ValueError(f"label_poll_s must be a number > 0, got {self.label_poll_s}")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int) and not isinstance(value, bool) and f.name != "seed":
                if value < 1:
                    raise ValueError(f"{f.name} must be at least 1, got {value}")

    @classmethod
    def short(cls, **overrides: Any) -> RLHFConfig:
        """The README's few-minute version of the pipeline (tiny budgets everywhere)."""
        small: dict[str, Any] = {
            "expert_budget": 160,
            "experts_per_scene": 4,
            "constant_budget": 96,
            "sft_epochs": 200,
            "samples_per_scene": 24,
            "pairs": 1200,
            "rm_epochs": 15,
            "rm_ensemble": 2,
            "ppo_steps": 6000,
            "best_budget": 400,
            "image_size": 64,
        }
        small.update(overrides)
        return cls(**small)
