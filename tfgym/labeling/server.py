"""Run the labeling app with uvicorn: :func:`serve` (``tfgym label``) and :func:`running_server`.

One process, one event loop; the queue's SQL engine is shared by the routes' thread pool.
Several servers may serve one PostgreSQL database (or one SQLite file on one machine): the
queue's claim and answer statements are atomic, so they never hand out a task twice.

:func:`serve` checks its settings before it opens anything (:class:`ServerConfig`; a
non-loopback address without a token raises
:class:`~tfgym.labeling.security.InsecureBindError`), binds the socket itself (a port in use
is an ``OSError`` before the database is touched; port 0 picks a free one), prints the URL to
open, and runs until interrupted. Without a token it answers only to loopback host names.

:func:`running_server` runs the same app in a background thread for tests, notebooks and the
blocking human backend; it yields the base URL and stops the server on exit.

Example:
    >>> ServerConfig(host="0.0.0.0")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tfgym.labeling.security.InsecureBindError: refusing to bind ... to 0.0.0.0 without a token...
    >>> import httpx
    >>> from tfgym.preferences.queue import LabelQueue
    >>> with running_server(LabelQueue(":memory:")) as url:
    ...     httpx.get(f"{url}/api/next", params={"labeler": "dr-a"}).status_code
    204
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tfgym.labeling.security import LOOPBACK_HOSTS, check_bind, check_token

__all__ = ["ServerConfig", "bind_socket", "running_server", "serve", "server_url"]

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


@dataclass(frozen=True)
class ServerConfig:
    """Settings of a labeling server; ``tfgym label`` takes its options from these fields.

    Raises:
        InsecureBindError: a non-loopback ``host`` without a ``token``.
        ValueError: a port outside 0-65535, a malformed token, or a non-positive lease, poll
            interval or overlap.
    """

    host: str = field(default="127.0.0.1", metadata={"help": "address to listen on"})
    port: int = field(default=8000, metadata={"help": "port to listen on (0: any free port)"})
    token: str | None = field(
        default=None,
        metadata={
            "help": "access token every request must carry (required off loopback; "
            "default: $TFGYM_LABEL_TOKEN)",
            "default_help": "none",
        },
    )
    lease_s: float = field(
        default=120.0, metadata={"help": "seconds a labeler holds a task before it is re-served"}
    )
    overlap: int = field(
        default=1, metadata={"help": "distinct labelers who answer each comparison (default)"}
    )
    poll_s: float = field(
        default=3.0, metadata={"help": "seconds between a waiting page's checks for new work"}
    )
    log_level: str = field(
        default="info", metadata={"help": "uvicorn log level", "choices": LOG_LEVELS}
    )

    def __post_init__(self) -> None:
        """Validate (refuse an open bind before anything starts)."""
        check_token(self.token)
        check_bind(self.host, self.token)
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0-65535, got {self.port}")
        if not self.lease_s > 0 or not self.poll_s > 0:
            raise ValueError(
                f"lease_s and poll_s must be positive, got {self.lease_s}, {self.poll_s}"
            )
        if self.overlap < 1:
            raise ValueError(f"overlap must be at least 1, got {self.overlap}")
        if self.log_level not in LOG_LEVELS:
            raise ValueError(f"log_level must be one of {', '.join(LOG_LEVELS)}")


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv4 or IPv6; port 0: a free port).

    Raises:
        OSError: the address cannot be bound (in use, not this machine's, no permission).
    """
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and
    # without it a response's header and body writes meet delayed ACKs (~40 ms a request)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as error:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {error.strerror or error}") from error
    return sock


def server_url(host: str, port: int, token: str | None = None) -> str:
    """The address to open in a browser (with ``?token=`` when there is a token)."""
    name = host.strip("[]")
    if name in ("0.0.0.0", "::"):
        name = socket.gethostname()
    elif ":" in name:
        name = f"[{name}]"
    return f"http://{name}:{port}/" + (f"?token={token}" if token else "")


def _app(queue: Any, config: ServerConfig) -> Any:
    from tfgym.labeling.app import create_app

    return create_app(
        queue,
        token=config.token,
        lease_s=config.lease_s,
        poll_s=config.poll_s,
        allowed_hosts=None if config.token else LOOPBACK_HOSTS,
    )


