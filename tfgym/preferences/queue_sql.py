"""The label queue's stored rows and what is computed from them (see :mod:`.queue`).

Functions over rows of the queue's tables (:mod:`tfgym.preferences.schema`): the stored form of
a comparison, the preference records an answer implies, the reason an answer is refused,
counts, per-labeler statistics, inter-labeler agreement and the export.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import combinations
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tfgym.observation import ObservationSettings
from tfgym.preferences.record import Preference
from tfgym.preferences.schema import COUNTS, QUEUE_SCHEMA_VERSION, answers, comparisons

__all__ = [
    "StoredComparison",
    "agreement",
    "answer_outcome",
    "comparison_rows",
    "export",
    "labeler_stats",
    "read_counts",
    "read_stats",
    "refusal",
]


@dataclass(frozen=True)
class StoredComparison:
    """A comparison as stored: what a lease, an answer and the export need of it."""

    id: int
    scene: str
    kind: str
    actions: tuple[tuple[float, ...], ...]
    views: tuple[dict[str, str], ...]  # per item: view name -> rendering sha
    tfs: tuple[dict[str, Any] | None, ...]
    keys: tuple[str | None, ...]
    observation: ObservationSettings | None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> StoredComparison:
        """From ``(id, scene, kind, items JSON, observation JSON or NULL)``."""
        cid, scene, kind, items_json, obs_json = row
        items = json.loads(items_json)
        obs = None if obs_json is None else ObservationSettings.from_dict(json.loads(obs_json))
        return cls(
            id=int(cid),
            scene=scene,
            kind=kind,
            actions=tuple(tuple(float(v) for v in it["action"]) for it in items),
            views=tuple(dict(it["views"]) for it in items),
            tfs=tuple(it["tf"] for it in items),
            keys=tuple(it["key"] for it in items),
            observation=obs,
        )

    def render_ref(self, index: int) -> str:
        """The content address of an item's first view, ``"sha256:<hex>"``."""
        return "sha256:" + next(iter(self.views[index].values()))


def comparison_rows(
    requests: Sequence[Any], overlap: int
) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """The ``comparisons`` rows of requests, and their PNGs by SHA-256.

    Args:
        requests: :class:`~tfgym.preferences.ComparisonRequest` objects.
        overlap: the overlap of requests that do not set one.

    Returns:
        ``(rows, pngs)``: one row per request (its ``items`` JSON holds, per item, the
        action, view name -> PNG sha, TF and key), and every PNG once, by sha.
    """
    created = datetime.now(timezone.utc).isoformat()
    rows: list[dict[str, Any]] = []
    pngs: dict[str, bytes] = {}
    for r in requests:
        items = []
        for it in r.items:
            shas = {name: hashlib.sha256(png).hexdigest() for name, png in it.views.items()}
            pngs.update(zip(shas.values(), it.views.values(), strict=True))
            tf = None if it.tf is None else dict(it.tf)
            items.append({"action": list(it.action), "views": shas, "tf": tf, "key": it.key})
        obs = r.observation
        rows.append(
            {
                "scene": r.scene,
                "kind": r.kind,
                "items": json.dumps(items, allow_nan=False),
                "observation": None if obs is None else json.dumps(obs.to_dict()),
                "priority": r.priority,
                "overlap": r.overlap or overlap,
                "source": r.source,
                "created": created,
            }
        )
    return rows, pngs


