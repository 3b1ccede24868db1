r"""The leased label queue: comparisons for people, in the preference database.

A :class:`ComparisonRequest` (two renderings to compare, or four to rank) is enqueued with a
priority and an overlap ``k``: ``k`` distinct labelers answer it. Each of its ``k`` slots is a
*task* (the API's ``pair_id``) that one labeler at a time leases (:meth:`LabelQueue.claim`) and
answers once (:meth:`LabelQueue.answer`, :meth:`LabelQueue.answer_rank`):

* **Claim** is one atomic statement (SQLite: ``UPDATE ... RETURNING`` inside ``BEGIN
  IMMEDIATE``; PostgreSQL: ``FOR UPDATE SKIP LOCKED``): no two labelers ever hold the same
  task, a labeler never gets a comparison twice, the highest priority (then the oldest) comes
  first, and an expired lease is claimable again. A labeler who already holds an unexpired lease
  of that kind gets the same lease back. The display order (left/right, or the ranking's order)
  is drawn at random at claim and stored, so answers given in display terms map back.
* **Answer** is accepted only from the lease holder, before the lease expires, and only once
  (one guarded ``UPDATE``); it records the labeler, the time and the lead time, and a
  non-skip answer writes its :class:`~tfgym.preferences.Preference` records (one per pair, six
  per ranking) into the store's ``preferences`` table in the same transaction. It is committed
  (durable) when the call returns; on SQLite concurrent answers share one commit
  (:class:`~tfgym.preferences.db.GroupCommit`). Leases are committed without waiting for the
  disk: a lease lost to a power cut only means its pair is served again.
* **Renderings** are stored once, addressed by the SHA-256 of their PNG bytes.

Tables and statements: :mod:`tfgym.preferences.schema`, :mod:`tfgym.preferences.queue_sql`.

Example:
    >>> png = b"\x89PNG\r\n\x1a\n" + bytes(8)  # a stand-in for a real PNG
    >>> items = (Item((0.1, 0.2), {"front": png}, key="a"), Item((0.3, 0.4), {"front": png}))
    >>> with LabelQueue(":memory:", seed=0) as queue:
    ...     queue.enqueue([ComparisonRequest("headsq", items)])
    ...     lease = queue.claim("dr-a")
    ...     answer = queue.answer(lease.pair_id, "dr-a", "left", lead_time_s=2.5)
    ...     answer.mu == (1.0 if lease.items[0].index == 0 else 0.0), queue.counts()
    [1]
    (True, {'waiting': 0, 'leased': 0, 'answered': 1})
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tfgym.preferences import queue_sql as q
from tfgym.preferences import schema
from tfgym.preferences.db import GroupCommit, transaction
from tfgym.preferences.queue_types import Answer, ComparisonRequest, Item, Lease, LeasedItem
from tfgym.preferences.record import finite_number
from tfgym.preferences.schema import QUEUE_SCHEMA_VERSION, answers, comparisons, renderings, tasks
from tfgym.preferences.store import PreferenceStore, PreferenceStoreError, insert_preferences

__all__ = [
    "PAIR_ANSWERS",
    "Answer",
    "ComparisonRequest",
    "Item",
    "LabelQueue",
    "Lease",
    "LeaseConflict",
    "LeasedItem",
    "QueueError",
    "UnknownPair",
]

PAIR_ANSWERS = ("left", "right", "equal", "skip")
"""Answers to a pair, in display terms: left better, right better, about equal, can't tell."""
KINDS = {"pair": 2, "rank": 4}  # task kind -> number of items
_LABELER = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")
_CACHE = 4096  # comparisons kept in memory (they never change once stored); renderings: 1/16


class QueueError(Exception):
    """Base of the label queue's errors."""


class UnknownPair(QueueError):
    """No task has that ``pair_id`` (HTTP 404)."""


class LeaseConflict(QueueError):
    """The task is not leased to this labeler, its lease expired, or it was answered (409)."""


def check_labeler(labeler: Any) -> str:
    """A labeler name: 1-64 characters of ``A-Z a-z 0-9 _ . : @ -``; else ValueError."""
    if not isinstance(labeler, str) or not _LABELER.fullmatch(labeler):
        raise ValueError(
            f"a labeler name is 1-64 characters of A-Z a-z 0-9 _ . : @ -, got {labeler!r}"
        )
    return labeler


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


