"""Shape primitives of the phantoms: signed distance functions and the pose rotation.

Signed distances are in mm, negative inside, evaluated vectorised on coordinate arrays
(ellipsoids, capsules and tapered capsules, rounded 2D rectangles, 2D polylines and polygons,
extrusions, smooth unions); :func:`rotation` turns the seed's pose angles into a rotation
matrix.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "capsule",
    "cone",
    "ellipsoid",
    "extrude",
    "logistic",
    "polygon",
    "polyline",
    "rotation",
    "round_box",
    "smooth_max",
    "smooth_min",
]


def logistic(v: np.ndarray) -> np.ndarray:
    """Logistic step."""
    return 1.0 / (1.0 + np.exp(-v))


def ellipsoid(X: np.ndarray, Y: np.ndarray, Z: np.ndarray, c: tuple, r: tuple) -> np.ndarray:
    """Signed distance (mm, negative inside; exact along the shortest axis) to an ellipsoid."""
    q = ((X - c[0]) / r[0]) ** 2 + ((Y - c[1]) / r[1]) ** 2 + ((Z - c[2]) / r[2]) ** 2
    return (np.sqrt(q) - 1.0) * min(r)


def capsule(
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


def cone(
    X: np.ndarray, Y: np.ndarray, Z: np.ndarray, a: tuple, b: tuple, ra: float, rb: float
) -> np.ndarray:
    """Approximate signed distance to a tapered capsule: radius ``ra`` at ``a``, ``rb`` at ``b``."""
    e = [float(bi - ai) for ai, bi in zip(a, b, strict=True)]
    px, py, pz = X - a[0], Y - a[1], Z - a[2]
    t = np.clip((px * e[0] + py * e[1] + pz * e[2]) / sum(v * v for v in e), 0.0, 1.0)
    d = np.sqrt((px - t * e[0]) ** 2 + (py - t * e[1]) ** 2 + (pz - t * e[2]) ** 2)
    return d - (ra + (rb - ra) * t)


def smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Union of two signed distances blended over ``k`` mm (polynomial smooth minimum)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def smooth_max(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Intersection of two signed distances with edges rounded over ``k`` mm."""
    return -smooth_min(-a, -b, k)


def extrude(d2: np.ndarray, w: np.ndarray, half: float | np.ndarray) -> np.ndarray:
    """Signed distance of a 2D shape (distance ``d2``) extruded to ``|w| <= half``."""
    qw = np.abs(w) - half
    out = np.sqrt(np.maximum(d2, 0.0) ** 2 + np.maximum(qw, 0.0) ** 2)
    return out + np.minimum(np.maximum(d2, qw), 0.0)


def round_box(
    u: np.ndarray, v: np.ndarray, hu: np.ndarray | float, hv: np.ndarray | float, rc: float
) -> np.ndarray:
    """Signed distance to a 2D rectangle of half sizes ``hu``, ``hv`` with rounded corners."""
    qu = np.abs(u) - (hu - rc)
    qv = np.abs(v) - (hv - rc)
    out = np.sqrt(np.maximum(qu, 0.0) ** 2 + np.maximum(qv, 0.0) ** 2)
    return out + np.minimum(np.maximum(qu, qv), 0.0) - rc


def polyline(X: np.ndarray, Y: np.ndarray, pts: np.ndarray):
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


def polygon(U: np.ndarray, V: np.ndarray, pts: np.ndarray | list) -> np.ndarray:
    """Signed distance (negative inside) to a closed 2D polygon with vertices ``pts``.

    Example:
        >>> square = [(0, 0), (2, 0), (2, 2), (0, 2)]
        >>> polygon(np.array([1.0, 3.0]), np.array([1.0, 1.0]), square).round(3).tolist()
        [-1.0, 1.0]
    """
    pts = np.asarray(pts, dtype=np.float64)
    best = np.full(np.shape(U), np.inf, np.float32)
    inside = np.zeros(np.shape(U), bool)
    for (ax, ay), (bx, by) in zip(pts.tolist(), np.roll(pts, -1, axis=0).tolist(), strict=True):
        ex, ey = bx - ax, by - ay
        px, py = U - ax, V - ay
        t = np.clip((px * ex + py * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        best = np.minimum(best, (px - t * ex) ** 2 + (py - t * ey) ** 2)
        if ey != 0.0:  # even-odd rule on a ray towards +u
            inside ^= ((ay > V) != (by > V)) & (U < ax + py * (ex / ey))
    return np.sqrt(best) * np.where(inside, -1.0, 1.0).astype(np.float32)


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation matrix (world from head) for angles in degrees about z, x and y."""
    a, b, c = np.radians([yaw, pitch, roll])
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    ry = np.array([[np.cos(c), 0, np.sin(c)], [0, 1, 0], [-np.sin(c), 0, np.cos(c)]])
    return rz @ rx @ ry
