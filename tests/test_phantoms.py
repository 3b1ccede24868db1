"""Tests for tfgym.phantoms: determinism, anatomy, grey values, ranges and the default set."""

from __future__ import annotations

import numpy as np
import pytest

from tfgym.phantoms import (
    FOV_MM,
    HELDOUT_PHANTOMS,
    PHANTOM_SEEDS,
    TRAIN_PHANTOMS,
    PhantomSpec,
    make_phantom,
    phantom_name,
    phantom_shape,
    phantom_spec,
)
from tfgym.volume import Tissue, Volume

SIZE = 64
VOXEL_MM = FOV_MM[0] / SIZE

Scan = tuple[np.ndarray, np.ndarray]  # grey values, labels


def _labels(vol: Volume) -> np.ndarray:
    assert vol.labels is not None
    return vol.labels


@pytest.fixture(scope="module")
def phantoms() -> dict[int, Scan]:
    """Grey values and labels of the 16 default phantoms at the default size (~1 s in all)."""
    vols = {seed: make_phantom(seed, size=SIZE) for seed in PHANTOM_SEEDS}
    return {seed: (vol.data, _labels(vol)) for seed, vol in vols.items()}


def _centroid(mask: np.ndarray) -> np.ndarray:
    """Mean (z, y, x) index of a mask."""
    return np.array(np.nonzero(mask)).mean(axis=1)


# -- determinism, shape, names ----------------------------------------------------------------


def test_same_seed_gives_identical_arrays() -> None:
    a, b = make_phantom(7, size=40), make_phantom(7, size=40)
    assert np.array_equal(a.data, b.data)
    assert np.array_equal(_labels(a), _labels(b))
    assert phantom_spec(7) == phantom_spec(7)


def test_different_seeds_differ(phantoms: dict[int, Scan]) -> None:
    (data_a, lab_a), (data_b, lab_b) = phantoms[0], phantoms[1]
    assert not np.array_equal(lab_a, lab_b)
    assert not np.allclose(data_a, data_b)
    assert phantom_spec(0).anatomy != phantom_spec(1).anatomy


@pytest.mark.parametrize("size", [32, 64, 100])
def test_size_sets_shape_and_isotropic_spacing(size: int) -> None:
    vol = make_phantom(4, size=size)
    assert vol.shape == phantom_shape(size) == (size, size, round(size * 13 / 16))
    assert max(vol.shape) == size
    assert vol.spacing == pytest.approx((FOV_MM[0] / size,) * 3)
    assert vol.name == "phantom-04" == phantom_name(4)
    assert vol.data.dtype == np.float32
    assert _labels(vol).dtype == np.uint8
    assert np.isfinite(vol.data).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seed": -1}, "non-negative integer"),
        ({"seed": 1.5}, "non-negative integer"),
        ({"seed": 1, "size": 8}, "size must be an integer >= 16"),
    ],
    ids=["negative-seed", "float-seed", "tiny-size"],
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_phantom(**kwargs)


def test_default_split() -> None:
    assert len(TRAIN_PHANTOMS) == 32 and len(HELDOUT_PHANTOMS) == 16
    assert not set(TRAIN_PHANTOMS) & set(HELDOUT_PHANTOMS)
    assert (*TRAIN_PHANTOMS, *HELDOUT_PHANTOMS) == tuple(f"phantom-{s:02d}" for s in range(48))
    assert list(PHANTOM_SEEDS) == list(range(48))
    for split in (TRAIN_PHANTOMS, HELDOUT_PHANTOMS):
        assert any(phantom_spec(int(name.split("-")[1])).has_metal for name in split)
    n_metal = sum(phantom_spec(s).has_metal for s in PHANTOM_SEEDS)
    assert 12 <= n_metal <= 20  # about a third


# -- labels and anatomy ------------------------------------------------------------------------


def test_all_tissues_present_and_metal_only_with_has_metal(phantoms: dict[int, Scan]) -> None:
    for seed, (_, lab) in phantoms.items():
        present = set(np.unique(lab).tolist())
        assert {Tissue.AIR, Tissue.SOFT_TISSUE, Tissue.BONE, Tissue.TEETH} <= present, seed
        assert (Tissue.METAL in present) == phantom_spec(seed).has_metal, seed


