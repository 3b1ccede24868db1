"""Supervised pre-training (SFT): behaviour cloning of expert TFs into the PPO policy.

The first phase of the RLHF pipeline (Ziegler et al. 2020 start from a supervised model).
Experts come from a search on the oracle per training scene (:func:`expert_dataset`: the
best action and the near-best elites of a CMA-ES or CEM run, so each scene gives several
targets around its optimum), or from any other source of ``(observation, action)`` pairs.

:func:`behaviour_clone` maximises the log-likelihood ``log pi(a* | s)`` of the experts'
actions under SB3's own policy (``policy.evaluate_actions``), i.e. the policy that PPO then
fine-tunes -- no second network, no conversion. The Gaussian's log standard deviation is
frozen while cloning: left free, the likelihood drives it toward zero and PPO would start
without exploration; frozen, the loss is the squared error of the mean scaled by
``1 / (2 sigma^2)`` plus a constant. The value head is left untouched (PPO fits it).

(``imitation``, the usual BC library, pins stable-baselines3 ~2.2 and gymnasium ~0.29 and
cannot be installed beside this project.)

Example:
    >>> from agents.config import PPOConfig
    >>> from agents.ppo import make_envs, make_ppo
    >>> config = PPOConfig(n_envs=1, n_steps=16, batch_size=16, image_size=32, features_dim=16)
    >>> model = make_ppo(config, make_envs(config))
    >>> obs = np.zeros((4, 1, 64, 64), np.uint8); obs[:, :, 10:20, 5:30] = 200
    >>> acts = np.tile(np.array([[-0.2, -1, 1, -1, 1, 1, -0.2, 1]], np.float32), (4, 1))
    >>> result = behaviour_clone(model.policy, obs, acts, epochs=30, progress=False)
    >>> result.losses[-1] < result.losses[0]
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from stable_baselines3.common.policies import ActorCriticPolicy

from tfgym.polygon import canonical_vertex_order
from tfgym.scoring import SceneScorer, ScoringSettings
from tfgym.search import SEARCHES

__all__ = ["BCResult", "ExpertData", "behaviour_clone", "expert_dataset"]


@dataclass(frozen=True)
class ExpertData:
    """Expert ``(observation, action)`` pairs of several scenes.

    Attributes:
        scenes: the scene of each pair.
        observations: uint8 ``(n, 1, bins, bins)``.
        actions: float32 ``(n, 2 * n_vertices)`` in [-1, 1], vertices in the canonical order
            of :func:`tfgym.polygon.canonical_vertex_order` (one listing per polygon, so that
            a regression sees one target per shape).
        scores: float64 ``(n,)``, each action's oracle score on its scene.
        best: each scene's best score (the first pair of a scene is its best action).
    """

    scenes: tuple[str, ...]
    observations: np.ndarray
    actions: np.ndarray
    scores: np.ndarray
    best: dict[str, float]

    def __len__(self) -> int:
        return len(self.actions)

    def save(self, path: str | Path) -> Path:
        """Write to an ``.npz`` file."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            p,
            scenes=np.array(self.scenes),
            observations=self.observations,
            actions=self.actions,
            scores=self.scores,
            best_names=np.array(list(self.best)),
            best_values=np.array(list(self.best.values())),
        )
        return p

    @classmethod
    def load(cls, path: str | Path) -> ExpertData:
        """Read a file written by :meth:`save`."""
        with np.load(Path(path)) as f:
            return cls(
                scenes=tuple(str(s) for s in f["scenes"]),
                observations=f["observations"],
                actions=f["actions"].astype(np.float32),
                scores=f["scores"],
                best=dict(
                    zip((str(s) for s in f["best_names"]), f["best_values"].tolist(), strict=False)
                ),
            )


def expert_dataset(
    scenes: Sequence[str],
    settings: ScoringSettings | None = None,
    *,
    budget: int = 600,
    per_scene: int = 8,
    within: float = 0.97,
    method: str = "cem",
    seed: int = 0,
    progress: bool = False,
) -> ExpertData:
    """Expert actions per scene from a search on the oracle score.

    Args:
        scenes: scene names (the training scenes).
        settings: scoring settings (default :class:`ScoringSettings`).
        budget: env evaluations of the search per scene.
        per_scene: at most this many experts per scene: the best action and the best-scoring
            distinct others among the search's actions.
        within: an elite is kept only when its score is at least ``within`` x the best.
        method: the search, a key of :data:`tfgym.search.SEARCHES`.
        seed: seeds the searches (scene ``i`` uses ``seed + i``).
        progress: a progress bar over the scenes.

    Returns:
        The :class:`ExpertData`.

    Raises:
        ValueError: no scenes, an unknown method, ``per_scene`` below 1.
    """
    from tqdm.auto import tqdm

    if not scenes:
        raise ValueError("expert_dataset needs at least one scene")
    if method not in SEARCHES:
        raise ValueError(f"unknown search method {method!r}; valid: {sorted(SEARCHES)}")
    if per_scene < 1:
        raise ValueError(f"per_scene must be at least 1, got {per_scene}")
    settings = settings or ScoringSettings()
    names, obs, acts, scores, best = [], [], [], [], {}
    for i, scene in enumerate(tqdm(list(scenes), desc="experts", disable=not progress)):
        scorer = SceneScorer(scene, settings)
        search = SEARCHES[method](np.random.default_rng(seed + i), population_size=32)
        result = search.run(scorer, budget, keep_all=True)
        assert result.actions is not None
        assert result.rewards is not None
        order = np.argsort(-result.rewards, kind="stable")
        chosen: list[int] = []
        for j in order:
            if len(chosen) >= per_scene or result.rewards[j] < within * result.best_reward:
                break
            if all(np.abs(result.actions[j] - result.actions[k]).max() > 1e-3 for k in chosen):
                chosen.append(int(j))
        best[scorer.name] = float(result.best_reward)
        for j in chosen:
            names.append(scorer.name)
            obs.append(scorer.observation)
            acts.append(result.actions[j])
            scores.append(float(result.rewards[j]))
    return ExpertData(
        scenes=tuple(names),
        observations=np.stack(obs),
        actions=canonical_vertex_order(np.stack(acts)),
        scores=np.asarray(scores, dtype=np.float64),
        best=best,
    )


