"""The labeling app: JSON API, pages, error statuses, security, the server and ``tfgym label``.

Most tests drive the FastAPI app in-process with ``TestClient`` over a real ``LabelQueue`` on a
temporary SQLite file (tiny synthetic 8x8 PNGs, so they run fast); the round trip and the
conflict statuses also run on PostgreSQL through the ``db_url`` fixture. One test starts the
real server (uvicorn, via ``serve``) in a subprocess and talks HTTP to it; one serves real
display renderings of headsq and decodes them as the page would.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.exc import OperationalError

from tfgym.labeling.app import create_app
from tfgym.labeling.security import (
    InsecureBindError,
    check_bind,
    check_labeler,
    check_token,
    is_loopback,
)
from tfgym.labeling.server import (
    ServerConfig,
    bind_socket,
    running_server,
    serve,
    server_url,
)
from tfgym.preferences.queue import ComparisonRequest, Item, LabelQueue

TOKEN = "s3cret-T0ken_for.tests"
ROOT = Path(__file__).resolve().parents[1]


# -- helpers ---------------------------------------------------------------------------------


def png(color: tuple[int, int, int], size: int = 8) -> bytes:
    """A tiny solid-colour PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, format="PNG")
    return buffer.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_item(n: int) -> Item:
    """Item ``n``: its own colours (front and side differ), action and key ``item-n``."""
    front = png((n * 37 % 256, 60, 200 - n % 200))
    side = png((n * 37 % 256, 61, 200 - n % 200))
    action = tuple(float(x) for x in np.linspace(-1, 1, 8) * (0.1 + 0.01 * n))
    return Item(action=action, views={"front": front, "side": side}, key=f"item-{n}")


def pair_request(n: int, scene: str = "headsq", **kwargs) -> ComparisonRequest:
    """A comparison of items ``2n`` and ``2n + 1``."""
    return ComparisonRequest(scene, (make_item(2 * n), make_item(2 * n + 1)), **kwargs)


def keys_by_sha(requests: list[ComparisonRequest]) -> dict[str, str]:
    """sha of every view's PNG -> the item's key."""
    return {sha(v): str(it.key) for r in requests for it in r.items for v in it.views.values()}


def shown_keys(lease: dict, by_sha: dict[str, str]) -> list[str]:
    """The keys of a lease's items in display order, read from their rendering URLs."""
    out = []
    for item in sorted(lease["items"], key=lambda it: it["position"]):
        match = re.fullmatch(r"/api/rendering/([0-9a-f]{64})\.png", item["views"]["front"])
        assert match, item
        out.append(by_sha[match.group(1)])
    return out


def answer(client, pair_id, labeler="dr-a", word="left", **extra):
    body = {"pair_id": pair_id, "labeler": labeler, "answer": word, **extra}
    return client.post("/api/answer", json=body)


@pytest.fixture
def queue(tmp_path):
    q = LabelQueue(tmp_path / "labels.sqlite", seed=0)
    yield q
    q.close()


