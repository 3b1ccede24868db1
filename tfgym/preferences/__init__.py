"""Preference records and their persistent store (SQLite), with JSON Lines import/export.

A :class:`Preference` is one answer to "which of these two renderings is better?": the scene,
the two actions (flat polygon vertices ``x1, y1, ...``) and optionally their transfer functions
and renderings, the answer ``mu`` (1 = a chosen, 0.5 = about equal, 0 = b chosen: the target
of the Bradley-Terry loss of Melenberg et al., eq. 2), who answered and when, and the exact
observation it was given on (:class:`tfgym.observation.ObservationSettings`: scene content
hash, working size, histogram bins and ranges, vertex count), so that a trainer rebuilds that
observation and not another one.

:class:`PreferenceStore` keeps records in an SQLite file (or ``":memory:"``), the place where
the simulated labeler (:mod:`tfgym.collect`) and the human labeling queue write answers.

* **Schema.** One table ``preferences`` plus a ``meta`` table naming the format; the schema
  version is SQLite's ``PRAGMA user_version`` (:data:`SCHEMA_VERSION`, now 2). A file
  written by a newer tfgym, or an SQLite file that is not a preference store, is refused with
  :class:`PreferenceStoreError`.
* **Upgrades.** Version 2 adds the column ``observation`` (JSON of
  :meth:`~tfgym.observation.ObservationSettings.to_dict`, or NULL). Opening a version-1 store
  upgrades it in place in one transaction (``ALTER TABLE``, then ``user_version = 2``), so a
  crash during the upgrade leaves a valid version-1 store; its records read back with
  ``observation=None``.
* **Durability.** Write-ahead logging (WAL) with ``synchronous=FULL``; every write is one
  transaction (``add_many`` writes all its records or none), so a writer that is killed or
  loses power loses nothing it had committed and leaves no partial batch.
* **Exchange.** :meth:`PreferenceStore.export_jsonl` writes one JSON object per line (record
  version 2); :meth:`PreferenceStore.import_jsonl` validates every line before importing
  anything and also reads version-1 lines. Record ids belong to a store: imported records get
  new ids.

Modules: :mod:`tfgym.preferences.record` (the record and its JSON form) and
:mod:`tfgym.preferences.store` (the SQLite store); everything public is re-exported here.

Example:
    >>> with PreferenceStore(":memory:") as store:
    ...     ids = store.add_many([
    ...         Preference("headsq", (0.1, -1.0, 0.5, 1.0), (0.2, 0.3, 0.4, 0.5), mu=1.0,
    ...                    labeler="sim:noisy"),
    ...         Preference("phantom-00", (0.0, 0.0, 1.0, 1.0), (0.5, 0.5, 0.5, 0.9), mu=0.5,
    ...                    labeler="alice"),
    ...     ])
    ...     ids, len(store), store.scenes(), store.records(labeler="alice")[0].mu
    ([1, 2], 2, ['headsq', 'phantom-00'], 0.5)
"""

from __future__ import annotations

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
    "RECORD_FORMAT",
    "SCHEMA_VERSION",
    "STORE_FORMAT",
    "Preference",
    "PreferenceStore",
    "PreferenceStoreError",
    "utc_now",
]
