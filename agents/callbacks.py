"""Stable-Baselines3 callbacks: TensorBoard monitoring, held-out curves and the KL penalty.

* :class:`MonitorCallback` -- per rollout, the mean reward (the backend's, whatever it is)
  and the oracle's score of the *same* actions from ``info["oracle_score"]``; every
  ``eval_every`` rollouts the deterministic policy's oracle score on evaluation scenes (one
  forward pass each; held-out scans give the learning curve that counts); every
  ``image_every`` rollouts display-quality renderings of the current policy's TFs, each
  above its scene's joint histogram with the chosen polygon drawn on it. Every row is also
  kept in :attr:`MonitorCallback.rows` and written to ``trace.csv``, and every action's
  reward and oracle score to ``actions.npz`` (the reward-hacking report reads both).
* :class:`KLPenaltyCallback` -- the KL penalty toward a reference policy (the SFT policy)
  of Ziegler et al. (2020), in the reward: after each rollout the stored rewards become
  ``r - beta * (log pi(a|s) - log pi_ref(a|s))`` for the sampled action ``a`` (a one-sample
  estimate of ``KL(pi || pi_ref)`` at ``s``), and returns and advantages are recomputed.
  ``beta`` is fixed, or adapted toward a target KL with Ziegler et al.'s proportional
  controller ``beta <- beta * (1 + clip((KL - target) / target, -0.2, 0.2) * n / horizon)``.
"""

from __future__ import annotations

import copy
import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Image
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy

from tfgym.scoring import SceneScorer, ScoringSettings

__all__ = [
    "TRACE_FIELDS",
    "KLPenaltyCallback",
    "MonitorCallback",
    "evaluate_policy",
    "policy_actions",
    "policy_image",
    "write_trace_row",
]

_NOT_TEXT = ("stdout", "log", "json", "csv")


def policy_actions(policy: Any, observations: np.ndarray) -> np.ndarray:
    """Deterministic actions of an SB3 model or policy (anything with ``predict``), clipped.

    Returns:
        float32 ``(n, action_dim)`` in [-1, 1].
    """
    actions, _ = policy.predict(np.asarray(observations), deterministic=True)
    return np.clip(np.asarray(actions, dtype=np.float32), -1.0, 1.0)


TRACE_FIELDS = (
    "timesteps", "reward_mean", "oracle_mean", "eval_oracle_mean", "eval_ratio_to_best",
    "kl_mean", "kl_beta",
)  # fmt: skip
"""The columns of a training run's ``trace.csv`` (a row leaves out what it does not have)."""


def evaluate_policy(
    policy: Any, scorers: Sequence[SceneScorer], best: Mapping[str, float] | None = None
) -> dict[str, float]:
    """The oracle's mean score of a policy's deterministic TFs on scenes (one pass each).

    Args:
        policy: anything with SB3's ``predict`` (an SB3 model, an
            :class:`~agents.actor_critic.ActorCritic`).
        scorers: the scenes' scorers.
        best: per-scene best-known scores; when every scene has one (> 0), the mean ratio to
            them is returned as well.

    Returns:
        ``eval_oracle_mean`` and, with ``best``, ``eval_ratio_to_best``.
    """
    actions = policy_actions(policy, np.stack([s.observation for s in scorers]))
    scores = np.array(
        [float(sc.score(a).oracle_score[0]) for sc, a in zip(scorers, actions, strict=True)]
    )
    out = {"eval_oracle_mean": float(scores.mean())}
    known = [(best or {}).get(s.name) for s in scorers]
    if all(b is not None and b > 0 for b in known):
        out["eval_ratio_to_best"] = float(np.mean(scores / np.asarray(known, dtype=np.float64)))
    return out


def policy_image(policy: Any, scorer: SceneScorer, display_size: int, title: str) -> np.ndarray:
    """RGB ``(h, w, 3)``: the display rendering of a policy's TF above the JH with its polygon."""
    from tfgym.display import display_figure, display_scene, render_display
    from tfgym.figures import figure_to_rgb

    action = policy_actions(policy, scorer.observation[None])
    score = float(scorer.score(action).oracle_score[0])
    shown = display_scene(scorer.name, working_size=display_size)
    images = render_display(
        shown, action, views=("front",), working_size=display_size, settings=scorer.settings
    )
    fig = display_figure(
        images, [f"{scorer.name}: oracle {score:.3f}"], views=("front",), scene=scorer.scene,
        actions=action, suptitle=title,
    )  # fmt: skip
    return figure_to_rgb(fig)


