"""Does a scene hold a plausible target at all? Honest reporting for unlabelled scans.

On a scan without tissue labels the oracle judges intensity classes (Otsu's air, soft tissue
and "bone", :func:`tfgym.scene.intensity_class_labels`). That is a fair stand-in for a CT
scan, where the densest class is bone, and meaningless for a scan whose brightest class is
something else: in an MR T1 head it is fat, marrow and white matter (cortical bone gives no
signal), and a "bone" TF that draws the scalp's fat would get a confident score. So before the
oracle's score is reported on an unlabelled scan, :func:`target_plausibility` asks whether
the target's intensity class behaves like the target tissue physically:

* **bone** (targets with bone or teeth) is the densest class and lies *under* soft tissue: a
  scalp of a few millimetres covers the skull, and the outer surface of the head touches bone
  only at the teeth, nose and chin. Measured: the share of the **subcutaneous band** (the
  head's voxels within :data:`BAND_MM` of the air outside it) that is of the bone class.
  Implausible above :data:`MAX_SUBCUTANEOUS_SHARE`. Measured at working size 64: 2 % on
  headsq, 3-15 % on the CBCT phantoms stripped of their labels (whole heads and the dental
  and maxillofacial fields of view, whose cut faces are padding, not air), 47-86 % on MR T1
  heads made from the phantoms' labels (the fat under the skin is their brightest class);
* **teeth alone** cannot be told from bone by intensity classes: implausible on unlabelled
  scans;
* other targets (skin): plausible when present.

The head is the non-air voxels with the holes of every axial slice filled; the air outside it
excludes the padding outside the scanner's field of view (see :func:`_outside`). Scenes with
true labels (phantoms) are plausible whenever a target tissue is present. Results are cached
per scene and target.

Example:
    >>> from tfgym.scene import load_scene
    >>> check = target_plausibility(load_scene("headsq"), "bone")
    >>> check.plausible, check.reason.split(":")[0]
    (True, 'intensity classes of a CT-like scan')
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from tfgym.oracle.score import resolve_target
from tfgym.scene import Scene
from tfgym.volume import Tissue

__all__ = [
    "BAND_MM",
    "MAX_SUBCUTANEOUS_SHARE",
    "Plausibility",
    "bone_class_statistics",
    "target_plausibility",
]

BAND_MM = 6.0  # depth of the subcutaneous band under the head's outer surface
MAX_SUBCUTANEOUS_SHARE = 0.3  # bone-class share of that band above which bone is implausible
ANALYSIS_VOXEL_MM = 3.0  # finer working volumes are subsampled to about this voxel size
PADDING_SHARE = 0.01  # an exact grey value this frequent is the field of view's padding
MIN_AIR_SURFACE = 0.2  # share of the head's surface that must face real air, not padding

_CACHE: weakref.WeakKeyDictionary[Scene, dict[tuple[int, ...], Plausibility]] = (
    weakref.WeakKeyDictionary()
)


class Plausibility(NamedTuple):
    """Whether a scene holds a plausible target, and why (unpacks as ``(plausible, reason)``).

    Attributes:
        plausible: False when the oracle's score for this target is meaningless here.
        reason: one line that says what was measured.
    """

    plausible: bool
    reason: str


def _fill_slices(mask: np.ndarray) -> np.ndarray:
    """Holes of every axial slice (axis 0) filled."""
    out = np.empty_like(mask)
    for z in range(mask.shape[0]):
        out[z] = ndimage.binary_fill_holes(mask[z])
    return out


def _outside(data: np.ndarray, head: np.ndarray) -> np.ndarray:
    """The air outside the head, less the padding outside a scanner's field of view.

    CT and CBCT scans pad the voxels outside the reconstructed cylinder with one constant
    value; where the cylinder cuts through the head, the tissue touches that padding, not
    air, and is no outer surface of the head. The padding is the most frequent exact grey
    value when it fills more than 1 % of the scan (noisy air never repeats a value that
    often). A scan whose head touches almost only padding (a masked MR scan, whose background
    is exactly 0) keeps the padding as its outside.
    """
    outside = ~head
    values, counts = np.unique(data, return_counts=True)
    if counts.max() <= PADDING_SHARE * data.size:
        return outside
    padding = ndimage.binary_dilation(data == values[counts.argmax()])
    air = outside & ~padding
    surface = head & ndimage.binary_dilation(outside)
    on_air = head & ndimage.binary_dilation(air)
    return air if on_air.sum() >= MIN_AIR_SURFACE * surface.sum() else outside


def bone_class_statistics(scene: Scene) -> dict[str, float]:
    """Where the bone class of a scene's labels lies in the head.

    Finer working volumes are subsampled to voxels of about :data:`ANALYSIS_VOXEL_MM`.

    Returns:
        ``subcutaneous_share``: bone share of the head's voxels within :data:`BAND_MM` of the
        air outside it; ``head_share``: bone share of the head; ``head_voxels``: the head's
        size in (analysis) voxels.
    """
    step = max(1, int(ANALYSIS_VOXEL_MM // scene.voxel_size))
    labels = scene.labels[::step, ::step, ::step]
    data = scene.volume.data[::step, ::step, ::step]
    spacing = tuple(s * step for s in scene.volume.spacing)
    head = _fill_slices(labels != Tissue.AIR)
    head = ndimage.binary_opening(head)  # no specks of noise in the air
    bone = np.isin(labels, (Tissue.BONE, Tissue.TEETH)) & head
    depth = ndimage.distance_transform_edt(~_outside(data, head), sampling=spacing)
    band = head & (depth <= BAND_MM)
    n_head, n_band = int(head.sum()), int(band.sum())
    return {
        "subcutaneous_share": float(bone[band].sum() / max(n_band, 1)),
        "head_share": float(bone.sum() / max(n_head, 1)),
        "head_voxels": float(n_head),
    }


def _check(scene: Scene, target: tuple[Tissue, ...]) -> Plausibility:
    present = np.isin(scene.labels, [int(t) for t in target]).any()
    names = "/".join(t.name.lower() for t in target)
    if not scene.labels_approximate:
        if present:
            return Plausibility(True, f"true tissue labels with {names}")
        return Plausibility(False, f"the scene's labels hold no {names}")
    if set(target) == {Tissue.TEETH}:
        return Plausibility(
            False, "intensity classes cannot tell teeth from bone (unlabelled scan)"
        )
    if not present:
        return Plausibility(False, f"no intensity class stands for {names} in this scan")
    if not {Tissue.BONE, Tissue.TEETH} & set(target):
        return Plausibility(True, f"intensity classes hold a {names} class")
    stats = bone_class_statistics(scene)
    band, share = stats["subcutaneous_share"], stats["head_share"]
    measured = (
        f"the densest class is {band:.0%} of the head's outer {BAND_MM:g} mm "
        f"({share:.0%} of the head)"
    )
    if band > MAX_SUBCUTANEOUS_SHARE:
        return Plausibility(
            False,
            f"no plausible {names} in this scan's intensity classes: {measured}, but bone lies "
            "under the scalp; the densest class is not bone (an MR scan? fat and marrow are "
            "bright there)",
        )
    return Plausibility(True, f"intensity classes of a CT-like scan: {measured}")


def target_plausibility(scene: Scene, target: str | Sequence[Tissue | int]) -> Plausibility:
    """Whether ``scene`` holds a plausible ``target`` for the oracle (see module docstring).

    Args:
        scene: a scene (true or approximate labels).
        target: a name of :data:`tfgym.oracle.TARGETS` or tissues.

    Returns:
        The :class:`Plausibility`, cached per scene and target.
    """
    tissues = resolve_target(target)
    key = tuple(sorted(int(t) for t in tissues))
    per_scene = _CACHE.setdefault(scene, {})
    if key not in per_scene:
        per_scene[key] = _check(scene, tuple(Tissue(t) for t in key))
    return per_scene[key]
