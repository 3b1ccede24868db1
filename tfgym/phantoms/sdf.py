"""Shape primitives of the phantoms: signed distance functions and the pose rotation.

Signed distances are in mm, negative inside, evaluated vectorised on coordinate arrays
(ellipsoids, capsules, rounded 2D rectangles, 2D polylines); :func:`rotation` turns the
seed's pose angles into a rotation matrix.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "capsule",
    "ellipsoid",
    "logistic",
    "polyline",
    "rotation",
    "round_box",
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


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation matrix (world from head) for angles in degrees about z, x and y."""
    a, b, c = np.radians([yaw, pitch, roll])
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    ry = np.array([[np.cos(c), 0, np.sin(c)], [0, 1, 0], [-np.sin(c), 0, np.cos(c)]])
    return rz @ rx @ ry
