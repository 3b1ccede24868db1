"""Tiny smoke runs of the benchmark scripts: they run, print a table and write their JSON."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        encoding="utf-8",
        timeout=300,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def check_timing(t: dict, repeats: int) -> None:
    """A ``{"median_s", "min_s", "max_s", "n"}`` record of a timed measurement."""
    assert 1 <= t["n"] <= repeats
    assert 0 < t["min_s"] <= t["median_s"] <= t["max_s"] < 60
    assert all(math.isfinite(v) for v in t.values())


def test_bench_env_smoke(tmp_path):
    path = tmp_path / "env.json"
    stdout = _run(
        "bench_env.py",
        "--steps",
        "20",
        "--rounds",
        "2",
        "--warmup",
        "2",
        "--scenes",
        "headsq",
        "--procedural-resets",
        "2",
        "--torch-threads",
        "1",
        "--out",
        str(path),
    )
    record = json.loads(path.read_text())
    assert record["args"]["steps"] == 20 and record["args"]["scenes"] == "headsq"
    backends = {row["name"]: row for row in record["reward_backends"]["results"]}
    assert list(backends) == ["oracle", "reward_model", "reward_model, no cache"]
    for row in backends.values():
        assert row["steps_per_second"] > 0
    cached, uncached = (
        record["reward_backends"]["model_ms_per_step"][k] for k in list(backends)[1:]
    )
    assert cached < uncached  # the scene-feature cache is the measured difference
    vector = {row["name"]: row for row in record["vector_autoreset"]["results"]}
    assert vector["make_vec sync, next-step"]["rewards_per_vector_step"] < 1.2
    assert vector["make_vec, same-step"]["rewards_per_vector_step"] == pytest.approx(2.0)
    assert record["procedural"]["resets"] == 2
    assert record["machine"]["cores"] == os.cpu_count()
    assert record["machine"]["libraries"]["tfgym"] is not None
    rows = {row["name"]: row for row in record["results"]}
    assert list(rows) == ["unwrapped", "gym.make", "AsyncVectorEnv x2", "SubprocVecEnv x2"]
    baselines = {"unwrapped": None, "gym.make": "unwrapped"}
    for name, row in rows.items():
        rates = row["rates_per_round"]
        assert len(rates) == 2 and all(math.isfinite(r) and r > 0 for r in rates)
        assert row["steps_per_second"] == pytest.approx(statistics.median(rates))
        assert row["processes"] == (1 if name in baselines else 2)
        assert row["baseline"] == baselines.get(name, "gym.make")
        if row["baseline"] is None:
            assert row["ratio"] is None
        else:
            # the ratio is that of the reported rates, and the table prints it
            base = rows[row["baseline"]]["steps_per_second"]
            assert row["ratio"] == pytest.approx(row["steps_per_second"] / base)
            assert f"{row['ratio']:.2f}x vs {row['baseline']}" in stdout
        line = next(line for line in stdout.splitlines() if line.startswith(name))
        assert f"{row['steps_per_second']:.1f}" in line
    assert record["goal_met"] == (
        rows["gym.make"]["steps_per_second"] >= record["goal_steps_per_second"]
    )
    assert ("met" if record["goal_met"] else "MISSED") in stdout.split("goal:")[1]


def test_bench_render_smoke(tmp_path):
    pytest.importorskip("vtk")
    path = tmp_path / "render.json"
    stdout = _run(
        "bench_render.py",
        "--compare-scenes",
        "headsq",
        "--compare-sizes",
        "32",
        "--sizes",
        "32",
        "--batches",
        "1",
        "2",
        "--repeats",
        "2",
        "--warmup",
        "1",
        "--out",
        str(path),
    )
    assert "VTK/tfgym" in stdout
    record = json.loads(path.read_text())
    assert record["machine"]["opengl_renderer"]
    (row,) = record["tfgym_vs_vtk"]
    assert row["scene"] == "headsq" and max(row["shape"]) == 32
    for key in ("tfgym", "vtk", "vtk_tf_unchanged"):
        check_timing(row[key], repeats=2)
    assert row["speedup_tfgym_over_vtk"] == pytest.approx(
        row["vtk"]["median_s"] / row["tfgym"]["median_s"]
    )
    assert f"{row['speedup_tfgym_over_vtk']:.1f}" in stdout
    scaling = record["tfgym_scaling"]
    assert [(r["working_size"], r["batch"]) for r in scaling] == [(32, 1), (32, 2)]
    for r in scaling:
        check_timing(r["per_call"], repeats=2)
        assert r["per_tf_s"] == pytest.approx(r["per_call"]["median_s"] / r["batch"])


def test_bench_render_device_smoke_on_cpu(tmp_path):
    path = tmp_path / "device.json"
    _run(
        "bench_render_device.py",
        "--device",
        "cpu",
        "--sizes",
        "32",
        "--batches",
        "1",
        "2",
        "--repeats",
        "1",
        "--out",
        str(path),
    )
    record = json.loads(path.read_text())
    rows = record["rows"]
    assert [(row["size"], row["batch"]) for row in rows] == [(32, 1), (32, 2)]
    assert all(row["max_abs_alpha_diff"] < 1e-3 for row in rows)  # torch path == kernel
    assert all(row["max_contrib_diff_per_pixel"] < 1e-3 for row in rows)
    for row in rows:
        assert row["cpu_kernel_ms_per_tf"] > 0 and row["cpu_ms_per_tf"] > 0
        assert row["speedup"] == pytest.approx(row["cpu_kernel_ms_per_tf"] / row["cpu_ms_per_tf"])
