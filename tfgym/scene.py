"""Scenes: a working-size volume with everything a step needs precomputed and cached.

A :class:`Scene` is built once per (scene, working size, histogram bins) and cached in the
process: the resampled isotropic volume, its gradient magnitude, every voxel's joint-histogram
bin, the histogram and its observation image, and tissue labels. An env step only looks these
up; nothing is regenerated.

Scene names:

* ``"headsq"`` -- the real CT head shipped with tfgym (64x64x93, VTK example data);
* ``"phantom-00"`` .. ``"phantom-15"`` -- procedural CBCT heads (:mod:`tfgym.phantoms`);
* any path to a DICOM series directory, NIfTI, NRRD or MetaImage file.

Scene sets: ``"train"`` (12 phantoms), ``"heldout"`` (4 phantoms), ``"phantoms"`` (all 16),
``"real"`` (headsq) and ``"all"``.

Unlabelled scans (headsq, user files) get **approximate** labels from intensity classes: a
two-threshold Otsu split of the working volume into air, soft tissue and bone
(``Scene.labels_approximate`` is True). Teeth cannot be told from bone this way and count as
bone; calcified or contrast-filled soft tissue counts as bone too.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfgym.histogram import (
    HistogramRanges,
    bin_indices,
    gradient_magnitude,
    histogram_image,
    joint_histogram,
)
from tfgym.phantoms import HELDOUT_PHANTOMS, TRAIN_PHANTOMS, make_phantom
from tfgym.volume import Tissue, Volume, resample_volume
from tfgym.volume_io import bundled_scan_path, load_volume

__all__ = [
    "DEFAULT_WORKING_SIZE",
    "N_CLASSES",
    "SCENE_SETS",
    "Scene",
    "list_scenes",
    "load_scene",
    "resolve_scenes",
    "tissue_classes",
]

DEFAULT_WORKING_SIZE = 64
N_CLASSES = 5 * 32  # tissue label x neighbour bits, see tissue_classes
PHANTOM_NAMES: tuple[str, ...] = (*TRAIN_PHANTOMS, *HELDOUT_PHANTOMS)
REAL_SCANS: tuple[str, ...] = ("headsq",)
SCENE_SETS: dict[str, tuple[str, ...]] = {
    "train": tuple(TRAIN_PHANTOMS),
    "heldout": tuple(HELDOUT_PHANTOMS),
    "phantoms": PHANTOM_NAMES,
    "real": REAL_SCANS,
    "all": (*PHANTOM_NAMES, *REAL_SCANS),
}


@dataclass(frozen=True, eq=False)
class Scene:
    """Everything precomputed for one volume at one working size.

    Attributes:
        name: scene name (or file path).
        volume: the working volume: isotropic, longest side ``working_size``, with labels.
        gradient: gradient magnitude per voxel (grey values per mm), float32.
        ranges: joint-histogram ranges and bins.
        bins: flat JH bin index per voxel, int32, same shape as the volume.
        counts: voxel count per JH bin, ``(n_gradient_bins, n_intensity_bins)``.
        observation: the JH image, uint8 ``(1, n_gradient_bins, n_intensity_bins)``.
        labels_approximate: True when labels come from intensity classes, not ground truth.
    """

    name: str
    volume: Volume
    gradient: np.ndarray
    ranges: HistogramRanges
    bins: np.ndarray
    counts: np.ndarray
    observation: np.ndarray
    labels_approximate: bool

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
    ) -> Scene:
        """Precompute a scene from any volume (labels from intensity classes if it has none)."""
        work = resample_volume(volume, working_size)
        approximate = work.labels is None
        if approximate:
            work = Volume(work.data, work.spacing, work.name, intensity_class_labels(work.data))
        grad = gradient_magnitude(work.data, work.spacing)
        ranges = HistogramRanges.from_data(work.data, grad, bins=histogram_bins)
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
        )


def tissue_classes(labels: np.ndarray) -> np.ndarray:
    """Per-voxel class ``label * 32 + neighbour bits`` (uint8).

    Bit ``t`` of the neighbour bits is set when one of the six face neighbours has label
    ``t``. The oracle uses it to treat partial-volume voxels next to a target tissue (the
    one-voxel shell around it) as part of the target.

    Example:
        >>> lab = np.zeros((1, 1, 3), np.uint8); lab[0, 0, 2] = 2
        >>> tissue_classes(lab)[0, 0].tolist()  # air, air next to bone, bone next to air
        [1, 5, 65]
    """
    bits = np.zeros(labels.shape, dtype=np.uint8)
    one = np.uint8(1)
    for axis in range(3):
        n = labels.shape[axis]
        if n < 2:
            continue
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(0, n - 1), slice(1, n)
        bits[tuple(lo)] |= np.left_shift(one, labels[tuple(hi)])
        bits[tuple(hi)] |= np.left_shift(one, labels[tuple(lo)])
    return (labels.astype(np.uint8) * np.uint8(32) + bits).astype(np.uint8)


def intensity_class_labels(data: np.ndarray) -> np.ndarray:
    """Approximate labels: Otsu's two thresholds split air / soft tissue / bone."""
    import SimpleITK as sitk

    otsu = sitk.OtsuMultipleThresholdsImageFilter()
    otsu.SetNumberOfThresholds(2)
    otsu.SetNumberOfHistogramBins(256)
    otsu.Execute(sitk.GetImageFromArray(data))
    t_soft, t_bone = otsu.GetThresholds()
    labels = np.full(data.shape, Tissue.SOFT_TISSUE, dtype=np.uint8)
    labels[data < t_soft] = Tissue.AIR
    labels[data >= t_bone] = Tissue.BONE
    return labels


