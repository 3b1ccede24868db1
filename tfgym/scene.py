"""Scenes: a working-size volume with everything a step needs precomputed and cached.

A :class:`Scene` is built once per (scene, working size, histogram bins) and cached in the
process: the resampled isotropic volume, its gradient magnitude, every voxel's joint-histogram
bin, the histogram and its observation image, and tissue labels. An env step only looks these
up; nothing is regenerated.

Scene names, the named sets (``"train"``, ``"heldout"``, ...) and the ``"procedural"`` pool
live in :mod:`tfgym.scene_sets`; their public names are re-exported here.

Caching: phantom volumes come from the disk cache (:func:`tfgym.cache.cached_phantom`), so
a scene never waits for generation after its first use on a machine. Built scenes stay in
the process in :data:`SCENE_CACHE`, a least-recently-used cache bounded in bytes (the arrays
of each scene, :func:`scene_nbytes`): ``$TFGYM_SCENE_CACHE_MB`` MiB, default 2048, per
process. A scene larger than the budget is built and returned, not kept.

Every working size of a scan shares one histogram definition, taken on its reference volume
(:data:`REFERENCE_SIZE` voxels along the longest side): axis ranges, gradient magnitude (grey
values per mm at the reference grid's scale, interpolated onto finer working grids) and the
intensity-class thresholds. A TF drawn on the training histogram therefore selects the same
anatomy on a display-quality volume (see :meth:`Scene.from_volume`).

Unlabelled scans (headsq, user files) get **approximate** labels from intensity classes: a
two-threshold Otsu split of the working volume into air, soft tissue and bone
(``Scene.labels_approximate`` is True). Teeth cannot be told from bone this way and count as
bone; calcified or contrast-filled soft tissue counts as bone too.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfgym.cache import ByteLRU, cached_phantom, env_budget_bytes
from tfgym.histogram import (
    HistogramRanges,
    bin_indices,
    gradient_magnitude,
    histogram_image,
    joint_histogram,
)
from tfgym.phantoms import phantom_name
from tfgym.scene_sets import (
    PROCEDURAL_SEEDS,
    REAL_SCANS,
    SCENE_SETS,
    ScenePool,
    list_scenes,
    match_phantom,
    phantom_seed,
    resolve_scenes,
    scene_pool,
)
from tfgym.volume import Tissue, Volume, regrid, resample_volume
from tfgym.volume_io import bundled_scan_path, load_volume

__all__ = [
    "DEFAULT_WORKING_SIZE",
    "N_CLASSES",
    "PROCEDURAL_SEEDS",
    "REFERENCE_SIZE",
    "SCENE_CACHE",
    "SCENE_SETS",
    "Scene",
    "ScenePool",
    "intensity_class_labels",
    "intensity_class_thresholds",
    "list_scenes",
    "load_scene",
    "phantom_seed",
    "phantom_sizes",
    "resolve_scenes",
    "scene_nbytes",
    "scene_pool",
    "tissue_classes",
]

DEFAULT_WORKING_SIZE = 64
REFERENCE_SIZE = 64
"""Voxels along the longest side of a scan's reference volume, on which its histogram is defined."""
N_CLASSES = 5 * 32  # tissue label x neighbour bits, see tissue_classes
SCENE_CACHE_MB_ENV = "TFGYM_SCENE_CACHE_MB"
DEFAULT_SCENE_CACHE_MB = 2048


