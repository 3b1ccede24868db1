"""The SQLite preference store (see :mod:`tfgym.preferences` for schema and durability)."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tfgym.observation import ObservationSettings
from tfgym.preferences.record import SCHEMA_VERSION, Preference

__all__ = ["STORE_FORMAT", "PreferenceStore", "PreferenceStoreError"]

STORE_FORMAT = "tfgym.PreferenceStore"

# The observation column is last so that a new store and an upgraded version-1 store (where
# ALTER TABLE appends it) have the same table.
_OBSERVATION_COLUMN = (
    "observation TEXT CHECK (observation IS NULL OR substr(observation, 1, 1) = '{')"
)
_SCHEMA = f"""
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE preferences (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    scene    TEXT NOT NULL CHECK (length(scene) > 0),
    action_a TEXT NOT NULL,  -- JSON array of floats
    action_b TEXT NOT NULL,
    mu       REAL NOT NULL CHECK (mu IN (0.0, 0.5, 1.0)),
    labeler  TEXT NOT NULL CHECK (length(labeler) > 0),
    created  TEXT NOT NULL,  -- ISO-8601, UTC
    tf_a     TEXT,           -- JSON of TransferFunction.to_dict(), or NULL
    tf_b     TEXT,
    render_a TEXT,
    render_b TEXT,
    {_OBSERVATION_COLUMN}  -- JSON of ObservationSettings.to_dict(), or NULL
);
CREATE INDEX preferences_scene ON preferences (scene);
CREATE INDEX preferences_labeler ON preferences (labeler);
"""
# Version-1 stores are upgraded to the current version by these statements, in one
# transaction with the new user_version.
_UPGRADES: dict[int, tuple[str, ...]] = {
    1: (f"ALTER TABLE preferences ADD COLUMN {_OBSERVATION_COLUMN}",),
}
_COLUMNS = (
    "scene",
    "action_a",
    "action_b",
    "mu",
    "labeler",
    "created",
    "tf_a",
    "tf_b",
    "render_a",
    "render_b",
    "observation",
)


class PreferenceStoreError(ValueError):
    """A store or preference file that cannot be used: wrong format, version or content."""


def _resolve_path(path: str | os.PathLike[str]) -> str:
    """A filesystem path or ``":memory:"`` from a path or an ``sqlite://`` URL."""
    text = os.fspath(path)
    if "://" in text:
        scheme, rest = text.split("://", 1)
        if scheme != "sqlite":
            raise PreferenceStoreError(
                f"unsupported database URL {text!r}: only sqlite:///path URLs are supported"
            )
        # sqlite:///relative.db, sqlite:////absolute.db, sqlite:// or sqlite:///:memory:
        text = rest[1:] if rest.startswith("/") else rest
        if text in ("", ":memory:"):
            return ":memory:"
    return text


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, allow_nan=False)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class PreferenceStore:
    """Preference records in an SQLite file (see :mod:`tfgym.preferences`).

    Opening a store of an older schema version upgrades it in place, in one transaction (a
    crash during the upgrade leaves the old, valid store). Records of a version-1 store read
    back with ``observation=None``.

    Args:
        path: a file path (created with its schema and parent folders if missing),
            ``"sqlite:///path"``, or ``":memory:"`` for a store that lives as long as the
            object.
        timeout: seconds to wait for another process's write lock before failing.

    Attributes:
        path: the file path, or ``":memory:"``.
        schema_version: the store's schema version on disk, after any upgrade
            (:data:`~tfgym.preferences.SCHEMA_VERSION`).

    Raises:
        PreferenceStoreError: the file is not SQLite, not a preference store, or written by a
            newer schema version; or the URL is not an sqlite URL.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        """Open (or create, or upgrade) the store."""
        self.path = _resolve_path(path)
        if self.path != ":memory:":
            if Path(self.path).is_dir():
                raise PreferenceStoreError(f"preference store path is a directory: {self.path}")
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as e:
            raise PreferenceStoreError(f"cannot open preference store {self.path}: {e}") from e
        try:
            self.schema_version = self._init_schema()
        except BaseException:
            self._conn.close()
            raise

    def _init_schema(self) -> int:
        """Create, check and upgrade the schema in one transaction; returns the version."""
        c = self._conn
        try:
            if self.path != ":memory:":
                c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA synchronous=FULL")
            c.execute("BEGIN IMMEDIATE")
            try:
                version = int(c.execute("PRAGMA user_version").fetchone()[0])
                tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master")}
                if version == 0 and not tables:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            c.execute(statement)
                    c.execute("INSERT INTO meta VALUES ('format', ?)", (STORE_FORMAT,))
                    version = SCHEMA_VERSION
                    c.execute(f"PRAGMA user_version = {version}")
                else:
                    self._check_store(tables, version)
                    while version < SCHEMA_VERSION:
                        for statement in _UPGRADES[version]:
                            c.execute(statement)
                        version += 1
                        c.execute(f"PRAGMA user_version = {version}")
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as e:
            raise PreferenceStoreError(
                f"{self.path} is not a usable SQLite preference store: {e}"
            ) from e
        return version

    def _check_store(self, tables: set[str], version: int) -> None:
        """Refuse foreign SQLite files and unknown schema versions."""
        fmt = None
        if "meta" in tables:
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            fmt = row[0] if row else None
        if fmt != STORE_FORMAT:
            raise PreferenceStoreError(
                f"{self.path} is an SQLite file but not a tfgym preference store"
            )
        if version > SCHEMA_VERSION:
            raise PreferenceStoreError(
                f"{self.path} has preference store schema version {version}, newer than this "
                f"tfgym supports ({SCHEMA_VERSION}); upgrade tfgym to read it"
            )
        if version not in _UPGRADES and version != SCHEMA_VERSION:
            raise PreferenceStoreError(
                f"{self.path} has an unknown preference store schema version {version}"
            )

    # -- writing -------------------------------------------------------------------------------
    def add(self, pref: Preference) -> int:
        """Store one record (one transaction); returns its id."""
        return self.add_many([pref])[0]

    def add_many(self, prefs: Iterable[Preference]) -> list[int]:
        """Store records in one transaction: all of them or, on any error, none.

        Args:
            prefs: the records (their ``id`` is ignored; the store assigns new ones).

        Returns:
            The new ids, in order.

        Raises:
            TypeError: an item is not a :class:`~tfgym.preferences.Preference`.
        """
        items = list(prefs)
        for i, p in enumerate(items):
            if not isinstance(p, Preference):
                raise TypeError(f"item {i} is a {type(p).__name__}, not a Preference")
        rows = [self._row(p) for p in items]
        placeholders = ", ".join("?" * len(_COLUMNS))
        sql = f"INSERT INTO preferences ({', '.join(_COLUMNS)}) VALUES ({placeholders})"
        ids: list[int] = []
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for row in rows:
                    ids.append(int(self._conn.execute(sql, row).lastrowid))  # type: ignore[arg-type]
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return ids

    @staticmethod
    def _row(p: Preference) -> tuple[Any, ...]:
        return (
            p.scene,
            json.dumps(list(p.action_a)),
            json.dumps(list(p.action_b)),
            p.mu,
            p.labeler,
            p.created,
            _dump(p.tf_a),
            _dump(p.tf_b),
            p.render_a,
            p.render_b,
            None if p.observation is None else _dump(p.observation.to_dict()),
        )

    # -- reading -------------------------------------------------------------------------------
    def records(self, scene: str | None = None, labeler: str | None = None) -> list[Preference]:
        """Records in id order, optionally only of one scene and/or one labeler.

        Raises:
            PreferenceStoreError: a stored record's observation settings are malformed.
        """
        where, params = [], []
        if scene is not None:
            where.append("scene = ?")
            params.append(scene)
        if labeler is not None:
            where.append("labeler = ?")
            params.append(labeler)
        sql = f"SELECT id, {', '.join(_COLUMNS)} FROM preferences"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY id", params).fetchall()
        return [self._record(r) for r in rows]

    def _record(self, row: Sequence[Any]) -> Preference:
        pid, scene, a, b, mu, labeler, created, tf_a, tf_b, render_a, render_b, obs = row
        try:
            observation = None if obs is None else ObservationSettings.from_dict(_load(obs))
        except ValueError as e:  # JSONDecodeError is a ValueError
            raise PreferenceStoreError(
                f"{self.path}: record {pid} has malformed observation settings: {e}"
            ) from e
        return Preference(
            scene=scene,
            action_a=tuple(json.loads(a)),
            action_b=tuple(json.loads(b)),
            mu=mu,
            labeler=labeler,
            created=created,
            tf_a=_load(tf_a),
            tf_b=_load(tf_b),
            render_a=render_a,
            render_b=render_b,
            observation=observation,
            id=int(pid),
        )

    def __iter__(self) -> Iterator[Preference]:
        """All records in id order."""
        return iter(self.records())

    def __len__(self) -> int:
        """The number of records."""
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM preferences").fetchone()[0])

    def scenes(self) -> list[str]:
        """The distinct scenes with records, sorted."""
        with self._lock:
            rows = self._conn.execute("SELECT DISTINCT scene FROM preferences ORDER BY scene")
            return [r[0] for r in rows]

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` result (``"ok"`` for a sound file)."""
        with self._lock:
            return str(self._conn.execute("PRAGMA integrity_check").fetchone()[0])

    # -- exchange ------------------------------------------------------------------------------
    def export_jsonl(
        self, path: str | os.PathLike[str], *, scene: str | None = None, labeler: str | None = None
    ) -> int:
        """Write records as JSON Lines (one :meth:`Preference.to_dict` per line, version 2).

        The file is written next to ``path`` and renamed into place, so a reader never sees
        half a file.

        Args:
            path: output file; missing parent folders are created.
            scene: only this scene's records.
            labeler: only this labeler's records.

        Returns:
            The number of records written.
        """
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        records = self.records(scene=scene, labeler=labeler)
        tmp = out.with_name(out.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for p in records:
                f.write(json.dumps(p.to_dict(), allow_nan=False) + "\n")
        os.replace(tmp, out)
        return len(records)

    def import_jsonl(self, path: str | os.PathLike[str]) -> int:
        """Import a JSON Lines file written by :meth:`export_jsonl` (blank lines are skipped).

        Version-1 lines (written before records carried observation settings) import with
        ``observation=None``. Every line is validated first; the records are then added in
        one transaction with new ids.

        Returns:
            The number of records imported.

        Raises:
            FileNotFoundError: no such file.
            PreferenceStoreError: a malformed line (the message names file and line number);
                nothing is imported.
        """
        src = Path(path)
        if not src.is_file():
            raise FileNotFoundError(f"preference file not found: {src}")
        prefs: list[Preference] = []
        with src.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    prefs.append(replace(Preference.from_dict(record), id=None))
                except (ValueError, TypeError) as e:  # JSONDecodeError is a ValueError
                    raise PreferenceStoreError(
                        f"{src}:{lineno}: malformed preference record: {e}"
                    ) from e
        self.add_many(prefs)
        return len(prefs)

    # -- lifetime ------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> PreferenceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PreferenceStore({self.path!r})"
