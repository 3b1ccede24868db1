"""Who may talk to the labeling server, and what a request may carry.

The labeling server holds a team's answers, so it is closed by default and every request is
checked before any route sees it (:class:`SecurityMiddleware`, a plain ASGI middleware):

* **Bind.** The server listens on loopback (``127.0.0.1``) unless told otherwise; binding to
  any other address without a token is refused at start (:func:`check_bind` raises
  :class:`InsecureBindError`), so a labeling database is never opened to a network by a typo.
* **Token.** With a token, every request must carry it: ``Authorization: Bearer T`` (machine
  clients) or the ``tfgym_token`` cookie (the browser), which a page opened as ``/?token=T``
  sets (HttpOnly, SameSite=Lax) before redirecting to the same page without the token in
  its address. Missing or wrong: 401. Tokens are compared with :func:`hmac.compare_digest`.
* **No cross-site answers.** A request that changes state (any method but GET/HEAD) must be
  JSON (``Content-Type: application/json``: an HTML form cannot send it), and a present
  ``Origin`` header must name the server itself (a browser always sends it on a cross-site
  POST); else 403. Pages forbid framing (``frame-ancestors 'none'``), so another site cannot
  overlay the page and collect clicks.
* **Host names.** Without a token the server accepts only loopback host names
  (``allowed_hosts``), which defeats DNS-rebinding pages that would otherwise reach it through
  the labeler's browser; a wrong ``Host`` gets 400.
* **Size.** Request bodies are read into memory up to ``max_body_bytes`` (64 KiB: an answer
  is a few hundred bytes); a larger one gets 413 before the application sees it.

Nothing here opens a file: renderings are served by content address from the database and
static assets from memory (:mod:`tfgym.labeling.app`).

Example:
    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0")
    (True, True, False)
    >>> check_bind("0.0.0.0", None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tfgym.labeling.security.InsecureBindError: refusing to bind ... to 0.0.0.0 without a token...
    >>> check_labeler("dr-a"), token_matches("s3cret-token", "s3cret-token")
    ('dr-a', True)
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

__all__ = [
    "LABELER_PATTERN",
    "LOOPBACK_HOSTS",
    "MAX_BODY_BYTES",
    "SECURITY_HEADERS",
    "TOKEN_COOKIE",
    "InsecureBindError",
    "SecurityMiddleware",
    "check_bind",
    "check_labeler",
    "check_token",
    "is_loopback",
    "token_matches",
]

LABELER_PATTERN = r"^[A-Za-z0-9_.:@-]{1,64}$"
"""A labeler name: 1-64 characters of letters, digits and ``_ . : @ -``."""
TOKEN_COOKIE = "tfgym_token"
"""The cookie that carries the token for the browser."""
MAX_BODY_BYTES = 64 * 1024
"""Default limit of a request body."""
LOOPBACK_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")
"""Host names that a server without a token answers to."""

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        b"form-action 'self'",
    ),
)
"""Headers added to every response: no sniffing, no framing, no inline or foreign code."""

_TOKEN_RE = re.compile(r"^[A-Za-z0-9._~+/=-]{1,256}$")
_LABELER_RE = re.compile(LABELER_PATTERN)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class InsecureBindError(ValueError):
    """Binding to a non-loopback address without a token."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``); any other name is not."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def check_token(token: str | None) -> str | None:
    """Validate a server token (``None``: no token).

    Raises:
        ValueError: empty, longer than 256 characters, or with characters that a header or
            cookie cannot carry (allowed: letters, digits and ``. _ ~ + / = -``).
    """
    if token is None:
        return None
    if not isinstance(token, str) or not _TOKEN_RE.match(token):
        raise ValueError(
            "token must be 1-256 characters of letters, digits and . _ ~ + / = - "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe())')"
        )
    return token


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve a non-loopback address without a token.

    Raises:
        InsecureBindError: ``host`` is not loopback and ``token`` is None.
    """
    if token is None and not is_loopback(host):
        raise InsecureBindError(
            f"refusing to bind the labeling server to {host} without a token: anyone who can "
            "reach that address could read and answer the queue. Pass --token (or set "
            "TFGYM_LABEL_TOKEN), or bind to 127.0.0.1"
        )


def check_labeler(name: str) -> str:
    """Validate a labeler name (:data:`LABELER_PATTERN`); returns it.

    Raises:
        ValueError: not a valid name.
    """
    if not isinstance(name, str) or not _LABELER_RE.match(name):
        raise ValueError(
            f"labeler must be 1-64 characters of letters, digits and _ . : @ -, got {name!r:.80}"
        )
    return name


def token_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented token with the server's."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers, lower-case names; a repeated header keeps its first value."""
    out: dict[str, str] = {}
    for key, value in scope.get("headers", ()):
        out.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
    return out


