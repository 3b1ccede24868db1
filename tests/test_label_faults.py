"""Fault tests: `kill -9` of the labeling server under concurrent simulated labelers.

The REAL server (:func:`tfgym.labeling.server.serve`, uvicorn) runs in a child process on a
free loopback port over a database of the ``db_url`` fixture (SQLite and PostgreSQL). Simulated
labelers (:func:`tfgym.labeling.client.simulate_labelers`, one thread and connection each,
no pause) answer through HTTP. Mid-run, "ghost" labelers claim a few leases they never answer;
then the server is killed with SIGKILL and restarted on the same port and database; the
clients retry. At the end:

* every acknowledged answer (an answer id the client got 200 for) is in the store, with its
  pair, labeler and answer; none is acknowledged twice;
* no comparison is answered twice (overlap 1), and each non-skip pair answer is one
  preference record;
* at most one answer per labeler is stored but unacknowledged (its response died with the
  server);
* the dead server's leases expired (2 s leases) and their pairs were served again and answered
  by the simulated labelers after the expiry;
* every comparison is answered: nothing is lost.

The issue's scale, 8 labelers x 250 answers, on SQLite and on PostgreSQL (about 30 s each on
the 2-core development CPU).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import pytest

from tfgym.labeling.client import OracleScores, SimReport, simulate_labelers
from tfgym.labeling.items import comparison_requests, render_items
from tfgym.preferences.queue import LabelQueue
from tfgym.scoring import ScoringSettings

ROOT = Path(__file__).resolve().parents[1]
SCENE = "headsq"
SETTINGS = ScoringSettings(working_size=32, image_size=32)
LEASE_S = 2.0
N_ACTIONS = 64  # 2016 distinct pairs
GHOSTS = 3
SERVER = (
    "import sys; from tfgym.labeling.server import serve; "
    "serve(sys.argv[1], host='127.0.0.1', port=int(sys.argv[2]), lease_s=float(sys.argv[3]), "
    "log_level='warning')"
)
CONNECTION_ERRORS = ("ConnectError", "RemoteProtocolError", "ReadError", "WriteError", "503")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """The labeling server in a child process; ``kill9`` and ``start`` on the same port."""

    def __init__(self, db_url: str, port: int) -> None:
        self.db_url, self.port = db_url, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, self.db_url, str(self.port), str(LEASE_S)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/api/counts", timeout=1).status_code == 200:
                    return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"server did not start: {err[-3000:]}")
            time.sleep(0.05)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        assert self.proc.returncode == -signal.SIGKILL

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def server_process(db_url: str) -> Iterator[ServerProcess]:
    server = ServerProcess(db_url, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def items():
    """64 actions rendered once (tiny display size: the images are not what is tested)."""
    rng = np.random.default_rng(7)
    base = np.array([0.2, -1, 1, -1, 1, 1, 0.2, 1], dtype=np.float32)
    acts = np.clip(base + rng.normal(0, 0.3, size=(N_ACTIONS, 8)), -1, 1).astype(np.float32)
    return render_items(SCENE, acts, working_size=8, keys=[str(i) for i in range(N_ACTIONS)])


@pytest.fixture(scope="module")
def scores(items) -> OracleScores:
    """Oracle scores shared by the labelers, computed before the run."""
    cached = OracleScores(SETTINGS)
    cached(SCENE, [item.action for item in items])
    return cached


def run_with_kill(
    db_url: str, items, scores: OracleScores, labelers: int, answers: int
) -> tuple[SimReport, dict, float]:
    """Queue labelers x answers pairs, label them over HTTP, kill -9 and restart mid-run.

    Returns:
        The client's report, the ghosts' leases (comparison id -> expiry) and the restart time.
    """
    total = labelers * answers
    pairs = [(i, j) for i in range(N_ACTIONS) for j in range(i + 1, N_ACTIONS)]
    rows = np.random.default_rng(0).permutation(len(pairs))[:total]
    with LabelQueue(db_url, seed=0) as queue:
        queue.enqueue(comparison_requests(SCENE, items, [pairs[r] for r in rows], source="fault"))
    result: list[SimReport | BaseException] = []
    with server_process(db_url) as server:

        def label() -> None:
            try:
                result.append(
                    simulate_labelers(
                        server.url,
                        labelers=labelers,
                        answers_per_labeler=answers,
                        scores=scores,
                        kinds=("pair",),
                        idle_s=3 * LEASE_S,
                        retry_s=60.0,
                        deadline_s=240.0,
                    )
                )
            except BaseException as e:
                result.append(e)

        thread = threading.Thread(target=label)
        thread.start()
        deadline = time.monotonic() + 120
        while True:  # wait until the run is well under way
            counts = httpx.get(f"{server.url}/api/counts", timeout=5).json()
            if counts["answered"] >= 0.4 * total:
                break
            assert time.monotonic() < deadline and thread.is_alive(), counts
            time.sleep(0.02)
        ghosts = {}
        for g in range(GHOSTS):  # leases the dead server hands out and nobody answers
            lease = httpx.get(f"{server.url}/api/next", params={"labeler": f"ghost-{g}"}).json()
            ghosts[lease["comparison_id"]] = datetime.fromisoformat(lease["expires"])
        server.kill9()
        time.sleep(0.3)  # the clients see a dead server and back off
        server.start()
        restarted = time.time()
        thread.join(300)
        assert not thread.is_alive()
    (report,) = result
    if isinstance(report, BaseException):
        raise report
    return report, ghosts, restarted


def check_after_kill(db_url: str, report: SimReport, ghosts: dict, labelers: int, answers: int):
    total = labelers * answers
    # the clients saw the dead server and retried
    errors = report.errors
    assert sum(errors.get(name, 0) for name in CONNECTION_ERRORS) >= 1, errors
    assert {r.stopped for r in report.labelers} <= {"answers", "empty"}, report.summary()
    with LabelQueue(db_url) as queue:
        stored = queue.answers()
        counts = queue.counts()
        n_records = len(queue.store)
    by_id = {a.answer_id: a for a in stored}
    acks = [(r.labeler, ack) for r in report.labelers for ack in r.acks]
    # every acknowledged answer is stored as acknowledged, none twice
    assert len({ack.answer_id for _, ack in acks}) == len(acks)
    for who, ack in acks:
        a = by_id[ack.answer_id]
        assert (a.labeler, a.pair_id, a.comparison_id, a.answer) == (
            who,
            ack.pair_id,
            ack.comparison_id,
            ack.answer,
        )
    assert all(len(r.acks) <= answers for r in report.labelers)
    # no comparison answered twice; one preference record per non-skip pair answer
    per_comparison = Counter(a.comparison_id for a in stored)
    assert max(per_comparison.values()) == 1
    assert n_records == sum(a.answer != "skip" for a in stored)
    # everything answered, by the simulated labelers; little stored without an ack
    assert len(stored) == total and counts == {"waiting": 0, "leased": 0, "answered": total}
    assert all(a.labeler.startswith("sim-") for a in stored)
    assert 0 <= len(stored) - len(acks) <= labelers
    unconfirmed = {p for r in report.labelers for p in r.unconfirmed}
    assert {a.pair_id for a in stored} - {ack.pair_id for _, ack in acks} <= unconfirmed
    # the ghosts' leases expired and their pairs were served again and answered
    answered = {a.comparison_id: a for a in stored}
    for comparison, expires in ghosts.items():
        assert answered[comparison].created >= expires


@pytest.mark.parametrize(("labelers", "answers"), [(8, 250)], ids=["8x250"])
def test_kill_9_mid_run_loses_nothing(db_url, items, scores, labelers, answers):
    report, ghosts, _ = run_with_kill(db_url, items, scores, labelers, answers)
    check_after_kill(db_url, report, ghosts, labelers, answers)
