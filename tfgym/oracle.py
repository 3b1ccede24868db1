"""Synthetic preference oracle: a quality score and a simulated human labeler.

Quality score
-------------
For a rendering with per-label contributions ``C_l`` (see :mod:`tfgym.renderer`: the summed
composited weight ``T * alpha`` of voxels of label ``l`` over the image plane) and a set of
target tissues ``T``:

* the target region is the target tissues **plus the one-voxel shell around them**: at working
  resolution a voxel touching bone is partly bone (partial volume), and a TF that draws a
  bone surface draws that shell. Without it, the best-scoring TFs would cut the boundary
  voxels out and leave a speckled, moth-eaten bone surface that no radiologist would choose;
* visibility ``v = min(1, C_target / A_target)`` where ``C_target`` is the contribution of the
  target region and ``A_target`` the area (plane pixels) of its silhouette, i.e. of the rays
  that pass through it. ``v = 1`` means every such ray is fully absorbed by the target;
  anything drawn in front of it (occlusion) lowers ``T`` before it is reached and so lowers
  ``v``;
* purity ``p = C_target / sum_l C_l``: the share of what is drawn that is target;
* **score** ``= sqrt(v * p)`` in [0, 1] (0 for an empty rendering).

The default target is bone and teeth (a clear view of skull and jaw, the paper's goal); named
targets are in :data:`TARGETS`. On unlabelled scans the labels are intensity classes (see
:mod:`tfgym.scene`), so the score is an approximation there.

Simulated labeler
-----------------
Compares two scores ``s_a, s_b`` as a human would and answers ``mu`` in ``{1, 0.5, 0}`` (a is
better / about equal / b is better), the target of the Bradley-Terry loss. In order:

1. with probability ``skip_rate`` the pair is skipped (``mu = NaN``);
2. if ``|s_a - s_b| < equal_band`` the answer is "equal" (``mu = 0.5``);
3. otherwise ``mu = 1`` with Bradley-Terry probability ``sigmoid((s_a - s_b) / temperature)``
   (``temperature = 0``: always the better one), else ``mu = 0``;
4. with probability ``mistake_rate`` a non-tie answer is flipped (a slip of the mouse).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfgym.volume import Tissue

__all__ = [
    "LABELER_PRESETS",
    "TARGETS",
    "Oracle",
    "SimulatedLabeler",
    "make_labeler",
    "reference_action",
    "resolve_target",
]

TARGETS: dict[str, tuple[Tissue, ...]] = {
    "bone": (Tissue.BONE, Tissue.TEETH),
    "bone_only": (Tissue.BONE,),
    "teeth": (Tissue.TEETH,),
    "skin": (Tissue.SOFT_TISSUE,),
}


def resolve_target(target: str | Sequence[Tissue | int]) -> tuple[Tissue, ...]:
    """A target name of :data:`TARGETS` or a sequence of tissues, as a tuple of ``Tissue``.

    Raises:
        ValueError: unknown name or empty sequence.
    """
    if isinstance(target, str):
        if target not in TARGETS:
            raise ValueError(f"unknown oracle target {target!r}; valid: {sorted(TARGETS)}")
        return TARGETS[target]
    tissues = tuple(Tissue(t) for t in target)
    if not tissues:
        raise ValueError("oracle target must name at least one tissue")
    return tissues


@dataclass(frozen=True)
class Oracle:
    """The quality score of renderings for a target (see module docstring).

    Attributes:
        target: tissues that should be visible.
    """

    target: tuple[Tissue, ...] = TARGETS["bone"]

    def components(self, contrib: np.ndarray, target_area: float) -> dict[str, np.ndarray]:
        """Visibility, purity and score for a batch of contributions.

        Args:
            contrib: ``(batch, n_labels, 32)`` class contributions
                (:attr:`tfgym.renderer.RenderBatch.class_contrib`; the shell counts as
                target) or ``(batch, n_labels)`` label contributions (no shell).
            target_area: silhouette area of the target region in plane pixels.

        Returns:
            ``visibility``, ``purity`` and ``score``, each ``(batch,)``.
        """
        c = np.asarray(contrib, dtype=np.float64)
        if c.ndim == 2:
            on_target = c[:, list(self.target)].sum(axis=1)
        else:
            from tfgym.renderer import class_mask

            flat = c.reshape(c.shape[0], -1)
            on_target = flat[:, class_mask(self.target, shell=True)].sum(axis=1)
        total = c.reshape(c.shape[0], -1).sum(axis=1)
        visibility = np.clip(on_target / max(target_area, 1.0), 0.0, 1.0)
        purity = np.divide(on_target, total, out=np.zeros_like(total), where=total > 1e-9)
        return {
            "visibility": visibility,
            "purity": np.clip(purity, 0.0, 1.0),
            "score": np.sqrt(visibility * np.clip(purity, 0.0, 1.0)),
        }

    def evaluate(self, render: Any, renderer: Any) -> dict[str, np.ndarray]:
        """Components for a :class:`tfgym.renderer.RenderBatch` made by ``renderer``."""
        area = renderer.silhouette_area(self.target, shell=True)
        return self.components(render.class_contrib, area)

    def score(self, label_contrib: np.ndarray, target_area: float) -> np.ndarray:
        """Quality scores in [0, 1], shape ``(batch,)``.

        Example:
            >>> oracle = Oracle()
            >>> contrib = np.array([[0, 0, 50, 0, 0], [0, 100, 0, 0, 0], [0, 25, 75, 0, 0.0]])
            >>> oracle.score(contrib, target_area=100).round(3)
            array([0.707, 0.   , 0.75 ])
        """
        return self.components(label_contrib, target_area)["score"]


@dataclass(frozen=True)
class SimulatedLabeler:
    """A simulated human comparing two renderings by their oracle scores.

    Attributes:
        temperature: Bradley-Terry temperature on score differences (0 = deterministic).
        equal_band: score differences below this are answered "equal" (0.5).
        mistake_rate: probability of flipping a non-tie answer.
        skip_rate: probability of skipping a pair (answer NaN).
    """

    temperature: float = 0.05
    equal_band: float = 0.02
    mistake_rate: float = 0.05
    skip_rate: float = 0.0

    def __post_init__(self) -> None:
        """Validate parameters."""
        for name in ("temperature", "equal_band"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("mistake_rate", "skip_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    def prob_a_better(self, score_a: np.ndarray, score_b: np.ndarray) -> np.ndarray:
        """Bradley-Terry probability that ``a`` is preferred (before ties and mistakes)."""
        diff = np.asarray(score_a, np.float64) - np.asarray(score_b, np.float64)
        if self.temperature == 0:
            return np.where(diff > 0, 1.0, np.where(diff < 0, 0.0, 0.5))
        return 0.5 * (1.0 + np.tanh(diff / (2.0 * self.temperature)))  # stable sigmoid

    def compare(
        self, score_a: np.ndarray, score_b: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Answers ``mu`` (1, 0.5, 0, or NaN when skipped) for pairs of scores.

        Example:
            >>> lab = LABELER_PRESETS["perfect"]
            >>> lab.compare(np.array([0.9, 0.1, 0.5]), np.array([0.2, 0.8, 0.5]),
            ...             np.random.default_rng(0))
            array([1. , 0. , 0.5])
        """
        a, b = np.broadcast_arrays(np.asarray(score_a, np.float64), np.asarray(score_b, np.float64))
        mu = (rng.random(a.shape) < self.prob_a_better(a, b)).astype(np.float64)
        tie = np.abs(a - b) < self.equal_band
        tie |= (a == b) & (self.temperature == 0)
        mistake = rng.random(a.shape) < self.mistake_rate
        mu = np.where(mistake, 1.0 - mu, mu)
        mu[tie] = 0.5
        mu[rng.random(a.shape) < self.skip_rate] = np.nan
        return mu


