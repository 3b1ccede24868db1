"""Painting the facial skeleton: a bony mass hollowed out by the orbits, nose and sinuses.

The midface is one solid (front surface curving back laterally, nasal bones forward) from
which the cavities are carved: conical orbits with rims, the nasal cavity opening through
the pear-shaped aperture, the maxillary sinuses and ethmoid cells. What is left are the thin
walls a real midface has: orbital floors and medial walls, nasal bones, the frontal process
of the maxilla, the anterior maxillary wall, the zygomatic bodies and the lateral orbital
rims. Zygomatic arches, septum, conchae and eyes are added on top.
"""

from __future__ import annotations

import numpy as np

from tfgym.phantoms.cranium import brain_floor, vault_radius
from tfgym.phantoms.grid import HeadGrid, within
from tfgym.phantoms.hu import HU_AIR, HU_CORTICAL, HU_FAT
from tfgym.phantoms.sdf import capsule, logistic, polyline, round_box, smooth_max
from tfgym.volume import Tissue

__all__ = ["FacePainter"]

_APEX, _RIM = (14.0, -40.0, -32.0), (33.0, -81.0, -29.5)  # orbit apex and rim centre (x > 0)
# Lateral extent of the midface by height: maxilla over the molars, zygomatic buttress and
# body, lateral orbital rim.
_LATERAL_Z = (-80.0, -72.0, -62.0, -54.0, -44.0, -30.0, -12.0)
_LATERAL_X = (33.0, 38.0, 46.0, 56.0, 57.5, 54.0, 52.5)
_ARCH = np.array([(43.0, -71.0), (55.0, -60.0), (61.5, -42.0), (61.0, -22.0), (56.0, -6.0)])


