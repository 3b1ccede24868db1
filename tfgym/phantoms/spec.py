"""What a phantom is: its field of view, names and seeds, and the parameters a seed draws.

:func:`phantom_spec` draws every scanner and anatomy parameter of a phantom from its seed
(``np.random.default_rng(seed)``) into a :class:`PhantomSpec` with its :class:`Anatomy`:
the single source of truth that :func:`tfgym.phantoms.make_phantom` renders.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tfgym.phantoms.anatomy import Anatomy, draw_anatomy
from tfgym.phantoms.hu import HU_AIR
from tfgym.volume import Tissue

__all__ = [
    "FOV_MM",
    "HELDOUT_PHANTOMS",
    "PHANTOM_SEEDS",
    "TRAIN_PHANTOMS",
    "Anatomy",
    "PhantomSpec",
    "phantom_name",
    "phantom_shape",
    "phantom_spec",
]

FOV_MM: tuple[float, float, float] = (256.0, 256.0, 208.0)
"""Field of view in mm, ``(z, y, x)`` order."""

PHANTOM_SEEDS = range(48)
"""Seeds of the two fixed benchmark sets: train 0-31, held-out 32-47."""
TRAIN_PHANTOMS: tuple[str, ...] = tuple(f"phantom-{s:02d}" for s in PHANTOM_SEEDS[:32])
HELDOUT_PHANTOMS: tuple[str, ...] = tuple(f"phantom-{s:02d}" for s in PHANTOM_SEEDS[32:])

# Expected HU range of each tissue before cupping, noise, gain and offset at sizes 64, 128
# and 256: about the 5th to the 99th percentile of its voxels over the default phantoms.
# Partial volume (the blur is 0.7-1.2 voxels) pulls thin and small dense structures down at
# coarse sizes. PhantomSpec.tissue_range interpolates in log2(size) and widens by the scan's
# cupping and noise.
_RANGE_SIZES = (64.0, 128.0, 256.0)
_NOMINAL_RANGE: dict[Tissue, tuple[tuple[float, float], ...]] = {
    Tissue.AIR: ((-1000.0, -500.0), (-1000.0, -550.0), (-1000.0, -600.0)),
    Tissue.SOFT_TISSUE: ((-350.0, 330.0), (-300.0, 330.0), (-200.0, 300.0)),
    Tissue.BONE: ((120.0, 1250.0), (330.0, 1250.0), (500.0, 1250.0)),
    Tissue.TEETH: ((500.0, 3000.0), (850.0, 3000.0), (1100.0, 3000.0)),
    Tissue.METAL: ((1200.0, 17000.0), (2400.0, 17000.0), (3500.0, 17000.0)),
}


def phantom_name(seed: int) -> str:
    """Scene name of a phantom, e.g. ``phantom_name(3) == "phantom-03"``."""
    return f"phantom-{seed:02d}"


def phantom_shape(size: int) -> tuple[int, int, int]:
    """Array shape ``(nz, ny, nx)`` of a phantom whose longest side is ``size`` voxels.

    Example:
        >>> phantom_shape(64)
        (64, 64, 52)
    """
    return (size, size, round(size * FOV_MM[2] / FOV_MM[0]))


@dataclass(frozen=True)
class PhantomSpec:
    """Everything that :func:`make_phantom` renders for one seed (cheap to compute).

    Attributes:
        seed: the phantom's seed.
        gain: scanner units per HU.
        offset: scanner units at 0 HU.
        has_metal: whether the phantom has metal restorations (and metal streaks).
        noise: standard deviation of the image noise, in HU.
        cupping: relative drop of attenuation at the centre of the field of view.
        blur: standard deviation of the partial-volume blur, in voxels.
        clip: ``(lo, hi)`` range the scanner clips its unsigned values to, or None.
        anatomy: the seed's :class:`Anatomy`.
    """

    seed: int
    gain: float
    offset: float
    has_metal: bool
    noise: float
    cupping: float
    blur: float
    clip: tuple[float, float] | None
    anatomy: Anatomy = field(repr=False)

    @property
    def name(self) -> str:
        """The scene name, ``"phantom-SS"``."""
        return phantom_name(self.seed)

    def to_grey(self, hu: np.ndarray | float) -> np.ndarray:
        """Map HU-like values to this scan's uncalibrated grey values (gain, offset, clip)."""
        grey = np.asarray(hu, dtype=np.float32) * np.float32(self.gain) + np.float32(self.offset)
        if self.clip is not None:
            grey = np.clip(grey, self.clip[0], self.clip[1])
        return grey

    def tissue_range(self, tissue: Tissue | int, *, size: int = 64) -> tuple[float, float]:
        """Expected grey-value range of a tissue in this scan's uncalibrated units.

        The nominal HU range of the tissue at the volume's size (partial volume included) is
        widened by the scan's cupping and by three noise standard deviations, then mapped
        through gain, offset and clipping. It is what a hand-made polygon or an expert transfer
        function for that tissue would be built from; it covers about 90 % or more of the
        tissue's voxels, and neighbouring tissues' ranges overlap (more so at coarse sizes).

        Args:
            tissue: a :class:`tfgym.volume.Tissue`.
            size: the ``size`` the phantom was made with (voxels along its longest side).

        Returns:
            ``(lo, hi)`` with ``lo <= hi``.

        Raises:
            ValueError: ``tissue`` is not a Tissue value.

        Example:
            >>> spec = phantom_spec(0)
            >>> lo, hi = spec.tissue_range(Tissue.BONE)
            >>> bool(spec.tissue_range(Tissue.SOFT_TISSUE)[1] < hi)
            True
        """
        try:
            tissue = Tissue(tissue)
        except ValueError:
            valid = ", ".join(f"{t.name}={t.value}" for t in Tissue)
            raise ValueError(f"unknown tissue {tissue!r}; valid: {valid}") from None
        table = np.array(_NOMINAL_RANGE[tissue])
        at = np.clip(np.log2(size), np.log2(_RANGE_SIZES[0]), np.log2(_RANGE_SIZES[-1]))
        lo, hi = (float(np.interp(at, np.log2(_RANGE_SIZES), table[:, k])) for k in (0, 1))
        if tissue == Tissue.BONE:
            lo, hi = lo * self.anatomy.bone_density, hi * self.anatomy.bone_density
        lo = (lo - HU_AIR) * (1.0 - self.cupping) + HU_AIR - 3.0 * self.noise
        hi = hi + 3.0 * self.noise
        grey = self.to_grey(np.array([lo, hi]))
        return float(grey[0]), float(grey[1])


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"phantom seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def phantom_spec(seed: int, *, metal: bool | None = None) -> PhantomSpec:
    """The scanner and anatomy parameters of phantom ``seed`` (no volume is generated).

    Args:
        seed: non-negative integer; ``np.random.default_rng(seed)`` draws every parameter.
        metal: None to let the seed decide (seeds that are 2 modulo 3 have metal), or force
            metal restorations on (True) or off (False).

    Returns:
        The :class:`PhantomSpec`.

    Raises:
        ValueError: ``seed`` is not a non-negative integer.

    Example:
        >>> spec = phantom_spec(3)
        >>> spec.name, spec == phantom_spec(3)
        ('phantom-03', True)
    """
    seed = _check_seed(seed)
    rng = np.random.default_rng(seed)
    gain = float(rng.uniform(0.6, 1.6))
    clipped = bool(rng.random() < 0.5)
    if clipped:  # unsigned scanners put air near 0, just above or below
        offset = float(np.clip(1000.0 * gain + rng.uniform(-300.0, 400.0), -500.0, 1500.0))
    else:
        offset = float(rng.uniform(-500.0, 1500.0))
    noise = float(rng.uniform(12.0, 60.0))
    cupping = float(rng.uniform(0.03, 0.2))
    blur = float(rng.uniform(0.7, 1.2))
    # A third of the seeds (2, 5, 8, ...) have metal: train and held-out sets both get some.
    has_metal = seed % 3 == 2 if metal is None else bool(metal)
    anatomy = draw_anatomy(seed)
    clip = None
    if clipped:  # unsigned integers just wide enough for the teeth (metal may saturate)
        top = gain * (_NOMINAL_RANGE[Tissue.TEETH][-1][1] + 3.0 * noise) + offset
        bits = next(b for b in (12, 14, 16) if top < 2**b - 1)
        clip = (0.0, float(2**bits - 1))
    return PhantomSpec(seed, gain, offset, has_metal, noise, cupping, blur, clip, anatomy)
