"""Painting the jaws and teeth: dental arches, mandible, maxillary alveolus, palate, fillings."""

from __future__ import annotations

import numpy as np

from tfgym.phantoms.grid import Z_OCCLUSAL, HeadGrid
from tfgym.phantoms.hu import HU_CORTICAL, HU_DENTIN, HU_ENAMEL, HU_METAL
from tfgym.phantoms.sdf import polyline, round_box
from tfgym.volume import Tissue

__all__ = ["DentitionPainter"]

# Teeth from the midline backwards: central incisor .. third molar. Columns: mesiodistal
# width, buccolingual width, crown height, root length (mm), root pattern.
_UPPER_TEETH = (
    (8.5, 7.0, 10.5, 13.0, "1"),
    (6.5, 6.0, 9.0, 13.0, "1"),
    (7.5, 8.0, 10.0, 17.0, "1"),
    (7.0, 9.0, 8.5, 14.0, "bl"),
    (6.5, 9.0, 8.0, 14.0, "1"),
    (10.0, 11.0, 7.5, 12.5, "3"),
    (9.0, 11.0, 7.0, 12.0, "3"),
    (8.5, 10.0, 6.5, 11.0, "3"),
)
_LOWER_TEETH = (
    (5.0, 6.0, 9.0, 12.5, "1"),
    (5.5, 6.0, 9.5, 14.0, "1"),
    (7.0, 7.5, 11.0, 16.0, "1"),
    (7.0, 7.5, 8.5, 14.0, "1"),
    (7.0, 8.0, 8.0, 14.5, "1"),
    (11.0, 10.5, 7.5, 14.0, "md"),
    (10.5, 10.0, 7.0, 13.0, "md"),
    (10.0, 9.5, 7.0, 11.0, "md"),
)


def _tilt(sigma: np.ndarray | float) -> np.ndarray | float:
    """Labial inclination (radians) of the teeth at arc length ``sigma`` from the midline."""
    return np.radians(3.0 + 17.0 * np.exp(-((np.asarray(sigma) / 14.0) ** 2)))


