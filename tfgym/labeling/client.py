"""Simulated labelers that answer through the real HTTP API of the labeling server.

For tests, demos and benchmarks, :func:`simulate_labelers` stands in for a team of people at
the labeling page (``tfgym label-sim --url ... --labelers 8``). Each labeler ``sim-<i>`` is a
thread with its own ``httpx.Client`` (one keep-alive connection) that loops:

1. ``GET /api/next?labeler=sim-<i>&kind=...`` -- a leased pair (or 4-item ranking) with the
   items' actions in display order, or 204 when nothing is waiting;
2. scores the items' actions with the oracle of the lease's scene
   (:class:`~tfgym.labeling.sim_scores.OracleScores`: one :class:`tfgym.scoring.SceneScorer`
   per scene, scores cached per action, shared by the threads) and answers as the
   :class:`tfgym.oracle.SimulatedLabeler` preset would: a pair with
   ``compare(score_left, score_right)`` (left / right / equal, or skip), a ranking with
   :func:`~tfgym.labeling.sim_scores.rank_order` (the scores plus Gumbel noise of scale
   ``temperature``, so any two items are ordered with the preset's Bradley-Terry probability,
   and, with probability ``mistake_rate``, two neighbours swapped);
3. waits ``pace_s`` (the time a person looks), then ``POST /api/answer`` with the client's lead
   time.

A labeler stops after ``answers_per_labeler`` acknowledged answers, or when ``/api/next`` has
answered 204 for ``idle_s`` seconds (``stop_when_empty``), or at the deadline, or when the
server stays unreachable for ``retry_s`` seconds. A connection error or a 5xx (a server
restart) is retried with exponential backoff; an answer whose response was lost and whose
retry then got 409 may have been stored: it is reported as unconfirmed, never as acknowledged.

The :class:`~tfgym.labeling.sim_report.SimReport` holds, per labeler, every acknowledged
answer (pair id, answer id), the latencies of ``/api/next`` and ``/api/answer``, and the errors
by status or exception name. The report's classes and :class:`OracleScores` are re-exported
here.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from tfgym.labeling.sim_report import Ack, LabelerReport, SimReport
from tfgym.labeling.sim_scores import OracleScores, rank_order
from tfgym.oracle import SimulatedLabeler, make_labeler
from tfgym.scoring import ScoringSettings

__all__ = [
    "KINDS",
    "Ack",
    "LabelClientError",
    "LabelerReport",
    "OracleScores",
    "SimReport",
    "rank_order",
    "simulate_labelers",
]

KINDS = ("pair", "rank")
"""Kinds of task a labeler asks ``/api/next`` for."""
PAIR_WORDS = {1.0: "left", 0.0: "right", 0.5: "equal"}
MAX_BACKOFF_S = 1.0


class _Unreachable(Exception):
    """The server did not answer for ``retry_s`` seconds."""


class LabelClientError(RuntimeError):
    """The server refused the client itself (401 or 403: a missing or wrong token)."""


@dataclass
class _Run:
    """Settings shared by the labeler threads."""

    url: str
    headers: dict[str, str]
    target: int | None
    pace_s: float
    labeler: SimulatedLabeler
    scores: Callable[[str, Sequence[Sequence[float]]], np.ndarray]
    seed: int
    kinds: tuple[str, ...]
    stop_when_empty: bool
    idle_s: float
    poll_s: float
    retry_s: float
    timeout_s: float
    deadline: float
    stop: threading.Event
    name_prefix: str


@dataclass
class _Labeler:
    """One labeler thread's state."""

    run: _Run
    name: str
    rng: np.random.Generator
    client: httpx.Client
    acks: list[Ack] = field(default_factory=list)
    next_s: list[float] = field(default_factory=list)
    answer_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    unconfirmed: list[int] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)

    def request(self, method: str, path: str, timings: list[float], **kw: Any) -> tuple[Any, bool]:
        """Send with retries; returns ``(response, retried after a lost connection)``."""
        first_failure: float | None = None
        backoff = 0.02
        retried = False
        while True:
            start = time.perf_counter()
            try:
                response = self.client.request(method, path, **kw)
            except httpx.TransportError as e:
                self.errors[type(e).__name__] += 1
                retried = True
            else:
                if response.status_code in (401, 403):
                    raise LabelClientError(
                        f"{method} {path}: {response.status_code} {response.text[:200]} "
                        "(a missing or wrong --token?)"
                    )
                if response.status_code < 500:
                    timings.append(time.perf_counter() - start)
                    return response, retried
                self.errors[str(response.status_code)] += 1
                retried = True
            now = time.monotonic()
            first_failure = now if first_failure is None else first_failure
            if now - first_failure > self.run.retry_s or self.run.stop.is_set():
                raise _Unreachable(f"{self.run.url} did not answer for {self.run.retry_s} s")
            time.sleep(backoff)
            backoff = min(2 * backoff, MAX_BACKOFF_S)

    def claim(self) -> dict[str, Any] | None:
        """The next lease of any kind (the last kind that had work asked first), or None."""
        for kind in list(self.kinds):
            params = {"labeler": self.name, "kind": kind}
            response, _ = self.request("GET", "/api/next", self.next_s, params=params)
            if response.status_code == 200:
                self.kinds.remove(kind)
                self.kinds.insert(0, kind)
                return dict(response.json())
            if response.status_code != 204:
                self.errors[str(response.status_code)] += 1
        return None

    def decide(self, lease: Mapping[str, Any]) -> dict[str, Any]:
        """The answer body of a lease (display positions)."""
        items = sorted(lease["items"], key=lambda item: item["position"])
        scores = self.run.scores(str(lease["scene"]), [item["action"] for item in items])
        body: dict[str, Any] = {"pair_id": int(lease["pair_id"]), "labeler": self.name}
        if lease.get("kind", "pair") == "rank":
            order = rank_order(scores, self.run.labeler, self.rng)
            body["order"] = [int(items[i]["position"]) for i in order]
        else:
            mu = float(self.run.labeler.compare(scores[:1], scores[1:2], self.rng)[0])
            body["answer"] = "skip" if math.isnan(mu) else PAIR_WORDS[mu]
        return body

    def answer(self, lease: Mapping[str, Any], body: dict[str, Any]) -> None:
        """Post one answer; record the acknowledgement or the refusal."""
        response, retried = self.request("POST", "/api/answer", self.answer_s, json=body)
        if response.status_code == 200:
            data = response.json()
            order = body.get("order")
            self.acks.append(
                Ack(
                    pair_id=body["pair_id"],
                    answer_id=int(data["answer_id"]),
                    comparison_id=int(lease["comparison_id"]),
                    answer="rank" if order is not None else body["answer"],
                    order=None if order is None else tuple(order),
                )
            )
            return
        self.errors[str(response.status_code)] += 1
        if response.status_code == 409 and retried:
            self.unconfirmed.append(body["pair_id"])

    def loop(self) -> str:
        """Label until a stop condition; returns why it stopped."""
        run = self.run
        empty_since: float | None = None
        while run.target is None or len(self.acks) < run.target:
            if run.stop.is_set():
                return "stopped"
            if time.monotonic() > run.deadline:
                return "deadline"
            lease = self.claim()
            if lease is None:
                now = time.monotonic()
                empty_since = now if empty_since is None else empty_since
                if run.stop_when_empty and now - empty_since >= run.idle_s:
                    return "empty"
                run.stop.wait(run.poll_s)
                continue
            empty_since = None
            shown = time.monotonic()
            body = self.decide(lease)
            if run.pace_s > 0 and run.stop.wait(run.pace_s):
                return "stopped"
            body["lead_time_s"] = time.monotonic() - shown
            self.answer(lease, body)
        return "answers"


