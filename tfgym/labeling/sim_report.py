"""What simulated labelers did: their acknowledged answers, latencies and errors.

:func:`tfgym.labeling.client.simulate_labelers` returns a :class:`SimReport`: one
:class:`LabelerReport` per labeler (its :class:`Ack` of every answer the server acknowledged,
the latencies of ``/api/next`` and ``/api/answer``, its errors by HTTP status or exception
name, the answers whose acknowledgement was lost, and why it stopped), with the run's totals,
latency percentiles and a JSON-ready :meth:`SimReport.summary`. Plain values: no HTTP here.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Ack", "LabelerReport", "SimReport"]


@dataclass(frozen=True)
class Ack:
    """One answer the server acknowledged (200: durable).

    Attributes:
        pair_id: the task answered.
        answer_id: the stored answer's id.
        comparison_id: the comparison the task belongs to.
        answer: ``"left"``, ``"right"``, ``"equal"``, ``"skip"`` or ``"rank"``.
        order: for a ranking, the display positions best -> worst; else None.
    """

    pair_id: int
    answer_id: int
    comparison_id: int
    answer: str
    order: tuple[int, ...] | None = None


@dataclass(frozen=True)
class LabelerReport:
    """What one simulated labeler did.

    Attributes:
        labeler: its name, ``"<prefix>-<i>"``.
        acks: acknowledged answers, in order.
        next_s: latency of every ``GET /api/next`` that got a response (200 or 204), seconds.
        answer_s: latency of every ``POST /api/answer`` that got a response, seconds.
        errors: counts by HTTP status (``"409"``) or exception name (``"ConnectError"``).
        unconfirmed: pair ids whose answer was sent, the response lost, and the retry refused
            with 409: perhaps stored, never acknowledged.
        stopped: why it stopped: ``"answers"``, ``"empty"``, ``"deadline"``, ``"stopped"`` or
            ``"unreachable"``.
    """

    labeler: str
    acks: tuple[Ack, ...]
    next_s: tuple[float, ...]
    answer_s: tuple[float, ...]
    errors: Mapping[str, int]
    unconfirmed: tuple[int, ...]
    stopped: str


def _percentile_ms(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1e3, q)) if len(values) else math.nan


@dataclass(frozen=True)
class SimReport:
    """The report of :func:`tfgym.labeling.client.simulate_labelers`.

    Attributes:
        labelers: one report per labeler, in order.
        elapsed_s: wall time of the whole run.

    Example:
        >>> ack = Ack(pair_id=7, answer_id=1, comparison_id=3, answer="left")
        >>> one = LabelerReport(
        ...     labeler="sim-0", acks=(ack,), next_s=(0.002, 0.004), answer_s=(0.010,),
        ...     errors={"409": 1}, unconfirmed=(), stopped="empty",
        ... )
        >>> report = SimReport(labelers=(one,), elapsed_s=0.5)
        >>> report.answers, report.answers_per_s, report.latency_ms("next", 50), report.errors
        (1, 2.0, 3.0, {'409': 1})
    """

    labelers: tuple[LabelerReport, ...]
    elapsed_s: float

    @property
    def answers(self) -> int:
        """Acknowledged answers of all labelers."""
        return sum(len(r.acks) for r in self.labelers)

    @property
    def answers_per_s(self) -> float:
        """Acknowledged answers per second of wall time."""
        return self.answers / self.elapsed_s if self.elapsed_s > 0 else math.nan

    @property
    def errors(self) -> dict[str, int]:
        """Errors of all labelers, by status or exception name."""
        total: Counter[str] = Counter()
        for r in self.labelers:
            total.update(r.errors)
        return dict(total)

    def latency_ms(self, endpoint: str, q: float) -> float:
        """The ``q``-th percentile (0-100) of an endpoint's latency over all labelers, in ms.

        Args:
            endpoint: ``"next"`` or ``"answer"``.
            q: the percentile, e.g. 50 or 99.

        Raises:
            ValueError: an unknown endpoint.
        """
        if endpoint not in ("next", "answer"):
            raise ValueError(f"endpoint must be 'next' or 'answer', got {endpoint!r}")
        values = [
            v for r in self.labelers for v in (r.next_s if endpoint == "next" else r.answer_s)
        ]
        return _percentile_ms(values, q)

    def summary(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict (rates, p50/p99 latencies in ms, errors)."""
        return {
            "labelers": len(self.labelers),
            "answers": self.answers,
            "elapsed_s": self.elapsed_s,
            "answers_per_s": self.answers_per_s,
            "next_ms": {"p50": self.latency_ms("next", 50), "p99": self.latency_ms("next", 99)},
            "answer_ms": {
                "p50": self.latency_ms("answer", 50),
                "p99": self.latency_ms("answer", 99),
            },
            "errors": self.errors,
            "unconfirmed": sum(len(r.unconfirmed) for r in self.labelers),
            "per_labeler": {r.labeler: len(r.acks) for r in self.labelers},
            "stopped": {r.labeler: r.stopped for r in self.labelers},
        }
