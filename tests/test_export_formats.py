"""ImageVis3D .2dt and 3D Slicer volume-property export: round trips, IoU, malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tfgym.export import (
    opacity_map_iou,
    read_2dt,
    read_slicer,
    separable_opacity,
    write_2dt,
    write_slicer,
)
from tfgym.export.slicer import LEGACY_LINE_MAX
from tfgym.histogram import HistogramRanges
from tfgym.transfer_function import TransferFunction

RANGES = HistogramRanges(-100.0, 3000.0, 300.0, 64, 64, color_max=2400.0)
TRIANGLE = TransferFunction(((-0.5, -1.0), (0.5, -1.0), (0.0, 0.6)), opacity=0.7)


def test_2dt_round_trips_the_polygon_exactly(tmp_path: Path, rng: np.random.Generator) -> None:
    tf = TransferFunction.from_action(rng.uniform(-1, 1, 14), color_scheme="hot")
    write_2dt(tf, tmp_path / "tf.2dt", ranges=RANGES, size=(128, 64))
    back = read_2dt(tmp_path / "tf.2dt")
    assert back.size == (128, 64)
    assert back.tf1d.shape == (128, 4)
    assert not back.tf1d.any()
    (swatch,) = back.swatches
    assert not swatch.radial
    np.testing.assert_array_equal(swatch.vertices(), np.asarray(tf.vertices))
    assert all(0.0 <= v <= 1.0 for pt in swatch.points for v in pt)
    assert [rgba[3] for _, rgba in swatch.stops] == [tf.opacity] * 3
    # the scheme ends at color_max: 2500 / 3100 of the intensity axis
    assert swatch.stops[-1][0] == pytest.approx(2500.0 / 3100.0)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        pytest.param("", "2D width", id="empty"),
        pytest.param("4 4 2 0 0 0 0 0 0 0 0 1 0 3 0 0 1", "swatch 0's points", id="truncated"),
        pytest.param("4 4 x", "1D TF size must be an integer", id="not-a-number"),
        pytest.param("4 4 0 -1", "swatch count must be >= 0", id="negative"),
        pytest.param("4 4 0 1 2 0 0 0 0 0 0", "radial flag must be 0 or 1", id="flag"),
        pytest.param("4 4 0 0 7", "unexpected tokens", id="trailing"),
    ],
)
def test_2dt_malformed_raises(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "bad.2dt").write_text(text)
    with pytest.raises(ValueError, match=match):
        read_2dt(tmp_path / "bad.2dt")


def test_separable_opacity_is_exact_for_a_product() -> None:
    g, a = np.linspace(0.2, 1.0, 5), np.array([0.0, 0.3, 0.9, 0.5])
    a_hat, g_hat = separable_opacity(np.outer(g, a))
    np.testing.assert_allclose(np.outer(g_hat, a_hat), np.outer(g, a), atol=1e-12)
    assert g_hat.max() == pytest.approx(1.0)
    assert opacity_map_iou(np.outer(g, a), np.outer(g_hat, a_hat)) == 1.0


@pytest.mark.parametrize("legacy", [False, True], ids=["vp.json", "vp-legacy"])
def test_slicer_round_trip(tmp_path: Path, legacy: bool) -> None:
    path = tmp_path / ("tf.vp" if legacy else "tf.vp.json")
    out = write_slicer(TRIANGLE, path, RANGES, legacy=legacy)
    back = read_slicer(path)
    for a, b in [
        (out.scalar_opacity, back.scalar_opacity),
        (out.gradient_opacity, back.gradient_opacity),
        (out.color, back.color),
    ]:
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    assert back.color.shape == (4, 4)  # the bone scheme's 4 control points
    assert back.color[-1, 0] == pytest.approx(RANGES.color_top, rel=1e-5)
    # the triangle is not separable: the approximation is reported, and it is imperfect
    assert out.iou is not None
    assert 0.6 < out.iou < 0.9  # measured 0.75
    if legacy:
        assert back.iou is None
        lines = path.read_text().splitlines()
        assert len(lines) == 9
        assert max(map(len, lines)) <= LEGACY_LINE_MAX
    else:
        assert back.iou == out.iou
        doc = json.loads(path.read_text())
        assert doc["@schema"].endswith("volume-property-schema-v1.0.0.json#")
        point = doc["volumeProperties"][0]["components"][0]["scalarOpacity"]["points"][0]
        assert set(point) == {"x", "y", "midpoint", "sharpness"}
        assert TransferFunction.from_dict(doc["tfgym"]["transfer_function"]) == TRIANGLE


def test_slicer_legacy_fits_slicer_line_buffer(tmp_path: Path, rng: np.random.Generator) -> None:
    ranges = HistogramRanges(0.0, 3000.0, 300.0, 256, 256)
    tf = TransferFunction.from_action(rng.uniform(-1, 1, 16))
    write_slicer(tf, tmp_path / "tf.vp", ranges, legacy=True)
    assert max(map(len, (tmp_path / "tf.vp").read_text().splitlines())) <= LEGACY_LINE_MAX


def test_slicer_iou_on_the_bone_tf_over_headsq(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tfgym.oracle.reference import reference_action
    from tfgym.scene import load_scene

    scene = load_scene("headsq")
    tf = TransferFunction.from_action(reference_action(scene), ranges=scene.ranges)
    out = write_slicer(tf, tmp_path / "bone.vp.json", scene.ranges)
    assert out.iou is not None
    assert out.path is not None
    assert out.iou >= 0.95  # measured 1.0: the hand-made TF is a full-height band
    assert "IoU 1.000" in capsys.readouterr().out
    assert read_slicer(out.path).iou == out.iou


@pytest.mark.parametrize(
    ("text", "match"),
    [
        pytest.param("{not json", "malformed JSON", id="bad-json"),
        pytest.param('{"@schema": "x", "volumeProperties": []}', "volumeProperties", id="empty"),
        pytest.param(
            '{"@schema": "other", "volumeProperties": [{"components": [{}]}]}',
            "volume-property-schema",
            id="schema",
        ),
        pytest.param("1\n1\n0.9\n", "9 lines", id="short-legacy"),
        pytest.param(
            "1\n1\n0.9\n0.1\n0.2\n10\n3 0 0 1\n4 0 1 255 1\n4 0 1 1 1\n",
            "count then",
            id="odd-count",
        ),
        pytest.param("1\n1\nx\n0.1\n0.2\n10\n2 0 0\n2 0 1\n4 0 1 1 1\n", "diffuse", id="nan-line"),
    ],
)
def test_slicer_malformed_raises(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "bad.vp").write_text(text)
    with pytest.raises(ValueError, match=match):
        read_slicer(tmp_path / "bad.vp")


def test_export_tf_command_writes_every_format(tmp_path, capsys):
    from tfgym.cli import main

    for fmt, name in (("2dt", "tf.2dt"), ("vp.json", "tf.vp.json"), ("vp", "tf.vp")):
        assert main(["export-tf", "reference", "--format", fmt, "-o", str(tmp_path / name)]) == 0
        assert (tmp_path / name).stat().st_size > 0
    assert read_2dt(tmp_path / "tf.2dt").swatches
    assert read_slicer(tmp_path / "tf.vp.json").iou is not None
    assert main(["export-tf", "nope.json", "--format", "2dt", "-o", str(tmp_path / "x")]) == 2
    assert "not found: nope.json" in capsys.readouterr().err
    out = str(tmp_path / "a.vti")
    assert main(["export-tf", "reference", "--format", "vtk", "-o", out]) == 2
    assert "writes a folder" in capsys.readouterr().err
