"""The patient: seed-dependent anatomy of a phantom (head shape, pose, dentition, restorations).

:func:`draw_anatomy` draws an :class:`Anatomy` from the seed with its own random streams, so
the scanner's parameters (:mod:`tfgym.phantoms.spec`) and the anatomy vary independently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Anatomy", "draw_anatomy"]

# Chance that each tooth is absent, from the central incisor (0) to the third molar (7).
_MISSING_P = (0.02, 0.03, 0.01, 0.07, 0.07, 0.1, 0.07, 0.5)


@dataclass(frozen=True)
class Anatomy:
    """Seed-dependent anatomy of one phantom (lengths in mm of the canonical head).

    Attributes:
        scale: head size factors ``(x, y, z)`` applied to the canonical head.
        pose_deg: rotation ``(yaw about z, pitch about x, roll about y)`` in degrees.
        shift_mm: translation ``(x, y, z)`` in mm from the nominal position.
        skull: thickness of the cranial vault.
        scalp: thickness of the scalp.
        fat: thickness of the subcutaneous fat of face and neck.
        arch_width: half width of the dental arch at the second molars.
        arch_depth: depth of the dental arch from incisors to second molars.
        arch_alpha: arch shape, 1 parabolic (tapered) .. 0 quartic (square).
        overjet: how far the lower incisors sit behind the upper ones.
        mouth_gap: opening between upper and lower teeth (0: closed).
        chin: forward projection of the chin.
        gonial_width: half the distance between the angles of the mandible.
        gonial_y: y of the angles of the mandible.
        airway: width factor of the pharyngeal airway.
        sinus_fluid: fraction of the maxillary sinus height filled with fluid.
        bone_density: factor on the HU of bone.
        teeth: presence of each tooth, shape ``(jaw, side, 8)`` flattened; jaw 0 upper, 1
            lower; side 0 right (low x), 1 left; index 0 central incisor .. 7 third molar.
        fillings: ``(jaw, side, tooth, kind)`` of each metal restoration; kind 0 occlusal
            filling, 1 mesio-occluso-distal filling, 2 full metal crown.
        tooth_jitter: per tooth ``(mesial shift, buccal shift, rotation deg, size factor - 1)``,
            shape ``(32, 4)`` flattened.
    """

    scale: tuple[float, float, float]
    pose_deg: tuple[float, float, float]
    shift_mm: tuple[float, float, float]
    skull: float
    scalp: float
    fat: float
    arch_width: float
    arch_depth: float
    arch_alpha: float
    overjet: float
    mouth_gap: float
    chin: float
    gonial_width: float
    gonial_y: float
    airway: float
    sinus_fluid: float
    bone_density: float
    teeth: tuple[bool, ...] = field(repr=False)
    fillings: tuple[tuple[int, int, int, int], ...] = field(repr=False)
    tooth_jitter: tuple[float, ...] = field(repr=False)


def draw_anatomy(seed: int) -> Anatomy:
    """The anatomy of phantom ``seed`` (its own random stream, independent of the scanner's)."""
    rng = np.random.default_rng([seed, 100])
    s = rng.uniform(0.9, 1.0)
    scale = (s * rng.uniform(0.95, 1.04), s * rng.uniform(0.97, 1.03), s * rng.uniform(0.97, 1.02))
    teeth = rng.random((2, 2, 8)) >= np.array(_MISSING_P)
    fillings = []
    candidates = [(j, sd, i) for j in range(2) for sd in range(2) for i in range(3, 8)]
    candidates = [c for c in candidates if teeth[c]]
    if not candidates:  # keep one molar so that forced metal always has a tooth to sit on
        teeth[0, 1, 5] = True
        candidates = [(0, 1, 5)]
    n_fill = min(len(candidates), 1 + int(rng.poisson(1.3)), 5)
    for k, c in enumerate(rng.permutation(len(candidates))[:n_fill]):
        kind = int(rng.choice(3, p=(0.5, 0.35, 0.15))) if k else int(rng.integers(1, 3))
        fillings.append((*candidates[c], kind))
    jitter = rng.normal(size=(32, 4)) * (0.4, 0.3, 4.0, 0.03)
    return Anatomy(
        scale=tuple(float(v) for v in scale),  # type: ignore[arg-type]
        pose_deg=tuple(float(v) for v in rng.uniform(-1, 1, 3) * (4.0, 7.0, 3.0)),  # type: ignore[arg-type]
        shift_mm=tuple(float(v) for v in rng.uniform(-1, 1, 3) * (4.0, 4.0, 3.0)),  # type: ignore[arg-type]
        skull=float(rng.uniform(4.5, 8.0)),
        scalp=float(rng.uniform(4.5, 7.0)),
        fat=float(rng.uniform(2.5, 9.0)),
        arch_width=float(rng.uniform(24.0, 27.5)),
        arch_depth=float(rng.uniform(36.0, 43.0)),
        arch_alpha=float(rng.uniform(0.35, 0.85)),
        overjet=float(rng.uniform(1.5, 4.5)),
        mouth_gap=float(0.0 if rng.random() < 0.5 else rng.uniform(1.0, 5.0)),
        chin=float(rng.uniform(-2.0, 4.0)),
        gonial_width=float(rng.uniform(44.0, 50.0)),
        gonial_y=float(rng.uniform(-16.0, -8.0)),
        airway=float(rng.uniform(0.65, 1.2)),
        sinus_fluid=float(0.0 if rng.random() < 0.7 else rng.uniform(0.1, 0.45)),
        bone_density=float(rng.uniform(0.88, 1.1)),
        teeth=tuple(bool(v) for v in teeth.ravel()),
        fillings=tuple(fillings),
        tooth_jitter=tuple(float(v) for v in jitter.ravel()),
    )
