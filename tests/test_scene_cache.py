"""Scene names for any seed, scene pools, the phantom disk cache and the byte-bounded LRU."""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import threading
import weakref
from pathlib import Path

import numpy as np
import pytest

import tfgym.cache as cache
import tfgym.env as env_module
from tfgym.cache import (
    ByteLRU,
    cache_info,
    cached_phantom,
    clear_cache,
    phantom_cache_path,
    warm_phantoms,
)
from tfgym.env import TransferFunctionEnv
from tfgym.phantoms import HELDOUT_PHANTOMS, TRAIN_PHANTOMS, make_phantom, phantom_spec
from tfgym.scene import (
    PROCEDURAL_SEEDS,
    SCENE_CACHE,
    Scene,
    ScenePool,
    load_scene,
    phantom_seed,
    resolve_scenes,
    scene_nbytes,
    scene_pool,
)
from tfgym.scoring import RENDERER_CACHE

SIZE = 24  # small phantoms: the cache's mechanics do not depend on the size


@pytest.fixture
def disk(tmp_path, monkeypatch) -> Path:
    """An empty disk cache of this test, with the pruner's state reset."""
    root = tmp_path / "cache"
    monkeypatch.setenv("TFGYM_CACHE_DIR", str(root))
    monkeypatch.delenv("TFGYM_CACHE_MAX_MB", raising=False)
    monkeypatch.setattr(cache._Pruner, "total", -1)
    monkeypatch.setattr(cache._Pruner, "written", 0)
    return root


@pytest.fixture
def generations(monkeypatch) -> list[tuple[int, int]]:
    """``(seed, size)`` of every call of the real generator by the disk cache."""
    calls: list[tuple[int, int]] = []
    real = cache.make_phantom

    def counting(seed: int, *, size: int = 64):
        calls.append((seed, size))
        return real(seed, size=size)

    monkeypatch.setattr(cache, "make_phantom", counting)
    return calls


def digest(volume) -> str:
    h = hashlib.sha256()
    for a in (volume.data, volume.labels, np.asarray(volume.spacing)):
        h.update(np.ascontiguousarray(a).tobytes())
    return f"{volume.name}:{volume.shape}:{h.hexdigest()}"


def assert_same_volume(a, b) -> None:
    assert a.name == b.name and a.spacing == b.spacing
    assert a.data.dtype == np.float32 and a.labels.dtype == np.uint8
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.labels, b.labels)


# -- names and pools ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("phantom-7", "phantom-07"),
        ("phantom-07", "phantom-07"),
        ("phantom-0123456", "phantom-123456"),
    ],
    ids=["short", "canonical", "leading-zeros"],
)
def test_any_seed_is_a_scene_with_a_canonical_name(name, canonical):
    assert resolve_scenes(name) == (canonical,)
    assert phantom_seed(name) == int(canonical.split("-")[1])
    assert resolve_scenes([name, canonical, "headsq"]) == (canonical, "headsq")


def test_a_run_of_seeds_expands_into_names():
    assert resolve_scenes("phantom-10000+3") == ("phantom-10000", "phantom-10001", "phantom-10002")
    both = resolve_scenes(["train", "phantom-30+4"])  # overlap with train: no duplicates
    assert len(both) == 32 + 2 and both[-2:] == ("phantom-32", "phantom-33")
    pool = scene_pool(["train", "phantom-10000+512"])
    assert len(pool) == 544 and "phantom-10511" in pool and "phantom-10512" not in pool
    assert not pool.is_fresh("phantom-10003")  # named scenes: the process cache keeps them


