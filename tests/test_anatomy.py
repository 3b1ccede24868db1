"""Tests for the phantoms' anatomy: the painted head, the patient, metal and aids factors."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import numpy as np
import pytest
from scipy import ndimage

from tfgym.phantoms.anatomy import AGES, Anatomy, draw_anatomy
from tfgym.phantoms.grid import Z_OCCLUSAL
from tfgym.phantoms.head import Head
from tfgym.phantoms.hu import HU_DENTIN, HU_ENAMEL, HU_TITANIUM
from tfgym.phantoms.neck import VERTEBRAE
from tfgym.phantoms.spec import phantom_spec
from tfgym.volume import Tissue

# Fields of the anatomy drawn from the head-shape stream, that no factor changes.
SHAPE_FIELDS = ("pose_deg", "shift_mm", "vault", "brow", "occiput", "arch_width", "arch_depth",
                "arch_alpha", "overjet", "chin", "gonial_width", "gonial_y", "ramus", "airway",
                "sinus_fluid", "lordosis", "tooth_jitter")  # fmt: skip
PATIENT_FIELDS = ("age", "bone_density", "fat", "teeth", "deciduous", "germs", "resorption")
AIDS_FIELDS = ("headrest_hu", "chin_rest", "bite_block")


def first_seed(test: Callable[[Anatomy], object], *, neutral=frozenset()) -> int:
    """The first seed whose anatomy passes ``test``."""
    return next(s for s in range(500) if bool(test(draw_anatomy(s, neutral=frozenset(neutral)))))


@functools.cache
def head(seed: int, size: int = 96, neutral: tuple[str, ...] = (), metal=None) -> Head:
    """The painted (noise-free) head of a seed in the whole-head field of view."""
    spec = phantom_spec(seed, metal=metal, neutral={"fov", *neutral})
    h = Head(spec, spec.shape(size), spec.fov.extent_mm)
    h.build()
    return h


def at(h: Head, points) -> tuple[np.ndarray, np.ndarray]:
    """Labels and HU at canonical points ``(..., 3)`` (nearest voxel; outside: AIR, -1000)."""
    w = h.world(np.asarray(points, dtype=float).reshape(-1, 3))
    idx = [
        np.round(w[:, k] / h.h + (n - 1) / 2).astype(int)
        for k, n in zip((2, 1, 0), h.shape, strict=True)
    ]
    ok = np.all([(i >= 0) & (i < n) for i, n in zip(idx, h.shape, strict=True)], axis=0)
    clipped = tuple(np.clip(i, 0, n - 1) for i, n in zip(idx, h.shape, strict=True))
    lab = np.where(ok, h.lab[clipped], Tissue.AIR)
    hu = np.where(ok, h.hu[clipped], -1000.0)
    shape = np.shape(points)[:-1]
    return lab.reshape(shape), hu.reshape(shape)


def canonical(h: Head, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Canonical coordinates of the voxels of a mask."""
    return h.X[mask], h.Y[mask], h.Z[mask]


# -- draw_anatomy: determinism and independent factors ----------------------------------------


def test_draw_anatomy_is_deterministic_and_varies() -> None:
    assert draw_anatomy(11) == draw_anatomy(11)
    assert draw_anatomy(11) != draw_anatomy(12)
    ages = {draw_anatomy(s).age for s in range(60)}
    assert ages == set(AGES)
    metal = [bool(draw_anatomy(s).fillings) for s in range(90)]
    assert 0.45 < np.mean(metal) < 0.85  # none for about a third of the seeds


@pytest.mark.parametrize("factor", ["patient", "metal", "aids"])
def test_neutralising_a_factor_changes_nothing_else(factor: str) -> None:
    groups = {"patient": PATIENT_FIELDS, "metal": ("fillings",), "aids": AIDS_FIELDS}
    for seed in range(40):
        drawn, neutral = draw_anatomy(seed), draw_anatomy(seed, neutral=frozenset({factor}))
        for name in SHAPE_FIELDS:
            assert getattr(drawn, name) == getattr(neutral, name), (seed, name)
        for other, fields in groups.items():
            if other == factor or (other == "metal" and factor == "patient"):
                continue  # restorations sit on the patient's teeth
            for name in fields:
                assert getattr(drawn, name) == getattr(neutral, name), (seed, factor, name)
        if drawn.age == "adult" or factor != "patient":  # a child's head is smaller
            assert drawn.scale == neutral.scale and drawn.skull == neutral.skull, seed