@dataclass(frozen=True, eq=False)
class Scene:
    """Everything precomputed for one volume at one working size.

    Attributes:
        name: scene name (or file path).
        volume: the working volume: isotropic, longest side ``working_size``, with labels.
        gradient: gradient magnitude per voxel (grey values per mm, estimated on the scan's
            reference volume), float32.
        ranges: joint-histogram ranges and bins.
        bins: flat JH bin index per voxel, int32, same shape as the volume.
        counts: voxel count per JH bin, ``(n_gradient_bins, n_intensity_bins)``.
        observation: the JH image, uint8 ``(1, n_gradient_bins, n_intensity_bins)``.
        labels_approximate: True when labels come from intensity classes, not ground truth.
        reference_voxel_size: voxel edge (mm) of the scan's reference volume, on which the
            histogram is defined; a TF's opacity is per this length (see
            :mod:`tfgym.renderer`). None: the working voxel size.
    """

    name: str
    volume: Volume
    gradient: np.ndarray
    ranges: HistogramRanges
    bins: np.ndarray
    counts: np.ndarray
    observation: np.ndarray
    labels_approximate: bool
    reference_voxel_size: float | None = None

    def __repr__(self) -> str:
        """One line: name, working shape, voxel size, histogram bins, label source."""
        shape = "x".join(map(str, self.volume.shape))
        labels = "approximate labels" if self.labels_approximate else "true labels"
        return (
            f"Scene({self.name!r}, {shape} voxels of {self.voxel_size:.3g} mm, "
            f"{self.ranges.n_intensity_bins}x{self.ranges.n_gradient_bins} histogram bins, "
            f"{labels})"
        )

    @property
    def labels(self) -> np.ndarray:
        """Tissue labels of the working volume (uint8 ``Tissue`` values)."""
        assert self.volume.labels is not None
        return self.volume.labels

    @functools.cached_property
    def content_hash(self) -> str:
        """``"sha256:<hex>"`` of the working volume's voxels, shape and spacing.

        Two scenes with the same hash show the same voxels at the same working size, so a
        preference labeled on one rebuilds exactly the same observation on the other.
        """
        data = np.ascontiguousarray(self.volume.data)
        digest = hashlib.sha256()
        digest.update(repr((data.dtype.str, data.shape, tuple(self.volume.spacing))).encode())
        digest.update(data.tobytes())
        return f"sha256:{digest.hexdigest()}"

    @property
    def voxel_size(self) -> float:
        """Edge length of the isotropic working voxels in mm."""
        return self.volume.spacing[0]

    @property
    def opacity_scale(self) -> float:
        """Working voxel size over reference voxel size (1 at the reference working size).

        A TF's opacity holds for a step of one reference voxel; a renderer stepping through
        smaller voxels corrects it to ``1 - (1 - alpha) ** opacity_scale`` per voxel, so a
        structure looks equally opaque at every working size.
        """
        if self.reference_voxel_size is None:
            return 1.0
        return self.voxel_size / self.reference_voxel_size

    def tissue_intensity(self, tissue: Tissue, percentiles: Sequence[float]) -> np.ndarray:
        """Percentiles of the grey values of one tissue; NaN when the tissue is absent."""
        values = self.volume.data[self.labels == tissue]
        if values.size == 0:
            return np.full(len(percentiles), np.nan)
        return np.percentile(values, percentiles)

    @classmethod
    def from_volume(
        cls,
        volume: Volume,
        *,
        working_size: int = DEFAULT_WORKING_SIZE,
        histogram_bins: int = 64,
        name: str | None = None,
        reference: Volume | None = None,
    ) -> Scene:
        """Precompute a scene from any volume (labels from intensity classes if it has none).

        The histogram is defined on the scan's **reference volume**, the scan resampled to
        :data:`REFERENCE_SIZE` voxels along its longest side, whatever the working size: the
        axis ranges, the gradient magnitude (estimated on the reference grid and interpolated
        onto the working grid) and the intensity-class thresholds of unlabelled scans. So a
        TF selects the same anatomy at every working size: rendered at 64 and at 256 voxels
        it draws the same structures, only sharper.

        Args:
            volume: the scan.
            working_size: voxels along the longest side of the working volume.
            histogram_bins: bins per joint-histogram axis.
            name: the scene name (default: the volume's).
            reference: the scan's reference volume when the caller has it at hand (e.g. a
                phantom generated at the reference size); default: ``volume`` resampled.
        """
        work = resample_volume(volume, working_size)
        if reference is None:
            same = working_size == REFERENCE_SIZE
            reference = work if same else resample_volume(volume, REFERENCE_SIZE)
        ref_grad = gradient_magnitude(reference.data, reference.spacing)
        ranges = HistogramRanges.from_data(reference.data, ref_grad, bins=histogram_bins)
        if reference is work:
            grad = ref_grad
        else:
            grad = np.maximum(regrid(ref_grad, reference.spacing, work.shape, work.spacing), 0.0)
        approximate = work.labels is None
        if approximate:
            thresholds = intensity_class_thresholds(reference.data)
            labels = intensity_class_labels(work.data, thresholds)
            work = Volume(work.data, work.spacing, work.name, labels)
        bins = bin_indices(work.data, grad, ranges)
        counts = joint_histogram(bins, ranges)
        for a in (grad, bins, counts):
            a.setflags(write=False)
        return cls(
            name=name or volume.name,
            volume=work,
            gradient=grad,
            ranges=ranges,
            bins=bins,
            counts=counts,
            observation=histogram_image(counts),
            labels_approximate=approximate,
            reference_voxel_size=float(max(reference.spacing)),
        )