def list_scenes() -> dict[str, str]:
    """Bundled scene names with a one-line description each."""
    out = {"headsq": "real CT head, 64x64x93, 3.2x3.2x1.5 mm (VTK example data)"}
    for name in PHANTOM_NAMES:
        split = "train" if name in TRAIN_PHANTOMS else "held-out"
        out[name] = f"procedural CBCT head phantom ({split})"
    return out


def resolve_scenes(scenes: str | Sequence[str]) -> tuple[str, ...]:
    """Expand scene-set names and validate scene names and paths.

    Args:
        scenes: a set name (``"train"``...), a scene name, a path, or a sequence of those.

    Returns:
        The scene names/paths, in order, without duplicates.

    Raises:
        ValueError: for an unknown name that is not an existing path, or an empty list.

    Example:
        >>> resolve_scenes(["headsq", "heldout"])[:2]
        ('headsq', 'phantom-12')
    """
    items = [scenes] if isinstance(scenes, str | Path) else list(scenes)
    out: list[str] = []
    for item in items:
        key = str(item)
        if key in SCENE_SETS:
            out.extend(SCENE_SETS[key])
        elif key in PHANTOM_NAMES or key in REAL_SCANS or Path(key).exists():
            out.append(key)
        else:
            raise ValueError(
                f"unknown scene {key!r}: not a bundled scene, a scene set or an existing path. "
                f"Scene sets: {sorted(SCENE_SETS)}; scenes: {list(list_scenes())}"
            )
    if not out:
        raise ValueError("no scenes given")
    return tuple(dict.fromkeys(out))


def load_scene(
    scene: str | Path,
    *,
    working_size: int = DEFAULT_WORKING_SIZE,
    histogram_bins: int = 64,
) -> Scene:
    """Load (or fetch from the process cache) a scene by name or path.

    Args:
        scene: a bundled scene name or a path to a scan.
        working_size: voxels along the longest side of the working volume.
        histogram_bins: bins per joint-histogram axis.

    Returns:
        The cached :class:`Scene`.

    Raises:
        ValueError: unknown scene; :class:`tfgym.volume.VolumeError` for unreadable files.
    """
    key = str(scene)
    if key not in PHANTOM_NAMES and key not in REAL_SCANS:
        path = Path(key).expanduser().resolve()
        stamp = path.stat().st_mtime_ns if path.exists() else 0
        return _load_cached(str(path), stamp, working_size, histogram_bins)
    return _load_cached(key, 0, working_size, histogram_bins)


@functools.lru_cache(maxsize=32)
def _load_cached(key: str, stamp: int, working_size: int, histogram_bins: int) -> Scene:
    del stamp  # part of the cache key only: a modified file is loaded again
    if key in PHANTOM_NAMES:
        volume = make_phantom(int(key.split("-")[1]), size=working_size)
    elif key == "headsq":
        volume = load_volume(bundled_scan_path("headsq"), name="headsq")
    else:
        volume = load_volume(key)
    return Scene.from_volume(
        volume, working_size=working_size, histogram_bins=histogram_bins, name=key
    )