def test_metal_can_be_forced_on_and_off() -> None:
    seed_with, seed_without = 2, 0
    assert phantom_spec(seed_with).has_metal and not phantom_spec(seed_without).has_metal
    forced_on = make_phantom(seed_without, size=48, metal=True)
    forced_off = make_phantom(seed_with, size=48, metal=False)
    assert (_labels(forced_on) == Tissue.METAL).any()
    assert not (_labels(forced_off) == Tissue.METAL).any()
    assert phantom_spec(seed_without, metal=True).has_metal
    # Same anatomy otherwise: only metal voxels change label.
    plain = _labels(make_phantom(seed_without, size=48))
    changed = _labels(forced_on) != plain
    assert (_labels(forced_on)[changed] == Tissue.METAL).all()


def test_head_is_inside_the_field_of_view(phantoms: dict[int, Scan]) -> None:
    for seed, (_, lab) in phantoms.items():
        inside = lab != Tissue.AIR
        faces = [inside[-1], inside[:, 0], inside[:, -1], inside[:, :, 0], inside[:, :, -1]]
        assert not any(f.any() for f in faces), seed  # only the neck leaves (bottom face)
        assert inside[0].any(), seed


def test_orientation_face_front_top_up_spine_behind(phantoms: dict[int, Scan]) -> None:
    for seed, (_, lab) in phantoms.items():
        nz = lab.shape[0]
        teeth = _centroid(lab == Tissue.TEETH)
        upper = np.zeros_like(lab, dtype=bool)
        upper[nz // 2 :] = True
        cranium = _centroid((lab == Tissue.BONE) & upper)
        assert teeth[0] < cranium[0] - 0.2 * nz, seed  # top of the head at high z
        assert teeth[1] < cranium[1] - 0.15 * lab.shape[1], seed  # face at low y
        # The lowest slices hold the cervical spine only: it lies behind every tooth.
        spine = lab[:4] == Tissue.BONE
        assert spine.any(), seed
        assert np.nonzero(spine)[1].min() > np.nonzero(lab == Tissue.TEETH)[1].max(), seed


def test_patient_left_is_at_high_x(phantoms: dict[int, Scan]) -> None:
    # Fillings are the only left/right asymmetry: those on the left side (1) sit at high x.
    checked = 0
    for seed, (_, lab) in phantoms.items():
        spec = phantom_spec(seed)
        sides = {side for _, side, _, _ in spec.anatomy.fillings}
        if not spec.has_metal or len(sides) != 1:
            continue
        x_metal = _centroid(lab == Tissue.METAL)[2]
        middle = (lab.shape[2] - 1) / 2
        assert (x_metal > middle + 2) if sides == {1} else (x_metal < middle - 2), seed
        checked += 1
    assert checked >= 2


def test_teeth_sit_above_the_lowest_point_of_the_mandible(phantoms: dict[int, Scan]) -> None:
    for seed, (_, lab) in phantoms.items():
        z_t, y_t, _ = np.nonzero(lab == Tissue.TEETH)
        front = np.zeros_like(lab, dtype=bool)
        front[:, : y_t.min() + round(15 / VOXEL_MM)] = True  # the incisor region
        z_b = np.nonzero((lab == Tissue.BONE) & front)[0]
        chin = z_b[z_b < z_t.min()]
        assert chin.size, seed  # there is mandible below the teeth
        assert z_t.min() > chin.min() + round(10 / VOXEL_MM), seed


def test_skull_is_a_bone_shell_around_soft_brain(phantoms: dict[int, Scan]) -> None:
    for seed, (_, lab) in phantoms.items():
        nz = lab.shape[0]
        bone = lab == Tissue.BONE
        bone[: nz // 2] = False
        zs, ys, xs = np.nonzero(bone)
        centre = (
            (zs.min() + zs.max()) // 2,
            (ys.min() + ys.max()) // 2,
            (xs.min() + xs.max()) // 2,
        )
        assert lab[centre] == Tissue.SOFT_TISSUE, seed
        for axis, step in [(0, 1), (1, 1), (1, -1), (2, 1), (2, -1)]:  # up, back, front, sides
            pos = list(centre)
            while lab[tuple(pos)] == Tissue.SOFT_TISSUE:
                pos[axis] += step
            assert lab[tuple(pos)] == Tissue.BONE, (seed, axis, step)


# -- grey values -------------------------------------------------------------------------------


def test_grey_value_ordering_per_scan(phantoms: dict[int, Scan]) -> None:
    for seed, (data, lab) in phantoms.items():
        med = {t: float(np.median(data[lab == t])) for t in np.unique(lab)}
        assert med[Tissue.TEETH] > med[Tissue.BONE] > med[Tissue.SOFT_TISSUE] > med[Tissue.AIR], (
            seed
        )
        if Tissue.METAL in med:
            assert med[Tissue.METAL] > med[Tissue.TEETH], seed


def test_tissue_range_covers_most_voxels_of_the_tissue(phantoms: dict[int, Scan]) -> None:
    for seed, (data, lab) in phantoms.items():
        spec = phantom_spec(seed)
        for tissue in np.unique(lab):
            lo, hi = spec.tissue_range(tissue, size=SIZE)
            assert lo <= hi
            values = data[lab == tissue]
            covered = np.mean((values >= lo) & (values <= hi))
            assert covered >= 0.8, (seed, Tissue(tissue).name, covered)


@pytest.mark.parametrize("seed", [5, 12])
def test_tissue_range_at_a_finer_size(seed: int) -> None:
    vol, spec = make_phantom(seed, size=128), phantom_spec(seed)
    for tissue in (Tissue.BONE, Tissue.TEETH):
        lo, hi = spec.tissue_range(tissue, size=128)
        values = vol.data[_labels(vol) == tissue]
        assert np.mean((values >= lo) & (values <= hi)) >= 0.8
    # Partial volume lowers small dense structures at coarse sizes: the range follows.
    assert spec.tissue_range(Tissue.TEETH, size=64)[0] < spec.tissue_range(Tissue.TEETH)[1]
    assert (
        spec.tissue_range(Tissue.TEETH, size=64)[0] < spec.tissue_range(Tissue.TEETH, size=128)[0]
    )


def test_tissue_range_rejects_unknown_tissue() -> None:
    with pytest.raises(ValueError, match="unknown tissue 9"):
        phantom_spec(0).tissue_range(9)


def test_scanners_differ_between_seeds(phantoms: dict[int, Scan]) -> None:
    specs = [phantom_spec(s) for s in PHANTOM_SEEDS]
    assert len({(s.gain, s.offset) for s in specs}) == len(specs)
    assert all(0.6 <= s.gain <= 1.6 and -500 <= s.offset <= 1500 for s in specs)
    assert max(s.gain for s in specs) - min(s.gain for s in specs) > 0.5
    assert len({s.noise for s in specs}) == len(specs) and len({s.cupping for s in specs}) > 1
    # The grey value of bone (and so the joint histogram) moves from scan to scan.
    bone = [float(np.median(data[lab == Tissue.BONE])) for data, lab in phantoms.values()]
    assert np.std(bone) > 200


def test_clipped_scanners_keep_values_in_their_unsigned_range(
    phantoms: dict[int, Scan],
) -> None:
    clipped = [s for s in PHANTOM_SEEDS if phantom_spec(s).clip is not None]
    assert 0 < len(clipped) < len(PHANTOM_SEEDS)
    for seed in clipped:
        lo, hi = phantom_spec(seed).clip  # type: ignore[misc]
        data, lab = phantoms[seed]
        assert lo == 0.0 and hi in (4095.0, 16383.0, 65535.0)
        assert data.min() >= lo and data.max() <= hi
        teeth = data[lab == Tissue.TEETH]
        assert np.mean(teeth >= hi) < 0.05  # teeth are not saturated


def test_spec_is_a_frozen_value() -> None:
    spec = phantom_spec(3)
    assert isinstance(spec, PhantomSpec)
    with pytest.raises(AttributeError):
        spec.gain = 2.0  # type: ignore[misc]
    hu = np.array([-1000.0, 0.0, 1000.0])
    expected = spec.gain * hu + spec.offset
    if spec.clip is not None:
        expected = np.clip(expected, *spec.clip)
    assert spec.to_grey(hu) == pytest.approx(expected, rel=1e-5)
