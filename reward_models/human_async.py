"""The asynchronous ``"human"`` reward backend (after Christiano et al., 2017).

:class:`AsyncHumanBackend` is :class:`reward_models.human_backend.HumanBackend`'s
``mode="async"``: each step returns the current reward model's reward at once; people's
answers retrain the model in the background.

The step runs the model (:class:`reward_models.backend.RewardModelBackend`: its scene-feature
cache, under a lock) and records the action in a buffer of the ``buffer_size`` most recent
ones. Every ``query_every`` scored actions it hands a query (the scene and up to
``candidates`` distinct recent actions) to a worker thread through a bounded queue
(``max_jobs``; when full the query is dropped and counted, the step never waits). The worker
picks ``pairs_per_query`` pairs not asked before on that scene (``selection="disagreement"``
or ``"random"``: :mod:`reward_models.query_selection`), renders them at display quality
(:func:`tfgym.labeling.items.render_items`) and queues them (``source="human:async"``).
A trainer thread polls the answers to these comparisons every ``poll_s``; after every
``retrain_every`` new non-skip answers it fine-tunes a copy of the checkpoint's model on all
answers so far (:func:`reward_models.finetune.fine_tune`: ``finetune_epochs`` of the
Bradley-Terry loss, each ensemble member on its own bootstrap resample, always from the
checkpoint's weights) and swaps it in under the lock: a step sees the old weights or the new
ones, never a mix. :meth:`AsyncHumanBackend.stats` counts queries, comparisons, answers,
retrains and the model's version; :meth:`AsyncHumanBackend.close` stops both threads (a
fine-tuning in progress stops at its next minibatch).

A backend holds threads and a live model, so it is not picklable: run envs with it in one
process (``DummyVecEnv``), so that one trainer sees every answer.
"""

from __future__ import annotations

import logging
import queue as queue_lib
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reward_models.backend import RewardModelBackend
from reward_models.checkpoint import read_checkpoint_info, save_checkpoint
from reward_models.data import PreferenceTensors
from reward_models.finetune import answer_tensors, fine_tune
from reward_models.model import RewardEnsemble
from reward_models.query_selection import (
    SELECTIONS,
    disputed_pairs,
    random_pairs,
    recent_candidates,
    unasked_pairs,
)
from tfgym.backends import RewardBackend
from tfgym.labeling.blocking import action_key, open_queue, scene_settings
from tfgym.labeling.items import comparison_requests, render_items
from tfgym.observation import ObservationSettings
from tfgym.renderer import RenderBatch
from tfgym.scene import Scene
from tfgym.scoring import ScoringSettings

__all__ = ["ASYNC_PRIORITY", "SELECTIONS", "AsyncHumanBackend"]

ASYNC_PRIORITY = 1.0
"""Queue priority of asynchronous queries: above collection (0), below blocking steps (10)."""
_log = logging.getLogger(__name__)


