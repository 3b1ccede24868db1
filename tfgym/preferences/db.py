"""Database URLs, engines and transactions for the preference store and the label queue.

One function turns what a user typed (a file path, ``sqlite:///path``, ``":memory:"``, a
``postgresql://`` URL) into an SQLAlchemy URL (:func:`database_url`); one builds the engine
(:func:`make_engine`); one opens a transaction of the right kind (:func:`transaction`).

* **SQLite** (the default): write-ahead logging, ``synchronous=FULL`` (a committed transaction
  survives a power cut), a busy timeout, and every writing transaction opened with
  ``BEGIN IMMEDIATE`` (SQLAlchemy's recipe: the sqlite3 driver's own transaction handling is
  switched off and a ``begin`` event emits the statement), so a transaction that will write
  holds the write lock from its first statement and never fails half-way on a lock upgrade.
  Read-only transactions open with a plain (deferred) ``BEGIN``: a consistent snapshot that
  does not wait for writers. Writers of one process take a per-engine lock before
  ``BEGIN IMMEDIATE``, so they queue in the process instead of polling SQLite's busy handler;
  other processes are serialised by SQLite itself (the busy timeout). ``":memory:"`` uses one
  connection shared by all threads, behind the same lock.
* **PostgreSQL** through psycopg 3 (``postgresql+psycopg://``; ``postgresql://`` and
  ``postgres://`` are rewritten to it), with a small connection pool that checks connections
  before use.

:class:`GroupCommit` commits the durable writes of concurrent threads together on SQLite: one
``fsync`` for all the answers that arrived while the previous commit was on its way to the disk
(PostgreSQL groups concurrent commits by itself).

A transaction opened with ``durable=False`` (a lease: losing one to a power cut only means its
pair is served again) does not wait for the disk: ``synchronous=NORMAL`` on SQLite, which in WAL
mode still never corrupts the file nor loses anything to a killed process, and
``synchronous_commit = off`` on PostgreSQL.

Example:
    >>> database_url("prefs.sqlite"), database_url(":memory:")
    ('sqlite:///prefs.sqlite', 'sqlite://')
    >>> database_url("postgresql://labeler@db.example.org/prefs")
    'postgresql+psycopg://labeler@db.example.org/prefs'
    >>> engine = make_engine(":memory:")
    >>> with transaction(engine) as conn:
    ...     conn.exec_driver_sql("CREATE TABLE t (x INTEGER)").rowcount
    -1
    >>> with transaction(engine, write=False) as conn:
    ...     conn.exec_driver_sql("SELECT COUNT(*) FROM t").scalar_one()
    0
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import StaticPool

__all__ = ["GroupCommit", "database_url", "is_sqlite", "make_engine", "transaction"]

T = TypeVar("T")
_PG_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
_READ_ONLY = "tfgym_read_only"  # execution option of read-only transactions


def _split(text: str) -> tuple[str, str] | None:
    """``(scheme, rest)`` of a URL, or None for a plain path."""
    if "://" not in text:
        return None
    scheme, rest = text.split("://", 1)
    return scheme.lower(), rest


def database_url(db: str | os.PathLike[str]) -> str:
    """The SQLAlchemy URL of a database named by a path or URL.

    Args:
        db: a file path (an SQLite file), ``":memory:"``, ``"sqlite:///path"``,
            ``"sqlite://"`` (in memory), or a PostgreSQL URL ``postgresql://user@host/db``
            (also ``postgres://`` or ``postgresql+psycopg://``).

    Returns:
        ``"sqlite:///path"``, ``"sqlite://"`` for an in-memory database, or
        ``"postgresql+psycopg://..."``.

    Raises:
        ValueError: an empty name or a URL of another database or driver.

    Example:
        >>> database_url("sqlite:///:memory:"), database_url("/data/prefs.sqlite")
        ('sqlite://', 'sqlite:////data/prefs.sqlite')
    """
    text = os.fspath(db)
    if not isinstance(text, str) or not text:
        raise ValueError("a database must be named by a file path or a URL, got an empty name")
    parts = _split(text)
    if parts is None:
        return "sqlite://" if text == ":memory:" else f"sqlite:///{text}"
    scheme, rest = parts
    if scheme in ("sqlite", "sqlite+pysqlite"):
        path = rest[1:] if rest.startswith("/") else rest
        return "sqlite://" if path in ("", ":memory:") else f"sqlite:///{path}"
    if scheme in _PG_SCHEMES:
        return f"postgresql+psycopg://{rest}"
    raise ValueError(
        f"unsupported database URL {text!r}: use a file path, sqlite:///path or "
        "postgresql://user@host/database"
    )


@dataclass
class _EngineInfo:
    """What :func:`transaction` needs to know about an engine."""

    sqlite: bool
    memory: bool
    lock: threading.RLock


_INFO: weakref.WeakKeyDictionary[Engine, _EngineInfo] = weakref.WeakKeyDictionary()
_INFO_LOCK = threading.Lock()


def _sqlite_connect(dbapi_connection: Any, connection_record: Any, *, memory: bool) -> None:
    del connection_record
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN (see _sqlite_begin)
    cursor = dbapi_connection.cursor()
    try:
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    read_only = conn.get_execution_options().get(_READ_ONLY, False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _prepare(engine: Engine) -> _EngineInfo:
    """Register the engine: SQLite connection settings and BEGIN events (idempotent).

    An engine that :func:`make_engine` did not build gets the same settings; its pool is
    emptied so that every connection is opened with them.
    """
    with _INFO_LOCK:
        info = _INFO.get(engine)
        if info is not None:
            return info
        sqlite = engine.dialect.name == "sqlite"
        memory = sqlite and engine.url.database in (None, "", ":memory:")
        if sqlite:
            event.listen(engine, "connect", _memory_connect if memory else _file_connect)
            event.listen(engine, "begin", _sqlite_begin)
            engine.dispose()
        info = _EngineInfo(sqlite=sqlite, memory=memory, lock=threading.RLock())
        _INFO[engine] = info
        return info


def _memory_connect(dbapi_connection: Any, connection_record: Any) -> None:
    _sqlite_connect(dbapi_connection, connection_record, memory=True)


def _file_connect(dbapi_connection: Any, connection_record: Any) -> None:
    _sqlite_connect(dbapi_connection, connection_record, memory=False)


def make_engine(
    url: str | os.PathLike[str], *, timeout: float = 30.0, pool_size: int = 8
) -> Engine:
    """An SQLAlchemy engine for a preference database (see the module docstring).

    Args:
        url: anything :func:`database_url` accepts.
        timeout: seconds to wait for another writer's lock (SQLite) or for a pooled
            connection (both).
        pool_size: connections kept open (PostgreSQL: plus as many again under load).

    Returns:
        The engine. Nothing is opened until it is first used; the parent folder of an SQLite
        file is created.

    Raises:
        ValueError: an unsupported URL, or an SQLite path that is a directory.

    Example:
        >>> make_engine("sqlite://").dialect.name
        'sqlite'
    """
    text = database_url(url)
    if text.startswith("sqlite:"):
        path = text[len("sqlite:///") :] if text != "sqlite://" else ""
        connect_args = {"timeout": timeout, "check_same_thread": False}
        if not path:
            engine = sa.create_engine("sqlite://", connect_args=connect_args, poolclass=StaticPool)
        else:
            if Path(path).is_dir():
                raise ValueError(f"database path is a directory: {path}")
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(
                URL.create("sqlite", database=path),
                connect_args=connect_args,
                pool_size=pool_size,
                max_overflow=4 * pool_size,
                pool_timeout=timeout,
            )
    else:
        engine = sa.create_engine(
            text,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=timeout,
            pool_pre_ping=True,
            connect_args={"connect_timeout": max(1, round(timeout))},
        )
    _prepare(engine)
    return engine


def is_sqlite(engine: Engine) -> bool:
    """Whether the engine is an SQLite database (else PostgreSQL)."""
    return engine.dialect.name == "sqlite"


def _dbapi_execute(conn: Connection, sql: str) -> None:
    """Run a statement on the driver's connection, outside SQLAlchemy's transaction."""
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    dbapi.execute(sql)


@contextmanager
def transaction(
    engine: Engine, *, write: bool = True, durable: bool = True
) -> Iterator[Connection]:
    """A connection in one transaction: committed on exit, rolled back on an exception.

    Args:
        engine: an engine (ideally from :func:`make_engine`; another one is configured the
            same way on first use).
        write: False for a read-only transaction (SQLite: a deferred ``BEGIN`` that takes
            no write lock).
        durable: False for a write whose commit need not wait for the disk (see the module
            docstring); True (the default) for everything a user must not lose.

    Yields:
        The connection.
    """
    info = _INFO.get(engine) or _prepare(engine)
    lock = info.lock if info.sqlite and (write or info.memory) else nullcontext()
    relaxed = info.sqlite and write and not durable and not info.memory
    with lock, engine.connect() as conn:
        if not write:
            conn.execution_options(**{_READ_ONLY: True})
        if relaxed:
            _dbapi_execute(conn, "PRAGMA synchronous=NORMAL")
        try:
            with conn.begin():
                if not durable and not info.sqlite:
                    conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                yield conn
        finally:
            if relaxed and not conn.invalidated:
                _dbapi_execute(conn, "PRAGMA synchronous=FULL")


class _Job(Generic[T]):
    """One caller's unit of work in a :class:`GroupCommit` and its outcome."""

    __slots__ = ("done", "error", "fn", "result")

    def __init__(self, fn: Callable[[Connection], T]) -> None:
        self.fn = fn
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None


class GroupCommit:
    """Durable writes of concurrent threads, committed together (group commit).

    A caller's function runs inside a savepoint of a shared transaction; whoever takes the
    engine's write lock commits every function queued until then, so N concurrent writers pay
    for one commit (one ``fsync`` of SQLite's write-ahead log) instead of N. Each caller gets
    its own result or exception, and returns only after the commit that made its work durable.
    On PostgreSQL and in-memory SQLite every call is simply its own transaction.

    Args:
        engine: the engine to write to.

    Example:
        >>> engine = make_engine(":memory:")
        >>> with transaction(engine) as conn:
        ...     _ = conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        >>> insert = lambda conn: conn.exec_driver_sql("INSERT INTO t VALUES (1)").rowcount
        >>> GroupCommit(engine).run(insert)
        1
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._info = _INFO.get(engine) or _prepare(engine)
        self._grouped = self._info.sqlite and not self._info.memory
        self._pending: list[_Job[Any]] = []
        self._mutex = threading.Lock()

    def run(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(connection)`` in a durable transaction; returns what it returns.

        Raises:
            Exception: whatever ``fn`` raised (its writes are rolled back, the others' are
                not), or the commit's error (nothing of the group was written).
        """
        if not self._grouped:
            with transaction(self.engine) as conn:
                return fn(conn)
        job: _Job[T] = _Job(fn)
        with self._mutex:
            self._pending.append(job)
        with self._info.lock:
            if not job.done:
                with self._mutex:
                    group, self._pending = self._pending, []
                self._commit(group)
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    def _commit(self, group: list[_Job[Any]]) -> None:
        try:
            with transaction(self.engine) as conn:
                for job in group:
                    try:
                        with conn.begin_nested():
                            job.result = job.fn(conn)
                    except Exception as e:
                        job.error = e
        except BaseException as e:  # the commit failed: nothing of the group is durable
            for job in group:
                if job.error is None:
                    job.result, job.error = None, e
            if not isinstance(e, Exception):
                raise
        finally:
            for job in group:
                job.done = True
