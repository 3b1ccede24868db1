"""Shared fixtures: a seeded rng, single-threaded torch and a tiny labelled head-like volume.

The session's phantom disk cache is a temporary folder (``TFGYM_CACHE_DIR``, deleted at the
end) unless the user set ``TFGYM_CACHE_DIR``: tests never write into the user's cache.

Databases: ``db_url`` is the URL of a fresh, empty preference database per test, parametrised
over SQLite (a file in ``tmp_path``) and PostgreSQL (a new schema of a shared test database,
dropped afterwards; the URL's ``options=-csearch_path=...`` confines every connection made from
it to that schema) on one throwaway cluster per test session (``pg_cluster``, see
``tests/pg.py``; started only when a test asks for it; ``pg_cluster.create_database(name)``
gives a whole database). Without PostgreSQL's binaries the PostgreSQL variants skip, naming
what is missing. Use it as ``def test_x(db_url): LabelQueue(db_url)``; the URL also works in a
subprocess (``tfgym label --db URL``).

The tiny volume is small enough that slow pure-python references run over every voxel, and
already isotropic at the fixture's working size, so ``Scene.from_volume(tiny_volume,
working_size=24)`` keeps its voxels unchanged (no resampling).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator

import numpy as np
import pytest

from tests.pg import PostgresCluster, missing_reason
from tfgym.volume import Tissue, Volume

TINY_SHAPE = (24, 20, 16)  # (nz, ny, nx)
TINY_SPACING = 2.0  # mm, isotropic
TINY_WORKING_SIZE = 24  # == the longest side: the scene keeps the voxels as they are
TINY_BINS = 16

# Grey values of the tiny volume's tissues (HU-like).
TINY_VALUES = {
    Tissue.AIR: -1000.0,
    Tissue.SOFT_TISSUE: 40.0,
    Tissue.BONE: 1000.0,
    Tissue.TEETH: 2200.0,
}


_SESSION_CACHE: list[str] = []  # the temporary TFGYM_CACHE_DIR this process made, if any


def pytest_configure(config: pytest.Config) -> None:
    """Single-threaded torch (reproducible, no oversubscription); a temporary disk cache."""
    del config
    import torch

    torch.set_num_threads(1)
    if "TFGYM_CACHE_DIR" not in os.environ:  # inherited by subprocesses and xdist workers
        _SESSION_CACHE.append(tempfile.mkdtemp(prefix="tfgym-test-cache-"))
        os.environ["TFGYM_CACHE_DIR"] = _SESSION_CACHE[0]


def pytest_unconfigure(config: pytest.Config) -> None:
    """Delete the session's temporary disk cache."""
    del config
    for folder in _SESSION_CACHE:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop("TFGYM_CACHE_DIR", None)


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded numpy generator per test."""
    return np.random.default_rng(0)


def make_tiny_volume(noise: float = 5.0, seed: int = 0) -> Volume:
    """A labelled ``(24, 20, 16)`` volume: a bone sphere in a soft-tissue ellipsoid, in air.

    A small block of "teeth" sits on the face side (low y) below the sphere (low z), so the
    volume has no mirror symmetry along y or z. Grey values are :data:`TINY_VALUES` plus
    Gaussian noise of standard deviation ``noise``; labels are exact.
    """
    nz, ny, nx = TINY_SHAPE
    z, y, x = np.meshgrid(
        np.arange(nz) - (nz - 1) / 2,
        np.arange(ny) - (ny - 1) / 2,
        np.arange(nx) - (nx - 1) / 2,
        indexing="ij",
    )
    labels = np.full(TINY_SHAPE, Tissue.AIR, dtype=np.uint8)
    labels[(z / 11.0) ** 2 + (y / 9.0) ** 2 + (x / 7.0) ** 2 <= 1.0] = Tissue.SOFT_TISSUE
    labels[z**2 + y**2 + x**2 <= 4.5**2] = Tissue.BONE
    labels[(np.abs(x) <= 1.5) & (y >= -8.5) & (y <= -6.5) & (z >= -7.5) & (z <= -5.5)] = (
        Tissue.TEETH
    )
    data = np.zeros(TINY_SHAPE, dtype=np.float32)
    for tissue, value in TINY_VALUES.items():
        data[labels == tissue] = value
    data += np.random.default_rng(seed).normal(0.0, noise, TINY_SHAPE).astype(np.float32)
    return Volume(data, (TINY_SPACING,) * 3, name="tiny", labels=labels)


@pytest.fixture
def tiny_volume() -> Volume:
    """The tiny labelled volume of :func:`make_tiny_volume` (a fresh copy per test)."""
    return make_tiny_volume()


@pytest.fixture
def tiny_scene(tiny_volume: Volume):
    """``Scene.from_volume(tiny_volume, working_size=24, histogram_bins=16)``."""
    from tfgym.scene import Scene

    return Scene.from_volume(tiny_volume, working_size=TINY_WORKING_SIZE, histogram_bins=TINY_BINS)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster for the test session (skips if PostgreSQL is missing)."""
    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)
    cluster = PostgresCluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


_DATABASES = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """The URL of a fresh, empty database: an SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'prefs.sqlite'}"
        return
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    schema = f"test_{next(_DATABASES)}"
    url = cluster.create_schema("tfgym_tests", schema)
    try:
        yield url
    finally:
        cluster.drop_schema("tfgym_tests", schema)