class AsyncHumanBackend(RewardBackend):
    """A reward model's rewards at once; answers retrain it in the background.

    Args:
        db: the label queue's database or a shared :class:`~tfgym.preferences.queue.LabelQueue`.
        path: the reward-model checkpoint to start from.
        selection: ``"disagreement"`` (needs an ensemble) or ``"random"``.
        query_every: scored actions between two queries.
        pairs_per_query: comparisons a query queues (at most).
        candidates: distinct recent actions a query chooses pairs from.
        buffer_size: recent actions kept.
        retrain_every: new non-skip answers between two fine-tunings.
        finetune_epochs: epochs of a fine-tuning over all answers so far.
        lr: Adam's learning rate of the fine-tuning.
        batch_size: pairs per fine-tuning step.
        overlap: distinct labelers who answer each comparison.
        priority: queue priority of the comparisons.
        poll_s: seconds between polls of the queue's answers.
        max_jobs: queries waiting for the worker at most (more are dropped).
        seed: seeds the random selection, the bootstrap and the shuffling.
        settings: how actions are drawn (None: from the scene and the actions).
        views: camera presets shown to labelers.
        display_size: voxels of the display volume (None: display quality).
        lease_s: the lease of a queue this backend opens.
        histogram_bins: the env's bins, checked against the checkpoint (None: the checkpoint's).
        n_vertices: the env's polygon vertices, likewise.
        working_size: the env's working size, checked against the checkpoint's (None: not).
        device: torch device of the model.
        checkpoint_dir: a folder to save each retrained model in (``human-rm-v<N>.pt``).

    Raises:
        ValueError: bad options, ``"disagreement"`` with a single model, or a checkpoint
            that does not fit (:class:`reward_models.checkpoint.CheckpointError`).
    """

    name = "human:async"

    def __init__(
        self,
        db: Any,
        *,
        path: str | Path,
        selection: str = "disagreement",
        query_every: int = 16,
        pairs_per_query: int = 4,
        candidates: int = 16,
        buffer_size: int = 256,
        retrain_every: int = 32,
        finetune_epochs: int = 10,
        lr: float = 1e-3,
        batch_size: int = 64,
        overlap: int = 1,
        priority: float = ASYNC_PRIORITY,
        poll_s: float = 0.5,
        max_jobs: int = 4,
        seed: int = 0,
        settings: ScoringSettings | None = None,
        views: Sequence[str] = ("front", "side"),
        display_size: int | None = None,
        lease_s: float = 120.0,
        histogram_bins: int | None = None,
        n_vertices: int | None = None,
        working_size: int | None = None,
        device: str = "cpu",
        checkpoint_dir: str | Path | None = None,
    ) -> None:
        """Load the model, open the queue and start the worker and trainer threads."""
        if selection not in SELECTIONS:
            raise ValueError(f"unknown selection {selection!r}; valid: {SELECTIONS}")
        counts = dict(
            query_every=query_every, pairs_per_query=pairs_per_query, retrain_every=retrain_every,
            finetune_epochs=finetune_epochs, batch_size=batch_size, overlap=overlap,
            max_jobs=max_jobs,
        )  # fmt: skip
        for key, value in counts.items():
            if int(value) < 1:
                raise ValueError(f"{key} must be at least 1, got {value}")
        if int(candidates) < 2 or int(buffer_size) < int(candidates):
            raise ValueError(
                f"need 2 <= candidates <= buffer_size, got {candidates}, {buffer_size}"
            )
        if not (lr > 0 and poll_s > 0):
            raise ValueError(f"lr and poll_s must be positive, got {lr}, {poll_s}")
        mc = read_checkpoint_info(path).model_config
        if settings is not None:
            histogram_bins = histogram_bins or settings.histogram_bins
            n_vertices = n_vertices or settings.n_vertices
            working_size = working_size or settings.working_size
        self.model_backend = RewardModelBackend(
            str(path),
            histogram_bins=histogram_bins or mc.histogram_bins,
            n_vertices=n_vertices or mc.n_vertices,
            working_size=working_size,
            device=device,
        )
        if selection == "disagreement" and not isinstance(self.model_backend.model, RewardEnsemble):
            raise ValueError(
                f"selection='disagreement' needs an ensemble checkpoint (ensemble_size > 1); "
                f"{path} holds one model: use selection='random' or train an ensemble"
            )
        self.selection, self.settings = selection, settings
        self.query_every, self.pairs_per_query = int(query_every), int(pairs_per_query)
        self.candidates, self.retrain_every = int(candidates), int(retrain_every)
        self.finetune_epochs, self.batch_size = int(finetune_epochs), int(batch_size)
        self.lr = float(lr)
        self.overlap, self.priority, self.poll_s = int(overlap), float(priority), float(poll_s)
        self.views, self.display_size = tuple(views), display_size
        self.working_size = working_size
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.queue, self._owns_queue = open_queue(db, lease_s=lease_s)
        select_seed, train_seed = np.random.SeedSequence(seed).spawn(2)  # one per thread
        self._select_rng = np.random.default_rng(select_seed)
        self._train_rng = np.random.default_rng(train_seed)
        self.base_model = self.model_backend.model  # the checkpoint's: each fine-tuning's start
        self.lock = threading.Lock()  # guards the model (swap) and the step's cache
        self._state = threading.Lock()  # guards the bookkeeping below
        self._recent: deque[tuple[str, str, np.ndarray]] = deque(maxlen=int(buffer_size))
        self._since_query = 0
        self._asked: dict[str, set[frozenset[str]]] = {}
        self._meta: dict[int, tuple[str, np.ndarray, np.ndarray]] = {}  # id -> scene, a, b
        self._observations: dict[str, np.ndarray] = {}  # scene -> JH image
        self._answer_counts: dict[int, int] = {}
        self._seen: set[int] = set()
        self._labels: list[tuple[int, float]] = []  # (comparison id, mu) of non-skip answers
        self._new_labels = 0
        self.version = 0
        self.counters = dict.fromkeys(
            ("steps", "actions", "queries", "dropped", "queued", "answers", "labels",
             "retrains", "errors"), 0,
        )  # fmt: skip
        self.errors: deque[str] = deque(maxlen=20)
        self._jobs: queue_lib.Queue[tuple[Scene, ScoringSettings, np.ndarray]] = queue_lib.Queue(
            maxsize=int(max_jobs)
        )
        self._stop = threading.Event()
        self.threads = (
            threading.Thread(target=self._worker, name="human-async-queries", daemon=True),
            threading.Thread(target=self._trainer, name="human-async-trainer", daemon=True),
        )
        for thread in self.threads:
            thread.start()

    # -- the step (never waits for people) ---------------------------------------------------------
    def reward(self, scene: Scene, actions: np.ndarray, renderings: RenderBatch) -> np.ndarray:
        """The current model's rewards; records the actions and may hand off a query."""
        del renderings
        acts = np.asarray(actions, dtype=np.float32).reshape(len(actions), -1)
        with self.lock:
            rewards = self.model_backend.rewards(scene.observation, acts)
        if self._stop.is_set():
            return rewards
        with self._state:
            self.counters["steps"] += 1
            self.counters["actions"] += len(acts)
            for a in acts:
                self._recent.append((scene.name, action_key(a), a.copy()))
            self._since_query += len(acts)
            job = None
            if self._since_query >= self.query_every:
                self._since_query = 0
                job = (
                    scene,
                    scene_settings(scene, acts.shape[1] // 2, self.settings),
                    recent_candidates(self._recent, scene.name, self.candidates),
                )
        if job is not None and len(job[2]) >= 2:
            try:
                self._jobs.put_nowait(job)
                self._count("queries")
            except queue_lib.Full:
                self._count("dropped")
        return rewards

    def _count(self, name: str, n: int = 1) -> None:
        with self._state:
            self.counters[name] += n

    def _failed(self, what: str) -> None:
        _log.exception("human backend (async): %s failed", what)
        with self._state:
            self.counters["errors"] += 1
        self.errors.append(f"{what}: {sys.exc_info()[1]!r}")

    # -- the query worker ------------------------------------------------------------------------
    def _worker(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._jobs.get(timeout=0.1)
            except queue_lib.Empty:
                continue
            try:
                self._query(*job)
            except Exception:
                self._failed("a query")

    def _pairs(self, scene: Scene, acts: np.ndarray, keys: list[str]) -> list[tuple[int, int]]:
        """The pairs of a query: the most disagreed-on (or random) pairs not asked before."""
        with self._state:
            asked = set(self._asked.get(scene.name, ()))
        pairs = unasked_pairs(keys, asked)
        if self.selection == "random":
            return random_pairs(pairs, self.pairs_per_query, self._select_rng)
        with self.lock:
            model = self.model_backend.model
        assert isinstance(model, RewardEnsemble)
        return disputed_pairs(pairs, self.pairs_per_query, model, scene.observation, acts)

    def _query(self, scene: Scene, settings: ScoringSettings, acts: np.ndarray) -> None:
        """Choose pairs of the candidates, render them and queue them."""
        keys = [action_key(a) for a in acts]
        pairs = self._pairs(scene, acts, keys)
        if not pairs:
            return
        used = sorted({k for pair in pairs for k in pair})
        items = render_items(
            scene, acts[used], settings=settings, views=self.views,
            working_size=self.display_size, keys=[keys[k] for k in used],
        )  # fmt: skip
        rows = [(used.index(i), used.index(j)) for i, j in pairs]
        requests = comparison_requests(
            scene.name, items, rows,
            observation=ObservationSettings.from_scene(scene, n_vertices=settings.n_vertices),
            priority=self.priority, overlap=self.overlap, source="human:async",
        )  # fmt: skip
        ids = self.queue.enqueue(requests)
        with self._state:
            self._observations[scene.name] = scene.observation.reshape(
                1, *scene.observation.shape[-2:]
            )
            self._asked.setdefault(scene.name, set()).update(
                frozenset((keys[i], keys[j])) for i, j in pairs
            )
            for cid, (i, j) in zip(ids, pairs, strict=True):
                self._meta[cid] = (scene.name, acts[i], acts[j])
                self._answer_counts[cid] = 0
            self.counters["queued"] += len(ids)

    # -- the trainer -----------------------------------------------------------------------------
    def _trainer(self) -> None:
        while not self._stop.is_set():
            try:
                if self._poll() >= self.retrain_every:
                    self._retrain()
            except Exception:
                self._failed("polling or retraining")
            self._stop.wait(self.poll_s)

    def _poll(self) -> int:
        """Take in new answers; returns the non-skip answers since the last retraining."""
        with self._state:
            pending = [c for c, n in self._answer_counts.items() if n < self.overlap]
        for start in range(0, len(pending), 500):
            for answer in self.queue.answers(pending[start : start + 500]):
                with self._state:
                    if answer.answer_id in self._seen:
                        continue
                    self._seen.add(answer.answer_id)
                    self._answer_counts[answer.comparison_id] += 1
                    self.counters["answers"] += 1
                    if answer.mu is not None:  # a pair's answer (this backend queues pairs)
                        self._labels.append((answer.comparison_id, float(answer.mu)))
                        self.counters["labels"] += 1
                        self._new_labels += 1
        with self._state:
            return self._new_labels

    def _dataset(self) -> PreferenceTensors:
        """Every non-skip answer so far as training pairs."""
        with self._state:
            answers = [(*self._meta[c], mu) for c, mu in self._labels]
            observations = dict(self._observations)
            self._new_labels = 0
        return answer_tensors(answers, observations, working_size=self.working_size)

    def _retrain(self) -> None:
        """Fine-tune a copy of the checkpoint's model on every answer so far; swap it in."""
        tuned = fine_tune(
            self.base_model, self._dataset(), epochs=self.finetune_epochs, lr=self.lr,
            batch_size=self.batch_size, rng=self._train_rng, stop=self._stop,
        )  # fmt: skip
        if tuned is None:  # stopped by close()
            return
        with self.lock:
            self.model_backend.model = tuned
            self.version += 1
            version = self.version
        self._count("retrains")
        if self.checkpoint_dir is not None:
            mc = tuned.config
            observation = {
                "working_size": self.working_size,
                "histogram_bins": mc.histogram_bins,
                "n_vertices": mc.n_vertices,
            }
            save_checkpoint(
                self.checkpoint_dir / f"human-rm-v{version}.pt", tuned, observation=observation
            )

    # -- inspection and cleanup ------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counters of the session.

        Returns:
            ``steps`` and ``actions`` scored, ``queries`` handed to the worker, ``dropped``
            (the worker was busy), ``queued`` comparisons, ``answers`` to them (skips
            included), ``labels`` (non-skip answers), ``retrains``, ``errors`` of the
            threads, the model's ``version`` (retrains swapped in) and ``pending_queries``.
        """
        with self._state:
            return {**self.counters, "version": self.version, "pending_queries": self._jobs.qsize()}

    def wait(self, *, timeout_s: float, **at_least: int) -> bool:
        """Wait until counters of :meth:`stats` reach values: ``wait(retrains=1, timeout_s=30)``.

        Returns:
            Whether they did before the timeout.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            stats = self.stats()
            if all(stats[k] >= v for k, v in at_least.items()):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop the threads (a fine-tuning stops at its next minibatch) and close the queue."""
        self._stop.set()
        for thread in self.threads:
            thread.join(timeout_s)
        if self._owns_queue:
            self.queue.close()
            self._owns_queue = False

    def __getstate__(self) -> dict[str, Any]:
        """Refuse pickling (see the module docstring)."""
        raise TypeError("the human reward backend holds threads and a live queue; use one process")