@pytest.fixture
def client(queue):
    with TestClient(create_app(queue), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def any_queue(db_url):
    """A queue on SQLite or PostgreSQL (the ``db_url`` fixture of conftest)."""
    q = LabelQueue(db_url, seed=0)
    yield q
    q.close()


@pytest.fixture
def any_client(any_queue):
    with TestClient(create_app(any_queue), raise_server_exceptions=False) as c:
        yield c


# -- the JSON API ------------------------------------------------------------------------------


def test_next_answer_round_trip(any_queue, any_client):
    requests = [pair_request(0, priority=1.0), pair_request(1)]
    any_queue.enqueue(requests)
    by_sha = keys_by_sha(requests)

    r = any_client.get("/api/next", params={"labeler": "dr-a"})
    assert r.status_code == 200, r.text
    lease = r.json()
    assert lease["kind"] == "pair" and lease["scene"] == "headsq" and lease["labeler"] == "dr-a"
    assert [it["position"] for it in lease["items"]] == [0, 1]
    assert sorted(shown_keys(lease, by_sha)) == ["item-0", "item-1"]  # priority first
    assert all(set(it["views"]) == {"front", "side"} for it in lease["items"])
    assert len(lease["items"][0]["action"]) == 8
    assert lease["expires"].endswith("+00:00")
    for item in lease["items"]:
        for url in item["views"].values():
            image = any_client.get(url)
            assert image.status_code == 200 and image.headers["content-type"] == "image/png"
            assert sha(image.content) == url.split("/")[-1].removesuffix(".png")

    left = shown_keys(lease, by_sha)[0]
    r = answer(any_client, lease["pair_id"], word="left", lead_time_s=2.5)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True and body["pair_id"] == lease["pair_id"] and body["answer_id"] >= 1
    # the answer is stored, mapped back through the random sides
    (stored,) = any_queue.answers()
    assert (stored.labeler, stored.answer, stored.lead_time_s) == ("dr-a", "left", 2.5)
    assert stored.mu == (1.0 if stored.keys[0] == left else 0.0)
    (pref,) = any_queue.store.records(labeler="dr-a")
    assert pref.mu == stored.mu and pref.scene == "headsq"

    second = any_client.get("/api/next", params={"labeler": "dr-a"}).json()
    assert sorted(shown_keys(second, by_sha)) == ["item-2", "item-3"]
    assert answer(any_client, second["pair_id"], word="equal").status_code == 200
    assert any_client.get("/api/next", params={"labeler": "dr-a"}).status_code == 204
    counts = any_client.get("/api/counts").json()
    assert counts["waiting"] == 0 and counts["answered"] == 2


def test_next_is_204_when_nothing_waits(client):
    r = client.get("/api/next", params={"labeler": "dr-a"})
    assert r.status_code == 204 and r.content == b""


def test_a_reloaded_page_gets_the_same_lease_back(queue, client):
    queue.enqueue([pair_request(0), pair_request(1)])
    first = client.get("/api/next", params={"labeler": "dr-a"}).json()
    again = client.get("/api/next", params={"labeler": "dr-a"}).json()
    other = client.get("/api/next", params={"labeler": "dr-b"}).json()
    assert again["pair_id"] == first["pair_id"] and again["items"] == first["items"]
    assert other["pair_id"] != first["pair_id"]


def test_answer_conflicts(any_queue, any_client):
    any_queue.enqueue([pair_request(0)])
    lease = any_client.get("/api/next", params={"labeler": "dr-a"}).json()
    r = answer(any_client, lease["pair_id"] + 1000)
    assert r.status_code == 404 and "detail" in r.json()
    r = answer(any_client, lease["pair_id"], labeler="dr-b")  # not leased to dr-b
    assert r.status_code == 409 and r.json()["detail"]
    assert answer(any_client, lease["pair_id"]).status_code == 200
    r = answer(any_client, lease["pair_id"], word="right")  # answered already
    assert r.status_code == 409
    assert len(any_queue.answers()) == 1


def test_expired_lease_is_409_and_the_pair_is_served_again(queue):
    queue.enqueue([pair_request(0)])
    with TestClient(create_app(queue, lease_s=0.2)) as client:
        lease = client.get("/api/next", params={"labeler": "dr-a"}).json()
        time.sleep(0.3)
        assert answer(client, lease["pair_id"]).status_code == 409
        again = client.get("/api/next", params={"labeler": "dr-b"})
        assert again.status_code == 200
        assert answer(client, again.json()["pair_id"], labeler="dr-b").status_code == 200


BAD_BODIES = {
    "not-json": (b"{pair_id: 1", 400),
    "truncated": (b'{"pair_id": 1, "labeler": "dr-a"', 400),
    "empty": (b"", 422),
    "a-list": (b"[1, 2]", 422),
    "pair-id-string": ({"pair_id": "1", "labeler": "dr-a", "answer": "left"}, 422),
    "pair-id-bool": ({"pair_id": True, "labeler": "dr-a", "answer": "left"}, 422),
    "pair-id-float": ({"pair_id": 1.5, "labeler": "dr-a", "answer": "left"}, 422),
    "pair-id-zero": ({"pair_id": 0, "labeler": "dr-a", "answer": "left"}, 422),
    "pair-id-missing": ({"labeler": "dr-a", "answer": "left"}, 422),
    "labeler-number": ({"pair_id": 1, "labeler": 7, "answer": "left"}, 422),
    "labeler-bad-chars": ({"pair_id": 1, "labeler": "dr a<script>", "answer": "left"}, 422),
    "labeler-empty": ({"pair_id": 1, "labeler": "", "answer": "left"}, 422),
    "labeler-too-long": ({"pair_id": 1, "labeler": "x" * 65, "answer": "left"}, 422),
    "answer-word": ({"pair_id": 1, "labeler": "dr-a", "answer": "up"}, 422),
    "answer-number": ({"pair_id": 1, "labeler": "dr-a", "answer": 1}, 422),
    "no-answer": ({"pair_id": 1, "labeler": "dr-a"}, 422),
    "answer-and-order": ({"pair_id": 1, "labeler": "dr-a", "answer": "left", "order": [0, 1]}, 422),
    "order-strings": ({"pair_id": 1, "labeler": "dr-a", "order": ["a", "b"]}, 422),
    "lead-negative": ({"pair_id": 1, "labeler": "dr-a", "answer": "left", "lead_time_s": -1}, 422),
    "lead-string": ({"pair_id": 1, "labeler": "dr-a", "answer": "left", "lead_time_s": "2"}, 422),
    "extra-field": ({"pair_id": 1, "labeler": "dr-a", "answer": "left", "mu": 1}, 422),
}


@pytest.mark.parametrize(("body", "status"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_malformed_answers_are_400_or_422(queue, client, body, status):
    queue.enqueue([pair_request(0)])
    pair_id = client.get("/api/next", params={"labeler": "dr-a"}).json()["pair_id"]
    assert pair_id == 1  # the ids the bodies name
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = client.post("/api/answer", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert isinstance(r.json()["detail"], str) and r.json()["detail"]
    assert queue.answers() == []  # nothing stored
    assert answer(client, pair_id).status_code == 200  # the lease is still good


def test_error_messages_name_the_problem(queue, client):
    r = client.post("/api/answer", json={"pair_id": 1, "labeler": "dr-a", "answer": "up"})
    assert "answer" in r.json()["detail"] and "'left'" in r.json()["detail"]
    r = client.post("/api/answer", json={"pair_id": 1, "labeler": "dr-a"})
    assert "exactly one" in r.json()["detail"]
    r = client.post("/api/answer", content=b"{", headers={"content-type": "application/json"})
    assert r.json()["detail"] == "request body is not valid JSON"


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"labeler": ""},
        {"labeler": "a b"},
        {"labeler": "x" * 65},
        {"labeler": "dr-a", "kind": "trio"},
    ],
    ids=["no-labeler", "empty", "space", "too-long", "bad-kind"],
)
def test_next_rejects_bad_queries(client, params):
    r = client.get("/api/next", params=params)
    assert r.status_code == 422 and r.json()["detail"]


def test_renderings_by_sha_only(queue, client):
    request = pair_request(0)
    queue.enqueue([request])
    good = sha(request.items[0].views["front"])
    r = client.get(f"/api/rendering/{good}.png")
    assert r.status_code == 200 and r.content == request.items[0].views["front"]
    assert "max-age=31536000" in r.headers["cache-control"] and r.headers["etag"] == f'"{good}"'
    cached = client.get(f"/api/rendering/{good}.png", headers={"if-none-match": f'"{good}"'})
    assert cached.status_code == 304 and cached.content == b""
    assert client.get(f"/api/rendering/{'0' * 64}.png").status_code == 404
    for bad in (good.upper(), good[:-1], good + "0", "z" * 64, "..%5C..%5Cetc%5Cpasswd"):
        r = client.get(f"/api/rendering/{bad}.png")
        assert r.status_code == 422, bad
        assert "sha256" in r.json()["detail"]
    for path in (
        "/api/rendering/../../etc/passwd",
        "/api/rendering/..%2F..%2Fapp.py.png",
        "/api/rendering/x/y.png",
        "/static/../app.py",
        "/static/..%2Fapp.py",
    ):
        assert client.get(path).status_code == 404


def test_ranking_round_trip(queue, client):
    items = tuple(make_item(n) for n in range(4))
    queue.enqueue([ComparisonRequest("headsq", items)])
    by_sha = keys_by_sha([ComparisonRequest("headsq", items)])
    assert client.get("/api/next", params={"labeler": "dr-a"}).status_code == 204  # pairs only
    r = client.get("/api/next", params={"labeler": "dr-a", "kind": "rank"})
    assert r.status_code == 200, r.text
    lease = r.json()
    assert lease["kind"] == "rank" and len(lease["items"]) == 4
    shown = shown_keys(lease, by_sha)
    bad = client.post("/api/answer", json={"pair_id": lease["pair_id"], "labeler": "dr-a",
                                           "order": [0, 0, 1, 2]})  # fmt: skip
    assert bad.status_code == 422, bad.text
    order = [2, 0, 3, 1]  # display positions, best first
    r = client.post(
        "/api/answer",
        json={"pair_id": lease["pair_id"], "labeler": "dr-a", "order": order, "lead_time_s": 9.0},
    )
    assert r.status_code == 200, r.text
    (stored,) = queue.answers()
    assert stored.answer == "rank"
    best_to_worst = [shown[p] for p in order]
    assert [stored.keys[i] for i in stored.order] == best_to_worst
    prefs = queue.store.records(labeler="dr-a")
    assert len(prefs) == 6 and all(p.mu in (0.0, 1.0) for p in prefs)


def test_stats_endpoints_and_page(queue, client):
    queue.enqueue([pair_request(0), pair_request(1)])
    for labeler, word in (("dr-a", "left"), ("dr-b", "skip")):
        lease = client.get("/api/next", params={"labeler": labeler}).json()
        assert answer(client, lease["pair_id"], labeler=labeler, word=word).status_code == 200
    stats = client.get("/api/stats")
    assert stats.status_code == 200
    data = stats.json()
    assert set(data["labelers"]) == {"dr-a", "dr-b"}
    assert data["labelers"]["dr-b"]["skips"] == 1
    page = client.get("/stats")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "dr-a" in page.text and "dr-b" in page.text and "Labeling statistics" in page.text


def test_pages_and_static_assets(client):
    for path, marker in (("/", "Nothing to label right now"), ("/rank", "best"), ("/stats", "")):
        r = client.get(path)
        assert r.status_code == 200 and marker in r.text
        assert "<script" not in re.sub(
            r'<script src="/static/[a-z]+\.js\?v=[0-9a-f]+"></script>', "", r.text
        )
    page = client.get("/").text
    assert "Labeling guidelines" in page and "metal" in page.lower()
    for name in re.findall(r"/static/([a-z]+\.(?:js|css|svg))\?v=", page):
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and asset.content
    assert client.get("/static/nothing.js").status_code == 404
    headers = client.get("/").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


def test_no_request_makes_a_500(queue, client):
    """A spread of junk requests: every one gets a 4xx (or 2xx), never a 5xx."""
    queue.enqueue([pair_request(0)])
    rng = np.random.default_rng(0)
    junk = [bytes(rng.integers(0, 256, size=int(n))) for n in rng.integers(0, 300, size=20)]
    statuses = []
    for body in junk:
        statuses.append(
            client.post(
                "/api/answer", content=body, headers={"content-type": "application/json"}
            ).status_code
        )
    for path in (
        "/api/next?labeler=%00",
        "/api/next?labeler=dr-a&labeler=dr-b",
        "/api/next?kind=",
        "/api/rendering/.png",
        "/api/answer",
        "/nope",
        "/api/stats?x=" + "a" * 5000,
    ):
        statuses.append(client.get(path).status_code)  # fmt: skip
    for method in ("PUT", "DELETE", "PATCH"):
        statuses.append(client.request(method, "/api/answer", json={}).status_code)
    deep = b"[" * 100_00 + b"]" * 100_00
    statuses.append(
        client.post(
            "/api/answer", content=deep, headers={"content-type": "application/json"}
        ).status_code
    )
    assert statuses and all(200 <= s < 500 for s in statuses), statuses


def test_server_faults_are_logged_and_database_loss_is_503(queue, caplog, monkeypatch):
    def broken() -> dict:
        raise RuntimeError("a bug in the server")

    def lost() -> dict:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(queue, "stats", broken)
    monkeypatch.setattr(queue, "counts", lost)
    with TestClient(create_app(queue), raise_server_exceptions=False) as client:
        with caplog.at_level(logging.ERROR, logger="tfgym.labeling"):
            r = client.get("/api/stats")
        assert r.status_code == 500 and r.json() == {"detail": "internal server error (logged)"}
        assert "a bug in the server" in caplog.text
        r = client.get("/api/counts")
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert "unavailable" in r.json()["detail"]


# -- security ----------------------------------------------------------------------------------


def test_post_must_be_json_and_same_origin(queue, client):
    queue.enqueue([pair_request(0)])
    pair_id = client.get("/api/next", params={"labeler": "dr-a"}).json()["pair_id"]
    body = json.dumps({"pair_id": pair_id, "labeler": "dr-a", "answer": "left"})
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        None,
    ):
        headers = {} if content_type is None else {"content-type": content_type}
        r = client.post("/api/answer", content=body, headers=headers)
        assert r.status_code == 403 and "JSON" in r.json()["detail"], content_type
    json_headers = {"content-type": "application/json"}
    for origin in ("http://evil.example", "null", "http://testserver.evil.example", "file://"):
        r = client.post("/api/answer", content=body, headers={**json_headers, "origin": origin})
        assert r.status_code == 403 and "cross-site" in r.json()["detail"], origin
    r = client.post(
        "/api/answer", content=body, headers={**json_headers, "sec-fetch-site": "cross-site"}
    )
    assert r.status_code == 403
    assert queue.answers() == []
    r = client.post(
        "/api/answer", content=body, headers={**json_headers, "origin": "http://testserver"}
    )
    assert r.status_code == 200


