"""Painting the neck: brainstem and cord, the cervical vertebrae C1-C7, hyoid and airway.

Each vertebra is built the way it is put together: a body (the atlas has none; the axis
carries the dens), pedicles, articular pillars stacked into the articular columns, transverse
processes with their foramina, laminae closing the vertebral arch and a spinous process
(bifid from C2 to C6, long on C7). Discs are the soft-tissue gaps between the bodies; the
column follows the seed's cervical lordosis.
"""

from __future__ import annotations

import itertools

import numpy as np

from tfgym.phantoms.grid import Z_OCCLUSAL, HeadGrid
from tfgym.phantoms.hu import HU_AIR, HU_CSF
from tfgym.volume import Tissue

__all__ = ["VERTEBRAE", "NeckPainter"]

VERTEBRAE = ("C1", "C2", "C3", "C4", "C5", "C6", "C7")
# Height of the centre of each vertebral body (C1: of its lateral masses) in the head frame.
_Z = (-74.0, -101.0, -123.0, -142.0, -161.0, -180.0, -199.0)


class NeckPainter(HeadGrid):
    """Paints the spinal canal and cord, the vertebrae C1-C7, the hyoid and the pharynx."""

    def vertebra_y(self, k: int) -> float:
        """Canonical y of the front of the canal (back of the body) of vertebra ``k`` (0: C1)."""
        return 6.0 - self.an.lordosis * np.sin(np.pi * k / 6.0)

    def spine(self) -> None:
        """Brainstem and cord in the spinal canal, then C1, C2 and C3-C7 (as far as the FOV)."""
        soft = Tissue.SOFT_TISSUE
        self.solid("c", (0, 22, -50), (0, 26, -240), 8, tissue=soft, hu=HU_CSF)
        self.solid("c", (0, 10, -20), (0, 22, -62), 10, tissue=soft, hu=33.0)
        self.solid("c", (0, 22, -62), (0, 26, -240), 5, tissue=soft, hu=33.0)
        self.atlas()
        self.axis()
        for k in range(2, 7):
            self.vertebra(k)
        self.solid("c", (-10, -36, -140), (10, -36, -140), (3, 3, 4))  # hyoid body
        for sx in (-1, 1):
            self.solid("c", (sx * 10, -36, -140), (sx * 19, -18, -136), 2.2)  # greater horns

    def neural_arch(self, k: int, z: float, y: float, *, width: float = 1.0) -> None:
        """Pedicles, articular pillars, transverse processes with foramina, laminae."""
        for sx in (-1, 1):
            self.solid("c", (sx * 7, y + 1, z), (sx * 12, y + 8, z), 3.0)  # pedicle
            top, bottom = (sx * 14 * width, y + 10, z + 6.5), (sx * 14 * width, y + 13, z - 6.5)
            self.solid("c", top, bottom, (5.0, 5.5, 3.5))  # articular pillar
            a, b = (sx * 9, y - 1, z + 1), (sx * 24 * width, y + 1, z + 1)
            self.solid("c", a, b, (3.0, 3.5, 3.0))  # transverse process
            hole = ((sx * 15 * width, y + 0.5, z + 4), (sx * 15 * width, y + 0.5, z - 2), 2.2)
            self.solid("c", *hole, tissue=Tissue.SOFT_TISSUE, hu=40.0)  # foramen transversarium
            self.solid("c", (sx * 13, y + 17, z - 1), (sx * 2, y + 25, z - 3), (2.5, 2.5, 4.5))
        tip = 45.0 if k == 6 else 38.0
        self.solid("c", (0, y + 24, z - 3), (0, y + tip, z - 10), (2.5, 2.5, 3.5))  # spinous
        if 0 < k < 6:  # bifid tip
            for sx in (-1, 1):
                self.solid("e", (sx * 3.0, y + tip, z - 10), (3.0, 3.0, 3.5))
        else:
            self.solid("e", (0, y + tip, z - 10), (4.0, 4.0, 4.0))

    def body(self, z: float, y: float, half_x: float, half_z: float = 6.5) -> None:
        """A vertebral body: a rounded, slightly concave-sided cylinder in front of the canal."""
        sl = self.box((-half_x - 1, y - 19, z - half_z - 1), (half_x + 1, y + 1, z + half_z + 1))
        if sl is None:
            return
        X, Y, Z = self.coords(sl)
        waist = 1.0 - 0.08 * np.clip(1.0 - ((Z - z) / half_z) ** 2, 0.0, 1.0)
        ry = 8.0
        qr = (np.sqrt((X / (half_x * waist)) ** 2 + ((Y - (y - ry)) / ry) ** 2) - 1.0) * ry
        qz = np.abs(Z - z) - half_z
        d = np.sqrt(np.maximum(qr, 0) ** 2 + np.maximum(qz, 0) ** 2)
        d = d + np.minimum(np.maximum(qr, qz), 0.0) - 0.0
        self.paint(sl, d < 0, Tissue.BONE, self.bone_hu(-d, cortex=1.2))

    def atlas(self) -> None:
        """C1: anterior and posterior arches, lateral masses, wide transverse processes."""
        z, y = _Z[0], self.vertebra_y(0)
        sl = self.box((-30, y - 14, z - 12), (30, y + 44, z + 10))
        if sl is not None:  # the ring: anterior arch, posterior arch, tubercles
            X, Y, Z = self.coords(sl)
            ring = (np.sqrt((X / 21.0) ** 2 + ((Y - y - 14.0) / 22.0) ** 2) - 1.0) * 21.5
            d = np.sqrt(ring**2 + ((Z - z + 2.0) / 1.2) ** 2) - 3.8
            self.paint(sl, d < 0, Tissue.BONE, self.bone_hu(-d, cortex=1.2))
        for sx in (-1, 1):
            self.solid("e", (sx * 17, y + 5, z), (7.5, 10, 7))  # lateral mass
            self.solid("c", (sx * 20, y + 5, z), (sx * 36, y + 7, z - 1), (4, 4.5, 3.5))
            hole = ((sx * 27, y + 6, z + 5), (sx * 27, y + 6, z - 5), 2.4)
            self.solid("c", *hole, tissue=Tissue.SOFT_TISSUE, hu=40.0)
        self.solid("e", (0, y - 8, z - 2), (5, 3.5, 6))  # anterior tubercle
        self.solid("e", (0, y + 36, z - 2), (5, 4, 5))  # posterior tubercle

    def axis(self) -> None:
        """C2: tall body with the dens rising into the atlas, strong bifid spinous process."""
        z, y = _Z[1], self.vertebra_y(1)
        self.body(z, y, 8.5, 8.0)
        self.solid("c", (0, y - 6, z + 6), (0, y - 5.5, z + 30), 5.2)  # dens
        for sx in (-1, 1):
            self.solid("e", (sx * 15, y - 2, z + 11), (7, 8, 5))  # superior articular facets
        self.neural_arch(1, z - 2, y)

    def vertebra(self, k: int) -> None:
        """C3-C7: body, arch and spinous process, wider further down."""
        z, y = _Z[k], self.vertebra_y(k)
        self.body(z, y, 8.5 + 0.6 * k)
        self.neural_arch(k, z, y, width=1.0 + 0.04 * k)

    def airway(self) -> None:
        """Naso-, oro- and hypopharynx; air over the tongue and in an open mouth."""
        an, air = self.an, Tissue.AIR
        self.solid("e", (0, -19, -62), (13, 9, 10), tissue=air, hu=HU_AIR)
        r = (13.0 * an.airway, 6.5 * an.airway, 6.5 * an.airway)
        pts = ((0, -20, -62), (0, -15, -82), (0, -15, -118), (0, -26, -240))
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
