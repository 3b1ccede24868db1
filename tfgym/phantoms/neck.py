"""Painting the neck: brainstem and spinal cord, cervical vertebrae, hyoid and airway."""

from __future__ import annotations

import itertools

import numpy as np

from tfgym.phantoms.grid import Z_OCCLUSAL, HeadGrid
from tfgym.phantoms.hu import HU_AIR, HU_CSF
from tfgym.volume import Tissue

__all__ = ["NeckPainter"]


class NeckPainter(HeadGrid):
    """Paints the spinal canal and cord, the vertebrae C1-C7, the hyoid and the pharynx."""

    # -- spine, airway ---------------------------------------------------------------------
    def spine(self) -> None:
        """Brainstem and cord in the spinal canal, vertebrae C1-C7 (as far as the FOV reaches)."""
        soft = Tissue.SOFT_TISSUE
        self.solid("c", (0, 22, -50), (0, 28, -240), 8, tissue=soft, hu=HU_CSF)
        self.solid("c", (0, 10, -20), (0, 22, -62), 10, tissue=soft, hu=33.0)
        self.solid("c", (0, 22, -62), (0, 28, -240), 5, tissue=soft, hu=33.0)
        sl = self.box((-42, -8, -88), (42, 48, -64))
        if sl is not None:  # atlas: a ring with lateral masses
            X, Y, Z = self.coords(sl)
            q = (np.sqrt((X / 23.0) ** 2 + ((Y - 21.0) / 20.0) ** 2) - 1.0) * 21.5
            ring = np.sqrt(q**2 + (Z + 76.0) ** 2) - 4.5
            self.paint(sl, ring < 0, Tissue.BONE, self.bone_hu(-ring))
        for sx in (-1, 1):
            self.solid("e", (sx * 19, 14, -76), (8, 9, 8))
            self.solid("c", (sx * 20, 14, -76), (sx * 36, 16, -76), 4)
            self.solid("e", (sx * 16, 12, -90), (7, 8, 6))  # axis lateral masses
        self.solid("e", (0, 6, -102), (9.5, 8.5, 12))  # axis body
        self.solid("c", (0, 5, -96), (0, 4, -72), 5)  # dens
        self.solid("c", (0, 34, -106), (0, 50, -114), (4, 4, 5))  # axis spinous process
        for zc in (-104.0, -124.0, -143.0, -162.0, -181.0, -200.0, -219.0):  # C2 arch .. C7
            sl = self.box((-30, -6, zc - 20), (30, 48, zc + 10))
            if sl is None:
                continue
            X, Y, Z = self.coords(sl)
            arch = (
                np.sqrt(
                    ((np.sqrt((X / 11.5) ** 2 + ((Y - 24.0) / 10.5) ** 2) - 1.0) * 11) ** 2
                    + (Z - zc + 1.0) ** 2
                )
                - 3.0
            )
            self.paint(sl, (arch < 0) & (Y > 14), Tissue.BONE, self.bone_hu(-arch))
            if zc > -110:
                continue
            qr = (np.sqrt((X / 9.5) ** 2 + ((Y - 6.0) / 8.0) ** 2) - 1.0) * 8.0
            qz = np.abs(Z - zc) - 6.5
            body = np.sqrt(np.maximum(qr, 0) ** 2 + np.maximum(qz, 0) ** 2)
            body = body + np.minimum(np.maximum(qr, qz), 0.0)
            self.paint(sl, body < 0, Tissue.BONE, self.bone_hu(-body))
            self.solid("c", (0, 33, zc - 2), (0, 46, zc - 10), 3.5)  # spinous process
            for sx in (-1, 1):
                self.solid("c", (sx * 8, 10, zc), (sx * 10, 17, zc - 1), 3)  # pedicle
                self.solid("c", (sx * 9, 9, zc), (sx * 24, 11, zc), 3)  # transverse process
        self.solid("c", (-10, -36, -140), (10, -36, -140), (3, 3, 4))  # hyoid body
        for sx in (-1, 1):
            self.solid("c", (sx * 10, -36, -140), (sx * 19, -18, -136), 2.2)

    def airway(self) -> None:
        """Naso-, oro- and hypopharynx; air over the tongue and in an open mouth."""
        an, air = self.an, Tissue.AIR
        self.solid("e", (0, -19, -62), (13, 9, 10), tissue=air, hu=HU_AIR)
        r = (13.0 * an.airway, 6.5 * an.airway, 6.5 * an.airway)
        pts = ((0, -20, -62), (0, -13, -82), (0, -13, -118), (0, -24, -240))
        for a, b in itertools.pairwise(pts):
            self.solid("c", a, b, r, tissue=air, hu=HU_AIR)
        self.solid("e", (0, -60, -84.5), (16, 22, 2.0), tissue=air, hu=HU_AIR)
        gap = an.mouth_gap
        if gap > 0:
            self.solid("e", (0, -62, Z_OCCLUSAL), (30, 32, gap / 2.0), tissue=air, hu=HU_AIR)
            sl = self.box((-22, -125, Z_OCCLUSAL - gap), (22, -70, Z_OCCLUSAL + gap))
            if sl is not None:
                X, Y, Z = self.coords(sl)
                lips = (np.abs(X) < 22) & (Y < -70) & (np.abs(Z - Z_OCCLUSAL) < 0.4 * gap)
                self.paint(sl, lips, air, HU_AIR)