class LabelQueue:
    """The leased queue of comparisons for people (see the module docstring).

    Thread-safe: one queue serves every request of a web server.

    Args:
        db: the database: an SQLite path, ``":memory:"``, a PostgreSQL URL, an engine, or an
            open :class:`~tfgym.preferences.PreferenceStore` (then shared, not closed here).
        overlap: how many distinct labelers answer a comparison whose request does not say.
        lease_s: how long a lease lasts, in seconds, unless :meth:`claim` says otherwise.
        seed: seed of the display-order draws (None: unpredictable).

    Attributes:
        store: the preference store of the same database (the answers' records land there).

    Raises:
        ValueError: overlap < 1 or a lease that is not a positive number of seconds.
        PreferenceStoreError: the database cannot be used (see PreferenceStore), or its queue
            tables are of another version.
    """

    def __init__(
        self,
        db: str | os.PathLike[str] | Engine | PreferenceStore,
        *,
        overlap: int = 1,
        lease_s: float = 120.0,
        seed: int | None = None,
    ) -> None:
        """Open the queue, creating its tables on first use."""
        if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 1:
            raise ValueError(f"overlap must be an int >= 1, got {overlap!r}")
        self.lease_s = self._check_lease(lease_s)
        self.overlap = overlap
        self._owns_store = not isinstance(db, PreferenceStore)
        self.store = db if isinstance(db, PreferenceStore) else PreferenceStore(db)
        self.engine = self.store.engine
        try:
            with transaction(self.engine) as conn:
                other = schema.init_queue_schema(conn)
        except BaseException:
            self.close()
            raise
        if other is not None:
            self.close()
            raise PreferenceStoreError(
                f"{self.store!r} has label queue schema version {other}; this tfgym reads "
                f"{QUEUE_SCHEMA_VERSION}"
            )
        self._claim = schema.claim_statement(self.engine.dialect.name)
        self._pg = self.engine.dialect.name == "postgresql"
        self._writes = GroupCommit(self.engine)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()  # the rng and the caches
        self._comparisons: OrderedDict[int, q.StoredComparison] = OrderedDict()
        self._renderings: OrderedDict[str, bytes] = OrderedDict()

    @staticmethod
    def _check_lease(lease_s: Any) -> float:
        seconds = finite_number("lease_s", lease_s)
        if seconds <= 0:
            raise ValueError(f"lease_s must be a positive number of seconds, got {lease_s!r}")
        return seconds

    # -- enqueue -------------------------------------------------------------------------------
    def enqueue(self, requests: Sequence[ComparisonRequest]) -> list[int]:
        """Queue comparisons in one transaction; each rendering is stored once.

        Args:
            requests: the comparisons; each gets ``overlap`` tasks.

        Returns:
            The comparison ids, in order.

        Raises:
            TypeError: an item is not a :class:`ComparisonRequest`.
        """
        reqs = list(requests)
        for i, r in enumerate(reqs):
            if not isinstance(r, ComparisonRequest):
                raise TypeError(f"request {i} is a {type(r).__name__}, not a ComparisonRequest")
        if not reqs:
            return []
        rows, pngs = q.comparison_rows(reqs, self.overlap)
        with transaction(self.engine) as conn:
            schema.store_renderings(conn, pngs)
            stmt = sa.insert(comparisons).returning(comparisons.c.id, sort_by_parameter_order=True)
            ids = [int(i) for i in conn.execute(stmt, rows).scalars()]
            slots = [
                {"comparison_id": cid, "slot": slot, "kind": row["kind"]}
                | {"priority": row["priority"], "state": "open"}
                for cid, row in zip(ids, rows, strict=True)
                for slot in range(row["overlap"])
            ]
            conn.execute(sa.insert(tasks), slots)
        return ids

    # -- claim ---------------------------------------------------------------------------------
    def claim(
        self, labeler: str, *, kind: str = "pair", lease_s: float | None = None
    ) -> Lease | None:
        """Lease the next task to a labeler (see the module docstring).

        Args:
            labeler: 1-64 characters of ``A-Z a-z 0-9 _ . : @ -``.
            kind: ``"pair"`` or ``"rank"``.
            lease_s: this lease's length (default: the queue's).

        Returns:
            The lease (the labeler's unexpired lease of that kind if it holds one), or None
            when nothing of that kind is waiting for this labeler.

        Raises:
            ValueError: a malformed labeler name, kind or lease length.
        """
        check_labeler(labeler)
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
        length = self.lease_s if lease_s is None else self._check_lease(lease_s)
        with self._lock:
            display = json.dumps(self._rng.sample(range(KINDS[kind]), KINDS[kind]))
        found = self._lease_row(labeler, kind, display, length)
        if found is None:
            return None
        (task_id, _, display_json, expires), comp = found
        items = tuple(
            LeasedItem(position=p, index=i, views=dict(comp.views[i]), action=comp.actions[i])
            for p, i in enumerate(json.loads(display_json))
        )
        return Lease(int(task_id), comp.id, labeler, comp.scene, comp.kind, items, _utc(expires))

    def _lease_row(
        self, labeler: str, kind: str, display: str, length: float
    ) -> tuple[Sequence[Any], q.StoredComparison] | None:
        """The labeler's held lease of that kind, else a new one: ``(task row, comparison)``."""
        now = time.time()
        held = {"labeler": labeler, "kind": kind, "now": now}
        with transaction(self.engine, durable=False) as conn:
            if self._pg:  # one claim per labeler at a time (SQLite: BEGIN IMMEDIATE does it)
                conn.execute(schema.LABELER_LOCK, {"labeler": labeler})
            row = conn.execute(schema.HELD, held).first()
            if row is None:
                new = held | {"display": display, "expires": now + length}
                row = conn.execute(self._claim, new).first()
            return None if row is None else (row, self._comparison(conn, row[1]))

    def _comparison(self, conn: Connection, cid: int) -> q.StoredComparison:
        with self._lock:
            comp = self._comparisons.get(cid)
        if comp is None:
            c = comparisons.c
            stmt = sa.select(c.id, c.scene, c.kind, c["items"], c.observation).where(c.id == cid)
            comp = q.StoredComparison.from_row(conn.execute(stmt).one())
            with self._lock:
                self._comparisons[cid] = comp
                if len(self._comparisons) > _CACHE:
                    self._comparisons.popitem(last=False)
        return comp

    # -- answer --------------------------------------------------------------------------------
    def answer(
        self, pair_id: int, labeler: str, answer: str, *, lead_time_s: float | None = None
    ) -> Answer:
        """Answer a leased pair in display terms; durable (committed) when it returns.

        Args:
            pair_id: the lease's ``pair_id``.
            labeler: who answers (must hold the lease).
            answer: ``"left"`` or ``"right"`` (that side is better), ``"equal"``, or
                ``"skip"`` (can't tell: recorded, no preference record; a ranking can be
                skipped too).
            lead_time_s: how long the labeler took (default: lease start to now).

        Returns:
            The stored answer; its ``mu`` refers to the comparison's stored item order.

        Raises:
            UnknownPair: no such pair.
            LeaseConflict: the pair is not leased to this labeler, the lease expired, or it
                was already answered.
            ValueError: a malformed argument, or the pair is a ranking (except for a skip).
        """
        if answer not in PAIR_ANSWERS:
            raise ValueError(f"answer must be one of {PAIR_ANSWERS}, got {answer!r}")
        kind = "*" if answer == "skip" else "pair"
        return self._answer(pair_id, labeler, kind, answer, None, lead_time_s)

    def answer_rank(
        self,
        pair_id: int,
        labeler: str,
        order: Sequence[int],
        *,
        lead_time_s: float | None = None,
    ) -> Answer:
        """Answer a leased ranking: display positions best -> worst (a permutation of 0..3).

        Stored as the six pairwise preference records the order implies. Raises as
        :meth:`answer` (ValueError also for an order that is not a permutation of 0..3).
        """
        ok = isinstance(order, Sequence) and all(
            isinstance(p, int) and not isinstance(p, bool) for p in order
        )
        if not ok or sorted(order) != list(range(KINDS["rank"])):
            raise ValueError(f"order must be a permutation of 0..3 (best first), got {order!r}")
        return self._answer(pair_id, labeler, "rank", "rank", tuple(order), lead_time_s)

    def _answer(
        self,
        pair_id: Any,
        labeler: str,
        kind: str,
        word: str,
        positions: tuple[int, ...] | None,
        lead_time_s: float | None,
    ) -> Answer:
        check_labeler(labeler)
        if isinstance(pair_id, bool) or not isinstance(pair_id, int):
            raise ValueError(f"pair_id must be an int, got {pair_id!r}")
        lead = None if lead_time_s is None else finite_number("lead_time_s", lead_time_s)
        if lead is not None and lead < 0:
            raise ValueError(f"lead_time_s must be >= 0, got {lead_time_s!r}")
        if not 0 < pair_id < 2**62:
            raise UnknownPair(f"no pair {pair_id}")

        def write(conn: Connection) -> Answer:
            now = time.time()
            guard = {"id": pair_id, "labeler": labeler, "kind": kind, "now": now}
            row = conn.execute(schema.ANSWER, guard).first()
            if row is None:
                task = conn.execute(schema.TASK, {"id": pair_id}).first()
                at = "" if task is None or task[3] is None else _utc(task[3]).isoformat()
                reason, message = q.refusal(task, pair_id, labeler, kind, at)
                error = {"unknown": UnknownPair, "conflict": LeaseConflict}.get(reason, ValueError)
                raise error(message)
            cid, display_json, leased = row
            comp = self._comparison(conn, cid)
            created = _utc(now)
            took = lead if lead is not None else max(0.0, now - float(leased))
            display = json.loads(display_json)
            mu, order, prefs = q.answer_outcome(
                comp, labeler, created.isoformat(), word, display, positions
            )
            values = {"task_id": pair_id, "comparison_id": cid, "labeler": labeler, "mu": mu}
            values |= {"answer": word, "item_order": None if order is None else json.dumps(order)}
            values |= {"display_order": display_json, "created": created.isoformat()}
            stmt = sa.insert(answers).returning(answers.c.id)
            answer_id = int(conn.execute(stmt, values | {"lead_time_s": took}).scalar_one())
            insert_preferences(conn, prefs)
            return Answer(
                answer_id, pair_id, cid, labeler, word, order, mu, created, took, comp.scene,
                comp.keys,
            )  # fmt: skip

        return self._writes.run(write)

    # -- reading -------------------------------------------------------------------------------
    def rendering(self, sha: str) -> bytes | None:
        """The PNG bytes of a rendering by content address, or None if there is none.

        Raises:
            ValueError: ``sha`` is not 64 lowercase hex digits.
        """
        if not isinstance(sha, str) or len(sha) != 64 or sha.strip("0123456789abcdef"):
            raise ValueError(f"a rendering is named by 64 lowercase hex digits, got {sha!r}")
        with self._lock:
            png = self._renderings.get(sha)
        if png is None:
            stmt = sa.select(renderings.c.png).where(renderings.c.sha == sha)
            with transaction(self.engine, write=False) as conn:
                found = conn.execute(stmt).scalar()
            if found is None:
                return None
            png = bytes(found)
            with self._lock:
                self._renderings[sha] = png
                if len(self._renderings) > _CACHE // 16:
                    self._renderings.popitem(last=False)
        return png

    def counts(self) -> dict[str, int]:
        """Tasks ``{"waiting", "leased", "answered"}``; an expired lease counts as waiting."""
        with transaction(self.engine, write=False) as conn:
            return q.read_counts(conn)

    def stats(self) -> dict[str, Any]:
        """Counts, per-labeler figures and inter-labeler agreement.

        Returns:
            :meth:`counts` plus ``"labelers"`` (:func:`.queue_sql.labeler_stats`: per name
            ``answers``, ``skips``, ``median_s``, ``per_hour``) and ``"agreement"``
            (:func:`.queue_sql.agreement`: ``pairs``, ``rate``, ``rankings``, ``rank_rate``).
        """
        with transaction(self.engine, write=False) as conn:
            return q.read_stats(conn)

    def answers(
        self, comparison_ids: Sequence[int] | None = None, *, since_id: int = 0
    ) -> list[Answer]:
        """Stored answers in id order: of some comparisons only, and/or after ``since_id``."""
        a = answers.c
        stmt = sa.select(
            a.id, a.task_id, a.comparison_id, a.labeler, a.answer, a.item_order, a.mu,
            a.created, a.lead_time_s,
        ).where(a.id > since_id).order_by(a.id)  # fmt: skip
        if comparison_ids is not None:
            if not comparison_ids:
                return []
            stmt = stmt.where(a.comparison_id.in_([int(c) for c in comparison_ids]))
        with transaction(self.engine, write=False) as conn:
            rows = conn.execute(stmt).all()
            comps = {cid: self._comparison(conn, cid) for cid in {r[2] for r in rows}}
        return [
            Answer(
                *(int(r[0]), int(r[1]), int(r[2]), r[3], r[4]),
                None if r[5] is None else tuple(json.loads(r[5])),
                *(r[6], datetime.fromisoformat(r[7]), r[8], comps[r[2]].scene, comps[r[2]].keys),
            )
            for r in rows
        ]

    def export_jsonl(self, path: str | os.PathLike[str]) -> int:
        """Write every comparison with its answers, then the stats, as JSON Lines.

        A comparison line (``"format": "tfgym.Comparison"``) holds its id, scene, kind, items
        (action, view name -> rendering sha, TF, key), observation settings, priority,
        overlap, source, time, and its answers (answer and pair ids, labeler, answer, order,
        mu, display order, time, lead time). The last line (``"format":
        "tfgym.LabelStats"``) is :meth:`stats`. Written next to ``path`` and renamed into
        place, from one consistent snapshot of the database.

        Returns:
            The number of comparisons written.
        """
        with transaction(self.engine, write=False) as conn:  # one snapshot
            return q.export(conn, path)

    # -- lifetime ------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the queue (idempotent); a store it opened is closed too."""
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> LabelQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LabelQueue({self.store!r})"
