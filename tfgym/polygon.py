"""Polygon rasterisation: the fraction of each joint-histogram bin a polygon covers.

A transfer function's opacity in a bin is its polygon's coverage of that bin (even-odd rule,
so self-intersecting polygons are well defined). A compiled scanline kernel computes coverage
exactly along each row of bins and samples ``subrows`` lines per row across it; batches of
polygons are rasterised in one call (in parallel from 64 polygons on).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["SUBROWS", "canonical_vertex_order", "polygon_coverage", "polygon_coverage_batch"]

SUBROWS = 4


@numba.njit(cache=True)
def _coverage_one(verts, n_rows, n_cols, subrows, out):  # pragma: no cover - jit
    """Even-odd scanline coverage of one polygon ``(n, 2)`` into ``out`` ``(rows, cols)``."""
    n_vert = verts.shape[0]
    xs = np.empty(n_vert + 1)
    for k in range(n_rows * subrows):
        y = (k + 0.5) / subrows
        count = 0
        for e in range(n_vert):
            ax, ay = verts[e, 0], verts[e, 1]
            bx, by = verts[(e + 1) % n_vert, 0], verts[(e + 1) % n_vert, 1]
            if (ay <= y) != (by <= y):  # half-open rule: each vertex counted once
                x = ax + (y - ay) * (bx - ax) / (by - ay)
                j = count  # insertion sort: crossings stay ordered
                while j > 0 and xs[j - 1] > x:
                    xs[j] = xs[j - 1]
                    j -= 1
                xs[j] = x
                count += 1
        row = k // subrows
        for s in range(0, count - 1, 2):  # spans between crossing pairs
            left = min(max(xs[s], 0.0), n_cols)
            right = min(max(xs[s + 1], 0.0), n_cols)
            col = int(left)
            while col < n_cols and col < right:
                overlap = min(right, col + 1.0) - max(left, float(col))
                if overlap > 0.0:
                    out[row, col] += overlap / subrows
                col += 1


# Separate serial and parallel drivers: a prange loop, even in a serial build, starts numba's
# thread pool, whose spinning threads slowed 2-process vector envs 4x on 2 cores.
@numba.njit(cache=True)
def _coverage_serial(verts, n_rows, n_cols, subrows, out):  # pragma: no cover - jit
    for p in range(verts.shape[0]):
        _coverage_one(verts[p], n_rows, n_cols, subrows, out[p])


@numba.njit(cache=True, parallel=True)
def _coverage_parallel(verts, n_rows, n_cols, subrows, out):  # pragma: no cover - jit
    for p in numba.prange(verts.shape[0]):
        _coverage_one(verts[p], n_rows, n_cols, subrows, out[p])


def polygon_coverage_batch(
    vertices: np.ndarray, shape: tuple[int, int], *, subrows: int = SUBROWS
) -> np.ndarray:
    """Fraction of each bin covered by each of a batch of polygons (even-odd rule).

    Args:
        vertices: ``(batch, n, 2)`` polygon vertices ``(u, v)`` in bin units: ``u`` in
            ``[0, n_cols]`` along columns, ``v`` in ``[0, n_rows]`` along rows.
        shape: ``(n_rows, n_cols)``.
        subrows: sub-rows sampled per bin row (coverage along a row is exact).

    Returns:
        float32 array ``(batch, n_rows, n_cols)`` with values in [0, 1].

    Example:
        >>> tri = np.array([[[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]]])
        >>> polygon_coverage_batch(tri, (2, 2), subrows=2).round(3)
        array([[[1. , 0.5],
                [0.5, 0. ]]], dtype=float32)
    """
    v = np.ascontiguousarray(vertices, dtype=np.float64)
    if v.ndim != 3 or v.shape[2] != 2 or v.shape[1] < 3:
        raise ValueError(f"vertices must have shape (batch, n >= 3, 2), got {v.shape}")
    n_rows, n_cols = shape
    out = np.zeros((v.shape[0], n_rows, n_cols), dtype=np.float32)
    kernel = _coverage_parallel if v.shape[0] >= 64 else _coverage_serial
    kernel(v, n_rows, n_cols, subrows, out)
    return np.minimum(out, 1.0, out=out)


def polygon_coverage(
    vertices: np.ndarray, shape: tuple[int, int], *, subrows: int = SUBROWS
) -> np.ndarray:
    """Fraction of each bin covered by a polygon (even-odd rule).

    Args:
        vertices: ``(n, 2)`` polygon vertices ``(u, v)`` in bin units: ``u`` in
            ``[0, n_cols]`` along columns, ``v`` in ``[0, n_rows]`` along rows.
        shape: ``(n_rows, n_cols)``.
        subrows: sub-rows sampled per bin row (coverage along a row is exact).

    Returns:
        float32 array ``shape`` with values in [0, 1].

    Example:
        >>> square = np.array([[0.5, 0.0], [1.5, 0.0], [1.5, 2.0], [0.5, 2.0]])
        >>> polygon_coverage(square, (2, 3))
        array([[0.5, 0.5, 0. ],
               [0.5, 0.5, 0. ]], dtype=float32)
    """
    return polygon_coverage_batch(np.asarray(vertices)[None], shape, subrows=subrows)[0]


def canonical_vertex_order(actions: np.ndarray) -> np.ndarray:
    """The same polygons with their vertices listed in one canonical order.

    A closed polygon is the same shape whichever vertex its list starts at and in whichever
    direction it runs: each polygon has ``2 * n`` listings (rotations and the reversal), all
    giving the same coverage. Learners that regress actions (behaviour cloning) see them as
    different targets, so this picks one listing per polygon: counter-clockwise by the
    shoelace signed area (in action coordinates, x right, y up; a zero-area polygon keeps
    its direction), starting at the vertex with the smallest x (then the smallest y). Only
    the order changes, never a vertex, so the polygon -- also a self-intersecting one -- and
    its coverage are exactly the same.

    Args:
        actions: ``(batch, 2 * n_vertices)`` or one action ``(2 * n_vertices,)``.

    Returns:
        float32 actions of the input's shape.

    Example:
        >>> square_cw = np.array([0.5, 0.5, 0.5, -0.5, -0.5, -0.5, -0.5, 0.5])
        >>> canonical_vertex_order(square_cw)
        array([-0.5, -0.5,  0.5, -0.5,  0.5,  0.5, -0.5,  0.5], dtype=float32)
    """
    a = np.asarray(actions, dtype=np.float32)
    flat = a.reshape(-1, a.shape[-1])
    if flat.shape[1] % 2 or flat.shape[1] < 6:
        raise ValueError(f"actions must have 2 * n_vertices >= 6 numbers, got {flat.shape[1]}")
    v = flat.reshape(len(flat), -1, 2)
    x, y = v[..., 0].astype(np.float64), v[..., 1].astype(np.float64)
    area = (x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(axis=1)
    v = np.where((area < 0)[:, None, None], v[:, ::-1], v)
    start = np.lexsort((v[..., 1], v[..., 0]), axis=-1)[:, 0]
    n = v.shape[1]
    order = (start[:, None] + np.arange(n)[None]) % n
    out = np.take_along_axis(v, order[..., None], axis=1)
    return out.reshape(a.shape).astype(np.float32)