@pytest.mark.parametrize(
    ("scenes", "match"),
    [
        ("phantom-x", "bad phantom name 'phantom-x'"),
        ("phantom--1", "bad phantom name 'phantom--1'.*non-negative"),
        ("phantom-", "bad phantom name"),
        ("phantom-3.5", "bad phantom name"),
        ("nope", "unknown scene 'nope'"),
        ("phantom-5+0", "bad seed run 'phantom-5\\+0'"),
        ("phantom-5+x", "bad phantom name 'phantom-5\\+x'"),
        ("procedural", "'procedural' is a pool of 1,000,000 phantom seeds"),
        ([], "no scenes given"),
    ],
    ids=[
        "letters",
        "negative",
        "empty-seed",
        "float",
        "unknown",
        "empty-run",
        "bad-run",
        "pool",
        "empty",
    ],
)
def test_bad_names_raise_value_error(scenes, match):
    with pytest.raises(ValueError, match=match):
        resolve_scenes(scenes)


def test_bad_phantom_names_raise_in_load_scene_and_the_env():
    with pytest.raises(ValueError, match="bad phantom name 'phantom-x'"):
        load_scene("phantom-x")
    with pytest.raises(ValueError, match="bad phantom name 'phantom--2'"):
        TransferFunctionEnv(scenes=["headsq", "phantom--2"])
    with pytest.raises(ValueError, match="cannot be mixed"):
        TransferFunctionEnv(scenes=["procedural", "headsq"])
    with pytest.raises(ValueError, match="non-negative"):
        ScenePool(seeds=range(-1, 3))
    with pytest.raises(ValueError, match="at least one"):
        ScenePool()


def test_procedural_pool_is_large_lazy_and_disjoint_from_the_benchmark_sets():
    pool = scene_pool("procedural")
    assert pool.seeds == PROCEDURAL_SEEDS and pool.names == ()
    assert len(pool) == 1_000_000
    assert pool[0] == "phantom-10000" and pool[-1] == "phantom-1009999"
    assert "phantom-10000" in pool and "phantom-1009999" in pool and "phantom-1010000" not in pool
    assert not any(name in pool for name in (*TRAIN_PHANTOMS, *HELDOUT_PHANTOMS, "headsq"))
    draws = [pool.sample(np.random.default_rng(3)) for _ in range(2)]
    assert draws[0] == draws[1]  # one rng, one draw: deterministic
    assert pool.is_fresh(draws[0])


def test_finite_pools_keep_the_sets_and_draw_like_before():
    pool = scene_pool(["train", "headsq"])
    assert pool.names == (*TRAIN_PHANTOMS, "headsq") and pool.seeds == range(0)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    assert [pool.sample(rng_a) for _ in range(20)] == [
        pool.names[int(rng_b.integers(len(pool.names)))] for _ in range(20)
    ]
    assert not pool.is_fresh("phantom-03")
    mixed = ScenePool(("headsq", "phantom-5"), seeds=range(5, 7))
    assert list(mixed) == ["headsq", "phantom-05", "phantom-05", "phantom-06"]
    assert (
        "phantom-6" in mixed and not mixed.is_fresh("phantom-05") and mixed.is_fresh("phantom-06")
    )


# -- the disk cache ----------------------------------------------------------------------------
def test_cached_phantom_is_bit_identical_from_disk_and_fresh(disk, generations):
    seed = 123_456
    first = cached_phantom(seed, size=SIZE)
    again = cached_phantom(seed, size=SIZE)  # read from disk: nothing in memory
    fresh = make_phantom(seed, size=SIZE)
    assert generations == [(seed, SIZE)]
    assert first.name == "phantom-123456" and max(first.shape) == SIZE
    assert_same_volume(first, fresh)
    assert_same_volume(again, fresh)
    path = phantom_cache_path(seed, SIZE)
    assert path is not None and path.is_file() and path.is_relative_to(disk)
    assert not list(path.parent.glob(".*"))  # no temporary file left


def test_a_disk_hit_does_not_generate_and_is_faster(disk, generations):
    import time

    start = time.perf_counter()
    cached_phantom(42, size=48)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    cached_phantom(42, size=48)
    warm = time.perf_counter() - start
    assert generations == [(42, 48)]
    assert warm < cold