def write_trace_row(path: Path, row: Mapping[str, float]) -> None:
    """Append a row to a ``trace.csv`` (:data:`TRACE_FIELDS`; the header when it is new)."""
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=TRACE_FIELDS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


class MonitorCallback(BaseCallback):
    """Mean reward, oracle score, held-out curve and images to TensorBoard (module docstring).

    Args:
        settings: the env's scoring settings (to evaluate and render the policy's TFs).
        eval_scenes: scenes for the deterministic evaluation (e.g. the held-out set).
        eval_best: per-scene best-known oracle scores; with them the callback also logs the
            mean ratio to the best (``eval/ratio_to_best``).
        eval_every: rollouts between evaluations (0: never).
        image_scenes: scenes whose renderings are logged.
        image_every: rollouts between images (0: never).
        display_size: working size of the display renderings (256 = display quality).
        trace_path: CSV file the rows are appended to (None: kept in memory only).
        kl: the run's :class:`KLPenaltyCallback` (its latest KL and beta join each row; put
            it before this callback in the ``CallbackList``).
    """

    def __init__(
        self,
        settings: ScoringSettings,
        *,
        eval_scenes: Sequence[str] = (),
        eval_best: Mapping[str, float] | None = None,
        eval_every: int = 5,
        image_scenes: Sequence[str] = (),
        image_every: int = 20,
        display_size: int = 256,
        trace_path: str | Path | None = None,
        kl: KLPenaltyCallback | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        self.kl = kl
        self.settings = settings
        self.eval_scenes = tuple(eval_scenes)
        self.eval_best = dict(eval_best or {})
        self.eval_every = int(eval_every)
        self.image_scenes = tuple(image_scenes)
        self.image_every = int(image_every)
        self.display_size = int(display_size)
        self.trace_path = None if trace_path is None else Path(trace_path)
        self.rows: list[dict[str, float]] = []
        self._rewards: list[float] = []
        self._oracle: list[float] = []
        self._rollouts = 0
        self._per_action: list[tuple[float, float, float]] = []
        self._scorers: dict[str, SceneScorer] = {}

    # -- collection ----------------------------------------------------------------------------
    def _on_step(self) -> bool:
        rewards = np.asarray(self.locals.get("rewards", ()), dtype=np.float64).reshape(-1)
        infos = self.locals.get("infos", ())
        for r, info in zip(rewards, infos, strict=False):
            self._rewards.append(float(r))
            oracle = float(info.get("oracle_score", np.nan))
            if np.isfinite(oracle):
                self._oracle.append(oracle)
            self._per_action.append((float(self.num_timesteps), float(r), oracle))
        return True

    @property
    def per_action(self) -> np.ndarray:
        """float64 ``(n, 3)``: timestep, reward and oracle score of every action played."""
        return np.asarray(self._per_action, dtype=np.float64).reshape(-1, 3)

    def _on_rollout_end(self) -> None:
        self._rollouts += 1
        row: dict[str, float] = {"timesteps": float(self.num_timesteps)}
        if self._rewards:
            row["reward_mean"] = float(np.mean(self._rewards))
            self.logger.record("rollout/reward_mean", row["reward_mean"])
        if self._oracle:
            row["oracle_mean"] = float(np.mean(self._oracle))
            self.logger.record("rollout/oracle_score_mean", row["oracle_mean"])
        self._rewards.clear()
        self._oracle.clear()
        if self.kl is not None and self.kl.history:
            row["kl_mean"], row["kl_beta"] = self.kl.history[-1][1:]
        if self.eval_scenes and self.eval_every and (self._rollouts - 1) % self.eval_every == 0:
            row.update(self.evaluate())
        if self.image_scenes and self.image_every and (self._rollouts - 1) % self.image_every == 0:
            self.log_images()
        self.rows.append(row)
        self._write(row)

    def _on_training_end(self) -> None:
        if self.trace_path is not None:
            np.savez_compressed(self.trace_path.with_name("actions.npz"), actions=self.per_action)
        if self.eval_scenes and self.eval_every:
            row = {"timesteps": float(self.num_timesteps), **self.evaluate()}
            self.rows.append(row)
            self._write(row)

    # -- evaluation and images -----------------------------------------------------------------
    def _scorer(self, scene: str) -> SceneScorer:
        if scene not in self._scorers:
            self._scorers[scene] = SceneScorer(scene, self.settings)
        return self._scorers[scene]

    def evaluate(self) -> dict[str, float]:
        """Oracle scores of the deterministic policy's TFs on the evaluation scenes."""
        scorers = [self._scorer(s) for s in self.eval_scenes]
        out = evaluate_policy(self.model, scorers, self.eval_best)
        self.logger.record("eval/oracle_score_mean", out["eval_oracle_mean"])
        if "eval_ratio_to_best" in out:
            self.logger.record("eval/ratio_to_best", out["eval_ratio_to_best"])
        return out

    def log_images(self) -> None:
        """Display renderings of the policy's TFs above the JH with the polygon, per scene."""
        for name in self.image_scenes:
            image = policy_image(
                self.model, self._scorer(name), self.display_size, f"step {self.num_timesteps}"
            )
            self.logger.record(f"images/{name}", Image(image, "HWC"), _NOT_TEXT)

    def _write(self, row: dict[str, float]) -> None:
        if self.trace_path is not None:
            write_trace_row(self.trace_path, row)


class KLPenaltyCallback(BaseCallback):
    """The KL penalty toward a reference policy, in the reward (see module docstring).

    Args:
        reference: the frozen reference policy (the SFT policy), same spaces as the model's.
        beta: the penalty's initial coefficient.
        target_kl: with a value, ``beta`` is adapted toward this mean KL per action
            (Ziegler et al.'s controller, horizon ``horizon`` env steps); None: fixed beta.
        horizon: the controller's horizon in env steps.
    """

    def __init__(
        self,
        reference: ActorCriticPolicy,
        beta: float = 0.05,
        *,
        target_kl: float | None = None,
        horizon: int = 10_000,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if not (np.isfinite(beta) and beta >= 0):
            raise ValueError(f"beta must be a finite number >= 0, got {beta}")
        if target_kl is not None and not target_kl > 0:
            raise ValueError(f"target_kl must be > 0, got {target_kl}")
        self.reference = copy.deepcopy(reference).eval()  # frozen copy: never the live policy
        for p in self.reference.parameters():
            p.requires_grad_(False)
        self.beta = float(beta)
        self.target_kl = target_kl
        self.horizon = int(horizon)
        self.history: list[tuple[int, float, float]] = []

    def _on_step(self) -> bool:
        return True

    @torch.no_grad()
    def _on_rollout_end(self) -> None:
        assert isinstance(self.model, OnPolicyAlgorithm), "the KL penalty needs PPO or A2C"
        buf = self.model.rollout_buffer
        n_steps, n_envs = buf.buffer_size, buf.n_envs
        obs = torch.as_tensor(buf.observations.reshape(n_steps * n_envs, *buf.obs_shape))
        acts = torch.as_tensor(buf.actions.reshape(n_steps * n_envs, -1))
        ref_logp = np.concatenate(
            [
                self.reference.evaluate_actions(obs[i : i + 1024], acts[i : i + 1024])[1].numpy()
                for i in range(0, len(obs), 1024)
            ]
        ).reshape(n_steps, n_envs)
        kl = buf.log_probs - ref_logp  # one-sample estimate of KL(pi || pi_ref) per state
        buf.rewards -= self.beta * kl
        buf.compute_returns_and_advantage(
            last_values=self.locals["values"], dones=self.locals["dones"]
        )
        kl_mean = float(kl.mean())
        self.logger.record("kl/mean", kl_mean)
        self.logger.record("kl/beta", self.beta)
        self.history.append((self.num_timesteps, kl_mean, self.beta))
        if self.target_kl is not None:
            error = float(np.clip((kl_mean - self.target_kl) / self.target_kl, -0.2, 0.2))
            self.beta *= 1.0 + error * (n_steps * n_envs) / self.horizon
