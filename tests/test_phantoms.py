"""Tests for tfgym.phantoms: the phantom API, the default sets and the scanner's factors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tfgym.histogram import gradient_magnitude
from tfgym.phantoms import (
    FOV_KINDS,
    FOV_MM,
    HELDOUT_PHANTOMS,
    PHANTOM_SEEDS,
    TRAIN_PHANTOMS,
    GreyMapping,
    PhantomSpec,
    make_phantom,
    phantom_name,
    phantom_shape,
    phantom_spec,
)
from tfgym.phantoms.factors import FACTORS
from tfgym.volume import Tissue, Volume

SIZE = 48
SCANNER = ("fov", "noise", "scatter", "beam_hardening", "kernel", "grey_mapping")
# Every scanner factor but the one a test looks at, and the HU scale of the neutral mapping.
IDEAL = frozenset({"noise", "scatter", "beam_hardening", "kernel", "grey_mapping"})
SEEDS = (0, 1, 2, 3, 5, 6, 8, 12)  # whole head, dental and maxillofacial FOVs, with/without metal

Scan = tuple[np.ndarray, np.ndarray]  # grey values, labels


def _labels(vol: Volume) -> np.ndarray:
    assert vol.labels is not None
    return vol.labels


def _first(predicate, seeds=range(200)) -> int:
    """The first seed whose spec satisfies ``predicate`` (specs are cheap)."""
    return next(s for s in seeds if predicate(phantom_spec(s)))


@pytest.fixture(scope="module")
def phantoms() -> dict[int, Scan]:
    """Grey values and labels of a few default phantoms at a small size."""
    vols = {seed: make_phantom(seed, size=SIZE) for seed in SEEDS}
    return {seed: (vol.data, _labels(vol)) for seed, vol in vols.items()}


def _radius_mm(vol: Volume) -> np.ndarray:
    """In-plane distance (mm) of each voxel column from the volume's vertical axis."""
    _, ny, nx = vol.shape
    h = vol.spacing[0]
    y = (np.arange(ny) - (ny - 1) / 2.0) * h
    x = (np.arange(nx) - (nx - 1) / 2.0) * h
    return np.hypot(x[None, :], y[:, None])


# -- determinism, shape, names, arguments -----------------------------------------------------


@pytest.mark.parametrize("seed", [7, 123456])
def test_same_seed_gives_identical_arrays(seed: int) -> None:
    a, b = make_phantom(seed, size=32), make_phantom(seed, size=32)
    assert np.array_equal(a.data, b.data)
    assert np.array_equal(_labels(a), _labels(b))
    assert phantom_spec(seed) == phantom_spec(seed)


def test_different_seeds_differ(phantoms: dict[int, Scan]) -> None:
    (data_a, lab_a), (data_b, lab_b) = phantoms[0], phantoms[2]
    assert data_a.shape == data_b.shape  # both whole-head FOVs
    assert not np.array_equal(lab_a, lab_b)
    assert not np.allclose(data_a, data_b)
    assert phantom_spec(0).anatomy != phantom_spec(1).anatomy


@pytest.mark.parametrize("size", [32, 64, 100])
def test_whole_head_fov_shape_and_isotropic_spacing(size: int) -> None:
    vol = make_phantom(4, size=size, neutral={"fov"})
    assert vol.shape == phantom_shape(size) == (size, size, round(size * 13 / 16))
    assert vol.spacing == pytest.approx((FOV_MM[0] / size,) * 3)
    assert vol.name == "phantom-04" == phantom_name(4)
    assert vol.data.dtype == np.float32
    assert _labels(vol).dtype == np.uint8
    assert np.isfinite(vol.data).all()


