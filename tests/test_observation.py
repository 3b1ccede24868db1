"""Tests of tfgym.observation: observation settings, scene checks and resolving settings."""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tfgym.histogram import HistogramRanges
from tfgym.observation import (
    DEFAULTS,
    ObservationMismatchError,
    ObservationSettings,
    resolve_settings,
)
from tfgym.scene import load_scene

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def obs32() -> ObservationSettings:
    return ObservationSettings.from_scene(load_scene("headsq", working_size=32), n_vertices=4)


@pytest.fixture(scope="module")
def obs64() -> ObservationSettings:
    return ObservationSettings.from_scene(load_scene("headsq", working_size=64), n_vertices=4)


def test_from_scene(obs32, obs64):
    scene = load_scene("headsq", working_size=32)
    assert obs32.scene == obs64.scene == "headsq"
    assert (obs32.working_size, obs64.working_size) == (32, 64)
    assert obs32.content_hash == scene.content_hash and obs32.content_hash.startswith("sha256:")
    assert obs32.content_hash != obs64.content_hash
    # every working size of a scan shares the histogram of its reference volume
    assert obs32.ranges == scene.ranges == obs64.ranges
    assert obs32.histogram_bins == 64 and obs32.n_vertices == 4 and obs32.action_size == 8
    assert all(isinstance(getattr(obs32, f), float) for f in ("intensity_min", "gradient_max"))
    small = ObservationSettings.from_scene(
        load_scene("headsq", working_size=32, histogram_bins=16), n_vertices=6
    )
    assert small.histogram_bins == 16 and small.n_vertices == 6
    assert small.content_hash == obs32.content_hash  # same voxels, other histogram


def test_dict_round_trip(obs32):
    d = obs32.to_dict()
    assert list(d) == [
        "scene",
        "content_hash",
        "working_size",
        "histogram_bins",
        "intensity_min",
        "intensity_max",
        "gradient_max",
        "n_vertices",
    ]
    assert ObservationSettings.from_dict(json.loads(json.dumps(d))) == obs32
    assert hash(ObservationSettings.from_dict(d)) == hash(obs32)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"scene": ""}, "scene must be a non-empty string"),
        ({"content_hash": "md5:abc"}, "content_hash must be 'sha256:'"),
        ({"content_hash": "sha256:" + "A" * 64}, "content_hash must be"),
        ({"working_size": "32"}, "working_size must be an int"),
        ({"working_size": True}, "working_size must be an int"),
        ({"working_size": 4}, "working_size must be at least 8"),
        ({"histogram_bins": 1}, "histogram_bins must be at least 2"),
        ({"n_vertices": 2}, "n_vertices must be at least 3"),
        ({"n_vertices": 4.0}, "n_vertices must be an int"),
        ({"intensity_min": "0"}, "intensity_min must be a number"),
        ({"intensity_max": float("nan")}, "intensity_max must be finite"),
        ({"intensity_max": -5.0}, "intensity_max must exceed intensity_min"),
        ({"gradient_max": 0}, "gradient_max must be positive"),
    ],
    ids=lambda v: v if isinstance(v, str) else next(iter(v)),
)
def test_from_dict_rejects_bad_values(obs32, change, match):
    with pytest.raises(ValueError, match=match):
        ObservationSettings.from_dict({**obs32.to_dict(), **change})


def test_from_dict_rejects_bad_shapes(obs32):
    d = obs32.to_dict()
    with pytest.raises(ValueError, match=r"miss fields \['working_size', 'n_vertices'\]"):
        ObservationSettings.from_dict(
            {k: v for k, v in d.items() if k not in ("working_size", "n_vertices")}
        )
    with pytest.raises(ValueError, match=r"unknown observation settings fields \['colour'\]"):
        ObservationSettings.from_dict({**d, "colour": "red"})
    with pytest.raises(ValueError, match="must be a JSON object, got NoneType"):
        ObservationSettings.from_dict(None)  # type: ignore[arg-type]


def test_non_square_histogram_is_refused():
    scene = load_scene("headsq", working_size=32)
    r = scene.ranges
    odd = replace(scene, ranges=HistogramRanges(r.intensity_min, r.intensity_max, 9.0, 64, 32))
    with pytest.raises(ValueError, match="32x64 histogram"):
        ObservationSettings.from_scene(odd, n_vertices=4)


# -- load_scene / verify ---------------------------------------------------------------------
def test_load_scene_round_trip(obs32, obs64):
    scene = obs32.load_scene()
    assert scene is load_scene("headsq", working_size=32)  # the process cache
    assert ObservationSettings.from_scene(scene, n_vertices=4) == obs32
    assert obs64.load_scene().content_hash == obs64.content_hash
    assert scene.observation.shape == (1, 64, 64)


