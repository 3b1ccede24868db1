"""The policy that reads the joint histogram: a feature extractor for SB3's ``CnnPolicy``.

Two extractors are offered (``PPOConfig.extractor``):

* ``"nature"`` -- SB3's default ``NatureCNN`` (Mnih et al. 2015): 8x8/4, 4x4/2, 3x3/1 convs
  and a 512-unit layer, built for 84x84 Atari frames.
* ``"histogram"`` (:class:`HistogramExtractor`, the default) -- built for what the policy must
  read here: *where* on the histogram's axes the tissue arcs and peaks lie, since the
  polygon's vertices are coordinates on the same axes. Two coordinate channels (CoordConv,
  Liu et al. 2018) are stacked onto the log-scaled histogram so that positions survive the
  convolutions; three stride-2 3x3 convs (8, 16, 32 channels) keep an 8x8 map whose flattening
  keeps the layout; one linear layer maps it to ``features_dim``. Besides, the marginal
  profiles along the intensity axis (column sums; the classic 1D histogram, where bone and
  soft-tissue peaks sit) are given through a linear layer, because a 1D TF designer reads
  just that. ``benchmarks/bench_agents.py`` compares both extractors at equal budgets.

The observation is SB3-normalised (``uint8`` / 255) before it reaches the extractor.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN
from torch import nn

__all__ = ["EXTRACTORS", "HISTOGRAM_CHANNELS", "HistogramExtractor", "policy_kwargs"]


HISTOGRAM_CHANNELS = (8, 16, 32)
"""Output channels of the :class:`HistogramExtractor`'s three convolutions."""


class HistogramExtractor(BaseFeaturesExtractor):
    """CoordConv features of a joint-histogram image plus its intensity profile.

    Args:
        observation_space: ``Box(0, 255, (1, bins, bins), uint8)`` (any ``bins >= 16``).
        features_dim: size of the feature vector handed to the policy and value heads.
        channels: output channels of the three stride-2 convolutions.

    Example:
        >>> space = gym.spaces.Box(0, 255, (1, 64, 64), dtype="uint8")
        >>> extractor = HistogramExtractor(space, features_dim=32)
        >>> extractor(torch.zeros(2, 1, 64, 64)).shape
        torch.Size([2, 32])
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        features_dim: int = 128,
        channels: tuple[int, int, int] = HISTOGRAM_CHANNELS,
    ) -> None:
        super().__init__(observation_space, features_dim)
        shape = observation_space.shape
        if shape is None or len(shape) != 3 or shape[0] != 1 or shape[1] < 16:
            raise ValueError(f"expected a (1, bins, bins) histogram image, bins>=16; got {shape}")
        bins = int(shape[1])
        c1, c2, c3 = channels
        self.convs = nn.Sequential(
            nn.Conv2d(3, c1, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(c2, c3, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        grid = (torch.arange(bins) + 0.5) / bins * 2.0 - 1.0
        rows, cols = torch.meshgrid(grid, grid, indexing="ij")
        self.register_buffer("coords", torch.stack([cols, rows])[None], persistent=False)
        with torch.no_grad():
            n_conv = self.convs(torch.zeros(1, 3, bins, bins)).shape[1]
        self.profile = nn.Sequential(nn.Linear(bins, 64), nn.ReLU())
        self.linear = nn.Sequential(nn.Linear(n_conv + 64, features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """Features ``(batch, features_dim)`` of histogram images ``(batch, 1, bins, bins)``."""
        coords: torch.Tensor = self.coords  # type: ignore[assignment]  # a registered buffer
        x = torch.cat([observations, coords.expand(len(observations), -1, -1, -1)], dim=1)
        profile = observations[:, 0].mean(dim=1)  # mean over gradient rows: (batch, bins)
        return self.linear(torch.cat([self.convs(x), self.profile(profile)], dim=1))


EXTRACTORS: dict[str, type[BaseFeaturesExtractor]] = {
    "histogram": HistogramExtractor,
    "nature": NatureCNN,
}
"""Feature extractors by name (``PPOConfig.extractor``)."""


def policy_kwargs(
    extractor: str = "histogram",
    *,
    features_dim: int = 128,
    net_arch: tuple[int, ...] = (64,),
    log_std_init: float = -1.0,
    share_features: bool = False,
) -> dict[str, Any]:
    """``policy_kwargs`` of SB3's ``CnnPolicy`` (PPO) for a named extractor.

    ``log_std_init=-1`` (sigma 0.37 on the [-1, 1] action box): with SB3's default of 0
    (sigma 1) most sampled vertices are clipped to the box's edges, and PPO learned nothing
    in 30k steps on this env (the agents issue's calibration).

    Raises:
        ValueError: an unknown extractor name.
    """
    if extractor not in EXTRACTORS:
        raise ValueError(f"unknown extractor {extractor!r}; valid: {sorted(EXTRACTORS)}")
    kwargs: dict[str, Any] = {"features_dim": int(features_dim)}
    if extractor == "histogram":  # saved with the model, so a default change cannot break it
        kwargs["channels"] = HISTOGRAM_CHANNELS
    return {
        "features_extractor_class": EXTRACTORS[extractor],
        "features_extractor_kwargs": kwargs,
        "net_arch": {"pi": list(net_arch), "vf": list(net_arch)},
        "log_std_init": float(log_std_init),
        "share_features_extractor": bool(share_features),
    }
