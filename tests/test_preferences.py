"""Tests of tfgym.preferences: records, the SQL store (SQLite and PostgreSQL), JSON Lines and
durability."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from tfgym.observation import ObservationSettings
from tfgym.preferences import (
    MU_VALUES,
    SCHEMA_VERSION,
    Preference,
    PreferenceStore,
    PreferenceStoreError,
)
from tfgym.preferences.db import database_url, transaction
from tfgym.transfer_function import TransferFunction

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
V1_STORE = DATA / "preferences_v1.sqlite"  # written by tfgym's version-1 code, see README.md
V1_JSONL = DATA / "preferences_v1.jsonl"  # the same records, exported by the same code


def make_pref(i: int = 0, **kw) -> Preference:
    tf_a = TransferFunction.from_action(np.array([0.1, -1, 0.5, -1, 0.5, 1, 0.1, 1]) - 0.01 * i)
    fields = {
        "scene": f"phantom-{i % 3:02d}",
        "action_a": tuple(tf_a.action.tolist()),
        "action_b": (0.2 + 0.001 * i, -0.3, 0.4, 0.5, -0.6, 0.7, 0.8, 1 / 3),
        "mu": (1.0, 0.5, 0.0)[i % 3],
        "labeler": "sim:noisy" if i % 2 else "alice",
        "created": f"2025-01-0{1 + i % 9}T12:34:56.789012+00:00",
        "tf_a": tf_a.to_dict(),
        "tf_b": None if i % 2 else {"vertices": [[0, 0], [1, 0], [0, 1]]},
        "render_a": f"renders/{i}_a.png",
        "render_b": None,
    }
    fields.update(kw)
    return Preference(**fields)


# -- records ---------------------------------------------------------------------------------
def test_preference_normalises_fields():
    p = Preference("headsq", np.array([0, 1], np.float32), [2, 3], mu=1, labeler="bob")
    assert p.action_a == (0.0, 1.0) and isinstance(p.action_a[0], float)
    assert p.mu == 1.0 and isinstance(p.mu, float)
    assert p.id is None and p.created.endswith("+00:00")
    assert p.winner == "a" and replace(p, mu=0.5).winner == "tie"
    assert Preference.from_dict(p.to_dict()) == p


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"mu": 0.3}, "mu must be one of"),
        ({"mu": "yes"}, "mu must be one of"),
        ({"mu": float("nan")}, "mu must be one of"),
        ({"scene": ""}, "scene must be a non-empty string"),
        ({"labeler": ""}, "labeler must be a non-empty string"),
        ({"action_a": (0.0, 1.0)}, "same length"),
        ({"action_b": ()}, "action_b must not be empty"),
        ({"action_a": (0.0,) * 7 + (math.inf,)}, "action_a must be finite"),
        ({"action_b": "abc"}, "sequence of numbers"),
        ({"created": "yesterday"}, "not an ISO-8601 time"),
        ({"created": "2025-01-01T00:00:00"}, "UTC offset"),
        ({"tf_a": "a tf"}, "tf_a must be a dict"),
        ({"render_b": 3}, "render_b must be a string"),
    ],
    ids=lambda v: v if isinstance(v, str) else next(iter(v)),
)
def test_preference_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        make_pref(**kw)


def test_from_dict_rejects_bad_records():
    d = make_pref().to_dict()
    with pytest.raises(ValueError, match="newer than this tfgym"):
        Preference.from_dict({**d, "version": SCHEMA_VERSION + 1})
    with pytest.raises(ValueError, match="unknown preference fields"):
        Preference.from_dict({**d, "colour": "red"})
    with pytest.raises(ValueError, match="missing preference fields"):
        Preference.from_dict({k: v for k, v in d.items() if k != "mu"})
    with pytest.raises(ValueError, match="not a preference record"):
        Preference.from_dict({**d, "format": "tfgym.TransferFunction"})


# -- store ---------------------------------------------------------------------------------
def test_store_round_trip_every_field(db_url):
    prefs = [make_pref(i) for i in range(7)]
    with PreferenceStore(db_url) as store:
        assert store.add(prefs[0]) == 1
        assert store.add_many(prefs[1:]) == list(range(2, 8))
        assert store.add_many([]) == []
    with PreferenceStore(db_url) as store:  # reopened
        got = store.records()
        assert len(store) == 7 and list(store) == got
        assert [p.id for p in got] == list(range(1, 8))
        assert [replace(p, id=None) for p in got] == prefs
        assert got[3].tf_a == prefs[3].tf_a and got[2].tf_b == prefs[2].tf_b  # eq=False fields
        assert TransferFunction.from_dict(got[0].tf_a) == TransferFunction.from_dict(prefs[0].tf_a)
        assert got[6].action_b[-1] == 1 / 3  # floats are exact
        assert store.scenes() == ["phantom-00", "phantom-01", "phantom-02"]
        assert [p.id for p in store.records(scene="phantom-01")] == [2, 5]
        assert [p.id for p in store.records(labeler="alice")] == [1, 3, 5, 7]
        assert [p.id for p in store.records(scene="phantom-01", labeler="alice")] == [5]
        assert store.integrity_check() == "ok"
        assert store.url == database_url(db_url) and store.engine.url.database
        assert store.schema_version == SCHEMA_VERSION


def test_sqlite_store_paths_and_journal(tmp_path):
    path = tmp_path / "prefs.sqlite"
    with PreferenceStore(path) as store:
        store.add(make_pref())
        assert store.path == str(path) and store.url == f"sqlite:///{path}"
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    with PreferenceStore(f"sqlite:///{path}") as store:  # the same file by URL
        assert len(store) == 1
    with PreferenceStore(tmp_path / "new" / "dir" / "p.sqlite") as other:  # parents created
        assert len(other) == 0
    store = PreferenceStore(path)
    store.close()
    store.close()  # idempotent
    with pytest.raises(PreferenceStoreError, match="is closed"):
        len(store)


def test_memory_store_and_urls():
    for url in (":memory:", "sqlite://", "sqlite:///:memory:"):
        with PreferenceStore(url) as store:
            store.add(make_pref())
            assert len(store) == 1 and store.path == ":memory:"
    with pytest.raises(PreferenceStoreError, match="unsupported database URL 'mysql://"):
        PreferenceStore("mysql://user@host/db")
    assert (
        database_url("postgresql://u:pw@host:5433/db") == "postgresql+psycopg://u:pw@host:5433/db"
    )
    assert database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert database_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert database_url("rel/p.sqlite") == "sqlite:///rel/p.sqlite"
    assert database_url(Path("/abs/p.sqlite")) == "sqlite:////abs/p.sqlite"
    with pytest.raises(ValueError, match="unsupported database URL"):
        database_url("postgresql+psycopg2://u@h/db")


def test_memory_store_is_shared_by_threads():
    """One in-memory database for all threads (not one per thread), writes serialised."""
    with PreferenceStore(":memory:") as store:
        errors: list[BaseException] = []

        def write(k: int) -> None:
            try:
                for i in range(10):
                    store.add_many([make_pref(i, labeler=f"t{k}")] * 3)
                    assert len(store) >= 3
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors and len(store) == 4 * 10 * 3


def test_threads_write_concurrently(db_url):
    """8 threads, one store: every record stored once, with its batch's ids in order."""
    with PreferenceStore(db_url) as store:
        batches: dict[int, list[list[int]]] = {}

        def write(k: int) -> None:
            batches[k] = [
                store.add_many([make_pref(i, labeler=f"t{k}") for _ in range(4)]) for i in range(5)
            ]

        threads = [threading.Thread(target=write, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(batches) == 8
        all_ids = sorted(i for b in batches.values() for batch in b for i in batch)
        assert all_ids == list(range(1, 161))  # PostgreSQL's writers interleave their ids ...
        for k, b in batches.items():
            assert all(batch == sorted(batch) for batch in b)  # ... each batch in order
            mine = sorted(i for batch in b for i in batch)
            assert [p.id for p in store.records(labeler=f"t{k}")] == mine
        if store.path is not None:  # SQLite's writers take turns: each batch contiguous
            assert all(batch[-1] - batch[0] == 3 for b in batches.values() for batch in b)


def test_which_transactions_wait_for_each_other(db_url):
    """SQLite: writers of a process queue on a lock, readers never wait; PostgreSQL: no lock."""
    with PreferenceStore(db_url) as store:
        store.add(make_pref())
        engine, sqlite = store.engine, store.path is not None
        inside = threading.Barrier(2, timeout=1.0)
        met: list[bool] = []

        def writer() -> None:
            with transaction(engine) as conn:  # SQLite: BEGIN IMMEDIATE, the write lock
                conn.exec_driver_sql("SELECT COUNT(*) FROM preferences")
                try:
                    inside.wait()
                    met.append(True)
                except threading.BrokenBarrierError:
                    met.append(False)

        threads = [threading.Thread(target=writer) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert met == ([False, False] if sqlite else [True, True])

        with transaction(engine) as conn:  # a write in progress ...
            conn.exec_driver_sql("UPDATE preferences SET labeler = 'x'")
            seen: list[str] = []
            reader = threading.Thread(target=lambda: seen.extend(p.labeler for p in store))
            reader.start()
            reader.join(timeout=5)  # ... does not hold up a reader, who sees the last commit
            assert seen == ["alice"]


def test_add_many_is_all_or_nothing(db_url):
    with PreferenceStore(db_url) as store:
        store.add(make_pref(0))
        with pytest.raises(TypeError, match="item 2 is a dict"):
            store.add_many([make_pref(1), make_pref(2), {"mu": 1}])  # type: ignore[list-item]
        # a failure inside the transaction (a constraint) rolls back the rows before it
        bad = make_pref(3)
        object.__setattr__(bad, "mu", 0.25)  # bypass validation to hit the CHECK constraint
        with pytest.raises(sa.exc.IntegrityError):
            store.add_many([make_pref(4), make_pref(5), bad])
        assert len(store) == 1
        assert store.add(make_pref(6)) >= 2  # the store still works


def test_schema_version_and_foreign_files(tmp_path):
    path = tmp_path / "p.sqlite"
    with PreferenceStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        store.add(make_pref())
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    newer = rf"schema version {SCHEMA_VERSION + 1}, newer than .*\({SCHEMA_VERSION}\)"
    with pytest.raises(PreferenceStoreError, match=newer):
        PreferenceStore(path)

    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(PreferenceStoreError, match="not a tfgym preference store"):
        PreferenceStore(other)

    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database at all, just some text" * 40)
    with pytest.raises(PreferenceStoreError, match="not a usable SQLite preference store"):
        PreferenceStore(junk)
    with pytest.raises(PreferenceStoreError, match="is a directory"):
        PreferenceStore(tmp_path)


def _pg_execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()


def test_postgresql_schema_version_and_foreign_databases(pg_cluster):
    url = pg_cluster.create_schema("tfgym_tests", "versions")
    with PreferenceStore(url) as store:
        assert store.schema_version == SCHEMA_VERSION and store.path is None
        store.add(make_pref())
    _pg_execute(url, f"UPDATE meta SET value = '{SCHEMA_VERSION + 1}' WHERE key = 'schema_version'")
    newer = rf"schema version {SCHEMA_VERSION + 1}, newer than .*\({SCHEMA_VERSION}\)"
    with pytest.raises(PreferenceStoreError, match=newer):
        PreferenceStore(url)
    _pg_execute(url, "DELETE FROM meta WHERE key = 'schema_version'")
    with pytest.raises(PreferenceStoreError, match="unknown preference store schema version 0"):
        PreferenceStore(url)

    other = pg_cluster.create_schema("tfgym_tests", "other")
    _pg_execute(other, "CREATE TABLE t (x INTEGER)")
    with pytest.raises(PreferenceStoreError, match="is a database but not a tfgym preference"):
        PreferenceStore(other)
    closed = f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/no_such_database"
    with pytest.raises(
        PreferenceStoreError, match=r"(?s)cannot open preference store .*no_such_database"
    ):
        PreferenceStore(closed)
    for name in ("versions", "other"):
        pg_cluster.drop_schema("tfgym_tests", name)


# -- JSON Lines ------------------------------------------------------------------------------
def test_jsonl_round_trip_into_fresh_store(tmp_path, db_url):
    prefs = [make_pref(i) for i in range(10)]
    out = tmp_path / "sub" / "prefs.jsonl"
    with PreferenceStore(":memory:") as src:
        src.add_many(prefs)
        assert src.export_jsonl(out) == 10
        assert src.export_jsonl(tmp_path / "a.jsonl", labeler="alice") == 5
    lines = out.read_text().splitlines()
    assert len(lines) == 10 and json.loads(lines[0])["format"] == "tfgym.Preference"
    with PreferenceStore(db_url) as dst:
        dst.add(make_pref(42))  # imported records get new ids after existing ones
        assert dst.import_jsonl(out) == 10
        got = dst.records()[1:]
        assert [p.id for p in got] == list(range(2, 12))
        assert [replace(p, id=None) for p in got] == prefs
        assert [p.tf_a for p in got] == [p.tf_a for p in prefs]


@pytest.mark.parametrize(
    ("bad_line", "match"),
    [
        ("{not json", "malformed preference record"),
        ('{"scene": "headsq"}', "missing preference fields"),
        ("[1, 2, 3]", "expected a JSON object"),
        ("MU", "mu must be one of"),
    ],
    ids=["not-json", "missing-fields", "not-object", "bad-mu"],
)
def test_malformed_jsonl_line_imports_nothing(tmp_path, bad_line, match):
    with PreferenceStore(":memory:") as src:
        src.add_many([make_pref(i) for i in range(5)])
        path = tmp_path / "p.jsonl"
        src.export_jsonl(path)
    lines = path.read_text().splitlines()
    if bad_line == "MU":
        bad_line = json.dumps({**json.loads(lines[3]), "mu": 2})
    lines.insert(3, "")  # blank lines are skipped but counted
    lines[4] = bad_line  # replaces the 4th record, now on line 5
    path.write_text("\n".join(lines) + "\n")
    with PreferenceStore(":memory:") as dst:
        with pytest.raises(PreferenceStoreError, match=rf"p\.jsonl:5: .*{match}"):
            dst.import_jsonl(path)
        assert len(dst) == 0
        with pytest.raises(FileNotFoundError, match="preference file not found"):
            dst.import_jsonl(tmp_path / "missing.jsonl")


# -- durability ------------------------------------------------------------------------------
WRITER = textwrap.dedent(
    """
    import sys, time
    from sqlalchemy import event
    from tfgym.preferences import Preference, PreferenceStore
    from tfgym.preferences.db import make_engine

    path, batch, pause_batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    engine = make_engine(path)
    k, inserts = 0, 0

    def trace(sql):
        global inserts
        if sql.startswith("INSERT"):
            inserts += 1
        if k == pause_batch and inserts and sql == "COMMIT":  # all rows written, not committed
            print("mid", flush=True)
            time.sleep(60)

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, record):
        dbapi_connection.execute("PRAGMA cache_size = 4")  # spill uncommitted pages to the WAL
        dbapi_connection.set_trace_callback(trace)

    store = PreferenceStore(engine)
    while True:
        inserts = 0
        store.add_many(
            Preference(
                "phantom-00", (0.1 * i, 0.2, 0.3, 0.4), (0.5, 0.6, 0.7, 0.8),
                mu=1.0, labeler=f"batch-{k}", render_a="x" * 200,
            )
            for i in range(batch)
        )
        print(k, flush=True)
        k += 1
    """
)


@pytest.mark.parametrize("mid_transaction", [True, False], ids=["mid-transaction", "anywhere"])
def test_killed_writer_leaves_whole_committed_batches(tmp_path, mid_transaction):
    """Kill -9 a writer at the COMMIT of its 6th batch (or wherever it is after 5 batches)."""
    path, batch = tmp_path / "p.sqlite", 400
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    pause = 5 if mid_transaction else -1
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(batch), str(pause)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        committed = -1
        while True:
            line = proc.stdout.readline().strip()  # type: ignore[union-attr]
            assert line, proc.stderr.read()  # type: ignore[union-attr]
            if line == "mid":
                break
            committed = int(line)
            wal_size = Path(f"{path}-wal").stat().st_size
            if not mid_transaction and committed == 4:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    if mid_transaction:
        assert committed == 4
        assert Path(f"{path}-wal").stat().st_size > wal_size  # uncommitted pages in the WAL
    with PreferenceStore(path) as store:
        assert store.integrity_check() == "ok"
        n = len(store)
        assert n % batch == 0, f"{n} records: a partial batch survived"
        assert n >= (committed + 1) * batch  # nothing committed was lost
        if mid_transaction:
            assert n == 5 * batch
        labelers = [p.labeler for p in store.records()]
        counts = {lab: labelers.count(lab) for lab in set(labelers)}
        assert set(counts.values()) == {batch}
        assert sorted(counts) == sorted(f"batch-{k}" for k in range(n // batch))
        store.add(make_pref())  # and it accepts new writes


# -- observation settings in records ---------------------------------------------------------
def make_obs(scene: str = "phantom-00", working_size: int = 32, **kw) -> ObservationSettings:
    fields = {
        "scene": scene,
        "content_hash": "sha256:" + f"{working_size:02x}" * 32,
        "working_size": working_size,
        "histogram_bins": 64,
        "intensity_min": -1000.0,
        "intensity_max": 2500.0 + 1 / 3,
        "gradient_max": 151.8647918701172,
        "n_vertices": 4,
    }
    fields.update(kw)
    return ObservationSettings(**fields)


def test_schema_version_is_2():
    assert SCHEMA_VERSION == 2 and MU_VALUES == (1.0, 0.5, 0.0)
    d = make_pref(observation=make_obs()).to_dict()
    assert d["version"] == 2 and d["observation"] == make_obs().to_dict()
    assert make_pref().to_dict()["observation"] is None


def test_preference_observation_validation():
    with pytest.raises(ValueError, match="observation must be ObservationSettings or None"):
        make_pref(observation=make_obs().to_dict())
    with pytest.raises(ValueError, match=r"n_vertices=5 \(10 numbers per action\).* have 8"):
        make_pref(observation=make_obs(n_vertices=5))
    d = make_pref(observation=make_obs()).to_dict()
    with pytest.raises(ValueError, match=r"malformed observation: .*working_size must be an int"):
        Preference.from_dict({**d, "observation": {**d["observation"], "working_size": "32"}})
    with pytest.raises(ValueError, match="version-1 preference record cannot carry"):
        Preference.from_dict({**d, "version": 1})
    assert Preference.from_dict({**d, "version": 1, "observation": None}).observation is None


def test_store_and_jsonl_round_trip_with_observation(tmp_path, db_url):
    prefs = [
        make_pref(i, observation=None if i == 2 else make_obs(f"phantom-{i % 3:02d}", 32 + i))
        for i in range(6)
    ]
    with PreferenceStore(db_url) as store:
        assert store.schema_version == 2
        store.add_many(prefs)
    with PreferenceStore(db_url) as store:
        got = [replace(p, id=None) for p in store.records()]
        assert got == prefs
        assert got[0].observation == prefs[0].observation and got[2].observation is None
        assert store.records(scene="phantom-01")[0].observation == make_obs("phantom-01", 33)
        store.export_jsonl(tmp_path / "p.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert {d["version"] for d in lines} == {2}
    assert lines[1]["observation"] == make_obs("phantom-01", 33).to_dict()
    assert lines[2]["observation"] is None
    with PreferenceStore(":memory:") as dst:
        assert dst.import_jsonl(tmp_path / "p.jsonl") == 6
        assert [replace(p, id=None) for p in dst.records()] == prefs


def test_malformed_stored_observation(db_url):
    with PreferenceStore(db_url) as store:
        store.add(make_pref(observation=make_obs()))
        with pytest.raises(sa.exc.IntegrityError, match=r"(?i)check"):  # not a JSON object
            with store.engine.begin() as conn:
                conn.exec_driver_sql("UPDATE preferences SET observation = '[1]'")
        with store.engine.begin() as conn:
            conn.exec_driver_sql("""UPDATE preferences SET observation = '{"scene": "x"}'""")
        with pytest.raises(PreferenceStoreError, match="record 1 has malformed observation"):
            store.records()
        assert "record 1 has malformed observation" in store.integrity_check() or (
            store.path is not None  # SQLite's integrity_check looks at pages, not JSON
        )


# -- version-1 files -------------------------------------------------------------------------
def _table_info(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute("PRAGMA table_info(preferences)").fetchall()


def _indexes(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute("PRAGMA index_list(preferences)").fetchall()


def _schema(store: PreferenceStore) -> list[tuple]:
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT sql FROM sqlite_master ORDER BY name")
        return [tuple(r) for r in rows]


def _v1_copy(tmp_path: Path) -> Path:
    path = tmp_path / "v1.sqlite"
    shutil.copyfile(V1_STORE, path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "observation" not in [c[1] for c in _table_info(conn)]
    conn.close()
    return path


def _comparable(d: dict) -> dict:
    """A record dict without the fields that version 2 changed (version) or added."""
    return {k: v for k, v in d.items() if k not in ("version", "observation")}


def test_v1_store_upgrades_in_place(tmp_path):
    path = _v1_copy(tmp_path)
    written = [json.loads(line) for line in V1_JSONL.read_text().splitlines()]
    with PreferenceStore(path) as store:
        assert store.schema_version == 2
        got = store.records()
        assert [_comparable(p.to_dict()) for p in got] == [_comparable(d) for d in written]
        assert [p.mu for p in got] == [1.0, 0.5, 0.0, 1.0, 0.5]  # two ties
        assert [p.id for p in got] == [1, 2, 3, 4, 5]
        assert all(p.observation is None for p in got)
        assert got[0].render_a == "renders/0001_a.png" and got[3].tf_b is None
        assert TransferFunction.from_dict(got[0].tf_a).opacity == 0.8
        assert store.scenes() == ["/data/scans/patient-7.nii.gz", "headsq", "phantom-03"]
        assert store.integrity_check() == "ok"
        new = make_pref(7, scene="headsq", observation=make_obs("headsq"))
        assert store.add(new) == 6
        assert store.records(scene="headsq")[-1] == replace(new, id=6)
        schema = _schema(store)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    PreferenceStore(tmp_path / "fresh.sqlite").close()
    fresh = sqlite3.connect(tmp_path / "fresh.sqlite")
    assert _table_info(conn) == _table_info(fresh)  # the same table as a new store
    assert [r[1:] for r in _indexes(conn)] == [r[1:] for r in _indexes(fresh)]
    fresh.close()
    conn.close()
    with PreferenceStore(path) as store:  # reopening is a no-op
        assert store.schema_version == 2
        assert _schema(store) == schema
        assert store.records()[:5] == got and store.records()[5] == replace(new, id=6)


def test_v1_jsonl_imports(tmp_path):
    with PreferenceStore(":memory:") as store:
        assert store.import_jsonl(V1_JSONL) == 5
        got = store.records()
    with PreferenceStore(_v1_copy(tmp_path)) as v1:
        assert got == v1.records()
    assert all(p.observation is None for p in got)
    assert json.loads(V1_JSONL.read_text().splitlines()[0])["version"] == 1


UPGRADER = textwrap.dedent(
    """
    import sys, time
    from sqlalchemy import event
    from tfgym.preferences import PreferenceStore
    from tfgym.preferences.db import make_engine

    def trace(sql):
        if sql.startswith("PRAGMA user_version = "):  # after ALTER TABLE, before commit
            print("mid", flush=True)
            time.sleep(60)

    engine = make_engine(sys.argv[1])
    event.listen(engine, "connect", lambda dbapi, record: dbapi.set_trace_callback(trace))
    PreferenceStore(engine)
    print("done", flush=True)
    """
)


def test_killed_upgrade_leaves_a_valid_v1_store(tmp_path):
    path = _v1_copy(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", UPGRADER, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert line == "mid", proc.stderr.read()  # type: ignore[union-attr]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "observation" not in [c[1] for c in _table_info(conn)]
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT COUNT(*) FROM preferences").fetchone()[0] == 5
    conn.close()
    with PreferenceStore(path) as store:  # the next open upgrades it
        assert store.schema_version == 2 and len(store) == 5


def test_store_without_schema_version_is_refused(tmp_path):
    path = tmp_path / "p.sqlite"
    PreferenceStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 0")
    conn.close()
    with pytest.raises(PreferenceStoreError, match="unknown preference store schema version 0"):
        PreferenceStore(path)