def test_empty_cache_dir_turns_the_disk_cache_off(tmp_path, monkeypatch, generations):
    monkeypatch.setenv("TFGYM_CACHE_DIR", "")
    monkeypatch.chdir(tmp_path)
    assert phantom_cache_path(3, SIZE) is None and cache_info().root is None
    assert_same_volume(cached_phantom(3, size=SIZE), cached_phantom(3, size=SIZE))
    assert generations == [(3, SIZE), (3, SIZE)]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "other-seed"])
def test_a_corrupt_entry_is_regenerated_not_a_crash(disk, generations, damage):
    seed = 9
    good = cached_phantom(seed, size=SIZE)
    path = phantom_cache_path(seed, SIZE)
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip":  # one bit in the middle of the data: the zip CRC catches it
        flipped = bytearray(raw)
        flipped[len(raw) // 3] ^= 0x10
        path.write_bytes(bytes(flipped))
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # a valid entry, but of another phantom
        cached_phantom(seed + 1, size=SIZE)
        path.write_bytes(phantom_cache_path(seed + 1, SIZE).read_bytes())
    with pytest.warns(UserWarning, match="corrupt cache entry"):
        volume = cached_phantom(seed, size=SIZE)
    assert_same_volume(volume, good)
    assert generations.count((seed, SIZE)) == 2
    assert_same_volume(cached_phantom(seed, size=SIZE), good)  # repaired: no warning, no work
    assert generations.count((seed, SIZE)) == 2


def test_a_failed_write_leaves_no_entry_and_no_temporary_file(disk, monkeypatch):
    def crash_midway(file, **arrays):
        file.write(b"PK\x03\x04 half an entry")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache.np, "savez", crash_midway)
    with pytest.warns(UserWarning, match="cannot write the phantom cache.*No space left"):
        volume = cached_phantom(4, size=SIZE)
    assert_same_volume(volume, make_phantom(4, size=SIZE))
    path = phantom_cache_path(4, SIZE)
    assert not path.exists() and list(path.parent.iterdir()) == []