@dataclass(frozen=True)
class BCResult:
    """Behaviour-cloning curves: mean negative log-likelihood per epoch."""

    losses: tuple[float, ...]
    val_losses: tuple[float, ...]


def behaviour_clone(
    policy: ActorCriticPolicy,
    observations: np.ndarray,
    actions: np.ndarray,
    *,
    epochs: int = 300,
    batch_size: int = 64,
    lr: float = 3e-4,
    val_fraction: float = 0.0,
    seed: int = 0,
    progress: bool = True,
    writer: object | None = None,
) -> BCResult:
    """Fit an SB3 actor-critic policy to expert actions by maximum likelihood (in place).

    Args:
        policy: the policy (e.g. ``PPO(...).policy``); trained in place.
        observations: ``(n, *observation_shape)`` as the env gives them (uint8 images).
        actions: ``(n, action_dim)`` expert actions in [-1, 1].
        epochs: passes over the data.
        batch_size: pairs per gradient step.
        lr: Adam learning rate. At 1e-3 one of three seeds collapsed within ten epochs to a
            constant action (train loss flat at 6.2 against 2.0 for the others: every feature of
            the last ReLU layer dead); at 3e-4 none of four did.
        val_fraction: share of pairs held out for a validation curve (0: none).
        seed: seeds the split and the shuffling.
        progress: a tqdm bar over the epochs.
        writer: a TensorBoard ``SummaryWriter`` for ``sft/loss`` and ``sft/val_loss``.

    Returns:
        The :class:`BCResult`.

    Raises:
        ValueError: mismatched or empty inputs, non-finite actions.
    """
    from tqdm.auto import tqdm

    obs = np.asarray(observations)
    acts = np.asarray(actions, dtype=np.float32)
    if len(obs) == 0 or len(obs) != len(acts):
        raise ValueError(f"need as many observations as actions (>0), got {len(obs)}, {len(acts)}")
    if not np.isfinite(acts).all():
        raise ValueError("expert actions must be finite")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(obs))
    n_val = round(val_fraction * len(obs))
    val, train = order[:n_val], order[n_val:]
    device = policy.device
    obs_t = torch.as_tensor(obs, device=device)
    act_t = torch.as_tensor(np.clip(acts, -1.0, 1.0), device=device)
    log_std = getattr(policy, "log_std", None)
    frozen = isinstance(log_std, torch.nn.Parameter) and log_std.requires_grad
    if frozen and log_std is not None:
        log_std.requires_grad_(False)
    params = [p for p in policy.parameters() if p.requires_grad]
    optim = torch.optim.Adam(params, lr=lr)
    losses, val_losses = [], []
    policy.set_training_mode(True)
    try:
        for epoch in tqdm(range(int(epochs)), desc="sft", unit="epoch", disable=not progress):
            total = 0.0
            perm = rng.permutation(train)
            for start in range(0, len(perm), batch_size):
                idx = torch.as_tensor(perm[start : start + batch_size])
                _, log_prob, _ = policy.evaluate_actions(obs_t[idx], act_t[idx])
                loss = -log_prob.mean()
                optim.zero_grad()
                loss.backward()
                optim.step()
                total += float(loss.detach()) * len(idx)
            losses.append(total / max(len(train), 1))
            if n_val:
                with torch.no_grad():
                    idx = torch.as_tensor(val)
                    _, log_prob, _ = policy.evaluate_actions(obs_t[idx], act_t[idx])
                    val_losses.append(float(-log_prob.mean()))
            if writer is not None:
                writer.add_scalar("sft/loss", losses[-1], epoch)  # type: ignore[attr-defined]
                if val_losses:
                    writer.add_scalar(  # type: ignore[attr-defined]
                        "sft/val_loss", val_losses[-1], epoch
                    )
    finally:
        if frozen and log_std is not None:
            log_std.requires_grad_(True)
        policy.set_training_mode(False)
    return BCResult(tuple(losses), tuple(val_losses))
