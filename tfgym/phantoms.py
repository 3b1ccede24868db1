"""Procedural CBCT head phantoms: deterministic from a seed, with ground-truth tissue labels.

A phantom is an adult head in a cone-beam CT field of view, built from signed distance
functions (ellipsoids, capsules, cones, swept cross-sections along the dental arches) that
are evaluated, vectorised, on the voxel grid. Everything is decided by ``seed`` through
:func:`phantom_spec` -- the single source of truth that :func:`make_phantom` renders -- so the
same seed and size give identical arrays on any run.

Geometry:
    The field of view is 256 x 256 x 208 mm in ``(z, y, x)``; the voxels are isotropic with
    spacing ``256 / size`` mm, so the array has shape ``(size, size, round(size * 13 / 16))``
    (the head is narrower from ear to ear than from nose to occiput or from vertex to neck).
    The head (vertex to chin 205-230 mm) sits upright with its top just below the top of the
    field of view and the neck leaving through the bottom; axes follow DICOM LPS (x to the
    patient's left, y posterior -- the face is at low y -- and z superior).

Anatomy (``Volume.labels``, noise-free, before any artefact):
    * AIR: outside, nasal cavity and nostrils, paranasal sinuses (maxillary, frontal,
      sphenoid, ethmoid cells), pharyngeal airway, ear canals, the gap of a slightly open mouth.
    * SOFT_TISSUE: skin, subcutaneous fat, muscle, tongue, brain (grey and white matter,
      ventricles, cerebellum, brainstem, spinal cord), eyes and orbital fat.
    * BONE: cranium (a shell of two cortical tables and diploe over a thicker skull base with
      foramen magnum, petrous ridges and mastoids), facial skeleton (maxilla, zygomas and
      arches, orbits, nasal bones and septum, hard palate), mandible (a U-shaped body with
      rami up to the skull base), the cervical spine down to the bottom of the field of view
      and the hyoid.
    * TEETH: up to 32 individual teeth (crown of enamel over dentin, one to three roots) in the
      maxillary and mandibular alveolar bone; which teeth are present varies with the seed.
    * METAL: amalgam fillings or metal crowns on some premolars and molars, in the phantoms
      whose seed is 2 modulo 3 (a third; 2, 5, 8, 11 of the train set and 14 of the held-out
      set), unless ``metal`` forces them on or off.

Grey values:
    HU-like values (air -1000, fat -100, brain ~30, soft tissue ~45, bone 700-1200, teeth
    1900-2600, amalgam 16000 -- metal attenuates far more than the 3071 HU where a clinical
    scale ends, and it must stay the brightest after partial volume at coarse sizes) are
    blurred (partial volume, Gaussian of 0.7-1.2 voxels), cupped toward the centre of the
    field of view, crossed by bright and dark streaks in the axial slices through metal, made
    noisy, and finally mapped to uncalibrated scanner units ``gain * hu + offset`` (optionally
    clipped to an unsigned 12-, 14- or 16-bit range), so the joint histogram moves from scan
    to scan as it does between real scanners.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from tfgym.volume import Tissue, Volume

__all__ = [
    "FOV_MM",
    "HELDOUT_PHANTOMS",
    "PHANTOM_SEEDS",
    "TRAIN_PHANTOMS",
    "Anatomy",
    "PhantomSpec",
    "make_phantom",
    "phantom_name",
    "phantom_shape",
    "phantom_spec",
]

FOV_MM: tuple[float, float, float] = (256.0, 256.0, 208.0)
"""Field of view in mm, ``(z, y, x)`` order."""

PHANTOM_SEEDS = range(16)
TRAIN_PHANTOMS: tuple[str, ...] = tuple(f"phantom-{s:02d}" for s in PHANTOM_SEEDS[:12])
HELDOUT_PHANTOMS: tuple[str, ...] = tuple(f"phantom-{s:02d}" for s in PHANTOM_SEEDS[12:])

# Nominal HU-like values.
_HU_AIR, _HU_FAT, _HU_SOFT, _HU_SKIN = -1000.0, -100.0, 45.0, 35.0
_HU_GREY, _HU_WHITE, _HU_CSF = 37.0, 29.0, 8.0
_HU_CORTICAL, _HU_CANCELLOUS = 1200.0, 700.0
_HU_ENAMEL, _HU_DENTIN, _HU_METAL = 2600.0, 1900.0, 16000.0

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
_MISSING_P = (0.02, 0.03, 0.01, 0.07, 0.07, 0.1, 0.07, 0.5)  # chance each tooth is absent

# Skull: outer table semi-axes (x, y, z) in mm of the canonical (scale 1) head; its centre is
# the origin of the head frame. The occlusal plane of the teeth is at z = -92.
_SKULL = (70.0, 91.0, 80.0)
_Z_OCCLUSAL = -92.0


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
class Anatomy:
    """Seed-dependent anatomy of one phantom (lengths in mm of the canonical head).

    Attributes:
        scale: head size factors ``(x, y, z)`` applied to the canonical head.
        pose_deg: rotation ``(yaw about z, pitch about x, roll about y)`` in degrees.
        shift_mm: translation ``(x, y, z)`` in mm from the nominal position.
        skull: thickness of the cranial vault.
        scalp: thickness of the scalp.
        fat: thickness of the subcutaneous fat of face and neck.
        arch_width: half width of the dental arch at the second molars.
        arch_depth: depth of the dental arch from incisors to second molars.
        arch_alpha: arch shape, 1 parabolic (tapered) .. 0 quartic (square).
        overjet: how far the lower incisors sit behind the upper ones.
        mouth_gap: opening between upper and lower teeth (0: closed).
        chin: forward projection of the chin.
        gonial_width: half the distance between the angles of the mandible.
        gonial_y: y of the angles of the mandible.
        airway: width factor of the pharyngeal airway.
        sinus_fluid: fraction of the maxillary sinus height filled with fluid.
        teeth: presence of each tooth, shape ``(jaw, side, 8)`` flattened; jaw 0 upper, 1
            lower; side 0 right (low x), 1 left; index 0 central incisor .. 7 third molar.
        fillings: ``(jaw, side, tooth, kind)`` of each metal restoration; kind 0 occlusal
            filling, 1 mesio-occluso-distal filling, 2 full metal crown.
        tooth_jitter: per tooth ``(mesial shift, buccal shift, rotation deg, size factor - 1)``,
            shape ``(32, 4)`` flattened.
    """

    scale: tuple[float, float, float]
    pose_deg: tuple[float, float, float]
    shift_mm: tuple[float, float, float]
    skull: float
    scalp: float
    fat: float
    arch_width: float
    arch_depth: float
    arch_alpha: float
    overjet: float
    mouth_gap: float
    chin: float
    gonial_width: float
    gonial_y: float
    airway: float
    sinus_fluid: float
    teeth: tuple[bool, ...] = field(repr=False)
    fillings: tuple[tuple[int, int, int, int], ...] = field(repr=False)
    tooth_jitter: tuple[float, ...] = field(repr=False)


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
        bone_density: factor on the HU of bone.
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
    bone_density: float
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
            lo, hi = lo * self.bone_density, hi * self.bone_density
        lo = (lo - _HU_AIR) * (1.0 - self.cupping) + _HU_AIR - 3.0 * self.noise
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
    bone_density = float(rng.uniform(0.88, 1.1))
    anatomy = _draw_anatomy(rng)
    clip = None
    if clipped:  # unsigned integers just wide enough for the teeth (metal may saturate)
        top = gain * (_NOMINAL_RANGE[Tissue.TEETH][-1][1] + 3.0 * noise) + offset
        bits = next(b for b in (12, 14, 16) if top < 2**b - 1)
        clip = (0.0, float(2**bits - 1))
    return PhantomSpec(
        seed, gain, offset, has_metal, noise, cupping, blur, clip, bone_density, anatomy
    )


def _draw_anatomy(rng: np.random.Generator) -> Anatomy:
    s = rng.uniform(0.9, 1.0)
    scale = (s * rng.uniform(0.95, 1.04), s * rng.uniform(0.97, 1.03), s * rng.uniform(0.97, 1.02))
    teeth = rng.random((2, 2, 8)) >= np.array(_MISSING_P)
    fillings = []
    candidates = [(j, sd, i) for j in range(2) for sd in range(2) for i in range(3, 8)]
    candidates = [c for c in candidates if teeth[c]]
    if not candidates:  # keep one molar so that forced metal always has a tooth to sit on
        teeth[0, 1, 5] = True
        candidates = [(0, 1, 5)]
    n_fill = min(len(candidates), 1 + int(rng.poisson(1.3)), 5)
    for k, c in enumerate(rng.permutation(len(candidates))[:n_fill]):
        kind = int(rng.choice(3, p=(0.5, 0.35, 0.15))) if k else int(rng.integers(1, 3))
        fillings.append((*candidates[c], kind))
    jitter = rng.normal(size=(32, 4)) * (0.4, 0.3, 4.0, 0.03)
    return Anatomy(
        scale=tuple(float(v) for v in scale),  # type: ignore[arg-type]
        pose_deg=tuple(float(v) for v in rng.uniform(-1, 1, 3) * (4.0, 7.0, 3.0)),  # type: ignore[arg-type]
        shift_mm=tuple(float(v) for v in rng.uniform(-1, 1, 3) * (4.0, 4.0, 3.0)),  # type: ignore[arg-type]
        skull=float(rng.uniform(4.5, 8.0)),
        scalp=float(rng.uniform(4.5, 7.0)),
        fat=float(rng.uniform(2.5, 9.0)),
        arch_width=float(rng.uniform(24.0, 27.5)),
        arch_depth=float(rng.uniform(36.0, 43.0)),
        arch_alpha=float(rng.uniform(0.35, 0.85)),
        overjet=float(rng.uniform(1.5, 4.5)),
        mouth_gap=float(0.0 if rng.random() < 0.5 else rng.uniform(1.0, 5.0)),
        chin=float(rng.uniform(-2.0, 4.0)),
        gonial_width=float(rng.uniform(44.0, 50.0)),
        gonial_y=float(rng.uniform(-16.0, -8.0)),
        airway=float(rng.uniform(0.65, 1.2)),
        sinus_fluid=float(0.0 if rng.random() < 0.7 else rng.uniform(0.1, 0.45)),
        teeth=tuple(bool(v) for v in teeth.ravel()),
        fillings=tuple(fillings),
        tooth_jitter=tuple(float(v) for v in jitter.ravel()),
    )


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
    head = _Head(spec, size)
    head.build()
    texture = np.random.default_rng([spec.seed, 1])
    noise = np.random.default_rng([spec.seed, 2, size])
    data = _scan(spec, head, texture, noise)
    return Volume(data, (head.h,) * 3, spec.name, head.lab)


# ------------------------------------------------------------------------- scanner model


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur (sigma in voxels) with edge replication, float32."""
    r = max(1, math.ceil(3.0 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    for axis in range(3):
        pad = [(0, 0)] * 3
        pad[axis] = (r, r)
        p = np.pad(a, pad, mode="edge")
        n = a.shape[axis]

        def tap(j: int, p: np.ndarray = p, axis: int = axis, n: int = n) -> np.ndarray:
            index = [slice(None)] * 3
            index[axis] = slice(j, j + n)
            return p[tuple(index)]

        out = tap(r) * np.float32(k[r])
        for j in range(r):  # symmetric kernel: one multiply per pair of taps
            out += (tap(j) + tap(2 * r - j)) * np.float32(k[j])
        a = out
    return a


def _scan(
    spec: PhantomSpec, head: _Head, texture: np.random.Generator, noise: np.random.Generator
) -> np.ndarray:
    """Turn the painted HU volume into the scanner's grey values (artefacts, gain, offset)."""
    hu = head.hu
    # Smooth soft-tissue variation (muscle vs connective tissue, brain inhomogeneity).
    wave = np.zeros(1, np.float32)
    for k, axis in enumerate(head.axes[::-1]):  # z, y, x
        f = texture.uniform(0.02, 0.08, 3)
        ph = texture.uniform(0, 2 * np.pi, 3)
        w = np.zeros_like(axis)
        for fi, pi in zip(f, ph, strict=True):
            w += 6.0 * np.cos(fi * axis + pi)
        shape = [1, 1, 1]
        shape[k] = -1
        wave = wave + w.astype(np.float32).reshape(shape)
    hu = hu + wave * (head.lab == Tissue.SOFT_TISSUE)
    hu = _blur(hu, spec.blur)
    # Cupping: attenuation drops smoothly toward the axial centre of the field of view.
    x, y = head.axes[0], head.axes[1]
    r2 = (x[None, :] ** 2 + y[:, None] ** 2) / (0.25 * (FOV_MM[1] ** 2 + FOV_MM[2] ** 2))
    factor = (1.0 - spec.cupping * np.clip(1.0 - r2, 0.0, 1.0)).astype(np.float32)
    hu = (hu - _HU_AIR) * factor + _HU_AIR
    if spec.has_metal and head.metal:
        _add_streaks(hu, head, texture)
    # Slightly correlated noise (as reconstructed CBCT noise is), scaled to spec.noise HU.
    n = _blur(noise.standard_normal(hu.shape, dtype=np.float32), 0.6)
    kern = np.exp(-0.5 * (np.arange(-2, 3) / 0.6) ** 2)
    std = float(np.sqrt(np.sum((kern / kern.sum()) ** 2))) ** 3
    hu += n * np.float32(spec.noise / std)
    return spec.to_grey(hu)


def _add_streaks(hu: np.ndarray, head: _Head, rng: np.random.Generator) -> None:
    """Bright and dark streaks radiating from metal in the axial slices that contain it."""
    x, y, z = (a.astype(np.float32) for a in head.axes)
    h = head.h
    width = max(1.0, 0.6 * h)
    profiles, clear = [], np.ones((y.size, x.size), np.float32)
    for (cx, cy, _), _ in head.metal:  # streaks start at the metal's edge, not inside it
        r2 = (x[None, :] - cx) ** 2 + (y[:, None] - cy) ** 2
        clear *= 1.0 - np.exp(-r2 / (2.0 * (2.5 + h) ** 2))
    for (cx, cy, cz), half in head.metal:
        prof = np.clip(1.0 - (np.abs(z - cz) - half) / (1.5 * h), 0.0, 1.0)
        profiles.append(prof)
        dx, dy = x[None, :] - cx, y[:, None] - cy
        r = np.sqrt(dx * dx + dy * dy)
        theta = np.arctan2(dy, dx)
        fine = np.cos(rng.integers(16, 40) * theta + rng.uniform(0, 2 * np.pi))
        field2d = 0.25 * fine * (0.5 + 0.5 * np.cos(3 * theta + rng.uniform(0, 2 * np.pi)))
        for ang, amp in zip(rng.uniform(0, np.pi, 8), rng.uniform(-1.0, 0.7, 8), strict=True):
            perp = np.abs(dx * math.sin(ang) - dy * math.cos(ang))
            field2d = field2d + amp * np.exp(-0.5 * (perp / width) ** 2)
        field2d *= clear * rng.uniform(600, 1100) * np.exp(-r / rng.uniform(30.0, 60.0))
        idx = np.nonzero(prof)[0]
        hu[idx] += prof[idx, None, None] * field2d.astype(np.float32)[None]
    # Dark bands between pairs of metal objects in the same slices (photon starvation).
    for i in range(len(head.metal)):
        for j in range(i + 1, len(head.metal)):
            prof = np.minimum(profiles[i], profiles[j])
            idx = np.nonzero(prof)[0]
            if idx.size == 0:
                continue
            (ax, ay, _), _ = head.metal[i]
            (bx, by, _), _ = head.metal[j]
            ex, ey = bx - ax, by - ay
            px, py = x[None, :] - ax, y[:, None] - ay
            t = np.clip((px * ex + py * ey) / max(ex * ex + ey * ey, 1e-6), 0.0, 1.0)
            d2 = (px - t * ex) ** 2 + (py - t * ey) ** 2
            band = -rng.uniform(500, 1000) * clear * np.exp(-0.5 * d2 / (2.0 * width) ** 2)
            hu[idx] += prof[idx, None, None] * band.astype(np.float32)[None]


# ------------------------------------------------------------------------------ geometry

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
    """

    def __init__(self, spec: PhantomSpec, size: int) -> None:
        self.spec, self.an = spec, spec.anatomy
        an = self.an
        self.shape = phantom_shape(size)
        self.h = FOV_MM[0] / size
        nz, ny, nx = self.shape
        # World coordinates (mm) of voxel centres along x, y, z; origin at the FOV centre.
        self.axes = tuple((np.arange(n) - (n - 1) / 2.0) * self.h for n in (nx, ny, nz))
        self.scale = np.array(an.scale)
        self.rot = _rotation(*an.pose_deg)
        _, sy, sz = an.scale
        # The canonical origin sits so that the vertex is ~9 mm below the top of the FOV and
        # the head is centred from nose to occiput.
        self.origin = np.array([0.0, 11.0 * sy, FOV_MM[0] / 2 - 9.0 - 85.0 * sz]) + an.shift_mm
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