def answer_outcome(
    comp: StoredComparison,
    labeler: str,
    created: str,
    word: str,
    display: Sequence[int],
    positions: Sequence[int] | None,
) -> tuple[float | None, tuple[int, ...] | None, list[Preference]]:
    """What an answer in display terms means for the stored items.

    Args:
        comp: the comparison.
        labeler: who answered.
        created: when (ISO-8601, UTC).
        word: ``"left"``, ``"right"``, ``"equal"``, ``"skip"`` or ``"rank"``.
        display: the item index shown at each display position.
        positions: rankings: display positions best -> worst; None for pairs.

    Returns:
        ``(mu, item order, records)``: for pairs ``mu`` (1 = items[0] better, 0.5, 0; None
        for a skip) and one record (none for a skip); for rankings the item indices best ->
        worst and six records, one per item pair ``i < j`` (``mu`` 1 when ``i`` ranks higher).
    """
    if positions is None:
        better = {"left": display[0], "right": display[1]}.get(word)
        mu = 0.5 if word == "equal" else None if word == "skip" else float(better == 0)
        item_order = None
        pairs = [] if mu is None else [(0, 1, mu)]
    else:
        item_order = tuple(display[p] for p in positions)
        rank = {item: r for r, item in enumerate(item_order)}
        mu = None
        pairs = [(i, j, float(rank[i] < rank[j])) for i, j in combinations(range(len(rank)), 2)]
    prefs = [
        Preference(
            scene=comp.scene,
            action_a=comp.actions[i],
            action_b=comp.actions[j],
            mu=m,
            labeler=labeler,
            created=created,
            tf_a=comp.tfs[i],
            tf_b=comp.tfs[j],
            render_a=comp.render_ref(i),
            render_b=comp.render_ref(j),
            observation=comp.observation,
        )
        for i, j, m in pairs
    ]
    return mu, item_order, prefs


def refusal(
    row: Sequence[Any] | None, pair_id: int, labeler: str, kind: str, expired_at: str
) -> tuple[str, str]:
    """Why an answer's guard matched no task, from the task's ``(state, labeler, kind, expires)``.

    Returns:
        ``(reason, message)``; reason ``"unknown"`` (no such task), ``"kind"`` (a pair
        answer to a ranking or the reverse) or ``"conflict"`` (not this labeler's lease,
        expired, or already answered).
    """
    if row is None:
        return "unknown", f"no pair {pair_id}"
    state, holder, task_kind, _expires = row
    if kind != "*" and task_kind != kind:
        how = "an order (answer_rank)" if task_kind == "rank" else "a word (answer)"
        return "kind", f"pair {pair_id} is a {task_kind} task: answer it with {how}"
    if state == "answered":
        who = "you" if holder == labeler else "another labeler"
        return "conflict", f"pair {pair_id} was already answered by {who}"
    if holder != labeler:
        return "conflict", f"pair {pair_id} is not leased to {labeler!r}"
    return "conflict", f"the lease of pair {pair_id} to {labeler!r} expired at {expired_at}"


def labeler_stats(rows: Iterable[tuple[str, str, float | None]]) -> dict[str, dict[str, Any]]:
    """Per-labeler figures from ``(labeler, answer word, lead_time_s)`` rows.

    Returns:
        ``{name: {"answers", "skips", "median_s", "per_hour"}}``: answers given (skips
        included), skips, the median lead time in seconds, and answers per hour of labeling
        time (3600 x answers / total lead time); None where no lead time is known.

    Example:
        >>> labeler_stats([("a", "left", 2.0), ("a", "skip", 4.0), ("b", "equal", None)])["a"]
        {'answers': 2, 'skips': 1, 'median_s': 3.0, 'per_hour': 1200.0}
    """
    words: dict[str, list[str]] = defaultdict(list)
    leads: dict[str, list[float]] = defaultdict(list)
    for labeler, word, lead in rows:
        words[labeler].append(word)
        if lead is not None:
            leads[labeler].append(float(lead))
    out = {}
    for name in sorted(words):
        times = leads[name]
        total = sum(times)
        out[name] = {
            "answers": len(words[name]),
            "skips": words[name].count("skip"),
            "median_s": statistics.median(times) if times else None,
            "per_hour": 3600.0 * len(times) / total if total > 0 else None,
        }
    return out


