"""Tiny smoke runs of the benchmark scripts: they run, print a table and write their JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_bench_env_smoke(tmp_path):
    path = tmp_path / "env.json"
    stdout = _run(
        "bench_env.py",
        "--steps",
        "20",
        "--rounds",
        "1",
        "--warmup",
        "2",
        "--scenes",
        "headsq",
        "--out",
        str(path),
    )
    assert "gym.make" in stdout
    record = json.loads(path.read_text())
    assert record["machine"]["cores"] >= 1
    assert all(row["steps_per_second"] > 0 for row in record["results"])


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
    assert record["tfgym_vs_vtk"] and record["tfgym_scaling"]
    assert record["machine"]["opengl_renderer"]


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
    assert len(rows) == 2
    assert all(row["max_abs_alpha_diff"] < 1e-3 for row in rows)  # torch path == kernel
