"""The hardness benchmark (benchmarks/bench_scenes.py) on a tiny set of scenes."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tfgym.oracle import reference_action
from tfgym.phantoms import make_phantom
from tfgym.phantoms.factors import FACTORS
from tfgym.scene import Scene
from tfgym.volume import Tissue

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ("phantom-00", "phantom-01")
HELDOUT = ("phantom-32", "phantom-33")
EPS = 1e-9


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    # the script imports its sibling _common, and worker processes import the script by name
    patch = pytest.MonkeyPatch()
    patch.syspath_prepend(str(ROOT / "benchmarks"))
    yield importlib.import_module("bench_scenes")
    patch.undo()


def tiny_args(bench: ModuleType, out: Path, **kwargs: object):
    args = bench.Args(
        out=out,
        train=TRAIN,
        heldout=HELDOUT,
        extra=("headsq",),
        cem_budget=48,
        cem_restarts=1,
        constant_budget=48,
        constant_restarts=1,
        population=16,
        working_size=32,
        image_size=32,
        factor_seeds=(),
        workers=1,
        progress=False,
    )
    return replace(args, **kwargs)


@pytest.fixture(scope="module")
def run(bench, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "scenes.json"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        record = bench.main(tiny_args(bench, out))
    return record, out, stdout.getvalue()


def test_hardness_table_structure_and_ratios(run):
    record, out, stdout = run
    assert json.loads(out.read_text()) == json.loads(json.dumps(record))
    assert out.with_suffix(".png").stat().st_size > 1000
    assert [r["scene"] for r in record["heldout"]] == list(HELDOUT)
    assert [r["scene"] for r in record["extra"]] == ["headsq"]
    assert record["extra"][0]["labels_approximate"] is True
    assert [r["scene"] for r in record["train"]] == list(TRAIN)
    for r in record["heldout"] + record["extra"] + record["train"]:
        # the best is at least the constant and the reference (both scored as candidates)
        assert r["best"] >= max(r["constant"], r["reference"], r["cem_only_best"]) - EPS
        assert 0.0 <= r["ratio"] <= 1.0 + EPS
        assert 0.0 <= r["reference_ratio"] <= 1.0 + EPS
        assert r["ratio"] == pytest.approx(r["constant"] / r["best"])
        assert r["best_is_a_seed"] == (r["best"] > r["cem_only_best"])
        line = next(line for line in stdout.splitlines() if line.startswith(r["scene"]))
        assert f"{r['best']:.3f}" in line and f"{r['ratio']:.2f}" in line
    # the constant fitted on the train scenes is close to each of their bests
    assert record["train_mean_ratio"] >= 0.8
    assert record["train_mean_ratio"] == pytest.approx(
        np.mean([r["ratio"] for r in record["train"]])
    )
    # the constant's scores recorded by the search are its table scores on its train scenes
    for r in record["train"]:
        assert record["constant"]["train_scores"][r["scene"]] == pytest.approx(r["constant"])
    assert record["constant"]["n_candidates"] == 48
    assert record["factors"] == []  # no factor seeds asked for


def test_summary_is_that_of_the_heldout_rows(run, bench):
    record, _, stdout = run
    s, rows, args = record["summary"], record["heldout"], record["args"]
    ratios = [r["ratio"] for r in rows]
    assert s["n_scenes"] == len(HELDOUT)
    assert s["mean_ratio"] == pytest.approx(np.mean(ratios))
    assert s["min_best"] == pytest.approx(min(r["best"] for r in rows))
    assert s["pass_mean_ratio"] == (s["mean_ratio"] <= args["goal_mean_ratio"])
    assert s["pass_min_best"] == (s["min_best"] >= args["goal_min_best"])
    for key, label in [
        ("pass_mean_ratio", "constant / best"),
        ("pass_low_share", "share of held-out scenes"),
        ("pass_min_best", "smallest held-out best"),
    ]:
        line = next(line for line in stdout.splitlines() if line.startswith(label))
        assert line.endswith("PASS" if s[key] else "FAIL")


def test_summary_thresholds(bench):
    args = bench.Args()
    rows = [
        {"ratio": q, "best": b, "reference_ratio": 1.0}
        for q, b in [(0.5, 0.9), (0.9, 0.86), (0.7, 0.95), (1.0, 0.84)]
    ]
    s = bench.summarize(rows, args)
    assert s["mean_ratio"] == pytest.approx(0.775) and s["pass_mean_ratio"]
    assert s["low_share"] == 0.25 and s["pass_low_share"]
    assert s["min_best"] == pytest.approx(0.84) and not s["pass_min_best"]
    s = bench.summarize(rows[1:], args)
    assert s["low_share"] == 0.0 and not s["pass_low_share"] and not s["pass_mean_ratio"]


@pytest.mark.slow  # two fresh worker processes import tfgym and compile its kernels
def test_parallel_rows_equal_serial_rows(bench, tmp_path):
    args = tiny_args(bench, tmp_path / "x.json", cem_budget=20)
    constant = reference_action(Scene.from_volume(make_phantom(0, size=32), working_size=32))
    serial = bench.scene_rows(args, HELDOUT, constant)
    parallel = bench.scene_rows(replace(args, workers=2), HELDOUT, constant)
    assert parallel == serial


def test_cluster_of_the_target_in_the_normalised_histogram(bench):
    scene = Scene.from_volume(make_phantom(3, size=32), working_size=32)
    c = bench.cluster(scene, [Tissue.BONE, Tissue.TEETH])
    assert c["voxels"] == int(np.isin(scene.labels, [Tissue.BONE, Tissue.TEETH]).sum()) > 0
    assert 0 <= c["x"] <= 1 and 0 <= c["y"] <= 1
    assert 0 < c["spread_x"] < 0.5 and 0 < c["spread_y"] < 0.5
    air = bench.cluster(scene, [Tissue.AIR])
    assert air["x"] < c["x"]  # bone is brighter than air
    # bin units over bins: the mean bin of the bone voxels, up to the half-bin of flooring
    bins = scene.bins[np.isin(scene.labels, [Tissue.BONE, Tissue.TEETH])]
    n = scene.ranges.n_intensity_bins
    assert c["x"] == pytest.approx(((bins % n) + 0.5).mean() / n, abs=0.02)


def test_factor_shifts(bench, tmp_path):
    args = tiny_args(bench, tmp_path / "x.json", factor_seeds=(0, 1))
    rows = bench.factor_shifts(args)
    if not bench.has_neutral():
        assert rows is None  # make_phantom(neutral=) has not landed
        return
    assert [r["factor"] for r in rows] == [*FACTORS, "all"]
    for r in rows:
        assert 0.0 <= r["mean_shift"] <= r["max_shift"] <= np.sqrt(2)
        assert set(r["per_seed"]) == {"0", "1"}
    # with every factor active the phantom is the default one of the seed
    default = bench.cluster(
        Scene.from_volume(make_phantom(1, size=32), working_size=32), [Tissue.BONE, Tissue.TEETH]
    )
    assert rows[-1]["per_seed"]["1"] == pytest.approx(default)
    assert max(r["mean_shift"] for r in rows) > 0.0