def test_request_bodies_are_size_limited(queue):
    queue.enqueue([pair_request(0)])
    with TestClient(create_app(queue, max_body_bytes=1024)) as client:
        pair_id = client.get("/api/next", params={"labeler": "dr-a"}).json()["pair_id"]
        huge = {"pair_id": pair_id, "labeler": "dr-a", "answer": "left", "pad": "x" * 2000}
        r = client.post("/api/answer", json=huge)
        assert r.status_code == 413 and "1024" in r.json()["detail"]

        def chunks():  # no Content-Length: counted as it streams
            yield b'{"pair_id": 1, "pad": "'
            for _ in range(100):
                yield b"x" * 100

        r = client.post(
            "/api/answer", content=chunks(), headers={"content-type": "application/json"}
        )
        assert r.status_code == 413
        assert answer(client, pair_id).status_code == 200


def test_token_is_required_everywhere(queue):
    request = pair_request(0)
    queue.enqueue([request])
    rendering = f"/api/rendering/{sha(request.items[0].views['front'])}.png"
    app = create_app(queue, token=TOKEN)
    with TestClient(app) as client:
        for path in (
            "/",
            "/rank",
            "/stats",
            "/api/stats",
            "/api/next?labeler=dr-a",
            rendering,
            "/static/style.css",
            "/nope",
        ):
            assert client.get(path).status_code == 401, path  # fmt: skip
            wrong = client.get(path, headers={"authorization": "Bearer wrong-token"})
            assert wrong.status_code == 401 and wrong.json()["detail"].startswith("wrong token")
        assert answer(client, 1).status_code == 401
        assert client.get("/api/stats", cookies={"tfgym_token": "nope"}).status_code == 401
        auth = {"authorization": f"Bearer {TOKEN}"}
        lease = client.get("/api/next", params={"labeler": "dr-a"}, headers=auth)
        assert lease.status_code == 200
        assert client.get(rendering, headers=auth).status_code == 200
    with TestClient(app) as browser:  # the page opened as /?token=T sets the cookie
        assert browser.get("/?token=wrong").status_code == 401
        r = browser.get(f"/?token={TOKEN}&labeler=dr-a", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/?labeler=dr-a"
        cookie = r.headers["set-cookie"]
        assert f"tfgym_token={TOKEN}" in cookie and "HttpOnly" in cookie and "SameSite" in cookie
        page = browser.get(r.headers["location"])
        assert page.status_code == 200 and "Nothing to label" in page.text
        assert browser.get(rendering).status_code == 200
        r = browser.post("/api/answer", json={"pair_id": lease.json()["pair_id"], "labeler": "dr-a",
                                              "answer": "right"})  # fmt: skip
        assert r.status_code == 200
    with TestClient(app) as other:  # ?token= opens pages only, not the API
        assert other.get(f"/api/stats?token={TOKEN}").status_code == 401


def test_host_names_are_checked_without_a_token(queue):
    app = create_app(queue, allowed_hosts=("127.0.0.1", "localhost", "::1"))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        assert client.get("/api/counts").status_code == 200
        assert client.get("/api/counts", headers={"host": "localhost:8000"}).status_code == 200
        assert client.get("/api/counts", headers={"host": "[::1]:8000"}).status_code == 200
        rebinding = client.get("/api/counts", headers={"host": "attacker.example:8000"})
        assert rebinding.status_code == 400


def test_bind_and_names():
    assert is_loopback("127.0.0.1") and is_loopback("127.8.9.1") and is_loopback("localhost")
    assert is_loopback("::1") and is_loopback("[::1]")
    for host in ("0.0.0.0", "::", "192.168.1.5", "example.org", ""):
        assert not is_loopback(host)
        with pytest.raises(InsecureBindError, match="without a token"):
            check_bind(host, None)
        check_bind(host, TOKEN)
    assert check_labeler("dr.a@clinic:7_x-y") == "dr.a@clinic:7_x-y"
    for bad in ("", "a b", "x" * 65, "ü", "a/b"):
        with pytest.raises(ValueError, match="labeler must be"):
            check_labeler(bad)
    for bad in ("", "has space", "semi;colon", "x" * 257):
        with pytest.raises(ValueError, match="token must be"):
            check_token(bad)
    with pytest.raises(ValueError, match="token must be"):
        create_app(LabelQueue(":memory:"), token="bad token")
    assert server_url("127.0.0.1", 8000) == "http://127.0.0.1:8000/"
    assert server_url("::1", 8000, "T") == "http://[::1]:8000/?token=T"


def test_bound_sockets_say_tcp_so_responses_are_not_delayed():
    """asyncio sets TCP_NODELAY only on IPPROTO_TCP sockets; without it each response with a
    body waited ~40 ms for a delayed ACK (measured: /api/counts p50 46.8 ms -> 1.9 ms)."""
    with bind_socket("127.0.0.1", 0) as sock:
        assert sock.proto == socket.IPPROTO_TCP and sock.getsockname()[1] > 0
        with pytest.raises(OSError, match=r"cannot listen on 127\.0\.0\.1"):
            bind_socket("127.0.0.1", sock.getsockname()[1]).close()


def test_non_loopback_bind_without_token_is_refused_before_anything_opens(tmp_path):
    db = tmp_path / "labels.sqlite"
    with pytest.raises(InsecureBindError, match=r"0\.0\.0\.0 without a token"):
        serve(db, host="0.0.0.0", port=0)
    with pytest.raises(InsecureBindError):
        ServerConfig(host="10.1.2.3")
    with pytest.raises(ValueError, match="port"):
        ServerConfig(port=70000)
    assert not db.exists()


# -- tfgym label -----------------------------------------------------------------------------


def label_parser() -> argparse.ArgumentParser:
    from tfgym.cli import label

    parser = argparse.ArgumentParser(prog="tfgym")
    sub = parser.add_subparsers(dest="command", required=True)
    label.register(sub)
    return parser


def test_tfgym_label_refuses_an_open_bind_with_exit_2(tmp_path, monkeypatch, capsys):
    import tfgym.cli

    monkeypatch.delenv("TFGYM_LABEL_TOKEN", raising=False)
    monkeypatch.setattr(tfgym.cli, "build_parser", label_parser)
    db = tmp_path / "labels.sqlite"
    status = tfgym.cli.main(["label", "--db", str(db), "--host", "0.0.0.0", "--port", "0"])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("tfgym label: error: refusing to bind") and "--token" in err
    assert not db.exists()


def test_tfgym_label_passes_its_options_to_serve(tmp_path, monkeypatch):
    import tfgym.labeling.server

    calls = []
    monkeypatch.setattr(tfgym.labeling.server, "serve", lambda db, **kw: calls.append((db, kw)))
    parser = label_parser()
    args = parser.parse_args(
        ["label", "--db", "labels.sqlite", "--host", "0.0.0.0", "--port", "9000", "--token", TOKEN,
         "--lease-s", "30", "--overlap", "3"]
    )  # fmt: skip
    assert args.command_spec.run(args) == 0
    monkeypatch.setenv("TFGYM_LABEL_TOKEN", "from-the-environment")
    args = parser.parse_args(["label", "--db", "x.sqlite", "--host", "0.0.0.0"])
    assert args.command_spec.run(args) == 0
    (db, first), (_, second) = calls
    assert db == "labels.sqlite"
    assert first == {"host": "0.0.0.0", "port": 9000, "token": TOKEN, "lease_s": 30.0,
                     "overlap": 3, "poll_s": 3.0, "log_level": "info"}  # fmt: skip
    assert second["token"] == "from-the-environment" and second["port"] == 8000


# -- the real server ---------------------------------------------------------------------------

SERVE = (
    "import sys; from tfgym.labeling.server import serve; "
    "serve(sys.argv[1], host='127.0.0.1', port=0, token=sys.argv[2], lease_s=60, "
    "log_level='warning')"
)


def test_the_real_server_over_http(tmp_path):
    db = tmp_path / "labels.sqlite"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(db), TOKEN],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        lines = []
        deadline = time.monotonic() + 60
        while not any("open http" in line for line in lines):
            line = process.stdout.readline()
            assert line and time.monotonic() < deadline, "".join(lines)
            lines.append(line)
        url = re.search(r"open (http://\S+)", lines[-1]).group(1)
        assert url.startswith("http://127.0.0.1:") and url.endswith(f"/?token={TOKEN}")
        base = url.split("/?")[0]
        auth = {"authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=base, headers=auth, timeout=10) as http:
            assert http.get("/api/next", params={"labeler": "dr-a"}).status_code == 204
            assert http.get("/api/stats", headers={"authorization": "Bearer x"}).status_code == 401
            with LabelQueue(db) as queue:  # another process fills the same database
                queue.enqueue([pair_request(0)])
            lease = http.get("/api/next", params={"labeler": "dr-a"})
            assert lease.status_code == 200
            image = http.get(lease.json()["items"][0]["views"]["side"])
            assert image.status_code == 200 and Image.open(io.BytesIO(image.content)).size == (8, 8)
            r = http.post("/api/answer", json={"pair_id": lease.json()["pair_id"],
                                               "labeler": "dr-a", "answer": "skip"})  # fmt: skip
            assert r.status_code == 200 and r.json()["ok"] is True
            page = http.get("/")
            assert page.status_code == 200 and "tfgym" in page.text
        with LabelQueue(db) as queue:
            assert [a.answer for a in queue.answers()] == ["skip"]
        process.terminate()  # SIGTERM: a graceful stop that closes the queue
        assert process.wait(timeout=20) == 0
        assert "tfgym label: stopped" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=20)


