"""Batch scoring: render a batch of actions of one scene and score them, in one call.

:class:`SceneScorer` is the one path from actions to rewards. The env's ``step`` scores a
batch of one through it; search baselines, preference collection, reward-model evaluation
and the demo score whole populations through it directly (never through an env). An action
is validated and clipped once, on entry (:func:`tfgym.transfer_function.validate_actions`).

:class:`ScoringSettings` holds everything that decides what an action means and how it is
rendered and judged (polygon size, histogram bins, working size, camera, TF look, oracle
target, device); the env's constructor arguments of the same names fill it.

Renderers are shared: a scene's :class:`~tfgym.renderer.Renderer` (its view-ordered volume,
about 0.75 MiB at the default 64-voxel working size, and the scene it keeps alive, about
2.7 MiB more) is built once per process and settings and kept in :data:`RENDERER_CACHE`,
least recently used out past ``$TFGYM_RENDERER_CACHE_MB`` MiB (default 2048, about 600
scenes), so scorers of the same scene -- the envs of a vector env, an env that
meets a scene again after its own scorer cache dropped it -- do not build it again (11 ms on
the development CPU against a 3 ms step). ``SceneScorer(..., share_renderer=False)`` builds
a private one (the env does so for fresh scenes of the ``"procedural"`` pool).

Example:
    >>> scorer = SceneScorer("headsq", ScoringSettings(image_size=32))
    >>> batch = scorer.score(np.array([[0.2, -1, 1, -1, 1, 1, 0.2, 1], [0, 0, 0, 0, 0, 0, 0, 0]]))
    >>> batch.rewards.shape, batch.rewards.dtype, float(batch.rewards[1])
    ((2,), dtype('float64'), 0.0)
    >>> kept = scorer.score(batch.actions[:1], renderings=True)
    >>> batch.renderings is None, kept.renderings.rgb.shape
    (True, (1, 32, 32, 3))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tfgym.backends import OracleBackend, RewardBackend
from tfgym.cache import ByteLRU, env_budget_bytes
from tfgym.oracle.plausibility import target_plausibility
from tfgym.oracle.score import Oracle, resolve_target
from tfgym.renderer import RenderBatch, Renderer, check_device, view_geometry
from tfgym.scene import DEFAULT_WORKING_SIZE, Scene, load_scene, scene_nbytes
from tfgym.transfer_function import (
    COLOR_SCHEMES,
    TransferFunction,
    luts_from_actions,
    validate_actions,
)
from tfgym.volume import Tissue

__all__ = ["RENDERER_CACHE", "SceneScorer", "ScoreBatch", "ScoringSettings", "shared_renderer"]

ORACLE_CHUNK = 512  # actions rendered per call by SceneScorer.oracle_scores
RENDERER_CACHE_MB_ENV = "TFGYM_RENDERER_CACHE_MB"
DEFAULT_RENDERER_CACHE_MB = 2048


def _renderer_nbytes(renderer: Renderer) -> int:
    """Bytes a cached renderer keeps alive: its own arrays and its scene's.

    The scene is counted too (also if the scene cache holds it): a cached renderer keeps its
    scene alive after the scene cache dropped it, so the budget bounds both.
    """
    arrays = {id(v): v for v in vars(renderer).values() if isinstance(v, np.ndarray)}
    return sum(a.nbytes for a in arrays.values()) + scene_nbytes(renderer.scene)


RENDERER_CACHE: ByteLRU[tuple[Any, ...], Renderer] = ByteLRU(
    env_budget_bytes(RENDERER_CACHE_MB_ENV, DEFAULT_RENDERER_CACHE_MB), _renderer_nbytes
)
"""The process's renderers by (scene object, image size, view, shading, device)."""


def shared_renderer(
    scene: Scene, *, image_size: int, view: str, shading: bool, device: str
) -> Renderer:
    """The scene's renderer for these settings from :data:`RENDERER_CACHE` (built if missing).

    The key holds the scene object's ``id``; a cached renderer references its scene, so that
    object stays alive (and its ``id`` unique) as long as the entry.

    Example:
        >>> from tfgym.scene import load_scene
        >>> scene = load_scene("headsq", working_size=32)
        >>> a = shared_renderer(scene, image_size=32, view="front", shading=True, device="cpu")
        >>> a is shared_renderer(scene, image_size=32, view="front", shading=True, device="cpu")
        True
    """
    key = (id(scene), scene.name, int(image_size), view, bool(shading), str(device))
    return RENDERER_CACHE.get_or_build(
        key,
        lambda: Renderer(scene, image_size=image_size, view=view, shading=shading, device=device),
    )