LABELER_PRESETS: dict[str, SimulatedLabeler] = {
    "perfect": SimulatedLabeler(temperature=0.0, equal_band=0.0, mistake_rate=0.0),
    # equal_band 0.014: 17 % ties (10-23 %) on the paper protocol over the train phantoms;
    # the paper had 613 of 4000 (15 %)
    "noisy": SimulatedLabeler(temperature=0.05, equal_band=0.014, mistake_rate=0.05),
    "mistaken": SimulatedLabeler(temperature=0.05, equal_band=0.02, mistake_rate=0.2),
    "indecisive": SimulatedLabeler(temperature=0.05, equal_band=0.1, mistake_rate=0.05),
    "distracted": SimulatedLabeler(
        temperature=0.1, equal_band=0.02, mistake_rate=0.1, skip_rate=0.2
    ),
}


def make_labeler(preset: str | SimulatedLabeler) -> SimulatedLabeler:
    """A labeler from a preset name of :data:`LABELER_PRESETS` (or pass one through)."""
    if isinstance(preset, SimulatedLabeler):
        return preset
    if preset not in LABELER_PRESETS:
        raise ValueError(f"unknown labeler preset {preset!r}; valid: {sorted(LABELER_PRESETS)}")
    return LABELER_PRESETS[preset]


def reference_action(scene: object, target: str | Sequence[Tissue] = "bone") -> np.ndarray:
    """A hand-made TF for ``target``: a full-height intensity band around the target tissue.

    The band's edges sit halfway between the target's grey values (5th/95th percentiles of
    all target voxels pooled, from the scene's labels) and those of the neighbouring tissues;
    the upper edge is the top of the histogram when no non-target tissue (metal aside) is
    denser.

    Args:
        scene: a :class:`tfgym.scene.Scene`.
        target: the target tissues.

    Returns:
        A float32 action of 4 vertices (a rectangle), ``(8,)``.
    """
    tissues = set(resolve_target(target))
    ranges = scene.ranges  # type: ignore[attr-defined]
    data, labels = scene.volume.data, scene.labels  # type: ignore[attr-defined]
    pooled = data[np.isin(labels, list(tissues))]
    if pooled.size == 0:
        raise ValueError(f"none of the target tissues {sorted(tissues)} is in the scene")
    # pooled percentiles: a few artefact-darkened voxels of a small tissue (teeth next to
    # metal) must not drag the band's lower edge into soft tissue
    lo_t, med, hi_t = np.percentile(pooled, (5.0, 50.0, 95.0))
    others = {
        t: scene.tissue_intensity(t, (5.0, 50.0, 95.0))  # type: ignore[attr-defined]
        for t in Tissue
        if t != Tissue.METAL and t not in tissues
    }
    present = [s for s in others.values() if np.all(np.isfinite(s))]
    below = [s[2] for s in present if s[1] < med]
    above = [s[0] for s in present if s[1] > med]
    lo = (lo_t + max(below)) / 2 if below else lo_t
    hi = (hi_t + min(above)) / 2 if above else np.inf
    x = (ranges.intensity_to_bin(np.array([lo, hi])) / ranges.n_intensity_bins) * 2 - 1
    x0, x1 = np.clip(x, -1, 1)
    return np.array([x0, -1, x1, -1, x1, 1, x0, 1], dtype=np.float32)
