"""The SQL preference store (see :mod:`tfgym.preferences` for schema, durability, upgrades)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tfgym.observation import ObservationSettings
from tfgym.preferences.db import database_url, make_engine, transaction
from tfgym.preferences.record import SCHEMA_VERSION, Preference
from tfgym.preferences.schema import OBSERVATION_COLUMN, preferences, store_ddl, table_names

__all__ = ["STORE_FORMAT", "PreferenceStore", "PreferenceStoreError", "insert_preferences"]

STORE_FORMAT = "tfgym.PreferenceStore"

# Stores of an older schema version are upgraded to the current version by these statements,
# in one transaction with the new version number.
_UPGRADES: dict[int, tuple[str, ...]] = {
    1: (f"ALTER TABLE preferences ADD COLUMN {OBSERVATION_COLUMN}",),
}
_PG_LOCK = 7_310_001  # pg_advisory_xact_lock key: one process creates or upgrades at a time


class PreferenceStoreError(ValueError):
    """A store or preference file that cannot be used: wrong format, version or content."""


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, allow_nan=False)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _row(p: Preference) -> dict[str, Any]:
    return {
        "scene": p.scene,
        "action_a": json.dumps(list(p.action_a)),
        "action_b": json.dumps(list(p.action_b)),
        "mu": p.mu,
        "labeler": p.labeler,
        "created": p.created,
        "tf_a": _dump(p.tf_a),
        "tf_b": _dump(p.tf_b),
        "render_a": p.render_a,
        "render_b": p.render_b,
        "observation": None if p.observation is None else _dump(p.observation.to_dict()),
    }


def insert_preferences(conn: Connection, prefs: Sequence[Preference]) -> list[int]:
    """Insert records on a connection inside the caller's transaction; returns the new ids.

    The label queue uses this to write an answer's records in the answer's transaction.
    """
    if not prefs:
        return []
    stmt = sa.insert(preferences).returning(preferences.c.id, sort_by_parameter_order=True)
    return [int(i) for i in conn.execute(stmt, [_row(p) for p in prefs]).scalars()]


class PreferenceStore:
    """Preference records in an SQL database: an SQLite file by default, or PostgreSQL.

    Opening a store of an older schema version upgrades it in place, in one transaction (a
    crash during the upgrade leaves the old, valid store). Records of a version-1 store read
    back with ``observation=None``. The store is safe to use from several threads.

    Args:
        db: an SQLite file path (created with its schema and parent folders if missing),
            ``"sqlite:///path"``, ``":memory:"`` for a store that lives as long as the object,
            a PostgreSQL URL (``postgresql://user@host/database``; an empty database gets the
            schema), or an engine from :func:`tfgym.preferences.db.make_engine` (shared, not
            disposed by :meth:`close`).
        timeout: seconds to wait for another process's write lock before failing.

    Attributes:
        url: the database URL (SQLAlchemy form).
        engine: the SQLAlchemy engine.
        path: the SQLite file path, ``":memory:"``, or None for PostgreSQL.
        schema_version: the store's schema version, after any upgrade
            (:data:`~tfgym.preferences.SCHEMA_VERSION`).

    Raises:
        PreferenceStoreError: the file is not SQLite, the database is not a preference store
            or was written by a newer schema version, the database cannot be reached, or the
            URL is not an SQLite or PostgreSQL URL.
    """

    def __init__(self, db: str | os.PathLike[str] | Engine, *, timeout: float = 30.0) -> None:
        """Open (or create, or upgrade) the store."""
        if isinstance(db, Engine):
            self.engine, self._owns_engine = db, False
        else:
            try:
                self.engine = make_engine(database_url(db), timeout=timeout)
            except ValueError as e:
                raise PreferenceStoreError(f"cannot open preference store: {e}") from e
            self._owns_engine = True
        url = self.engine.url
        self.url = url.render_as_string(hide_password=False)
        self._sqlite = url.get_backend_name() == "sqlite"
        self.path: str | None = (url.database or ":memory:") if self._sqlite else None
        self._name = self.path or url.render_as_string(hide_password=True)
        self._closed = False
        try:
            self.schema_version = self._init_schema()
        except BaseException:
            self.close()
            raise

    def _init_schema(self) -> int:
        """Create, check and upgrade the schema in one transaction; returns the version."""
        try:
            with transaction(self.engine) as c:
                if not self._sqlite:
                    c.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
                version = self._version(c)
                tables = table_names(c)
                if version == 0 and not tables:
                    for statement in store_ddl(c.dialect.name):
                        c.exec_driver_sql(statement)
                    c.execute(
                        sa.text("INSERT INTO meta (key, value) VALUES ('format', :f)"),
                        {"f": STORE_FORMAT},
                    )
                    version = SCHEMA_VERSION
                    self._set_version(c, version, new=True)
                else:
                    self._check_store(c, tables, version)
                    while version < SCHEMA_VERSION:
                        for statement in _UPGRADES[version]:
                            c.exec_driver_sql(statement)
                        version += 1
                        self._set_version(c, version)
        except sa.exc.DBAPIError as e:
            if self._sqlite:
                msg = f"{self._name} is not a usable SQLite preference store: {e.orig}"
            else:
                msg = f"cannot open preference store {self._name}: {e.orig}"
            raise PreferenceStoreError(msg) from e
        return version

    def _version(self, c: Connection) -> int:
        """SQLite's ``user_version``; on PostgreSQL the ``schema_version`` row of ``meta``."""
        if self._sqlite:
            return int(c.exec_driver_sql("PRAGMA user_version").scalar_one())
        if "meta" not in table_names(c):
            return 0
        value = c.exec_driver_sql("SELECT value FROM meta WHERE key = 'schema_version'").scalar()
        return int(value) if value is not None and value.isdigit() else 0

    def _set_version(self, c: Connection, version: int, *, new: bool = False) -> None:
        if self._sqlite:
            c.exec_driver_sql(f"PRAGMA user_version = {int(version)}")
        elif new:
            c.execute(
                sa.text("INSERT INTO meta (key, value) VALUES ('schema_version', :v)"),
                {"v": str(version)},
            )
        else:
            c.execute(
                sa.text("UPDATE meta SET value = :v WHERE key = 'schema_version'"),
                {"v": str(version)},
            )

    def _check_store(self, c: Connection, tables: set[str], version: int) -> None:
        """Refuse foreign databases and unknown schema versions."""
        fmt = None
        if "meta" in tables:
            fmt = c.exec_driver_sql("SELECT value FROM meta WHERE key = 'format'").scalar()
        if fmt != STORE_FORMAT:
            kind = "an SQLite file" if self._sqlite else "a database"
            raise PreferenceStoreError(f"{self._name} is {kind} but not a tfgym preference store")
        if version > SCHEMA_VERSION:
            raise PreferenceStoreError(
                f"{self._name} has preference store schema version {version}, newer than this "
                f"tfgym supports ({SCHEMA_VERSION}); upgrade tfgym to read it"
            )
        if version not in _UPGRADES and version != SCHEMA_VERSION:
            raise PreferenceStoreError(
                f"{self._name} has an unknown preference store schema version {version}"
            )

    def _tx(self, *, write: bool = True) -> AbstractContextManager[Connection]:
        if self._closed:
            raise PreferenceStoreError(f"preference store {self._name} is closed")
        return transaction(self.engine, write=write)

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
            sqlalchemy.exc.IntegrityError: a record breaks a table constraint (nothing is
                stored).
        """
        items = list(prefs)
        for i, p in enumerate(items):
            if not isinstance(p, Preference):
                raise TypeError(f"item {i} is a {type(p).__name__}, not a Preference")
        with self._tx() as conn:
            return insert_preferences(conn, items)

    # -- reading -------------------------------------------------------------------------------
    def records(self, scene: str | None = None, labeler: str | None = None) -> list[Preference]:
        """Records in id order, optionally only of one scene and/or one labeler.

        Raises:
            PreferenceStoreError: a stored record's observation settings are malformed.
        """
        stmt = sa.select(preferences).order_by(preferences.c.id)
        if scene is not None:
            stmt = stmt.where(preferences.c.scene == scene)
        if labeler is not None:
            stmt = stmt.where(preferences.c.labeler == labeler)
        with self._tx(write=False) as conn:
            rows = conn.execute(stmt).all()
        return [self._record(r) for r in rows]

    def _record(self, row: Sequence[Any]) -> Preference:
        pid, scene, a, b, mu, labeler, created, tf_a, tf_b, render_a, render_b, obs = row
        try:
            observation = None if obs is None else ObservationSettings.from_dict(_load(obs))
        except ValueError as e:  # JSONDecodeError is a ValueError
            raise PreferenceStoreError(
                f"{self._name}: record {pid} has malformed observation settings: {e}"
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
        with self._tx(write=False) as conn:
            return int(conn.exec_driver_sql("SELECT COUNT(*) FROM preferences").scalar_one())

    def scenes(self) -> list[str]:
        """The distinct scenes with records, sorted."""
        with self._tx(write=False) as conn:
            rows = conn.exec_driver_sql("SELECT DISTINCT scene FROM preferences ORDER BY scene")
            return sorted(r[0] for r in rows)  # the same order on every database collation

    def integrity_check(self) -> str:
        """``"ok"`` for a sound database, else what is wrong.

        SQLite: ``PRAGMA integrity_check``. PostgreSQL checks its own pages; there every
        record is read and parsed instead.
        """
        with self._tx(write=False) as conn:
            if self._sqlite:
                return str(conn.exec_driver_sql("PRAGMA integrity_check").scalar_one())
        try:
            self.records()
        except (PreferenceStoreError, ValueError, TypeError) as e:
            return str(e)
        return "ok"

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
        """Close the store (idempotent); an engine it made is disposed (its connections closed)."""
        if not self._closed:
            self._closed = True
            if self._owns_engine:
                self.engine.dispose()

    def __enter__(self) -> PreferenceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PreferenceStore({self._name!r})"