@dataclass(frozen=True)
class ScoringSettings:
    """What an action means and how it is rendered and judged.

    Attributes:
        n_vertices: polygon vertices (an action has ``2 * n_vertices`` numbers).
        histogram_bins: bins per joint-histogram axis (the observation's size).
        working_size: voxels along the longest side of the working volume.
        image_size: renderings are ``image_size x image_size`` pixels.
        view: camera preset (:data:`tfgym.views.VIEWS`).
        shading: gradient-based headlight shading.
        opacity: opacity of a fully covered histogram bin.
        color_scheme: TF colour scheme (:data:`tfgym.transfer_function.COLOR_SCHEMES`).
        target: the oracle's target, a name of :data:`tfgym.oracle.TARGETS` or tissues.
        device: ``"cpu"`` (compiled kernel) or a torch device such as ``"cuda"``.

    Raises:
        ValueError: any setting out of range or unknown (checked at construction; a CUDA
            device on a machine without CUDA included).
    """

    n_vertices: int = field(default=4, metadata={"help": "polygon vertices of an action"})
    histogram_bins: int = field(
        default=64, metadata={"help": "joint-histogram bins per axis", "flag": "--bins"}
    )
    working_size: int = field(
        default=DEFAULT_WORKING_SIZE, metadata={"help": "voxels along the longest side"}
    )
    image_size: int = field(default=128, metadata={"help": "image side in pixels"})
    view: str = field(
        default="front", metadata={"help": "camera: front, back, left/side, right, top, bottom"}
    )
    shading: bool = field(default=True, metadata={"help": "gradient-based shading"})
    opacity: float = field(default=0.8, metadata={"help": "opacity of a fully covered bin"})
    color_scheme: str = field(
        default="bone", metadata={"help": "TF colour scheme", "choices": tuple(COLOR_SCHEMES)}
    )
    target: str | Sequence[Tissue] = field(
        default="bone", metadata={"help": "oracle target (bone, bone_only, teeth, skin)"}
    )
    device: str = field(
        default="cpu", metadata={"help": "cpu (compiled kernel) or a torch device, e.g. cuda"}
    )

    def __post_init__(self) -> None:
        """Validate every setting."""
        for name, low in (("n_vertices", 3), ("histogram_bins", 8), ("working_size", 8)):
            if int(getattr(self, name)) < low:
                raise ValueError(f"{name} must be at least {low}, got {getattr(self, name)}")
        if int(self.image_size) < 8:
            raise ValueError(f"image_size must be at least 8, got {self.image_size}")
        view_geometry(self.view)
        if not (np.isfinite(self.opacity) and 0.0 <= self.opacity <= 1.0):
            raise ValueError(f"opacity must be in [0, 1], got {self.opacity}")
        if self.color_scheme not in COLOR_SCHEMES:
            raise ValueError(
                f"unknown color scheme {self.color_scheme!r}; valid: {sorted(COLOR_SCHEMES)}"
            )
        check_device(self.device)
        target = self.target if isinstance(self.target, str) else tuple(self.target)
        object.__setattr__(self, "target", target)
        resolve_target(target)  # validates the name or tissues

    @property
    def action_dim(self) -> int:
        """Numbers per action, ``2 * n_vertices``."""
        return 2 * int(self.n_vertices)

    @property
    def tissues(self) -> tuple[Tissue, ...]:
        """The oracle's target as tissues (:func:`tfgym.oracle.resolve_target`)."""
        return resolve_target(self.target)


