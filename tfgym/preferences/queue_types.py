r"""The label queue's values: comparisons to serve, leases of them, and stored answers.

The label queue (:class:`tfgym.preferences.queue.LabelQueue`) serves
:class:`ComparisonRequest` objects (two :class:`Item` renderings to compare, or four to rank),
hands a task of one to one labeler at a time as a :class:`Lease` (its items as
:class:`LeasedItem` objects, in display order) and stores :class:`Answer` objects, each of
which becomes :class:`~tfgym.preferences.record.Preference` records. All are frozen
dataclasses; a request and its items validate their fields when built.

Example:
    >>> png = b"\x89PNG\r\n\x1a\n" + bytes(8)  # a stand-in for a real PNG
    >>> items = (Item((0.1, 0.2), {"front": png}), Item([0.3, 0.4], {"front": png}))
    >>> request = ComparisonRequest("headsq", items, priority=1)
    >>> request.kind, request.items[1].action, request.priority
    ('pair', (0.3, 0.4), 1.0)
    >>> Item((0.1, 0.2), {"front": b"GIF89a"})
    Traceback (most recent call last):
    ...
    ValueError: view 'front' is not PNG bytes
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tfgym.observation import ObservationSettings
from tfgym.preferences.record import finite_floats, finite_number

__all__ = ["Answer", "ComparisonRequest", "Item", "Lease", "LeasedItem"]

_VIEW = re.compile(r"[A-Za-z0-9_-]{1,32}")
_PNG = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Item:
    """One rendering of one transfer function, to compare.

    Attributes:
        action: the flat polygon vertices ``x1, y1, ...`` in [-1, 1].
        views: view name (``"front"``, ``"side"``, ...; letters, digits, ``_``, ``-``) ->
            PNG bytes at display quality.
        tf: the TF as :meth:`~tfgym.transfer_function.TransferFunction.to_dict`, or None.
        key: the caller's id of this item (e.g. for Bradley-Terry fits), or None.

    Raises:
        ValueError: an empty or non-finite action, no views, a bad view name, bytes that are
            not a PNG, a TF that is not a JSON object, or a key that is not a string.
    """

    action: tuple[float, ...]
    views: Mapping[str, bytes] = field(hash=False)
    tf: Mapping[str, Any] | None = field(default=None, hash=False)
    key: str | None = None

    def __post_init__(self) -> None:
        """Validate and normalise."""
        action = finite_floats("action", self.action)
        if not isinstance(self.views, Mapping) or not self.views:
            raise ValueError("views must be a non-empty mapping of view name -> PNG bytes")
        for name, png in self.views.items():
            if not isinstance(name, str) or not _VIEW.fullmatch(name):
                raise ValueError(f"a view name is 1-32 of A-Z a-z 0-9 _ -, got {name!r}")
            if not isinstance(png, bytes) or not png.startswith(_PNG):
                raise ValueError(f"view {name!r} is not PNG bytes")
        if self.tf is not None:
            if not isinstance(self.tf, Mapping):
                raise ValueError("tf must be a mapping (TransferFunction.to_dict()) or None")
            try:
                json.dumps(dict(self.tf), allow_nan=False)
            except (TypeError, ValueError) as e:
                raise ValueError(f"tf must be JSON-ready (TransferFunction.to_dict()): {e}") from e
        if self.key is not None and not isinstance(self.key, str):
            raise ValueError(f"key must be a string or None, got {self.key!r}")
        object.__setattr__(self, "action", action)
        object.__setattr__(self, "views", dict(self.views))


@dataclass(frozen=True)
class ComparisonRequest:
    """A comparison for people: two items (a pair) or four (a ranking).

    Attributes:
        scene: the scene's name or path.
        items: 2 items (a pair) or 4 (a ranking), actions of one length.
        observation: the observation settings the actions were made for, or None.
        priority: higher is served first; ties are served oldest first.
        overlap: how many distinct labelers answer it (None: the queue's default).
        source: who queued it, e.g. ``"collect"``, ``"human:blocking"``, ``"human:async"``.

    Raises:
        ValueError: an empty scene, not 2 or 4 items, actions of different lengths,
            observation settings for another action length, a non-finite priority, or an
            overlap < 1.
    """

    scene: str
    items: tuple[Item, ...]
    observation: ObservationSettings | None = None
    priority: float = 0.0
    overlap: int | None = None
    source: str = ""

    def __post_init__(self) -> None:
        """Validate and normalise."""
        if not isinstance(self.scene, str) or not self.scene:
            raise ValueError(f"scene must be a non-empty string, got {self.scene!r}")
        items = tuple(self.items)
        if len(items) not in (2, 4) or not all(isinstance(it, Item) for it in items):
            raise ValueError(f"items must be 2 Items (a pair) or 4 (a ranking), got {len(items)}")
        sizes = {len(it.action) for it in items}
        if len(sizes) != 1:
            raise ValueError(f"the items' actions must have one length, got {sorted(sizes)}")
        obs = self.observation
        if obs is not None and (
            not isinstance(obs, ObservationSettings) or obs.action_size != sizes.pop()
        ):
            raise ValueError("observation must be ObservationSettings for these actions or None")
        overlap = self.overlap
        if overlap is not None and (
            isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 1
        ):
            raise ValueError(f"overlap must be an int >= 1 or None, got {overlap!r}")
        if not isinstance(self.source, str):
            raise ValueError(f"source must be a string, got {self.source!r}")
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "priority", finite_number("priority", self.priority))

    @property
    def kind(self) -> str:
        """``"pair"`` or ``"rank"``."""
        return "pair" if len(self.items) == 2 else "rank"


@dataclass(frozen=True)
class LeasedItem:
    """One item of a lease, at its display position.

    Attributes:
        position: display position (0 = left / first).
        index: the item's index in the request's ``items``.
        views: view name -> SHA-256 hex of the PNG (its content address).
        action: the item's action.
    """

    position: int
    index: int
    views: Mapping[str, str] = field(hash=False)
    action: tuple[float, ...]


@dataclass(frozen=True)
class Lease:
    """A task leased to a labeler.

    Attributes:
        pair_id: the task's id, which the answer names.
        comparison_id: the comparison's id.
        labeler: who holds the lease.
        scene: the comparison's scene.
        kind: ``"pair"`` or ``"rank"``.
        items: the items in display order (drawn at random at claim, stored).
        expires: when the lease ends (UTC, timezone-aware).
    """

    pair_id: int
    comparison_id: int
    labeler: str
    scene: str
    kind: str
    items: tuple[LeasedItem, ...]
    expires: datetime


@dataclass(frozen=True)
class Answer:
    """One stored answer.

    Attributes:
        answer_id: its id (answers are numbered in the order they were stored).
        pair_id: the task answered.
        comparison_id: its comparison.
        labeler: who answered.
        answer: ``"left"``, ``"right"``, ``"equal"``, ``"skip"`` (display sides) or ``"rank"``.
        order: rankings: item indices best -> worst; else None.
        mu: pairs: 1 = items[0] better, 0.5 = about equal, 0 = items[1]; None for a skip and
            a ranking.
        created: when (UTC).
        lead_time_s: how long the labeler took (lease start -> answer, or the client's).
        scene: the comparison's scene.
        keys: the items' keys, in stored order.
    """

    answer_id: int
    pair_id: int
    comparison_id: int
    labeler: str
    answer: str
    order: tuple[int, ...] | None
    mu: float | None
    created: datetime
    lead_time_s: float | None
    scene: str
    keys: tuple[str | None, ...]
