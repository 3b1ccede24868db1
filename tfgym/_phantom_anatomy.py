"""Geometry and painting of the procedural CBCT head phantoms (private to tfgym.phantoms).

The public entry points live in :mod:`tfgym.phantoms`; this module holds the machinery they
drive: signed distance functions of the shape primitives (ellipsoids, capsules, rounded
rectangles, 2D polylines), the pose rotation, the labial inclination of the teeth, and
:class:`_Head`, which paints the labels and noise-free HU of one phantom on its voxel grid
from a :class:`tfgym.phantoms.PhantomSpec`.

The head frame is canonical: millimetres of an unscaled head, origin at the centre of the
cranial ellipsoid, x to the patient's left, y posterior, z superior. The grid it is painted
on is described by the caller (shape and field of view), so this module never imports
:mod:`tfgym.phantoms` at run time.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

import numpy as np

from tfgym.volume import Tissue

if TYPE_CHECKING:  # only for annotations: tfgym.phantoms imports this module
    from tfgym.phantoms import PhantomSpec

# Nominal HU-like values.
_HU_AIR, _HU_FAT, _HU_SOFT, _HU_SKIN = -1000.0, -100.0, 45.0, 35.0
_HU_GREY, _HU_WHITE, _HU_CSF = 37.0, 29.0, 8.0
_HU_CORTICAL, _HU_CANCELLOUS = 1200.0, 700.0
_HU_ENAMEL, _HU_DENTIN, _HU_METAL = 2600.0, 1900.0, 16000.0

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

# Skull: outer table semi-axes (x, y, z) in mm of the canonical (scale 1) head; its centre is
# the origin of the head frame. The occlusal plane of the teeth is at z = -92.
_SKULL = (70.0, 91.0, 80.0)
_Z_OCCLUSAL = -92.0

Box = tuple[slice, slice, slice]


def _sig(v: np.ndarray) -> np.ndarray:
    """Logistic step."""
    return 1.0 / (1.0 + np.exp(-v))


def _ell(X: np.ndarray, Y: np.ndarray, Z: np.ndarray, c: tuple, r: tuple) -> np.ndarray:
    """Signed distance (mm, negative inside; exact along the shortest axis) to an ellipsoid."""
    q = ((X - c[0]) / r[0]) ** 2 + ((Y - c[1]) / r[1]) ** 2 + ((Z - c[2]) / r[2]) ** 2
    return (np.sqrt(q) - 1.0) * min(r)


def _capsule(
    X: np.ndarray, Y: np.ndarray, Z: np.ndarray, a: tuple, b: tuple, r: float | tuple
) -> np.ndarray:
    """Signed distance to the segment ``a``-``b`` swept by an ellipsoid of radii ``r``."""
    rr = tuple(r) if isinstance(r, tuple) else (r, r, r)
    e = [float(bi - ai) for ai, bi in zip(a, b, strict=True)]
    px, py, pz = X - a[0], Y - a[1], Z - a[2]
    t = np.clip((px * e[0] + py * e[1] + pz * e[2]) / sum(v * v for v in e), 0.0, 1.0)
    q = (
        ((px - t * e[0]) / rr[0]) ** 2
        + ((py - t * e[1]) / rr[1]) ** 2
        + ((pz - t * e[2]) / rr[2]) ** 2
    )
    return (np.sqrt(q) - 1.0) * min(rr)


def _round_box(
    u: np.ndarray, v: np.ndarray, hu: np.ndarray | float, hv: np.ndarray | float, rc: float
) -> np.ndarray:
    """Signed distance to a 2D rectangle of half sizes ``hu``, ``hv`` with rounded corners."""
    qu = np.abs(u) - (hu - rc)
    qv = np.abs(v) - (hv - rc)
    out = np.sqrt(np.maximum(qu, 0.0) ** 2 + np.maximum(qv, 0.0) ** 2)
    return out + np.minimum(np.maximum(qu, qv), 0.0) - rc


def _polyline(X: np.ndarray, Y: np.ndarray, pts: np.ndarray):
    """Nearest point on a 2D polyline: signed distance (left of travel > 0) and arc length."""
    best = np.full(X.shape, np.inf, np.float32)
    arc = np.zeros(X.shape, np.float32)
    side = np.zeros(X.shape, np.float32)
    start = 0.0
    for (ax, ay), (bx, by) in zip(pts[:-1].tolist(), pts[1:].tolist(), strict=True):
        ex, ey = bx - ax, by - ay
        length = math.hypot(ex, ey)
        px, py = X - ax, Y - ay
        t = np.clip((px * ex + py * ey) / (length * length), 0.0, 1.0)
        d2 = (px - t * ex) ** 2 + (py - t * ey) ** 2
        closer = d2 < best
        best = np.where(closer, d2, best)
        arc = np.where(closer, start + t * length, arc)
        side = np.where(closer, ex * py - ey * px, side)
        start += length
    return np.sqrt(best) * np.where(side >= 0, 1.0, -1.0).astype(np.float32), arc, start


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation matrix (world from head) for angles in degrees about z, x and y."""
    a, b, c = np.radians([yaw, pitch, roll])
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    ry = np.array([[np.cos(c), 0, np.sin(c)], [0, 1, 0], [-np.sin(c), 0, np.cos(c)]])
    return rz @ rx @ ry