@dataclass(frozen=True)
class ScoreBatch:
    """Rewards and oracle components of a batch of actions of one scene.

    Attributes:
        scene: the scene's name (or scan path).
        actions: float32 ``(batch, 2 * n_vertices)``, validated and clipped to [-1, 1].
        rewards: float64 ``(batch,)``, the reward backend's rewards.
        oracle_score: float64 ``(batch,)``, the oracle's score whatever the backend.
        visibility: float64 ``(batch,)``, the oracle's visibility component.
        purity: float64 ``(batch,)``, the oracle's purity component.
        structure: float64 ``(batch,)``, the oracle's structure component (SSIM against
            the target drawn alone, :mod:`tfgym.oracle.structure`).
        labels_approximate: the oracle judged intensity classes, not true labels.
        target_plausible: False when the scene holds no plausible target for the oracle
            (:func:`tfgym.oracle.target_plausibility`, e.g. bone in an MR scan): the oracle's
            score and its components are still computed but mean nothing there.
        target_warning: why the target is implausible (None when it is plausible).
        renderings: the renderings when asked for (``renderings=True``), else None.
        opacity: the TFs' opacity; color_scheme: their colour scheme.
    """

    scene: str
    actions: np.ndarray
    rewards: np.ndarray
    oracle_score: np.ndarray
    visibility: np.ndarray
    purity: np.ndarray
    structure: np.ndarray
    labels_approximate: bool
    target_plausible: bool = True
    target_warning: str | None = None
    renderings: RenderBatch | None = None
    opacity: float = 0.8
    color_scheme: str = "bone"

    def __len__(self) -> int:
        """Batch size."""
        return len(self.rewards)

    def tf(self, i: int) -> TransferFunction:
        """The transfer function of action ``i``."""
        return TransferFunction.from_valid_action(
            self.actions[i], opacity=self.opacity, color_scheme=self.color_scheme
        )

    @property
    def tfs(self) -> list[TransferFunction]:
        """The transfer functions of all actions (built on demand)."""
        return [self.tf(i) for i in range(len(self))]

    def info(self, i: int = 0) -> dict[str, Any]:
        """The env's step ``info`` for action ``i``: plain Python values and the TF.

        Keys: ``scene``, ``oracle_score``, ``visibility``, ``purity``, ``structure``,
        ``labels_approximate``, ``target_plausible``, ``tf``, and ``target_warning`` when
        the target is not plausible.
        """
        info = {
            "scene": self.scene,
            "oracle_score": float(self.oracle_score[i]),
            "visibility": float(self.visibility[i]),
            "purity": float(self.purity[i]),
            "structure": float(self.structure[i]),
            "labels_approximate": bool(self.labels_approximate),
            "target_plausible": bool(self.target_plausible),
            "tf": self.tf(i),
        }
        if not self.target_plausible:
            info["target_warning"] = self.target_warning
        return info


