"""The code passes the project's linters: ruff (lint rules of pyproject.toml) and mypy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, check=False
    )


def test_ruff_check_is_clean():
    out = run("ruff", "check", "--no-cache", ".")
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_is_clean(tmp_path):
    pytest.importorskip("mypy")
    out = run("mypy", "--cache-dir", str(tmp_path), "tfgym", "reward_models", "agents")
    assert out.returncode == 0, out.stdout + out.stderr
