"""The ``"reward_model"`` reward backend: a trained checkpoint drives the env's reward.

Registered in the core by its entry point ``"reward_models.backend:RewardModelBackend"``
(:data:`tfgym.backends.BACKENDS`) and imported only when an env asks for it::

    env = TransferFunctionEnv(reward_backend="reward_model", reward_model_path="rm.pt")

Scene-feature cache
-------------------
Most of a reward model's work on one action is its JH-only branches
(:meth:`reward_models.model.RewardModel.scene_features`), which depend on the scene's
observation alone -- and an env shows the same few scenes again and again. The backend keeps
them per scene (key: a hash of the observation's bytes, shape and dtype; the
``cache_size`` most recently used scenes, least recently used out) and runs only the
per-action part (:meth:`~reward_models.model.RewardModel.action_rewards`) for each call.
Features are computed in eval mode (no dropout) under ``torch.no_grad()``, as
:meth:`~reward_models.model.RewardModel.predict` does, so the rewards are the same as
``model.predict(observation, actions)`` (mean over members for an ensemble). ``cache_size=0``
(or setting the attribute to 0) calls ``model.predict`` instead -- the uncached alternative
that ``benchmarks/bench_env.py`` measures. The cache follows the weights: assigning a new
``model``, or changing its parameters in place (an optimizer step, ``load_state_dict``: torch
counts each in-place change in a tensor's version), empties it at the next call.

A cache miss (a scene's first step) runs the JH convolutions with ``num_threads`` torch CPU
threads (default 1), set for that call only and restored after it: on the 2-core development
CPU with other processes busy, torch's default of 2 threads made them 4-10x slower (median
11-25 ms vs 2.0-3.1 ms per scene), and env workers of a vector env are such processes; on
the idle CPU 2 threads were about 1.5x faster (a miss happens once per scene of a fixed
set). The per-action part is left at torch's setting (no clear difference measured).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

from reward_models.checkpoint import CheckpointError, load_checkpoint, read_checkpoint_info
from reward_models.config import PREDICT_CHUNK
from reward_models.model import RewardEnsemble, RewardModel
from tfgym.backends import RewardBackend
from tfgym.renderer import RenderBatch
from tfgym.scene import Scene

__all__ = ["DEFAULT_CACHE_SIZE", "CacheInfo", "RewardModelBackend"]

DEFAULT_CACHE_SIZE = 64
"""Scenes whose features a backend keeps by default: every fixed scene set fits, as in the
env's scorer cache (:data:`tfgym.env.MAX_SCORERS`). A scene costs 4 * channels * bins² bytes
per member (mask preset, 64 bins: 0.5 MB; 32 MB for 64 scenes)."""

SceneFeatures = tuple[torch.Tensor, torch.Tensor | None]


class CacheInfo(NamedTuple):
    """Statistics of the scene-feature cache (as :func:`functools.lru_cache` reports them)."""

    hits: int
    misses: int
    maxsize: int
    currsize: int


class RewardModelBackend(RewardBackend):
    """A learned Bradley-Terry reward model (or ensemble: the mean) as the reward.

    Args:
        path: a checkpoint written by :func:`reward_models.checkpoint.save_checkpoint`.
        histogram_bins: the env's histogram bins (the model must have been trained on them).
        n_vertices: the env's polygon vertex count (likewise).
        device: torch device of the model.
        working_size: the env's working size, checked against the one the checkpoint
            records (None: not checked). A model trained on observations at working size 32
            has never seen those at 64.
        cache_size: scenes whose JH features are kept (see the module docstring); 0: no
            cache, every call runs ``model.predict``.
        num_threads: torch CPU threads while a cache miss computes a scene's features
            (restored after it); None: torch's current setting.

    Raises:
        reward_models.checkpoint.CheckpointError: (a ``ValueError``) a missing, foreign,
            newer or incompatible checkpoint -- at construction, not at the first step.
        ValueError: a negative ``cache_size`` or a ``num_threads`` below 1.

    Example:
        >>> import tempfile, torch
        >>> from reward_models.checkpoint import save_checkpoint
        >>> from reward_models.model import model_config
        >>> _ = torch.manual_seed(0)
        >>> path = save_checkpoint(
        ...     tempfile.mkdtemp() + "/rm.pt", RewardModel(model_config("tiny-mask")))
        >>> backend = RewardModelBackend(path)
        >>> obs = np.zeros((1, 64, 64), np.uint8)
        >>> actions = np.zeros((3, 8), np.float32)
        >>> cached = backend.rewards(obs, actions)
        >>> bool(np.allclose(cached, backend.model.predict(obs, actions), atol=1e-6))
        True
        >>> backend.cache_info()
        CacheInfo(hits=0, misses=1, maxsize=64, currsize=1)
    """

    name = "reward_model"

    def __init__(
        self,
        path: str,
        *,
        histogram_bins: int = 64,
        n_vertices: int = 4,
        device: str = "cpu",
        working_size: int | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        num_threads: int | None = 1,
    ) -> None:
        """Load and check the checkpoint."""
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ValueError(f"cache_size must be an int >= 0 (0: no cache), got {cache_size!r}")
        if num_threads is not None and (
            isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1
        ):
            raise ValueError(f"num_threads must be an int >= 1 or None, got {num_threads!r}")
        self.path = str(path)
        self.device = device
        self.working_size = working_size
        self.cache_size = cache_size
        self.num_threads = num_threads
        self.expect = {"histogram_bins": int(histogram_bins), "n_vertices": int(n_vertices)}
        trained = read_checkpoint_info(self.path).recorded_working_size
        if working_size is not None and trained is not None and trained != working_size:
            raise CheckpointError(
                f"{self.path} is incompatible: its model was trained at working_size={trained}, "
                f"expected working_size={working_size}"
            )
        self.model: RewardModel | RewardEnsemble = load_checkpoint(
            self.path, expect=self.expect, device=device
        )
        self._features: OrderedDict[tuple[Any, ...], list[SceneFeatures]] = OrderedDict()
        self._features_of: RewardModel | RewardEnsemble | None = None  # the model cached for
        self._params: list[torch.Tensor] = []  # its parameters, and their versions
        self._versions: tuple[int, ...] = ()
        self._hits = self._misses = 0

    # -- rewards --------------------------------------------------------------------------------
    def reward(self, scene: Scene, actions: np.ndarray, renderings: RenderBatch) -> np.ndarray:
        """The model's rewards of the actions on the scene's histogram."""
        del renderings
        return self.rewards(scene.observation, actions)

    def rewards(self, observation: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Rewards of actions on one observation, float64 ``(batch,)``.

        Equal (to float rounding of the mean over ensemble members: exactly) to
        ``self.model.predict(observation, actions)``; with ``cache_size > 0`` the scene's
        JH features come from the cache.

        Args:
            observation: the scene's JH image, uint8 ``(1, bins, bins)`` or ``(bins, bins)``.
            actions: ``(batch, 2 * n_vertices)`` or one action ``(2 * n_vertices,)``.
        """
        if self.cache_size <= 0:
            return np.asarray(self.model.predict(observation, actions), dtype=np.float64)
        members = self._members()
        acts = np.asarray(actions, dtype=np.float32).reshape(-1, members[0].config.action_dim)
        if len(acts) == 0:
            return np.zeros(0, dtype=np.float64)
        device = self._params[0].device  # as predict: the device of the first parameter
        with torch.no_grad(), _eval_mode(members):
            feats = self._scene_features(members, np.asarray(observation), device)
            per_member = _action_rewards(members, feats, acts, device)
        if len(per_member) == 1:
            return per_member[0]
        return np.stack(per_member).mean(axis=0)  # as RewardEnsemble.predict

    # -- the cache -------------------------------------------------------------------------------
    def cache_info(self) -> CacheInfo:
        """Hits, misses, the size limit and the scenes held."""
        return CacheInfo(self._hits, self._misses, self.cache_size, len(self._features))

    def clear_cache(self) -> None:
        """Forget every scene's features and reset the statistics."""
        self._features.clear()
        self._hits = self._misses = 0

    def _members(self) -> list[RewardModel]:
        """The model's members; new weights since the last call empty the cache."""
        model = self.model
        members = model.members if isinstance(model, RewardEnsemble) else [model]
        if self._features_of is not model:
            self._features_of = model
            self._params = [p for m in members for p in m.parameters()]
            self._versions = ()
        versions = tuple(p._version for p in self._params)
        if versions != self._versions:
            self.clear_cache()
            self._versions = versions
        return members

    def _scene_features(
        self, members: Sequence[RewardModel], observation: np.ndarray, device: torch.device
    ) -> list[SceneFeatures]:
        """Every member's JH features of the observation, cached (call in eval, no_grad)."""
        obs = np.ascontiguousarray(observation)
        key = (obs.shape, obs.dtype.str, hashlib.blake2b(obs.tobytes(), digest_size=16).digest())
        feats = self._features.get(key)
        if feats is not None:
            self._hits += 1
            self._features.move_to_end(key)
            return feats
        self._misses += 1
        jh = torch.as_tensor(obs.reshape(1, 1, *obs.shape[-2:])).to(device)
        with _torch_threads(self.num_threads):
            feats = [m.scene_features(jh) for m in members]
        self._features[key] = feats
        while len(self._features) > self.cache_size:
            self._features.popitem(last=False)
        return feats

    # -- pickling --------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """Pickle the checkpoint path and the checks, not the model."""
        return {
            "path": self.path,
            "device": self.device,
            "working_size": self.working_size,
            "cache_size": self.cache_size,
            "num_threads": self.num_threads,
            **self.expect,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Reload the checkpoint (so SubprocVecEnv workers get their own model)."""
        self.__init__(  # type: ignore[misc]
            state["path"],
            histogram_bins=state["histogram_bins"],
            n_vertices=state["n_vertices"],
            device=state["device"],
            working_size=state["working_size"],
            cache_size=state.get("cache_size", DEFAULT_CACHE_SIZE),
            num_threads=state.get("num_threads", 1),
        )


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Set the intra-op CPU threads of torch to ``n`` for the block (None: unchanged)."""
    before = torch.get_num_threads()
    if n is None or n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _eval_mode(members: Sequence[RewardModel]) -> Iterator[None]:
    """Eval mode for the block (as ``predict``); touches only members left in training."""
    training = [m for m in members if m.training]
    for m in training:
        m.eval()
    try:
        yield
    finally:
        for m in training:
            m.train()


def _action_rewards(
    members: Sequence[RewardModel],
    feats: Sequence[SceneFeatures],
    acts: np.ndarray,
    device: torch.device,
) -> list[np.ndarray]:
    """Each member's float64 rewards of the actions, in ``predict``'s chunks.

    The polygon masks of a chunk are rasterised once for all members (they share a config).
    """
    config = members[0].config
    out: list[list[np.ndarray]] = [[] for _ in members]
    for start in range(0, len(acts), PREDICT_CHUNK):
        chunk = acts[start : start + PREDICT_CHUNK]
        masks = (
            torch.from_numpy(members[0].masks(chunk)).to(device)
            if config.variant == "mask"
            else None
        )
        index = torch.zeros(len(chunk), dtype=torch.long, device=device)
        a = torch.from_numpy(chunk).to(device)
        for k, (m, f) in enumerate(zip(members, feats, strict=True)):
            out[k].append(m.action_rewards(f, a, masks, index).cpu().numpy())
    return [np.concatenate(parts).astype(np.float64) for parts in out]
