"""Preference records, their SQL store (SQLite or PostgreSQL), and the label queue.

A :class:`Preference` is one answer to "which of these two renderings is better?": the scene,
the two actions (flat polygon vertices ``x1, y1, ...``) and optionally their transfer functions
and renderings, the answer ``mu`` (1 = a chosen, 0.5 = about equal, 0 = b chosen: the target
of the Bradley-Terry loss of Melenberg et al., eq. 2), who answered and when, and the exact
observation it was given on (:class:`tfgym.observation.ObservationSettings`: scene content
hash, working size, histogram bins and ranges, vertex count), so that a trainer rebuilds that
observation and not another one.

:class:`PreferenceStore` keeps records in an SQL database -- an SQLite file by default (or
``":memory:"``), PostgreSQL by URL (``postgresql://user@host/db``) when a team labels from
several machines -- through SQLAlchemy (:mod:`tfgym.preferences.db`). It is where the simulated
labeler (:mod:`tfgym.collect`) and the human label queue (:class:`LabelQueue`) write answers.

* **Schema.** One table ``preferences`` plus a ``meta`` table naming the format
  (:mod:`tfgym.preferences.schema`); the schema version (:data:`SCHEMA_VERSION`, now 2) is
  SQLite's ``PRAGMA user_version``, and on PostgreSQL the ``schema_version`` row of ``meta``.
  A database written by a newer tfgym, or an SQLite file or PostgreSQL database that is not a
  preference store, is refused with :class:`PreferenceStoreError`.
* **Upgrades.** Version 2 adds the column ``observation`` (JSON of
  :meth:`~tfgym.observation.ObservationSettings.to_dict`, or NULL). Opening a version-1 store
  upgrades it in place in one transaction (``ALTER TABLE``, then ``user_version = 2``), so a
  crash during the upgrade leaves a valid version-1 store; its records read back with
  ``observation=None``.
* **Durability.** SQLite: write-ahead logging (WAL) with ``synchronous=FULL``, and every
  write one ``BEGIN IMMEDIATE`` transaction; PostgreSQL: its default durable commits.
  ``add_many`` writes all its records or none, so a writer that is killed or loses power loses
  nothing it had committed and leaves no partial batch.
* **Exchange.** :meth:`PreferenceStore.export_jsonl` writes one JSON object per line (record
  version 2); :meth:`PreferenceStore.import_jsonl` validates every line before importing
  anything and also reads version-1 lines. Record ids belong to a store: imported records get
  new ids.
* **People.** :class:`LabelQueue` (:mod:`tfgym.preferences.queue`) keeps comparisons for
  people in the same database: leased, answered once, each answer written as preference
  records of the store.

Modules: :mod:`~tfgym.preferences.record` (the record and its JSON form),
:mod:`~tfgym.preferences.db` (URLs, engines, transactions), :mod:`~tfgym.preferences.schema`
(tables), :mod:`~tfgym.preferences.store` (the store), :mod:`~tfgym.preferences.queue` and
:mod:`~tfgym.preferences.queue_sql` (the label queue), :mod:`~tfgym.preferences.queue_types`
(its comparisons, leases and answers); everything public is re-exported here.
"""

from __future__ import annotations

from tfgym.preferences.queue import (
    PAIR_ANSWERS,
    Answer,
    ComparisonRequest,
    Item,
    LabelQueue,
    Lease,
    LeaseConflict,
    LeasedItem,
    QueueError,
    UnknownPair,
)
from tfgym.preferences.record import (
    MU_VALUES,
    RECORD_FORMAT,
    SCHEMA_VERSION,
    Preference,
    utc_now,
)
from tfgym.preferences.store import STORE_FORMAT, PreferenceStore, PreferenceStoreError

__all__ = [
    "MU_VALUES",
    "PAIR_ANSWERS",
    "RECORD_FORMAT",
    "SCHEMA_VERSION",
    "STORE_FORMAT",
    "Answer",
    "ComparisonRequest",
    "Item",
    "LabelQueue",
    "Lease",
    "LeaseConflict",
    "LeasedItem",
    "Preference",
    "PreferenceStore",
    "PreferenceStoreError",
    "QueueError",
    "UnknownPair",
    "utc_now",
]
