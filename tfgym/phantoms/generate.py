"""Generating a phantom volume: paint the seed's head in its field of view, then scan it.

A phantom of ``size <= 128`` is painted at twice its size and resampled, anti-aliased, to its
grid (:func:`tfgym.volume.resample_volume`; labels take the most frequent tissue of each
2 x 2 x 2 block, METAL wherever there is any), so that partial volume looks like a real scan
resampled to a coarse working size. A field of view smaller than the head is centred on the
jaws; the head outside it is painted coarsely (4 mm) for the beams that cross it.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from tfgym.phantoms.grid import Z_OCCLUSAL, HeadGrid
from tfgym.phantoms.head import Head
from tfgym.phantoms.scanner import scan
from tfgym.phantoms.spec import FOV_MM, PhantomSpec, phantom_spec
from tfgym.volume import Volume

__all__ = ["make_phantom"]

_PAINT_TWICE_UP_TO = 128
_CONTEXT_MM = 4.0  # voxel size of the coarse painting of the head outside a small FOV
# Canonical head points (mm) a small field of view is centred on: the middle of the dental
# arches, and for a maxillofacial one a point above it so that the FOV reaches from just below
# the chin towards the orbits.
_JAWS_Y = -66.0
_MIDFACE_Y = -50.0
_BELOW_CHIN_Z = -142.0


def _fov_centre(spec: PhantomSpec) -> np.ndarray:
    """Centre ``(x, y, z)`` of the field of view in the whole-head frame (mm)."""
    fov = spec.fov
    if fov.kind == "head":
        return np.zeros(3)
    if fov.kind == "dental":
        aim = (0.0, _JAWS_Y, Z_OCCLUSAL)
    else:
        aim = (0.0, _MIDFACE_Y, max(Z_OCCLUSAL, _BELOW_CHIN_Z + fov.height / 2.0))
    frame = HeadGrid(spec, (1, 1, 1), FOV_MM)
    return frame.world(np.array(aim)) + np.array(fov.shift_mm)


def _context(spec: PhantomSpec, centre: np.ndarray, height: float, h: float):
    """A coarse painting of the whole head over the FOV's heights, and the FOV's axis in it."""
    hc = max(_CONTEXT_MM, h)
    nz = int(np.ceil(height / hc)) + 2
    shape = (nz, round(FOV_MM[1] / hc), round(FOV_MM[2] / hc))
    extent = (nz * hc, shape[1] * hc, shape[2] * hc)
    head = Head(spec, shape, extent, (0.0, 0.0, float(centre[2])))
    head.build()
    return head, np.array([centre[0], centre[1], 0.0])


def make_phantom(
    seed: int, *, size: int = 64, metal: bool | None = None, neutral: Collection[str] = ()
) -> Volume:
    """Generate the CBCT head phantom of ``seed``.

    Args:
        seed: non-negative integer; the phantom is fully determined by ``seed``, ``size``,
            ``metal`` and ``neutral``.
        size: voxels along the longest side of the field of view; the voxels are isotropic
            (:meth:`tfgym.phantoms.FieldOfView.shape`), e.g. ``(64, 64, 52)`` for the whole
            head (4 mm voxels) or ``(51, 64, 64)`` for a dental cylinder 100 mm wide and 80 mm
            high (1.56 mm voxels).
        metal: None to let the seed decide, True/False to force metal restorations on/off.
        neutral: variation factors (:data:`tfgym.phantoms.factors.FACTORS`) set to their
            neutral value; ``neutral=FACTORS`` gives the plain whole-head scan of a standard
            adult on an ideal scanner.

    Returns:
        A :class:`tfgym.volume.Volume` named ``"phantom-SS"`` whose ``data`` holds the scan's
        grey values and whose ``labels`` hold the noise-free anatomy (AIR outside the
        reconstructed cylinder).

    Raises:
        ValueError: ``seed`` is negative, ``size`` is smaller than 16, or ``neutral`` names an
            unknown factor.

    Example:
        >>> vol = make_phantom(5, size=32, neutral={"fov"})
        >>> vol.name, vol.shape, vol.spacing
        ('phantom-05', (32, 32, 26), (8.0, 8.0, 8.0))
    """
    spec = phantom_spec(seed, metal=metal, neutral=neutral)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"phantom size must be an integer >= 16, got {size!r}")
    size = int(size)
    shape = spec.shape(size)
    h = spec.fov.voxel_mm(size)
    factor = 2 if size <= _PAINT_TWICE_UP_TO else 1
    extent = (shape[0] * h, shape[1] * h, shape[2] * h)
    centre = _fov_centre(spec)
    fine = (shape[0] * factor, shape[1] * factor, shape[2] * factor)
    head = Head(spec, fine, extent, (float(centre[0]), float(centre[1]), float(centre[2])))
    head.build()
    context = None if spec.fov.kind == "head" else _context(spec, centre, extent[0], h)
    data, labels = scan(spec, head, shape, context)
    return Volume(data, (h,) * 3, spec.name, labels)