def test_neutral_values() -> None:
    a = draw_anatomy(
        first_seed(lambda a: a.age == "child"),
        neutral=frozenset(AGES and {"patient", "metal", "aids"}),
    )
    assert a.age == "adult" and a.bone_density == 1.0 and a.fillings == ()
    assert a.headrest_hu is None and not a.chin_rest and a.bite_block == 0.0
    assert sum(a.teeth) == 28 and not any(a.deciduous) and not any(a.germs)


def test_metal_argument_forces_restorations_on_and_off() -> None:
    plain = first_seed(lambda a: not a.fillings)
    assert len(draw_anatomy(plain, metal=True).fillings) >= 1
    assert draw_anatomy(plain, metal=True, neutral=frozenset({"metal"})).fillings
    assert draw_anatomy(first_seed(lambda a: len(a.fillings) > 2), metal=False).fillings == ()
    forced = draw_anatomy(plain, metal=True)
    assert dataclasses.replace(forced, fillings=()) == draw_anatomy(plain)


# -- the painted head ---------------------------------------------------------------------------


def test_labels_are_the_five_tissues_and_hu_finite() -> None:
    h = head(4)
    assert set(np.unique(h.lab).tolist()) <= {int(t) for t in Tissue}
    assert {Tissue.AIR, Tissue.SOFT_TISSUE, Tissue.BONE, Tissue.TEETH} <= set(np.unique(h.lab))
    assert np.isfinite(h.hu).all()
    again = Head(h.spec, h.shape, h.spec.fov.extent_mm)
    again.build()
    assert np.array_equal(again.lab, h.lab) and np.array_equal(again.hu, h.hu)


@pytest.mark.parametrize("seed", [0, 4, 9])
def test_vault_thickness_at_the_vertex(seed: int) -> None:
    h = head(seed, 192)
    line = np.stack([np.zeros(400), np.zeros(400), np.linspace(40, 100, 400)], 1)
    lab, hu = at(h, line)
    bone = lab == Tissue.BONE
    thickness = bone.sum() * (60.0 / 399)
    assert 3.0 < thickness < 10.0, thickness
    assert abs(thickness - h.an.skull) < 1.6 * h.h, (thickness, h.an.skull)
    # two cortical tables with cancellous diploe between them (where thick enough)
    if h.an.skull > 5.0:
        assert hu[bone].max() > hu[bone].min()
    # brain below the inner table, scalp above the outer one
    below, above = np.flatnonzero(bone)[[0, -1]]
    assert lab[below - 8] == Tissue.SOFT_TISSUE and lab[above + 8] == Tissue.SOFT_TISSUE


def test_skull_base_has_a_foramen_magnum_and_orbits_have_bony_walls() -> None:
    h = head(4, 128)
    lab, _ = at(h, [(0, 23, -64)])
    assert lab[0] == Tissue.SOFT_TISSUE  # the cord passes through the foramen magnum
    for sx in (-1, 1):
        centre = np.array([sx * 27.0, -60.0, -31.0])  # behind the eye, in the orbital cone
        assert at(h, centre[None])[0][0] == Tissue.SOFT_TISSUE
        for direction in ((0, 0, 1), (0, 0, -1), (sx, 0, 0), (-sx, 0, 0)):
            ray = centre + np.linspace(0, 30, 120)[:, None] * np.array(direction)
            labels = at(h, ray)[0]
            assert (labels == Tissue.BONE).any(), direction
            first = labels[np.argmax(labels != Tissue.SOFT_TISSUE)]
            # roof, floor and lateral wall are bone; the paper-thin medial wall borders the
            # ethmoid air cells
            assert first == Tissue.BONE or (first == Tissue.AIR and direction[0] == -sx)


def test_maxillary_sinuses_are_air_inside_bone() -> None:
    seed = first_seed(lambda a: a.sinus_fluid == 0 and a.age == "adult")
    h = head(seed, 128)
    for sx in (-1, 1):
        centre = np.array([sx * 28.0, -64.0, -58.0])
        assert at(h, centre[None])[0][0] == Tissue.AIR
        for direction in ((sx, 0, 0), (0, -1, 0), (0, 0, -1), (0, 0, 1)):
            ray = centre + np.linspace(0, 40, 160)[:, None] * np.array(direction)
            labels = at(h, ray)[0]
            first = labels[np.argmax(labels != Tissue.AIR)]
            assert first == Tissue.BONE, (sx, direction)


