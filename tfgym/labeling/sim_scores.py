"""How a simulated labeler judges the items of a lease: oracle scores and simulated rankings.

:class:`OracleScores` scores actions on a scene with the oracle (one
:class:`tfgym.scoring.SceneScorer` per scene and vertex count, each action's score computed
once and cached; safe to share between the labeler threads of
:func:`tfgym.labeling.client.simulate_labelers`). :func:`rank_order` turns the scores of a
ranking's items into the order a :class:`tfgym.oracle.SimulatedLabeler` would give (a pair is
answered with the labeler's own :meth:`~tfgym.oracle.SimulatedLabeler.compare`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from tfgym.oracle import SimulatedLabeler
from tfgym.scoring import SceneScorer, ScoringSettings

__all__ = ["OracleScores", "rank_order"]


class OracleScores:
    """Cached oracle scores of actions, per scene; safe to share between threads.

    Args:
        settings: how actions are rendered and judged (default
            :class:`~tfgym.scoring.ScoringSettings`); the vertex count follows the actions.

    Example:
        >>> scores = OracleScores(ScoringSettings(working_size=32, image_size=32))
        >>> s = scores("headsq", [[0.2, -1, 1, -1, 1, 1, 0.2, 1], [0, 0, 0, 0, 0, 0, 0, 0]])
        >>> s.shape, float(s[1]), len(scores)
        ((2,), 0.0, 2)
    """

    def __init__(self, settings: ScoringSettings | None = None) -> None:
        self.settings = settings or ScoringSettings()
        self._scorers: dict[tuple[str, int], SceneScorer] = {}
        self._cache: dict[tuple[str, tuple[float, ...]], float] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Scores cached."""
        return len(self._cache)

    def __call__(self, scene: str, actions: Sequence[Sequence[float]]) -> np.ndarray:
        """Oracle scores of ``actions`` on ``scene``: float64 ``(n,)``, each computed once.

        Raises:
            ValueError: an unknown scene or malformed actions.
        """
        keys = [(scene, tuple(float(x) for x in a)) for a in actions]
        with self._lock:  # one scene build and render at a time; hits are dict lookups
            missing = list(dict.fromkeys(k for k in keys if k not in self._cache))
            if missing:
                acts = np.array([k[1] for k in missing], dtype=np.float32)
                scores = self._scorer(scene, acts.shape[1] // 2).oracle_scores(acts)
                self._cache.update(zip(missing, map(float, scores), strict=True))
            return np.array([self._cache[k] for k in keys], dtype=np.float64)

    def _scorer(self, scene: str, n_vertices: int) -> SceneScorer:
        key = (scene, n_vertices)
        if key not in self._scorers:
            s = self.settings
            if s.n_vertices != n_vertices:
                s = replace(s, n_vertices=n_vertices)
            self._scorers[key] = SceneScorer(scene, s)
        return self._scorers[key]


def rank_order(
    scores: np.ndarray, labeler: SimulatedLabeler, rng: np.random.Generator
) -> tuple[int, ...]:
    """A simulated ranking: indices best -> worst of ``scores`` as the labeler would order them.

    Scores plus Gumbel noise of scale ``temperature`` (any two items then come in the labeler's
    Bradley-Terry order with probability ``sigmoid(diff / temperature)``), sorted; with
    probability ``mistake_rate`` two neighbours are swapped.

    Example:
        >>> from tfgym.oracle import LABELER_PRESETS
        >>> rank_order(np.array([0.1, 0.9, 0.5, 0.3]), LABELER_PRESETS["perfect"],
        ...            np.random.default_rng(0))
        (1, 2, 3, 0)
    """
    s = np.asarray(scores, dtype=np.float64)
    if labeler.temperature > 0:
        s = s + rng.gumbel(0.0, labeler.temperature, size=s.shape)
    order = [int(i) for i in np.argsort(-s, kind="stable")]
    if len(order) > 1 and rng.random() < labeler.mistake_rate:
        k = int(rng.integers(len(order) - 1))
        order[k], order[k + 1] = order[k + 1], order[k]
    return tuple(order)
