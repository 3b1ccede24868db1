"""Painting the head above the jaws: skin and soft tissue, brain, cranium and face."""

from __future__ import annotations

import numpy as np

from tfgym.phantoms.grid import SKULL, HeadGrid
from tfgym.phantoms.hu import (
    HU_AIR,
    HU_CORTICAL,
    HU_CSF,
    HU_FAT,
    HU_GREY,
    HU_SKIN,
    HU_SOFT,
    HU_WHITE,
)
from tfgym.phantoms.sdf import capsule, ellipsoid, logistic
from tfgym.volume import Tissue

__all__ = ["CraniumPainter"]


class CraniumPainter(HeadGrid):
    """Paints the head envelope, the brain, the cranium and the facial skeleton and cavities."""

    # -- soft tissue, brain, cranium ------------------------------------------------------
    def envelope(self) -> None:
        """Skin, subcutaneous fat and soft tissue of head, face and neck; nose and ears."""
        an, (a, b, c) = self.an, SKULL
        X, Y, Z = self.X, self.Y, self.Z
        sc = an.scalp
        d = ellipsoid(X, Y, Z, (0, 0, 0), (a + sc, b + sc, c + sc))
        for cen, rad in (
            ((0, -45, -25), (66, 55, 30)),  # brows and eyes
            ((0, -35, -55), (68, 64, 38)),  # cheeks
            ((0, -30, -104), (60, 68, 36)),  # jaw
        ):
            d = np.minimum(d, ellipsoid(X, Y, Z, cen, rad))
        neck = (np.sqrt((X / 58.0) ** 2 + ((Y - 12.0) / 60.0) ** 2) - 1.0) * 58.0
        d = np.minimum(d, np.maximum(neck, Z + 45.0))
        parts = [("e", (0, -84 - an.chin, -126), (22, 15, 16)), ("e", (0, -92, -92), (28, 12, 16))]
        for kind, *args in parts:
            sl, dp = self.shape_sdf(kind, *args)
            if sl is not None:
                d[sl] = np.minimum(d[sl], dp)
        fat = 1.5 + (an.fat - 1.5) * logistic((-15.0 - Z) / 5.0)
        hu = np.where(d > -1.5, HU_SKIN, np.where(d > -1.5 - fat, HU_FAT, HU_SOFT))
        full = (slice(None),) * 3
        self.paint(full, d < 0, Tissue.SOFT_TISSUE, hu)
        for sx in (-1, 1):  # ears
            self.solid("e", (sx * 74, 8, -38), (5, 14, 28), tissue=Tissue.SOFT_TISSUE, hu=HU_SOFT)
        nose: tuple[tuple, ...] = (
            ("e", (0, -99, -50), (13, 12, 21)),  # body
            ("c", (0, -97, -26), (0, -114, -60), 6),  # dorsum and tip
            ("e", (0, -103, -64), (17, 10, 8)),  # alae
        )
        for kind, *args in nose:
            self.solid(kind, *args, tissue=Tissue.SOFT_TISSUE, hu=HU_SOFT)

    def brain_floor(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Height of the floor of the cranial cavity: anterior, middle, posterior fossa, sella."""
        fl = -12.0 - 32.0 * logistic((Y + 36.0) / 3.0) - 18.0 * logistic((Y - 6.0) / 4.0)
        sella = logistic((Y + 38.0) / 3.0) * logistic((-6.0 - Y) / 3.0)
        return fl + 16.0 * np.exp(-((X / 13.0) ** 4)) * sella

    def brain(self) -> None:
        """Grey and white matter, ventricles, cerebellum and a CSF rim inside the skull."""
        (a, b, c), t = SKULL, self.an.skull
        sl = self.box((-a, -b, -c), (a, b, c))
        if sl is None:
            return
        X, Y, Z = self.coords(sl)
        di = ellipsoid(X, Y, Z, (0, 0, 0), (a - t, b - t, c - t))
        fl = self.brain_floor(X, Y)
        hu = np.full(X.shape, HU_GREY, np.float32)
        hu[(ellipsoid(X, Y, Z, (0, -5, 16), (46, 64, 40)) < 0) & (Z > fl + 14)] = HU_WHITE
        hu[ellipsoid(X, Y, Z, (0, 50, -44), (44, 28, 17)) < 0] = 40.0  # cerebellum
        for sx in (-1, 1):
            hu[capsule(X, Y, Z, (sx * 11, -26, 16), (sx * 13, 20, 18), (4, 4, 7)) < 0] = HU_CSF
            hu[capsule(X, Y, Z, (sx * 13, 20, 18), (sx * 25, -4, -14), 3.5) < 0] = HU_CSF
        hu[ellipsoid(X, Y, Z, (0, -4, -2), (2.5, 12, 8)) < 0] = HU_CSF
        hu[di > -1.5] = HU_CSF
        self.paint(sl, (di < 0) & (Z > fl), Tissue.SOFT_TISSUE, hu)

    def skull(self) -> None:
        """Cranial vault (two tables and diploe), skull base, petrous bones, mastoids."""
        (a, b, c), t = SKULL, self.an.skull
        sl = self.box((-a, -b, -c), (a, b, c))
        if sl is None:
            return
        X, Y, Z = self.coords(sl)
        fl = self.brain_floor(X, Y)
        low = fl - 7.0 - 3.0 * logistic((Y + 36.0) / 3.0)
        inner = np.maximum(ellipsoid(X, Y, Z, (0, 0, 0), (a - t, b - t, c - t)), fl - Z)
        outer = np.minimum(-ellipsoid(X, Y, Z, (0, 0, 0), (a, b, c)), Z - low)
        magnum = ((X / 14.0) ** 2 + ((Y - 22.0) / 17.0) ** 2 < 1.0) & (Z < fl + 4.0)
        bone = (outer > 0) & (inner > 0) & ~magnum
        self.paint(sl, bone, Tissue.BONE, self.bone_hu(np.minimum(outer, inner)))
        self.solid("e", (0, -85, -12), (40, 6, 11))  # brow ridge around the frontal sinus
        self.solid("c", (0, -8, -38), (0, 8, -62), 6.5)  # clivus
        for sx in (-1, 1):
            self.solid("c", (sx * 48, 12, -46), (sx * 14, -12, -38), 6)  # petrous ridge
            self.solid("e", (sx * 46, 14, -60), (7, 9, 11))  # mastoid

    # -- facial skeleton and cavities -----------------------------------------------------
    def orbit(self, sx: float, X: np.ndarray, Y: np.ndarray, Z: np.ndarray, grow: float):
        """Mask of the orbital cone (apex behind the eye, opening at the face), grown by mm."""
        a = (sx * 13.0, -40.0, -30.0)
        e = np.array([sx * 20.0, -58.0, 2.0])
        e2 = float(e @ e)
        uv = np.array([0.0, 0.0, 1.0]) - e * (e[2] / e2)
        uv /= np.linalg.norm(uv)
        uh = np.cross(e, uv)
        uh /= np.linalg.norm(uh)
        px, py, pz = X - a[0], Y - a[1], Z - a[2]
        tau = (px * float(e[0]) + py * float(e[1]) + pz * float(e[2])) / e2
        qh = px * float(uh[0]) + py * float(uh[1]) + pz * float(uh[2])
        qv = px * float(uv[0]) + py * float(uv[1]) + pz * float(uv[2])
        tp = np.maximum(tau, 0.0)
        rw, rh = 3.0 + 17.0 * tp + grow, 3.0 + 14.0 * tp + grow
        return (tau > -0.05) & (tau < 1.15) & ((qh / rw) ** 2 + (qv / rh) ** 2 < 1.0)

    def face(self) -> None:
        """Maxilla, zygomas, orbits and eyes, nose, paranasal sinuses, ear canals."""
        an, cortical = self.an, HU_CORTICAL * self.an.bone_density
        sl, d = self.shape_sdf("e", (0, -62, -57), (46, 30, 25))  # maxilla body
        if sl is not None:
            self.paint(sl, (d < 0) & (self.Y[sl] < -33), Tissue.BONE, self.bone_hu(-d))
        self.solid("c", (0, -93, -22), (0, -103, -44), (8, 3, 3))  # nasal bones
        for sx in (-1, 1):
            self.solid("e", (sx * 50, -64, -40), (11, 12, 13))  # zygoma
            self.solid("c", (sx * 53, -58, -44), (sx * 63, -8, -44), (3, 5, 5))  # arch
            self.solid("c", (sx * 46, -74, -14), (sx * 50, -70, -40), 4.5)  # orbital rim
        sl = self.box((-58, -112, -62), (58, -34, 2))
        if sl is not None:
            X, Y, Z = self.coords(sl)
            below = Z < self.brain_floor(X, Y) - 1.5  # the orbital roof is the fossa floor
            for sx in (-1, 1):
                rim = Y > -92.0 + 0.5 * (np.abs(X) - 14.0)  # the rim recedes laterally
                wall = self.orbit(sx, X, Y, Z, 2.5) & rim & below
                self.paint(sl, wall, Tissue.BONE, cortical)
            for sx in (-1, 1):
                cone = self.orbit(sx, X, Y, Z, 0.0) & below
                self.paint(sl, cone, Tissue.SOFT_TISSUE, HU_FAT, inside=True)
        for sx in (-1, 1):
            eye, lens = ((sx * 32, -78, -28), (12, 12, 12)), ((sx * 32, -88.5, -28), (4.5, 2, 4.5))
            self.solid("e", *eye, tissue=Tissue.SOFT_TISSUE, hu=10.0, inside=True)
            self.solid("e", *lens, tissue=Tissue.SOFT_TISSUE, hu=80.0, inside=True)
        sl, d = self.shape_sdf("e", (0, -60, -57), (12.5, 40, 29))  # nasal cavity
        if sl is not None:
            X, Y, Z = self.coords(sl)
            nasal = (d < 0) & (Y > -104) & (Z > -76.5)
            self.paint(sl, nasal, Tissue.AIR, HU_AIR)
            septum = nasal & (np.abs(X) < 1.1) & (Z > -74)
            self.paint(sl, septum & (Y < -78), Tissue.SOFT_TISSUE, 100.0)  # cartilage
            self.paint(sl, septum & (Y >= -78), Tissue.BONE, cortical)
        for sx in (-1, 1):
            for c, r in (((sx * 9.5, -56, -65), (3.5, 26, 5)), ((sx * 8.5, -54, -50), (3, 22, 4))):
                self.solid("e", c, r, tissue=Tissue.SOFT_TISSUE, hu=50.0)  # turbinates
            nostril = ((sx * 7, -115, -68), (sx * 8, -98, -60), 3.2)
            self.solid("c", *nostril, tissue=Tissue.AIR, hu=HU_AIR)
            sl, d = self.shape_sdf("e", (sx * 29, -62, -60), (15, 20, 12))  # maxillary sinus
            if sl is not None:
                self.paint(sl, d < 0, Tissue.AIR, HU_AIR)
                fluid = (d < 0) & (self.Z[sl] < -72.0 + 24.0 * an.sinus_fluid)
                self.paint(sl, fluid, Tissue.SOFT_TISSUE, 15.0)
        self.solid("e", (0, -87, -8), (13, 3.5, 8), tissue=Tissue.AIR, hu=HU_AIR)  # frontal
        self.solid("e", (0, -24, -41), (10, 10, 7), tissue=Tissue.AIR, hu=HU_AIR)  # sphenoid
        k = 2.0 * np.pi / 6.0
        cells = [((0, -62, -27), (11, 24, 8), 1.7)]  # ethmoid
        cells += [((sx * 46, 14, -60), (6, 8, 10), 1.2) for sx in (-1, 1)]  # mastoid
        for c, r, thr in cells:
            sl, d = self.shape_sdf("e", c, r)
            if sl is not None:
                X, Y, Z = self.coords(sl)
                septa = np.cos(k * X) + np.cos(k * Y) + np.cos(k * Z) > thr
                self.paint(sl, (d < 0) & ~septa, Tissue.AIR, HU_AIR)
        for sx in (-1, 1):
            canal = ((sx * 48, 4, -45), (sx * 84, 4, -45), 3.5)
            self.solid("c", *canal, tissue=Tissue.AIR, hu=HU_AIR)
