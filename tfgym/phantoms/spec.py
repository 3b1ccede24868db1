"""What a phantom is: its field of view, names and seeds, and the parameters a seed draws.

:func:`phantom_spec` draws every scanner parameter of a phantom and its :class:`Anatomy` into a
:class:`PhantomSpec`, the single source of truth that :func:`tfgym.phantoms.make_phantom`
renders. Each variation factor of :data:`tfgym.phantoms.factors.FACTORS` draws from its own
stream ``np.random.default_rng([seed, FACTORS[name].stream])``, so neutralising one factor
changes that factor only. The scanner-side factors, their real-world causes and ranges:

* ``fov`` -- the protocol's field of view (:class:`FieldOfView`): a dental cylinder of both
  jaws (35 %: 76-100 mm diameter x 60-90 mm high), a maxillofacial one from chin to orbits
  (30 %: 100-150 x 75-140 mm) or the whole head (35 %: the 256 x 256 x 208 mm box of the
  default phantom in a 256 mm cylinder); the small ones are centred on the jaws with a
  positioning error of up to 3 / 5 / 5 mm (x / y / z), and the head is truncated by them.
* ``noise`` -- dose: quantum noise of 10-120 HU (log-uniform; standard deviation at the centre
  of the head, at the volume's voxel size), with photon starvation behind metal.
* ``scatter`` -- residual scatter: 0-25 % cupping in a whole-head FOV (less in smaller ones)
  and a low-frequency shading of up to +-50 % of it, plus up to 5 % shading towards the top
  and bottom of the cone.
* ``beam_hardening`` -- the uncorrected part of a polychromatic spectrum: dark bands between
  dense bones of up to about -150 HU, cupping inside thick bone, streaks around metal.
* ``kernel`` -- the reconstruction kernel: Gaussian of 0.4 (sharp) to 1.2 mm (smooth), sharp
  kernels with up to 60 % edge overshoot.
* ``grey_mapping`` -- the export's grey values (:class:`GreyMapping`): 12-, 14- or 16-bit
  integers, signed HU-like (30 %, gain 0.85-1.15, offset -80..80, clipped at the type's range)
  or unsigned uncalibrated (70 %) with a window whose dark end is at -1250..-850 HU (air
  clipped in a third of them), whose bright end saturates teeth and metal (2300-4500 HU, 40 %)
  or leaves headroom (6000-24000 HU), and a gamma of 0.6-1.6 on the window in 60 % of them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from tfgym.phantoms.anatomy import Anatomy, draw_anatomy
from tfgym.phantoms.factors import FACTORS, check_neutral
from tfgym.volume import Tissue

__all__ = [
    "FOV_KINDS",
    "FOV_MM",
    "HELDOUT_PHANTOMS",
    "PHANTOM_SEEDS",
    "TRAIN_PHANTOMS",
    "Anatomy",
    "FieldOfView",
    "GreyMapping",
    "PhantomSpec",
    "phantom_name",
    "phantom_shape",
    "phantom_spec",
]

FOV_MM: tuple[float, float, float] = (256.0, 256.0, 208.0)
"""The whole-head field of view in mm, ``(z, y, x)`` order (the ``fov`` factor's neutral)."""
FOV_KINDS = ("dental", "maxillofacial", "head")
"""Kinds of field of view, from the smallest to the whole head."""

PHANTOM_SEEDS = range(48)
"""Seeds of the two fixed benchmark sets: train 0-31, held-out 32-47."""
TRAIN_PHANTOMS: tuple[str, ...] = tuple(f"phantom-{s:02d}" for s in PHANTOM_SEEDS[:32])
HELDOUT_PHANTOMS: tuple[str, ...] = tuple(f"phantom-{s:02d}" for s in PHANTOM_SEEDS[32:])

# Expected HU range of each tissue after the scanner's artefacts (noise excluded) at voxel
# sizes of 1, 2, 4 and 8 mm: about the 3rd to the 99th percentile of its voxels over the
# train phantoms. Partial volume pulls thin and small dense structures down at coarse voxels;
# soft tissue and air reach up by the kernel's overshoot at bone and the truncation rim of
# small FOVs; metal reads its real attenuation (tfgym.phantoms.scanner), above its painted HU.
_RANGE_VOXEL_MM = (1.0, 2.0, 4.0, 8.0)
_NOMINAL_RANGE: dict[Tissue, tuple[tuple[float, float], ...]] = {
    Tissue.AIR: ((-1150.0, -250.0), (-1150.0, -200.0), (-1100.0, -300.0), (-1030.0, -400.0)),
    Tissue.SOFT_TISSUE: ((-330.0, 900.0), (-310.0, 900.0), (-290.0, 700.0), (-330.0, 420.0)),
    Tissue.BONE: ((120.0, 1650.0), (150.0, 1650.0), (130.0, 1300.0), (110.0, 850.0)),
    Tissue.TEETH: ((800.0, 2700.0), (750.0, 2300.0), (720.0, 1800.0), (650.0, 1500.0)),
    Tissue.METAL: ((2500.0, 24000.0), (2000.0, 22000.0), (1500.0, 19000.0), (1200.0, 11000.0)),
}


def phantom_name(seed: int) -> str:
    """Scene name of a phantom, e.g. ``phantom_name(3) == "phantom-03"``."""
    return f"phantom-{seed:02d}"


def phantom_shape(size: int, extent_mm: tuple[float, float, float] = FOV_MM) -> tuple[int, ...]:
    """Array shape ``(nz, ny, nx)`` of a field of view whose longest side is ``size`` voxels.

    Args:
        size: voxels along the longest side.
        extent_mm: the field of view's box ``(z, y, x)`` in mm (default: the whole head).

    Returns:
        The shape; voxels are isotropic cubes of ``max(extent_mm) / size`` mm.

    Example:
        >>> phantom_shape(64), phantom_shape(64, (80.0, 100.0, 100.0))
        ((64, 64, 52), (51, 64, 64))
    """
    h = max(extent_mm) / size
    return tuple(max(1, round(e / h)) for e in extent_mm)


@dataclass(frozen=True)
class FieldOfView:
    """The reconstructed field of view: a cylinder about the scanner's vertical axis.

    Inside the cylinder the scanner reconstructs the head; outside it writes its background
    value (:attr:`GreyMapping.background`) and the labels there are AIR (no data). The volume
    is the cylinder's bounding box, except for the whole head, whose box is cut to 208 mm from
    ear to ear (the head's width) as in the default phantom.

    Attributes:
        kind: one of :data:`FOV_KINDS`.
        diameter: the cylinder's diameter in mm.
        height: the cylinder's height in mm.
        shift_mm: positioning error ``(x, y, z)`` in mm of the cylinder's centre.
    """

    kind: str
    diameter: float
    height: float
    shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def extent_mm(self) -> tuple[float, float, float]:
        """The volume's box ``(z, y, x)`` in mm."""
        if self.kind == "head":
            return FOV_MM
        return (self.height, self.diameter, self.diameter)

    def shape(self, size: int) -> tuple[int, int, int]:
        """Array shape ``(nz, ny, nx)`` at ``size`` voxels along the longest side."""
        return phantom_shape(size, self.extent_mm)  # type: ignore[return-value]

    def voxel_mm(self, size: int) -> float:
        """Voxel size in mm at ``size`` voxels along the longest side."""
        return max(self.extent_mm) / size


@dataclass(frozen=True)
class GreyMapping:
    """The scanner's grey values: a window of HU mapped onto an integer range, with a gamma.

    A value ``hu`` becomes ``vmin + (vmax - vmin) * u ** gamma`` with
    ``u = (hu - lo_hu) / (hi_hu - lo_hu)`` (odd power for ``u < 0``), rounded to an integer
    and clipped to ``[vmin, vmax]`` when ``integer`` is set: what lies below ``lo_hu`` or above
    ``hi_hu`` saturates.

    Attributes:
        lo_hu: HU mapped to ``vmin``.
        hi_hu: HU mapped to ``vmax``.
        vmin: the smallest grey value (also written outside the reconstructed cylinder).
        vmax: the largest grey value.
        gamma: exponent on the normalised window (1: linear).
        bits: bits of the stored integers, 0 for float values.
    """

    lo_hu: float = -1024.0
    hi_hu: float = 3071.0
    vmin: float = -1024.0
    vmax: float = 3071.0
    gamma: float = 1.0
    bits: int = 0

    @property
    def integer(self) -> bool:
        """Whether values are quantised to integers and clipped to ``[vmin, vmax]``."""
        return self.bits > 0

    @property
    def gain(self) -> float:
        """Grey values per HU of the linear part (at ``gamma == 1``)."""
        return (self.vmax - self.vmin) / (self.hi_hu - self.lo_hu)

    @property
    def background(self) -> float:
        """The value the scanner writes outside its reconstructed cylinder.

        The smallest value, but no lower than -1024: signed exports pad with it as CT does.
        """
        return max(self.vmin, -1024.0)

    def to_grey(self, hu: np.ndarray | float) -> np.ndarray:
        """Map HU-like values to grey values (float32 array of the same shape).

        Example:
            >>> GreyMapping().to_grey(np.array([-1000.0, 40.0])).tolist()
            [-1000.0, 40.0]
        """
        u = (np.asarray(hu, dtype=np.float32) - np.float32(self.lo_hu)) / np.float32(
            self.hi_hu - self.lo_hu
        )
        if self.gamma != 1.0:
            u = np.sign(u) * np.abs(u) ** np.float32(self.gamma)
        grey = np.float32(self.vmin) + np.float32(self.vmax - self.vmin) * u
        if self.integer:
            grey = np.clip(np.rint(grey), self.vmin, self.vmax)
        return grey.astype(np.float32, copy=False)


@dataclass(frozen=True)
class PhantomSpec:
    """Everything that :func:`make_phantom` renders for one seed (cheap to compute).

    Attributes:
        seed: the phantom's seed.
        neutral: the variation factors set to their neutral value.
        fov: the field of view.
        mapping: the grey-value mapping.
        noise: standard deviation of the quantum noise at the centre of the head, in HU.
        kernel: standard deviation of the reconstruction kernel's Gaussian, in mm.
        sharpen: edge overshoot of a sharp kernel (unsharp-mask weight, 0 for none).
        scatter: residual scatter, as a fraction of the unattenuated beam, in this FOV.
        shading: relative low-frequency modulation of the scatter across the detector.
        cone_shading: relative loss of attenuation at the top and bottom of the cone.
        beam_hardening: coefficient of the quadratic beam-hardening error of dense material.
        has_metal: whether the phantom has metal restorations (and metal streaks).
        anatomy: the seed's :class:`Anatomy`.
    """

    seed: int
    neutral: frozenset[str]
    fov: FieldOfView
    mapping: GreyMapping
    noise: float
    kernel: float
    sharpen: float
    scatter: float
    shading: float
    cone_shading: float
    beam_hardening: float
    has_metal: bool
    anatomy: Anatomy = field(repr=False)

    @property
    def name(self) -> str:
        """The scene name, ``"phantom-SS"``."""
        return phantom_name(self.seed)

    def shape(self, size: int) -> tuple[int, int, int]:
        """Array shape ``(nz, ny, nx)`` of the phantom made at ``size``."""
        return self.fov.shape(size)

    def to_grey(self, hu: np.ndarray | float) -> np.ndarray:
        """Map HU-like values to this scan's grey values (:meth:`GreyMapping.to_grey`)."""
        return self.mapping.to_grey(hu)

    def tissue_range(self, tissue: Tissue | int, *, size: int = 64) -> tuple[float, float]:
        """Expected grey-value range of a tissue in this scan.

        The nominal HU range of the tissue at the volume's voxel size (partial volume and the
        scanner's artefacts included) is scaled by the patient's bone density for bone, widened
        by three noise standard deviations and mapped through the grey-value mapping. It is
        what a hand-made polygon for that tissue would be built from; it covers most of the
        tissue's voxels, and neighbouring tissues' ranges overlap (more so at coarse voxels).

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
            >>> bool(spec.tissue_range(Tissue.SOFT_TISSUE)[1] <= hi)
            True
        """
        try:
            tissue = Tissue(tissue)
        except ValueError:
            valid = ", ".join(f"{t.name}={t.value}" for t in Tissue)
            raise ValueError(f"unknown tissue {tissue!r}; valid: {valid}") from None
        table = np.array(_NOMINAL_RANGE[tissue])
        grid = np.log2(_RANGE_VOXEL_MM)
        at = np.clip(np.log2(self.fov.voxel_mm(size)), grid[0], grid[-1])
        lo, hi = (float(np.interp(at, grid, table[:, k])) for k in (0, 1))
        if tissue == Tissue.BONE:
            lo, hi = lo * self.anatomy.bone_density, hi * self.anatomy.bone_density
        grey = self.to_grey(np.array([lo - 3.0 * self.noise, hi + 3.0 * self.noise]))
        return float(grey[0]), float(grey[1])


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"phantom seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _draw_fov(rng: np.random.Generator) -> FieldOfView:
    """The field of view: kind, cylinder and positioning error (always 6 draws)."""
    u = rng.random(6)
    shift = tuple(float(v) for v in (2.0 * u[3:] - 1.0) * (3.0, 5.0, 5.0))
    if u[0] < 0.35:
        return FieldOfView("dental", 76.0 + 24.0 * u[1], 60.0 + 30.0 * u[2], shift)  # type: ignore[arg-type]
    if u[0] < 0.65:
        return FieldOfView("maxillofacial", 100.0 + 50.0 * u[1], 75.0 + 65.0 * u[2], shift)  # type: ignore[arg-type]
    return FieldOfView("head", FOV_MM[1], FOV_MM[0])


def _draw_mapping(rng: np.random.Generator) -> GreyMapping:
    """The scanner's export: signed HU-like or unsigned uncalibrated (always 7 draws)."""
    u = [float(v) for v in rng.random(7)]
    bits = (12, 14, 16)[int(np.searchsorted([0.4, 0.6], u[1]))]
    if u[0] < 0.3:  # HU-like signed values, with an imperfect calibration
        gain, offset = 0.85 + 0.3 * u[2], -80.0 + 160.0 * u[3]
        top = 3071.0 if bits == 12 else 2.0 ** (bits - 1) - 1.0  # 12 bit: CT's -1024..3071
        vmin = -1024.0 if bits == 12 else -(2.0 ** (bits - 1))
        return GreyMapping((vmin - offset) / gain, (top - offset) / gain, vmin, top, 1.0, bits)
    lo = -1250.0 + 400.0 * u[2]
    if u[3] < 0.4:  # the bright end saturates teeth and metal
        hi = 2300.0 + 2200.0 * u[4]
    else:
        hi = float(np.exp(np.log(6000.0) + np.log(4.0) * u[4]))
    gamma = 1.0 if u[5] < 0.4 else float(np.exp(np.log(0.6) + np.log(1.6 / 0.6) * u[6]))
    return GreyMapping(lo, hi, 0.0, 2.0**bits - 1.0, gamma, bits)


# Residual scatter (a fraction of the unattenuated beam) at the top of the scatter factor's
# range in a whole-head FOV: a scatter-to-primary ratio of about 1 behind the thickest part of
# the head, which lowers the attenuation at its centre by 20-25 % (10 % more than at its
# periphery). Smaller FOVs irradiate less and scatter less.
_SCATTER_MAX = 0.022
# Quadratic beam-hardening coefficient at the top of its range: about -150 HU between the
# petrous bones.
_BEAM_HARDENING_MAX = 0.2


def phantom_spec(
    seed: int, *, metal: bool | None = None, neutral: Collection[str] = ()
) -> PhantomSpec:
    """The scanner and anatomy parameters of phantom ``seed`` (no volume is generated).

    Args:
        seed: non-negative integer.
        metal: None to let the metal factor decide (about a third of the seeds have no
            restoration), or force metal restorations on (True) or off (False).
        neutral: names of variation factors (:data:`tfgym.phantoms.factors.FACTORS`) set to
            their neutral value; every other factor is drawn as without it.

    Returns:
        The :class:`PhantomSpec`.

    Raises:
        ValueError: ``seed`` is not a non-negative integer, or ``neutral`` names an unknown
            factor.

    Example:
        >>> spec = phantom_spec(3)
        >>> spec.name, spec == phantom_spec(3)
        ('phantom-03', True)
        >>> phantom_spec(3, neutral={"noise"}).noise
        0.0
    """
    seed = _check_seed(seed)
    names = check_neutral(neutral)

    def stream(name: str) -> np.random.Generator | None:
        return None if name in names else np.random.default_rng([seed, FACTORS[name].stream])

    rng = stream("fov")
    fov = FieldOfView("head", FOV_MM[1], FOV_MM[0]) if rng is None else _draw_fov(rng)
    rng = stream("grey_mapping")
    mapping = GreyMapping() if rng is None else _draw_mapping(rng)
    rng = stream("noise")
    noise = 0.0 if rng is None else _log_uniform(rng, 10.0, 120.0)
    rng = stream("kernel")
    kernel, sharpen = (0.8, 0.0) if rng is None else (rng.uniform(0.4, 1.2), rng.uniform(0, 0.6))
    sharpen *= float(np.clip((0.8 - kernel) / 0.4, 0.0, 1.0))
    rng = stream("scatter")
    scatter, shading, cone = (0.0, 0.0, 0.0) if rng is None else rng.uniform(0, 1, 3)
    # Irradiated volume relative to the whole head's: the scatter's share grows with it.
    irradiated = (fov.diameter * fov.height / (FOV_MM[0] * FOV_MM[1])) ** 0.7
    rng = stream("beam_hardening")
    beam_hardening = 0.0 if rng is None else rng.uniform(0.0, _BEAM_HARDENING_MAX)
    anatomy = draw_anatomy(seed, metal=metal, neutral=names & {"patient", "metal", "aids"})
    return PhantomSpec(
        seed=seed,
        neutral=names,
        fov=fov,
        mapping=mapping,
        noise=float(noise),
        kernel=float(kernel),
        sharpen=float(sharpen),
        scatter=float(scatter * _SCATTER_MAX * irradiated),
        shading=float(0.5 * shading),
        cone_shading=float(0.05 * cone),
        beam_hardening=float(beam_hardening),
        has_metal=bool(anatomy.fillings),
        anatomy=anatomy,
    )
