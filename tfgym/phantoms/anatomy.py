"""The patient: seed-dependent anatomy of a phantom, its restorations and positioning aids.

:func:`draw_anatomy` draws an :class:`Anatomy` from the seed. Four independent random streams
decide it, so that neutralising one variation factor (:data:`tfgym.phantoms.factors.FACTORS`)
changes nothing else:

* the head's shape and pose, ``default_rng([seed, 100])``: size and proportions of the
  cranium, brow, occiput, sinuses, dental arches, mandible, airway, mouth opening, pose;
* ``"patient"``: age class (child with mixed dentition and tooth germs, adult, elderly with
  missing teeth and resorbed edentulous ridges), bone density, soft-tissue thickness;
* ``"metal"``: amalgam fillings, metal crowns, bridges and titanium implants;
* ``"aids"``: headrest, chin rest and bite block (not patient: labelled AIR, see
  :mod:`tfgym.phantoms.aids`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from tfgym.phantoms.factors import FACTORS

__all__ = ["AGES", "RESTORATIONS", "Anatomy", "draw_anatomy"]

AGES = ("child", "adult", "elderly")
"""Age classes of the patient factor."""

RESTORATIONS = ("occlusal filling", "MOD filling", "metal crown", "implant", "bridge pontic")
"""Kinds of metal restoration, indexed by the ``kind`` of :attr:`Anatomy.fillings`."""

# Chance that each permanent tooth is missing in an adult and in an elderly patient, from
# the central incisor (0) to the third molar (7).
_MISSING_ADULT = (0.02, 0.03, 0.01, 0.06, 0.07, 0.12, 0.08, 0.55)
_MISSING_ELDERLY = (0.3, 0.35, 0.25, 0.4, 0.45, 0.6, 0.55, 0.85)
_BASE_STREAM = 100


@dataclass(frozen=True)
class Anatomy:
    """Seed-dependent anatomy of one phantom (lengths in mm of the canonical head).

    Teeth are indexed ``(jaw, side, tooth)`` and stored flattened (32 entries): jaw 0 upper,
    1 lower; side 0 right (low x), 1 left; tooth 0 central incisor .. 7 third molar (in a
    child, slots 2-4 may hold the deciduous canine and molars that the permanent canine and
    premolars replace).

    Attributes:
        scale: head size factors ``(x, y, z)`` applied to the canonical head.
        pose_deg: rotation ``(yaw about z, pitch about x, roll about y)`` in degrees.
        shift_mm: translation ``(x, y, z)`` in mm from the nominal position.
        vault: semi-axes ``(breadth, length, height)`` of the cranial vault's outer table.
        skull: mean thickness of the cranial vault (tables and diploe).
        brow: prominence of the brow ridges, 0 (flat) .. 1 (heavy).
        occiput: prominence of the occipital bulge, 0 .. 1.
        frontal_sinus: size factor of the frontal sinus (0: not developed).
        scalp: thickness of the scalp.
        fat: thickness of the subcutaneous fat of face and neck (patient factor).
        arch_width: half width of the dental arch at the second molars.
        arch_depth: depth of the dental arch from incisors to second molars.
        arch_alpha: arch shape, 1 parabolic (tapered) .. 0 quartic (square).
        overjet: how far the lower incisors sit behind the upper ones.
        mouth_gap: opening between upper and lower teeth (0: closed; a bite block opens it).
        chin: forward projection of the chin.
        gonial_width: half the distance between the angles of the mandible.
        gonial_y: y of the angles of the mandible.
        ramus: height factor of the mandibular rami.
        airway: width factor of the pharyngeal airway.
        sinus_fluid: fraction of the maxillary sinus height filled with fluid.
        lordosis: forward curvature of the cervical spine (mm at C4).
        age: the age class, one of :data:`AGES` (patient factor).
        bone_density: factor on the HU of bone (patient factor).
        teeth: erupted tooth present in each slot, 32 flattened (patient factor).
        deciduous: the erupted tooth of the slot is a milk tooth (children).
        germs: depth (mm below its erupted position) of an unerupted permanent tooth germ in
            the slot's bone, 0 for none (children).
        resorption: height (mm) lost by the alveolar ridge where teeth are missing, per jaw.
        fillings: ``(jaw, side, tooth, kind)`` of each metal restoration, ``kind`` indexing
            :data:`RESTORATIONS` (metal factor); a bridge is a pontic with metal crowns on
            both neighbours; an implant sits where the tooth is missing.
        headrest_hu: HU of the headrest behind the occiput (foam about -700, plastic 100-300),
            None for none (aids factor).
        chin_rest: a plastic chin rest under the chin (aids factor).
        bite_block: thickness (mm) of a plastic bite block between the incisors, 0 for none.
        tooth_jitter: per tooth ``(mesial shift, buccal shift, rotation deg, size factor - 1)``,
            shape ``(32, 4)`` flattened.
    """

    scale: tuple[float, float, float]
    pose_deg: tuple[float, float, float]
    shift_mm: tuple[float, float, float]
    vault: tuple[float, float, float]
    skull: float
    brow: float
    occiput: float
    frontal_sinus: float
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
    ramus: float
    airway: float
    sinus_fluid: float
    lordosis: float
    age: str
    bone_density: float
    teeth: tuple[bool, ...] = field(repr=False)
    deciduous: tuple[bool, ...] = field(repr=False)
    germs: tuple[float, ...] = field(repr=False)
    resorption: tuple[float, float] = (0.0, 0.0)
    fillings: tuple[tuple[int, int, int, int], ...] = field(default=(), repr=False)
    headrest_hu: float | None = None
    chin_rest: bool = False
    bite_block: float = 0.0
    tooth_jitter: tuple[float, ...] = field(default=(0.0,) * 128, repr=False)

    def slots(self, name: str) -> np.ndarray:
        """A per-tooth field (``"teeth"``, ``"deciduous"``, ``"germs"``) as ``(2, 2, 8)``."""
        return np.array(getattr(self, name)).reshape(2, 2, 8)


def _floats(values) -> tuple[float, ...]:
    return tuple(float(v) for v in np.ravel(values))


def _draw_base(rng: np.random.Generator) -> dict:
    """The head's shape and pose (not the patient factor's age, density, fat, teeth)."""
    s = rng.uniform(0.9, 1.0)
    scale = (s * rng.uniform(0.96, 1.04), s * rng.uniform(0.97, 1.03), s * rng.uniform(0.97, 1.02))
    vault = (70.0 * rng.uniform(0.95, 1.04), 91.0 * rng.uniform(0.96, 1.03), 80.0)
    return {
        "scale": _floats(scale),
        "pose_deg": _floats(rng.uniform(-1, 1, 3) * (4.0, 7.0, 3.0)),
        "shift_mm": _floats(rng.uniform(-1, 1, 3) * (4.0, 4.0, 3.0)),
        "vault": _floats(vault),
        "skull": float(rng.uniform(5.0, 8.0)),
        "brow": float(rng.uniform(0.0, 1.0)),
        "occiput": float(rng.uniform(0.0, 1.0)),
        "frontal_sinus": float(0.0 if rng.random() < 0.06 else rng.uniform(0.5, 1.25)),
        "scalp": float(rng.uniform(4.5, 7.0)),
        "arch_width": float(rng.uniform(24.0, 27.5)),
        "arch_depth": float(rng.uniform(38.0, 44.0)),
        "arch_alpha": float(rng.uniform(0.55, 0.95)),
        "overjet": float(rng.uniform(1.5, 4.5)),
        "mouth_gap": float(0.0 if rng.random() < 0.5 else rng.uniform(1.0, 5.0)),
        "chin": float(rng.uniform(-2.0, 4.0)),
        "gonial_width": float(rng.uniform(44.0, 50.0)),
        "gonial_y": float(rng.uniform(-20.0, -12.0)),
        "ramus": float(rng.uniform(0.92, 1.08)),
        "airway": float(rng.uniform(0.65, 1.2)),
        "sinus_fluid": float(0.0 if rng.random() < 0.7 else rng.uniform(0.1, 0.45)),
        "lordosis": float(rng.uniform(-2.0, 6.0)),
        "tooth_jitter": _floats(rng.normal(size=(32, 4)) * (0.35, 0.3, 3.0, 0.03)),
    }


def _neutral_patient() -> dict:
    """A standard adult: full permanent dentition without third molars, average density."""
    teeth = np.zeros((2, 2, 8), bool)
    teeth[..., :7] = True
    return {
        "age": "adult",
        "bone_density": 1.0,
        "fat": 5.5,
        "teeth": tuple(bool(v) for v in teeth.ravel()),
        "deciduous": (False,) * 32,
        "germs": (0.0,) * 32,
        "resorption": (0.0, 0.0),
        "size": 1.0,
    }


def _child_dentition(rng: np.random.Generator, years: float):
    """Mixed dentition of an 8-12 year old: which slots hold milk teeth, and the germs below."""
    teeth = np.ones((2, 2, 8), bool)
    deciduous = np.zeros((2, 2, 8), bool)
    germs = np.zeros((2, 2, 8))
    # Eruption age of the permanent canine, premolars and second molar (both jaws, per side).
    erupt = {2: (10.0, 11.5), 3: (10.0, 11.0), 4: (10.5, 12.0), 6: (11.5, 12.5)}
    for jaw, side in itertools.product((0, 1), (0, 1)):
        for slot, (lo, hi) in erupt.items():
            if years < rng.uniform(lo, hi):  # not yet erupted: a germ in the bone
                germs[jaw, side, slot] = rng.uniform(8.0, 11.0) if slot < 6 else 7.0
                teeth[jaw, side, slot] = slot < 6  # the milk tooth is still there
                deciduous[jaw, side, slot] = slot < 6
        teeth[jaw, side, 7] = False
        if rng.random() < 0.6:  # third molar crypt, high in the tuberosity or ramus
            germs[jaw, side, 7] = 12.0
    return teeth, deciduous, germs


def _draw_patient(rng: np.random.Generator) -> dict:
    """Age class, bone density, soft-tissue thickness and dentition of the patient."""
    age = str(rng.choice(AGES, p=(0.2, 0.55, 0.25)))
    resorption = [0.0, 0.0]
    deciduous, germs = np.zeros((2, 2, 8), bool), np.zeros((2, 2, 8))
    if age == "child":
        years = float(rng.uniform(8.0, 12.0))
        teeth, deciduous, germs = _child_dentition(rng, years)
        density, fat, size = rng.uniform(0.86, 0.98), rng.uniform(2.0, 6.0), 0.96
    elif age == "adult":
        teeth = rng.random((2, 2, 8)) >= np.array(_MISSING_ADULT)
        density, fat, size = rng.uniform(0.9, 1.1), rng.uniform(2.5, 9.0), 1.0
        resorption = [float(v) for v in rng.uniform(1.0, 4.0, 2)]
    else:
        teeth = rng.random((2, 2, 8)) >= np.array(_MISSING_ELDERLY)
        # Fully edentulous jaws: upper more often than lower, never both (a CBCT for
        # implant planning of a fully edentulous patient is a different protocol).
        for jaw in (0, 1) if rng.random() < 0.5 else (1, 0):
            if rng.random() < (0.35, 0.25)[jaw] and teeth[1 - jaw].any():
                teeth[jaw] = False
        density, fat, size = rng.uniform(0.72, 0.92), rng.uniform(2.0, 10.0), 1.0
        resorption = [float(v) for v in rng.uniform(6.0, 13.0, 2)]
    if not teeth.any():
        teeth[1, :, 2] = True  # two lower canines, the last teeth an elderly patient keeps
    return {
        "age": age,
        "bone_density": float(density),
        "fat": float(fat),
        "teeth": tuple(bool(v) for v in teeth.ravel()),
        "deciduous": tuple(bool(v) for v in deciduous.ravel()),
        "germs": _floats(germs),
        "resorption": tuple(resorption),
        "size": size,
    }


def _draw_metal(rng: np.random.Generator, patient: dict, force: bool) -> tuple:
    """Metal restorations: how many from the metal stream, where from the patient's teeth."""
    n = int(rng.choice((0, 1, 2, 4, 7), p=(0.34, 0.2, 0.18, 0.16, 0.12)))
    picks = rng.random((10, 2))  # fixed number of draws: the stream does not depend on n
    if force and n == 0:
        n = 1
    teeth = np.array(patient["teeth"]).reshape(2, 2, 8)
    deciduous = np.array(patient["deciduous"]).reshape(2, 2, 8)
    child = patient["age"] == "child"
    used: set[tuple[int, int, int]] = set()
    out: list[tuple[int, int, int, int]] = []
    for u_site, u_kind in picks[:n]:
        present = [
            (j, s, i)
            for j, s, i in zip(*np.nonzero(teeth), strict=True)
            if (i >= 3 or (u_kind > 0.8 and not child)) and (int(j), int(s), int(i)) not in used
        ]
        missing = [
            (j, s, i)
            for j, s, i in zip(*np.nonzero(~teeth), strict=True)
            if i < 7 and not child and (int(j), int(s), int(i)) not in used
        ]
        sites = present + missing
        if not sites:
            break
        j, s, i = (int(v) for v in sites[min(int(u_site * len(sites)), len(sites) - 1)])
        if teeth[j, s, i]:
            kind = (
                2 if (deciduous[j, s, i] and u_kind < 0.5) or u_kind > 0.8 else int(u_kind > 0.45)
            )
            out.append((j, s, i, kind))
            used.add((j, s, i))
            continue
        neighbours = [(j, s, i - 1), (j, s, i + 1)] if i > 0 else [(j, 1 - s, 0), (j, s, 1)]
        if u_kind < 0.4 and all(teeth[c] and c not in used for c in neighbours):
            out += [(*neighbours[0], 2), (j, s, i, 4), (*neighbours[1], 2)]
            used.update([*neighbours, (j, s, i)])
        else:
            out.append((j, s, i, 3))
            used.add((j, s, i))
    return tuple(out)


