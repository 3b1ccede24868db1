"""Caches: generated phantom volumes on disk, and a byte-bounded LRU in memory.

Disk cache
    :func:`cached_phantom` wraps :func:`tfgym.phantoms.make_phantom` (which stays pure): the
    volume of a (seed, size) is generated once and stored as an uncompressed ``.npz`` (the
    ``data`` float32 and ``labels`` uint8 arrays as ``.npy`` members, with ``spacing``,
    ``name``, ``seed``, ``size`` and ``version``) under::

        <cache dir>/phantoms/<generator version>/size-<size>/phantom-<seed>.npz

    * the cache dir is ``$TFGYM_CACHE_DIR`` if set, else the platform's user cache dir
      (``~/.cache/tfgym`` on Linux, via ``platformdirs``); ``TFGYM_CACHE_DIR=""`` (empty)
      turns the disk cache off: every volume is generated, nothing is written;
    * the generator version (:func:`generator_version`) hashes the source of
      ``tfgym/phantoms/*.py`` and ``tfgym/volume.py`` with the numpy and scipy versions, so
      any change of the generator makes the old entries stale (never read again);
    * a write goes to a temporary file in the same folder, is flushed to disk and renamed over
      the entry (``os.replace``): a reader sees a whole entry or none, whatever runs at once;
      a per-entry file lock (``filelock``, 1024 lock stripes) makes concurrent processes
      that want the same volume generate it once;
    * a corrupt or truncated entry (the zip's CRC, the shapes, dtypes and metadata are
      checked) is regenerated and replaced, with a warning, never a crash; an unwritable
      cache dir degrades to generating without caching;
    * the cache is bounded: past ``$TFGYM_CACHE_MAX_MB`` (default 10240 MiB) the least
      recently used entries (by file mtime, which a hit refreshes) are deleted, stale
      versions first in practice. A 64-voxel phantom takes about 1.1 MB, a 256-voxel one
      about 68 MB.

    :func:`cache_info` reports what is stored, :func:`clear_cache` deletes it and
    :func:`warm_phantoms` pre-generates a list of seeds (``tfgym scenes --warm``).

In-process cache
    :class:`ByteLRU` is a thread-safe least-recently-used mapping bounded by the total size
    of its values in bytes (``sizeof(value)``), not by their count; :mod:`tfgym.scene` keeps
    its scenes in one.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
import threading
import warnings
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

from tfgym.phantoms import make_phantom, phantom_name
from tfgym.volume import Volume

__all__ = [
    "CACHE_DIR_ENV",
    "CACHE_MAX_MB_ENV",
    "ByteLRU",
    "CacheInfo",
    "cache_dir",
    "cache_info",
    "cached_phantom",
    "clear_cache",
    "env_budget_bytes",
    "generator_version",
    "phantom_cache_path",
    "warm_phantoms",
]

CACHE_DIR_ENV = "TFGYM_CACHE_DIR"
CACHE_MAX_MB_ENV = "TFGYM_CACHE_MAX_MB"
DEFAULT_CACHE_MAX_MB = 10240
_LOCK_STRIPES = 1024
_LOCK_TIMEOUT_S = 600.0
_PACKAGE = Path(__file__).resolve().parent
_READ_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def cache_dir() -> Path | None:
    """The disk cache's root folder, or None when ``TFGYM_CACHE_DIR=""`` turns it off.

    Read from the environment at each call, so a process may change it at run time.
    """
    value = os.environ.get(CACHE_DIR_ENV)
    if value is None:
        import platformdirs

        return Path(platformdirs.user_cache_dir("tfgym", appauthor=False))
    if not value.strip():
        return None
    return Path(value).expanduser()


@functools.cache
def generator_version() -> str:
    """16 hex digits of the sha256 of the phantom generator's source and numeric libraries.

    Computed once per process from ``tfgym/phantoms/*.py``, ``tfgym/volume.py`` and the
    numpy and scipy versions: any edit of the generator changes it.
    """
    import scipy

    digest = hashlib.sha256(f"numpy {np.__version__} scipy {scipy.__version__}".encode())
    for path in [*sorted((_PACKAGE / "phantoms").glob("*.py")), _PACKAGE / "volume.py"]:
        digest.update(path.relative_to(_PACKAGE).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _check_int(value: int, what: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"phantom {what} must be an integer >= {low}, got {value!r}")
    return int(value)


def phantom_cache_path(seed: int, size: int) -> Path | None:
    """Where the volume of phantom ``seed`` at ``size`` is cached (None: cache off)."""
    root = cache_dir()
    if root is None:
        return None
    folder = root / "phantoms" / generator_version() / f"size-{size}"
    return folder / f"{phantom_name(seed)}.npz"


def cached_phantom(seed: int, *, size: int = 64) -> Volume:
    """:func:`tfgym.phantoms.make_phantom` ``(seed, size=size)`` through the disk cache.

    Args:
        seed: non-negative integer.
        size: voxels along the longest side (>= 16).

    Returns:
        The phantom's :class:`tfgym.volume.Volume`, bit-identical to a fresh
        ``make_phantom(seed, size=size)``.

    Raises:
        ValueError: a negative or non-integer seed, or a size below 16.

    Example:
        >>> vol = cached_phantom(5, size=32)
        >>> vol.name, vol.shape
        ('phantom-05', (32, 32, 26))
    """
    seed, size = _check_int(seed, "seed", 0), _check_int(size, "size", 16)
    path = phantom_cache_path(seed, size)
    if path is None:
        return make_phantom(seed, size=size)
    volume = _read_entry(path, seed, size)
    if volume is not None:
        return volume
    with _entry_lock(path):
        volume = _read_entry(path, seed, size)  # another process may have written it
        if volume is not None:
            return volume
        volume = make_phantom(seed, size=size)
        _write_entry(path, volume, seed, size)
    return volume


def _read_entry(path: Path, seed: int, size: int) -> Volume | None:
    """The cached volume, or None when absent or unusable (then it is regenerated)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as entry:
            meta = (int(entry["seed"]), int(entry["size"]), str(entry["version"]))
            if meta != (seed, size, generator_version()):
                raise ValueError(f"metadata {meta} does not match")
            data, labels = entry["data"], entry["labels"]
            spacing = entry["spacing"]
            name = str(entry["name"])
        if spacing.shape != (3,) or not np.all(np.isfinite(spacing) & (spacing > 0)):
            raise ValueError(f"spacing {spacing!r} is not three positive numbers")
        if data.ndim != 3 or data.dtype != np.float32:
            raise ValueError(f"data {data.dtype} {data.shape} is not a float32 volume")
        if labels.shape != data.shape or labels.dtype != np.uint8:
            raise ValueError(f"labels {labels.dtype} {labels.shape} are not uint8 {data.shape}")
    except _READ_ERRORS as e:
        warnings.warn(f"corrupt cache entry {path} ({e}); regenerating it", stacklevel=3)
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # a hit makes the entry recently used (see _prune)
    z, y, x = (float(s) for s in spacing)
    return Volume(data, (z, y, x), name, labels)


@contextlib.contextmanager
def _entry_lock(path: Path) -> Iterator[None]:
    """Hold the entry's lock stripe; no lock (still correct, maybe duplicate work) if none."""
    from filelock import FileLock, Timeout

    stripe = int(hashlib.sha256(path.name.encode()).hexdigest()[:8], 16) % _LOCK_STRIPES
    lock_file = path.parents[3] / "locks" / f"{stripe:04d}.lock"
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(lock_file, timeout=_LOCK_TIMEOUT_S)
        lock.acquire()
    except (OSError, Timeout):
        yield
        return
    try:
        yield
    finally:
        lock.release()


def _write_entry(path: Path, volume: Volume, seed: int, size: int) -> None:
    """Atomically store ``volume`` at ``path``; warn (and keep going) when it cannot."""
    assert volume.labels is not None  # phantoms always have their anatomy
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                data=volume.data,
                labels=volume.labels,
                spacing=np.asarray(volume.spacing, dtype=np.float64),
                name=np.asarray(volume.name),
                seed=np.asarray(seed),
                size=np.asarray(size),
                version=np.asarray(generator_version()),
            )
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        tmp = None
        _Pruner.after_write(path.stat().st_size)
    except OSError as e:
        warnings.warn(f"cannot write the phantom cache at {path} ({e}); not caching", stacklevel=3)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def env_budget_bytes(name: str, default_mb: float) -> int:
    """A memory budget in bytes from the environment variable ``name`` (MiB), else the default.

    Raises:
        ValueError: a value that is not a number of MiB >= 0.

    Example:
        >>> env_budget_bytes("TFGYM_NO_SUCH_BUDGET", 1.5)
        1572864
    """
    value = os.environ.get(name, "").strip()
    try:
        mb = float(value) if value else float(default_mb)
    except ValueError:
        mb = -1.0
    if not mb >= 0:
        raise ValueError(f"{name} must be a number of MiB >= 0, got {value!r}")
    return int(mb * 2**20)


def _max_bytes() -> int:
    value = os.environ.get(CACHE_MAX_MB_ENV, "").strip()
    try:
        mb = float(value) if value else DEFAULT_CACHE_MAX_MB
    except ValueError:
        raise ValueError(f"{CACHE_MAX_MB_ENV} must be a number of MiB, got {value!r}") from None
    return int(mb * 2**20)


def _entries(root: Path) -> list[tuple[float, int, Path]]:
    """``(mtime, bytes, path)`` of every stored volume and leftover temporary file."""
    out = []
    for path in (root / "phantoms").glob("*/size-*/*"):
        with contextlib.suppress(OSError):
            st = path.stat()
            out.append((st.st_mtime, st.st_size, path))
    return out


class _Pruner:
    """Keeps the disk cache under its limit: rescans after every 1 % of it written here."""

    lock = threading.Lock()
    written = 0  # bytes written by this process since the last scan
    total = -1  # bytes found by the last scan (-1: no scan yet)

    @classmethod
    def after_write(cls, nbytes: int) -> None:
        root, limit = cache_dir(), _max_bytes()
        if root is None:
            return
        with cls.lock:
            cls.written += nbytes
            if cls.total >= 0 and cls.total + cls.written <= limit and cls.written < limit / 100:
                return
            cls.total, cls.written = _prune(root, limit), 0


def _prune(root: Path, limit: int) -> int:
    """Delete the least recently used entries until at most 90 % of ``limit`` is left."""
    entries = sorted(_entries(root))
    total = sum(size for _, size, _ in entries)
    if total <= limit:
        return total
    for _, size, path in entries:
        if total <= 0.9 * limit:
            break
        with contextlib.suppress(OSError):
            path.unlink()
            total -= size
    return total


@dataclass(frozen=True)
class CacheInfo:
    """What the disk cache holds.

    Attributes:
        root: the cache folder (None: the cache is off).
        entries: volumes of the current generator version.
        nbytes: bytes of those entries.
        stale_entries: volumes of other generator versions (never read again).
        stale_nbytes: bytes of the stale entries and of leftover temporary files.
        max_bytes: the size limit past which old entries are deleted.
    """

    root: Path | None
    entries: int
    nbytes: int
    stale_entries: int
    stale_nbytes: int
    max_bytes: int


def cache_info() -> CacheInfo:
    """Count the entries and bytes of the disk cache."""
    root = cache_dir()
    if root is None:
        return CacheInfo(None, 0, 0, 0, 0, _max_bytes())
    current = [0, 0]
    stale = [0, 0]
    version = generator_version()
    for _, size, path in _entries(root):
        fresh = path.parents[1].name == version and path.suffix == ".npz"
        counts = current if fresh else stale
        counts[0] += path.suffix == ".npz"
        counts[1] += size
    return CacheInfo(root, current[0], current[1], stale[0], stale[1], _max_bytes())


def clear_cache(*, stale_only: bool = False) -> int:
    """Delete cached volumes (all, or those of other generator versions); return bytes freed.

    Only what tfgym wrote (``<cache dir>/phantoms`` and ``<cache dir>/locks``) is removed.
    """
    root = cache_dir()
    if root is None:
        return 0
    freed = 0
    version = generator_version()
    for _, size, path in _entries(root):
        if stale_only and path.parents[1].name == version and path.suffix == ".npz":
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            freed += size
    for folder in sorted((root / "phantoms").glob("*/size-*"), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty
            folder.parent.rmdir()
    if not stale_only:
        for lock in (root / "locks").glob("*.lock"):
            with contextlib.suppress(OSError):
                lock.unlink()
    return freed


