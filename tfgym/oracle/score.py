"""The oracle's quality score of a rendering.

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

The simulated labeler that turns two scores into a human-like answer is
:mod:`tfgym.oracle.labeler`; the hand-made reference TF is :mod:`tfgym.oracle.reference`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tfgym.renderer import RenderBatch, class_mask, silhouette_area
from tfgym.scene import Scene
from tfgym.volume import Tissue

__all__ = ["TARGETS", "Oracle", "resolve_target"]

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

    def evaluate(self, render: RenderBatch, scene: Scene) -> dict[str, np.ndarray]:
        """Components for a :class:`tfgym.renderer.RenderBatch` of ``scene``.

        The target's silhouette is taken from the view the batch was rendered from.
        """
        area = silhouette_area(scene, render.view, self.target, shell=True)
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
