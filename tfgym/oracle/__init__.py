"""The synthetic preference oracle: ground truth for tests, benchmarks and experiments.

* :mod:`tfgym.oracle.score` -- :class:`Oracle`, the documented quality score of a rendering
  (visibility and purity of the target tissues), and the named :data:`TARGETS`;
* :mod:`tfgym.oracle.labeler` -- :class:`SimulatedLabeler`, which turns two scores into a
  human-like answer with Bradley-Terry noise, ties, mistakes and skips (:data:`LABELER_PRESETS`);
* :mod:`tfgym.oracle.reference` -- :func:`reference_action`, the hand-made reference TF.
"""

from __future__ import annotations

from tfgym.oracle.labeler import LABELER_PRESETS, SimulatedLabeler, labeler_id, make_labeler
from tfgym.oracle.reference import reference_action
from tfgym.oracle.score import TARGETS, Oracle, resolve_target

__all__ = [
    "LABELER_PRESETS",
    "TARGETS",
    "Oracle",
    "SimulatedLabeler",
    "labeler_id",
    "make_labeler",
    "reference_action",
    "resolve_target",
]
