"""The canonical head frame and the voxel grid a phantom is painted on.

The head frame is canonical: millimetres of an unscaled head, origin at the centre of the
cranial ellipsoid, x to the patient's left, y posterior, z superior. :class:`HeadGrid` maps
every voxel of the grid to canonical coordinates through the seed's pose and head scale and
paints labels and noise-free HU on it, one shape at a time.
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np

from tfgym.phantoms.hu import HU_AIR, HU_CANCELLOUS, HU_CORTICAL
from tfgym.phantoms.sdf import capsule, ellipsoid, rotation
from tfgym.phantoms.spec import PhantomSpec
from tfgym.volume import Tissue

__all__ = ["SKULL", "Z_OCCLUSAL", "Box", "HeadGrid", "within"]

# Skull: outer table semi-axes (x, y, z) in mm of the canonical (scale 1) head; its centre is
# the origin of the head frame. The occlusal plane of the teeth is at z = -92.
SKULL = (70.0, 91.0, 80.0)
Z_OCCLUSAL = -92.0

Box = tuple[slice, slice, slice]


def within(outer: Box, inner: Box) -> Box | None:
    """The part of box ``inner`` inside box ``outer``, as slices relative to ``outer``.

    Example:
        >>> within((slice(2, 9),) * 3, (slice(0, 4), slice(3, 5), slice(8, 20)))
        (slice(0, 2, None), slice(1, 3, None), slice(6, 7, None))
    """
    out = []
    for o, i in zip(outer, inner, strict=True):
        a, b = max(i.start, o.start) - o.start, min(i.stop, o.stop) - o.start
        if a >= b:
            return None
        out.append(slice(a, b))
    return tuple(out)  # type: ignore[return-value]


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
        fov_mm: the extent ``(z, y, x)`` in mm of the grid; the voxels are cubes of
            ``fov_mm[0] / shape[0]`` mm and the grid is centred on the origin of the world.
        center_mm: where the grid centre lies, ``(x, y, z)`` in mm of the frame of the
            whole-head field of view (:data:`tfgym.phantoms.FOV_MM`, centred on its origin,
            the head placed in it as the default phantom's); a dental field of view is centred
            on the jaws. World coordinates (``axes``, :meth:`world`, ``metal``) are relative to
            the grid centre.
    """

    def __init__(
        self,
        spec: PhantomSpec,
        shape: tuple[int, int, int],
        fov_mm: tuple[float, float, float],
        center_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> None:
        self.spec, self.an = spec, spec.anatomy
        an = self.an
        self.shape = shape
        self.h = fov_mm[0] / shape[0]
        nz, ny, nx = self.shape
        # World coordinates (mm) of voxel centres along x, y, z; origin at the grid centre.
        self.axes = tuple((np.arange(n) - (n - 1) / 2.0) * self.h for n in (nx, ny, nz))
        self.scale = np.array(an.scale)
        self.rot = rotation(*an.pose_deg)
        _, sy, sz = an.scale
        # In the frame of the whole-head field of view (256 mm high, centred on the origin) the
        # canonical origin sits so that the vertex is ~9 mm below its top and the head is
        # centred from nose to occiput; the grid centre is center_mm of that frame.
        head = np.array([0.0, 11.0 * sy, 128.0 - 9.0 - 85.0 * sz]) + an.shift_mm
        self.origin = head - np.asarray(center_mm, dtype=np.float64)
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

    def coarse(self, sl: Box, fn, *, mm: float = 2.0):
        """Evaluate a smooth field ``fn(X, Y, Z)`` every ``mm`` and repeat it to every voxel.

        For fields that vary slowly over a voxel (the vault's radius as a function of the
        direction, the height of the cranial floor): evaluating them on 1/8 of the voxels
        and taking the nearest sample moves their level sets by under ``mm / 2`` times their
        slope.

        Args:
            sl: the box.
            fn: a function of canonical coordinate arrays, returning an array or a tuple of
                arrays of their shape.
            mm: sampling distance; fields are evaluated exactly on grids coarser than it.

        Returns:
            ``fn``'s result on every voxel of ``sl``.
        """
        k = max(1, int(mm / self.h))
        if k == 1:
            return fn(*self.coords(sl))
        sub = cast(Box, tuple(slice(s.start + k // 2, s.stop, k) for s in sl))
        if any(s.start >= s.stop for s in sub):
            sub = cast(Box, tuple(slice(s.start, s.stop, k) for s in sl))
        n = tuple(s.stop - s.start for s in sl)

        def grow(a: np.ndarray) -> np.ndarray:
            for axis in range(3):
                a = np.repeat(a, k, axis=axis)
                if a.shape[axis] < n[axis]:
                    pad = [(0, 0)] * 3
                    pad[axis] = (0, n[axis] - a.shape[axis])
                    a = np.pad(a, pad, mode="edge")
            return a[: n[0], : n[1], : n[2]]

        out = fn(*self.coords(sub))
        return tuple(grow(a) for a in out) if isinstance(out, tuple) else grow(out)

    def plane_field(self, fn, U: np.ndarray, V: np.ndarray):
        """Evaluate a field of two coordinates, ``fn(U, V)``, through a fine 2D raster.

        A field that depends on two canonical coordinates only (the distance to a dental
        arch in the axial plane, to a ramus outline in the sagittal plane) is sampled on a
        raster of ``min(0.25, h / 2)`` mm covering ``U, V`` and looked up at the nearest
        raster point, when that is cheaper than evaluating it at every voxel.

        Args:
            fn: function of two coordinate arrays returning a tuple of arrays of their shape.
            U: first coordinate of the voxels.
            V: second coordinate, same shape.

        Returns:
            ``fn``'s tuple at the voxels.
        """
        res = min(0.25, self.h / 2.0)
        lo_u, hi_u, lo_v, hi_v = float(U.min()), float(U.max()), float(V.min()), float(V.max())
        nu, nv = int((hi_u - lo_u) / res) + 2, int((hi_v - lo_v) / res) + 2
        if nu * nv * 4 > U.size:
            return fn(U, V)
        gu = (lo_u + res * np.arange(nu)).astype(np.float32)
        gv = (lo_v + res * np.arange(nv)).astype(np.float32)
        fields = fn(np.repeat(gu, nv).reshape(nu, nv), np.tile(gv, nu).reshape(nu, nv))
        iu = np.rint((U - lo_u) * np.float32(1.0 / res)).astype(np.intp)
        iv = np.rint((V - lo_v) * np.float32(1.0 / res)).astype(np.intp)
        flat = iu * nv + iv
        return tuple(np.asarray(f, np.float32).ravel()[flat] for f in fields)

    def paint(self, sl: Box, mask: np.ndarray, tissue: Tissue, hu, *, inside=False) -> None:
        """Set label and HU on ``mask``; ``inside`` restricts it to voxels already in the head."""
        lab = self.lab[sl]
        if inside:
            mask = mask & (lab != Tissue.AIR)
        lab[mask] = tissue
        self.hu[sl][mask] = hu if np.isscalar(hu) else hu[mask]

    def paint_smooth(
        self, sl: Box, depth: np.ndarray, tissue: Tissue, hu, *, inside: bool = False
    ) -> None:
        """:meth:`paint` from a signed depth (mm, > 0 inside), with partial-volume edges.

        Labels go to the voxels inside (``depth > 0``), as with ``paint(sl, depth > 0, ...)``;
        the HU of the voxels within half a voxel of the surface, on both sides, are blended
        by the share of the voxel the shape covers, ``clip(0.5 + depth / h, 0, 1)``. A binary
        surface would be a staircase of whole voxels, which a renderer draws as terraced
        contour rings on every smooth bone.
        """
        lab, dst = self.lab[sl], self.hu[sl]
        cover = np.clip(0.5 + depth / np.float32(self.h), 0.0, 1.0).astype(np.float32)
        if inside:
            cover = np.where(lab != Tissue.AIR, cover, np.float32(0.0))
        mask = depth > 0
        if inside:
            mask &= lab != Tissue.AIR
        new = np.broadcast_to(np.asarray(hu, dtype=np.float32), cover.shape)
        edge = (cover > 0) & (cover < 1)
        blended = dst + cover * (new - dst)
        lab[mask] = tissue
        dst[mask] = new[mask]
        dst[edge & ~mask] = blended[edge & ~mask]
        dst[edge & mask] = blended[edge & mask]

    def paint_subset(
        self, sl: Box, subset: np.ndarray, mask: np.ndarray, tissue: Tissue, hu
    ) -> None:
        """:meth:`paint` with ``mask`` (and ``hu``) given on the voxels ``subset`` of ``sl``."""
        full = np.zeros(subset.shape, bool)
        full[subset] = mask
        if np.isscalar(hu):
            self.paint(sl, full, tissue, hu)
            return
        lab = self.lab[sl]
        lab[full] = tissue
        self.hu[sl][full] = np.asarray(hu)[mask]

    def bone_hu(self, depth: np.ndarray, *, cortex: float = 1.8) -> np.ndarray:
        """Cortical HU within ``cortex`` mm of a bone surface, cancellous deeper.

        The two meet in a ramp one voxel wide (partial volume). The patient's bone density
        scales both; an elderly patient's cortex is thinner.
        """
        bd = self.an.bone_density
        cortex = cortex * (0.75 if self.an.age == "elderly" else 1.0)
        # partial volume at the cortex / cancellous boundary: a ramp one voxel wide, not a
        # step (a staircase of whole voxels shows as contour rings through thin cortex)
        share = np.clip((np.asarray(depth, np.float32) - cortex) / np.float32(self.h) + 0.5, 0, 1)
        cortical, cancellous = np.float32(HU_CORTICAL * bd), np.float32(HU_CANCELLOUS * bd)
        return (cortical + share * (cancellous - cortical)).astype(np.float32)

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
        self.paint_smooth(sl, -d, tissue, hu, inside=inside)
