"""Which comparisons the asynchronous human backend asks people about.

A query of :class:`reward_models.human_async.AsyncHumanBackend` holds a scene and up to
``candidates`` distinct recent actions (:func:`recent_candidates`: the scene's own first, then
recent actions of other scenes -- an action means the same polygon on every scan, so it is a
valid TF to show on this one). Of the pairs of candidates not asked before on that scene
(:func:`unasked_pairs`), it queues ``pairs_per_query``:

* ``selection="disagreement"`` (:func:`disputed_pairs`): the pairs with the largest variance
  over the ensemble's members of the predicted preference probability ``sigmoid(r_i - r_j)``
  -- where the models disagree, an answer teaches most (Christiano et al., 2017);
* ``selection="random"`` (:func:`random_pairs`): uniformly random pairs, the baseline.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from reward_models.model import RewardEnsemble

__all__ = ["SELECTIONS", "disputed_pairs", "random_pairs", "recent_candidates", "unasked_pairs"]

SELECTIONS = ("disagreement", "random")
"""How a query chooses its pairs: the ensemble's disagreement, or at random."""


def recent_candidates(
    recent: Iterable[tuple[str, str, np.ndarray]], scene: str, n: int
) -> np.ndarray:
    """Up to ``n`` distinct recent actions, the scene's own first, each group newest first.

    Args:
        recent: ``(scene, action key, action)`` of scored actions, oldest first.
        scene: the query's scene.
        n: candidates at most.

    Returns:
        The actions stacked, ``(m, 2 * n_vertices)`` with ``m <= n``.

    Example:
        >>> recent = [("s", "a", np.zeros(2)), ("t", "b", np.ones(2)), ("s", "c", -np.ones(2)),
        ...           ("s", "a", np.zeros(2))]
        >>> recent_candidates(recent, "s", 3).tolist()
        [[0.0, 0.0], [-1.0, -1.0], [1.0, 1.0]]
    """
    newest = list(reversed(list(recent)))
    ordered = [r for r in newest if r[0] == scene] + [r for r in newest if r[0] != scene]
    chosen: dict[str, np.ndarray] = {}
    for _, key, action in ordered:
        chosen.setdefault(key, action)
        if len(chosen) == n:
            break
    return np.stack(list(chosen.values()))


def unasked_pairs(keys: Sequence[str], asked: set[frozenset[str]]) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, of ``keys`` whose pair of keys is not in ``asked``.

    Example:
        >>> unasked_pairs(["a", "b", "c"], {frozenset(("a", "c"))})
        [(0, 1), (1, 2)]
    """
    return [
        (i, j)
        for i in range(len(keys))
        for j in range(i + 1, len(keys))
        if frozenset((keys[i], keys[j])) not in asked
    ]


def random_pairs(
    pairs: Sequence[tuple[int, int]], n: int, rng: np.random.Generator
) -> list[tuple[int, int]]:
    """``n`` of ``pairs`` drawn uniformly without replacement, in their order (all if fewer).

    Example:
        >>> random_pairs([(0, 1), (0, 2), (1, 2)], 2, np.random.default_rng(0))
        [(0, 2), (1, 2)]
    """
    if len(pairs) <= n:
        return list(pairs)
    chosen = rng.choice(len(pairs), n, replace=False)
    return [pairs[k] for k in sorted(chosen)]


def disputed_pairs(
    pairs: Sequence[tuple[int, int]],
    n: int,
    ensemble: RewardEnsemble,
    observation: np.ndarray,
    actions: np.ndarray,
) -> list[tuple[int, int]]:
    """The ``n`` pairs the ensemble's members disagree on most (all if fewer), most first.

    Args:
        pairs: index pairs ``(i, j)`` into ``actions``.
        n: pairs to choose.
        ensemble: the reward models; member ``k``'s probability that ``i`` is better than
            ``j`` is ``sigmoid(r_k[i] - r_k[j])``; pairs are ranked by its variance over ``k``
            (ties: in the order given).
        observation: the scene's JH image, uint8 ``(1, bins, bins)``.
        actions: float32 ``(m, 2 * n_vertices)``.

    Returns:
        The chosen pairs.
    """
    if len(pairs) <= n:
        return list(pairs)
    r = ensemble.predict_all(observation, actions)  # (members, m)
    i, j = np.array(pairs).T
    p = 1.0 / (1.0 + np.exp(r[:, j] - r[:, i]))
    order = np.argsort(-p.var(axis=0), kind="stable")
    return [pairs[k] for k in order[:n]]