def test_nasal_cavity_with_septum_opens_through_the_aperture() -> None:
    h = head(4, 192)
    labels = at(h, np.stack([np.linspace(-12, 12, 97), np.full(97, -70.0), np.full(97, -62.0)], 1))[
        0
    ]
    assert (labels == Tissue.AIR).sum() > 0.5 * len(labels)  # the cavity
    assert labels[48] in (Tissue.BONE, Tissue.SOFT_TISSUE)  # the septum
    for sx in (-1, 1):  # the piriform aperture beside the septum
        ray = np.stack([np.full(80, sx * 6.0), np.linspace(-95, -75, 80), np.full(80, -66.0)], 1)
        assert not (at(h, ray)[0] == Tissue.BONE).any()


@pytest.mark.parametrize("seed", [1, 4])
def test_teeth_sit_in_the_jaws_with_enamel_over_dentine(seed: int) -> None:
    h = head(seed, 160)
    teeth = h.lab == Tissue.TEETH
    _, _, z = canonical(h, teeth)
    depth = np.where(z > Z_OCCLUSAL, z - h.occlusal_z(0), h.occlusal_z(1) - z)
    hu = h.hu[teeth]
    assert HU_ENAMEL > HU_DENTIN
    enamel = hu == HU_ENAMEL
    assert enamel.any() and (hu == HU_DENTIN).any()
    assert depth[enamel].max() < 13.0  # enamel caps the crowns only
    assert depth[hu == HU_DENTIN].max() > 18.0  # the roots are dentine
    # the roots are in bone: voxels next to deep tooth voxels are bone (or tooth)
    roots = teeth & (np.abs(h.Z - Z_OCCLUSAL) > 17.0)
    grown = np.zeros_like(roots)
    for axis in range(3):
        for step in (-1, 1):
            grown |= np.roll(roots, step, axis=axis)
    around = h.lab[grown & ~teeth]
    assert np.mean((around == Tissue.BONE) | (around == Tissue.SOFT_TISSUE)) > 0.97
    assert np.mean(around == Tissue.BONE) > 0.6


@pytest.mark.parametrize("seed", [4, 9])
def test_individual_teeth_are_separate_at_their_necks(seed: int) -> None:
    h = head(seed, 256)
    grid = np.arange(-60.0, 60.0, 0.5)
    x, y = np.meshgrid(grid, grid - 50.0, indexing="ij")
    for jaw, dz in ((0, 9.5), (1, -9.5)):  # axial planes through the necks of the teeth
        plane = np.stack([x, y, np.full_like(x, h.occlusal_z(jaw) + dz)], -1)
        teeth = at(h, plane)[0] == Tissue.TEETH
        n_parts = ndimage.label(teeth)[1]
        n_teeth = int(h.an.slots("teeth")[jaw].sum())
        # (the crowded lower incisors may touch at 1 mm voxels; a fused band would be 1 part)
        assert n_parts >= (0.75, 0.6)[jaw] * n_teeth, (jaw, n_parts, n_teeth)


def test_each_cervical_vertebra_in_the_field_of_view() -> None:
    h = head(4, 128)
    assert VERTEBRAE[:4] == ("C1", "C2", "C3", "C4")
    y = [h.vertebra_y(k) for k in range(4)]
    assert all(at(h, [(sx * 17, y[0] + 5, -74)])[0][0] == Tissue.BONE for sx in (-1, 1))  # C1
    assert at(h, [(0, y[0] - 3, -74)])[0][0] == Tissue.BONE  # dens inside the atlas ring
    for k, z in zip((1, 2, 3), (-101.0, -123.0, -142.0), strict=True):
        assert at(h, [(0, y[k] - 8, z)])[0][0] == Tissue.BONE, VERTEBRAE[k]  # body
        assert at(h, [(0, y[k] + 20, z)])[0][0] == Tissue.SOFT_TISSUE  # cord in the canal
    disc = (0.0, (y[2] + y[3]) / 2 - 8, (-123.0 - 142.0) / 2)
    assert at(h, [disc])[0][0] == Tissue.SOFT_TISSUE


# -- the patient factor -------------------------------------------------------------------------


