"""The PPO policy's network on its own: a Gaussian actor and a critic over the histogram image.

:class:`ActorCritic` is the architecture of the Stable-Baselines3 policy of
:func:`agents.ppo.make_ppo` (same feature extractors from :mod:`agents.policy`, same
``net_arch`` heads, same state-independent log standard deviation, same orthogonal
initialisation) as a plain :class:`torch.nn.Module`, so that other RL libraries train the
same network: the Ray RLlib engine (:mod:`agents.rllib`) wraps it in an RLModule. Training
there saves it as ``policy.pt`` (:meth:`ActorCritic.save`), which loads without Ray and has
SB3's ``predict(obs, deterministic=True)``, so :func:`agents.evaluate.evaluate_agents` and
``tfgym evaluate`` score it exactly like an SB3 model.

Observations: the env's ``uint8`` ``(1, bins, bins)`` images (:meth:`ActorCritic.predict`) or,
inside the network, float images in [0, 1], channel-first (:meth:`ActorCritic.forward`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.policy import EXTRACTORS, HISTOGRAM_CHANNELS

__all__ = ["ActorCritic"]

_FORMAT = "tfgym-actor-critic-1"


def _mlp(n_in: int, hidden: Sequence[int]) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for n in hidden:
        layers += [nn.Linear(n_in, int(n)), nn.Tanh()]
        n_in = int(n)
    return nn.Sequential(*layers), n_in


def _orthogonal(module: nn.Module, gain: float) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Conv2d):
            nn.init.orthogonal_(m.weight, gain=gain)
            if m.bias is not None:
                m.bias.data.fill_(0.0)


class ActorCritic(nn.Module):
    """Gaussian policy and value function reading a joint-histogram image.

    Args:
        bins: the histogram's bins (observations are ``(1, bins, bins)``).
        action_dim: the action's size (``2 * n_vertices``).
        extractor: ``"histogram"`` or ``"nature"`` (:data:`agents.policy.EXTRACTORS`).
        features_dim: the extractor's feature size.
        net_arch: hidden layers (tanh) of the policy head and of the value head.
        log_std_init: initial log standard deviation (state-independent, learned).
        share_features: one extractor for the policy and the value (False: one each).

    Example:
        >>> net = ActorCritic(32, 8, features_dim=16, net_arch=(8,))
        >>> obs = np.zeros((3, 1, 32, 32), np.uint8)
        >>> actions, _ = net.predict(obs, deterministic=True)
        >>> actions.shape, bool(np.all(np.abs(actions) <= 1))
        ((3, 8), True)
    """

    def __init__(
        self,
        bins: int,
        action_dim: int,
        *,
        extractor: str = "histogram",
        features_dim: int = 128,
        net_arch: Sequence[int] = (64,),
        log_std_init: float = -1.0,
        share_features: bool = False,
    ) -> None:
        super().__init__()
        if extractor not in EXTRACTORS:
            raise ValueError(f"unknown extractor {extractor!r}; valid: {sorted(EXTRACTORS)}")
        self.hparams: dict[str, Any] = {
            "bins": int(bins),
            "action_dim": int(action_dim),
            "extractor": extractor,
            "features_dim": int(features_dim),
            "net_arch": [int(n) for n in net_arch],
            "log_std_init": float(log_std_init),
            "share_features": bool(share_features),
        }
        space = gym.spaces.Box(0, 255, (1, int(bins), int(bins)), dtype=np.uint8)
        kwargs: dict[str, Any] = {"features_dim": int(features_dim)}
        if extractor == "histogram":
            kwargs["channels"] = HISTOGRAM_CHANNELS
        self.pi_features = EXTRACTORS[extractor](space, **kwargs)
        self.vf_features = (
            self.pi_features if share_features else EXTRACTORS[extractor](space, **kwargs)
        )
        self.pi_net, n_pi = _mlp(int(features_dim), net_arch)
        self.vf_net, n_vf = _mlp(int(features_dim), net_arch)
        self.mean = nn.Linear(n_pi, int(action_dim))
        self.value = nn.Linear(n_vf, 1)
        self.log_std = nn.Parameter(torch.full((int(action_dim),), float(log_std_init)))
        # SB3's ActorCriticPolicy initialisation: orthogonal, gain sqrt(2) for the extractors
        # and hidden layers, 0.01 for the action mean, 1 for the value
        for part in (self.pi_features, self.vf_features, self.pi_net, self.vf_net):
            _orthogonal(part, float(np.sqrt(2)))
        _orthogonal(self.mean, 0.01)
        _orthogonal(self.value, 1.0)

    @property
    def bins(self) -> int:
        """The histogram's bins."""
        return int(self.hparams["bins"])

    def actor(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The Gaussian's mean ``(batch, action_dim)`` and log std ``(action_dim,)``."""
        return self.mean(self.pi_net(self.pi_features(obs))), self.log_std

    def critic(self, obs: torch.Tensor) -> torch.Tensor:
        """The value ``(batch,)`` of float images ``(batch, 1, bins, bins)`` in [0, 1]."""
        return self.value(self.vf_net(self.vf_features(obs)))[:, 0]

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean, log std and value of float images ``(batch, 1, bins, bins)`` in [0, 1]."""
        mean, log_std = self.actor(obs)
        return mean, log_std, self.critic(obs)

    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        """SB3's ``predict``: actions in [-1, 1] for ``uint8`` observations.

        Args:
            observation: ``(1, bins, bins)`` or ``(n, 1, bins, bins)`` env observations.
            state: unused (no recurrence), as in SB3.
            episode_start: unused, as in SB3.
            deterministic: the Gaussian's mean (True) or a sample from it.

        Returns:
            float32 actions ``(n, action_dim)`` (or ``(action_dim,)`` for one observation),
            clipped to the action box, and ``None``.
        """
        del state, episode_start
        obs = np.asarray(observation)
        single = obs.ndim == 3
        batch = obs[None] if single else obs
        if batch.ndim != 4 or batch.shape[1:] != (1, self.bins, self.bins):
            raise ValueError(
                f"expected observations (n, 1, {self.bins}, {self.bins}), got {obs.shape}"
            )
        x = torch.as_tensor(batch, dtype=torch.float32)
        if batch.dtype == np.uint8:
            x = x / 255.0
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                mean, log_std = self.actor(x)
                act = mean if deterministic else mean + torch.randn_like(mean) * log_std.exp()
        finally:
            self.train(was_training)
        actions = np.clip(act.numpy().astype(np.float32), -1.0, 1.0)
        return (actions[0] if single else actions), None

    def save(self, path: str | Path, **meta: Any) -> Path:
        """Write the network (hyper-parameters and weights) to ``path`` (``policy.pt``)."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        torch.save({"format": _FORMAT, "hparams": self.hparams, "state": state, **meta}, out)
        return out

    @classmethod
    def load(cls, path: str | Path) -> ActorCritic:
        """The network :meth:`save` wrote.

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file is not a saved :class:`ActorCritic`.
        """
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"no policy file {file}")
        try:
            data = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises several types for a damaged file
            raise ValueError(f"{file} is not a tfgym policy file: {err}") from err
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"{file} is not a tfgym policy file (format {_FORMAT})")
        net = cls(**data["hparams"])
        net.load_state_dict(data["state"])
        return net.eval()
