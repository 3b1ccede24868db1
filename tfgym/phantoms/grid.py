"""The canonical head frame and the voxel grid a phantom is painted on.

The head frame is canonical: millimetres of an unscaled head, origin at the centre of the
cranial ellipsoid, x to the patient's left, y posterior, z superior. :class:`HeadGrid` maps
every voxel of the grid to canonical coordinates through the seed's pose and head scale and
paints labels and noise-free HU on it, one shape at a time.
"""

from __future__ import annotations

import math

import numpy as np

from tfgym.phantoms.hu import HU_AIR, HU_CANCELLOUS, HU_CORTICAL
from tfgym.phantoms.sdf import capsule, ellipsoid, rotation
from tfgym.phantoms.spec import PhantomSpec
from tfgym.volume import Tissue

__all__ = ["SKULL", "Z_OCCLUSAL", "Box", "HeadGrid"]

# Skull: outer table semi-axes (x, y, z) in mm of the canonical (scale 1) head; its centre is
# the origin of the head frame. The occlusal plane of the teeth is at z = -92.
SKULL = (70.0, 91.0, 80.0)
Z_OCCLUSAL = -92.0

Box = tuple[slice, slice, slice]


class HeadGrid:
    """The voxel grid of one phantom, in the canonical head frame, and how to paint on it.

    Anatomy is written in the canonical head frame (mm; origin at the centre of the cranial
    ellipsoid; x left, y posterior, z superior); every voxel knows its canonical coordinates
    ``X, Y, Z``, obtained from its world position through the seed's pose and head scale.
    Each structure is evaluated only on the voxels of its bounding box. The painters of
    :mod:`tfgym.phantoms.cranium`, :mod:`tfgym.phantoms.teeth` and :mod:`tfgym.phantoms.neck`
    build on this class; :class:`tfgym.phantoms.head.Head` combines them.

    Args:
        spec: the phantom's scanner and anatomy parameters.
        shape: the voxel grid ``(nz, ny, nx)`` (:func:`tfgym.phantoms.phantom_shape`).
        fov_mm: the field of view ``(z, y, x)`` in mm; the voxels are cubes of
            ``fov_mm[0] / shape[0]`` mm and the grid is centred on the origin of the world.
    """

    def __init__(
        self,
        spec: PhantomSpec,
        shape: tuple[int, int, int],
        fov_mm: tuple[float, float, float],
    ) -> None:
        self.spec, self.an = spec, spec.anatomy
        an = self.an
        self.shape = shape
        self.h = fov_mm[0] / shape[0]
        nz, ny, nx = self.shape
        # World coordinates (mm) of voxel centres along x, y, z; origin at the FOV centre.
        self.axes = tuple((np.arange(n) - (n - 1) / 2.0) * self.h for n in (nx, ny, nz))
        self.scale = np.array(an.scale)
        self.rot = rotation(*an.pose_deg)
        _, sy, sz = an.scale
        # The canonical origin sits so that the vertex is ~9 mm below the top of the FOV and
        # the head is centred from nose to occiput.
        self.origin = np.array([0.0, 11.0 * sy, fov_mm[0] / 2 - 9.0 - 85.0 * sz]) + an.shift_mm
        inv = self.rot.T / self.scale[:, None]
        dx, dy, dz = (
            (ax - o).astype(np.float32) for ax, o in zip(self.axes, self.origin, strict=True)
        )
        self.X, self.Y, self.Z = (
            float(m[0]) * dx[None, None, :]
            + float(m[1]) * dy[None, :, None]
            + float(m[2]) * dz[:, None, None]
            for m in inv
        )
        self.lab = np.zeros(self.shape, np.uint8)
        self.hu = np.full(self.shape, HU_AIR, np.float32)
        self.metal: list[tuple[tuple[float, float, float], float]] = []  # world centre, half z

    # -- grid helpers -------------------------------------------------------------------
    def world(self, p: np.ndarray) -> np.ndarray:
        """World position (mm, x y z) of canonical points ``p`` of shape (..., 3)."""
        return (np.asarray(p) * self.scale) @ self.rot.T + self.origin

    def box(self, lo: tuple, hi: tuple) -> Box | None:
        """Voxel slices covering the canonical box ``lo``..``hi``; None if outside the grid."""
        corners = np.array(np.meshgrid(*zip(lo, hi, strict=True), indexing="ij")).reshape(3, -1)
        w = self.world(corners.T)
        out = []
        for k, n in zip((2, 1, 0), self.shape, strict=True):
            idx = w[:, k] / self.h + (n - 1) / 2.0
            a, b = max(math.floor(idx.min()), 0), min(math.ceil(idx.max()) + 1, n)
            if a >= b:
                return None
            out.append(slice(a, b))
        return tuple(out)  # type: ignore[return-value]

    def coords(self, sl: Box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Canonical coordinates of the voxels of ``sl``."""
        return self.X[sl], self.Y[sl], self.Z[sl]

    def paint(self, sl: Box, mask: np.ndarray, tissue: Tissue, hu, *, inside=False) -> None:
        """Set label and HU on ``mask``; ``inside`` restricts it to voxels already in the head."""
        lab = self.lab[sl]
        if inside:
            mask = mask & (lab != Tissue.AIR)
        lab[mask] = tissue
        self.hu[sl][mask] = hu if np.isscalar(hu) else hu[mask]

    def bone_hu(self, depth: np.ndarray) -> np.ndarray:
        """Cortical HU within 1.8 mm of a bone surface, cancellous deeper."""
        bd = self.an.bone_density
        return np.where(depth < 1.8, HU_CORTICAL * bd, HU_CANCELLOUS * bd).astype(np.float32)

    def shape_sdf(self, kind: str, *args):
        """Box and signed distance of an ellipsoid (``"e"``, c, r) or capsule (``"c"``, a, b, r)."""
        if kind == "e":
            c, r = args
            lo = tuple(ci - ri for ci, ri in zip(c, r, strict=True))
            sl = self.box(lo, tuple(ci + ri for ci, ri in zip(c, r, strict=True)))
            return (sl, None) if sl is None else (sl, ellipsoid(*self.coords(sl), c, r))
        a, b, r = args
        rr = max(r) if isinstance(r, tuple) else r
        lo = tuple(min(ai, bi) - rr for ai, bi in zip(a, b, strict=True))
        hi = tuple(max(ai, bi) + rr for ai, bi in zip(a, b, strict=True))
        sl = self.box(lo, hi)
        return (sl, None) if sl is None else (sl, capsule(*self.coords(sl), a, b, r))

    def solid(self, kind: str, *args, tissue=Tissue.BONE, hu=None, inside=False) -> None:
        """Paint one ellipsoid or capsule; bone gets cortical/cancellous HU by depth."""
        sl, d = self.shape_sdf(kind, *args)
        if sl is None:
            return
        if hu is None:
            hu = self.bone_hu(-d)
        self.paint(sl, d < 0, tissue, hu, inside=inside)