async def _reply(
    send: Send, status: int, detail: str, headers: Sequence[tuple[str, str]] = ()
) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class SecurityMiddleware:
    """ASGI middleware: token, host, origin, content type and body size of every request.

    Args:
        app: the application to protect.
        token: the server token, or None for none (then only ``allowed_hosts`` guard).
        allowed_hosts: host names (without port) the server answers to; None: any.
        max_body_bytes: the largest request body accepted.
        token_pages: paths where ``?token=T`` is accepted, sets the cookie and redirects.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None = None,
        allowed_hosts: Sequence[str] | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        token_pages: Sequence[str] = ("/", "/rank", "/stats"),
    ) -> None:
        self.app = app
        self.token = check_token(token)
        self.allowed_hosts = (
            None if allowed_hosts is None else {h.strip("[]").lower() for h in allowed_hosts}
        )
        self.max_body_bytes = int(max_body_bytes)
        self.token_pages = frozenset(token_pages)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check one request; answer it here (400/401/403/413) or pass it on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_security_headers(send)
        headers = _headers(scope)
        host = headers.get("host", "")
        if self.allowed_hosts is not None and _host_name(host) not in self.allowed_hosts:
            await _reply(send, 400, f"host {host!r:.80} is not served here")
            return
        method = scope.get("method", "GET").upper()
        if self.token is not None and not await self._authorised(scope, headers, method, send):
            return
        if method not in _SAFE_METHODS:
            problem = _cross_site_problem(headers, host)
            if problem:
                await _reply(send, 403, problem)
                return
            receive = await self._buffered(headers, receive, send)
            if receive is None:
                return
        await self.app(scope, receive, send)

    async def _authorised(
        self, scope: Scope, headers: dict[str, str], method: str, send: Send
    ) -> bool:
        """Check the token; on a page opened with ``?token=T`` set the cookie and redirect."""
        assert self.token is not None
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), True)
        from_query = [v for k, v in query if k == "token"]
        if from_query and method == "GET" and scope.get("path") in self.token_pages:
            if not token_matches(from_query[0], self.token):
                await _reply(send, 401, "wrong token", [("www-authenticate", "Bearer")])
                return False
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            location = scope.get("path", "/") + (f"?{rest}" if rest else "")
            cookie = f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Lax"
            await _reply(
                send, 303, "token accepted", [("location", location), ("set-cookie", cookie)]
            )
            return False
        given = None
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        elif "cookie" in headers:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(headers["cookie"])
            except Exception:  # a malformed cookie header is no token
                jar = SimpleCookie()
            if TOKEN_COOKIE in jar:
                given = jar[TOKEN_COOKIE].value
        if token_matches(given, self.token):
            return True
        detail = "token required" if given is None else "wrong token"
        await _reply(
            send,
            401,
            f"{detail}: send 'Authorization: Bearer <token>' or open /?token=<token>",
            [("www-authenticate", "Bearer")],
        )
        return False

    async def _buffered(self, headers: dict[str, str], receive: Receive, send: Send) -> Any:
        """Read the whole body (at most ``max_body_bytes``) and return a receive replaying it.

        Returns None after answering 413 (too large) or 400 (bad Content-Length).
        """
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await _reply(send, 400, "malformed Content-Length")
                return None
            if int(declared) > self.max_body_bytes:
                await _reply(send, 413, f"request body over {self.max_body_bytes} bytes")
                return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _reply(send, 413, f"request body over {self.max_body_bytes} bytes")
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay


def _with_security_headers(send: Send) -> Send:
    """A send that adds :data:`SECURITY_HEADERS` to the response's start message."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *SECURITY_HEADERS]
        await send(message)

    return wrapped


def _host_name(host: str) -> str:
    """The name part of a Host header (``[::1]:8000`` -> ``::1``), lower-case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _cross_site_problem(headers: dict[str, str], host: str) -> str | None:
    """Why a state-changing request may come from another site, or None."""
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        return "requests that change state must be JSON (Content-Type: application/json)"
    if headers.get("sec-fetch-site", "") == "cross-site":
        return "cross-site request refused"
    origin = headers.get("origin")
    if origin is not None:
        parts = urlsplit(origin)
        if origin == "null" or parts.scheme not in ("http", "https"):
            return f"cross-site request refused (Origin {origin!r:.80})"
        if parts.netloc.lower() != host.strip().lower():
            return f"cross-site request refused: Origin {origin!r:.80} is not this server"
    return None