def test_tampered_hash_is_refused(obs32):
    fake = "sha256:" + "0" * 64
    with pytest.raises(
        ObservationMismatchError,
        match=rf"scene 'headsq' at working_size=32 has content_hash {obs32.content_hash}.*"
        rf"labeled on content_hash {fake}",
    ):
        replace(obs32, content_hash=fake).load_scene()
    with pytest.raises(ObservationMismatchError, match="has content_hash"):  # 64 is not 32
        replace(obs32, content_hash=fake).verify(load_scene("headsq", working_size=64))


def test_ranges_are_compared_with_tolerance(obs32):
    close = replace(obs32, gradient_max=obs32.gradient_max * (1 + 1e-9))
    close.load_scene()
    far = replace(obs32, gradient_max=obs32.gradient_max * 1.01)
    with pytest.raises(
        ObservationMismatchError, match=r"gradient_max=.* labeled with gradient_max"
    ):
        far.load_scene()
    with pytest.raises(ObservationMismatchError, match="histogram intensity_min"):
        replace(obs32, intensity_min=obs32.intensity_min - 1.0).load_scene()


def test_modified_scan_file_is_refused(tmp_path):
    import SimpleITK as sitk

    rng = np.random.default_rng(0)
    path = tmp_path / "scan.nii.gz"
    data = rng.normal(0, 50, (12, 16, 16)).astype(np.float32)
    data[3:9, 4:12, 4:12] += 1000
    sitk.WriteImage(sitk.GetImageFromArray(data), str(path))
    obs = ObservationSettings.from_scene(load_scene(path, working_size=16), n_vertices=4)
    assert obs.scene == str(path.resolve())
    assert obs.load_scene().content_hash == obs.content_hash

    data[5, 8, 8] += 3000  # the scan is edited after labeling
    sitk.WriteImage(sitk.GetImageFromArray(data), str(path))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a new mtime for sure
    with pytest.raises(
        ObservationMismatchError, match=rf"scene '{re.escape(str(path.resolve()))}'.*changed"
    ):
        obs.load_scene()


# -- resolve_settings ------------------------------------------------------------------------
def test_resolve_defaults_and_explicit(obs32):
    assert DEFAULTS == {"working_size": 64, "histogram_bins": 64, "n_vertices": 4}
    assert resolve_settings([]) == dict(DEFAULTS)
    assert resolve_settings([None, None], working_size=32, n_vertices=6) == {
        "working_size": 32,
        "histogram_bins": 64,
        "n_vertices": 6,
    }
    expected = {"working_size": 32, "histogram_bins": 64, "n_vertices": 4}
    assert resolve_settings(iter([obs32, None, obs32])) == expected  # any iterable
    assert resolve_settings([obs32], working_size=32, histogram_bins=64, n_vertices=4) == expected
    other_scene = replace(obs32, scene="phantom-03", content_hash="sha256:" + "1" * 64)
    assert resolve_settings([obs32, other_scene]) == expected


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("working_size", 64, "labeled at working_size=32; working_size=64 was requested"),
        ("histogram_bins", 32, "labeled at histogram_bins=64; histogram_bins=32 was requested"),
        ("n_vertices", 6, "labeled at n_vertices=4; n_vertices=6 was requested"),
    ],
)
def test_resolve_conflict_with_explicit(obs32, field, value, match):
    with pytest.raises(ObservationMismatchError, match=f"^the preferences were {match}$"):
        resolve_settings([None, obs32], **{field: value})


def test_resolve_records_disagree(obs32, obs64):
    with pytest.raises(ObservationMismatchError, match=r"different working_size values \[32, 64\]"):
        resolve_settings([obs64, obs32, obs64])
    with pytest.raises(ObservationMismatchError, match=r"different n_vertices values \[4, 5\]"):
        resolve_settings([obs32, replace(obs32, n_vertices=5)], n_vertices=4)


def test_resolve_rejects_bad_input(obs32):
    with pytest.raises(ValueError, match="working_size must be an int"):
        resolve_settings([], working_size=True)
    with pytest.raises(ValueError, match="n_vertices must be at least 3"):
        resolve_settings([obs32], n_vertices=2)
    with pytest.raises(TypeError, match="item 1 is a dict, not ObservationSettings"):
        resolve_settings([obs32, obs32.to_dict()])  # type: ignore[list-item]