def test_child_has_milk_teeth_and_unerupted_germs_inside_bone() -> None:
    seed = first_seed(lambda a: a.age == "child" and a.slots("germs")[:, :, 3].all())
    h = head(seed, 192)
    assert h.an.slots("deciduous").any()
    for jaw in (0, 1):
        for side in (0, 1):
            depth = h.an.slots("germs")[jaw, side, 3]
            f = h.frame(jaw, side, 3)
            centre = f.p0 + f.r * (depth + 3.0)  # the premolar germ's crown, under its groove
            assert at(h, centre[None])[0][0] == Tissue.TEETH
            assert abs(centre[2] - Z_OCCLUSAL) > 11.0  # below the erupted crowns
            ring = [centre + 8.0 * f.n, centre - 8.0 * f.n]  # buccal and lingual of it
            assert all(lab != Tissue.AIR for lab in at(h, ring)[0])


def test_edentulous_jaw_has_no_teeth_and_a_resorbed_ridge() -> None:
    seed = first_seed(lambda a: (~a.slots("teeth").reshape(2, -1)).all(axis=1).any())
    h = head(seed, 128)
    jaw = int(np.flatnonzero((~h.an.slots("teeth").reshape(2, -1)).all(axis=1))[0])
    _, _, z = canonical(h, h.lab == Tissue.TEETH)
    in_jaw = z > Z_OCCLUSAL if jaw == 0 else z < Z_OCCLUSAL
    assert not in_jaw.any()
    assert h.an.resorption[jaw] >= 6.0
    assert h.an.age == "elderly"


def test_neutral_patient_is_the_standard_adult_head() -> None:
    seed = first_seed(lambda a: a.age == "adult")
    drawn, neutral = head(seed, 64), head(seed, 64, ("patient",))
    assert drawn.an.scale == neutral.an.scale
    bone = lambda h: (h.lab == Tissue.BONE) & (h.Z > 0)  # noqa: E731  the vault
    assert np.mean(bone(drawn) == bone(neutral)) > 0.995


# -- metal and aids -----------------------------------------------------------------------------


def test_neutral_metal_paints_no_metal() -> None:
    seed = first_seed(lambda a: len(a.fillings) >= 2)
    assert (head(seed, 96).lab == Tissue.METAL).any()
    assert len(head(seed, 96).metal) >= len(draw_anatomy(seed).fillings)
    assert not (head(seed, 96, ("metal",)).lab == Tissue.METAL).any()
    assert head(seed, 96, ("metal",)).metal == []


def test_implants_are_titanium_inside_the_jaw_bone() -> None:
    seed = first_seed(lambda a: any(k == 3 for *_, k in a.fillings))
    h = head(seed, 192)
    jaw, side, i, _ = next(f for f in h.an.fillings if f[3] == 3)
    assert not h.an.slots("teeth")[jaw, side, i]  # where a tooth is missing
    f = h.frame(jaw, side, i)
    s = h.tooth_shape(jaw, side, i, milk=False)
    crest = s.ch + 1.5 + float(h.resorbed(jaw, np.array([h.tooth_slots(jaw, side)[0][i]]))[0])
    mid = f.p0 + f.r * (crest + 5.0)
    lab, hu = at(h, mid[None])
    assert lab[0] == Tissue.METAL and hu[0] == HU_TITANIUM
    around = at(h, [mid + 4.5 * f.n, mid - 4.5 * f.n])[0]
    assert (around == Tissue.BONE).all()


def test_aids_are_labelled_air_and_present_only_when_drawn() -> None:
    seed = first_seed(lambda a: a.headrest_hu is not None and a.bite_block > 0)
    h, plain = head(seed, 96), head(seed, 96, ("aids",))
    # air voxels the aids made dense (partial-volume edges of the anatomy are the same in both)
    aid = (h.lab == Tissue.AIR) & (h.hu > plain.hu + 100)
    assert aid.any()
    _, y, z = canonical(h, aid)
    assert y.max() > 95  # the headrest behind the occiput
    assert ((np.abs(z - Z_OCCLUSAL) < 4) & (y < -70)).any()  # the bite block
    # aids never overwrite the patient's bone (above the jaws the bite block moves nothing)
    upper = h.Z > -60.0
    assert np.array_equal((h.lab == Tissue.BONE) & upper, (plain.lab == Tissue.BONE) & upper)
    assert h.an.mouth_gap >= h.an.bite_block  # the bite block opens the mouth
