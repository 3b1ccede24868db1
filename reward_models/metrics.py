"""Metrics of a reward model (RM) against the oracle (Melenberg et al., MIDL 2025, section 4).

Everything here works with any *scorer*: an object with
``predict(observation, actions) -> np.ndarray`` that scores a batch of actions ``(B, 2n)`` of
one scene whose joint-histogram image is ``observation`` (uint8 ``(1, H, W)``), returning
``(B,)`` rewards. :class:`reward_models.model.RewardModel` and ``RewardEnsemble`` are scorers;
so is :class:`OracleScorer`, the noise-free oracle itself (the ceiling every RM is measured
against: its accuracy against the oracle and its Spearman rho with it are 1).

* :func:`pair_accuracy`: on held-out pairs answered unambiguously (``mu != 0.5``), the share
  where the RM prefers the action the labeler chose; and the share where it prefers the
  action with the higher noise-free oracle score (oracle ties excluded);
* :func:`spearman_random`: Spearman's rank correlation between RM reward and oracle score over
  uniformly random actions (20,000 by default).

Oracle scores come from :meth:`tfgym.scoring.SceneScorer.oracle_scores`. Importing this
module imports neither torch nor matplotlib.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from reward_models.config import PREDICT_CHUNK, EvalConfig
from reward_models.data import record_scenes
from tfgym.scoring import SceneScorer, ScoringSettings

__all__ = [
    "PREDICT_CHUNK",
    "OracleScorer",
    "Scorer",
    "oracle_pair_accuracy",
    "pair_accuracy",
    "predict_batched",
    "spearman_random",
    "spearman_rho",
]


class Scorer(Protocol):
    """Anything that scores a batch of actions of one scene (an RM, an ensemble, the oracle)."""

    def predict(self, observation: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Rewards ``(B,)`` for actions ``(B, 2n)`` of the scene with JH ``observation``."""
        ...


def predict_batched(
    model: Scorer, observation: np.ndarray, actions: np.ndarray, *, chunk: int = PREDICT_CHUNK
) -> np.ndarray:
    """``model.predict`` over ``actions`` in chunks, as float64 ``(B,)``.

    Raises:
        ValueError: the model returned the wrong number of rewards.
    """
    acts = np.asarray(actions, dtype=np.float32)
    parts = [
        np.asarray(model.predict(observation, acts[s : s + chunk]), dtype=np.float64).reshape(-1)
        for s in range(0, len(acts), chunk)
    ]
    out = np.concatenate(parts) if parts else np.empty(0)
    if out.shape != (len(acts),):
        raise ValueError(f"model.predict returned {out.shape} rewards for {len(acts)} actions")
    return out