def _tilt(sigma: np.ndarray | float) -> np.ndarray | float:
    """Labial inclination (radians) of the teeth at arc length ``sigma`` from the midline."""
    return np.radians(3.0 + 17.0 * np.exp(-((np.asarray(sigma) / 14.0) ** 2)))


class _Head:
    """Paints the labels and noise-free HU of one phantom on its voxel grid.

    Anatomy is written in the canonical head frame (mm; origin at the centre of the cranial
    ellipsoid; x left, y posterior, z superior); every voxel knows its canonical coordinates
    ``X, Y, Z``, obtained from its world position through the seed's pose and head scale.
    Each structure is evaluated only on the voxels of its bounding box.

    Args:
        spec: the phantom's scanner and anatomy parameters.
        shape: the voxel grid ``(nz, ny, nx)`` (:func:`tfgym.phantoms.phantom_shape`).
        fov_mm: the field of view ``(z, y, x)`` in mm; the voxels are cubes of
            ``fov_mm[0] / shape[0]`` mm and the grid is centred on the origin of the world.
    """

    def __init__(
        self,
        spec: PhantomSpec,
        shape: tuple[int, int, int],
        fov_mm: tuple[float, float, float],
    ) -> None:
        self.spec, self.an = spec, spec.anatomy
        an = self.an
        self.shape = shape
        self.h = fov_mm[0] / shape[0]
        nz, ny, nx = self.shape
        # World coordinates (mm) of voxel centres along x, y, z; origin at the FOV centre.
        self.axes = tuple((np.arange(n) - (n - 1) / 2.0) * self.h for n in (nx, ny, nz))
        self.scale = np.array(an.scale)
        self.rot = _rotation(*an.pose_deg)
        _, sy, sz = an.scale
        # The canonical origin sits so that the vertex is ~9 mm below the top of the FOV and
        # the head is centred from nose to occiput.
        self.origin = np.array([0.0, 11.0 * sy, fov_mm[0] / 2 - 9.0 - 85.0 * sz]) + an.shift_mm
        inv = self.rot.T / self.scale[:, None]
        dx, dy, dz = (
            (ax - o).astype(np.float32) for ax, o in zip(self.axes, self.origin, strict=True)
        )
        self.X, self.Y, self.Z = (
            float(m[0]) * dx[None, None, :]
            + float(m[1]) * dy[None, :, None]
            + float(m[2]) * dz[:, None, None]
            for m in inv
        )
        self.lab = np.zeros(self.shape, np.uint8)
        self.hu = np.full(self.shape, _HU_AIR, np.float32)
        self.metal: list[tuple[tuple[float, float, float], float]] = []  # world centre, half z

    # -- grid helpers -------------------------------------------------------------------
    def world(self, p: np.ndarray) -> np.ndarray:
        """World position (mm, x y z) of canonical points ``p`` of shape (..., 3)."""
        return (np.asarray(p) * self.scale) @ self.rot.T + self.origin

    def box(self, lo: tuple, hi: tuple) -> Box | None:
        """Voxel slices covering the canonical box ``lo``..``hi``; None if outside the grid."""
        corners = np.array(np.meshgrid(*zip(lo, hi, strict=True), indexing="ij")).reshape(3, -1)
        w = self.world(corners.T)
        out = []
        for k, n in zip((2, 1, 0), self.shape, strict=True):
            idx = w[:, k] / self.h + (n - 1) / 2.0
            a, b = max(math.floor(idx.min()), 0), min(math.ceil(idx.max()) + 1, n)
            if a >= b:
                return None
            out.append(slice(a, b))
        return tuple(out)  # type: ignore[return-value]

    def coords(self, sl: Box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Canonical coordinates of the voxels of ``sl``."""
        return self.X[sl], self.Y[sl], self.Z[sl]

    def paint(self, sl: Box, mask: np.ndarray, tissue: Tissue, hu, *, inside=False) -> None:
        """Set label and HU on ``mask``; ``inside`` restricts it to voxels already in the head."""
        lab = self.lab[sl]
        if inside:
            mask = mask & (lab != Tissue.AIR)
        lab[mask] = tissue
        self.hu[sl][mask] = hu if np.isscalar(hu) else hu[mask]

    def bone_hu(self, depth: np.ndarray) -> np.ndarray:
        """Cortical HU within 1.8 mm of a bone surface, cancellous deeper."""
        bd = self.spec.bone_density
        return np.where(depth < 1.8, _HU_CORTICAL * bd, _HU_CANCELLOUS * bd).astype(np.float32)

    def shape_sdf(self, kind: str, *args):
        """Box and signed distance of an ellipsoid (``"e"``, c, r) or capsule (``"c"``, a, b, r)."""
        if kind == "e":
            c, r = args
            lo = tuple(ci - ri for ci, ri in zip(c, r, strict=True))
            sl = self.box(lo, tuple(ci + ri for ci, ri in zip(c, r, strict=True)))
            return (sl, None) if sl is None else (sl, _ell(*self.coords(sl), c, r))
        a, b, r = args
        rr = max(r) if isinstance(r, tuple) else r
        lo = tuple(min(ai, bi) - rr for ai, bi in zip(a, b, strict=True))
        hi = tuple(max(ai, bi) + rr for ai, bi in zip(a, b, strict=True))
        sl = self.box(lo, hi)
        return (sl, None) if sl is None else (sl, _capsule(*self.coords(sl), a, b, r))

    def solid(self, kind: str, *args, tissue=Tissue.BONE, hu=None, inside=False) -> None:
        """Paint one ellipsoid or capsule; bone gets cortical/cancellous HU by depth."""
        sl, d = self.shape_sdf(kind, *args)
        if sl is None:
            return
        if hu is None:
            hu = self.bone_hu(-d)
        self.paint(sl, d < 0, tissue, hu, inside=inside)

    def build(self) -> None:
        """Paint all structures, outermost first."""
        self.envelope()
        self.brain()
        self.skull()
        self.face()
        self.jaws()
        self.spine()
        self.airway()
        self.teeth()

    # -- soft tissue, brain, cranium ------------------------------------------------------
    def envelope(self) -> None:
        """Skin, subcutaneous fat and soft tissue of head, face and neck; nose and ears."""
        an, (a, b, c) = self.an, _SKULL
        X, Y, Z = self.X, self.Y, self.Z
        sc = an.scalp
        d = _ell(X, Y, Z, (0, 0, 0), (a + sc, b + sc, c + sc))
        for cen, rad in (
            ((0, -45, -25), (66, 55, 30)),  # brows and eyes
            ((0, -35, -55), (68, 64, 38)),  # cheeks
            ((0, -30, -104), (60, 68, 36)),  # jaw
        ):
            d = np.minimum(d, _ell(X, Y, Z, cen, rad))
        neck = (np.sqrt((X / 58.0) ** 2 + ((Y - 12.0) / 60.0) ** 2) - 1.0) * 58.0
        d = np.minimum(d, np.maximum(neck, Z + 45.0))
        parts = [("e", (0, -84 - an.chin, -126), (22, 15, 16)), ("e", (0, -92, -92), (28, 12, 16))]
        for kind, *args in parts:
            sl, dp = self.shape_sdf(kind, *args)
            if sl is not None:
                d[sl] = np.minimum(d[sl], dp)
        fat = 1.5 + (an.fat - 1.5) * _sig((-15.0 - Z) / 5.0)
        hu = np.where(d > -1.5, _HU_SKIN, np.where(d > -1.5 - fat, _HU_FAT, _HU_SOFT))
        full = (slice(None),) * 3
        self.paint(full, d < 0, Tissue.SOFT_TISSUE, hu)  # type: ignore[arg-type]
        for sx in (-1, 1):  # ears
            self.solid("e", (sx * 74, 8, -38), (5, 14, 28), tissue=Tissue.SOFT_TISSUE, hu=_HU_SOFT)
        nose: tuple[tuple, ...] = (
            ("e", (0, -99, -50), (13, 12, 21)),  # body
            ("c", (0, -97, -26), (0, -114, -60), 6),  # dorsum and tip
            ("e", (0, -103, -64), (17, 10, 8)),  # alae
        )
        for kind, *args in nose:
            self.solid(kind, *args, tissue=Tissue.SOFT_TISSUE, hu=_HU_SOFT)

    def brain_floor(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Height of the floor of the cranial cavity: anterior, middle, posterior fossa, sella."""
        fl = -12.0 - 32.0 * _sig((Y + 36.0) / 3.0) - 18.0 * _sig((Y - 6.0) / 4.0)
        sella = _sig((Y + 38.0) / 3.0) * _sig((-6.0 - Y) / 3.0)
        return fl + 16.0 * np.exp(-((X / 13.0) ** 4)) * sella

    def brain(self) -> None:
        """Grey and white matter, ventricles, cerebellum and a CSF rim inside the skull."""
        (a, b, c), t = _SKULL, self.an.skull
        sl = self.box((-a, -b, -c), (a, b, c))
        if sl is None:
            return
        X, Y, Z = self.coords(sl)
        di = _ell(X, Y, Z, (0, 0, 0), (a - t, b - t, c - t))
        fl = self.brain_floor(X, Y)
        hu = np.full(X.shape, _HU_GREY, np.float32)
        hu[(_ell(X, Y, Z, (0, -5, 16), (46, 64, 40)) < 0) & (Z > fl + 14)] = _HU_WHITE
        hu[_ell(X, Y, Z, (0, 50, -44), (44, 28, 17)) < 0] = 40.0  # cerebellum
        for sx in (-1, 1):
            hu[_capsule(X, Y, Z, (sx * 11, -26, 16), (sx * 13, 20, 18), (4, 4, 7)) < 0] = _HU_CSF
            hu[_capsule(X, Y, Z, (sx * 13, 20, 18), (sx * 25, -4, -14), 3.5) < 0] = _HU_CSF
        hu[_ell(X, Y, Z, (0, -4, -2), (2.5, 12, 8)) < 0] = _HU_CSF
        hu[di > -1.5] = _HU_CSF
        self.paint(sl, (di < 0) & (Z > fl), Tissue.SOFT_TISSUE, hu)

    def skull(self) -> None:
        """Cranial vault (two tables and diploe), skull base, petrous bones, mastoids."""
        (a, b, c), t = _SKULL, self.an.skull
        sl = self.box((-a, -b, -c), (a, b, c))
        if sl is None:
            return
        X, Y, Z = self.coords(sl)
        fl = self.brain_floor(X, Y)
        low = fl - 7.0 - 3.0 * _sig((Y + 36.0) / 3.0)
        inner = np.maximum(_ell(X, Y, Z, (0, 0, 0), (a - t, b - t, c - t)), fl - Z)
        outer = np.minimum(-_ell(X, Y, Z, (0, 0, 0), (a, b, c)), Z - low)
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
        an, cortical = self.an, _HU_CORTICAL * self.spec.bone_density
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
                self.paint(sl, cone, Tissue.SOFT_TISSUE, _HU_FAT, inside=True)
        for sx in (-1, 1):
            eye, lens = ((sx * 32, -78, -28), (12, 12, 12)), ((sx * 32, -88.5, -28), (4.5, 2, 4.5))
            self.solid("e", *eye, tissue=Tissue.SOFT_TISSUE, hu=10.0, inside=True)
            self.solid("e", *lens, tissue=Tissue.SOFT_TISSUE, hu=80.0, inside=True)
        sl, d = self.shape_sdf("e", (0, -60, -57), (12.5, 40, 29))  # nasal cavity
        if sl is not None:
            X, Y, Z = self.coords(sl)
            nasal = (d < 0) & (Y > -104) & (Z > -76.5)
            self.paint(sl, nasal, Tissue.AIR, _HU_AIR)
            septum = nasal & (np.abs(X) < 1.1) & (Z > -74)
            self.paint(sl, septum & (Y < -78), Tissue.SOFT_TISSUE, 100.0)  # cartilage
            self.paint(sl, septum & (Y >= -78), Tissue.BONE, cortical)
        for sx in (-1, 1):
            for c, r in (((sx * 9.5, -56, -65), (3.5, 26, 5)), ((sx * 8.5, -54, -50), (3, 22, 4))):
                self.solid("e", c, r, tissue=Tissue.SOFT_TISSUE, hu=50.0)  # turbinates
            nostril = ((sx * 7, -115, -68), (sx * 8, -98, -60), 3.2)
            self.solid("c", *nostril, tissue=Tissue.AIR, hu=_HU_AIR)
            sl, d = self.shape_sdf("e", (sx * 29, -62, -60), (15, 20, 12))  # maxillary sinus
            if sl is not None:
                self.paint(sl, d < 0, Tissue.AIR, _HU_AIR)
                fluid = (d < 0) & (self.Z[sl] < -72.0 + 24.0 * an.sinus_fluid)
                self.paint(sl, fluid, Tissue.SOFT_TISSUE, 15.0)
        self.solid("e", (0, -87, -8), (13, 3.5, 8), tissue=Tissue.AIR, hu=_HU_AIR)  # frontal
        self.solid("e", (0, -24, -41), (10, 10, 7), tissue=Tissue.AIR, hu=_HU_AIR)  # sphenoid
        k = 2.0 * np.pi / 6.0
        cells = [((0, -62, -27), (11, 24, 8), 1.7)]  # ethmoid
        cells += [((sx * 46, 14, -60), (6, 8, 10), 1.2) for sx in (-1, 1)]  # mastoid
        for c, r, thr in cells:
            sl, d = self.shape_sdf("e", c, r)
            if sl is not None:
                X, Y, Z = self.coords(sl)
                septa = np.cos(k * X) + np.cos(k * Y) + np.cos(k * Z) > thr
                self.paint(sl, (d < 0) & ~septa, Tissue.AIR, _HU_AIR)
        for sx in (-1, 1):
            canal = ((sx * 48, 4, -45), (sx * 84, 4, -45), 3.5)
            self.solid("c", *canal, tissue=Tissue.AIR, hu=_HU_AIR)

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
        return _Z_OCCLUSAL + (0.5 if jaw == 0 else -0.5) * self.an.mouth_gap

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
            d, s, total = _polyline(X, Y, pts)
            sig = np.abs(s - total / 2.0)
            d = d - np.clip(z_low - Z, 0.0, 22.0) * np.tan(_tilt(np.minimum(sig, arch_len)))
            ramp = np.clip((sig - arch_len) / (total / 2.0 - arch_len), 0.0, 1.0)
            half_w = 5.5 + 2.0 * np.exp(-((sig / 12.0) ** 2)) - 1.2 * ramp
            zb = -135.0 + 15.0 * np.clip(sig / (total / 2.0), 0.0, 1.0) ** 1.3
            zt = z_low - 8.0 - 14.0 * ramp
            sdf = _round_box(d, Z - (zt + zb) / 2.0, half_w, (zt - zb) / 2.0, 2.5)
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
            d, s, total = _polyline(X, Y, pts)
            sig = np.abs(s - total / 2.0)
            d_root = d - np.clip(Z - z_up, 0.0, 22.0) * np.tan(_tilt(sig))
            half_w = 6.0 + 1.5 * np.clip(sig / 45.0, 0.0, 1.0)
            zb, zt = z_up + 7.0, -68.0
            sdf = _round_box(d_root, Z - (zt + zb) / 2.0, half_w, (zt - zb) / 2.0, 2.5)
            self.paint(sl, sdf < 0, Tissue.BONE, self.bone_hu(-sdf))
            palate = (d > 0) & (Y < pts[0, 1] - 2.0) & (Z > -81.0) & (Z < -76.5)
            self.paint(sl, palate, Tissue.BONE, _HU_CORTICAL * self.spec.bone_density)

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
        self.paint(sl, tooth, Tissue.TEETH, np.where(enamel, _HU_ENAMEL, _HU_DENTIN))
        if filling is None:
            return
        if filling == 2:  # full metal crown
            restoration, centre, half_z = crown_f(-0.3) <= 1.0, c, ch / 2.0
        else:
            a = (0.27 if filling == 0 else 0.6) * md
            wc = -ch / 2.0 + 1.2
            shape = (u / a) ** 2 + (v / (0.22 * bl)) ** 2 + ((w - wc) / 2.4) ** 2 <= 1.0
            restoration, centre, half_z = shape & crown, c + r_dir * wc, 2.4
        self.paint(sl, restoration, Tissue.METAL, _HU_METAL)
        cw = self.world(centre)
        self.metal.append(((float(cw[0]), float(cw[1]), float(cw[2])), half_z))
        # Keep at least the voxel nearest to the restoration metal, however coarse the grid.
        index = tuple(
            round(cw[k] / self.h + (n - 1) / 2.0)
            for k, n in zip((2, 1, 0), self.shape, strict=True)
        )
        if all(0 <= j < n for j, n in zip(index, self.shape, strict=True)):
            self.lab[index], self.hu[index] = Tissue.METAL, _HU_METAL

    # -- spine, airway ---------------------------------------------------------------------
    def spine(self) -> None:
        """Brainstem and cord in the spinal canal, vertebrae C1-C7 (as far as the FOV reaches)."""
        soft = Tissue.SOFT_TISSUE
        self.solid("c", (0, 22, -50), (0, 28, -240), 8, tissue=soft, hu=_HU_CSF)
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
        self.solid("e", (0, -19, -62), (13, 9, 10), tissue=air, hu=_HU_AIR)
        r = (13.0 * an.airway, 6.5 * an.airway, 6.5 * an.airway)
        pts = ((0, -20, -62), (0, -13, -82), (0, -13, -118), (0, -24, -240))
        for a, b in itertools.pairwise(pts):
            self.solid("c", a, b, r, tissue=air, hu=_HU_AIR)
        self.solid("e", (0, -60, -84.5), (16, 22, 2.0), tissue=air, hu=_HU_AIR)
        gap = an.mouth_gap
        if gap > 0:
            self.solid("e", (0, -62, _Z_OCCLUSAL), (30, 32, gap / 2.0), tissue=air, hu=_HU_AIR)
            sl = self.box((-22, -125, _Z_OCCLUSAL - gap), (22, -70, _Z_OCCLUSAL + gap))
            if sl is not None:
                X, Y, Z = self.coords(sl)
                lips = (np.abs(X) < 22) & (Y < -70) & (np.abs(Z - _Z_OCCLUSAL) < 0.4 * gap)
                self.paint(sl, lips, air, _HU_AIR)