def _labeler_thread(run: _Run, index: int, out: list[LabelerReport | BaseException]) -> None:
    name = f"{run.name_prefix}-{index}"
    try:
        with httpx.Client(base_url=run.url, headers=run.headers, timeout=run.timeout_s) as client:
            state = _Labeler(
                run, name, np.random.default_rng([run.seed, index]), client, kinds=list(run.kinds)
            )
            try:
                stopped = state.loop()
            except _Unreachable:
                stopped = "unreachable"
        out[index] = LabelerReport(
            labeler=name,
            acks=tuple(state.acks),
            next_s=tuple(state.next_s),
            answer_s=tuple(state.answer_s),
            errors=dict(state.errors),
            unconfirmed=tuple(state.unconfirmed),
            stopped=stopped,
        )
    except BaseException as e:  # re-raised in the calling thread
        out[index] = e
        run.stop.set()


def simulate_labelers(
    url: str,
    *,
    labelers: int = 8,
    answers_per_labeler: int | None = None,
    pace_s: float = 0.0,
    preset: str | SimulatedLabeler = "noisy",
    token: str | None = None,
    seed: int = 0,
    stop_when_empty: bool = True,
    settings: ScoringSettings | None = None,
    scores: Callable[[str, Sequence[Sequence[float]]], np.ndarray] | None = None,
    kinds: Sequence[str] = KINDS,
    idle_s: float = 1.0,
    poll_s: float = 0.1,
    retry_s: float = 30.0,
    timeout_s: float = 10.0,
    deadline_s: float | None = None,
    stop: threading.Event | None = None,
    name_prefix: str = "sim",
) -> SimReport:
    """Run simulated labelers against a labeling server until they are done.

    Args:
        url: the server's base URL, e.g. ``"http://127.0.0.1:8000"``.
        labelers: concurrent labelers (threads), named ``"<name_prefix>-<i>"``.
        answers_per_labeler: each stops after this many acknowledged answers (None: no limit).
        pace_s: seconds each waits between receiving a task and answering it.
        preset: the simulated labeler (:data:`tfgym.oracle.LABELER_PRESETS` name or object).
        token: the server's access token, sent as ``Authorization: Bearer``.
        seed: answers are drawn from ``default_rng([seed, i])`` for labeler ``i``.
        stop_when_empty: stop a labeler once ``/api/next`` has had nothing for ``idle_s``
            (False: keep polling every ``poll_s`` until the answers, the deadline or ``stop``).
        settings: oracle settings of the default scorer (ignored when ``scores`` is given).
        scores: ``scores(scene, actions) -> float64 (n,)``; default a new :class:`OracleScores`.
        kinds: the kinds of task to ask for (``"pair"``, ``"rank"``).
        idle_s: see ``stop_when_empty`` (longer than a lease lets expired leases come back).
        poll_s: wait between polls of an empty queue.
        retry_s: give up after the server has failed this long in a row (connection errors,
            5xx), retrying with exponential backoff (20 ms doubling up to 1 s).
        timeout_s: timeout of each HTTP request.
        deadline_s: stop every labeler after this many seconds (None: no deadline).
        stop: an event that stops every labeler when set (e.g. from another thread).
        name_prefix: labeler names are ``"<name_prefix>-<i>"``.

    Returns:
        The :class:`SimReport`.

    Raises:
        ValueError: a bad count, pace, preset or kind.
        LabelClientError: the server refused the client (401/403: token missing or wrong).
        Exception: whatever a labeler thread raised unexpectedly (a malformed response).
    """
    if labelers < 1:
        raise ValueError(f"labelers must be at least 1, got {labelers}")
    if answers_per_labeler is not None and answers_per_labeler < 1:
        raise ValueError(f"answers_per_labeler must be at least 1, got {answers_per_labeler}")
    if not pace_s >= 0:
        raise ValueError(f"pace_s must be >= 0, got {pace_s}")
    kinds = tuple(kinds)
    if not kinds or any(k not in KINDS for k in kinds):
        raise ValueError(f"kinds must be a non-empty subset of {KINDS}, got {kinds}")
    run = _Run(
        url=url.rstrip("/"),
        headers={"Authorization": f"Bearer {token}"} if token else {},
        target=answers_per_labeler,
        pace_s=float(pace_s),
        labeler=make_labeler(preset),
        scores=scores if scores is not None else OracleScores(settings),
        seed=int(seed),
        kinds=kinds,
        stop_when_empty=stop_when_empty,
        idle_s=float(idle_s),
        poll_s=float(poll_s),
        retry_s=float(retry_s),
        timeout_s=float(timeout_s),
        deadline=time.monotonic() + (math.inf if deadline_s is None else float(deadline_s)),
        stop=stop if stop is not None else threading.Event(),
        name_prefix=name_prefix,
    )
    out: list[LabelerReport | BaseException] = [RuntimeError("not run")] * labelers
    threads = [
        threading.Thread(target=_labeler_thread, args=(run, i, out), daemon=True)
        for i in range(labelers)
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    except KeyboardInterrupt:
        run.stop.set()
        for t in threads:
            t.join()
        raise
    elapsed = time.perf_counter() - start
    for result in out:
        if isinstance(result, BaseException):
            raise result
    return SimReport(
        labelers=tuple(r for r in out if isinstance(r, LabelerReport)), elapsed_s=elapsed
    )
