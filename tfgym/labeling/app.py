"""The labeling web app: pages for people and a JSON API over a :class:`LabelQueue`.

:func:`create_app` builds a FastAPI application around one queue. Routes:

* ``GET /api/next?labeler=NAME[&kind=pair|rank]`` -> 200 with this labeler's lease (pair id,
  comparison id, scene, kind, expiry as ISO-8601 UTC, items in display order with their
  ``action`` and rendering URLs per view) or 204 when nothing is waiting. A labeler who
  already holds a lease gets it back (a reloaded page shows the same pair).
* ``POST /api/answer`` with JSON ``{"pair_id", "labeler", "answer": "left" | "right" |
  "equal" | "skip", "lead_time_s"?}`` or, for a ranking, ``{"pair_id", "labeler", "order":
  [display positions best -> worst], "lead_time_s"?}`` -> 200 ``{"ok": true, "answer_id",
  ...}`` once the answer is committed; unknown pair 404; not leased to that labeler, expired
  or already answered 409; malformed JSON 400; wrong fields or values 422.
* ``GET /api/stats`` -> :meth:`LabelQueue.stats`; ``GET /api/counts`` -> :meth:`LabelQueue.counts`
  (cheap: what the page polls).
* ``GET /api/rendering/{sha}.png`` -> the PNG with that sha256 (64 lower-case hex digits, else
  422; unknown 404), cached by the browser for a year (a content address never changes).
* ``GET /`` the pair page, ``GET /rank`` the ranking page, ``GET /stats`` the stats page;
  ``GET /static/{name}`` their script and style, held in memory.

Every error is JSON ``{"detail": ...}`` with a 4xx status that names the problem; a request
cannot cause a 500. A fault of the server itself (a bug, a lost database) is logged with its
traceback and answered 500, or 503 with ``Retry-After`` when the database is unreachable.
Token, origin, content type and body size are checked by
:class:`~tfgym.labeling.security.SecurityMiddleware` before any route runs. Routes are plain
functions: FastAPI runs them in its thread pool, and the queue's engine is thread-safe.

Example:
    >>> from fastapi.testclient import TestClient
    >>> from tfgym.preferences.queue import LabelQueue
    >>> client = TestClient(create_app(LabelQueue(":memory:")))
    >>> client.get("/api/next", params={"labeler": "dr-a"}).status_code
    204
    >>> client.post("/api/answer", json={"pair_id": 7, "labeler": "dr-a", "answer": "up"}).json()
    {'detail': "answer: Input should be 'left', 'right', 'equal' or 'skip'"}
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import resources
from typing import Annotated, Any, ClassVar, Literal

import jinja2
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from tfgym.labeling.security import (
    LABELER_PATTERN,
    MAX_BODY_BYTES,
    SecurityMiddleware,
    check_token,
)
from tfgym.preferences.queue import (
    Answer,
    LabelQueue,
    Lease,
    LeaseConflict,
    QueueError,
    UnknownPair,
)

__all__ = ["AnswerBody", "answer_json", "create_app", "lease_json"]

log = logging.getLogger("tfgym.labeling")

_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_RENDERING_CACHE = "max-age=31536000, immutable"
_STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (UnknownPair, 404),
    (LeaseConflict, 409),
    (QueueError, 409),
)
Labeler = Annotated[str, Field(pattern=LABELER_PATTERN, description="1-64 of [A-Za-z0-9_.:@-]")]


class AnswerBody(BaseModel):
    """The body of ``POST /api/answer``: exactly one of ``answer`` (pair) and ``order`` (rank)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    pair_id: StrictInt = Field(ge=1)
    labeler: Labeler
    answer: Literal["left", "right", "equal", "skip"] | None = None
    order: list[StrictInt] | None = Field(default=None, min_length=2, max_length=16)
    lead_time_s: float | None = Field(default=None, ge=0.0, le=86400.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_kind(self) -> AnswerBody:
        if (self.answer is None) == (self.order is None):
            raise ValueError('give exactly one of "answer" (a pair) and "order" (a ranking)')
        return self


def _json_safe(value: Any) -> Any:
    """``jsonable_encoder`` with NaN and infinities as None (JSON has neither)."""
    value = jsonable_encoder(value)

    def fix(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v

    return fix(value)


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


def lease_json(lease: Lease) -> dict[str, Any]:
    """The JSON form of a lease that ``GET /api/next`` returns."""
    return {
        "pair_id": lease.pair_id,
        "comparison_id": lease.comparison_id,
        "labeler": lease.labeler,
        "scene": lease.scene,
        "kind": lease.kind,
        "expires": _iso(lease.expires),
        "items": [
            {
                "position": item.position,
                "action": [float(a) for a in item.action],
                "views": {view: f"/api/rendering/{sha}.png" for view, sha in item.views.items()},
            }
            for item in sorted(lease.items, key=lambda it: it.position)
        ],
    }


def answer_json(answer: Answer) -> dict[str, Any]:
    """The JSON form of a stored answer that ``POST /api/answer`` returns."""
    return _json_safe(
        {
            "ok": True,
            "answer_id": answer.answer_id,
            "pair_id": answer.pair_id,
            "comparison_id": answer.comparison_id,
            "labeler": answer.labeler,
            "answer": answer.answer,
            "order": None if answer.order is None else list(answer.order),
            "mu": answer.mu,
            "created": _iso(answer.created),
            "lead_time_s": answer.lead_time_s,
        }
    )


def _validation_message(errors: Sequence[Any]) -> tuple[int, str]:
    """Status (400 for a body that is not JSON, else 422) and one readable line."""
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "request body is not valid JSON"
    parts = []
    for e in errors[:5]:
        where = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path"))
        message = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return 422, "; ".join(parts)


def _install_error_handlers(app: FastAPI) -> None:
    """JSON ``{"detail"}`` errors: queue errors 404/409, validation 400/422, faults logged."""

    async def queue_error(request: Request, exc: Exception) -> JSONResponse:
        status = next(code for kind, code in _STATUS_BY_ERROR if isinstance(exc, kind))
        return JSONResponse({"detail": str(exc) or type(exc).__name__}, status_code=status)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        status, message = _validation_message(exc.errors())
        return JSONResponse({"detail": message}, status_code=status)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=exc.headers)
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    async def database_down(request: Request, exc: Exception) -> JSONResponse:
        log.error("database error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(
            {"detail": "the label database is unavailable; retry shortly"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    async def fault(request: Request, exc: Exception) -> JSONResponse:
        log.error("server fault on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal server error (logged)"}, status_code=500)

    app.add_exception_handler(QueueError, queue_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(DBAPIError, database_down)
    app.add_exception_handler(Exception, fault)


class _Assets:
    """The pages' static files, read once from the package and served from memory."""

    TYPES: ClassVar[dict[str, str]] = {
        ".js": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".svg": "image/svg+xml",
    }

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        folder = resources.files("tfgym.labeling") / "static"
        for entry in folder.iterdir():
            suffix = "." + entry.name.rsplit(".", 1)[-1]
            if entry.is_file() and suffix in self.TYPES:
                self.files[entry.name] = (entry.read_bytes(), self.TYPES[suffix])
        self.versions = {n: hashlib.sha256(b).hexdigest()[:12] for n, (b, _) in self.files.items()}

    def url(self, name: str) -> str:
        """The versioned URL of an asset (a new version busts the browser's cache)."""
        return f"/static/{name}?v={self.versions[name]}"


def _templates(assets: _Assets) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tfgym.labeling", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals["static"] = assets.url
    return env


def create_app(
    queue: LabelQueue,
    *,
    token: str | None = None,
    lease_s: float | None = None,
    poll_s: float = 3.0,
    allowed_hosts: Sequence[str] | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """The labeling app over one queue.

    Args:
        queue: the label queue (its database holds comparisons, renderings and answers).
        token: when given, every request must carry it (header or cookie, see
            :mod:`tfgym.labeling.security`); None: no token (serve on loopback only).
        lease_s: how long a labeler holds a claimed task (default: the queue's lease).
        poll_s: how often a page with nothing to label asks for new work.
        allowed_hosts: host names the app answers to (None: any); the server passes the
            loopback names when it has no token.
        max_body_bytes: the largest request body accepted (413 above).

    Returns:
        The FastAPI application (an ASGI app for uvicorn or a ``TestClient``).

    Raises:
        ValueError: a malformed token, or ``lease_s``/``poll_s`` not positive.
    """
    check_token(token)
    if lease_s is not None and not lease_s > 0:
        raise ValueError(f"lease_s must be positive, got {lease_s}")
    if not poll_s > 0:
        raise ValueError(f"poll_s must be positive, got {poll_s}")
    app = FastAPI(
        title="tfgym labeling",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.add_middleware(
        SecurityMiddleware,
        token=token,
        allowed_hosts=allowed_hosts,
        max_body_bytes=max_body_bytes,
    )
    _install_error_handlers(app)
    _add_pages(app, queue, poll_s=poll_s)
    _add_api(app, queue, lease_s=lease_s, private=token is not None)
    return app


def _add_pages(app: FastAPI, queue: LabelQueue, *, poll_s: float) -> None:
    """The HTML pages and their static assets (served from memory)."""
    assets = _Assets()
    pages = _templates(assets)
    settings = {"poll_ms": round(poll_s * 1000)}

    def page(name: str, **context: Any) -> HTMLResponse:
        html = pages.get_template(name).render(**settings, **context)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def label_page() -> HTMLResponse:
        return page("label.html", kind="pair")

    @app.get("/rank", response_class=HTMLResponse, include_in_schema=False)
    def rank_page() -> HTMLResponse:
        return page("rank.html", kind="rank")

    @app.get("/stats", response_class=HTMLResponse, include_in_schema=False)
    def stats_page() -> HTMLResponse:
        return page("stats.html", kind="stats", stats=_json_safe(queue.stats()))

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in assets.files:  # a dictionary key, never a path
            raise HTTPException(404, f"no static file {name!r:.80}")
        body, media = assets.files[name]
        return Response(body, media_type=media, headers={"Cache-Control": "max-age=86400"})


def _add_api(app: FastAPI, queue: LabelQueue, *, lease_s: float | None, private: bool) -> None:
    """The JSON API (and renderings) of the module docstring."""
    no_store = {"Cache-Control": "no-store"}
    cache = ("private, " if private else "public, ") + _RENDERING_CACHE

    @app.get("/api/next", responses={204: {"description": "nothing is waiting"}})
    def next_task(
        labeler: Annotated[str, Query(pattern=LABELER_PATTERN)],
        kind: Literal["pair", "rank"] = "pair",
    ) -> Response:
        """Claim (or get back) this labeler's task; 204 when nothing is waiting."""
        lease = _queue_call(queue.claim, labeler, kind=kind, lease_s=lease_s)
        if lease is None:
            return Response(status_code=204, headers=no_store)
        return JSONResponse(lease_json(lease), headers=no_store)

    @app.post("/api/answer")
    def answer(body: AnswerBody) -> JSONResponse:
        """Store an answer; 200 once it is committed."""
        if body.order is not None:
            stored = _queue_call(
                queue.answer_rank,
                body.pair_id,
                body.labeler,
                body.order,
                lead_time_s=body.lead_time_s,
            )
        else:
            stored = _queue_call(
                queue.answer,
                body.pair_id,
                body.labeler,
                body.answer,
                lead_time_s=body.lead_time_s,
            )
        return JSONResponse(answer_json(stored))

    @app.get("/api/stats")
    def stats() -> JSONResponse:
        """Counts, per-labeler figures and agreement (:meth:`LabelQueue.stats`)."""
        return JSONResponse(_json_safe(queue.stats()), headers=no_store)

    @app.get("/api/counts")
    def counts() -> JSONResponse:
        """Tasks waiting, leased and answered (:meth:`LabelQueue.counts`)."""
        return JSONResponse(_json_safe(queue.counts()), headers=no_store)

    @app.get("/api/rendering/{sha}.png", response_class=Response)
    def rendering(sha: str, request: Request) -> Response:
        """A rendering by the sha256 of its PNG bytes."""
        if not _SHA_RE.match(sha):
            raise HTTPException(422, "sha must be 64 lower-case hex digits (a sha256)")
        headers = {"Cache-Control": cache, "ETag": f'"{sha}"'}
        if request.headers.get("if-none-match", "").strip('W/"') == sha:
            return Response(status_code=304, headers=headers)
        data = queue.rendering(sha)
        if data is None:
            raise HTTPException(404, f"no rendering {sha}")
        return Response(data, media_type="image/png", headers=headers)


def _queue_call(method: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the queue; a ValueError (malformed answer, name, order) becomes 422."""
    try:
        return method(*args, **kwargs)
    except QueueError:
        raise
    except ValueError as error:
        raise HTTPException(422, str(error)) from error
