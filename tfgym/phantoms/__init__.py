"""Procedural CBCT head phantoms: deterministic from a seed, with ground-truth tissue labels.

A phantom is a patient's head scanned by a cone-beam CT scanner. Everything is decided by the
seed through :func:`phantom_spec` -- the single source of truth that :func:`make_phantom`
renders -- so the same arguments give identical arrays on any run. The seed draws each
variation factor of :data:`tfgym.phantoms.factors.FACTORS` from its own random stream, and
``neutral=`` sets chosen factors to their neutral value without changing any other draw:

* the patient, metal restorations and positioning aids (:mod:`tfgym.phantoms.anatomy`):
  age, dentition, bone density, head shape and pose; fillings, crowns, bridges, implants;
  headrest, chin rest, bite block (labelled AIR: not the patient);
* the scanner (:mod:`tfgym.phantoms.spec`, :mod:`tfgym.phantoms.scanner`): field of view,
  dose and noise, scatter and cupping, beam hardening, reconstruction kernel and the export's
  grey-value mapping, each with its real-world cause and range in ``FACTORS``.

Geometry:
    Axes follow DICOM LPS (x to the patient's left, y posterior -- the face is at low y -- and
    z superior); voxels are isotropic. The field of view (:class:`FieldOfView`) is a cylinder
    about the vertical axis: a dental one of both jaws (76-100 mm wide, 60-90 mm high), a
    maxillofacial one from the chin upwards (100-150 x 75-140 mm), or the whole head (the
    256 x 256 x 208 mm box of :data:`FOV_MM`, ``(z, y, x)``, in a 256 mm cylinder, the head
    upright with its vertex just below the top and the neck leaving through the bottom). The
    volume is the cylinder's box with ``size`` voxels along its longest side; outside the
    cylinder the scanner writes its background value and the labels are AIR (no data). A
    phantom of ``size <= 128`` is painted at twice its size and resampled, anti-aliased.

Anatomy (:mod:`tfgym.phantoms.cranium`, ``face``, ``jaws``, ``teeth``, ``neck``, ``soft``):
    an egg-shaped vault of two cortical tables and diploe (4.5-9 mm) with brow ridges,
    frontal sinus and a skull base (foramen magnum, mastoids, glenoid fossae); conical
    orbits, zygomatic bones and arches, a pear-shaped nasal aperture with nasal bones and
    septum, maxillary sinuses, the hard palate; a horseshoe mandible with chin, rami,
    condyles and coronoid processes; individual teeth shaped by type (enamel over dentine,
    pulp, one to three roots); C1-C7 with dens, bodies, discs, arches and processes; scalp,
    face, brain. Surfaces are painted with partial-volume edges.

Labels (``Volume.labels``, the noise-free anatomy, :class:`tfgym.volume.Tissue`):
    AIR (outside, airways, sinuses, the mouth's gap, positioning aids, outside the cylinder),
    SOFT_TISSUE (skin, fat, muscle, brain, eyes), BONE (cranium, facial skeleton, mandible,
    cervical spine, hyoid), TEETH (enamel and dentine, milk teeth and germs in children) and
    METAL (restorations, only where the metal factor placed some).

Grey values:
    The painted HU (air -1000, soft tissue ~40, bone 700-1200, teeth 1900-2600, metal far
    above) go through the scanner model: kernel blur, projection-domain beam hardening,
    scatter, quantum noise and truncation reconstructed by filtered back-projection (cupping,
    dark bands between dense bones, bright and dark streaks and photon starvation around
    metal, a bright rim near the edge of a small field of view), cone-beam shading, then the
    export's mapping (:class:`GreyMapping`: window, gamma, 12-16-bit integers, saturation of
    either end), so the joint histogram moves from scan to scan as it does between real
    scanners, protocols and patients.
"""

from __future__ import annotations

from tfgym.phantoms.factors import FACTORS, Factor
from tfgym.phantoms.generate import make_phantom
from tfgym.phantoms.spec import (
    FOV_KINDS,
    FOV_MM,
    HELDOUT_PHANTOMS,
    PHANTOM_SEEDS,
    TRAIN_PHANTOMS,
    Anatomy,
    FieldOfView,
    GreyMapping,
    PhantomSpec,
    phantom_name,
    phantom_shape,
    phantom_spec,
)

__all__ = [
    "FACTORS",
    "FOV_KINDS",
    "FOV_MM",
    "HELDOUT_PHANTOMS",
    "PHANTOM_SEEDS",
    "TRAIN_PHANTOMS",
    "Anatomy",
    "Factor",
    "FieldOfView",
    "GreyMapping",
    "PhantomSpec",
    "make_phantom",
    "phantom_name",
    "phantom_shape",
    "phantom_spec",
]
