"""Preference records and their persistent store (SQLite), with JSON Lines import/export.

A :class:`Preference` is one answer to "which of these two renderings is better?": the scene,
the two actions (flat polygon vertices ``x1, y1, ...``) and optionally their transfer functions
and renderings, the answer ``mu`` (1 = a chosen, 0.5 = about equal, 0 = b chosen: the target
of the Bradley-Terry loss of Melenberg et al., eq. 2), who answered and when.

:class:`PreferenceStore` keeps records in an SQLite file (or ``":memory:"``), the place where
the simulated labeler (:mod:`tfgym.collect`) and the human labeling queue write answers.

* **Schema.** One table ``preferences`` plus a ``meta`` table naming the format; the schema
  version is SQLite's ``PRAGMA user_version`` (:data:`SCHEMA_VERSION`). A file written by a
  newer tfgym, or an SQLite file that is not a preference store, is refused with
  :class:`PreferenceStoreError`.
* **Durability.** Write-ahead logging (WAL) with ``synchronous=FULL``; every write is one
  transaction (``add_many`` writes all its records or none), so a writer that is killed or
  loses power loses nothing it had committed and leaves no partial batch.
* **Exchange.** :meth:`PreferenceStore.export_jsonl` writes one JSON object per line;
  :meth:`PreferenceStore.import_jsonl` validates every line before importing anything. Record
  ids belong to a store: imported records get new ids.

Example:
    >>> with PreferenceStore(":memory:") as store:
    ...     ids = store.add_many([
    ...         Preference("headsq", (0.1, -1.0, 0.5, 1.0), (0.2, 0.3, 0.4, 0.5), mu=1.0,
    ...                    labeler="sim:noisy"),
    ...         Preference("phantom-00", (0.0, 0.0, 1.0, 1.0), (0.5, 0.5, 0.5, 0.9), mu=0.5,
    ...                    labeler="alice"),
    ...     ])
    ...     ids, len(store), store.scenes(), store.records(labeler="alice")[0].mu
    ([1, 2], 2, ['headsq', 'phantom-00'], 0.5)
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "MU_VALUES",
    "SCHEMA_VERSION",
    "Preference",
    "PreferenceStore",
    "PreferenceStoreError",
]

SCHEMA_VERSION = 1
RECORD_FORMAT = "tfgym.Preference"
STORE_FORMAT = "tfgym.PreferenceStore"
MU_VALUES: tuple[float, ...] = (1.0, 0.5, 0.0)

_SCHEMA = """
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
    render_b TEXT
);
CREATE INDEX preferences_scene ON preferences (scene);
CREATE INDEX preferences_labeler ON preferences (labeler);
"""
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
)


class PreferenceStoreError(ValueError):
    """A store or preference file that cannot be used: wrong format, version or content."""


def utc_now() -> str:
    """The current time as an ISO-8601 UTC string, e.g. ``2025-01-31T12:00:00.123456+00:00``."""
    return datetime.now(timezone.utc).isoformat()


def _float_tuple(name: str, value: Any) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a sequence of numbers, got {value!r}") from e
    if not out:
        raise ValueError(f"{name} must not be empty")
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"{name} must be finite, got {out}")
    return out


@dataclass(frozen=True)
class Preference:
    """One comparison of two actions on a scene and its answer.

    Attributes:
        scene: scene name or scan path.
        action_a: flat action ``x1, y1, x2, y2, ...`` of the first TF (floats).
        action_b: the second, same length.
        mu: the answer: 1.0 = a chosen, 0.5 = about equal (a tie), 0.0 = b chosen.
        labeler: who answered: a person's id, or ``"sim:<preset>"`` for the simulated labeler.
        created: when, ISO-8601 with a UTC offset (default: now).
        tf_a: the first TF as :meth:`tfgym.transfer_function.TransferFunction.to_dict`, or None.
        tf_b: the second TF, or None.
        render_a: a reference (path, URL) to the first rendering, or None.
        render_b: the second rendering, or None.
        id: the record's id in its store (None until stored).

    Raises:
        ValueError: for an empty scene or labeler, ``mu`` outside {1, 0.5, 0}, empty,
            non-finite or unequal-length actions, or a malformed ``created`` time.

    Example:
        >>> p = Preference("headsq", [0, 0, 1, 1], [1, 0, 0, 1], mu=0, labeler="bob")
        >>> p.action_a, p.mu, p.winner
        ((0.0, 0.0, 1.0, 1.0), 0.0, 'b')
        >>> Preference("headsq", [0, 0], [0, 0, 1, 1], mu=1, labeler="bob")
        Traceback (most recent call last):
        ...
        ValueError: action_a and action_b must have the same length, got 2 and 4
    """

    scene: str
    action_a: tuple[float, ...]
    action_b: tuple[float, ...]
    mu: float
    labeler: str
    created: str = field(default_factory=utc_now)
    tf_a: dict[str, Any] | None = field(default=None, hash=False)
    tf_b: dict[str, Any] | None = field(default=None, hash=False)
    render_a: str | None = None
    render_b: str | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        """Validate and normalise the fields."""
        if not isinstance(self.scene, str) or not self.scene:
            raise ValueError(f"scene must be a non-empty string, got {self.scene!r}")
        if not isinstance(self.labeler, str) or not self.labeler:
            raise ValueError(f"labeler must be a non-empty string, got {self.labeler!r}")
        a = _float_tuple("action_a", self.action_a)
        b = _float_tuple("action_b", self.action_b)
        if len(a) != len(b):
            raise ValueError(
                f"action_a and action_b must have the same length, got {len(a)} and {len(b)}"
            )
        try:
            mu = float(self.mu)
        except (TypeError, ValueError) as e:
            raise ValueError(f"mu must be one of {MU_VALUES}, got {self.mu!r}") from e
        if mu not in MU_VALUES:
            raise ValueError(f"mu must be one of {MU_VALUES}, got {self.mu!r}")
        if not isinstance(self.created, str):
            raise ValueError(f"created must be an ISO-8601 string, got {self.created!r}")
        try:
            stamp = datetime.fromisoformat(self.created.replace("Z", "+00:00"))
        except ValueError as e:
            raise ValueError(f"created is not an ISO-8601 time: {self.created!r}") from e
        if stamp.utcoffset() is None:
            raise ValueError(f"created must carry a UTC offset, got {self.created!r}")
        for name in ("tf_a", "tf_b"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), dict):
                raise ValueError(f"{name} must be a dict (TransferFunction.to_dict()) or None")
        for name in ("render_a", "render_b"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string or None")
        if self.id is not None and (isinstance(self.id, bool) or not isinstance(self.id, int)):
            raise ValueError(f"id must be an int or None, got {self.id!r}")
        object.__setattr__(self, "action_a", a)
        object.__setattr__(self, "action_b", b)
        object.__setattr__(self, "mu", mu)

    @property
    def winner(self) -> str:
        """``"a"``, ``"b"`` or ``"tie"``."""
        return {1.0: "a", 0.0: "b"}.get(self.mu, "tie")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with a format tag and version (the JSON Lines record)."""
        d = asdict(self)
        d["action_a"], d["action_b"] = list(self.action_a), list(self.action_b)
        return {"format": RECORD_FORMAT, "version": SCHEMA_VERSION, **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preference:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` for malformed input."""
        if not isinstance(d, dict):
            raise ValueError(f"expected a JSON object, got {type(d).__name__}")
        if d.get("format", RECORD_FORMAT) != RECORD_FORMAT:
            raise ValueError(f"not a preference record: format {d.get('format')!r}")
        version = d.get("version", SCHEMA_VERSION)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ValueError(
                f"preference record version {version!r} is newer than this tfgym "
                f"(reads up to {SCHEMA_VERSION})"
            )
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names - {"format", "version"})
        if unknown:
            raise ValueError(f"unknown preference fields {unknown}")
        missing = [n for n in ("scene", "action_a", "action_b", "mu", "labeler") if n not in d]
        if missing:
            raise ValueError(f"missing preference fields {missing}")
        return cls(**{k: v for k, v in d.items() if k in names})


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


class PreferenceStore:
    """Preference records in an SQLite file (see module docstring).

    Args:
        path: a file path (created with its schema and parent folders if missing),
            ``"sqlite:///path"``, or ``":memory:"`` for a store that lives as long as the
            object.
        timeout: seconds to wait for another process's write lock before failing.

    Raises:
        PreferenceStoreError: the file is not SQLite, not a preference store, or written by a
            newer schema version; or the URL is not an sqlite URL.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        """Open (or create) the store."""
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
            self._init_schema()
        except BaseException:
            self._conn.close()
            raise

    def _init_schema(self) -> None:
        c = self._conn
        try:
            if self.path != ":memory:":
                c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA synchronous=FULL")
            c.execute("BEGIN IMMEDIATE")
            try:
                version = c.execute("PRAGMA user_version").fetchone()[0]
                tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master")}
                if version == 0 and not tables:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            c.execute(statement)
                    c.execute("INSERT INTO meta VALUES ('format', ?)", (STORE_FORMAT,))
                    c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as e:
            raise PreferenceStoreError(
                f"{self.path} is not a usable SQLite preference store: {e}"
            ) from e
        fmt = None
        if "meta" in {r[0] for r in c.execute("SELECT name FROM sqlite_master")}:
            row = c.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
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
        self.schema_version = max(int(version), SCHEMA_VERSION)

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
            TypeError: an item is not a :class:`Preference`.
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
        def dump(v: Any) -> str | None:
            return None if v is None else json.dumps(v, allow_nan=False)

        return (
            p.scene,
            json.dumps(list(p.action_a)),
            json.dumps(list(p.action_b)),
            p.mu,
            p.labeler,
            p.created,
            dump(p.tf_a),
            dump(p.tf_b),
            p.render_a,
            p.render_b,
        )

    # -- reading -------------------------------------------------------------------------------
    def records(self, scene: str | None = None, labeler: str | None = None) -> list[Preference]:
        """Records in id order, optionally only of one scene and/or one labeler."""
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

    @staticmethod
    def _record(row: Sequence[Any]) -> Preference:
        def load(v: str | None) -> Any:
            return None if v is None else json.loads(v)

        pid, scene, a, b, mu, labeler, created, tf_a, tf_b, render_a, render_b = row
        return Preference(
            scene=scene,
            action_a=tuple(json.loads(a)),
            action_b=tuple(json.loads(b)),
            mu=mu,
            labeler=labeler,
            created=created,
            tf_a=load(tf_a),
            tf_b=load(tf_b),
            render_a=render_a,
            render_b=render_b,
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
        """Write records as JSON Lines (one :meth:`Preference.to_dict` per line).

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

        Every line is validated first; the records are then added in one transaction with new
        ids.

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