def _face_front(X: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """Canonical y of the front surface of the facial skeleton (the face is at low y)."""
    y = -89.0 + 0.0075 * X * X
    nasal = np.clip((-22.0 - Z) / 26.0, 0.0, 1.0) * np.exp(-((X / 6.5) ** 2))
    y = y - 9.0 * nasal * (Z > -50.0)
    fossa = np.exp(-(((np.abs(X) - 25.0) / 8.0) ** 2) - ((Z + 60.0) / 8.0) ** 2)
    cheek = np.exp(-(((np.abs(X) - 46.0) / 7.0) ** 2) - ((Z + 50.0) / 8.0) ** 2)
    return y + 3.0 * fossa - 4.0 * cheek


def _nasal_half_width(Z: np.ndarray) -> np.ndarray:
    """Half width of the nasal cavity at height ``Z``: narrow between the orbits, wide below."""
    return 5.5 + 8.5 * logistic((-52.0 - Z) / 4.0) - 2.0 * logistic((-74.0 - Z) / 1.5)


class FacePainter(HeadGrid):
    """Paints the midface (maxilla, zygomas, orbits, nose, sinuses), the arches and the eyes."""

    @staticmethod
    def orbit_fields(sx: float, X: np.ndarray, Y: np.ndarray, Z: np.ndarray):
        """Axial position and cross-section coordinates of points in an orbit's frame.

        Returns:
            ``(tau, qh, qv, g)``: position along the axis (0 at the apex, 1 at the rim), the
            horizontal and vertical offsets from the axis (mm, the opening tilted 9 degrees),
            and the cross-section's scale there (widest a centimetre behind the rim: the rim is
            a lip; flaring in front of it).
        """
        a = np.array((sx * _APEX[0], _APEX[1], _APEX[2]))
        e = np.array((sx * _RIM[0], _RIM[1], _RIM[2])) - a
        e2 = float(e @ e)
        uh = np.cross(e, (0.0, 0.0, 1.0))
        uh /= np.linalg.norm(uh)
        uv = np.cross(uh, e)
        uv /= np.linalg.norm(uv)
        c, s = np.cos(np.radians(9.0)), sx * np.sin(np.radians(9.0))
        uh, uv = c * uh + s * uv, -s * uh + c * uv  # the lateral side of the opening is lower
        px, py, pz = X - a[0], Y - a[1], Z - a[2]
        tau = (px * float(e[0]) + py * float(e[1]) + pz * float(e[2])) / e2
        qh = px * float(uh[0]) + py * float(uh[1]) + pz * float(uh[2])
        qv = px * float(uv[0]) + py * float(uv[1]) + pz * float(uv[2])
        tp = np.clip(tau, 0.0, None)
        g = np.where(tp < 0.78, 0.12 + 0.96 * (tp / 0.78) ** 0.75, 1.08 - 0.4 * (tp - 0.78))
        g = np.where(tp > 0.98, 1.0 + 1.5 * (tp - 0.98), g)
        return tau, np.abs(qh), np.abs(qv), g

    @staticmethod
    def orbit_mask(fields, grow: float) -> np.ndarray:
        """The orbital cavity grown by ``grow`` mm (a rounded square cross-section)."""
        tau, qh, qv, g = fields
        rw, rh = 19.0 * g + grow, 17.5 * g + grow
        return (tau > -0.04) & (
            (qh / rw) ** 2 + (qv / rh) ** 2 + 0.3 * (qh * qv / (rw * rh)) ** 2 < 1.0
        )

    def orbits(self, sl, grows: tuple[float, ...]) -> list[np.ndarray]:
        """Masks on box ``sl`` of both orbital cavities, grown by each of ``grows``."""
        out = [np.zeros(tuple(b.stop - b.start for b in sl), bool) for _ in grows]
        for sx in (-1, 1):
            sub = self.box((min(0, sx * 58), -104, -54), (max(0, sx * 58), -36, -6))
            rel = None if sub is None else within(sl, sub)
            if rel is None:
                continue
            X, Y, Z = (a[rel] for a in self.coords(sl))
            fields = self.orbit_fields(sx, X, Y, Z)
            for mask, grow in zip(out, grows, strict=True):
                mask[rel] |= self.orbit_mask(fields, grow)
        return out

    def face(self) -> None:
        """Midface, orbits and eyes, nasal cavity, septum, conchae, sinuses, arches."""
        sl = self.box((-60, -106, -79), (60, -34, -8))
        if sl is None:
            return
        X, Y, Z = self.coords(sl)
        ax = np.abs(X)
        front = _face_front(X, Z)
        lateral = logistic((ax - 42.0) / 2.5)
        pillar = 10.0 + 10.0 * np.exp(-(((Z + 50.0) / 9.0) ** 2))  # zygomatic body deeper
        back = (-38.0 - 8.0 * (ax / 42.0) ** 2) * (1.0 - lateral) + (front + pillar) * lateral
        x_lat = np.interp(Z, _LATERAL_Z, _LATERAL_X).astype(np.float32)
        d = smooth_max(front - Y, ax - x_lat + 0.35 * (Y - front), 4.0)
        d = smooth_max(d, np.maximum(Y - back, -77.0 - Z), 3.0)
        r = np.sqrt(X * X + Y * Y + Z * Z)
        outer, _ = self.coarse(sl, lambda X, Y, Z: vault_radius(self.an, X, Y, Z))
        d = smooth_max(d, np.minimum(r - outer + 0.5, Z + 21.0), 3.0)  # under the forehead
        floor = self.coarse(sl, lambda X, Y, Z: brain_floor(X, Y))
        d = np.maximum(d, Z - floor + 1.0)
        self.paint(sl, d < 0, Tissue.BONE, self.bone_hu(-d, cortex=1.5))
        orbits, walls, floors = self.orbits(sl, (0.0, 1.2, 2.2))
        orbits &= (self.lab[sl] == Tissue.BONE) & (Z < floor - 1.2)  # the roof stays
        self.paint(sl, orbits, Tissue.SOFT_TISSUE, HU_FAT)
        # nasal cavity behind a 2.5 mm front wall, opening through the piriform aperture
        half = _nasal_half_width(Z)
        roof = -29.0 - 21.0 * logistic((Y + 42.0) / 4.0)
        cavity = (ax < half) & (Z > -77.0) & (Z < roof) & (Y > front + 2.5) & (Y < -30.0)
        pear = np.minimum(
            np.sqrt(X * X + ((Z + 66.0) / 1.05) ** 2) - 12.5,
            np.maximum(ax - 5.5 - 0.3 * (-48.0 - Z), np.abs(Z + 57.0) - 10.0),
        )
        aperture = (pear < 0) & (Y < -78.0) & (Y > front - 6.0)
        self.paint(sl, (cavity | aperture) & ~orbits, Tissue.AIR, HU_AIR)
        # maxillary sinuses: inside the maxilla, 2 mm from its surfaces and the other cavities
        sinus = (d < -2.0) & (ax > half + 2.0) & (ax < 42.0) & (Z > -74.0) & (Z < -38.0)
        sinus &= ~floors & (Y < -44.0) & (Y > front + 2.0)
        self.paint(sl, sinus, Tissue.AIR, HU_AIR)
        level = -74.0 + 32.0 * self.an.sinus_fluid
        self.paint(sl, sinus & (Z < level), Tissue.SOFT_TISSUE, 15.0)
        # ethmoid air cells between the orbits and the upper nasal cavity, with bony septa
        k = 2.0 * np.pi / 5.0
        septa = np.cos(k * X) + np.cos(k * Y) + np.cos(k * Z) > 1.6
        ethmoid = (ax > half + 0.8) & (ax < 14.0) & (Z > -50.0) & (Z < -26.0) & (Y > -80)
        ethmoid &= (Y < -44.0) & ~walls & ~septa & (d < -0.8)
        self.paint(sl, ethmoid, Tissue.AIR, HU_AIR)
        self.nose_interior(sl, front)
        self.eyes()
        self.arches()

    def nose_interior(self, sl, front: np.ndarray) -> None:
        """Bony and cartilaginous septum, conchae with thin bony cores, anterior nasal spine."""
        cortical = HU_CORTICAL * self.an.bone_density
        X, Y, _ = self.coords(sl)
        air = self.lab[sl] == Tissue.AIR
        septum = air & (np.abs(X - 0.8 * np.sin(Y / 9.0)) < 1.1) & (Y > front - 4.0)
        self.paint(sl, septum & (Y < -80.0), Tissue.SOFT_TISSUE, 100.0)  # cartilage
        self.paint(sl, septum & (Y >= -80.0), Tissue.BONE, cortical)
        for sx in (-1, 1):
            for x0, z0, r, y0 in ((11.0, -66.0, 3.6, -86.0), (7.5, -51.0, 2.6, -78.0)):
                a, b = (sx * x0, y0, z0), (sx * (x0 + 0.5), -36.0, z0 + 1.0)
                sl2, dc = self.shape_sdf("c", a, b, (r, r, r * 1.4))
                if sl2 is None:
                    continue
                was_air = self.lab[sl2] == Tissue.AIR
                self.paint(sl2, (dc < 0) & was_air, Tissue.SOFT_TISSUE, 45.0)
                core = capsule(*self.coords(sl2), a, b, (0.8, 0.8, 1.6))
                self.paint(sl2, (core < 0) & was_air, Tissue.BONE, cortical)
        self.solid("c", (0, -88, -76.5), (0, -96, -77.5), 1.6)  # anterior nasal spine
        self.solid("e", (0, -24, -41), (10, 10, 7), tissue=Tissue.AIR, hu=HU_AIR)  # sphenoid
        for sx in (-1, 1):  # mastoid air cells
            sl2, dc = self.shape_sdf("e", (sx * 47, 13, -60), (6, 7, 10))
            if sl2 is not None:
                X2, Y2, Z2 = self.coords(sl2)
                k = 2.0 * np.pi / 6.0
                cells = np.cos(k * X2) + np.cos(k * Y2) + np.cos(k * Z2) < 1.2
                self.paint(sl2, (dc < 0) & cells, Tissue.AIR, HU_AIR, inside=True)
            canal = ((sx * 46, 4, -45), (sx * 84, 4, -45), 3.5)  # external ear canal
            self.solid("c", *canal, tissue=Tissue.AIR, hu=HU_AIR)

    def eyes(self) -> None:
        """Eyeballs and lenses in the orbital fat."""
        for sx in (-1, 1):
            eye, lens = ((sx * 32, -78, -28), (12, 12, 12)), ((sx * 32, -88.5, -28), (4.5, 2, 4.5))
            self.solid("e", *eye, tissue=Tissue.SOFT_TISSUE, hu=10.0, inside=True)
            self.solid("e", *lens, tissue=Tissue.SOFT_TISSUE, hu=80.0, inside=True)

    def arches(self) -> None:
        """Zygomatic bodies (cheekbones) and arches back to the temporal bone."""
        sl = self.box((-66, -75, -56), (66, -2, -36))
        if sl is None:
            return
        X, Y, Z = self.coords(sl)
        total = float(np.sum(np.hypot(*np.diff(_ARCH, axis=0).T)))
        d, s = self.plane_field(lambda u, v: polyline(u, v, _ARCH)[:2], np.abs(X), Y)
        zc = -48.0 + 4.0 * s / total
        hz = 6.5 - 1.5 * np.sin(np.pi * s / total) - 1.0 * s / total  # broad at the zygoma
        sdf = round_box(d, Z - zc, 2.3, hz, 1.8)
        self.paint(sl, sdf < 0, Tissue.BONE, self.bone_hu(-sdf))
