"""Tests of tfgym.preferences: records, the SQLite store, JSON Lines and durability."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tfgym.preferences import (
    SCHEMA_VERSION,
    Preference,
    PreferenceStore,
    PreferenceStoreError,
)
from tfgym.transfer_function import TransferFunction

REPO = Path(__file__).resolve().parents[1]


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


# -- store -----------------------------------------------------------------------------------
def test_store_round_trip_every_field(tmp_path):
    prefs = [make_pref(i) for i in range(7)]
    path = tmp_path / "prefs.sqlite"
    with PreferenceStore(path) as store:
        assert store.add(prefs[0]) == 1
        assert store.add_many(prefs[1:]) == list(range(2, 8))
    with PreferenceStore(tmp_path / "new" / "dir" / "p.sqlite") as other:  # parents created
        assert len(other) == 0
    with PreferenceStore(f"sqlite:///{path}") as store:  # reopened, by URL
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
        mode = store._conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_memory_store_and_urls():
    for url in (":memory:", "sqlite://", "sqlite:///:memory:"):
        with PreferenceStore(url) as store:
            store.add(make_pref())
            assert len(store) == 1
    with pytest.raises(PreferenceStoreError, match="only sqlite"):
        PreferenceStore("postgresql://user@host/db")


def test_add_many_is_all_or_nothing(tmp_path):
    with PreferenceStore(tmp_path / "p.sqlite") as store:
        store.add(make_pref(0))
        with pytest.raises(TypeError, match="item 2 is a dict"):
            store.add_many([make_pref(1), make_pref(2), {"mu": 1}])  # type: ignore[list-item]
        # a failure inside the transaction (a constraint) rolls back the rows before it
        bad = make_pref(3)
        object.__setattr__(bad, "mu", 0.25)  # bypass validation to hit the CHECK constraint
        with pytest.raises(sqlite3.IntegrityError):
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
    with pytest.raises(PreferenceStoreError, match=r"schema version 2, newer than .*\(1\)"):
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


# -- JSON Lines ------------------------------------------------------------------------------
def test_jsonl_round_trip_into_fresh_store(tmp_path):
    prefs = [make_pref(i) for i in range(10)]
    out = tmp_path / "sub" / "prefs.jsonl"
    with PreferenceStore(":memory:") as src:
        src.add_many(prefs)
        assert src.export_jsonl(out) == 10
        assert src.export_jsonl(tmp_path / "a.jsonl", labeler="alice") == 5
    lines = out.read_text().splitlines()
    assert len(lines) == 10 and json.loads(lines[0])["format"] == "tfgym.Preference"
    with PreferenceStore(tmp_path / "fresh.sqlite") as dst:
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
    from tfgym.preferences import Preference, PreferenceStore

    path, batch, pause_batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    store = PreferenceStore(path)
    store._conn.execute("PRAGMA cache_size = 4")  # spill uncommitted pages into the WAL
    k, inserts = 0, 0

    def trace(sql):
        global inserts
        if sql.startswith("INSERT"):
            inserts += 1
            if k == pause_batch and inserts == batch // 2:  # halfway through a transaction
                print("mid", flush=True)
                time.sleep(60)

    store._conn.set_trace_callback(trace)
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
    """Kill -9 a writer halfway through its 6th batch (or wherever it is after 5 batches)."""
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
