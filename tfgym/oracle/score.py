"""The oracle's quality score of a rendering.

Quality score
-------------
For a rendering with per-class contributions ``C`` (see :mod:`tfgym.renderer`: the summed
composited weight ``T * alpha`` of the voxels of each tissue class over the image plane, in
plane pixels) and a set of target tissues:

* the **target region** is the target tissues plus their **shell**: the voxels of *less
  dense* tissues within one voxel of the scan's reference grid of the target (one face step
  at the reference working size of 64 voxels, four at 256;
  :func:`tfgym.voxel_classes.voxel_classes`).
  A voxel touching bone is partly bone (partial volume) and a TF that draws a bone surface
  draws that shell; without it, the best-scoring TFs would cut the boundary voxels out and
  leave a speckled, moth-eaten surface. Its thickness is physical (a reference voxel, in
  mm), so a TF scores alike at every working size: with a one-voxel shell at 256 voxels the
  TF that draws headsq's partial-volume layer scored 0.92 at 64 voxels and 0.71 at 256.
  Denser tissues are never shell: the skull's surface voxels are bone, which a TF draws on
  its own, so they do not count as skin (tissues are ordered by density as
  :class:`tfgym.volume.Tissue` numbers them: air, soft tissue, bone, teeth, metal);
* **visibility** ``v = min(1, C_region / A_region)`` where ``A_region`` is the area (plane
  pixels) of the region's silhouette, the rays that pass through it. ``v = 1`` means every
  such ray is fully absorbed by the target; anything drawn in front of it (occlusion) lowers
  ``T`` before it is reached and so lowers ``v``;
* **purity** ``p = C_region / sum(C)``: the share of what is drawn that is target;
* **structure** ``s`` in [0, 1]: the SSIM between the rendering's luminance and the target
  drawn alone, opaque, with the same camera and shading (:mod:`tfgym.oracle.structure`). It
  is what the eye checks and the two sums cannot: a speckled or holed target surface, or
  clutter scattered in front of it, lowers ``s``;
* **score** ``= (v * p * s) ** (1/3)``, the geometric mean, in [0, 1]; 0 for an empty
  rendering (``v = 0``).

The score hardly depends on the image size (contributions are counted on the projected
plane, the structure at a fixed analysis resolution: headsq's renderings of 64 to 512 pixels
agree within 0.005) nor on the working size (the same TF at 64 and 256 voxels within 0.1,
mostly a few hundredths). Why the structure term: on headsq the CEM optimum of the score
``sqrt(v * p)`` (0.954) outranked the hand-made reference (0.949) with a speckled, holed
surface under a veil of soft tissue; with the structure term the reference scores 0.953 and
that optimum 0.922, and CEM's optimum of this score looks like the reference.

The default target is bone and teeth (a clear view of skull and jaw, the paper's goal); named
targets are in :data:`TARGETS`. On unlabelled scans the labels are intensity classes (see
:mod:`tfgym.scene`), so the score is an approximation there, and meaningless when the
intensity classes hold no plausible target (an MR scan has no bright bone class): see
:func:`tfgym.oracle.plausibility.target_plausibility`.

The simulated labeler that turns two scores into a human-like answer is
:mod:`tfgym.oracle.labeler`; the hand-made reference TF is :mod:`tfgym.oracle.reference`.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tfgym.oracle.structure import structure as structure_term
from tfgym.renderer import RenderBatch
from tfgym.scene import N_CLASSES, Scene
from tfgym.views import view_geometry
from tfgym.volume import Tissue
from tfgym.voxel_classes import voxel_classes

__all__ = ["TARGETS", "Oracle", "region_area", "region_mask", "resolve_target"]

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


def region_mask(target: Sequence[Tissue | int]) -> np.ndarray:
    """Boolean mask over the ``N_CLASSES`` voxel classes of the target region.

    The region is the target tissues plus the shell: voxels of less dense tissues (lower
    ``Tissue`` number than every target tissue) whose neighbour bits name a target tissue
    (within one reference voxel, see :func:`tfgym.voxel_classes.voxel_classes`). Cached and
    read-only.

    Example:
        >>> mask = region_mask([Tissue.SOFT_TISSUE])
        >>> bone_next_to_skin = Tissue.BONE * 32 + (1 << Tissue.SOFT_TISSUE)
        >>> air_next_to_skin = Tissue.AIR * 32 + (1 << Tissue.SOFT_TISSUE)
        >>> bool(mask[bone_next_to_skin]), bool(mask[air_next_to_skin])
        (False, True)
    """
    return _region_mask(tuple(sorted({int(Tissue(t)) for t in target})))


@functools.lru_cache(maxsize=64)
def _region_mask(target: tuple[int, ...]) -> np.ndarray:
    classes = np.arange(N_CLASSES)
    label, bits = classes // 32, classes % 32
    target_bits = sum(1 << t for t in target)
    shell = (label < min(target)) & ((bits & target_bits) != 0)
    mask = np.isin(label, target) | shell
    mask.setflags(write=False)
    return mask


_AREAS: weakref.WeakKeyDictionary[Scene, dict[tuple[object, ...], int]] = (
    weakref.WeakKeyDictionary()
)


def region_area(scene: Scene, view: str, target: Sequence[Tissue | int]) -> int:
    """Plane pixels whose ray passes through the target region (cached per scene and view).

    Example:
        >>> from tfgym.scene import load_scene
        >>> scene = load_scene("headsq")
        >>> 0 < region_area(scene, "front", TARGETS["bone"]) <= 64 * 64
        True
    """
    key = (view, tuple(sorted({int(Tissue(t)) for t in target})))
    areas = _AREAS.setdefault(scene, {})
    if key not in areas:
        perm, _ = view_geometry(view)
        in_region = region_mask(key[1])[voxel_classes(scene)]
        areas[key] = int(in_region.any(axis=perm[0]).sum())
    return areas[key]


@dataclass(frozen=True)
class Oracle:
    """The quality score of renderings for a target (see module docstring).

    Attributes:
        target: tissues that should be visible.
    """

    target: tuple[Tissue, ...] = TARGETS["bone"]

    def components(
        self, contrib: np.ndarray, target_area: float, structure: np.ndarray | float
    ) -> dict[str, np.ndarray]:
        """Visibility, purity, structure and score for a batch.

        Args:
            contrib: ``(batch, n_labels, 32)`` class contributions
                (:attr:`tfgym.renderer.RenderBatch.class_contrib`; the shell counts as
                target) or ``(batch, n_labels)`` label contributions (no shell).
            target_area: silhouette area of the target region in plane pixels.
            structure: the structure term in [0, 1], ``(batch,)`` or one number
                (:func:`tfgym.oracle.structure.structure`).

        Returns:
            ``visibility``, ``purity``, ``structure`` and ``score``, each float64
            ``(batch,)`` in [0, 1].
        """
        c = np.asarray(contrib, dtype=np.float64)
        if c.ndim == 2:
            on_target = c[:, list(self.target)].sum(axis=1)
        else:
            on_target = c.reshape(c.shape[0], -1)[:, region_mask(self.target)].sum(axis=1)
        total = c.reshape(c.shape[0], -1).sum(axis=1)
        visibility = np.clip(on_target / max(target_area, 1.0), 0.0, 1.0)
        purity = np.divide(on_target, total, out=np.zeros_like(total), where=total > 1e-9)
        purity = np.clip(purity, 0.0, 1.0)
        s = np.clip(np.broadcast_to(np.asarray(structure, np.float64), visibility.shape), 0, 1)
        return {
            "visibility": visibility,
            "purity": purity,
            "structure": s.copy(),
            "score": np.cbrt(visibility * purity * s),
        }

    def evaluate(self, render: RenderBatch, scene: Scene) -> dict[str, np.ndarray]:
        """Components for a :class:`tfgym.renderer.RenderBatch` of ``scene``.

        The target's silhouette and image are taken from the view the batch was rendered
        from; the structure term compares the batch's rgb with the target image.
        """
        area = region_area(scene, render.view, self.target)
        s = structure_term(render.rgb, scene, render.view, self.target)
        return self.components(render.class_contrib, area, s)

    def score(
        self, label_contrib: np.ndarray, target_area: float, structure: np.ndarray | float
    ) -> np.ndarray:
        """Quality scores in [0, 1], shape ``(batch,)`` (see :meth:`components`).

        Example:
            >>> oracle = Oracle()
            >>> contrib = np.array([[0, 0, 50, 0, 0], [0, 100, 0, 0, 0], [0, 25, 75, 0, 0.0]])
            >>> oracle.score(contrib, target_area=100, structure=[1.0, 1.0, 0.5]).round(3)
            array([0.794, 0.   , 0.655])
        """
        return self.components(label_contrib, target_area, structure)["score"]
