"""The TransferFunction-v0 environment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from tfgym.backends import OracleBackend, RewardBackend, make_backend
from tfgym.oracle import resolve_target
from tfgym.renderer import RenderBatch, Renderer, view_geometry
from tfgym.scene import DEFAULT_WORKING_SIZE, Scene, load_scene, resolve_scenes
from tfgym.transfer_function import TransferFunction, action_to_vertices
from tfgym.volume import Tissue

__all__ = ["TransferFunctionEnv"]


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
    backend returns the oracle's quality score in [0, 1] (visibility and purity of bone and
    teeth, see :mod:`tfgym.oracle`); ``"reward_model"`` returns a learned Bradley-Terry
    reward model's reward (unbounded, checkpoint from ``reward_model_path``).

    ## Starting State

    ``reset`` draws a scene uniformly from the env's scene set with ``self.np_random``, or
    uses ``options={"scene": name}``. The observation is that scene's histogram image.

    ## Episode End

    The episode terminates after the single step (``terminated=True``). Calling ``step``
    again without ``reset`` raises ``gymnasium.error.ResetNeeded``.

    ## Info

    ``reset``: ``scene``. ``step``: ``scene``, ``oracle_score`` (the oracle's score for the
    env's ``target`` whatever the backend; approximate on unlabelled scans), ``visibility``,
    ``purity``, ``labels_approximate`` and ``tf`` (the :class:`TransferFunction`).

    ## Arguments

    | argument         | default   | meaning                                                   |
    |------------------|-----------|-----------------------------------------------------------|
    | scenes           | "train"   | scene set name, scene name, scan path, or a list of them  |
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
    | device           | "cpu"     | torch device of the renderer (e.g. ``"cuda"``)            |
    | reward_model_path| None      | checkpoint of the ``"reward_model"`` backend              |
    | render_mode      | None      | ``"rgb_array"`` or ``"human"`` (a pyvista window)          |

    ## Version History

    * v0: initial version.

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
        scenes: str | Sequence[str] = "train",
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
        render_mode: str | None = None,
    ) -> None:
        """Validate arguments and build spaces; scenes load lazily at reset."""
        if n_vertices < 3:
            raise ValueError(f"n_vertices must be at least 3, got {n_vertices}")
        if histogram_bins < 8:
            raise ValueError(f"histogram_bins must be at least 8, got {histogram_bins}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"unknown render_mode {render_mode!r}; valid: {self.metadata['render_modes']}"
            )
        view_geometry(view)  # validates the name
        self.scene_names = resolve_scenes(scenes)
        self.n_vertices, self.histogram_bins = int(n_vertices), int(histogram_bins)
        self.working_size, self.image_size = int(working_size), int(image_size)
        self.view, self.shading, self.device = view, bool(shading), device
        self.tf_kwargs: dict[str, Any] = {"opacity": opacity, "color_scheme": color_scheme}
        TransferFunction(((0, 0), (1, 0), (0, 1)), **self.tf_kwargs)  # validates both
        self.target = resolve_target(target)
        if reward_model_path is not None and reward_backend != "reward_model":
            raise ValueError("reward_model_path= is only used with reward_backend='reward_model'")
        backend_kwargs: dict[str, Any] = {}
        if reward_backend == "oracle":
            backend_kwargs = {"target": self.target}
        elif reward_backend == "reward_model":
            backend_kwargs = {
                "path": reward_model_path,
                "histogram_bins": histogram_bins,
                "n_vertices": n_vertices,
                "device": device,
            }
        self.backend = make_backend(reward_backend, **backend_kwargs)
        self._oracle = (
            self.backend
            if isinstance(self.backend, OracleBackend) and self.backend.oracle.target == self.target
            else OracleBackend(self.target)
        )
        self.render_mode = render_mode
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2 * n_vertices,), dtype=np.float32)
        shape = (1, histogram_bins, histogram_bins)
        self.observation_space = spaces.Box(0, 255, shape=shape, dtype=np.uint8)
        self._renderers: dict[str, Renderer] = {}
        self.scene: Scene | None = None
        self._last: RenderBatch | None = None
        self._last_tf: TransferFunction | None = None
        self._done = True

    # -- scenes -------------------------------------------------------------------------------
    def renderer_for(self, name: str) -> Renderer:
        """The (cached) renderer of a scene at this env's settings."""
        if name not in self._renderers:
            scene = load_scene(
                name, working_size=self.working_size, histogram_bins=self.histogram_bins
            )
            self._renderers[name] = Renderer(
                scene,
                image_size=self.image_size,
                view=self.view,
                shading=self.shading,
                device=self.device,
            )
        return self._renderers[name]

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
            name = resolve_scenes(options["scene"])
            if len(name) != 1:
                raise ValueError(f"options['scene'] must name one scene, got {options['scene']!r}")
            name_ = name[0]
        else:
            name_ = self.scene_names[int(self.np_random.integers(len(self.scene_names)))]
        self.scene = self.renderer_for(name_).scene
        self._last, self._last_tf, self._done = None, None, False
        return self._get_obs(), {"scene": name_}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Render the action's TF and score it; the episode ends."""
        if self.scene is None or self._done:
            raise gym.error.ResetNeeded("call reset() before step(): episodes last one step")
        vertices = action_to_vertices(np.asarray(action).ravel(), self.n_vertices)
        rewards, batch, info = self.evaluate(vertices.reshape(1, -1))
        self._last, self._last_tf, self._done = batch, info["tf"][0], True
        step_info = {k: (v[0] if isinstance(v, np.ndarray) else v) for k, v in info.items()}
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), float(rewards[0]), True, False, step_info

    def evaluate(
        self, actions: np.ndarray, scene: str | None = None
    ) -> tuple[np.ndarray, RenderBatch, dict[str, Any]]:
        """Render and score a batch of actions for one scene in one call (no episode state).

        Args:
            actions: ``(batch, 2 * n_vertices)``; validated and clipped like ``step``'s.
            scene: scene name; defaults to the current scene.

        Returns:
            ``(rewards (batch,), renderings, info)`` where info holds batched
            ``oracle_score``, ``visibility``, ``purity`` arrays and a list of ``tf``.
        """
        if scene is None and self.scene is None:
            raise gym.error.ResetNeeded("call reset() first or pass scene=")
        renderer = (
            self.renderer_for(scene)
            if scene is not None
            else self.renderer_for(
                self.scene.name  # type: ignore[union-attr]
            )
        )
        acts = np.asarray(actions, dtype=np.float64)
        if acts.ndim != 2:
            raise ValueError(f"actions must be (batch, {2 * self.n_vertices}), got {acts.shape}")
        tfs = [
            TransferFunction.from_action(
                action_to_vertices(a, self.n_vertices).ravel(), **self.tf_kwargs
            )
            for a in acts
        ]
        clipped = np.stack([tf.action for tf in tfs])
        luts = np.stack([tf.lut(renderer.scene.ranges) for tf in tfs])
        batch = renderer.render(luts)
        parts = self._oracle.oracle.evaluate(batch, renderer)
        if self.backend is self._oracle:
            rewards = parts["score"]
        else:
            rewards = np.asarray(self.backend.reward(clipped, batch, renderer), dtype=np.float64)
            if rewards.shape != (len(acts),):
                raise ValueError(
                    f"reward backend {self.backend.name!r} returned shape {rewards.shape}, "
                    f"expected ({len(acts)},)"
                )
        info: dict[str, Any] = {
            "scene": renderer.scene.name,
            "oracle_score": parts["score"],
            "visibility": parts["visibility"],
            "purity": parts["purity"],
            "labels_approximate": renderer.scene.labels_approximate,
            "tf": tfs,
        }
        return rewards, batch, info

    def render(self) -> np.ndarray | None:
        """``rgb_array``: the last rendering ``(H, W, 3)`` uint8 (black before a step).

        ``human``: shows the last TF on the working volume in an interactive pyvista window
        (blocks until the window is closed).
        """
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array'")
            return None
        if self.render_mode == "rgb_array":
            if self._last is None:
                return np.zeros((self.image_size, self.image_size, 3), dtype=np.uint8)
            return self._last.rgb[0]
        if self.scene is not None and self._last_tf is not None:
            from tfgym.vtk_render import show_interactive

            lut = self._last_tf.lut(self.scene.ranges)
            show_interactive(self.scene.volume, lut, self.scene.ranges, view=self.view)
        return None

    def close(self) -> None:
        """Release the backend."""
        self.backend.close()
        self._renderers.clear()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without caches (renderers are rebuilt from the process-wide scene cache)."""
        state = self.__dict__.copy()
        state["_renderers"] = {}
        state["scene_name"] = None if self.scene is None else self.scene.name
        state["scene"] = None
        state["_last"], state["_last_tf"] = None, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore, reloading the current scene lazily."""
        name = state.pop("scene_name")
        self.__dict__.update(state)
        if name is not None:
            self.scene = self.renderer_for(name).scene
