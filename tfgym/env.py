"""The TransferFunction-v0 environment."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from tfgym.backends import RewardBackend, make_backend
from tfgym.scene import (
    DEFAULT_WORKING_SIZE,
    Scene,
    ScenePool,
    load_scene,
    resolve_scenes,
    scene_pool,
)
from tfgym.scoring import SceneScorer, ScoreBatch, ScoringSettings
from tfgym.volume import Tissue

__all__ = ["MAX_SCORERS", "TransferFunctionEnv"]

MAX_SCORERS = 64
"""Scene scorers an env keeps, least recently used out (every fixed scene set fits)."""


class TransferFunctionEnv(gym.Env[np.ndarray, np.ndarray]):
    """Design a 2D transfer function for a CT volume in one step.

    ## Description

    The agent sees the joint histogram (intensity x gradient magnitude) of a CT head scan and
    answers with the vertices of a polygon in it: the polygon is a 2D transfer function (TF).
    The env renders the volume with that TF and asks a reward backend how good the rendering
    is (Melenberg et al., MIDL 2025; RLHF after Ziegler et al., 2020). One step per episode;
    the scene changes at every reset, so the agent must read the histogram.

    ## Action Space

    ``Box(-1, 1, (2 * n_vertices,), float32)``: ``x1, y1, x2, y2, ...``. ``x`` maps linearly onto
    the histogram's intensity axis, ``y`` onto its gradient axis (-1 = low edge, +1 = high edge).
    Values outside [-1, 1] are clipped; NaN or inf raises ``ValueError``. The closed polygon is
    rasterised with the even-odd rule and anti-aliased edges; a degenerate polygon (zero
    area) is a valid empty TF (see :mod:`tfgym.transfer_function`).

    ## Observation Space

    ``Box(0, 255, (1, histogram_bins, histogram_bins), uint8)``: the log-scaled joint histogram
    of the scene, channel-first; row ``j`` = gradient bin ``j`` (row 0 = zero gradient),
    column ``i`` = intensity bin ``i`` (see :mod:`tfgym.histogram` for the axis ranges).

    ## Rewards

    Whatever the reward backend returns for the rendering, a float. The default ``"oracle"``
    backend returns the oracle's quality score in [0, 1] (visibility, purity and structure of
    bone and teeth, see :mod:`tfgym.oracle`); ``"reward_model"`` returns a learned
    Bradley-Terry reward model's reward (unbounded, checkpoint from ``reward_model_path``).

    ## Starting State

    ``reset`` draws a scene uniformly from the env's scene pool (:attr:`scene_pool`) with
    one ``self.np_random.integers`` call, or uses ``options={"scene": name}``. The
    observation is that scene's histogram image.

    With ``scenes="procedural"`` the pool is a million phantom seeds
    (:data:`tfgym.scene.PROCEDURAL_SEEDS`, disjoint from ``train`` and ``heldout``), so nearly
    every reset shows a head never seen before: its volume is generated on its first use on
    the machine, then read from the disk cache (:mod:`tfgym.cache`), and the scene is built
    outside the process scene cache. ``"procedural"`` cannot be mixed with other scenes in a
    list; pass a :class:`tfgym.scene.ScenePool` to draw from names and seeds together. The
    env keeps the scorers of its :data:`MAX_SCORERS` most recently used scenes.

    ## Episode End

    The episode terminates after the single step (``terminated=True``). Calling ``step``
    again without ``reset`` raises ``gymnasium.error.ResetNeeded``.

    ## Info

    ``reset``: ``scene``. ``step``: ``scene``, ``oracle_score`` (the oracle's score for the
    env's ``target`` whatever the backend; approximate on unlabelled scans), its components
    ``visibility``, ``purity`` and ``structure`` (Python floats), ``labels_approximate``
    (bool), ``target_plausible`` (bool: False when the scan holds no plausible target for the
    oracle, e.g. bone in an MR scan, :func:`tfgym.oracle.target_plausibility`; the score is
    still reported but means nothing there), ``target_warning`` (str, present only when
    ``target_plausible`` is False: why) and ``tf`` (the
    :class:`tfgym.transfer_function.TransferFunction`).

    ## Batch scoring

    :meth:`scorer` returns the scene's :class:`tfgym.scoring.SceneScorer`, the object ``step``
    itself uses; it renders and scores a whole batch of actions in one call. Library code
    (search, collection, evaluation) builds its own ``SceneScorer`` from
    :attr:`settings` instead of reaching into an env.

    ## Arguments

    | argument         | default   | meaning                                                   |
    |------------------|-----------|-----------------------------------------------------------|
    | scenes           | "train"   | scene set name, ``"procedural"`` (a fresh phantom seed at  |
    |                  |           | each reset), scene name (``"phantom-N"`` for any seed N),  |
    |                  |           | scan path, a list of them, or a ``ScenePool``             |
    | reward_backend   | "oracle"  | ``"oracle"``, ``"reward_model"``, ``"human"`` or a backend |
    | n_vertices       | 4         | polygon vertices (action size ``2 * n_vertices``)         |
    | histogram_bins   | 64        | bins per histogram axis (observation size)                |
    | working_size     | 64        | voxels along the longest side of the working volume      |
    | image_size       | 128       | rendering is ``image_size x image_size``                  |
    | view             | "front"   | camera preset: front, back, left/side, right, top, bottom |
    | shading          | True      | gradient-based shading                                    |
    | opacity          | 0.8       | opacity of a fully covered histogram bin                  |
    | color_scheme     | "bone"    | TF colour scheme (``transfer_function.COLOR_SCHEMES``)    |
    | target           | "bone"    | oracle target (:data:`tfgym.oracle.TARGETS`)              |
    | device           | "cpu"     | ``"cpu"`` kernel or a torch device (e.g. ``"cuda"``)      |
    | reward_model_path| None      | checkpoint of the ``"reward_model"`` backend (and of the  |
    |                  |           | ``"human"`` backend's ``mode="async"``)                   |
    | reward_kwargs    | None      | further keyword arguments of a backend made by name       |
    | **backend_options|           | more backend arguments, merged into ``reward_kwargs``     |
    |                  |           | (e.g. ``db=``, ``mode=`` of ``"human"``)                  |
    | render_mode      | None      | ``"rgb_array"`` or ``"human"`` (a pyvista window)          |

    ## Version History

    * v0: initial version. tfgym 0.3.0 changed the phantoms (a realistic CBCT distribution;
      ``train`` is phantom-00..31) and the oracle score (a structure term); the id stays
      ``-v0`` while tfgym is pre-1.0, so results of 0.2.0 and 0.3.0 are not comparable.
      tfgym 0.4.0 registers a vector entry point: ``gym.make_vec`` resets in the same step
      (:mod:`tfgym.vector`); the env itself is unchanged.

    Example:
        >>> import gymnasium as gym
        >>> env = gym.make("tfgym:TransferFunction-v0", scenes="headsq")
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape, obs.dtype, info["scene"]
        ((1, 64, 64), dtype('uint8'), 'headsq')
        >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        >>> terminated, 0.0 <= reward <= 1.0
        (True, True)
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 4}  # noqa: RUF012

    def __init__(
        self,
        scenes: str | Sequence[str] | ScenePool = "train",
        reward_backend: str | RewardBackend = "oracle",
        *,
        n_vertices: int = 4,
        histogram_bins: int = 64,
        working_size: int = DEFAULT_WORKING_SIZE,
        image_size: int = 128,
        view: str = "front",
        shading: bool = True,
        opacity: float = 0.8,
        color_scheme: str = "bone",
        target: str | Sequence[Tissue] = "bone",
        device: str = "cpu",
        reward_model_path: str | None = None,
        reward_kwargs: dict[str, Any] | None = None,
        render_mode: str | None = None,
        **backend_options: Any,
    ) -> None:
        """Validate arguments and build spaces; scenes load lazily at reset."""
        # each env its own metadata: gymnasium 1.2's SyncVectorEnv writes its autoreset mode
        # into its first env's metadata, which would otherwise be this class's, shared by all
        self.metadata = {**type(self).metadata, "render_modes": list(self.metadata["render_modes"])}
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"unknown render_mode {render_mode!r}; valid: {self.metadata['render_modes']}"
            )
        self.settings = ScoringSettings(
            n_vertices=int(n_vertices),
            histogram_bins=int(histogram_bins),
            working_size=int(working_size),
            image_size=int(image_size),
            view=view,
            shading=bool(shading),
            opacity=float(opacity),
            color_scheme=color_scheme,
            target=target,
            device=device,
        )
        self.scene_pool = scene_pool(scenes)
        if reward_model_path is not None and reward_backend not in ("reward_model", "human"):
            raise ValueError(
                "reward_model_path= is only used with reward_backend='reward_model' or 'human'"
            )
        twice = sorted(set(backend_options) & set(reward_kwargs or {}))
        if twice:
            raise ValueError(f"backend options given twice (also in reward_kwargs): {twice}")
        if backend_options and not isinstance(reward_backend, str):
            raise ValueError(
                f"backend options {sorted(backend_options)} given with a backend instance"
            )
        kwargs = {**(reward_kwargs or {}), **backend_options}
        if reward_backend == "oracle":
            kwargs.setdefault("target", self.settings.tissues)
        elif reward_backend == "reward_model":
            if not reward_model_path and "path" not in kwargs:
                raise ValueError(
                    "reward_backend='reward_model' needs the checkpoint: pass reward_model_path="
                )
            if reward_model_path:
                kwargs["path"] = reward_model_path
            kwargs.setdefault("histogram_bins", self.settings.histogram_bins)
            kwargs.setdefault("n_vertices", self.settings.n_vertices)
            kwargs.setdefault("device", device)
            kwargs.setdefault("working_size", self.settings.working_size)
        elif reward_backend == "human":
            kwargs.setdefault("settings", self.settings)  # how labelers see the actions
            if reward_model_path:
                kwargs["path"] = reward_model_path
        self.backend = make_backend(reward_backend, **kwargs)
        self.render_mode = render_mode
        self.action_space = spaces.Box(
            -1.0, 1.0, shape=(self.settings.action_dim,), dtype=np.float32
        )
        shape = (1, self.settings.histogram_bins, self.settings.histogram_bins)
        self.observation_space = spaces.Box(0, 255, shape=shape, dtype=np.uint8)
        self._scorers: OrderedDict[str, SceneScorer] = OrderedDict()
        self._scorer: SceneScorer | None = None
        self.scene: Scene | None = None
        self._last: ScoreBatch | None = None
        self._done = True

    # -- scenes -------------------------------------------------------------------------------
    @property
    def scene_names(self) -> tuple[str, ...]:
        """The scenes of a pool of named scenes (every fixed set; not ``"procedural"``).

        Raises:
            ValueError: the pool draws phantom seeds (see :attr:`scene_pool`).
        """
        if self.scene_pool.seeds:
            raise ValueError(
                f"this env draws from {self.scene_pool!r}, not from a list of scene names"
            )
        return self.scene_pool.names

    def scorer(self, scene: str | None = None) -> SceneScorer:
        """The (cached) batch scorer of a scene at this env's settings and backend.

        Args:
            scene: a scene name or scan path; None: the current scene (after ``reset``).

        Raises:
            gymnasium.error.ResetNeeded: ``scene=None`` before the first ``reset``.
            ValueError: ``scene`` is unknown or names a scene set.
        """
        if scene is None:
            if self._scorer is None:
                raise gym.error.ResetNeeded("call reset() first or name the scene")
            return self._scorer
        return self._scene_scorer(_one_scene(scene), fresh=False)

    def _scene_scorer(self, name: str, *, fresh: bool) -> SceneScorer:
        """The cached scorer of a canonical scene name; a fresh scene skips the scene cache."""
        scorer = self._scorers.get(name)
        if scorer is not None:
            self._scorers.move_to_end(name)
            return scorer
        s = self.settings
        scene = load_scene(
            name, working_size=s.working_size, histogram_bins=s.histogram_bins, cache=not fresh
        )
        scorer = self._scorers[name] = SceneScorer(
            scene, s, backend=self.backend, share_renderer=not fresh
        )
        if len(self._scorers) > MAX_SCORERS:
            self._scorers.popitem(last=False)
        return scorer

    def _get_obs(self) -> np.ndarray:
        assert self.scene is not None
        return self.scene.observation.copy()

    # -- gymnasium API -------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Draw a scene (or take ``options["scene"]``) and return its histogram image."""
        super().reset(seed=seed)
        options = options or {}
        if "scene" in options:
            name, fresh = _one_scene(options["scene"], "options['scene']"), False
        else:
            name = self.scene_pool.sample(self.np_random)
            fresh = self.scene_pool.is_fresh(name)
        self._scorer = self._scene_scorer(name, fresh=fresh)
        self.scene = self._scorer.scene
        self._last, self._done = None, False
        return self._get_obs(), {"scene": name}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Render the action's TF and score it; the episode ends."""
        if self.scene is None or self._done:
            raise gym.error.ResetNeeded("call reset() before step(): episodes last one step")
        act = np.asarray(action).reshape(-1)  # (n, 2) vertices are accepted too
        if act.shape != self.action_space.shape:
            raise ValueError(
                f"action must have shape {self.action_space.shape}, got {np.shape(action)}"
            )
        assert self._scorer is not None
        batch = self._scorer.score(act, renderings=self.render_mode is not None)
        self._last, self._done = batch, True
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), float(batch.rewards[0]), True, False, batch.info(0)

    def render(self) -> np.ndarray | None:  # type: ignore[override, unused-ignore]
        """``rgb_array``: the last rendering ``(H, W, 3)`` uint8 (black before a step).

        ``human``: shows the last TF on the working volume in an interactive pyvista window
        (blocks until the window is closed).
        """
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array'")
            return None
        if self.render_mode == "rgb_array":
            if self._last is None or self._last.renderings is None:
                size = self.settings.image_size
                return np.zeros((size, size, 3), dtype=np.uint8)
            return self._last.renderings.rgb[0]
        if self.scene is not None and self._last is not None:
            from tfgym.vtk_render import show_interactive

            lut = self._last.tf(0).lut(self.scene.ranges)
            show_interactive(self.scene.volume, lut, self.scene.ranges, view=self.settings.view)
        return None

    def close(self) -> None:
        """Release the backend."""
        self.backend.close()
        self._scorers.clear()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without caches (scorers are rebuilt from the process-wide scene cache)."""
        state = self.__dict__.copy()
        state["_scorers"] = OrderedDict()
        state["_scorer"] = None
        state["scene_name"] = None if self.scene is None else self.scene.name
        state["scene"] = None
        state["_last"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore, reloading the current scene lazily."""
        name = state.pop("scene_name")
        self.__dict__.update(state)
        if name is not None:
            self._scorer = self.scorer(name)
            self.scene = self._scorer.scene


def _one_scene(scene: str | Path, what: str = "scene") -> str:
    """The canonical name of exactly one scene; ValueError for a set or a bad name."""
    names = resolve_scenes(scene)
    if len(names) != 1:
        raise ValueError(f"{what} must name one scene, got {scene!r}")
    return names[0]
