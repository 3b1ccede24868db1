"""Procedural CBCT head phantoms: deterministic from a seed, with ground-truth tissue labels.

A phantom is an adult head in a cone-beam CT field of view, built from signed distance
functions (ellipsoids, capsules, cones, swept cross-sections along the dental arches) that
are evaluated, vectorised, on the voxel grid. Everything is decided by ``seed`` through
:func:`phantom_spec` -- the single source of truth that :func:`make_phantom` renders -- so the
same seed and size give identical arrays on any run.

Geometry:
    The field of view is 256 x 256 x 208 mm in ``(z, y, x)``; the voxels are isotropic with
    spacing ``256 / size`` mm, so the array has shape ``(size, size, round(size * 13 / 16))``
    (the head is narrower from ear to ear than from nose to occiput or from vertex to neck).
    The head (vertex to chin 205-230 mm) sits upright with its top just below the top of the
    field of view and the neck leaving through the bottom; axes follow DICOM LPS (x to the
    patient's left, y posterior -- the face is at low y -- and z superior).

Anatomy (``Volume.labels``, noise-free, before any artefact):
    * AIR: outside, nasal cavity and nostrils, paranasal sinuses (maxillary, frontal,
      sphenoid, ethmoid cells), pharyngeal airway, ear canals, the gap of a slightly open mouth.
    * SOFT_TISSUE: skin, subcutaneous fat, muscle, tongue, brain (grey and white matter,
      ventricles, cerebellum, brainstem, spinal cord), eyes and orbital fat.
    * BONE: cranium (a shell of two cortical tables and diploe over a thicker skull base with
      foramen magnum, petrous ridges and mastoids), facial skeleton (maxilla, zygomas and
      arches, orbits, nasal bones and septum, hard palate), mandible (a U-shaped body with
      rami up to the skull base), the cervical spine down to the bottom of the field of view
      and the hyoid.
    * TEETH: up to 32 individual teeth (crown of enamel over dentin, one to three roots) in the
      maxillary and mandibular alveolar bone; which teeth are present varies with the seed.
    * METAL: amalgam fillings or metal crowns on some premolars and molars, in the phantoms
      whose seed is 2 modulo 3 (a third; 2, 5, 8, 11 of the train set and 14 of the held-out
      set), unless ``metal`` forces them on or off.

Grey values:
    HU-like values (air -1000, fat -100, brain ~30, soft tissue ~45, bone 700-1200, teeth
    1900-2600, amalgam 16000 -- metal attenuates far more than the 3071 HU where a clinical
    scale ends, and it must stay the brightest after partial volume at coarse sizes) are
    blurred (partial volume, Gaussian of 0.7-1.2 voxels), cupped toward the centre of the
    field of view, crossed by bright and dark streaks in the axial slices through metal, made
    noisy, and finally mapped to uncalibrated scanner units ``gain * hu + offset`` (optionally
    clipped to an unsigned 12-, 14- or 16-bit range), so the joint histogram moves from scan
    to scan as it does between real scanners.
"""

from __future__ import annotations

from tfgym.phantoms.generate import make_phantom
from tfgym.phantoms.spec import (
    FOV_MM,
    HELDOUT_PHANTOMS,
    PHANTOM_SEEDS,
    TRAIN_PHANTOMS,
    Anatomy,
    PhantomSpec,
    phantom_name,
    phantom_shape,
    phantom_spec,
)

__all__ = [
    "FOV_MM",
    "HELDOUT_PHANTOMS",
    "PHANTOM_SEEDS",
    "TRAIN_PHANTOMS",
    "Anatomy",
    "PhantomSpec",
    "make_phantom",
    "phantom_name",
    "phantom_shape",
    "phantom_spec",
]
