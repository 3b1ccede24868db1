"""Painting positioning aids: headrest, chin rest and bite block.

CBCT units hold the head still with a padded headrest behind the occiput, often a chin rest,
and for dental scans a bite block between the incisors that keeps the mouth slightly open.
They are in the field of view and in the histogram (foam about -700 HU, plastics 100-300 HU),
but they are not the patient: they are labelled :attr:`tfgym.volume.Tissue.AIR`
(non-anatomy), so that the oracle counts a transfer function that shows them as clutter. They
are painted last, around the patient: a pad never overwrites the head, and the bite block
displaces only the lips and the air of the mouth, never teeth, bone or metal.
"""

from __future__ import annotations

import numpy as np

from tfgym.phantoms.grid import Z_OCCLUSAL, HeadGrid
from tfgym.phantoms.sdf import ellipsoid, round_box
from tfgym.volume import Tissue

__all__ = ["HU_PLASTIC", "AidsPainter"]

HU_PLASTIC = 200.0
"""HU of the hard plastic of a chin rest, bite block or headrest backing."""


class AidsPainter(HeadGrid):
    """Paints the anatomy's positioning aids, labelled AIR (not patient)."""

    def aids(self) -> None:
        """Headrest, chin rest and bite block, those the anatomy has."""
        if self.an.headrest_hu is not None:
            self.headrest(self.an.headrest_hu)
        if self.an.chin_rest:
            self.chin_rest()
        if self.an.bite_block > 0:
            self.bite_block(self.an.bite_block)

    def _paint_outside(self, sl, mask: np.ndarray, hu: float, *, displace=()) -> None:
        """Paint an aid where there is air (or a tissue it may displace), labelled AIR."""
        lab = self.lab[sl]
        free = lab == Tissue.AIR
        for tissue in displace:
            free |= lab == tissue
        self.paint(sl, mask & free, Tissue.AIR, hu)

    def headrest(self, hu: float) -> None:
        """A curved pad behind the occiput (foam or plastic), foam on a plastic backing."""
        an = self.an
        r0 = an.vault[1] * 1.03 + an.scalp + 1.0
        sl = self.box((-70, r0 * 0.55, -60), (70, r0 + 22, 25))
        if sl is None:
            return
        X, Y, Z = self.coords(sl)
        rho = np.sqrt(X * X + Y * Y)
        ang = np.arctan2(X, np.maximum(Y, 1e-3))
        extent = (np.abs(ang) < 0.75) & (Y > 0) & (Z > -55.0) & (Z < 20.0)
        pad = extent & (rho > r0 - 6.0) & (rho < r0 + 14.0)
        self._paint_outside(sl, pad, hu)
        if hu < 0:  # a foam cushion sits on a rigid plastic shell
            self._paint_outside(sl, extent & (rho >= r0 + 14.0) & (rho < r0 + 18.0), HU_PLASTIC)

    def chin_rest(self) -> None:
        """A plastic cup under the chin."""
        c = (0.0, -80.0 - self.an.chin, -128.0)
        sl = self.box((-40, c[1] - 36, -170), (40, c[1] + 36, -132))
        if sl is None:
            return
        X, Y, Z = self.coords(sl)
        d = ellipsoid(X, Y, Z, c, (36.0, 32.0, 30.0))
        self._paint_outside(sl, (d > 0.0) & (d < 4.0) & (Z < -143.0), HU_PLASTIC)

    def bite_block(self, thickness: float) -> None:
        """A plastic block between the incisors, with its handle out of the mouth."""
        sl = self.box((-12, -135, Z_OCCLUSAL - 6), (12, -66, Z_OCCLUSAL + 6))
        if sl is None:
            return
        X, Y, Z = self.coords(sl)
        half = thickness / 2.0
        block = (round_box(X, Z - Z_OCCLUSAL, 9.0, half, 1.0) < 0) & (Y > -100.0) & (Y < -70.0)
        handle = (round_box(X, Z - Z_OCCLUSAL, 6.0, min(half, 2.0), 1.0) < 0) & (Y <= -100.0)
        handle &= Y > -132.0
        self._paint_outside(sl, block | handle, HU_PLASTIC, displace=(Tissue.SOFT_TISSUE,))
