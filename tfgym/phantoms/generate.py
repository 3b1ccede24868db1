"""Generating a phantom volume: paint the seed's head, then scan it."""

from __future__ import annotations

import numpy as np

from tfgym.phantoms.head import Head
from tfgym.phantoms.scanner import scan
from tfgym.phantoms.spec import FOV_MM, phantom_shape, phantom_spec
from tfgym.volume import Volume

__all__ = ["make_phantom"]


def make_phantom(seed: int, *, size: int = 64, metal: bool | None = None) -> Volume:
    """Generate the CBCT head phantom of ``seed``.

    Args:
        seed: non-negative integer; the phantom is fully determined by ``seed`` and ``size``.
        size: voxels along the longest side (z and y); x has ``round(size * 13 / 16)`` voxels.
            The spacing is isotropic, ``256 / size`` mm.
        metal: None to let the seed decide, True/False to force metal restorations on/off.

    Returns:
        A :class:`tfgym.volume.Volume` named ``"phantom-SS"`` whose ``data`` holds the scan's
        uncalibrated grey values and whose ``labels`` hold the noise-free anatomy.

    Raises:
        ValueError: ``seed`` is negative or ``size`` is smaller than 16.

    Example:
        >>> vol = make_phantom(5, size=32)
        >>> vol.name, vol.shape, vol.spacing
        ('phantom-05', (32, 32, 26), (8.0, 8.0, 8.0))
    """
    spec = phantom_spec(seed, metal=metal)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"phantom size must be an integer >= 16, got {size!r}")
    size = int(size)
    head = Head(spec, phantom_shape(size), FOV_MM)
    head.build()
    texture = np.random.default_rng([spec.seed, 1])
    noise = np.random.default_rng([spec.seed, 2, size])
    data = scan(spec, head, texture, noise)
    return Volume(data, (head.h,) * 3, spec.name, head.lab)