def _draw_aids(rng: np.random.Generator) -> dict:
    """Headrest, chin rest and bite block, each present with some probability."""
    rest, hu_plastic, hu_foam = rng.random(), rng.uniform(100.0, 300.0), rng.uniform(-750, -600)
    chin, block, thick = rng.random(), rng.random(), rng.uniform(3.0, 6.0)
    headrest = None if rest < 0.45 else float(hu_foam if rest < 0.7 else hu_plastic)
    return {
        "headrest_hu": headrest,
        "chin_rest": bool(chin < 0.3),
        "bite_block": float(thick if block < 0.3 else 0.0),
    }


def draw_anatomy(
    seed: int, *, metal: bool | None = None, neutral: frozenset[str] = frozenset()
) -> Anatomy:
    """The anatomy of phantom ``seed``, from random streams independent of the scanner's.

    Args:
        seed: non-negative integer.
        metal: None to let the metal factor decide (about a third of the seeds have no
            restoration), True to force at least one restoration, False for none.
        neutral: names of variation factors set to their neutral value: ``"patient"`` (a
            standard adult), ``"metal"`` (no restoration, unless ``metal`` is True) and
            ``"aids"`` (no positioning aid); other factor names are ignored here.

    Returns:
        The :class:`Anatomy`.

    Example:
        >>> a = draw_anatomy(3, neutral=frozenset({"patient", "aids"}))
        >>> a.age, a.headrest_hu, a == draw_anatomy(3, neutral=frozenset({"patient", "aids"}))
        ('adult', None, True)
        >>> draw_anatomy(3, metal=False).fillings
        ()
    """

    def stream(name: str) -> np.random.Generator:
        return np.random.default_rng([seed, FACTORS[name].stream])

    base = _draw_base(np.random.default_rng([seed, _BASE_STREAM]))
    patient = _neutral_patient() if "patient" in neutral else _draw_patient(stream("patient"))
    if metal is False or ("metal" in neutral and not metal):
        fillings: tuple = ()
    else:
        fillings = _draw_metal(stream("metal"), patient, bool(metal))
    aids = (
        {"headrest_hu": None, "chin_rest": False, "bite_block": 0.0}
        if "aids" in neutral
        else _draw_aids(stream("aids"))
    )
    size = patient.pop("size")
    base["scale"] = _floats(np.array(base["scale"]) * size)
    if patient["age"] == "child":
        base["skull"] *= 0.9
        base["frontal_sinus"] *= 0.4
    base["mouth_gap"] = max(base["mouth_gap"], aids["bite_block"])
    return Anatomy(**base, **patient, fillings=fillings, **aids)