class DentitionPainter(HeadGrid):
    """Paints the mandible, the upper alveolus and palate, the teeth and metal restorations."""

    # -- jaws and teeth -------------------------------------------------------------------
    def arch(self, jaw: int):
        """Dense samples ``(x, y, arc length)`` of one side of a dental arch (x >= 0)."""
        an = self.an
        w = an.arch_width - 1.5 * jaw
        x = np.linspace(0.0, 1.6 * w, 400)
        u = x / w
        y = (
            -88.0
            + an.overjet * jaw
            + an.arch_depth * (an.arch_alpha * u**2 + (1.0 - an.arch_alpha) * u**4)
        )
        return x, y, np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])

    def tooth_slots(self, jaw: int, side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Arc length of each tooth centre, mesiodistal widths and jitter rows of one side."""
        jit = np.array(self.an.tooth_jitter).reshape(2, 2, 8, 4)[jaw, side]
        table = _UPPER_TEETH if jaw == 0 else _LOWER_TEETH
        widths = np.array([t[0] for t in table]) * (1.0 + jit[:, 3])
        return np.cumsum(widths) - widths / 2.0, widths, jit

    def occlusal_z(self, jaw: int) -> float:
        """Height of the occlusal surfaces of the upper (0) or lower (1) teeth."""
        return Z_OCCLUSAL + (0.5 if jaw == 0 else -0.5) * self.an.mouth_gap

    def arch_polyline(self, jaw: int, extra: float, end: tuple | None = None):
        """Symmetric polyline along a dental arch to ``extra`` mm behind the second molars."""
        x, y, arc = self.arch(jaw)
        centres, widths, _ = self.tooth_slots(jaw, 1)
        ls = np.linspace(0.0, centres[6] + widths[6] / 2.0 + extra, 9)
        half = np.stack([np.interp(ls, arc, x), np.interp(ls, arc, y)], 1)
        if end is not None:
            half = np.vstack([half, end])
        arch_len = float(np.sum(np.hypot(*np.diff(half[:9], axis=0).T)))
        return np.vstack([half[::-1] * (-1.0, 1.0), half[1:]]), arch_len

    def jaws(self) -> None:
        """Mandible (body, chin, rami, condyles, coronoids), upper alveolus and hard palate."""
        an = self.an
        gw, gy = an.gonial_width, an.gonial_y
        z_low = self.occlusal_z(1)
        pts, arch_len = self.arch_polyline(1, 2.0, (gw, gy))
        sl = self.box((-gw - 12, -108 - an.chin, -146), (gw + 12, gy + 14, z_low))
        if sl is not None:
            X, Y, Z = self.coords(sl)
            d, s, total = polyline(X, Y, pts)
            sig = np.abs(s - total / 2.0)
            d = d - np.clip(z_low - Z, 0.0, 22.0) * np.tan(_tilt(np.minimum(sig, arch_len)))
            ramp = np.clip((sig - arch_len) / (total / 2.0 - arch_len), 0.0, 1.0)
            half_w = 5.5 + 2.0 * np.exp(-((sig / 12.0) ** 2)) - 1.2 * ramp
            zb = -135.0 + 15.0 * np.clip(sig / (total / 2.0), 0.0, 1.0) ** 1.3
            zt = z_low - 8.0 - 14.0 * ramp
            sdf = round_box(d, Z - (zt + zb) / 2.0, half_w, (zt - zb) / 2.0, 2.5)
            self.paint(sl, sdf < 0, Tissue.BONE, self.bone_hu(-sdf))
        self.solid("e", (0, -88 + an.overjet - 2 - an.chin, -129), (13, 6, 8))  # chin
        for sx in (-1, 1):
            self.solid("c", (sx * gw, gy - 13, -108), (sx * (gw + 1.5), gy - 12, -84), (4, 13, 13))
            self.solid(
                "c", (sx * (gw + 1), gy - 5, -86), (sx * (gw + 2), gy - 3, -62), (3.5, 4.5, 4.5)
            )
            self.solid("e", (sx * (gw + 1), gy - 3, -60), (9.5, 5, 5.5))  # condyle
            self.solid(
                "c", (sx * (gw - 2), gy - 22, -90), (sx * (gw - 4), gy - 29, -66), (3, 4.5, 4.5)
            )
        z_up = self.occlusal_z(0)
        pts, _ = self.arch_polyline(0, 4.0)
        sl = self.box((-48, -104, z_up + 4), (48, float(pts[0, 1]) + 12, -64))
        if sl is not None:
            X, Y, Z = self.coords(sl)
            d, s, total = polyline(X, Y, pts)
            sig = np.abs(s - total / 2.0)
            d_root = d - np.clip(Z - z_up, 0.0, 22.0) * np.tan(_tilt(sig))
            half_w = 6.0 + 1.5 * np.clip(sig / 45.0, 0.0, 1.0)
            zb, zt = z_up + 7.0, -68.0
            sdf = round_box(d_root, Z - (zt + zb) / 2.0, half_w, (zt - zb) / 2.0, 2.5)
            self.paint(sl, sdf < 0, Tissue.BONE, self.bone_hu(-sdf))
            palate = (d > 0) & (Y < pts[0, 1] - 2.0) & (Z > -81.0) & (Z < -76.5)
            self.paint(sl, palate, Tissue.BONE, HU_CORTICAL * self.an.bone_density)

    def teeth(self) -> None:
        """Individual teeth of both arches, and metal restorations when the spec has metal."""
        present = np.array(self.an.teeth).reshape(2, 2, 8)
        metal = {f[:3]: f[3] for f in self.an.fillings} if self.spec.has_metal else {}
        for jaw in (0, 1):
            x, y, arc = self.arch(jaw)
            dx, dy = np.gradient(x, arc), np.gradient(y, arc)
            for side in (0, 1):
                sx = 1.0 if side else -1.0
                centres, _, jit = self.tooth_slots(jaw, side)
                for i in np.flatnonzero(present[jaw, side]):
                    at = centres[i]
                    p0 = np.array([sx * np.interp(at, arc, x), np.interp(at, arc, y), 0.0])
                    t = np.array([sx * np.interp(at, arc, dx), np.interp(at, arc, dy), 0.0])
                    t /= np.linalg.norm(t)
                    p0 += jit[i, 0] * t + jit[i, 1] * sx * np.array([t[1], -t[0], 0.0])
                    p0[2] = self.occlusal_z(jaw)
                    self.tooth(jaw, i, p0, t, sx, _tilt(at), jit[i], metal.get((jaw, side, int(i))))

    def tooth(self, jaw, i, p0, t, sx, tilt, jit, filling) -> None:
        """Paint one tooth whose occlusal/incisal centre is ``p0`` and distal direction ``t``."""
        table = _UPPER_TEETH if jaw == 0 else _LOWER_TEETH
        md, bl, ch, rl, roots = table[i]
        md, bl, ch, rl = (v * (1.0 + jit[3]) for v in (md, bl, ch, rl))
        up = np.array([0.0, 0.0, 1.0 if jaw == 0 else -1.0])
        n = sx * np.array([t[1], -t[0], 0.0])  # buccal
        r_dir = np.cos(tilt) * up - np.sin(tilt) * n  # towards the root apex
        nb = np.cos(tilt) * n + np.sin(tilt) * up
        g = np.radians(jit[2])
        t, nb = np.cos(g) * t + np.sin(g) * nb, -np.sin(g) * t + np.cos(g) * nb
        c = p0 + r_dir * ch / 2.0
        apex = c + r_dir * (ch / 2.0 + rl)
        m = max(md, bl) / 2.0 + 1.0
        sl = self.box(tuple(np.minimum(c, apex) - m), tuple(np.maximum(c, apex) + m))
        if sl is None:
            return
        X, Y, Z = self.coords(sl)
        px, py, pz = X - c[0], Y - c[1], Z - c[2]
        u, v, w = (px * float(e[0]) + py * float(e[1]) + pz * float(e[2]) for e in (t, nb, r_dir))
        half_b = bl / 2.0
        if i <= 2:  # incisors and canines thin towards the incisal edge
            half_b = half_b * (0.45 + 0.55 * np.clip((w + ch / 2.0) / ch, 0.0, 1.0) ** 0.7)

        def crown_f(shrink: float) -> np.ndarray:
            return (
                np.abs(u / (md / 2.0 - shrink)) ** 2.6
                + np.abs(v / (half_b - shrink)) ** 2.6
                + np.abs(w / (ch / 2.0 - shrink)) ** 2.6
            )

        crown = crown_f(0.0) <= 1.0
        enamel = crown & (crown_f(1.2) > 1.0)
        tau = (w - (ch / 2.0 - 1.5)) / rl
        taper = np.clip(1.0 - 0.8 * np.clip(tau, 0.0, 1.0) ** 1.3, 0.0, 1.0)
        tooth = crown.copy()
        layout = {
            "1": ((0.0, 0.0, 1.0),),
            "bl": ((0.0, 0.22, 0.6), (0.0, -0.22, 0.6)),
            "md": ((0.24, 0.0, 0.6), (-0.24, 0.0, 0.6)),
            "3": ((0.22, 0.2, 0.5), (-0.22, 0.2, 0.5), (0.0, -0.25, 0.55)),
        }[roots]
        for du, dv, k in layout:
            spread = 1.0 + 0.6 * np.clip(tau, 0.0, 1.0)
            ru, rv = k * 0.42 * md * taper + 0.4, k * 0.45 * bl * taper + 0.4
            inside = ((u - du * md * spread) / ru) ** 2 + ((v - dv * bl * spread) / rv) ** 2
            tooth |= (tau >= 0.0) & (tau <= 1.0) & (inside <= 1.0)
        self.paint(sl, tooth, Tissue.TEETH, np.where(enamel, HU_ENAMEL, HU_DENTIN))
        if filling is None:
            return
        if filling == 2:  # full metal crown
            restoration, centre, half_z = crown_f(-0.3) <= 1.0, c, ch / 2.0
        else:
            a = (0.27 if filling == 0 else 0.6) * md
            wc = -ch / 2.0 + 1.2
            shape = (u / a) ** 2 + (v / (0.22 * bl)) ** 2 + ((w - wc) / 2.4) ** 2 <= 1.0
            restoration, centre, half_z = shape & crown, c + r_dir * wc, 2.4
        self.paint(sl, restoration, Tissue.METAL, HU_METAL)
        cw = self.world(centre)
        self.metal.append(((float(cw[0]), float(cw[1]), float(cw[2])), half_z))
        # Keep at least the voxel nearest to the restoration metal, however coarse the grid.
        index = tuple(
            round(cw[k] / self.h + (n - 1) / 2.0)
            for k, n in zip((2, 1, 0), self.shape, strict=True)
        )
        if all(0 <= j < n for j, n in zip(index, self.shape, strict=True)):
            self.lab[index], self.hu[index] = Tissue.METAL, HU_METAL
