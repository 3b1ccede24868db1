"""The blocking human reward backend: each step waits for people's answers.

For small human-in-the-loop sessions, e.g. a search agent (:mod:`tfgym.search`) with a
clinician at the labeling page (``tfgym label``). A call of :meth:`BlockingHumanBackend.reward`
(the env's ``step``, or one population of a search):

1. renders each new action of the batch at display quality (:func:`tfgym.labeling.items.
   render_items`, front and side views by default) -- each distinct TF of a scene once;
2. queues a comparison of each new action against each of the scene's *references*
   (pairs asked before, in either order, are not asked again) with
   ``source="human:blocking"`` and a priority above collection's, so people see them first;
3. polls the queue's answers (every ``poll_s``) until each comparison of the call has
   ``overlap`` answers (a skip is an answer) or ``timeout_s`` has passed;
4. fits Bradley-Terry utilities (:func:`tfgym.labeling.bradley_terry.fit_bradley_terry`)
   over every answer to this backend's comparisons of the scene so far -- late answers to
   earlier comparisons count too -- and returns each action's utility as its reward.

Reference actions
-----------------
A scene's references are at most ``n_references`` actions: first the ``references`` given
(the same actions for every scene, or a mapping from scene name to actions; at the scene's
first step they are compared with each other), then the first distinct actions stepped on
the scene, in order, until the set is full. They stay fixed for the session, so every later
action is compared with the same anchors and the utilities of a scene live on one connected
comparison graph. An action of the batch that
fills a free reference place is compared with the references before it. The very first
action on a scene without given references has nothing to be compared with: it becomes
the first reference, nothing is queued, and its reward is the prior's mean, 0
(``stats()["unanchored"]`` counts these).

Rewards
-------
Utilities of a scene are MAP estimates under a weak Gaussian prior (precision ``prior``), so
they are defined with few answers, sum to 0 over the scene's items (0 = an average TF of the
session), and a difference of 1 means "preferred with probability 0.73". Ties count half a
win for each side; skips are ignored. Rewards of one scene can shift as answers arrive: the
fit is redone at every call.

Timeout
-------
When ``timeout_s`` passes before every answer is in, the reward is the fit from the answers
that did arrive; an action without any (non-skip) answer gets the prior's mean, 0. The
unanswered comparisons stay queued (their answers count in later fits); ``stats()`` counts
``timeouts`` and ``unanswered`` comparisons, and a :class:`LabelTimeoutWarning` is issued.
``on_timeout="raise"`` raises :class:`LabelTimeout` instead.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfgym.backends import RewardBackend
from tfgym.labeling.bradley_terry import DEFAULT_PRIOR, BradleyTerryFit, fit_bradley_terry
from tfgym.labeling.items import comparison_requests, render_items
from tfgym.observation import ObservationSettings
from tfgym.preferences.queue import Answer, Item, LabelQueue
from tfgym.renderer import RenderBatch
from tfgym.scene import Scene
from tfgym.scoring import ScoringSettings

__all__ = [
    "BLOCKING_PRIORITY",
    "BlockingHumanBackend",
    "LabelTimeout",
    "LabelTimeoutWarning",
    "action_key",
    "answer_comparisons",
    "open_queue",
    "scene_settings",
]

BLOCKING_PRIORITY = 10.0
"""Queue priority of blocking comparisons: someone's step waits for them (collection: 0)."""
ON_TIMEOUT = ("fit", "raise")


class LabelTimeout(TimeoutError):
    """The answers to a blocking step did not arrive in time (``on_timeout="raise"``)."""


class LabelTimeoutWarning(UserWarning):
    """A blocking step's reward was fitted without all of its answers."""


def action_key(action: np.ndarray | Sequence[float]) -> str:
    """The item key of an action: its numbers to 4 decimals (equal keys: the same TF).

    Example:
        >>> action_key([0.2, -1, 1, -1.0, 1, 1, 0.2, 1])
        '+0.2000,-1.0000,+1.0000,-1.0000,+1.0000,+1.0000,+0.2000,+1.0000'
    """
    return ",".join(f"{float(v):+.4f}" for v in np.asarray(action, dtype=np.float64).ravel())