@dataclass(frozen=True)
class OracleScorer:
    """The noise-free oracle of one scene as a scorer with an RM's ``predict`` signature.

    It renders the actions and returns their oracle scores; the observation is only checked
    against the scene's. The ceiling of every metric here.

    Attributes:
        scorer: the scene's batch scorer (its settings decide rendering and target).
    """

    scorer: SceneScorer

    def predict(self, observation: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Oracle scores ``(B,)`` of ``actions`` on the scorer's scene.

        Raises:
            ValueError: ``observation`` is not the scene's joint histogram.
        """
        if not np.array_equal(np.asarray(observation), self.scorer.observation):
            raise ValueError(
                f"observation is not the joint histogram of scene {self.scorer.name!r}"
            )
        return self.scorer.oracle_scores(np.atleast_2d(actions))


def _agree(pred: np.ndarray, truth_a_better: np.ndarray) -> float:
    """Share of pairs where the sign of ``pred`` matches; a zero difference counts half."""
    if pred.size == 0:
        return float("nan")
    return float(np.mean(np.where(pred == 0, 0.5, (pred > 0) == truth_a_better)))


def pair_accuracy(
    model: Scorer, records: Sequence[Any], *, settings: ScoringSettings
) -> dict[str, Any]:
    """Pairwise accuracy of an RM on held-out preferences.

    A pair counts as correct when the RM gives the preferred action the higher reward; equal
    rewards count half. Each scene is the one its records were labeled on (their observation
    settings; records without them: ``settings.working_size`` and ``histogram_bins``); the
    model scores that scene's observation, and a :class:`~tfgym.scoring.SceneScorer` with
    ``settings`` (image size, target) renders both actions of every pair once for their
    noise-free oracle scores.

    Args:
        model: the scorer.
        records: :class:`tfgym.preferences.Preference` records (any scenes).
        settings: rendering and oracle settings.

    Returns:
        ``n_pairs``; ``n_unambiguous`` (``mu != 0.5``); ``accuracy_labeler``: accuracy against
        the labeler's answers on the unambiguous pairs; ``n_oracle``, ``accuracy_oracle``:
        against the oracle on unambiguous pairs whose oracle scores differ;
        ``n_oracle_all``, ``accuracy_oracle_all``: the same over all pairs, ties answered
        0.5 included; ``labeler_vs_oracle``: how often the labeler itself agreed with the
        oracle on the unambiguous pairs (its noise ceiling). Accuracies are NaN without pairs.

    Raises:
        tfgym.observation.ObservationMismatchError: a scan changed since labeling.
    """
    answered = [r for r in records if np.isfinite(float(r.mu))]
    scenes = record_scenes(
        answered, working_size=settings.working_size, histogram_bins=settings.histogram_bins
    )
    by_scene: dict[str, list[Any]] = defaultdict(list)
    for r in answered:
        by_scene[str(r.scene)].append(r)
    mu, r_diff, s_diff = [], [], []
    for name, recs in by_scene.items():
        scorer = SceneScorer(scenes[name], settings)
        a = np.array([r.action_a for r in recs], dtype=np.float32)
        b = np.array([r.action_b for r in recs], dtype=np.float32)
        unique, inverse = np.unique(np.concatenate([a, b]), axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        rewards = predict_batched(model, scorer.observation, unique)[inverse]
        scores = scorer.oracle_scores(unique)[inverse]
        n = len(recs)
        mu.append(np.array([r.mu for r in recs]))
        r_diff.append(rewards[:n] - rewards[n:])
        s_diff.append(scores[:n] - scores[n:])
    mu_ = np.concatenate(mu) if mu else np.empty(0)
    rd = np.concatenate(r_diff) if r_diff else np.empty(0)
    sd = np.concatenate(s_diff) if s_diff else np.empty(0)
    clear = mu_ != 0.5
    oracle_clear = clear & (sd != 0)
    return {
        "n_pairs": len(mu_),
        "n_unambiguous": int(clear.sum()),
        "accuracy_labeler": _agree(rd[clear], mu_[clear] == 1.0),
        "n_oracle": int(oracle_clear.sum()),
        "accuracy_oracle": _agree(rd[oracle_clear], sd[oracle_clear] > 0),
        "n_oracle_all": int((sd != 0).sum()),
        "accuracy_oracle_all": _agree(rd[sd != 0], sd[sd != 0] > 0),
        "labeler_vs_oracle": _agree(
            np.where(mu_ == 1.0, 1.0, -1.0)[oracle_clear], sd[oracle_clear] > 0
        ),
    }


def spearman_rho(rewards: np.ndarray, scores: np.ndarray) -> float:
    """Spearman's rank correlation, NaN when either side is constant or too short.

    Example:
        >>> spearman_rho(np.array([1.0, 2.0, 5.0]), np.array([0.1, 0.3, 0.2]))
        0.5
    """
    from scipy.stats import spearmanr

    if len(rewards) < 2 or np.ptp(rewards) == 0 or np.ptp(scores) == 0:
        return float("nan")
    return float(spearmanr(rewards, scores).statistic)


def spearman_random(
    model: Scorer,
    scorer: SceneScorer,
    rng: np.random.Generator,
    *,
    n: int = EvalConfig.n_random,
    actions: np.ndarray | None = None,
    progress: bool = False,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Spearman rho between RM reward and oracle score over uniformly random actions.

    Args:
        model: the scorer.
        scorer: the scene's batch scorer (its observation for the model, its oracle scores).
        rng: draws the actions, ``uniform(-1, 1, (n, scorer.action_dim))``.
        n: number of random actions.
        actions: score these instead of drawing (``rng`` and ``n`` are then unused).
        progress: show a progress bar while the oracle renders.

    Returns:
        ``(rho, rewards (n,), oracle_scores (n,))``; rho is NaN when either is constant.

    Raises:
        ValueError: fewer than 2 actions to draw.
    """
    if actions is None:
        if n < 2:
            raise ValueError(f"need at least 2 random actions, got n={n}")
        actions = rng.uniform(-1.0, 1.0, size=(n, scorer.action_dim)).astype(np.float32)
    rewards = predict_batched(model, scorer.observation, actions)
    scores = scorer.oracle_scores(actions, progress=progress)
    return spearman_rho(rewards, scores), rewards, scores


def oracle_pair_accuracy(rewards: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """:func:`pair_accuracy`'s entries over every pair of actions, labelled by the oracle.

    Without stored preferences the labeler is the noise-free oracle: each pair ``(i, j)``,
    ``i < j``, is answered by the higher oracle score (equal scores: a tie, 0.5). The
    accuracies against the labeler and the oracle are then the same, and the labeler agrees
    with the oracle on every unambiguous pair.

    Args:
        rewards: RM rewards ``(n,)`` of the actions.
        scores: their oracle scores ``(n,)``.

    Returns:
        The keys of :func:`pair_accuracy` (accuracies NaN without unambiguous pairs).

    Example:
        >>> out = oracle_pair_accuracy(np.array([3.0, 1.0, 2.0]), np.array([0.9, 0.1, 0.1]))
        >>> out["n_pairs"], out["n_unambiguous"], out["accuracy_oracle"]
        (3, 2, 1.0)
    """
    r, sc = np.asarray(rewards, np.float64), np.asarray(scores, np.float64)
    i, j = np.triu_indices(len(r), k=1)
    rd, sd = r[i] - r[j], sc[i] - sc[j]
    clear = sd != 0
    ok = rd[clear]
    accuracy = (
        float(np.mean(np.where(ok == 0, 0.5, (ok > 0) == (sd[clear] > 0))))
        if clear.any()
        else float("nan")
    )
    n_clear = int(clear.sum())
    return {
        "n_pairs": len(i),
        "n_unambiguous": n_clear,
        "accuracy_labeler": accuracy,
        "n_oracle": n_clear,
        "accuracy_oracle": accuracy,
        "n_oracle_all": n_clear,
        "accuracy_oracle_all": accuracy,
        "labeler_vs_oracle": 1.0 if n_clear else float("nan"),
    }