def test_running_server_serves_real_display_renderings(tmp_path):
    from tfgym.display import render_display
    from tfgym.transfer_function import TransferFunction

    tfs = [
        TransferFunction(((0.2, -1.0), (1.0, -1.0), (1.0, 1.0), (0.2, 1.0))),
        TransferFunction(((0.5, -1.0), (1.0, -1.0), (1.0, 1.0), (0.5, 1.0))),
    ]
    images = render_display("headsq", tfs, working_size=32)  # (2, 2 views, 48, 48, 3)

    def encode(rgb: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="PNG")
        return buffer.getvalue()

    items = tuple(
        Item(action=tuple(float(a) for a in tf.action), views={"front": encode(images[i, 0]),
             "side": encode(images[i, 1])}, tf=tf.to_dict(), key=f"tf-{i}")
        for i, tf in enumerate(tfs)
    )  # fmt: skip
    with LabelQueue(tmp_path / "labels.sqlite") as queue:
        queue.enqueue([ComparisonRequest("headsq", items)])
        with running_server(queue) as base, httpx.Client(base_url=base, timeout=10) as http:
            page = http.get("/?labeler=dr-a")
            assert page.status_code == 200 and 'data-kind="pair"' in page.text
            lease = http.get("/api/next", params={"labeler": "dr-a"}).json()
            decoded = {}
            for item in lease["items"]:
                for view, url in item["views"].items():
                    image = np.asarray(Image.open(io.BytesIO(http.get(url).content)).convert("RGB"))
                    assert image.shape == (48, 48, 3) and image.max() > 0
                    decoded[(item["position"], view)] = image
            originals = {images[i, v].tobytes() for i in range(2) for v in range(2)}
            assert {im.tobytes() for im in decoded.values()} == originals
