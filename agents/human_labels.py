"""People as the pipeline's labeler: ``tfgym rlhf --labeler human``.

With ``RLHFConfig(labeler="human")`` the labeling phases (``prefs`` and every later round) do
not answer their pairs with the simulated labeler. :func:`label_with_people` instead

1. renders each action of the chosen pairs once at display quality
   (:func:`tfgym.labeling.items.enqueue_preferences`: ``display_size`` voxels, front and side)
   and queues the comparisons in the label queue ``RLHFConfig.label_db`` (default: the run
   folder's ``labels.sqlite``), then writes their ids to ``queued-<phase>.json`` in the run
   folder;
2. waits, showing progress, until every queued comparison is answered by people at
   ``tfgym label --db <label_db>`` (or by ``tfgym label-sim`` for a rehearsal);
3. returns the answers as :class:`~tfgym.preferences.Preference` records with the labelers'
   names, which the phase adds to the run's ``prefs.sqlite`` -- the reward model then trains on
   them exactly as on simulated answers.

Resuming: answers are durable in the queue's database the moment a labeler's page confirms
them, and the queued ids are in the run folder, so an interrupted phase (Ctrl-C, a crash, a
reboot while people label) neither queues its pairs again nor loses an answer: rerunning
``tfgym rlhf`` with the same ``--out`` goes back to waiting for the rest. A "can't tell"
answer counts as answered and gives no record.

Example:
    >>> from agents.config import RLHFConfig
    >>> RLHFConfig(labeler="human", label_db="sqlite:///labels.sqlite").label_db
    'sqlite:///labels.sqlite'
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from agents.config import RLHFConfig
from tfgym.observation import ObservationSettings
from tfgym.preferences import Preference
from tfgym.scoring import SceneScorer, ScoringSettings

__all__ = ["label_db", "label_with_people"]


def label_db(config: RLHFConfig, folder: str | Path) -> str:
    """The label queue's database of a run: ``config.label_db`` or the folder's file."""
    return config.label_db or str(Path(folder) / "labels.sqlite")


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value) + "\n")
    os.replace(tmp, path)


def _enqueue(
    queue: Any,
    config: RLHFConfig,
    settings: ScoringSettings,
    scene_actions: Mapping[str, np.ndarray],
    pairs: Mapping[str, np.ndarray] | None,
    n_pairs: int,
    rng: np.random.Generator,
    progress: bool,
) -> dict[str, list[int]]:
    from tfgym.labeling.items import QueueConfig, enqueue_preferences

    per_scene = max(1, n_pairs // len(scene_actions))
    queued: dict[str, list[int]] = {}
    for scene, acts in scene_actions.items():
        scorer = SceneScorer(scene, settings)
        possible = len(acts) * (len(acts) - 1) // 2
        queued[scorer.name] = enqueue_preferences(
            scorer,
            np.asarray(acts, np.float32),
            queue=queue,
            n_pairs=min(per_scene, possible),
            rng=rng,
            pairs=None if pairs is None else pairs[scene],
            config=QueueConfig(display_size=config.display_size),
            progress=progress,
        )
    return queued


def label_with_people(
    folder: str | Path,
    config: RLHFConfig,
    settings: ScoringSettings,
    scene_actions: Mapping[str, np.ndarray],
    pairs: Mapping[str, np.ndarray] | None,
    n_pairs: int,
    rng: np.random.Generator,
    *,
    phase: str,
    progress: bool = True,
    log: Callable[[str], Any] = print,
) -> list[Preference]:
    """Queue a phase's pairs for people (once) and wait for all of their answers.

    Args:
        folder: the run folder (``queued-<phase>.json`` is kept there).
        config: the run's config (``label_db``, ``display_size``, ``label_poll_s``).
        settings: the run's scoring settings (the TFs' look; the observation recorded).
        scene_actions: scene name -> its actions ``(n, 2 * n_vertices)``.
        pairs: scene name -> index pairs ``(k, 2)`` to ask; None: ``n_pairs`` drawn.
        n_pairs: pairs over all scenes when ``pairs`` is None (split evenly).
        rng: draws the pairs.
        phase: the phase's name (``"prefs"``, ``"round-2"``, ...).
        progress: show progress bars.
        log: where the waiting messages go.

    Returns:
        One record per non-skip answer (the labeler's name, the actions in stored order).
    """
    from tqdm.auto import tqdm

    from tfgym.preferences import LabelQueue

    path = Path(folder) / f"queued-{phase}.json"
    db = label_db(config, folder)
    with LabelQueue(db) as queue:
        if path.exists():
            queued = {k: [int(i) for i in v] for k, v in json.loads(path.read_text()).items()}
            log(f"[rlhf] {phase}: {sum(map(len, queued.values()))} comparisons queued already")
        else:
            queued = _enqueue(queue, config, settings, scene_actions, pairs, n_pairs, rng, progress)
            _write_json(path, queued)
        ids = [i for v in queued.values() for i in v]
        log(
            f"[rlhf] {phase}: waiting for people to answer {len(ids)} comparisons: "
            f"tfgym label --db {db}"
        )
        bar = tqdm(total=len(ids), desc=f"{phase}: answered", disable=not progress)
        while True:
            answers = queue.answers(ids)
            done = {a.comparison_id for a in answers}
            bar.update(len(done) - bar.n)
            if len(done) >= len(ids):
                break
            time.sleep(config.label_poll_s)
        bar.close()
    return _records(answers, scene_actions, settings)


def _records(
    answers: list[Any], scene_actions: Mapping[str, np.ndarray], settings: ScoringSettings
) -> list[Preference]:
    """Preference records of pair answers (keys: the actions' indices; skips dropped)."""
    observations: dict[str, ObservationSettings] = {}
    out = []
    for a in answers:
        if a.mu is None or a.order is not None:
            continue
        acts = scene_actions[a.scene]
        if a.scene not in observations:
            scene = SceneScorer(a.scene, settings).scene
            observations[a.scene] = ObservationSettings.from_scene(
                scene, n_vertices=settings.n_vertices
            )
        i, j = (int(str(k).split(":")[0]) for k in a.keys)
        out.append(
            Preference(
                scene=a.scene,
                action_a=tuple(float(v) for v in acts[i]),
                action_b=tuple(float(v) for v in acts[j]),
                mu=float(a.mu),
                labeler=a.labeler,
                created=a.created.isoformat(),
                observation=observations[a.scene],
            )
        )
    return out