def answer_comparisons(answer: Answer) -> list[tuple[str | None, str | None, float | None]]:
    """The pairwise comparisons ``(key_a, key_b, mu)`` one queue answer holds.

    A pair answer is one comparison of its items in stored order (``mu`` None for a skip); a
    ranking (``answer.order``: item indices best to worst) is the pairs it implies.
    """
    if answer.order is not None:
        order = list(answer.order)
        return [
            (answer.keys[order[i]], answer.keys[order[j]], 1.0)
            for i in range(len(order))
            for j in range(i + 1, len(order))
        ]
    return [(answer.keys[0], answer.keys[1], answer.mu)]


def open_queue(db: Any, *, lease_s: float = 120.0) -> tuple[LabelQueue, bool]:
    """A label queue and whether the caller owns it (and closes it).

    Args:
        db: a :class:`~tfgym.preferences.queue.LabelQueue` (shared, not closed by the
            caller), or a database (path, URL, engine or preference store) to open one on.
        lease_s: the lease of a queue opened here.
    """
    if isinstance(db, LabelQueue):
        return db, False
    if db is None:
        raise ValueError("the human reward backend needs db= (a database path or URL)")
    return LabelQueue(str(db) if isinstance(db, Path) else db, lease_s=lease_s), True


def scene_settings(
    scene: Scene, n_vertices: int, settings: ScoringSettings | None
) -> ScoringSettings:
    """The scoring settings to render a scene's actions with (given ones, else the scene's).

    Without ``settings`` the histogram bins, working size and vertex count are the scene's
    and the actions', the TF look the env's defaults (opacity 0.8, colour scheme "bone").
    """
    if settings is not None:
        return settings
    return ScoringSettings(
        n_vertices=n_vertices,
        histogram_bins=int(scene.ranges.n_intensity_bins),
        working_size=int(max(scene.volume.data.shape)),
    )


@dataclass
class _SceneState:
    """What the backend knows of one scene: items, references, comparisons."""

    references: list[str] = field(default_factory=list)
    items: dict[str, Item] = field(default_factory=dict)
    asked: set[frozenset[str]] = field(default_factory=set)
    comparisons: list[int] = field(default_factory=list)
    unasked: list[tuple[str, str]] = field(default_factory=list)
    n_answers: int = 0