def serve(
    db_url: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    *,
    lease_s: float = 120.0,
    overlap: int = 1,
    poll_s: float = 3.0,
    log_level: str = "info",
    out: TextIO | None = None,
) -> None:
    """Serve the labeling app on a queue until interrupted (Ctrl-C or SIGTERM), then return.

    Args:
        db_url: the label database: an SQLite path or URL, or a PostgreSQL URL.
        host: address to listen on; anything but loopback needs a ``token``.
        port: port to listen on (0: a free port, printed).
        token: access token (see :mod:`tfgym.labeling.security`).
        lease_s: seconds a labeler holds a task.
        overlap: the queue's default number of distinct labelers per comparison.
        poll_s: seconds between a waiting page's checks for new work.
        log_level: uvicorn's log level.
        out: where to print the URL (default stdout).

    Raises:
        InsecureBindError: a non-loopback host without a token (before anything opens).
        ValueError: other bad settings.
        OSError: the address cannot be bound.
    """
    import uvicorn

    from tfgym.preferences.queue import LabelQueue

    config = ServerConfig(
        host=host, port=port, token=token, lease_s=lease_s, overlap=overlap, poll_s=poll_s,
        log_level=log_level,
    )  # fmt: skip
    out = out or sys.stdout
    sock = bind_socket(host, port)
    try:
        queue = LabelQueue(db_url, overlap=overlap, lease_s=lease_s)
        try:
            bound = sock.getsockname()[1]
            uv = uvicorn.Config(
                _app(queue, config), log_level=log_level, server_header=False,
                proxy_headers=False, timeout_graceful_shutdown=5, lifespan="off",
            )  # fmt: skip
            print(f"tfgym label: serving the label queue in {db_url}", file=out)
            print(f"tfgym label: open {server_url(host, bound, token)}", file=out, flush=True)
            with _stop_on_sigterm():
                uvicorn.Server(uv).run(sockets=[sock])
        except (KeyboardInterrupt, _Stopped):
            pass  # uvicorn finished the requests in flight, then passed the signal on
        finally:
            queue.close()
    finally:
        sock.close()
    print("tfgym label: stopped", file=out, flush=True)


class _Stopped(Exception):
    """SIGTERM reached the server (after uvicorn's graceful shutdown)."""


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into :class:`_Stopped`, so the queue closes and ``serve`` returns.

    uvicorn handles SIGINT and SIGTERM itself and re-raises the signal once it has shut down;
    with the default SIGTERM handler that would kill the process before it closes the queue.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise _Stopped(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def running_server(
    queue: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    lease_s: float | None = None,
    poll_s: float = 3.0,
    timeout_s: float = 10.0,
) -> Iterator[str]:
    """Run the labeling app on ``queue`` with uvicorn in a background thread.

    Args:
        queue: the :class:`~tfgym.preferences.queue.LabelQueue` to serve (not closed here).
        host: address to listen on (loopback; others need a token).
        port: port (0: a free one).
        token: access token, or None.
        lease_s: lease of claimed tasks (default: the queue's).
        poll_s: a waiting page's poll interval.
        timeout_s: how long to wait for the server to start and to stop.

    Yields:
        The base URL, e.g. ``"http://127.0.0.1:45231"`` (no trailing slash).

    Raises:
        InsecureBindError: a non-loopback host without a token.
        RuntimeError: the server did not start within ``timeout_s``.
    """
    import uvicorn

    from tfgym.labeling.app import create_app

    check_token(token)
    check_bind(host, token)
    app = create_app(
        queue, token=token, lease_s=lease_s, poll_s=poll_s,
        allowed_hosts=None if token else LOOPBACK_HOSTS,
    )  # fmt: skip
    sock = bind_socket(host, port)
    config = uvicorn.Config(app, log_level="warning", server_header=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="tfgym-label-server", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the labeling server did not start on {host}:{port}")
            time.sleep(0.01)
        name = host.strip("[]")
        yield f"http://{f'[{name}]' if ':' in name else name}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)
        sock.close()