def _warm_one(seed: int, size: int) -> tuple[int, int]:
    cached_phantom(seed, size=size)
    return seed, size


def warm_phantoms(
    seeds: Iterable[int], *, sizes: Iterable[int] = (64,), jobs: int = 1
) -> Iterator[tuple[int, int]]:
    """Generate (or find) the cached volume of every seed at every size.

    Args:
        seeds: phantom seeds.
        sizes: volume sizes (voxels along the longest side).
        jobs: worker processes (1: in this process).

    Yields:
        ``(seed, size)`` of each volume when it is in the cache, in order of completion.

    Example:
        >>> sorted(warm_phantoms([1, 2], sizes=[16]))
        [(1, 16), (2, 16)]
    """
    sizes = list(sizes)
    work = [
        (_check_int(seed, "seed", 0), _check_int(n, "size", 16)) for seed in seeds for n in sizes
    ]
    if jobs <= 1:
        for seed, size in work:
            yield _warm_one(seed, size)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(_warm_one, seed, size) for seed, size in work]
        for future in as_completed(futures):
            yield future.result()


class ByteLRU(Generic[K, V]):
    """A thread-safe least-recently-used mapping bounded by the bytes of its values.

    Args:
        max_bytes: budget; the least recently used values are dropped past it. A value
            larger than the whole budget is not stored (:meth:`get_or_build` still returns it).
        sizeof: bytes of a value.

    Example:
        >>> lru = ByteLRU(10, sizeof=len)
        >>> lru.put("a", b"12345"); lru.put("b", b"123456")
        True
        True
        >>> list(lru.keys()), lru.nbytes
        (['b'], 6)
    """

    def __init__(self, max_bytes: int, sizeof: Callable[[V], int]) -> None:
        self._max_bytes = int(max_bytes)
        self._sizeof = sizeof
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()
        self._building: dict[K, threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __repr__(self) -> str:
        return (
            f"ByteLRU({len(self)} items, {self._nbytes / 2**20:.1f} of "
            f"{self._max_bytes / 2**20:.1f} MiB)"
        )

    @property
    def nbytes(self) -> int:
        """Total bytes of the stored values."""
        return self._nbytes

    @property
    def max_bytes(self) -> int:
        """The budget in bytes; setting it evicts down to the new budget."""
        return self._max_bytes

    @max_bytes.setter
    def max_bytes(self, value: int) -> None:
        with self._lock:
            self._max_bytes = int(value)
            self._evict()

    def keys(self) -> list[K]:
        """Keys from least to most recently used."""
        with self._lock:
            return list(self._items)

    def get(self, key: K) -> V | None:
        """The value (now most recently used), or None."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: K, value: V) -> bool:
        """Store ``value``; False (nothing stored) when it alone exceeds the budget."""
        nbytes = int(self._sizeof(value))
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._nbytes -= old[1]
            if nbytes > self._max_bytes:
                return False
            self._items[key] = (value, nbytes)
            self._nbytes += nbytes
            self._evict()
            return True

    def get_or_build(self, key: K, build: Callable[[], V]) -> V:
        """The cached value, or ``build()`` stored; concurrent callers of a key build once."""
        value = self.get(key)
        if value is not None:
            return value
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        try:
            with building:
                value = self.get(key)  # built by another thread meanwhile
                if value is None:
                    value = build()
                    self.put(key, value)
            return value
        finally:
            with self._lock:
                self._building.pop(key, None)

    def clear(self) -> None:
        """Drop every value."""
        with self._lock:
            self._items.clear()
            self._nbytes = 0

    def _evict(self) -> None:
        while self._nbytes > self._max_bytes and self._items:
            _, (_, nbytes) = self._items.popitem(last=False)
            self._nbytes -= nbytes