class BlockingHumanBackend(RewardBackend):
    """Rewards from people's answers, waited for at each step (see the module docstring).

    Args:
        db: the label queue's database (path, URL, engine or preference store), or a
            :class:`~tfgym.preferences.queue.LabelQueue` to share (e.g. the one a labeling
            server in this process serves).
        references: reference actions ``(k, 2 * n_vertices)`` for every scene, or a mapping
            from scene name to such actions; None: the first actions stepped.
        n_references: the most references per scene (given ones included).
        timeout_s: the longest wait for a step's answers.
        poll_s: seconds between polls of the queue.
        overlap: distinct labelers who answer each comparison.
        priority: queue priority of the comparisons.
        prior: precision of the Bradley-Terry fit's prior.
        on_timeout: ``"fit"`` (the fit from the answers in, with a warning) or ``"raise"``.
        settings: how actions are drawn (vertices, bins, opacity, colours); None: from the
            scene and the actions (see :func:`scene_settings`).
        views: camera presets shown to labelers.
        display_size: voxels along the display volume's longest side (None: display
            quality, :data:`tfgym.display.DISPLAY_WORKING_SIZE`).
        lease_s: the lease of a queue this backend opens.

    Raises:
        ValueError: a missing ``db``, ``n_references`` below 1, a timeout, poll or prior not
            positive, an unknown ``on_timeout``.

    Example:
        Two TFs, nobody at the labeling page: the second is compared with the first (the
        first reference), the wait times out, both get the prior's mean.

        >>> from tfgym.scoring import SceneScorer
        >>> queue = LabelQueue(":memory:")
        >>> backend = BlockingHumanBackend(queue, timeout_s=0.05, display_size=16)
        >>> scorer = SceneScorer("headsq", ScoringSettings(image_size=16), backend=backend)
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     rewards = scorer.score(np.array([[0.2, -1, 1, -1, 1, 1, 0.2, 1], [0] * 8])).rewards
        >>> rewards.tolist(), caught[0].category.__name__, queue.counts()["waiting"]
        ([0.0, 0.0], 'LabelTimeoutWarning', 1)
        >>> {k: backend.stats()[k] for k in ("queued", "timeouts", "unanchored")}
        {'queued': 1, 'timeouts': 1, 'unanchored': 1}
    """

    name = "human:blocking"

    def __init__(
        self,
        db: Any,
        *,
        references: np.ndarray | Mapping[str, np.ndarray] | None = None,
        n_references: int = 3,
        timeout_s: float = 600.0,
        poll_s: float = 0.5,
        overlap: int = 1,
        priority: float = BLOCKING_PRIORITY,
        prior: float = DEFAULT_PRIOR,
        on_timeout: str = "fit",
        settings: ScoringSettings | None = None,
        views: Sequence[str] = ("front", "side"),
        display_size: int | None = None,
        lease_s: float = 120.0,
    ) -> None:
        """Open the queue; nothing is rendered before the first step."""
        if int(n_references) < 1 or int(overlap) < 1:
            raise ValueError(
                f"n_references and overlap must be at least 1, got {n_references}, {overlap}"
            )
        if not (timeout_s > 0 and poll_s > 0 and prior > 0):
            raise ValueError(
                f"timeout_s, poll_s and prior must be positive, got {timeout_s}, {poll_s}, {prior}"
            )
        if on_timeout not in ON_TIMEOUT:
            raise ValueError(f"unknown on_timeout {on_timeout!r}; valid: {ON_TIMEOUT}")
        self.references = references
        self.n_references = int(n_references)
        self.timeout_s, self.poll_s = float(timeout_s), float(poll_s)
        self.overlap, self.priority, self.prior = int(overlap), float(priority), float(prior)
        self.on_timeout = on_timeout
        self.settings, self.views, self.display_size = settings, tuple(views), display_size
        self.queue, self._owns_queue = open_queue(db, lease_s=lease_s)
        self._scenes: dict[str, _SceneState] = {}
        self.last_fit: BradleyTerryFit | None = None
        self.counters = dict.fromkeys(
            ("steps", "actions", "queued", "timeouts", "unanswered", "unanchored"), 0
        )
        self.last_wait_s = 0.0

    # -- the step ---------------------------------------------------------------------------------
    def reward(self, scene: Scene, actions: np.ndarray, renderings: RenderBatch) -> np.ndarray:
        """Queue comparisons of the new actions, wait for the answers and fit."""
        del renderings  # people look at display renderings, not the training ones
        acts = np.asarray(actions, dtype=np.float32).reshape(len(actions), -1)
        settings = scene_settings(scene, acts.shape[1] // 2, self.settings)
        state = self._state(scene, settings)
        keys = [action_key(a) for a in acts]
        self._add_items(scene, state, settings, acts, keys)
        pairs, state.unasked = state.unasked, []  # given references among themselves
        for key in dict.fromkeys(keys):
            if not state.references:
                self.counters["unanchored"] += 1  # nothing to compare the first action with
            for ref in state.references:
                if ref != key and frozenset((key, ref)) not in state.asked:
                    pairs.append((key, ref))
                    state.asked.add(frozenset((key, ref)))
            if len(state.references) < self.n_references and key not in state.references:
                state.references.append(key)
        ids = self._enqueue(scene, state, settings, pairs)
        self._wait(ids)
        answers = self.queue.answers(state.comparisons) if state.comparisons else []
        state.n_answers = len(answers)
        fit = fit_bradley_terry(
            (c for a in answers for c in answer_comparisons(a)),
            items=list(state.items),
            prior=self.prior,
        )
        self.last_fit = fit
        self.counters["steps"] += 1
        self.counters["actions"] += len(acts)
        return np.array([fit.utility(k) for k in keys], dtype=np.float64)

    def _state(self, scene: Scene, settings: ScoringSettings) -> _SceneState:
        """The scene's state; on first sight its given references are rendered."""
        state = self._scenes.get(scene.name)
        if state is not None:
            return state
        state = self._scenes[scene.name] = _SceneState()
        given = self.references
        if isinstance(given, Mapping):
            given = given.get(scene.name)
        if given is not None:
            refs = np.asarray(given, dtype=np.float32).reshape(-1, settings.action_dim)
            refs = np.clip(refs, -1.0, 1.0)  # as the scorer clips actions
            all_keys = [action_key(a) for a in refs]
            keys = list(dict.fromkeys(all_keys))[: self.n_references]  # distinct, in order
            rows = [all_keys.index(k) for k in keys]
            self._add_items(scene, state, settings, refs[rows], keys)
            state.references = keys
            state.unasked = [(a, b) for i, a in enumerate(keys) for b in keys[:i]]
            state.asked.update(frozenset(p) for p in state.unasked)
        return state

    def _add_items(
        self,
        scene: Scene,
        state: _SceneState,
        settings: ScoringSettings,
        acts: np.ndarray,
        keys: list[str],
    ) -> None:
        """Render the actions whose keys the scene has no item for yet (once each)."""
        new = [i for i, k in enumerate(keys) if k not in state.items and k not in keys[:i]]
        if not new:
            return
        items = render_items(
            scene,
            acts[new],
            settings=settings,
            views=self.views,
            working_size=self.display_size,
            keys=[keys[i] for i in new],
        )
        for item in items:
            state.items[str(item.key)] = item

    def _enqueue(
        self,
        scene: Scene,
        state: _SceneState,
        settings: ScoringSettings,
        pairs: list[tuple[str, str]],
    ) -> list[int]:
        """Queue the pairs (new action first); returns their comparison ids."""
        if not pairs:
            return []
        keys = list(state.items)
        rows = [(keys.index(a), keys.index(b)) for a, b in pairs]
        requests = comparison_requests(
            scene.name,
            [state.items[k] for k in keys],
            rows,
            observation=ObservationSettings.from_scene(scene, n_vertices=settings.n_vertices),
            priority=self.priority,
            overlap=self.overlap,
            source="human:blocking",
        )
        ids = self.queue.enqueue(requests)
        state.comparisons += ids
        self.counters["queued"] += len(ids)
        return ids

    def _wait(self, ids: list[int]) -> None:
        """Poll until each comparison has ``overlap`` answers, or the timeout."""
        start = time.monotonic()
        missing = len(ids)
        while ids:
            counts = dict.fromkeys(ids, 0)
            for answer in self.queue.answers(ids):
                counts[answer.comparison_id] += 1
            missing = sum(n < self.overlap for n in counts.values())
            if missing == 0 or time.monotonic() - start >= self.timeout_s:
                break
            time.sleep(min(self.poll_s, max(0.0, self.timeout_s - (time.monotonic() - start))))
        self.last_wait_s = time.monotonic() - start
        if ids and missing:
            self.counters["timeouts"] += 1
            self.counters["unanswered"] += missing
            message = (
                f"{missing} of {len(ids)} comparisons unanswered after {self.timeout_s:g} s; "
                "the reward is the fit from the answers in (no answer: 0, the prior's mean)"
            )
            if self.on_timeout == "raise":
                raise LabelTimeout(message)
            warnings.warn(message, LabelTimeoutWarning, stacklevel=4)

    # -- inspection and cleanup -------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counters of the session.

        Returns:
            ``steps`` (reward calls), ``actions`` (scored), ``queued`` (comparisons),
            ``answers`` (to them, skips included, as of each scene's last fit),
            ``timeouts`` (calls that stopped waiting), ``unanswered`` (their comparisons
            without all answers), ``unanchored`` (first actions without a reference),
            ``scenes`` and ``last_wait_s`` (the last call's wait).
        """
        answers = sum(state.n_answers for state in self._scenes.values())
        return {
            **self.counters,
            "answers": answers,
            "scenes": len(self._scenes),
            "last_wait_s": self.last_wait_s,
        }

    def close(self) -> None:
        """Close the queue if this backend opened it."""
        if self._owns_queue:
            self.queue.close()