def test_shape_follows_the_field_of_view() -> None:
    seed = _first(lambda s: s.fov.kind == "dental")
    spec = phantom_spec(seed)
    vol = make_phantom(seed, size=40)
    assert vol.shape == spec.shape(40) == phantom_shape(40, spec.fov.extent_mm)
    assert max(vol.shape) == 40 and vol.shape[1] == vol.shape[2] == 40  # a cylinder's box
    assert vol.spacing == pytest.approx((spec.fov.diameter / 40,) * 3)
    assert vol.extent_mm[0] == pytest.approx(spec.fov.height, abs=vol.spacing[0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seed": -1}, "non-negative integer"),
        ({"seed": 1.5}, "non-negative integer"),
        ({"seed": 1, "size": 8}, "size must be an integer >= 16"),
        ({"seed": 1, "neutral": {"noise", "dose"}}, r"unknown variation factor\(s\) \['dose'\]"),
    ],
    ids=["negative-seed", "float-seed", "tiny-size", "unknown-factor"],
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_phantom(**kwargs)


def test_default_split_has_every_kind_of_scan() -> None:
    assert len(TRAIN_PHANTOMS) == 32 and len(HELDOUT_PHANTOMS) == 16
    assert (*TRAIN_PHANTOMS, *HELDOUT_PHANTOMS) == tuple(f"phantom-{s:02d}" for s in range(48))
    assert list(PHANTOM_SEEDS) == list(range(48))
    for split in (TRAIN_PHANTOMS, HELDOUT_PHANTOMS):
        specs = [phantom_spec(int(name.split("-")[1])) for name in split]
        assert {s.fov.kind for s in specs} == set(FOV_KINDS)
        assert any(s.has_metal for s in specs) and not all(s.has_metal for s in specs)
        assert len({s.mapping.bits for s in specs}) >= 2
        assert any(s.mapping.gamma != 1.0 for s in specs)


# -- the neutral mechanism ---------------------------------------------------------------------


_FIELDS = {
    "fov": {"fov", "scatter"},  # the scatter grows with the irradiated volume
    "noise": {"noise"},
    "scatter": {"scatter", "shading", "cone_shading"},
    "beam_hardening": {"beam_hardening"},
    "kernel": {"kernel", "sharpen"},
    "grey_mapping": {"mapping"},
}


@pytest.mark.parametrize("factor", SCANNER)
def test_neutralising_a_factor_changes_only_that_factor(factor: str) -> None:
    for seed in (1, 2, 6):
        full, neutral = phantom_spec(seed), phantom_spec(seed, neutral={factor})
        assert neutral.neutral == {factor}
        changed = {
            f.name
            for f in dataclasses.fields(PhantomSpec)
            if f.name != "neutral" and getattr(full, f.name) != getattr(neutral, f.name)
        }
        assert changed <= _FIELDS[factor], (seed, changed)


def test_neutral_noise_keeps_labels_and_field_of_view() -> None:
    seed = _first(lambda s: s.fov.kind != "head" and s.noise > 30)
    a, b = make_phantom(seed, size=32), make_phantom(seed, size=32, neutral={"noise"})
    assert a.shape == b.shape and a.spacing == b.spacing
    assert np.array_equal(_labels(a), _labels(b))
    assert not np.array_equal(a.data, b.data)


def test_all_factors_neutral_is_a_plain_whole_head_scan_in_hu() -> None:
    vol = make_phantom(5, size=32, neutral=FACTORS)
    lab = _labels(vol)
    assert vol.shape == phantom_shape(32)
    med = {t: float(np.median(vol.data[lab == t])) for t in (Tissue.AIR, Tissue.SOFT_TISSUE)}
    assert med[Tissue.AIR] == pytest.approx(-1000.0, abs=30.0)
    assert -100.0 < med[Tissue.SOFT_TISSUE] < 100.0
    assert not (lab == Tissue.METAL).any()


# -- labels and tissues ------------------------------------------------------------------------


def test_all_tissues_present_and_metal_only_with_has_metal(phantoms: dict[int, Scan]) -> None:
    for seed, (_, lab) in phantoms.items():
        present = set(np.unique(lab).tolist())
        assert {Tissue.AIR, Tissue.SOFT_TISSUE, Tissue.BONE, Tissue.TEETH} <= present, seed
        assert (Tissue.METAL in present) == phantom_spec(seed).has_metal, seed


def test_metal_can_be_forced_on_and_off() -> None:
    seed_with = _first(lambda s: s.has_metal and s.fov.kind == "head")
    seed_without = _first(lambda s: not s.has_metal and s.fov.kind == "head")
    forced_on = make_phantom(seed_without, size=40, metal=True)
    forced_off = make_phantom(seed_with, size=40, metal=False)
    assert (_labels(forced_on) == Tissue.METAL).any()
    assert not (_labels(forced_off) == Tissue.METAL).any()
    assert phantom_spec(seed_without, metal=True).has_metal
    assert not phantom_spec(seed_with, metal=False).has_metal


def test_metal_raises_the_top_intensity_percentile() -> None:
    seed = _first(lambda s: len(s.anatomy.fillings) >= 2 and s.fov.kind == "dental")
    with_metal = make_phantom(seed, size=40, neutral={"grey_mapping"})
    without = make_phantom(seed, size=40, metal=False, neutral={"grey_mapping"})
    top_with, top_without = (np.percentile(v.data, 99.95) for v in (with_metal, without))
    assert top_with > top_without + 1000.0


def test_grey_value_ordering_per_scan(phantoms: dict[int, Scan]) -> None:
    for seed, (data, lab) in phantoms.items():
        med = {t: float(np.median(data[lab == t])) for t in np.unique(lab)}
        assert med[Tissue.TEETH] > med[Tissue.BONE] > med[Tissue.SOFT_TISSUE], seed
        assert med[Tissue.SOFT_TISSUE] > med[Tissue.AIR], seed
        if Tissue.METAL in med:
            assert med[Tissue.METAL] >= med[Tissue.TEETH], seed


def _centroid(mask: np.ndarray) -> np.ndarray:
    """Mean (z, y, x) index of a mask."""
    return np.array(np.nonzero(mask)).mean(axis=1)


@pytest.fixture(scope="module")
def whole_heads() -> dict[int, np.ndarray]:
    """Labels of a few phantoms in the whole-head field of view."""
    return {s: _labels(make_phantom(s, size=SIZE, neutral={"fov"})) for s in (0, 1, 2, 3)}


def test_whole_head_fits_its_cylinder_and_only_the_neck_leaves(
    whole_heads: dict[int, np.ndarray],
) -> None:
    for seed, lab in whole_heads.items():
        vol_shape = lab.shape
        h = FOV_MM[0] / vol_shape[0]
        y = (np.arange(vol_shape[1]) - (vol_shape[1] - 1) / 2.0) * h
        x = (np.arange(vol_shape[2]) - (vol_shape[2] - 1) / 2.0) * h
        rim = np.abs(np.hypot(x[None, :], y[:, None]) - FOV_MM[1] / 2.0) < 2.0 * h
        assert not (lab[:, rim] != Tissue.AIR).any(), seed  # nothing cut by the cylinder
        assert not (lab[-1] != Tissue.AIR).any(), seed  # the vertex is inside
        assert (lab[0] != Tissue.AIR).any(), seed  # the neck leaves through the bottom


def test_orientation_face_front_top_up_patient_left_at_high_x(
    whole_heads: dict[int, np.ndarray],
) -> None:
    for seed, lab in whole_heads.items():
        nz, ny, _ = lab.shape
        teeth = _centroid(lab == Tissue.TEETH)
        upper = np.zeros_like(lab, dtype=bool)
        upper[nz // 2 :] = True
        cranium = _centroid((lab == Tissue.BONE) & upper)
        assert teeth[0] < cranium[0] - 0.2 * nz, seed  # top of the head at high z
        assert teeth[1] < cranium[1] - 0.1 * ny, seed  # face at low y
    checked = 0  # restorations on one side only: those on the left (side 1) sit at high x
    for seed in range(40):
        spec = phantom_spec(seed, neutral={"fov"})
        sides = {side for _, side, _, _ in spec.anatomy.fillings}
        if len(sides) != 1 or checked == 2:
            continue
        lab = _labels(make_phantom(seed, size=SIZE, neutral={"fov"}))
        x_metal = _centroid(lab == Tissue.METAL)[2]
        middle = (lab.shape[2] - 1) / 2
        assert (x_metal > middle + 1) if sides == {1} else (x_metal < middle - 1), seed
        checked += 1
    assert checked == 2


# -- field of view -----------------------------------------------------------------------------


def test_small_fov_shows_the_jaws_without_the_cranium() -> None:
    seed = _first(lambda s: s.fov.kind == "dental")
    dental = make_phantom(seed, size=40)
    head = make_phantom(seed, size=40, neutral={"fov"})
    lab, h = _labels(dental), dental.spacing[0]
    assert dental.extent_mm[0] <= 92.0 and dental.extent_mm[1] <= 100.0
    assert (lab == Tissue.TEETH).any()
    # The volume ends below the orbits: its top is at most 55 mm above the teeth.
    z_teeth = np.nonzero(lab == Tissue.TEETH)[0].mean()
    assert (lab.shape[0] - 1 - z_teeth) * h < 55.0
    bone_mm3 = [
        np.count_nonzero(_labels(v) == Tissue.BONE) * v.spacing[0] ** 3 for v in (dental, head)
    ]
    assert bone_mm3[0] < 0.3 * bone_mm3[1]


def test_outside_the_cylinder_is_background_and_air() -> None:
    seed = _first(lambda s: s.fov.kind == "dental" and s.mapping.bits > 0)
    vol, spec = make_phantom(seed, size=32), phantom_spec(seed)
    outside = _radius_mm(vol) > spec.fov.diameter / 2.0
    assert outside[0, 0] and outside.mean() > 0.15  # the corners of the cylinder's box
    assert np.all(vol.data[:, outside] == spec.mapping.background)
    assert np.all(_labels(vol)[:, outside] == Tissue.AIR)


def test_truncation_raises_values_near_the_cylinder_edge() -> None:
    seed = _first(lambda s: s.fov.kind == "dental")
    vol, spec = make_phantom(seed, size=40, neutral=IDEAL), phantom_spec(seed)
    soft = _labels(vol) == Tissue.SOFT_TISSUE
    depth = spec.fov.diameter / 2.0 - _radius_mm(vol)
    rim, inner = soft & (depth < 5.0)[None], soft & (depth > 15.0)[None]
    assert np.median(vol.data[rim]) > np.median(vol.data[inner]) + 100.0


# -- dose, scatter, beam hardening, kernel -----------------------------------------------------


def _brain(vol: Volume) -> np.ndarray:
    """A block of soft tissue at the centre of the upper head (whole-head FOV)."""
    nz, ny, nx = vol.shape
    block = np.zeros(vol.shape, bool)
    block[
        int(0.68 * nz) : int(0.8 * nz), int(0.4 * ny) : int(0.6 * ny), int(0.4 * nx) : int(0.6 * nx)
    ] = True
    return block & (_labels(vol) == Tissue.SOFT_TISSUE)


def test_noise_has_its_standard_deviation_in_hu_and_neutral_removes_it() -> None:
    seed = _first(lambda s: s.noise > 40)
    noisy = make_phantom(seed, size=48, neutral=IDEAL - {"noise"} | {"fov"})
    quiet = make_phantom(seed, size=48, neutral=IDEAL | {"fov"})
    brain = _brain(noisy)
    sd_noisy, sd_quiet = float(noisy.data[brain].std()), float(quiet.data[brain].std())
    assert 0.6 * phantom_spec(seed).noise < sd_noisy < 1.5 * phantom_spec(seed).noise
    assert sd_quiet < 0.25 * sd_noisy


def test_noise_level_is_the_same_at_any_size() -> None:
    seed = _first(lambda s: s.noise > 40)
    sds = []
    for size in (32, 64):
        noisy = make_phantom(seed, size=size, neutral=IDEAL - {"noise"} | {"fov"})
        quiet = make_phantom(seed, size=size, neutral=IDEAL | {"fov"})
        sds.append(float((noisy.data - quiet.data)[_labels(quiet) == Tissue.SOFT_TISSUE].std()))
    assert sds[0] == pytest.approx(sds[1], rel=0.3)


def test_scatter_cups_the_head() -> None:
    seed = _first(lambda s: s.fov.kind == "head" and s.scatter > 0.015)
    cupped = make_phantom(seed, size=48, neutral=IDEAL - {"scatter"})
    flat = make_phantom(seed, size=48, neutral=IDEAL)
    lab = _labels(flat)
    z = int(0.75 * lab.shape[0])  # through the brain
    soft = lab[z] == Tissue.SOFT_TISSUE
    ys, xs = np.nonzero(soft)
    r = np.hypot(
        *np.meshgrid(np.arange(lab.shape[2]) - xs.mean(), np.arange(lab.shape[1]) - ys.mean())
    )
    centre, rim = soft & (r < 0.3 * r[soft].max()), soft & (r > 0.65 * r[soft].max())
    drop = [
        1.0 - (cupped.data[z][m] + 1000.0).mean() / (flat.data[z][m] + 1000.0).mean()
        for m in (centre, rim)
    ]
    assert drop[0] > drop[1] + 0.03  # cupping: the centre loses more than the periphery
    assert 0.05 < drop[0] < 0.3


def test_beam_hardening_darkens_dense_regions() -> None:
    seed = _first(lambda s: s.fov.kind == "head" and s.beam_hardening > 0.1 and not s.has_metal)
    hard = make_phantom(seed, size=48, neutral=IDEAL - {"beam_hardening"})
    mono = make_phantom(seed, size=48, neutral=IDEAL)
    diff, lab = hard.data - mono.data, _labels(mono)
    assert diff.min() < -30.0  # dark bands between dense bones
    assert np.mean(diff[lab == Tissue.BONE]) < -5.0  # cupping inside bone
    assert diff.max() < 0.5 * -diff.min()


def test_smooth_kernel_blurs_and_sharp_kernel_overshoots() -> None:
    def edge_energy(vol: Volume) -> float:  # mean squared gradient: blur lowers it
        grad = gradient_magnitude(vol.data, vol.spacing)
        return float(np.mean(grad[_labels(vol) != Tissue.AIR] ** 2))

    smooth = _first(lambda s: s.fov.kind == "dental" and s.kernel > 1.1)
    sharp = _first(lambda s: s.fov.kind != "head" and s.sharpen > 0.3)
    for seed, sign in ((smooth, -1), (sharp, 1)):
        vol = make_phantom(seed, size=40, neutral=IDEAL - {"kernel"})
        standard = make_phantom(seed, size=40, neutral=IDEAL)
        change = edge_energy(vol) / edge_energy(standard) - 1.0
        assert sign * change > 0.2, (seed, change)


# -- grey-value mapping ------------------------------------------------------------------------


def test_gamma_changes_the_ratio_of_tissue_distances() -> None:
    def ratio(vol: Volume) -> float:
        lab = _labels(vol)
        air, soft, bone = (np.median(vol.data[lab == t]) for t in (0, 1, 2))
        return float((bone - soft) / (soft - air))

    for low_gamma in (True, False):
        seed = _first(
            lambda s, low=low_gamma: (
                (s.mapping.gamma < 0.8 if low else s.mapping.gamma > 1.3)
                and s.mapping.lo_hu < -1050.0
                and s.fov.kind == "head"
            )
        )
        mapped = make_phantom(seed, size=32, neutral={"noise"})
        linear = make_phantom(seed, size=32, neutral={"noise", "grey_mapping"})
        if low_gamma:
            assert ratio(mapped) < 0.8 * ratio(linear), seed
        else:
            assert ratio(mapped) > 1.25 * ratio(linear), seed


def test_grey_mapping_unit() -> None:
    hu = np.array([-1000.0, 40.0, 1000.0])
    linear = GreyMapping(-1100.0, 2900.0, 0.0, 4095.0, 1.0, 12)
    bent = dataclasses.replace(linear, gamma=1.5)
    for m in (linear, bent):
        grey = m.to_grey(hu)
        assert np.all(grey == np.rint(grey)) and np.all(np.diff(grey) > 0)
    (a, s, b), (a2, s2, b2) = linear.to_grey(hu), bent.to_grey(hu)
    assert (b2 - s2) / (s2 - a2) > 1.3 * (b - s) / (s - a)
    assert linear.to_grey(np.array([-5000.0, 9000.0])).tolist() == [0.0, 4095.0]
    assert GreyMapping().to_grey(hu).tolist() == hu.tolist()  # the neutral mapping is HU


def test_integer_grey_values_in_their_bit_range(phantoms: dict[int, Scan]) -> None:
    for seed, (data, _) in phantoms.items():
        m = phantom_spec(seed).mapping
        assert m.bits in (12, 14, 16)
        assert np.all(data == np.rint(data)), seed
        assert data.min() >= m.vmin and data.max() <= m.vmax, seed
        assert m.vmax - m.vmin == 2**m.bits - 1 or (m.bits == 12 and m.vmax == 3071.0), seed


def test_clipping_saturates_the_bright_end() -> None:
    seed = _first(lambda s: s.mapping.vmin == 0.0 and s.mapping.hi_hu < 3000.0 and s.has_metal)
    vol, spec = make_phantom(seed, size=40), phantom_spec(seed)
    lab = _labels(vol)
    saturated = vol.data == spec.mapping.vmax
    assert np.mean(saturated[lab == Tissue.METAL]) > 0.5
    assert vol.data.max() == spec.mapping.vmax
    assert np.count_nonzero(saturated) >= 0.5 * np.count_nonzero(lab == Tissue.METAL)


def test_dark_end_clipping_saturates_air() -> None:
    seed = _first(lambda s: s.mapping.vmin == 0.0 and s.mapping.lo_hu > -950.0)
    vol = make_phantom(seed, size=32)
    assert np.mean(vol.data[_labels(vol) == Tissue.AIR] == 0.0) > 0.3


# -- expected tissue ranges and the spec value -------------------------------------------------


def test_tissue_range_covers_most_voxels_of_the_tissue(phantoms: dict[int, Scan]) -> None:
    for seed, (data, lab) in phantoms.items():
        spec = phantom_spec(seed)
        for tissue in np.unique(lab):
            lo, hi = spec.tissue_range(tissue, size=SIZE)
            assert lo <= hi
            values = data[lab == tissue]
            covered = np.mean((values >= lo) & (values <= hi))
            assert covered >= 0.8, (seed, Tissue(tissue).name, covered)


def test_tissue_range_follows_the_voxel_size() -> None:
    spec = phantom_spec(0, neutral={"fov", "grey_mapping", "noise"})
    coarse, fine = (spec.tissue_range(Tissue.TEETH, size=s) for s in (64, 256))
    assert coarse[0] < fine[1] and coarse[1] < fine[1]  # partial volume at 4 mm voxels


def test_tissue_range_rejects_unknown_tissue() -> None:
    with pytest.raises(ValueError, match="unknown tissue 9"):
        phantom_spec(0).tissue_range(9)


def test_spec_is_a_frozen_value() -> None:
    spec = phantom_spec(3)
    assert isinstance(spec, PhantomSpec)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.noise = 2.0  # type: ignore[misc]
    hu = np.array([-1000.0, 0.0, 1000.0])
    assert spec.to_grey(hu) == pytest.approx(spec.mapping.to_grey(hu))