def agreement(
    rows: Iterable[tuple[int, str, float | None, Sequence[int] | None]],
) -> dict[str, Any]:
    """Agreement between labelers from ``(comparison id, word, mu, item order)`` rows.

    Skips are left out. Pairs: two labelers agree when their ``mu`` is equal (ties included).
    Rankings: two labelers of a comparison are compared on each of its six item pairs.

    Returns:
        ``{"pairs": pair comparisons answered by >= 2 labelers, "rate": the fraction of
        labeler pairs on them that agree (None without any), "rankings": the same count for
        rankings, "rank_rate": the fraction of item pairs two labelers order alike}``.

    Example:
        >>> agreement([(1, "left", 1.0, None), (1, "right", 0.0, None), (1, "left", 1.0, None)])
        {'pairs': 1, 'rate': 0.3333333333333333, 'rankings': 0, 'rank_rate': None}
    """
    pairs: dict[int, list[float]] = defaultdict(list)
    ranks: dict[int, list[Sequence[int]]] = defaultdict(list)
    for cid, word, mu, order in rows:
        if word == "rank" and order is not None:
            ranks[cid].append(order)
        elif word != "skip" and mu is not None:
            pairs[cid].append(mu)
    agree = total = 0
    for mus in pairs.values():
        for mu_1, mu_2 in combinations(mus, 2):
            agree += mu_1 == mu_2
            total += 1
    rank_agree = rank_total = 0
    for orders in ranks.values():
        for order_1, order_2 in combinations(orders, 2):
            pos_a = {item: r for r, item in enumerate(order_1)}
            pos_b = {item: r for r, item in enumerate(order_2)}
            for i, j in combinations(sorted(pos_a), 2):
                rank_agree += (pos_a[i] < pos_a[j]) == (pos_b[i] < pos_b[j])
                rank_total += 1
    return {
        "pairs": sum(len(m) >= 2 for m in pairs.values()),
        "rate": agree / total if total else None,
        "rankings": sum(len(o) >= 2 for o in ranks.values()),
        "rank_rate": rank_agree / rank_total if rank_total else None,
    }


def read_counts(conn: Connection) -> dict[str, int]:
    """Tasks ``{"waiting", "leased", "answered"}`` now (an expired lease counts as waiting)."""
    waiting, leased, answered = conn.execute(COUNTS, {"now": time.time()}).one()
    return {"waiting": int(waiting), "leased": int(leased), "answered": int(answered)}


def read_stats(conn: Connection) -> dict[str, Any]:
    """Counts (:func:`read_counts`), ``"labelers"`` and ``"agreement"`` of every answer.

    See :func:`labeler_stats` and :func:`agreement`.
    """
    a = answers.c
    stmt = sa.select(a.comparison_id, a.labeler, a.answer, a.mu, a.item_order, a.lead_time_s)
    rows = conn.execute(stmt.order_by(a.id)).all()
    orders = [None if r[4] is None else json.loads(r[4]) for r in rows]
    return {
        **read_counts(conn),
        "labelers": labeler_stats((r[1], r[2], r[5]) for r in rows),
        "agreement": agreement((r[0], r[2], r[3], o) for r, o in zip(rows, orders, strict=True)),
    }


def _answer_entry(row: Mapping[Any, Any]) -> dict[str, Any]:
    order = row["item_order"]
    return {
        "answer_id": row["id"],
        "pair_id": row["task_id"],
        "labeler": row["labeler"],
        "answer": row["answer"],
        "order": None if order is None else json.loads(order),
        "mu": row["mu"],
        "display_order": json.loads(row["display_order"]),
        "created": row["created"],
        "lead_time_s": row["lead_time_s"],
    }


def export(conn: Connection, path: str | os.PathLike[str]) -> int:
    """Write the queue's JSON Lines export (see :meth:`LabelQueue.export_jsonl`).

    Args:
        conn: a connection (in a read transaction: one snapshot).
        path: the file; written next to it and renamed into place.

    Returns:
        The number of comparisons written.
    """
    by_comparison: dict[int, list[dict[str, Any]]] = {}
    for r in conn.execute(sa.select(answers).order_by(answers.c.id)).mappings():
        by_comparison.setdefault(r["comparison_id"], []).append(_answer_entry(r))
    stats = read_stats(conn)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    keys = ("id", "scene", "kind", "priority", "overlap", "source", "created")
    n = 0
    with tmp.open("w", encoding="utf-8") as f:
        for row in conn.execute(sa.select(comparisons).order_by(comparisons.c.id)).mappings():
            obs = row["observation"]
            line = {"format": "tfgym.Comparison", "version": QUEUE_SCHEMA_VERSION}
            line |= {k: row[k] for k in keys} | {"items": json.loads(row["items"])}
            line |= {"observation": None if obs is None else json.loads(obs)}
            line["answers"] = by_comparison.get(row["id"], [])
            f.write(json.dumps(line, allow_nan=False) + "\n")
            n += 1
        f.write(json.dumps({"format": "tfgym.LabelStats", **stats}, allow_nan=False) + "\n")
    os.replace(tmp, out)
    return n
