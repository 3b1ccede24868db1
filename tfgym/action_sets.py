"""The paper's action set of a scene: expert TFs, small shifts of them, random polygons.

Melenberg et al. (MIDL 2025) compared 100 polygon actions on one CBCT head: 10 "expert" TFs
made by hand, 40 small random shifts of their vertices and 50 uniformly random polygons.
:func:`paper_actions` builds such a set for any scene; the experts are the best mutually
distinct results of a small cross-entropy search (:class:`tfgym.search.CrossEntropySearch`)
on the oracle score, started at the oracle's hand-made TF
(:func:`tfgym.oracle.reference_action`), which is a candidate too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tfgym.oracle.reference import reference_action
from tfgym.scene import Scene
from tfgym.scoring import SceneScorer
from tfgym.search import CrossEntropySearch

__all__ = ["KINDS", "ActionSet", "paper_actions"]

KINDS = ("expert", "shift", "random")


@dataclass(frozen=True)
class ActionSet:
    """The actions of one scene's comparisons and how each was made.

    Attributes:
        actions: float32 ``(n_actions, 2 * n_vertices)`` in ``[-1, 1]``.
        kinds: per action ``"expert"``, ``"shift"`` or ``"random"``.
    """

    actions: np.ndarray
    kinds: tuple[str, ...]

    def __post_init__(self) -> None:
        """Validate shapes and kinds."""
        a = np.asarray(self.actions, dtype=np.float32)
        if a.ndim != 2 or len(a) < 2:
            raise ValueError(f"actions must be (n_actions >= 2, dim), got shape {a.shape}")
        if len(self.kinds) != len(a):
            raise ValueError(f"{len(self.kinds)} kinds for {len(a)} actions")
        bad = sorted(set(self.kinds) - set(KINDS))
        if bad:
            raise ValueError(f"unknown action kinds {bad}; valid: {list(KINDS)}")
        object.__setattr__(self, "actions", a)
        object.__setattr__(self, "kinds", tuple(self.kinds))

    def __len__(self) -> int:
        return len(self.actions)

    def mask(self, kind: str) -> np.ndarray:
        """Boolean ``(n_actions,)`` mask of the actions of one kind."""
        return np.array([k == kind for k in self.kinds])


def _reference(scene: Scene, target: Any, n_vertices: int) -> np.ndarray | None:
    """The oracle's hand-made TF as an action of ``n_vertices`` vertices, or None."""
    if n_vertices < 4:
        return None
    try:
        rect = reference_action(scene, target).reshape(4, 2).astype(np.float64)
    except ValueError:  # the target tissue is absent from this scan
        return None
    verts = list(rect)
    while len(verts) < n_vertices:  # extra vertices at the midpoints of the longest edges
        edges = [np.linalg.norm(verts[(i + 1) % len(verts)] - verts[i]) for i in range(len(verts))]
        i = int(np.argmax(edges))
        verts.insert(i + 1, (verts[i] + verts[(i + 1) % len(verts)]) / 2)
    return np.concatenate(verts).astype(np.float32)


