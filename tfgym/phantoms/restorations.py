"""Painting metal restorations: amalgam fillings, metal crowns, bridges and titanium implants.

Each restoration of :attr:`tfgym.phantoms.anatomy.Anatomy.fillings` is painted as METAL in
its tooth's frame and registered in ``HeadGrid.metal`` (world centre, half height) for the
scanner's streaks. An implant is a threaded titanium screw in the jaw bone where the tooth is
missing, with an abutment and a metal-ceramic crown; a bridge pontic is a metal crown without
root between two crowned neighbours.
"""

from __future__ import annotations

import numpy as np

from tfgym.phantoms.hu import HU_METAL, HU_TITANIUM
from tfgym.phantoms.jaws import JawPainter
from tfgym.phantoms.teeth import ToothFrame, ToothShape
from tfgym.volume import Tissue

__all__ = ["RestorationPainter"]


class RestorationPainter(JawPainter):
    """Paints the metal restorations of the anatomy (when the spec has metal)."""

    def restorations(self) -> None:
        """Every filling, crown, pontic and implant of ``anatomy.fillings``."""
        if not getattr(self.spec, "has_metal", True):
            return
        for jaw, side, i, kind in self.an.fillings:
            milk = bool(self.an.slots("deciduous")[jaw, side, i]) and kind < 3
            s = self.tooth_shape(jaw, side, i, milk=milk)
            f = self.frame(jaw, side, i)
            if kind == 3:
                self.implant(jaw, side, i, f, s)
                continue
            sl, uvw = self.tooth_local(f, s)
            if sl is None or uvw is None:
                continue
            u, v, w = uvw
            crown = self.crown(s, u, v, w)
            if kind >= 2:  # full metal crown or pontic
                mask, centre, half = self.crown(s, u, v, w, 0.3), f.p0 + f.r * s.ch / 2, s.ch / 2
            else:
                a = (0.27 if kind == 0 else 0.62) * s.md
                wc = 1.6
                mask = (u / a) ** 2 + (v / (0.22 * s.bl)) ** 2 + ((w - wc) / 2.4) ** 2 <= 1.0
                mask &= crown
                centre, half = f.p0 + f.r * wc, 2.4
            self.paint(sl, mask, Tissue.METAL, HU_METAL)
            self.register_metal(centre, half)

    def register_metal(self, centre: np.ndarray, half: float, hu: float = HU_METAL) -> None:
        """Record a metal object for the scanner and keep its nearest voxel metal."""
        cw = self.world(centre)
        self.metal.append(((float(cw[0]), float(cw[1]), float(cw[2])), float(half)))
        self.paint_box_nearest(centre, Tissue.METAL, hu)

    def implant(self, jaw: int, side: int, i: int, f: ToothFrame, s: ToothShape) -> None:
        """Titanium screw in the bone of a missing tooth, abutment and metal-ceramic crown."""
        sig = np.array([self.tooth_slots(jaw, side)[0][i]], np.float32)
        crest = s.ch + 1.5 + float(self.resorbed(jaw, sig)[0])
        length = 10.0 if jaw == 0 else 11.5
        radius = 2.0 if i < 3 else 2.3
        end = f.p0 + f.r * (crest + length)
        m = max(s.md, s.bl) / 2.0 + 1.5
        sl = self.box(tuple(np.minimum(f.p0, end) - m), tuple(np.maximum(f.p0, end) + m))
        if sl is None:
            return
        X, Y, Z = self.coords(sl)
        px, py, pz = X - f.p0[0], Y - f.p0[1], Z - f.p0[2]
        u, v, w = (px * float(e[0]) + py * float(e[1]) + pz * float(e[2]) for e in (f.t, f.n, f.r))
        rho = np.sqrt(u * u + v * v)
        threads = radius - 0.35 * (1.0 + np.sin(2.0 * np.pi * w / 0.9)) / 2.0
        taper = np.clip((crest + length - w) / 1.5, 0.3, 1.0)  # rounded apex
        screw = (w >= crest) & (w <= crest + length) & (rho <= threads * taper)
        abutment = (w > 0.5 * s.ch) & (w < crest + 0.2) & (rho <= 1.8)
        self.paint(sl, screw | abutment, Tissue.METAL, HU_TITANIUM)
        self.paint(sl, self.crown(s, u, v, w, 0.2), Tissue.METAL, HU_METAL)
        self.register_metal(f.p0 + f.r * (crest + length / 2.0), length / 2.0, HU_TITANIUM)
        self.register_metal(f.p0 + f.r * s.ch / 2.0, s.ch / 2.0)
