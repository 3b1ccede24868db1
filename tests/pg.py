"""A throwaway PostgreSQL cluster for tests: initdb + pg_ctl in a temporary folder.

PostgreSQL refuses to run as root, and CI runs as root: then the server runs as the system
user ``postgres`` (``runuser -u postgres --``) in a folder owned by it. Trust authentication,
a free loopback port and a unix socket in the same folder; stopped and deleted by :meth:`stop`.

Creating a database copies a template (about half a second here); a schema costs milliseconds,
so the ``db_url`` fixture of ``tests/conftest.py`` gives each test a fresh schema of one shared
database, named in the URL (``?options=-csearch_path=...``: every connection made from that URL
sees only that schema).

Example::

    cluster = PostgresCluster.start()
    url = cluster.create_database("test_1")  # postgresql+psycopg://postgres@127.0.0.1:PORT/test_1
    url = cluster.create_schema("tests", "t_1")  # .../tests?options=-csearch_path%3Dt_1
    ...
    cluster.drop_schema("tests", "t_1")
    cluster.drop_database("test_1")
    cluster.stop()
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def _pg_bin() -> Path:
    """``$TFGYM_PG_BIN``, else the newest ``/usr/lib/postgresql/<version>/bin`` (Debian)."""
    if "TFGYM_PG_BIN" in os.environ:
        return Path(os.environ["TFGYM_PG_BIN"])
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
PG_USER = "postgres"


def missing_reason() -> str | None:
    """Why a cluster cannot start here (binaries or system user missing), or None."""
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / tool).is_file():
            return (
                f"PostgreSQL binaries not found ({PG_BIN / tool}); install them with "
                "`apt-get install postgresql` (or set TFGYM_PG_BIN)"
            )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            return f"running as root and there is no system user {PG_USER!r} to run PostgreSQL"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL tool, as the ``postgres`` user when we are root."""
    if os.geteuid() == 0:
        args = ["runuser", "-u", PG_USER, "--", *args]
    return subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)


@dataclass
class PostgresCluster:
    """A running throwaway cluster (see the module docstring)."""

    folder: Path
    port: int

    @property
    def data(self) -> Path:
        """The data directory."""
        return self.folder / "data"

    @classmethod
    def start(cls, *, fsync: bool = True) -> PostgresCluster:
        """initdb and start a cluster; raises RuntimeError with the tools' output on failure.

        Args:
            fsync: False trades crash safety of the whole cluster for speed; the default
                keeps PostgreSQL's real commit cost (benchmarks measure it).
        """
        folder = Path(tempfile.mkdtemp(prefix="tfgym-pg-"))
        if os.geteuid() == 0:
            user = pwd.getpwnam(PG_USER)
            os.chown(folder, user.pw_uid, user.pw_gid)
        cluster = cls(folder, _free_port())
        initdb = [str(PG_BIN / "initdb"), "-D", str(cluster.data), "-U", "postgres"]
        out = _run([*initdb, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"])
        if out.returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            raise RuntimeError(f"initdb failed: {out.stdout}{out.stderr}")
        options = (
            f"-p {cluster.port} -k {folder} -c listen_addresses=127.0.0.1 "
            f"-c fsync={'on' if fsync else 'off'} -c shared_buffers=32MB -c max_connections=200"
        )
        pg_ctl = [str(PG_BIN / "pg_ctl"), "-D", str(cluster.data), "-o", options]
        out = _run([*pg_ctl, "-w", "-t", "60", "-l", str(folder / "server.log"), "start"])
        if out.returncode != 0:
            log = (folder / "server.log").read_text() if (folder / "server.log").exists() else ""
            shutil.rmtree(folder, ignore_errors=True)
            raise RuntimeError(f"pg_ctl start failed: {out.stdout}{out.stderr}{log}")
        return cluster

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of a database of this cluster (TCP on 127.0.0.1)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self, *statements: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=database, autocommit=True
        ) as conn:
            for sql in statements:
                conn.execute(sql)

    def create_database(self, name: str) -> str:
        """Create an empty database; returns its URL."""
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever is still connected."""
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def create_schema(self, database: str, schema: str) -> str:
        """Create an empty schema in a database (created if missing); returns a URL whose
        connections see only that schema."""
        try:
            self._admin(f'CREATE SCHEMA "{schema}"', database=database)
        except Exception:  # the database does not exist yet
            self.create_database(database)
            self._admin(f'CREATE SCHEMA "{schema}"', database=database)
        return f"{self.url(database)}?options=-csearch_path%3D{schema}"

    def drop_schema(self, database: str, schema: str) -> None:
        """Drop a schema and everything in it (gives up after 10 s of waiting for locks)."""
        self._admin(
            "SET lock_timeout = '10s'",
            f'DROP SCHEMA IF EXISTS "{schema}" CASCADE',
            database=database,
        )

    def stop(self) -> None:
        """Stop the server (immediately: nothing here needs to survive) and delete the folder."""
        _run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(self.folder, ignore_errors=True)
