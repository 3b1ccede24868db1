"""Painting the teeth: dental arches, crowns with cusps, enamel, dentine, pulp, roots, germs.

Every tooth is painted in its own frame (mesiodistal, buccolingual, along its axis) at its
slot of the dental arch: a crown whose occlusal surface depends on the type (incisal edge,
canine cusp, two premolar cusps, four molar cusps), narrower at the neck than at the contact
points (so neighbours read as separate teeth), an enamel cap brighter than the dentine, a
pulp chamber and one to three tapering roots. Children have milk teeth and permanent tooth
germs (crowns without roots in a soft-tissue follicle) inside the jaw bone. Metal
restorations are painted by :mod:`tfgym.phantoms.restorations`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfgym.phantoms.grid import Z_OCCLUSAL, HeadGrid
from tfgym.phantoms.hu import HU_DENTIN, HU_ENAMEL
from tfgym.volume import Tissue

__all__ = ["DentitionPainter", "ToothFrame", "ToothShape"]


@dataclass(frozen=True)
class ToothShape:
    """Dimensions (mm) and type of a tooth.

    Attributes:
        md: mesiodistal crown width.
        bl: buccolingual crown width.
        ch: crown height.
        rl: root length.
        roots: root pattern: ``"1"`` single, ``"bl"`` buccal and lingual, ``"md"`` mesial and
            distal, ``"3"`` two buccal and one palatal.
        kind: ``"i"`` incisor, ``"c"`` canine, ``"p"`` premolar, ``"m"`` molar.
    """

    md: float
    bl: float
    ch: float
    rl: float
    roots: str
    kind: str


_S = ToothShape
UPPER = (
    _S(8.5, 7.0, 10.5, 13.0, "1", "i"),
    _S(6.5, 6.0, 9.0, 13.0, "1", "i"),
    _S(7.5, 8.0, 10.0, 17.0, "1", "c"),
    _S(7.0, 9.0, 8.5, 14.0, "bl", "p"),
    _S(6.5, 9.0, 8.0, 14.0, "1", "p"),
    _S(10.0, 11.0, 7.5, 12.5, "3", "m"),
    _S(9.0, 11.0, 7.0, 12.0, "3", "m"),
    _S(8.5, 10.0, 6.5, 11.0, "3", "m"),
)
LOWER = (
    _S(5.0, 6.0, 9.0, 12.5, "1", "i"),
    _S(5.5, 6.0, 9.5, 14.0, "1", "i"),
    _S(7.0, 7.5, 11.0, 16.0, "1", "c"),
    _S(7.0, 7.5, 8.5, 14.0, "1", "p"),
    _S(7.0, 8.0, 8.0, 14.5, "1", "p"),
    _S(11.0, 10.5, 7.5, 14.0, "md", "m"),
    _S(10.5, 10.0, 7.0, 13.0, "md", "m"),
    _S(10.0, 9.5, 7.0, 11.0, "md", "m"),
)
# Milk teeth that a child of 8-12 still has in slots 2-4: canine, first and second molar.
UPPER_MILK = {
    2: _S(7.0, 7.0, 6.5, 13.0, "1", "c"),
    3: _S(7.3, 8.5, 5.0, 10.0, "3", "m"),
    4: _S(8.2, 10.0, 5.5, 11.0, "3", "m"),
}
LOWER_MILK = {
    2: _S(5.0, 5.5, 6.5, 11.5, "1", "c"),
    3: _S(7.7, 7.0, 6.0, 9.0, "md", "m"),
    4: _S(9.9, 8.7, 5.5, 10.0, "md", "m"),
}


def tilt(sigma: np.ndarray | float) -> np.ndarray | float:
    """Labial inclination (radians) of the teeth at arc length ``sigma`` from the midline."""
    return np.radians(3.0 + 17.0 * np.exp(-((np.asarray(sigma) / 14.0) ** 2)))


@dataclass(frozen=True)
class ToothFrame:
    """Where a tooth sits: occlusal centre, distal, buccal and apical unit vectors (mm)."""

    p0: np.ndarray
    t: np.ndarray
    n: np.ndarray
    r: np.ndarray


class DentitionPainter(HeadGrid):
    """The dental arches and the painting of teeth and tooth germs."""

    # -- arches ------------------------------------------------------------------------------
    def arch(self, jaw: int):
        """Dense samples ``(x, y, arc length)`` of one side of a dental arch (x >= 0)."""
        an = self.an
        w = an.arch_width - 1.5 * jaw
        x = np.linspace(0.0, 1.7 * w, 400)
        u = x / w
        y = (
            -88.0
            + an.overjet * jaw
            + an.arch_depth * (an.arch_alpha * u**2 + (1.0 - an.arch_alpha) * u**4)
        )
        return x, y, np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])

    def tooth_shape(self, jaw: int, side: int, i: int, *, milk: bool | None = None) -> ToothShape:
        """The shape of the tooth in a slot (a milk tooth where the child has one), jittered."""
        if milk is None:
            milk = bool(self.an.slots("deciduous")[jaw, side, i])
        s = (
            (UPPER_MILK if jaw == 0 else LOWER_MILK)[i]
            if milk
            else (UPPER if jaw == 0 else LOWER)[i]
        )
        k = 1.0 + np.array(self.an.tooth_jitter).reshape(2, 2, 8, 4)[jaw, side, i, 3]
        return ToothShape(s.md * k, s.bl * k, s.ch * k, s.rl * k, s.roots, s.kind)

    def tooth_slots(self, jaw: int, side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Arc length of each tooth centre, mesiodistal widths and jitter rows of one side."""
        jit = np.array(self.an.tooth_jitter).reshape(2, 2, 8, 4)[jaw, side]
        widths = np.array([self.tooth_shape(jaw, side, i).md for i in range(8)])
        return np.cumsum(widths) - widths / 2.0, widths, jit

    def occlusal_z(self, jaw: int) -> float:
        """Height of the occlusal surfaces of the upper (0) or lower (1) teeth."""
        return Z_OCCLUSAL + (0.5 if jaw == 0 else -0.5) * self.an.mouth_gap

    def arch_polyline(self, jaw: int, extra: float, end: tuple | None = None):
        """Symmetric polyline along a dental arch to ``extra`` mm behind the second molars."""
        x, y, arc = self.arch(jaw)
        centres, widths, _ = self.tooth_slots(jaw, 1)
        ls = np.linspace(0.0, centres[6] + widths[6] / 2.0 + extra, 11)
        half = np.stack([np.interp(ls, arc, x), np.interp(ls, arc, y)], 1)
        if end is not None:
            half = np.vstack([half, end])
        arch_len = float(np.sum(np.hypot(*np.diff(half[:11], axis=0).T)))
        return np.vstack([half[::-1] * (-1.0, 1.0), half[1:]]), arch_len

    def frame(self, jaw: int, side: int, i: int) -> ToothFrame:
        """Frame of the tooth in a slot: arch position, labial tilt, jitter."""
        x, y, arc = self.arch(jaw)
        centres, _, jit = self.tooth_slots(jaw, side)
        sx, at, j = (1.0 if side else -1.0), centres[i], jit[i]
        dx, dy = np.interp(at, arc, np.gradient(x, arc)), np.interp(at, arc, np.gradient(y, arc))
        p0 = np.array([sx * np.interp(at, arc, x), np.interp(at, arc, y), 0.0])
        t = np.array([sx * dx, dy, 0.0]) / np.hypot(dx, dy)
        n = sx * np.array([t[1], -t[0], 0.0])  # buccal
        p0 += j[0] * t + j[1] * n
        p0[2] = self.occlusal_z(jaw)
        up = np.array([0.0, 0.0, 1.0 if jaw == 0 else -1.0])
        a = float(tilt(at))
        r = np.cos(a) * up - np.sin(a) * n  # towards the apex: crowns lean labially
        n = np.cos(a) * n + np.sin(a) * up
        g = np.radians(j[2])
        t, n = np.cos(g) * t + np.sin(g) * n, -np.sin(g) * t + np.cos(g) * n
        return ToothFrame(p0, t, n, r)

    # -- teeth ---------------------------------------------------------------------------------
    def teeth(self) -> None:
        """Erupted teeth of both arches and the tooth germs of children."""
        present, germs = self.an.slots("teeth"), self.an.slots("germs")
        for (jaw, side, i), depth in np.ndenumerate(germs):
            if depth > 0:
                shape = self.tooth_shape(jaw, side, i, milk=False)
                f = self.frame(jaw, side, i)
                f = ToothFrame(f.p0 + f.r * depth, f.t, f.n, f.r)
                self.tooth(f, shape, root=0.15 if i < 7 else 0.0, follicle=True)
        milk = self.an.slots("deciduous")
        for jaw, side, i in zip(*np.nonzero(present), strict=True):
            root = 0.55 if milk[jaw, side, i] else 1.0  # milk roots resorb over the germ
            self.tooth(self.frame(jaw, side, i), self.tooth_shape(jaw, side, i), root=root)

    def tooth_local(self, f: ToothFrame, s: ToothShape, margin: float = 1.5):
        """Box of a tooth and the tooth-frame coordinates ``(u, v, w)`` of its voxels."""
        apex = f.p0 + f.r * (s.ch + s.rl)
        m = max(s.md, s.bl) / 2.0 + margin
        sl = self.box(tuple(np.minimum(f.p0, apex) - m), tuple(np.maximum(f.p0, apex) + m))
        if sl is None:
            return None, None
        X, Y, Z = self.coords(sl)
        px, py, pz = X - f.p0[0], Y - f.p0[1], Z - f.p0[2]
        u, v, w = (px * float(e[0]) + py * float(e[1]) + pz * float(e[2]) for e in (f.t, f.n, f.r))
        return sl, (u, v, w)

    @staticmethod
    def crown(s: ToothShape, u, v, w, grow: float = 0.0) -> np.ndarray:
        """Crown mask (grown by ``grow`` mm; negative shrinks) in tooth coordinates."""
        wc = 0.3 * s.ch
        neck = np.clip((w - wc) / (s.ch - wc), 0.0, 1.0) ** 1.2
        na, nb = (0.7, 0.88) if s.kind in "pm" else (0.66, 0.8)
        a = 0.48 * s.md * (1.0 - (1.0 - na) * neck) + grow  # contacts just short of touching
        b = s.bl / 2.0 * (1.0 - (1.0 - nb) * neck)
        if s.kind in "ic":  # thin incisal edge, thicker at the cingulum
            b = b * (0.4 + 0.6 * np.clip(w / (0.75 * s.ch), 0.0, 1.0) ** 0.7)
        b = b + grow
        top = np.clip((wc - w) / (wc + 1.0), 0.0, 1.0)  # round the occlusal corners
        a, b = a * (1.0 - 0.12 * top**2), b * (1.0 - 0.18 * top**2)
        ru, rv = np.abs(u) / np.maximum(a, 0.3), np.abs(v) / np.maximum(b, 0.3)
        if s.kind == "i":
            occ = 0.5 * ru**2
        elif s.kind == "c":
            occ = 2.8 * ru**1.3
        elif s.kind == "p":
            occ = 1.8 * np.exp(-((v / (0.22 * s.bl)) ** 2)) + 0.8 * ru**2
        else:
            groove = np.maximum(
                np.exp(-((v / (0.15 * s.bl)) ** 2)), np.exp(-((u / (0.13 * s.md)) ** 2))
            )
            occ = 1.5 * groove + 0.7 * np.maximum(ru, rv) ** 2
        return (ru**2.4 + rv**2.4 <= 1.0) & (w >= occ - grow) & (w <= s.ch + grow)

    def roots(self, s: ToothShape, u, v, w, frac: float, grow: float = 0.0) -> np.ndarray:
        """Root mask: ``frac`` of the full root length formed, tapering to the apex."""
        tau = (w - (s.ch - 1.0)) / s.rl
        taper = np.clip(1.0 - 0.8 * np.clip(tau, 0.0, 1.0) ** 1.3, 0.0, 1.0)
        layout = {
            "1": ((0.0, 0.0, 1.0),),
            "bl": ((0.0, 0.22, 0.6), (0.0, -0.22, 0.6)),
            "md": ((0.24, 0.0, 0.6), (-0.24, 0.0, 0.6)),
            "3": ((0.22, 0.2, 0.5), (-0.22, 0.2, 0.5), (0.0, -0.25, 0.55)),
        }[s.roots]
        out = np.zeros(u.shape, bool)
        spread = 1.0 + 0.6 * np.clip(tau, 0.0, 1.0)
        for du, dv, k in layout:
            ru = k * 0.38 * s.md * taper + 0.4 + grow
            rv = k * 0.42 * s.bl * taper + 0.4 + grow
            inside = ((u - du * s.md * spread) / ru) ** 2 + ((v - dv * s.bl * spread) / rv) ** 2
            out |= inside <= 1.0
        return out & (tau >= 0.0) & (tau <= frac)

    def tooth(self, f: ToothFrame, s: ToothShape, *, root: float = 1.0, follicle=False) -> None:
        """Paint one tooth (enamel, dentine, pulp, roots); a germ sits in a follicle."""
        sl, uvw = self.tooth_local(f, s)
        if sl is None or uvw is None:
            return
        u, v, w = uvw
        crown = self.crown(s, u, v, w)
        if follicle:  # the dental sac: a soft-tissue crypt around the developing crown
            self.paint(sl, self.crown(s, u, v, w, 1.3) & ~crown, Tissue.SOFT_TISSUE, 30.0)
        tooth = crown | self.roots(s, u, v, w, root)
        enamel = crown & ~self.crown(s, u, v, w, -1.1) & (w < s.ch - 0.5)
        self.paint(sl, tooth, Tissue.TEETH, np.where(enamel, HU_ENAMEL, HU_DENTIN))
        pulp = (np.abs(u) / (0.2 * s.md)) ** 2 + (np.abs(v) / (0.22 * s.bl)) ** 2 <= 1.0
        pulp &= (w > 0.45 * s.ch) & (w < s.ch + 1.0)
        canal = self.roots(s, u, v, w, root * 0.95, grow=-0.9 - 0.1 * s.md) & (w >= s.ch)
        self.paint(sl, tooth & (pulp | canal) & ~enamel, Tissue.SOFT_TISSUE, 40.0)

    def paint_box_nearest(self, centre: np.ndarray, tissue: Tissue, hu: float) -> None:
        """Paint the voxel nearest to a canonical point, however coarse the grid."""
        cw = self.world(centre)
        index = tuple(
            round(cw[k] / self.h + (n - 1) / 2.0)
            for k, n in zip((2, 1, 0), self.shape, strict=True)
        )
        if all(0 <= j < n for j, n in zip(index, self.shape, strict=True)):
            self.lab[index], self.hu[index] = tissue, hu
