"""Painting the cranium: the vault's shape and tables, the skull base, and the brain inside.

The vault is a star-shaped surface around the origin of the head frame: its radius in each
direction is an egg-shaped superellipsoid (wider behind, flatter at the sides) modulated by
smooth bumps (frontal and parietal eminences, occipital bulge) and dents (temporal fossae).
The inner table follows at the local thickness of the vault, so the vault is two cortical
tables with diploe between them everywhere.
"""

from __future__ import annotations

import numpy as np

from tfgym.phantoms.grid import HeadGrid, within
from tfgym.phantoms.hu import HU_AIR, HU_CSF, HU_GREY, HU_SOFT, HU_WHITE
from tfgym.phantoms.sdf import cone, logistic
from tfgym.volume import Tissue

__all__ = ["CraniumPainter", "brain_floor", "vault_radius"]

# Radial bumps of the outer table: (direction, half-width in cos(angle), relative amplitude).
# Directions use |x| (mirror symmetric); the amplitudes of the brow-dependent and occiput-
# dependent bumps are scaled by the anatomy.
_FRONTAL = ((0.3, -0.8, 0.52), 0.06, 0.025)  # frontal eminences
_PARIETAL = ((0.62, 0.45, 0.64), 0.08, 0.025)  # parietal eminences
_OCCIPITAL = ((0.0, 0.94, -0.34), 0.06, 0.05)  # occipital bulge (x occiput)
_INION = ((0.0, 0.92, -0.4), 0.006, 0.03)  # external occipital protuberance
_TEMPORAL = ((0.82, -0.38, -0.42), 0.05, -0.07)  # temporal fossa


