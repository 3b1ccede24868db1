"""Painting the soft-tissue envelope: scalp over the vault, face, nose, lips, ears and neck.

The scalp follows the vault at the seed's scalp thickness; the face and neck are smooth
unions of ellipsoids grown by the patient's subcutaneous fat. Skin, fat and muscle get their
own HU by depth below the surface.
"""

from __future__ import annotations

import numpy as np

from tfgym.phantoms.cranium import CraniumPainter
from tfgym.phantoms.grid import within
from tfgym.phantoms.hu import HU_AIR, HU_FAT, HU_SKIN, HU_SOFT
from tfgym.phantoms.sdf import ellipsoid, logistic, smooth_min
from tfgym.volume import Tissue

__all__ = ["SoftTissuePainter"]

# Face and neck: (centre, radii) of ellipsoids in the head frame, grown by the fat thickness.
_FACE = (
    ((0, -42, -22), (64, 56, 30)),  # brows, temples, eyes
    ((0, -38, -55), (64, 62, 36)),  # cheeks
    ((0, -32, -100), (56, 66, 38)),  # jaw
)
_NOSE: tuple[tuple, ...] = (
    ("e", (0, -100, -50), (12, 11, 20)),  # body
    ("c", (0, -98, -28), (0, -115, -61), 6),  # dorsum and tip
    ("e", (0, -104, -64), (16, 9, 8)),  # alae
)


class SoftTissuePainter(CraniumPainter):
    """Paints skin, subcutaneous fat and muscle of head, face and neck; nose, lips, ears."""

    def envelope(self) -> None:
        """The soft-tissue envelope of the whole head and neck, then nose, lips and ears."""
        an = self.an
        grow = 0.55 * (an.fat - 5.5)  # fatter faces and necks are fuller
        a = max(an.vault[0], 70.0) + an.scalp + 8.0
        sl = self.box((-a - 4, -130, -260), (a + 4, an.vault[1] + 20, an.vault[2] + 20))
        if sl is None:
            return
        d = np.full(tuple(s.stop - s.start for s in sl), 1e4, np.float32)

        def union(sub, fn, k: float = 0.0) -> None:
            rel = None if sub is None else within(sl, sub)
            if rel is None or sub is None:
                return
            part = fn(*self.coords(sub))
            d[rel] = np.minimum(d[rel], part) if k == 0 else smooth_min(d[rel], part, k)

        for cen, rad in _FACE:
            lo = tuple(c - r - grow for c, r in zip(cen, rad, strict=True))
            hi = tuple(c + r + grow for c, r in zip(cen, rad, strict=True))
            union(self.box(lo, hi), lambda X, Y, Z, c=cen, r=rad: ellipsoid(X, Y, Z, c, r) - grow)
        r_neck = 58.0 + grow

        def neck(X, Y, Z):
            cyl = (np.sqrt((X / r_neck) ** 2 + ((Y - 12.0) / (r_neck + 2.0)) ** 2) - 1.0) * r_neck
            return np.maximum(cyl, Z + 60.0)

        union(self.box((-r_neck - 14, -50 - grow, -260), (r_neck + 14, 84 + grow, -40)), neck, 12.0)
        field_ = self.vault_field()
        if field_ is not None:  # the scalp follows the vault
            vs, r, outer, *_ = field_
            rel = within(sl, vs)
            if rel is not None:
                d[rel] = smooth_min(d[rel], r - outer - an.scalp, 6.0)
        for centre, radii in (
            ((0, -84 - an.chin, -126), (22, 15, 16)),
            ((0, -93, -92), (27, 12, 15)),
        ):
            lo = tuple(c - r - 1 for c, r in zip(centre, radii, strict=True))
            hi = tuple(c + r + 1 for c, r in zip(centre, radii, strict=True))
            union(
                self.box(lo, hi),
                lambda X, Y, Z, c=centre, r=radii: ellipsoid(X, Y, Z, c, r) - 0.4 * grow,
            )
        inside = d < 0
        depth, Z = -d[inside], self.Z[sl][inside]
        fat = 1.5 + (an.fat - 1.5) * logistic((-15.0 - Z) / 5.0)
        hu = np.where(depth < 1.5, HU_SKIN, np.where(depth < 1.5 + fat, HU_FAT, HU_SOFT))
        self.lab[sl][inside] = Tissue.SOFT_TISSUE
        self.hu[sl][inside] = hu
        for sx in (-1, 1):  # ears
            ear = ((sx * (an.vault[0] + an.scalp + 2.0), 8, -38), (5, 14, 28))
            self.solid("e", *ear, tissue=Tissue.SOFT_TISSUE, hu=HU_SOFT)
        for kind, *args in _NOSE:
            self.solid(kind, *args, tissue=Tissue.SOFT_TISSUE, hu=HU_SOFT)
        for sx in (-1, 1):
            nostril = ((sx * 7, -116, -68), (sx * 8, -99, -60), 3.2)
            self.solid("c", *nostril, tissue=Tissue.AIR, hu=HU_AIR)
