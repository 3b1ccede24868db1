"""The synthetic preference oracle: ground truth for tests, benchmarks and experiments.

* :mod:`tfgym.oracle.score` -- :class:`Oracle`, the documented quality score of a rendering
  (visibility, purity and structure of the target tissues), and the named :data:`TARGETS`;
* :mod:`tfgym.oracle.structure` -- the structure term: SSIM between a rendering and the target
  drawn alone (:func:`structure`, :func:`target_image`);
* :mod:`tfgym.oracle.plausibility` -- :func:`target_plausibility`: whether an unlabelled
  scan's intensity classes hold a plausible target at all (no bone class in an MR scan);
* :mod:`tfgym.oracle.labeler` -- :class:`SimulatedLabeler`, which turns two scores into a
  human-like answer with Bradley-Terry noise, ties, mistakes and skips (:data:`LABELER_PRESETS`);
* :mod:`tfgym.oracle.reference` -- :func:`reference_action`, the hand-made reference TF.
"""

from __future__ import annotations

from tfgym.oracle.labeler import LABELER_PRESETS, SimulatedLabeler, labeler_id, make_labeler
from tfgym.oracle.plausibility import Plausibility, target_plausibility
from tfgym.oracle.reference import reference_action
from tfgym.oracle.score import TARGETS, Oracle, region_area, region_mask, resolve_target
from tfgym.oracle.structure import structure, target_image

__all__ = [
    "LABELER_PRESETS",
    "TARGETS",
    "Oracle",
    "Plausibility",
    "SimulatedLabeler",
    "labeler_id",
    "make_labeler",
    "reference_action",
    "region_area",
    "region_mask",
    "resolve_target",
    "structure",
    "target_image",
    "target_plausibility",
]