class SceneScorer:
    """Renders and scores batches of actions (or TFs) of one scene.

    Args:
        scene: a scene name, scan path or :class:`tfgym.scene.Scene`.
        settings: what actions mean and how they are rendered (default settings if None).
        backend: the reward backend; default: the oracle for ``settings.target``.
        share_renderer: take the renderer from :data:`RENDERER_CACHE` (False: build a private
            one, e.g. for a scene that will not be seen again).

    The oracle's components are computed for every batch whatever the backend (they are the
    ground truth every experiment is measured against); when the backend is the oracle for
    the same target, its score is the reward without a second evaluation.
    """

    def __init__(
        self,
        scene: str | Scene,
        settings: ScoringSettings | None = None,
        *,
        backend: RewardBackend | None = None,
        share_renderer: bool = True,
    ) -> None:
        """Load the scene (process cache) and get its renderer (shared, or built here)."""
        self.settings = settings or ScoringSettings()
        s = self.settings
        self.scene = (
            scene
            if isinstance(scene, Scene)
            else load_scene(scene, working_size=s.working_size, histogram_bins=s.histogram_bins)
        )
        build = shared_renderer if share_renderer else Renderer
        self.renderer = build(
            self.scene, image_size=s.image_size, view=s.view, shading=s.shading, device=s.device
        )
        self.oracle = Oracle(s.tissues)
        self.plausibility = target_plausibility(self.scene, s.tissues)
        self.backend = backend if backend is not None else OracleBackend(s.tissues)
        self._backend_is_oracle = (
            isinstance(self.backend, OracleBackend) and self.backend.oracle == self.oracle
        )

    def __repr__(self) -> str:
        return f"SceneScorer({self.scene.name!r}, backend={self.backend.name!r})"

    @property
    def is_oracle(self) -> bool:
        """Whether the rewards are the oracle's scores for the settings' target."""
        return self._backend_is_oracle

    @property
    def name(self) -> str:
        """The scene's name (or scan path)."""
        return self.scene.name

    @property
    def observation(self) -> np.ndarray:
        """The scene's joint-histogram image, uint8 ``(1, bins, bins)``."""
        return self.scene.observation

    @property
    def action_dim(self) -> int:
        """Numbers per action, ``2 * n_vertices``."""
        return self.settings.action_dim

    def score(self, actions: np.ndarray, *, renderings: bool = False) -> ScoreBatch:
        """Render a batch of actions in one call and score it.

        Args:
            actions: ``(batch, 2 * n_vertices)`` (or one flat action); values outside
                [-1, 1] are clipped, NaN or inf raises.
            renderings: keep the renderings in the result.

        Returns:
            The :class:`ScoreBatch`.

        Raises:
            ValueError: malformed actions, or a backend returning the wrong shape.
        """
        return self._score_valid(validate_actions(actions, self.settings.n_vertices), renderings)

    def _score_valid(self, acts: np.ndarray, keep: bool) -> ScoreBatch:
        """:meth:`score` for actions that :func:`validate_actions` returned."""
        s = self.settings
        luts = luts_from_actions(
            acts, self.scene.ranges, opacity=s.opacity, color_scheme=s.color_scheme
        )
        return self._score(acts, luts, keep, s.opacity, s.color_scheme)

    def score_tfs(self, tfs: Sequence[TransferFunction], *, renderings: bool = False) -> ScoreBatch:
        """Like :meth:`score` for transfer-function objects (their own opacity and colours).

        The TFs' polygons are read relative to this scene's histogram (a TF's recorded
        ``ranges`` are informative only). ``ScoreBatch.opacity`` and ``color_scheme`` are the
        first TF's.
        """
        if not tfs:
            raise ValueError("no transfer functions to score")
        for tf in tfs:
            if len(tf.vertices) != self.settings.n_vertices:
                raise ValueError(
                    f"a TF has {len(tf.vertices)} vertices; this scorer's actions have "
                    f"{self.settings.n_vertices}"
                )
        acts = np.stack([tf.action for tf in tfs]).astype(np.float32)
        luts = np.stack([tf.lut(self.scene.ranges) for tf in tfs])
        return self._score(acts, luts, renderings, tfs[0].opacity, tfs[0].color_scheme)

    def _score(
        self, acts: np.ndarray, luts: np.ndarray, keep: bool, opacity: float, scheme: str
    ) -> ScoreBatch:
        batch = self.renderer.render(luts)
        parts = self.oracle.evaluate(batch, self.scene)
        if self._backend_is_oracle:
            rewards = parts["score"]
        else:
            rewards = np.asarray(self.backend.reward(self.scene, acts, batch), dtype=np.float64)
            if rewards.shape != (len(acts),):
                raise ValueError(
                    f"reward backend {self.backend.name!r} returned shape {rewards.shape}, "
                    f"expected ({len(acts)},)"
                )
        return ScoreBatch(
            scene=self.scene.name,
            actions=acts,
            rewards=rewards,
            oracle_score=parts["score"],
            visibility=parts["visibility"],
            purity=parts["purity"],
            structure=parts["structure"],
            labels_approximate=self.scene.labels_approximate,
            target_plausible=self.plausibility.plausible,
            target_warning=None if self.plausibility.plausible else self.plausibility.reason,
            renderings=batch if keep else None,
            opacity=float(opacity),
            color_scheme=scheme,
        )

    def oracle_scores(
        self, actions: np.ndarray, *, chunk: int = ORACLE_CHUNK, progress: bool = False
    ) -> np.ndarray:
        """Noise-free oracle scores of any number of actions, rendered ``chunk`` at a time.

        Returns:
            float64 ``(batch,)`` in [0, 1].
        """
        acts = validate_actions(actions, self.settings.n_vertices)
        out = np.empty(len(acts), dtype=np.float64)
        chunk = max(1, int(chunk))
        starts = range(0, len(acts), chunk)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc=f"oracle {self.scene.name}", leave=False)
        for start in starts:
            batch = self._score_valid(acts[start : start + chunk], False)
            out[start : start + chunk] = batch.oracle_score
        return out
