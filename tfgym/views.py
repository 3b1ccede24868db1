"""Camera view presets shared by tfgym's renderer and the VTK reference renderer.

World axes ``(x, y, z)`` are the volume's index axes 2, 1, 0 (numpy ``(z, y, x)`` order) in the
LPS convention of :mod:`tfgym.volume`: the face is at low y, the top of the head at high z.
A view is a direction of projection (dop) and a view-up vector; image right is
``dop x up`` and image row 0 is the top (+up). Cameras are orthographic. Lighting of both
renderers: a headlight along the view direction, ``ambient + diffuse * |n . l|``, no specular.
"""

from __future__ import annotations

import numpy as np

__all__ = ["AMBIENT", "DIFFUSE", "VIEWS", "VIEW_ALIASES", "view_geometry", "view_vectors"]

VIEWS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "front": ((0, 1, 0), (0, 0, 1)),
    "back": ((0, -1, 0), (0, 0, 1)),
    "left": ((-1, 0, 0), (0, 0, 1)),
    "right": ((1, 0, 0), (0, 0, 1)),
    "top": ((0, 0, -1), (0, -1, 0)),
    "bottom": ((0, 0, 1), (0, -1, 0)),
}
VIEW_ALIASES = {"side": "left"}
AMBIENT, DIFFUSE = 0.3, 0.7


def view_vectors(view: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Direction of projection and view-up of a preset (aliases resolved).

    Raises:
        ValueError: unknown view (the message lists the valid ones).

    Example:
        >>> view_vectors("side")
        ((-1, 0, 0), (0, 0, 1))
    """
    name = VIEW_ALIASES.get(view, view)
    if name not in VIEWS:
        raise ValueError(f"unknown view {view!r}; valid: {sorted([*VIEWS, *VIEW_ALIASES])}")
    return VIEWS[name]


def _axis_sign(v: tuple[int, ...]) -> tuple[int, int]:
    """Array axis and sign of a world-axis unit vector."""
    world = int(np.flatnonzero(v)[0])
    return 2 - world, int(np.sign(v[world]))


def view_geometry(view: str) -> tuple[tuple[int, int, int], tuple[bool, bool, bool]]:
    """Array-axis permutation ``(depth, rows, cols)`` and flips for a view preset.

    Depth index 0 is nearest the camera, row 0 is at +up and column 0 at -right.

    Raises:
        ValueError: unknown view (the message lists the valid ones).

    Example:
        >>> view_geometry("front")
        ((1, 0, 2), (False, True, False))
    """
    dop, up = view_vectors(view)
    right = tuple(int(c) for c in np.cross(dop, up))
    d_axis, d_sign = _axis_sign(dop)
    u_axis, u_sign = _axis_sign(up)
    r_axis, r_sign = _axis_sign(right)
    return (d_axis, u_axis, r_axis), (d_sign < 0, u_sign > 0, r_sign < 0)