def tissue_classes(labels: np.ndarray, radius: int = 1) -> np.ndarray:
    """Per-voxel class ``label * 32 + neighbour bits`` (uint8).

    Bit ``t`` of the neighbour bits is set when a voxel of label ``t`` lies within ``radius``
    face steps (``radius=1``: one of the six face neighbours; from ``radius=2`` a voxel's own
    label is within reach too, through a neighbour and back). The oracle uses it to treat
    partial-volume voxels next to a target tissue (the shell around it) as part of the
    target.

    Example:
        >>> lab = np.zeros((1, 1, 3), np.uint8); lab[0, 0, 2] = 2
        >>> tissue_classes(lab)[0, 0].tolist()  # air, air next to bone, bone next to air
        [1, 5, 65]
        >>> tissue_classes(lab, radius=2)[0, 0].tolist()  # bone two steps away counts too
        [5, 5, 69]
    """
    if radius < 1:
        raise ValueError(f"radius must be at least 1, got {radius}")
    near = np.left_shift(np.uint8(1), labels.astype(np.uint8))  # labels within k steps
    for _ in range(radius - 1):
        near = near | _face_neighbours(near)
    bits = _face_neighbours(near)
    return (labels.astype(np.uint8) * np.uint8(32) + bits).astype(np.uint8)


def _face_neighbours(bits: np.ndarray) -> np.ndarray:
    """OR of the six face neighbours' bits (0 beyond the volume)."""
    out = np.zeros_like(bits)
    for axis in range(3):
        n = bits.shape[axis]
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(0, n - 1), slice(1, n)
        out[tuple(lo)] |= bits[tuple(hi)]
        out[tuple(hi)] |= bits[tuple(lo)]
    return out


def intensity_class_thresholds(data: np.ndarray) -> tuple[float, float]:
    """Otsu's two thresholds (air | soft tissue | bone) of a scan's grey values.

    A constant fill value far below every other grey value (outside a scanner's field of
    view, e.g. -3024 or -32768) holding more than 0.5 % of the voxels is left out: it is not
    air. A minimum that is simply the darkest air (headsq's 0) stays.
    """
    import SimpleITK as sitk

    values = np.asarray(data, dtype=np.float32).ravel()
    padding = values == values.min()
    if 0.005 < padding.mean() < 1.0:  # a constant fill outside the scanned field (-3024 ...)
        rest = values[~padding]
        lo, hi = np.percentile(rest, (0.5, 99.5))
        if rest.min() - values.min() > 0.1 * (hi - lo):  # far below everything else: a fill
            values = rest
    otsu = sitk.OtsuMultipleThresholdsImageFilter()
    otsu.SetNumberOfThresholds(2)
    otsu.SetNumberOfHistogramBins(256)
    otsu.Execute(sitk.GetImageFromArray(np.ascontiguousarray(values[None, None, :])))
    t_soft, t_bone = otsu.GetThresholds()
    return float(t_soft), float(t_bone)


def intensity_class_labels(
    data: np.ndarray, thresholds: tuple[float, float] | None = None
) -> np.ndarray:
    """Approximate labels: Otsu's two thresholds split air / soft tissue / bone.

    Args:
        data: the grey values.
        thresholds: ``(soft tissue, bone)`` lower bounds; default: Otsu's on ``data``.
    """
    t_soft, t_bone = intensity_class_thresholds(data) if thresholds is None else thresholds
    labels = np.full(data.shape, Tissue.SOFT_TISSUE, dtype=np.uint8)
    labels[data < t_soft] = Tissue.AIR
    labels[data >= t_bone] = Tissue.BONE
    return labels