def brain_floor(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Height of the floor of the cranial cavity: anterior, middle, posterior fossa, sella."""
    ridge = Y + 36.0 + 22.0 * (X / 50.0) ** 2  # lesser wings: the middle fossa reaches forward
    fl = -9.0 - 35.0 * logistic(ridge / 3.0) - 18.0 * logistic((Y - 6.0) / 4.0)
    fl = fl + 2.0 * np.logaddexp(0.0, (Y - 30.0) / 4.0)  # the occipital bone curves up behind
    sella = logistic((Y + 38.0) / 3.0) * logistic((-6.0 - Y) / 3.0)
    olfactory = 9.0 * np.exp(-((X / 7.0) ** 2)) * logistic((-40.0 - Y) / 3.0)
    return fl + 16.0 * np.exp(-((X / 13.0) ** 4)) * sella - olfactory


def _bump(nx, ny, nz, spec: tuple, amp: float) -> np.ndarray:
    (cx, cy, cz), width, _ = spec
    n = np.sqrt(cx * cx + cy * cy + cz * cz)
    dot = (np.abs(nx) * cx + ny * cy + nz * cz) / n
    return amp * np.exp((dot - 1.0) / width)


def vault_radius(an, X: np.ndarray, Y: np.ndarray, Z: np.ndarray):
    """Radius of the outer table of the vault in the direction of each point, and thickness.

    Args:
        an: the :class:`tfgym.phantoms.anatomy.Anatomy`.
        X: canonical x of the points (mm); ``Y``, ``Z`` likewise.
        Y: canonical y.
        Z: canonical z.

    Returns:
        ``(outer, t)`` float32 arrays: a point at distance ``r`` from the origin of the head
        frame is outside the vault where ``r > outer`` and inside the cranial cavity where
        ``r < outer - t`` (and above :func:`brain_floor`).
    """
    a, b, c = an.vault
    r = np.sqrt(X * X + Y * Y + Z * Z) + np.float32(1e-3)
    nx, ny, nz = X / r, Y / r, Z / r
    width = a * (1.0 + 0.07 * ny + 0.03 * nz)  # egg: wider behind and above
    length = np.where(ny < 0, 0.97 * b, b)
    # the forehead is broad and flat above the brows, the sides flat
    n = 2.4 + 1.4 * np.clip(-ny, 0.0, 1.0) ** 2 * logistic(-6.0 * nz - 1.0)
    hor = (np.abs(nx) / width) ** n + (np.abs(ny) / length) ** n
    q = np.sqrt(hor ** (2.0 / n) + (nz / c) ** 2)
    bumps = 1.0 + _bump(nx, ny, nz, _FRONTAL, _FRONTAL[2] * (1.0 - 0.5 * an.brow))
    bumps += _bump(nx, ny, nz, _PARIETAL, _PARIETAL[2])
    bumps += _bump(nx, ny, nz, _OCCIPITAL, _OCCIPITAL[2] * (0.4 + an.occiput))
    bumps += _bump(nx, ny, nz, _INION, _INION[2] * an.occiput)
    temporal = _bump(nx, ny, nz, _TEMPORAL, 1.0)
    outer = bumps / q + _TEMPORAL[2] * a * temporal
    # thicker frontal and occipital bone, thin temporal squama; the frontal sinus separates
    # the tables above the nose
    glabella = _bump(nx, ny, nz, ((0.0, -0.97, -0.22), 0.012, 0.0), 1.0)
    t = np.maximum(an.skull * (1.0 + 0.25 * np.abs(ny) + 0.15 * nz - 0.4 * temporal), 4.5)
    t = t + 9.0 * an.frontal_sinus * glabella
    return outer.astype(np.float32), t.astype(np.float32)


class CraniumPainter(HeadGrid):
    """Paints the brain and the cranium (vault, skull base, brow, frontal sinus, mastoids)."""

    def vault_field(self):
        """Box of the vault and scalp, and on it: radius, outer-table radius, thickness, floor.

        Computed once per grid; the smooth fields are sampled every 2 mm
        (:meth:`HeadGrid.coarse`).

        Returns:
            None if the vault is outside the grid, else ``(box, r, outer, t, floor)``: the
            radius from the head frame's origin, :func:`vault_radius` and
            :func:`brain_floor` on the voxels of ``box``.
        """
        if hasattr(self, "_vault"):
            return self._vault
        a, b, c = self.an.vault
        m = self.an.scalp + 8.0
        sl = self.box((-a - m, -b - m, -c + 10.0), (a + m, b + m, c + m))
        self._vault = None
        if sl is not None:
            X, Y, Z = self.coords(sl)
            r = np.sqrt(X * X + Y * Y + Z * Z)
            outer, t = self.coarse(sl, lambda X, Y, Z: vault_radius(self.an, X, Y, Z))
            floor = self.coarse(sl, lambda X, Y, Z: brain_floor(X, Y))
            self._vault = (sl, r, outer, t, floor)
        return self._vault

    def brain(self) -> None:
        """Grey and white matter, ventricles, cerebellum and a CSF rim inside the skull."""
        field_ = self.vault_field()
        if field_ is None:
            return
        sl, r, outer, t, fl = field_
        Z = self.Z[sl]
        di = r - (outer - t)
        inside = (di < 0) & (Z > fl)
        hu = np.where(di > -1.5, np.float32(HU_CSF), np.float32(HU_GREY))
        self.paint(sl, inside, Tissue.SOFT_TISSUE, hu)
        brain = Tissue.SOFT_TISSUE
        sub, d = self.shape_sdf("e", (0, -5, 16), (46, 64, 40))
        if sub is not None:
            floor = self.coarse(sub, lambda X, Y, Z: brain_floor(X, Y))
            self.paint(sub, (d < 0) & (self.Z[sub] > floor + 14), brain, HU_WHITE, inside=True)
        self.solid("e", (0, 50, -44), (44, 28, 17), tissue=brain, hu=40.0, inside=True)
        for sx in (-1, 1):  # lateral ventricles: bodies and temporal horns
            self.solid(
                "c", (sx * 11, -26, 16), (sx * 13, 20, 18), (4, 4, 7), tissue=brain, hu=HU_CSF
            )
            self.solid("c", (sx * 13, 20, 18), (sx * 25, -4, -14), 3.5, tissue=brain, hu=HU_CSF)
        self.solid("e", (0, -4, -2), (2.5, 12, 8), tissue=brain, hu=HU_CSF)  # third ventricle

    def skull(self) -> None:
        """Vault (two tables and diploe) over the skull base, brow ridges, frontal sinus."""
        field_ = self.vault_field()
        if field_ is None:
            return
        sl, r, outer_r, t, fl = field_
        X, Y, Z = self.coords(sl)
        low = fl - 7.0 - 3.0 * logistic((Y + 36.0 + 22.0 * (X / 50.0) ** 2) / 3.0)
        inner = np.maximum(r - (outer_r - t), fl - Z)
        outer = np.minimum(outer_r - r, Z - low)
        magnum = ((X / 14.5) ** 2 + ((Y - 23.0) / 18.0) ** 2 < 1.0) & (Z < fl + 4.0)
        depth = np.minimum(outer, inner)
        depth = np.where(magnum, np.minimum(depth, np.float32(-self.h)), depth)
        self.paint_smooth(sl, depth, Tissue.BONE, self.bone_hu(depth, cortex=1.5))
        fs = self.an.frontal_sinus
        for sx in (-1, 1) if fs > 0 else ():  # frontal sinus: air between the tables, 2 lobes
            sub, d = self.shape_sdf("e", (sx * 7 * fs, -82.5, -4), (8.0 * fs, 4.5, 11.0 * fs))
            rel = None if sub is None else within(sl, sub)
            if sub is None or d is None or rel is None:
                continue
            keep = (outer[rel] > 4.0) & (inner[rel] > 1.5) & (np.abs(self.X[sub]) > 0.8)
            self.paint(sub, (d < 0) & keep, Tissue.AIR, HU_AIR)
        self.skull_base()

    def skull_base(self) -> None:
        """Brow ridges, clivus, petrous ridges, occipital condyles, mastoids, styloids."""
        brow = 1.5 + 1.5 * self.an.brow
        for sx in (-1, 1):  # superciliary arches above the medial half of the orbits
            self.solid("c", (sx * 8, -86, -13), (sx * 28, -82.5, -9), (brow, brow, brow + 1.5))
        self.solid("c", (0, -8, -38), (0, 8, -62), 6.5)  # clivus
        for sx in (-1, 1):
            self.solid("c", (sx * 48, 12, -46), (sx * 14, -12, -38), 6)  # petrous ridge
            self.solid("e", (sx * 12.5, 12, -65), (5, 9, 4.5))  # occipital condyle
            sl, d = self.shape_sdf("c", (sx * 50, 10, -50), (sx * 47, 14, -76), 9)
            if sl is not None:  # mastoid process: a cone pointing down
                X, Y, Z = self.coords(sl)
                d = cone(X, Y, Z, (sx * 50, 10, -50), (sx * 47, 12, -74), 8.5, 3.5)
                self.paint(sl, d < 0, Tissue.BONE, self.bone_hu(-d))
            self.solid("c", (sx * 40, 0, -58), (sx * 36, -12, -86), 1.4)  # styloid
            for py in (-27.0, -21.0):  # pterygoid plates behind the maxilla
                self.solid("c", (sx * 14, py, -50), (sx * (16 + (py + 27)), py - 6, -84), 1.3)
            self.solid("e", (sx * 51, -1, -54), (8, 5, 3.5))  # articular eminence
            sl, d = self.shape_sdf("e", (sx * 52, -8, -57), (11, 7.5, 6))  # glenoid fossa
            if sl is not None:
                self.paint(sl, (d < 0) & (self.lab[sl] == Tissue.BONE), Tissue.SOFT_TISSUE, HU_SOFT)
