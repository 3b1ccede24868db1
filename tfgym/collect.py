"""Preference collection with the simulated labeler: the paper's protocol on any scene.

Melenberg et al. (MIDL 2025) collected 4000 human comparisons of 100 polygon actions on one
CBCT head: 10 "expert" TFs made by hand, 40 small random shifts of their vertices and 50
uniformly random polygons. Here the oracle stands in for the human:

* :func:`tfgym.action_sets.paper_actions` (re-exported here) builds the 100 actions of a
  scene: experts from a small search on the oracle score, shifts of them, random polygons;
* :func:`collect_preferences` scores every action once with the scene's
  :class:`tfgym.scoring.SceneScorer` and answers ``n_pairs`` distinct pairs with a
  :class:`tfgym.oracle.SimulatedLabeler` preset, as :class:`tfgym.preferences.Preference`
  records (labeler ``"sim:<preset>"``) that carry the exact observation settings
  (:class:`tfgym.observation.ObservationSettings`) they were labeled on;
* :func:`collect_multi` does both for several scenes (e.g. the 12 train phantoms), with the
  options of a :class:`CollectConfig` (``tfgym collect`` is a thin command over it).

For people instead of the oracle (``tfgym collect --labeler human --db URL``, labeler
:data:`HUMAN`), :func:`tfgym.labeling.items.enqueue_multi` draws the same actions and pairs
and queues them, rendered at display quality, for the labeling server.

Example:
    >>> from tfgym.scoring import SceneScorer, ScoringSettings
    >>> scorer = SceneScorer("headsq", ScoringSettings(image_size=32, working_size=32))
    >>> rng = np.random.default_rng(0)
    >>> actions = paper_actions(scorer, rng, expert_budget=64)
    >>> actions.actions.shape, actions.kinds.count("expert"), actions.kinds.count("random")
    ((100, 8), 10, 50)
    >>> prefs = collect_preferences(scorer, actions, n_pairs=200, rng=rng)
    >>> len(prefs), prefs[0].labeler, sorted({p.mu for p in prefs})
    (200, 'sim:noisy', [0.0, 0.5, 1.0])
    >>> prefs[0].observation.working_size
    32
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from tfgym.action_sets import ActionSet, paper_actions
from tfgym.observation import ObservationSettings
from tfgym.oracle import LABELER_PRESETS, SimulatedLabeler, labeler_id, make_labeler
from tfgym.preferences import Preference, PreferenceStore
from tfgym.scoring import SceneScorer, ScoringSettings
from tfgym.transfer_function import TransferFunction

__all__ = [
    "HUMAN",
    "ActionSet",
    "CollectConfig",
    "check_pairs",
    "collect_multi",
    "collect_preferences",
    "labeler_id",
    "paper_actions",
    "sample_pairs",
]

HUMAN = "human"
"""The labeler who is a person: comparisons are queued, not answered
(:func:`tfgym.labeling.items.enqueue_multi`)."""


@dataclass(frozen=True)
class CollectConfig:
    """Settings of a simulated preference collection (the paper's protocol by default).

    ``tfgym collect`` takes its options from these fields.
    """

    pairs: int = field(default=4000, metadata={"help": "comparisons per scene"})
    labeler: str = field(
        default="noisy",
        metadata={
            "help": "simulated labeler preset, or human (queue the comparisons for people)",
            "choices": (*LABELER_PRESETS, HUMAN),
        },
    )
    seed: int = field(default=0, metadata={"help": "random seed"})
    n_expert: int = field(default=10, metadata={"help": "expert actions per scene"})
    n_shift: int = field(default=40, metadata={"help": "shifted expert actions per scene"})
    n_random: int = field(default=50, metadata={"help": "uniformly random actions per scene"})
    shift_scale: float = field(
        default=0.05, metadata={"help": "std of the shifts, in action units (the box is 2 wide)"}
    )
    expert_budget: int = field(
        default=256, metadata={"help": "oracle evaluations of the expert search per scene"}
    )
    expert_spread: float = field(
        default=0.3, metadata={"help": "experts differ by at least this in some coordinate"}
    )

    def __post_init__(self) -> None:
        """Validate (fail before any work)."""
        if self.labeler != HUMAN:
            make_labeler(self.labeler)
        if self.pairs < 1:
            raise ValueError(f"pairs must be at least 1, got {self.pairs}")
        if self.n_expert < 1 or self.n_shift < 0 or self.n_random < 0:
            raise ValueError(
                f"need n_expert >= 1, n_shift >= 0, n_random >= 0; got {self.n_expert}, "
                f"{self.n_shift}, {self.n_random}"
            )
        n = self.n_actions
        if self.pairs > n * (n - 1) // 2:
            raise ValueError(
                f"pairs {self.pairs} exceeds the {n * (n - 1) // 2} distinct pairs of {n} actions"
            )

    @property
    def n_actions(self) -> int:
        """Actions per scene."""
        return self.n_expert + self.n_shift + self.n_random

    def action_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`paper_actions`."""
        return {
            "n_expert": self.n_expert,
            "n_shift": self.n_shift,
            "n_random": self.n_random,
            "shift_scale": self.shift_scale,
            "expert_budget": self.expert_budget,
            "expert_spread": self.expert_spread,
        }


def sample_pairs(n_actions: int, n_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """``n_pairs`` distinct unordered pairs ``(i, j)``, ``i != j``, each in random order.

    Returns:
        int64 ``(n_pairs, 2)``; no unordered pair appears twice.

    Raises:
        ValueError: if ``n_pairs`` exceeds ``n_actions * (n_actions - 1) / 2``.

    Example:
        >>> sample_pairs(4, 6, np.random.default_rng(0)).shape
        (6, 2)
    """
    n_possible = n_actions * (n_actions - 1) // 2
    if not 0 < n_pairs <= n_possible:
        raise ValueError(
            f"cannot sample {n_pairs} distinct pairs from {n_actions} actions "
            f"(at most {n_possible})"
        )
    i, j = np.triu_indices(n_actions, k=1)
    pick = rng.choice(n_possible, size=n_pairs, replace=False)
    pairs = np.stack([i[pick], j[pick]], axis=1)
    swap = rng.random(n_pairs) < 0.5  # neither position is favoured
    pairs[swap] = pairs[swap][:, ::-1]
    return pairs.astype(np.int64)


def check_pairs(pairs: np.ndarray | Sequence[Sequence[int]], n_actions: int) -> np.ndarray:
    """Given pairs as int64 ``(k, 2)`` indices of two different actions among ``n_actions``.

    Raises:
        ValueError: not ``(k, 2)`` with ``k >= 1``, out of range, or a pair of one action.

    Example:
        >>> check_pairs([[0, 2], [1, 0]], 3).tolist()
        [[0, 2], [1, 0]]
    """
    pairs = np.asarray(pairs, dtype=np.int64)
    if pairs.ndim != 2 or pairs.shape[1] != 2 or len(pairs) == 0:
        raise ValueError(f"pairs must be (k, 2) action indices, got shape {pairs.shape}")
    if pairs.min() < 0 or pairs.max() >= n_actions or (pairs[:, 0] == pairs[:, 1]).any():
        raise ValueError(f"pairs must index two different actions of {n_actions}")
    return pairs


def collect_preferences(
    scorer: SceneScorer,
    actions: ActionSet | np.ndarray,
    *,
    n_pairs: int = 4000,
    labeler: str | SimulatedLabeler = "noisy",
    rng: np.random.Generator,
    store: PreferenceStore | None = None,
    progress: bool = False,
    pairs: np.ndarray | None = None,
) -> list[Preference]:
    """Answer ``n_pairs`` comparisons among ``actions`` with the simulated labeler.

    Every action is rendered and scored once (:meth:`SceneScorer.oracle_scores`); ``n_pairs``
    distinct unordered pairs are drawn (:func:`sample_pairs`)
    and answered by ``make_labeler(labeler).compare(score_a, score_b, rng)``. Skipped pairs
    (answer NaN, presets with a ``skip_rate``) are dropped, so fewer records than pairs may
    come back. Each record holds both TFs (``TransferFunction.to_dict()`` with the scene's
    histogram ranges), the labeler id ``"sim:<preset>"`` and the observation settings
    (:class:`tfgym.observation.ObservationSettings`) of the scorer's scene.

    Share of ties: with the default ``"noisy"`` preset (a tie below a score difference of
    0.02) on the paper's 100 actions (:func:`paper_actions`) and 4000 pairs, 15-26 % of the
    answers are ties on a phantom (mean 20 % over the 12 train and the 4 held-out phantoms
    with seed 0 for each; 17.6 % for ``tfgym collect --scenes train``) and 25 % on headsq;
    the paper's humans gave 613 ties of 4000 (15 %). About 93 % of the ties are pairs of
    two expert or shifted actions, whose oracle scores lie within a few hundredths of each
    other. A band of 0.01 would give 14 %; ``"indecisive"`` (0.1) gives 31 %.

    Args:
        scorer: the scene's batch scorer (its oracle scores answer the pairs).
        actions: an :class:`ActionSet` or a ``(n_actions, 2 * n_vertices)`` array.
        n_pairs: comparisons to answer.
        labeler: a preset name of :data:`tfgym.oracle.LABELER_PRESETS` or a labeler.
        rng: the only source of randomness (pairs and answers).
        store: when given, the records are added in one transaction.
        progress: show a progress bar while scoring.
        pairs: the pairs to answer, int ``(k, 2)`` indices into ``actions`` (e.g. chosen by
            a reward ensemble's disagreement); None: ``n_pairs`` drawn by :func:`sample_pairs`.

    Returns:
        The records in pair order (with their store ids when a store is given).

    Raises:
        ValueError: unknown preset, more pairs than distinct pairs of the actions, or given
            pairs that are malformed or out of range.
    """
    lab = make_labeler(labeler)
    who = labeler_id(lab)
    acts = actions.actions if isinstance(actions, ActionSet) else np.asarray(actions, np.float32)
    if acts.ndim != 2:
        raise ValueError(f"actions must be (n_actions, dim), got shape {acts.shape}")
    if pairs is None:
        pairs = sample_pairs(len(acts), n_pairs, rng)
    else:
        pairs = check_pairs(pairs, len(acts))
    scores = scorer.oracle_scores(acts, chunk=64, progress=progress)
    s = scorer.settings
    ranges = scorer.scene.ranges
    tf_dicts = [
        TransferFunction.from_action(
            a, opacity=s.opacity, color_scheme=s.color_scheme, ranges=ranges
        ).to_dict()
        for a in acts
    ]
    observation = ObservationSettings.from_scene(scorer.scene, n_vertices=s.n_vertices)
    mu = lab.compare(scores[pairs[:, 0]], scores[pairs[:, 1]], rng)
    prefs = [
        Preference(
            scene=scorer.name,
            action_a=tuple(float(x) for x in acts[a]),
            action_b=tuple(float(x) for x in acts[b]),
            mu=float(m),
            labeler=who,
            tf_a=tf_dicts[a],
            tf_b=tf_dicts[b],
            observation=observation,
        )
        for (a, b), m in zip(pairs, mu, strict=True)
        if not np.isnan(m)
    ]
    if store is not None:
        ids = store.add_many(prefs)
        prefs = [replace(p, id=i) for p, i in zip(prefs, ids, strict=True)]
    return prefs


def collect_multi(
    scenes: Sequence[str],
    config: CollectConfig | None = None,
    *,
    settings: ScoringSettings | None = None,
    store: PreferenceStore | None = None,
    progress: bool = False,
) -> list[Preference]:
    """:func:`paper_actions` and :func:`collect_preferences` for each of several scenes.

    Each scene gets its own action set; with a store, each scene's records are one
    transaction (an interrupted run keeps the scenes it finished). The random generator is
    ``np.random.default_rng(config.seed)``, shared by the scenes in order.

    Args:
        scenes: scene names or paths (e.g. ``tfgym.scene.SCENE_SETS["train"]``).
        config: the protocol (default :class:`CollectConfig`).
        settings: observation and rendering settings (default :class:`ScoringSettings`).
        store: optional store to write into.
        progress: show a progress bar over the scenes.

    Returns:
        All records, scene after scene.
    """
    from tqdm.auto import tqdm

    config = config or CollectConfig()
    if config.labeler == HUMAN:
        raise ValueError(
            f"labeler {HUMAN!r} is a person: queue the comparisons with "
            "tfgym.labeling.items.enqueue_multi, nothing answers them here"
        )
    settings = settings or ScoringSettings()
    rng = np.random.default_rng(config.seed)
    out: list[Preference] = []
    for scene in tqdm(list(scenes), desc="collect", unit="scene", disable=not progress):
        scorer = SceneScorer(scene, settings)
        actions = paper_actions(scorer, rng, **config.action_kwargs())
        out.extend(
            collect_preferences(
                scorer,
                actions,
                n_pairs=config.pairs,
                labeler=config.labeler,
                rng=rng,
                store=store,
            )
        )
    return out
