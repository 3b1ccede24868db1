"""The hand-made reference TF: what a person would draw for a target without any search.

It is the sanity anchor of the oracle (it must score above almost every random polygon) and
the starting point of the expert search that builds the paper's action sets.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfgym.oracle.score import resolve_target
from tfgym.scene import Scene
from tfgym.volume import Tissue

__all__ = ["reference_action"]


def reference_action(scene: Scene, target: str | Sequence[Tissue] = "bone") -> np.ndarray:
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
    ranges = scene.ranges
    data, labels = scene.volume.data, scene.labels
    pooled = data[np.isin(labels, list(tissues))]
    if pooled.size == 0:
        raise ValueError(f"none of the target tissues {sorted(tissues)} is in the scene")
    # pooled percentiles: a few artefact-darkened voxels of a small tissue (teeth next to
    # metal) must not drag the band's lower edge into soft tissue
    lo_t, med, hi_t = np.percentile(pooled, (5.0, 50.0, 95.0))
    others = {
        t: scene.tissue_intensity(t, (5.0, 50.0, 95.0))
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
