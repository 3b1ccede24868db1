"""The Bradley-Terry reward model of Melenberg et al. (MIDL 2025, Figure 1) and a better one.

Paper variant (``"paper"``): the joint-histogram (JH) image goes through convolutional layers,
each followed by ReLU, dropout (p = 0.5, the paper's) and 2x2 max pooling; the action (the
``2 * n_vertices`` polygon coordinates) is upscaled by a small MLP to as many features as the
JH branch gives, so that neither dominates; both are concatenated and an MLP head maps them to
one scalar reward.

Mask variant (``"mask"``): raw vertex coordinates are a poor input -- the reward depends on
which histogram bins the polygon covers, not on the order or place of its corners. This
variant also gives the model the action's rasterised polygon (its coverage of each JH bin,
:func:`tfgym.polygon.polygon_coverage_batch`) beside the JH. A per-bin feature map
is computed from the JH (plus two coordinate channels) by a full-resolution conv stack, and
the mask pools it: feature ``c`` of an action is ``log(1 + sum_bins coverage * F_c)``. This is
the mask as a second image channel whose interaction with the JH is a 1x1 product; it costs
one matrix product per action instead of a per-action convolution (a per-action conv over a
two-channel 64x64 input measured 160-960 ms per 256-action training step on the project's
2-core CPU, 6-30x over the 60 s training budget). The coordinate MLP and the global JH branch
are kept.

Both branches that read only the JH run **once per scene** per call and are broadcast to the
scene's actions (in training, the actions of one scene in one batch share the branch's
dropout masks).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from reward_models.config import (
    PREDICT_CHUNK,
    RM_PRESETS,
    VARIANTS,
    RewardModelConfig,
    model_config,
)
from tfgym.polygon import polygon_coverage_batch

__all__ = [
    "RM_PRESETS",
    "VARIANTS",
    "RewardEnsemble",
    "RewardModel",
    "RewardModelConfig",
    "action_masks",
    "model_config",
]


def action_masks(actions: np.ndarray, histogram_bins: int, *, subrows: int = 2) -> np.ndarray:
    """The polygons' coverage of the JH bins, float32 ``(batch, bins, bins)`` in [0, 1].

    Row ``j`` is gradient bin ``j``, column ``i`` intensity bin ``i`` (as the JH image).

    Example:
        >>> square = np.array([[-1, -1, 0, -1, 0, 0, -1, 0]], np.float32)  # lower-left quarter
        >>> action_masks(square, 4)[0]
        array([[1., 1., 0., 0.],
               [1., 1., 0., 0.],
               [0., 0., 0., 0.],
               [0., 0., 0., 0.]], dtype=float32)
    """
    a = np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0)
    vertices = (a.reshape(len(a), -1, 2) + 1.0) * (histogram_bins / 2.0)
    return polygon_coverage_batch(vertices, (histogram_bins, histogram_bins), subrows=subrows)


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _as_image(jh: torch.Tensor) -> torch.Tensor:
    """uint8 JH images -> float in [0, 1]; float images pass through."""
    return jh.float() / 255.0 if jh.dtype == torch.uint8 else jh.float()


def _pool_per_scene(
    flat: torch.Tensor, bin_feat: torch.Tensor, scene_index: torch.Tensor
) -> torch.Tensor:
    """``flat[a] @ bin_feat[scene_index[a]].T`` for every action ``a``, as one batched product.

    The actions are scattered into a zero-padded ``(n_scenes, most actions of a scene, bins²)``
    block, multiplied with ``torch.bmm`` and gathered back: no python loop over scenes, and
    no per-scene slice of ``bin_feat`` (whose backward allocates a zero gradient of all
    scenes' features once per scene, which made many-scene batches several times slower).

    Args:
        flat: masks ``(batch, bins * bins)``.
        bin_feat: per-bin features ``(n_scenes, C, bins * bins)``.
        scene_index: ``(batch,)`` row of ``bin_feat`` for each action.

    Returns:
        Pooled features ``(batch, C)``.
    """
    if len(bin_feat) == 1:
        return flat @ bin_feat[0].T
    counts = torch.bincount(scene_index, minlength=len(bin_feat))
    order = torch.argsort(scene_index, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.empty_like(scene_index)  # each action's place among its scene's actions
    slot[order] = torch.arange(len(order), device=order.device) - starts[scene_index[order]]
    block = flat.new_zeros(len(bin_feat), int(counts.max()), flat.shape[1])
    block[scene_index, slot] = flat
    return torch.bmm(block, bin_feat.transpose(1, 2))[scene_index, slot]


class RewardModel(nn.Module):
    """Bradley-Terry reward model ``r(JH, action)`` (see module docstring).

    Args:
        config: the architecture.

    Example:
        >>> model = RewardModel(model_config("tiny-mask", histogram_bins=16))
        >>> obs = np.zeros((1, 16, 16), np.uint8)
        >>> model.predict(obs, np.zeros((5, 8), np.float32)).shape
        (5,)
    """

    def __init__(self, config: RewardModelConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        n_in = 1
        for n_out in config.conv_channels:
            layers += [
                nn.Conv2d(n_in, n_out, 3, padding=1),
                nn.ReLU(),
                nn.Dropout(config.dropout),
                nn.MaxPool2d(2),
            ]
            n_in = n_out
        layers += [nn.AdaptiveAvgPool2d(config.jh_pool), nn.Flatten()]
        self.jh_branch = nn.Sequential(*layers)
        n_feat = config.jh_features
        self.action_branch = nn.Sequential(
            _mlp([config.action_dim, *config.action_hidden, n_feat]), nn.ReLU()
        )
        n_head = 2 * n_feat
        if config.variant == "mask":
            c = config.mask_channels
            self.bin_branch = nn.Sequential(
                nn.Conv2d(3, c, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(c, c, 3, padding=1),
                nn.Softplus(),  # non-negative bin features: pooled sums grow with coverage
            )
            self.mask_branch = nn.Sequential(nn.Linear(c, n_feat), nn.ReLU())
            n_head += n_feat
            grid = (torch.arange(config.histogram_bins) + 0.5) / config.histogram_bins * 2 - 1
            rows, cols = torch.meshgrid(grid, grid, indexing="ij")
            self.register_buffer("coords", torch.stack([cols, rows])[None], persistent=False)
        self.head = _mlp([n_head, *config.head_hidden, 1])

    # -- per-scene and per-action parts ---------------------------------------------------------
    def scene_features(self, jh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The JH-only branches for ``(n_scenes, 1, bins, bins)`` images.

        Returns:
            ``(global features (n_scenes, F), bin features (n_scenes, C, bins * bins) or None)``.
        """
        image = _as_image(jh)
        bins = self.config.histogram_bins
        assert image.shape[1:] == (1, bins, bins), f"JH must be (n, 1, {bins}, {bins})"
        glob = self.jh_branch(image)
        if self.config.variant != "mask":
            return glob, None
        coords: torch.Tensor = self.coords  # type: ignore[assignment]  # a registered buffer
        coords = coords.expand(len(image), -1, -1, -1)
        bin_feat = self.bin_branch(torch.cat([image, coords], dim=1))
        return glob, bin_feat.flatten(2)

    def action_rewards(
        self,
        scene_feats: tuple[torch.Tensor, torch.Tensor | None],
        actions: torch.Tensor,
        masks: torch.Tensor | None,
        scene_index: torch.Tensor,
    ) -> torch.Tensor:
        """Rewards ``(batch,)`` of actions given the features of their scenes."""
        glob, bin_feat = scene_feats
        parts = [glob[scene_index], self.action_branch(actions.float())]
        if bin_feat is not None:
            assert masks is not None
            pooled = _pool_per_scene(masks.float().flatten(1), bin_feat, scene_index)
            parts.append(self.mask_branch(torch.log1p(pooled)))
        return self.head(torch.cat(parts, dim=1)).squeeze(1)

    def forward(
        self,
        jh: torch.Tensor,
        actions: torch.Tensor,
        masks: torch.Tensor | None = None,
        *,
        scene_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Rewards of a batch, keeping gradients.

        Args:
            jh: JH images ``(n_scenes, 1, bins, bins)``, uint8 or float in [0, 1]. Without
                ``scene_index``, ``n_scenes`` is the batch size or 1 (broadcast).
            actions: ``(batch, 2 * n_vertices)`` in [-1, 1].
            masks: ``(batch, bins, bins)`` polygon coverage (mask variant); computed from the
                actions when None.
            scene_index: ``(batch,)`` row of ``jh`` for each action.

        Returns:
            Rewards ``(batch,)``.
        """
        batch = len(actions)
        if scene_index is None:
            if len(jh) not in (1, batch):
                raise ValueError(f"jh has {len(jh)} images for {batch} actions; pass scene_index")
            scene_index = torch.arange(batch, device=actions.device)
            if len(jh) == 1:
                scene_index = torch.zeros_like(scene_index)
        if self.config.variant == "mask" and masks is None:
            masks = torch.from_numpy(self.masks(actions.detach().cpu().numpy())).to(actions.device)
        rewards = self.action_rewards(self.scene_features(jh), actions, masks, scene_index)
        assert rewards.shape == (batch,), rewards.shape
        return rewards

    def masks(self, actions: np.ndarray) -> np.ndarray:
        """Polygon masks of actions on this model's JH grid (see :func:`action_masks`)."""
        return action_masks(actions, self.config.histogram_bins, subrows=self.config.mask_subrows)

    @torch.no_grad()
    def predict(self, observation: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Rewards of many actions on ONE scene, in eval mode (no dropout).

        The JH branches run once; actions are scored in chunks of
        :data:`reward_models.config.PREDICT_CHUNK`.

        Args:
            observation: the scene's JH image, uint8 ``(1, bins, bins)`` or ``(bins, bins)``.
            actions: ``(batch, 2 * n_vertices)`` or one action ``(2 * n_vertices,)``.

        Returns:
            float64 rewards ``(batch,)``.
        """
        was_training = self.training
        self.eval()
        try:
            device = next(self.parameters()).device
            obs = np.asarray(observation)
            jh = torch.as_tensor(obs.reshape(1, 1, *obs.shape[-2:])).to(device)
            acts = np.asarray(actions, dtype=np.float32).reshape(-1, self.config.action_dim)
            feats = self.scene_features(jh)
            out = []
            for start in range(0, len(acts), PREDICT_CHUNK):
                chunk = acts[start : start + PREDICT_CHUNK]
                masks = (
                    torch.from_numpy(self.masks(chunk)).to(device)
                    if self.config.variant == "mask"
                    else None
                )
                index = torch.zeros(len(chunk), dtype=torch.long, device=device)
                a = torch.from_numpy(chunk).to(device)
                out.append(self.action_rewards(feats, a, masks, index).cpu().numpy())
            rewards = np.concatenate(out) if out else np.zeros(0)
        finally:
            self.train(was_training)
        assert rewards.shape == (len(acts),)
        return rewards.astype(np.float64)


class RewardEnsemble:
    """k reward models (each trained on a bootstrap resample); mean and std of their rewards.

    Args:
        members: the models; they must share one config.

    Raises:
        ValueError: no members, or members with different configs.
    """

    def __init__(self, members: Sequence[RewardModel]) -> None:
        self.members = list(members)
        if not self.members:
            raise ValueError("an ensemble needs at least one member")
        if any(m.config != self.members[0].config for m in self.members):
            raise ValueError("ensemble members must share one RewardModelConfig")

    @property
    def config(self) -> RewardModelConfig:
        """The members' config."""
        return self.members[0].config

    def __len__(self) -> int:
        return len(self.members)

    def predict_all(self, observation: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Each member's rewards, ``(k, batch)``."""
        return np.stack([m.predict(observation, actions) for m in self.members])

    def predict(self, observation: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Mean reward over members, ``(batch,)``."""
        return self.predict_all(observation, actions).mean(axis=0)

    def predict_std(self, observation: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Standard deviation of the reward over members, ``(batch,)`` (0 for one member)."""
        return self.predict_all(observation, actions).std(axis=0)
