"""Painting the jaws: mandible, maxillary alveolar process and hard palate.

The mandibular body is a cross-section swept along the lower dental arch and on to the
angles: a tall, rounded section tapering to the alveolar crest, shifted lingually with depth
as the incisor roots lean. The rami are plates (a polygon in the side view: posterior
border, condylar neck, sigmoid notch, coronoid process, anterior border) rising to the
condyles in the glenoid fossae of the skull base. Where teeth are missing, the alveolar
crest is resorbed by the patient's resorption height.
"""

from __future__ import annotations

import numpy as np

from tfgym.phantoms.hu import HU_CORTICAL
from tfgym.phantoms.sdf import extrude, polygon, polyline, round_box
from tfgym.phantoms.teeth import DentitionPainter, tilt
from tfgym.volume import Tissue

__all__ = ["CONDYLE", "JawPainter"]

CONDYLE = (51.0, -9.0, -58.5)
"""Centre of the right (x > 0 mirrored) mandibular condyle in its glenoid fossa."""


class JawPainter(DentitionPainter):
    """Paints the mandible, the maxillary alveolar process and the hard palate."""

    def resorbed(self, jaw: int, sig: np.ndarray) -> np.ndarray:
        """Height (mm) lost by the alveolar crest at arc length ``sig`` (both sides alike)."""
        an = self.an
        lost = ~an.slots("teeth")[jaw] & (an.slots("germs")[jaw] == 0)
        for j, side, i, kind in an.fillings:
            if j == jaw and kind == 3:  # an implant keeps its bone
                lost[side, i] = False
        centres, widths, _ = self.tooth_slots(jaw, 1)
        loss = lost.mean(axis=0).astype(float)
        loss = np.append(loss, loss[-1])
        at = np.append(centres, centres[-1] + widths[-1])
        return an.resorption[jaw] * np.interp(sig, at, loss).astype(np.float32)

    def jaws(self) -> None:
        """Mandible, maxillary alveolar process and hard palate."""
        self.mandible_body()
        self.rami()
        self.upper_alveolus()

    def mandible_body(self) -> None:
        """The horseshoe body from angle to angle: chin, alveolar process, inferior border."""
        an = self.an
        gw, gy = an.gonial_width, an.gonial_y
        zg = CONDYLE[2] - 54.0 * an.ramus
        z_low = self.occlusal_z(1)
        pts, arch_len = self.arch_polyline(1, 3.0, (gw, gy))
        sl = self.box((-gw - 12, -108 - an.chin, zg - 30), (gw + 12, gy + 14, z_low))
        if sl is None:
            return
        X, Y, Z = self.coords(sl)
        total = float(np.sum(np.hypot(*np.diff(pts, axis=0).T)))
        d, s = self.plane_field(lambda u, v: polyline(u, v, pts)[:2], X, Y)
        near = np.abs(d) < 20.0  # the bone lies within 20 mm of the arch: work on those voxels
        d, s, Z = d[near], s[near], Z[near]
        sig = np.abs(s - total / 2.0)
        lean = np.tan(tilt(np.minimum(sig, arch_len)))
        d = d - np.clip(z_low - Z, 0.0, 24.0) * lean
        ramp = np.clip((sig - arch_len) / (total / 2.0 - arch_len), 0.0, 1.0)
        zb = -140.0 + (zg + 3.0 + 140.0) * np.clip(sig / (total / 2.0), 0.0, 1.0) ** 1.3
        zt = z_low - 10.5 - 12.0 * ramp - self.resorbed(1, sig) * (1.0 - ramp)
        zt = np.maximum(zt, zb + 12.0)  # the basal bone stays
        v = np.clip((Z - zb) / np.maximum(zt - zb, 1.0), 0.0, 1.0)
        half_w = (6.8 + 1.5 * np.exp(-((sig / 12.0) ** 2)) - 1.0 * ramp) * (1.0 - 0.28 * v)
        sdf = round_box(d, Z - (zt + zb) / 2.0, half_w, (zt - zb) / 2.0, 3.0)
        self.paint_subset(sl, near, sdf < 0, Tissue.BONE, self.bone_hu(-sdf))
        chin = (0, -88 + an.overjet - 1.0 - an.chin, -131)
        self.solid("e", (chin[0], chin[1] + 3.0, -132), (17, 5, 9))  # mental protuberance
        for sx in (-1, 1):
            self.solid("e", (sx * 9, chin[1] + 3.5, -136), (6, 4, 4))  # mental tubercles

    def rami(self) -> None:
        """Rami (plates), condylar necks and heads, coronoid processes."""
        an = self.an
        cx, cy, cz = CONDYLE
        gw, gy = an.gonial_width, an.gonial_y
        zg = cz - 54.0 * an.ramus
        outline = [
            (gy - 2.0, zg - 4.0),  # angle
            (cy + 2.5, cz - 12.0),  # posterior border
            (cy + 2.0, cz - 3.0),
            (cy - 4.0, cz - 4.0),  # condylar neck, front
            (cy - 10.0, cz - 11.0),
            (cy - 17.0, cz - 13.5),  # sigmoid notch
            (cy - 24.0, cz - 8.0),
            (cy - 29.0, cz + 2.0),  # coronoid tip
            (cy - 32.5, cz - 2.0),
            (cy - 32.0, cz - 20.0),  # anterior border
            (cy - 36.0, cz - 44.0),
            (gy - 28.0, zg + 6.0),
            (gy - 20.0, zg - 4.0),
        ]
        sl = self.box((-cx - 14, cy - 42, zg - 8), (cx + 14, gy + 6, cz + 8))
        if sl is not None:
            X, Y, Z = self.coords(sl)
            (d2,) = self.plane_field(lambda u, v: (polygon(u, v, outline),), Y, Z)
            d2 = d2 + 2.5  # rounded corners
            up = np.clip((Z - zg) / (cz - zg), 0.0, 1.0)
            xc = gw + (cx - gw) * up - 0.22 * np.clip(cy - 6.0 - Y, 0.0, 30.0)
            half = 2.4 + 1.0 * np.exp(-(((Y - cy) / 5.0) ** 2))  # thicker posterior border
            for sx in (-1, 1):
                sdf = extrude(d2, sx * X - xc, half) - 1.2
                self.paint(sl, sdf < 0, Tissue.BONE, self.bone_hu(-sdf, cortex=1.5))
        for sx in (-1, 1):
            self.solid("c", (sx * cx, cy + 0.5, cz - 4), (sx * cx, cy + 1.5, cz - 14), 4.0)
            head = (
                (sx * (cx - 8.5), cy + 2.0, cz),
                (sx * (cx + 7.5), cy - 1.5, cz),
                (4.6, 4.6, 5.0),
            )
            self.solid("c", *head)  # condyle: long axis medial-posterior

    def upper_alveolus(self) -> None:
        """Maxillary alveolar process around the upper roots, tuberosities, hard palate."""
        z_up = self.occlusal_z(0)
        pts, arch_len = self.arch_polyline(0, 7.0)
        sl = self.box((-48, -104, z_up + 3), (48, float(pts[0, 1]) + 12, -66))
        if sl is None:
            return
        X, Y, Z = self.coords(sl)
        total = float(np.sum(np.hypot(*np.diff(pts, axis=0).T)))
        d_all, s = self.plane_field(lambda u, v: polyline(u, v, pts)[:2], X, Y)
        palate = (d_all > 0) & (Y < pts[0, 1] - 3.0) & (Z > -81.5) & (Z < -76.5)
        near = np.abs(d_all) < 20.0
        d, s, Z = d_all[near], s[near], Z[near]
        sig = np.abs(s - total / 2.0)
        d_root = d - np.clip(Z - z_up, 0.0, 24.0) * np.tan(tilt(sig))
        ramp = np.clip((sig - arch_len + 7.0) / 7.0, 0.0, 1.0)
        zb = z_up + 11.0 + 2.0 * ramp + self.resorbed(0, sig)
        zt = np.float32(-67.0)
        v = np.clip((Z - zb) / (zt - zb), 0.0, 1.0)
        half_w = (5.8 + 1.5 * np.clip(sig / 45.0, 0.0, 1.0)) * (0.8 + 0.35 * v)
        sdf = round_box(d_root, Z - (zt + zb) / 2.0, half_w, (zt - zb) / 2.0, 3.0)
        self.paint_subset(sl, near, sdf < 0, Tissue.BONE, self.bone_hu(-sdf))
        self.paint(sl, palate, Tissue.BONE, HU_CORTICAL * self.an.bone_density)