def _expert_actions(
    scorer: SceneScorer,
    rng: np.random.Generator,
    n: int,
    *,
    budget: int,
    min_distance: float,
    min_quality: float = 0.85,
    population: int = 32,
) -> np.ndarray:
    """``n`` good, mutually distinct actions from a small CEM on the oracle score.

    The search (:class:`tfgym.search.CrossEntropySearch`) starts at the hand-made reference TF
    (or the centre of the box without one); every action it scores, the reference included,
    is a candidate, and those scoring at least ``min_quality`` times the best are good. Good
    candidates are taken in order of score, skipping any closer than ``min_distance``
    (max-norm over the coordinates) to one already taken; if that leaves fewer than ``n``, the
    distance is halved and the pass repeated.
    """
    dim = scorer.action_dim
    oracle = scorer if scorer.is_oracle else SceneScorer(scorer.scene, scorer.settings)
    ref = _reference(scorer.scene, scorer.settings.tissues, scorer.settings.n_vertices)
    search = CrossEntropySearch(
        rng,
        population_size=population,
        elite_frac=max(2, population // 5) / population,
        init_std=0.6 if ref is None else 0.25,
        min_std=0.03,
        smoothing=0.8,
        init_mean=ref,
    )
    target = max(budget, 2 * n)
    total = -(-target // population) * population + (0 if ref is None else 1)
    result = search.run(oracle, total, initial=None if ref is None else ref[None], keep_all=True)
    assert result.actions is not None
    assert result.rewards is not None
    candidates, scores = result.actions.astype(np.float64), result.rewards
    order = np.argsort(-scores, kind="stable")
    good = order[scores[order] >= min_quality * scores[order[0]]]
    chosen: list[int] = []
    while len(chosen) < n and min_distance > 1e-3:
        for i in good:
            if i not in chosen and all(
                np.max(np.abs(candidates[i] - candidates[c])) >= min_distance for c in chosen
            ):
                chosen.append(int(i))
                if len(chosen) == n:
                    break
        min_distance /= 2  # too few distinct good candidates: accept closer ones
    picked = [candidates[i] for i in chosen]
    if len(picked) < n:  # a collapsed search: fill up with jitters of the best
        extra = picked[0] + 0.1 * rng.standard_normal((n - len(picked), dim))
        picked.extend(np.clip(extra, -1.0, 1.0))
    return np.stack(picked[:n]).astype(np.float32)


def paper_actions(
    scorer: SceneScorer,
    rng: np.random.Generator,
    *,
    n_expert: int = 10,
    n_shift: int = 40,
    n_random: int = 50,
    shift_scale: float = 0.05,
    expert_budget: int = 256,
    expert_spread: float = 0.3,
) -> ActionSet:
    """The paper's action set for a scene: experts, shifts of their vertices, random actions.

    Args:
        scorer: the scene's batch scorer; the oracle score of its settings' target drives
            the expert search whatever its backend.
        rng: the only source of randomness.
        n_expert: good TFs: the best mutually distinct results of a CEM on the oracle score
            started at the hand-made reference TF (which is a candidate too).
        n_shift: small random shifts of the experts' vertices, spread evenly over the experts
            (4 each by default): Gaussian noise of std ``shift_scale`` per coordinate, clipped
            to ``[-1, 1]``.
        n_random: actions drawn uniformly from ``[-1, 1]``.
        shift_scale: standard deviation of the shifts, in action units (the box is 2 wide).
        expert_budget: oracle evaluations spent on the expert search.
        expert_spread: experts differ by at least this much in some coordinate where
            possible (they are distinct designs, not copies of one optimum); among the
            search's candidates only those within 85 % of the best score qualify.

    Returns:
        An :class:`ActionSet`: experts, then shifts, then random actions.

    Raises:
        ValueError: for counts or scales out of range.
    """
    if n_expert < 1 or n_shift < 0 or n_random < 0:
        raise ValueError(
            f"need n_expert >= 1, n_shift >= 0, n_random >= 0; got {n_expert}, {n_shift}, "
            f"{n_random}"
        )
    if not shift_scale > 0:
        raise ValueError(f"shift_scale must be > 0, got {shift_scale}")
    dim = scorer.action_dim
    experts = _expert_actions(
        scorer, rng, n_expert, budget=expert_budget, min_distance=expert_spread
    )
    parents = experts[np.arange(n_shift) % n_expert]
    shifts = np.clip(parents + shift_scale * rng.standard_normal(parents.shape), -1.0, 1.0)
    randoms = rng.uniform(-1.0, 1.0, size=(n_random, dim))
    return ActionSet(
        np.concatenate([experts, shifts, randoms]).astype(np.float32),
        ("expert",) * n_expert + ("shift",) * n_shift + ("random",) * n_random,
    )