def scene_nbytes(scene: Scene) -> int:
    """Bytes of the arrays a scene holds, each array once.

    They are its volume's data and labels, its gradient, bins, counts and observation.

    Example:
        >>> scene = load_scene("headsq")
        >>> scene_nbytes(scene) > scene.volume.data.nbytes + scene.bins.nbytes
        True
    """
    arrays = [getattr(scene, f.name) for f in dataclasses.fields(scene)]
    arrays += [scene.volume.data, scene.volume.labels]
    unique = {id(a): a for a in arrays if isinstance(a, np.ndarray)}
    return sum(a.nbytes for a in unique.values())


SCENE_CACHE: ByteLRU[tuple[str, int, int, int], Scene] = ByteLRU(
    env_budget_bytes(SCENE_CACHE_MB_ENV, DEFAULT_SCENE_CACHE_MB), scene_nbytes
)
"""The process's built scenes, least recently used first out past ``max_bytes``."""


def load_scene(
    scene: str | Path,
    *,
    working_size: int = DEFAULT_WORKING_SIZE,
    histogram_bins: int = 64,
    cache: bool = True,
) -> Scene:
    """Load (or fetch from the process cache) a scene by name or path.

    Args:
        scene: a bundled scene name, ``"phantom-N"`` for any seed, or a path to a scan.
        working_size: voxels along the longest side of the working volume.
        histogram_bins: bins per joint-histogram axis.
        cache: look the scene up in (and add it to) :data:`SCENE_CACHE`; False builds a
            new scene that only the caller holds (a phantom's volume still comes from the
            disk cache).

    Returns:
        The :class:`Scene`, named canonically (``"phantom-7"`` loads ``"phantom-07"``).

    Raises:
        ValueError: unknown scene or malformed phantom name; :class:`tfgym.volume.VolumeError`
            for unreadable files.

    Example:
        >>> load_scene("phantom-3", working_size=32) is load_scene("phantom-03", working_size=32)
        True
    """
    key = str(scene)
    seed = match_phantom(key)
    stamp = 0
    if seed is not None:
        key = phantom_name(seed)
    elif key not in REAL_SCANS:
        path = Path(key).expanduser().resolve()
        if not path.exists():
            phantom_seed(key)  # a malformed phantom name gets its own message
        stamp = path.stat().st_mtime_ns if path.exists() else 0
        key = str(path)
    if not cache:
        return _build_scene(key, working_size, histogram_bins)
    return _load_cached(key, stamp, working_size, histogram_bins)


def _load_cached(key: str, stamp: int, working_size: int, histogram_bins: int) -> Scene:
    """The scene from :data:`SCENE_CACHE`, built on a miss.

    ``stamp`` (a file's mtime) is part of the key only, so a modified file is loaded again.
    """
    return SCENE_CACHE.get_or_build(
        (key, stamp, working_size, histogram_bins),
        lambda: _build_scene(key, working_size, histogram_bins),
    )


def phantom_sizes(working_size: int) -> tuple[int, ...]:
    """The sizes of the phantom volumes a phantom scene at ``working_size`` is built from.

    The working volume and, at other working sizes than :data:`REFERENCE_SIZE`, the
    reference volume that defines the histogram (see :meth:`Scene.from_volume`): what
    ``tfgym scenes --warm`` generates into the disk cache.

    Example:
        >>> phantom_sizes(64), phantom_sizes(256)
        ((64,), (256, 64))
    """
    return (working_size,) if working_size == REFERENCE_SIZE else (working_size, REFERENCE_SIZE)


def _build_scene(key: str, working_size: int, histogram_bins: int) -> Scene:
    seed = match_phantom(key)
    reference = None
    if seed is not None:
        volume, *rest = (cached_phantom(seed, size=n) for n in phantom_sizes(working_size))
        reference = rest[0] if rest else None  # generated at the reference size
    elif key == "headsq":
        volume = load_volume(bundled_scan_path("headsq"), name="headsq")
    else:
        volume = load_volume(key)
    return Scene.from_volume(
        volume,
        working_size=working_size,
        histogram_bins=histogram_bins,
        name=key,
        reference=reference,
    )
