"""Voxel classes: which tissue each voxel is and which tissues lie around it, per scene.

A voxel's class is ``label * 32 + neighbour bits`` (:func:`tfgym.scene.tissue_classes`)
with a shell one voxel of the scan's reference grid thick (:func:`shell_radius`), so a
partial-volume shell is as thick in mm at every working size. The renderer sums what each
class contributes to an image; the oracle asks which classes are target (:func:`class_mask`)
and how many rays pass through them (:func:`silhouette_area`). Everything is cached per scene,
weakly: it goes when the scene goes.
"""

from __future__ import annotations

import functools
import weakref
from typing import Any

import numpy as np

from tfgym.scene import N_CLASSES, Scene, tissue_classes
from tfgym.views import view_geometry
from tfgym.volume import Tissue

__all__ = ["class_mask", "shell_radius", "silhouette_area", "voxel_classes"]


def class_mask(tissues: tuple[Tissue, ...] | list[Tissue], *, shell: bool = False) -> np.ndarray:
    """Boolean mask over the ``N_CLASSES`` voxel classes belonging to ``tissues``.

    With ``shell=True`` classes of other tissues that touch one of ``tissues`` are included.
    The result is cached and read-only.
    """
    return _class_mask(tuple(sorted({int(t) for t in tissues})), bool(shell))


@functools.lru_cache(maxsize=64)
def _class_mask(tissues: tuple[int, ...], shell: bool) -> np.ndarray:
    classes = np.arange(N_CLASSES)
    label, bits = classes // 32, classes % 32
    mask = np.isin(label, [int(t) for t in tissues])
    if shell:
        target_bits = sum(1 << int(t) for t in tissues)
        mask |= (bits & target_bits) != 0
    mask.setflags(write=False)
    return mask


_CLASSES: weakref.WeakKeyDictionary[Scene, np.ndarray] = weakref.WeakKeyDictionary()


def shell_radius(scene: Scene) -> int:
    """Working voxels in one voxel of the scan's reference grid (at least 1).

    A partial-volume voxel at a tissue boundary is one reference voxel thick in mm, whatever
    the working size: 1 working voxel at the reference size, 4 at four times its resolution.
    """
    return max(1, round(1.0 / scene.opacity_scale))


def voxel_classes(scene: Scene) -> np.ndarray:
    """Per-voxel class ``label * 32 + neighbour bits`` of the scene (uint8, cached, read-only).

    As :func:`tfgym.scene.tissue_classes`, with bit ``t`` set when a voxel of label ``t`` lies
    within :func:`shell_radius` face steps (1 at the reference working size, where both are
    equal).
    """
    if scene not in _CLASSES:
        classes = tissue_classes(scene.labels, shell_radius(scene))
        classes.setflags(write=False)
        _CLASSES[scene] = classes
    return _CLASSES[scene]


# per scene (weakly held) and view: which voxel classes each ray passes, (rows*cols, N_CLASSES)
_RAY_HITS: weakref.WeakKeyDictionary[Scene, dict[str, np.ndarray]] = weakref.WeakKeyDictionary()
_AREAS: weakref.WeakKeyDictionary[Scene, dict[tuple[Any, ...], int]] = weakref.WeakKeyDictionary()


def _ray_hits(scene: Scene, view: str) -> np.ndarray:
    per_scene = _RAY_HITS.setdefault(scene, {})
    if view not in per_scene:
        perm, flips = view_geometry(view)
        flip_axes = tuple(i for i, f in enumerate(flips) if f)
        classes = np.flip(np.transpose(voxel_classes(scene), perm), flip_axes)
        flat = classes.reshape(classes.shape[0], -1)
        hit = np.zeros((flat.shape[1], N_CLASSES), dtype=bool)
        hit[np.arange(flat.shape[1])[None, :].repeat(flat.shape[0], 0), flat] = True
        per_scene[view] = hit
    return per_scene[view]


def silhouette_area(
    scene: Scene, view: str, tissues: tuple[Tissue, ...] | list[Tissue], *, shell: bool = False
) -> int:
    """Plane pixels (of the projected working volume) whose ray passes through ``tissues``.

    With ``shell=True`` the shell around the tissues (:func:`voxel_classes`) counts too.
    Cached per scene and view.

    Example:
        >>> from tfgym.scene import load_scene
        >>> scene = load_scene("headsq")
        >>> 0 < silhouette_area(scene, "front", [Tissue.BONE]) <= 64 * 64
        True
    """
    key = (view, tuple(sorted({Tissue(t) for t in tissues})), bool(shell))
    areas = _AREAS.setdefault(scene, {})
    if key not in areas:
        mask = class_mask(key[1], shell=shell)
        areas[key] = int(_ray_hits(scene, view)[:, mask].any(axis=1).sum())
    return areas[key]