def test_an_unusable_cache_dir_degrades_to_generating(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("TFGYM_CACHE_DIR", str(blocker / "cache"))
    with pytest.warns(UserWarning, match="cannot write the phantom cache"):
        volume = cached_phantom(6, size=SIZE)
    assert_same_volume(volume, make_phantom(6, size=SIZE))
    assert cache_info().entries == 0


def _generate_at_once(seed, size, barrier, results) -> None:
    """In a child process: count generations, wait for the other child, load the phantom."""
    import tfgym.cache as child_cache

    calls = []
    real = child_cache.make_phantom

    def counting(seed, *, size):
        calls.append(seed)
        return real(seed, size=size)

    child_cache.make_phantom = counting  # type: ignore[assignment]
    barrier.wait(timeout=60)
    volume = child_cache.cached_phantom(seed, size=size)
    results.put((digest(volume), len(calls)))


def test_two_processes_generating_one_seed_at_once_both_get_it_right(disk):
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    seed, size = 31_337, 40
    workers = [
        context.Process(target=_generate_at_once, args=(seed, size, barrier, results))
        for _ in range(2)
    ]
    for w in workers:
        w.start()
    got = [results.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    expected = digest(make_phantom(seed, size=size))
    assert [d for d, _ in got] == [expected, expected]
    assert sum(n for _, n in got) == 1  # the entry lock: generated once, read by the other
    assert_same_volume(cached_phantom(seed, size=size), make_phantom(seed, size=size))


def test_info_clear_and_stale_versions(disk):
    cached_phantom(1, size=SIZE)
    cached_phantom(2, size=SIZE)
    info = cache_info()
    assert (info.root, info.entries, info.stale_entries) == (disk, 2, 0)
    entry = phantom_cache_path(1, SIZE)
    assert info.nbytes == 2 * entry.stat().st_size
    stale = disk / "phantoms" / "0123456789abcdef" / f"size-{SIZE}" / entry.name
    stale.parent.mkdir(parents=True)
    stale.write_bytes(entry.read_bytes())
    info = cache_info()
    assert (info.entries, info.stale_entries, info.stale_nbytes) == (2, 1, entry.stat().st_size)
    assert clear_cache(stale_only=True) == entry.stat().st_size
    assert not stale.exists() and not stale.parent.parent.exists()
    assert cache_info().entries == 2
    assert clear_cache() == info.nbytes
    assert (
        cache_info().entries == 0 and not (disk / "phantoms" / cache.generator_version()).exists()
    )


def test_the_disk_cache_stays_under_its_limit(disk, monkeypatch):
    one = cached_phantom(100, size=SIZE)
    entry = phantom_cache_path(100, SIZE).stat().st_size
    limit_mb = 2.5 * entry / 2**20
    monkeypatch.setenv("TFGYM_CACHE_MAX_MB", str(limit_mb))
    monkeypatch.setattr(cache._Pruner, "total", -1)
    for seed in (101, 102, 103):
        cached_phantom(seed, size=SIZE)
    info = cache_info()
    assert info.nbytes <= limit_mb * 2**20 and info.entries == 2
    assert not phantom_cache_path(100, SIZE).exists()  # least recently used went first
    assert phantom_cache_path(103, SIZE).exists()
    assert_same_volume(cached_phantom(100, size=SIZE), one)  # simply generated again


def test_warm_phantoms_fills_the_cache(disk, generations):
    done = sorted(warm_phantoms([5, 6], sizes=[SIZE, 16]))
    assert done == [(5, 16), (5, SIZE), (6, 16), (6, SIZE)]
    assert cache_info().entries == 4 and len(generations) == 4
    assert sorted(warm_phantoms([5], sizes=[SIZE])) == [(5, SIZE)]
    assert len(generations) == 4  # already there
    assert sorted(warm_phantoms([7, 8], sizes=[16], jobs=2)) == [(7, 16), (8, 16)]
    assert cache_info().entries == 6  # written by the worker processes
    assert_same_volume(cached_phantom(8, size=16), make_phantom(8, size=16))
    assert len(generations) == 4


def test_tfgym_scenes_warm_and_clear(disk, capsys):
    from tfgym.cli import main

    assert main(["scenes", "--warm", "phantom-3", "phantom-04", "--working-size", "32"]) == 0
    out = capsys.readouterr().out
    assert "2 phantoms at sizes [32, 64] are cached" in out
    assert cache_info().entries == 4
    assert main(["scenes"]) == 0
    out = capsys.readouterr().out
    assert "procedural" in out and "1,000,000" in out and "phantom-N" in out
    assert f"Phantom disk cache: {disk} (4 volumes" in out
    assert len(out.splitlines()) < 80  # the sets are described, not listed
    assert main(["scenes", "--clear-cache", "all"]) == 0
    assert cache_info().entries == 0
    for bad, message in [
        (["procedural"], "--warm procedural: the pool's million seeds"),
        (["headsq"], "no phantoms"),
        (["phantom-x"], "bad phantom name"),
    ]:
        assert main(["scenes", "--warm", *bad]) == 2
        assert message in capsys.readouterr().err


# -- the in-process caches ---------------------------------------------------------------------
def tiny_scenes(n: int) -> list[Scene]:
    from conftest import TINY_BINS, TINY_WORKING_SIZE, make_tiny_volume

    return [
        Scene.from_volume(
            make_tiny_volume(seed=i), working_size=TINY_WORKING_SIZE, histogram_bins=TINY_BINS
        )
        for i in range(n)
    ]


def test_scene_nbytes_counts_every_array():
    (scene,) = tiny_scenes(1)
    arrays = (
        scene.volume.data,
        scene.labels,
        scene.gradient,
        scene.bins,
        scene.counts,
        scene.observation,
    )
    assert scene_nbytes(scene) == sum(a.nbytes for a in arrays)


def test_byte_lru_evicts_by_bytes_least_recently_used_first():
    a, b, c = tiny_scenes(3)
    size = scene_nbytes(a)
    lru = ByteLRU(int(2.5 * size), scene_nbytes)
    assert lru.put("a", a) and lru.put("b", b)
    assert lru.get("a") is a  # "b" is now the least recently used
    assert lru.put("c", c)
    assert lru.keys() == ["a", "c"] and lru.nbytes == 2 * size
    lru.max_bytes = size
    assert lru.keys() == ["c"]
    small = ByteLRU(size - 1, scene_nbytes)
    assert not small.put("a", a) and len(small) == 0  # bigger than the budget: not kept
    assert small.get_or_build("a", lambda: a) is a and len(small) == 0


def test_byte_lru_builds_a_key_once_under_threads():
    lru: ByteLRU[str, bytes] = ByteLRU(100, len)
    builds = []
    start = threading.Barrier(4)

    def build() -> bytes:
        builds.append(1)
        threading.Event().wait(0.05)
        return b"x" * 10

    def worker(out: list[bytes]) -> None:
        start.wait()
        out.append(lru.get_or_build("k", build))

    out: list[bytes] = []
    threads = [threading.Thread(target=worker, args=(out,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and len(out) == 4 and all(o is out[0] for o in out)


def test_load_scene_cache_is_bounded_in_bytes(monkeypatch):
    scenes = [load_scene("headsq", working_size=n, cache=False) for n in (16, 20, 24)]
    budget = scene_nbytes(scenes[1]) + scene_nbytes(scenes[2]) + 1
    monkeypatch.setattr(SCENE_CACHE, "max_bytes", budget)
    SCENE_CACHE.clear()
    first = load_scene("headsq", working_size=16)
    assert load_scene("headsq", working_size=16) is first
    load_scene("headsq", working_size=20)
    load_scene("headsq", working_size=24)
    assert SCENE_CACHE.nbytes <= budget
    assert load_scene("headsq", working_size=16) is not first  # evicted, built again
    assert load_scene("headsq", working_size=16, cache=False) is not load_scene(
        "headsq", working_size=16
    )


# -- the env -----------------------------------------------------------------------------------
def test_env_procedural_draws_fresh_pool_seeds_at_each_reset():
    env = TransferFunctionEnv(scenes="procedural", image_size=32)
    names = []
    for i in range(4):
        obs, info = env.reset(seed=11 if i == 0 else None)
        assert env.observation_space.contains(obs)
        names.append(info["scene"])
        _, reward, terminated, _, info = env.step(env.action_space.sample())
        assert terminated and 0.0 <= reward <= 1.0
    assert len(set(names)) == 4
    benchmark = {*TRAIN_PHANTOMS, *HELDOUT_PHANTOMS}
    for name in names:
        assert name not in benchmark
        seed = phantom_seed(name)
        assert seed in PROCEDURAL_SEEDS and phantom_spec(seed).name == name
        assert not any(key[0] == name for key in SCENE_CACHE.keys())  # fresh: not kept
    again = TransferFunctionEnv(scenes="procedural", image_size=32)
    assert again.reset(seed=11)[1]["scene"] == names[0]
    with pytest.raises(ValueError, match="not from a list of scene names"):
        _ = env.scene_names
    env.close()


def test_env_scorers_are_bounded_and_release_their_scenes(monkeypatch):
    monkeypatch.setattr(env_module, "MAX_SCORERS", 2)
    env = TransferFunctionEnv(scenes=ScenePool(seeds=range(20_000, 20_003)), image_size=32)
    env.reset(seed=0, options={"scene": "phantom-20000"})
    env.step(env.action_space.sample())  # fills the renderer's and oracle's per-scene caches
    first = weakref.ref(env.scene)
    for seed in (20_001, 20_002):
        env.reset(options={"scene": f"phantom-{seed}"})
        env.step(env.action_space.sample())
    assert list(env._scorers) == ["phantom-20001", "phantom-20002"]
    SCENE_CACHE.clear()  # named scenes were also kept process-wide, and their renderers
    RENDERER_CACHE.clear()
    gc.collect()
    assert first() is None  # and with it every per-scene cache (weak keys)
    for _ in range(3):  # fresh draws never enter the process scene cache
        env.reset()
    assert len(env._scorers) == 2 and len(SCENE_CACHE) == 0
