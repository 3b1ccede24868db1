"""Preference collection with the simulated labeler: the paper's protocol on any scene.

Melenberg et al. (MIDL 2025) collected 4000 human comparisons of 100 polygon actions on one
CBCT head: 10 "expert" TFs made by hand, 40 small random shifts of their vertices and 50
uniformly random polygons. Here the oracle stands in for the human:

* :func:`paper_actions` builds the 100 actions of a scene. The experts are found by a small
  cross-entropy search on the oracle score started at the oracle's hand-made TF
  (:func:`tfgym.oracle.reference_action`, built from the scene's tissue intensity ranges); the
  best-scoring distinct polygons of the search (the hand-made one included) are the experts;
* :func:`collect_preferences` scores every action once with the env's batched
  ``evaluate`` and answers ``n_pairs`` distinct pairs with a :class:`tfgym.oracle.SimulatedLabeler`
  preset, as :class:`tfgym.preferences.Preference` records (labeler ``"sim:<preset>"``);
* :func:`collect_multi` does both for several scenes (e.g. the 12 train phantoms);
* ``tfgym collect`` (:func:`add_collect_command`) runs it from the command line into a
  :class:`tfgym.preferences.PreferenceStore`.

Example:
    >>> import gymnasium as gym
    >>> env = gym.make("tfgym:TransferFunction-v0", scenes="headsq", image_size=32,
    ...                working_size=32)
    >>> rng = np.random.default_rng(0)
    >>> actions = paper_actions(env, "headsq", rng, expert_budget=64)
    >>> actions.actions.shape, actions.kinds.count("expert"), actions.kinds.count("random")
    ((100, 8), 10, 50)
    >>> prefs = collect_preferences(env, "headsq", actions, n_pairs=200, rng=rng)
    >>> len(prefs), prefs[0].labeler, sorted({p.mu for p in prefs})
    (200, 'sim:noisy', [0.0, 0.5, 1.0])
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tfgym.oracle import LABELER_PRESETS, SimulatedLabeler, make_labeler, reference_action
from tfgym.preferences import Preference, PreferenceStore

__all__ = [
    "ActionSet",
    "add_collect_command",
    "collect_multi",
    "collect_preferences",
    "labeler_id",
    "paper_actions",
    "sample_pairs",
]

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


def _reference(scene: Any, target: Any, n_vertices: int) -> np.ndarray | None:
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
    env: Any,
    scene: str,
    rng: np.random.Generator,
    n: int,
    *,
    budget: int,
    min_distance: float,
    min_quality: float = 0.85,
    population: int = 32,
) -> np.ndarray:
    """``n`` good, mutually distinct actions from a small CEM on the oracle score.

    The search starts at the hand-made reference TF (or the centre of the box without one);
    every action it scores, the reference included, is a candidate, and those scoring at least
    ``min_quality`` times the best are good. Good candidates are taken in order of score,
    skipping any closer than ``min_distance`` (max-norm over the coordinates) to one already
    taken; if that leaves fewer than ``n``, the distance is halved and the pass repeated.
    """
    base = env.unwrapped
    dim = 2 * base.n_vertices
    ref = _reference(base.renderer_for(scene).scene, base.target, base.n_vertices)
    mean = np.zeros(dim) if ref is None else ref.astype(np.float64)
    std = np.full(dim, 0.6 if ref is None else 0.25)
    pool: list[np.ndarray] = [] if ref is None else [ref[None].astype(np.float64)]
    pool_scores = [] if ref is None else [base.evaluate(ref[None], scene=scene)[2]["oracle_score"]]
    while sum(len(p) for p in pool) < max(budget, 2 * n):
        acts = np.clip(mean + std * rng.standard_normal((population, dim)), -1.0, 1.0)
        scores = base.evaluate(acts, scene=scene)[2]["oracle_score"]
        pool.append(acts)
        pool_scores.append(scores)
        elite = acts[np.argsort(-scores, kind="stable")[: max(2, population // 5)]]
        mean = 0.2 * mean + 0.8 * elite.mean(axis=0)
        std = np.maximum(0.2 * std + 0.8 * elite.std(axis=0), 0.03)
    candidates, scores = np.concatenate(pool), np.concatenate(pool_scores)
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
    env: Any,
    scene: str,
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
        env: a ``TransferFunction-v0`` env (wrapped or not); its oracle scores the search.
        scene: scene name or path.
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
    dim = 2 * env.unwrapped.n_vertices
    experts = _expert_actions(
        env, scene, rng, n_expert, budget=expert_budget, min_distance=expert_spread
    )
    parents = experts[np.arange(n_shift) % n_expert]
    shifts = np.clip(parents + shift_scale * rng.standard_normal(parents.shape), -1.0, 1.0)
    randoms = rng.uniform(-1.0, 1.0, size=(n_random, dim))
    return ActionSet(
        np.concatenate([experts, shifts, randoms]).astype(np.float32),
        ("expert",) * n_expert + ("shift",) * n_shift + ("random",) * n_random,
    )


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


def labeler_id(labeler: str | SimulatedLabeler) -> str:
    """``"sim:<preset>"`` for a preset (name or equal instance), else ``"sim:custom(...)"``."""
    lab = make_labeler(labeler)
    for name, preset in LABELER_PRESETS.items():
        if preset == lab:
            return f"sim:{name}"
    return (
        f"sim:custom(temperature={lab.temperature},equal_band={lab.equal_band},"
        f"mistake_rate={lab.mistake_rate},skip_rate={lab.skip_rate})"
    )


def _score(env: Any, scene: str, actions: np.ndarray, progress: bool) -> tuple[np.ndarray, list]:
    """Oracle scores and TFs of all actions, in chunks (one render call each)."""
    from tqdm.auto import tqdm

    base = env.unwrapped
    ranges = base.renderer_for(scene).scene.ranges
    scores: list[np.ndarray] = []
    tfs: list[dict[str, Any]] = []
    chunks = range(0, len(actions), 64)
    for start in tqdm(chunks, desc=f"scoring {scene}", disable=not progress, leave=False):
        _, _, info = base.evaluate(actions[start : start + 64], scene=scene)
        scores.append(info["oracle_score"])
        tfs.extend(replace(tf, ranges=ranges) for tf in info["tf"])
    return np.concatenate(scores), tfs


def collect_preferences(
    env: Any,
    scene: str,
    actions: ActionSet | np.ndarray,
    *,
    n_pairs: int = 4000,
    labeler: str | SimulatedLabeler = "noisy",
    rng: np.random.Generator,
    store: PreferenceStore | None = None,
    progress: bool = False,
) -> list[Preference]:
    """Answer ``n_pairs`` comparisons among ``actions`` with the simulated labeler.

    Every action is rendered and scored once (``env.unwrapped.evaluate``, info
    ``oracle_score``); ``n_pairs`` distinct unordered pairs are drawn (:func:`sample_pairs`)
    and answered by ``make_labeler(labeler).compare(score_a, score_b, rng)``. Skipped pairs
    (answer NaN, presets with a ``skip_rate``) are dropped, so fewer records than pairs may
    come back. Each record holds both TFs (``TransferFunction.to_dict()`` with the scene's
    histogram ranges) and the labeler id ``"sim:<preset>"``.

    Share of ties: with the default ``"noisy"`` preset (a tie below a score difference of
    0.02) on the paper's 100 actions (:func:`paper_actions`) and 4000 pairs, 15-26 % of the
    answers are ties on a phantom (mean 20 % over the 12 train and the 4 held-out phantoms
    with seed 0 for each; 17.6 % for ``tfgym collect --scenes train``) and 25 % on headsq;
    the paper's humans gave 613 ties of 4000 (15 %). About 93 % of the ties are pairs of
    two expert or shifted actions, whose oracle scores lie within a few hundredths of each
    other. A band of 0.01 would give 14 %; ``"indecisive"`` (0.1) gives 31 %.

    Args:
        env: a ``TransferFunction-v0`` env (wrapped or not).
        scene: scene name or path.
        actions: an :class:`ActionSet` or a ``(n_actions, 2 * n_vertices)`` array.
        n_pairs: comparisons to answer.
        labeler: a preset name of :data:`tfgym.oracle.LABELER_PRESETS` or a labeler.
        rng: the only source of randomness (pairs and answers).
        store: when given, the records are added in one transaction.
        progress: show a progress bar while scoring.

    Returns:
        The records in pair order (with their store ids when a store is given).

    Raises:
        ValueError: unknown preset, or more pairs than distinct pairs of the actions.
    """
    lab = make_labeler(labeler)
    who = labeler_id(lab)
    acts = actions.actions if isinstance(actions, ActionSet) else np.asarray(actions, np.float32)
    if acts.ndim != 2:
        raise ValueError(f"actions must be (n_actions, dim), got shape {acts.shape}")
    pairs = sample_pairs(len(acts), n_pairs, rng)
    scores, tfs = _score(env, scene, acts, progress)
    tf_dicts = [tf.to_dict() for tf in tfs]
    mu = lab.compare(scores[pairs[:, 0]], scores[pairs[:, 1]], rng)
    prefs = [
        Preference(
            scene=scene,
            action_a=tuple(float(x) for x in acts[a]),
            action_b=tuple(float(x) for x in acts[b]),
            mu=float(m),
            labeler=who,
            tf_a=tf_dicts[a],
            tf_b=tf_dicts[b],
        )
        for (a, b), m in zip(pairs, mu, strict=True)
        if not np.isnan(m)
    ]
    if store is not None:
        ids = store.add_many(prefs)
        prefs = [replace(p, id=i) for p, i in zip(prefs, ids, strict=True)]
    return prefs


def collect_multi(
    env: Any,
    scenes: Sequence[str],
    rng: np.random.Generator,
    *,
    pairs_per_scene: int,
    labeler: str | SimulatedLabeler = "noisy",
    store: PreferenceStore | None = None,
    progress: bool = False,
    **action_kwargs: Any,
) -> list[Preference]:
    """:func:`paper_actions` and :func:`collect_preferences` for each of several scenes.

    Each scene gets its own action set; with a store, each scene's records are one
    transaction (an interrupted run keeps the scenes it finished).

    Args:
        env: a ``TransferFunction-v0`` env (wrapped or not).
        scenes: scene names or paths (e.g. ``tfgym.scene.SCENE_SETS["train"]``).
        rng: the only source of randomness.
        pairs_per_scene: comparisons per scene.
        labeler: a preset name or a labeler.
        store: optional store to write into.
        progress: show a progress bar over the scenes.
        **action_kwargs: passed to :func:`paper_actions`.

    Returns:
        All records, scene after scene.
    """
    from tqdm.auto import tqdm

    make_labeler(labeler)  # fail before any work
    out: list[Preference] = []
    for scene in tqdm(list(scenes), desc="collect", unit="scene", disable=not progress):
        actions = paper_actions(env, scene, rng, **action_kwargs)
        out.extend(
            collect_preferences(
                env,
                scene,
                actions,
                n_pairs=pairs_per_scene,
                labeler=labeler,
                rng=rng,
                store=store,
            )
        )
    return out


def _cmd_collect(args: argparse.Namespace) -> int:
    import time

    import gymnasium as gym

    from tfgym.scene import resolve_scenes

    scenes = resolve_scenes(args.scene if args.scene else args.scenes)
    make_labeler(args.labeler)
    if args.image_size < 8 or args.working_size < 8:
        raise ValueError("--image-size and --working-size must be at least 8")
    if args.pairs < 1:
        raise ValueError(f"--pairs must be at least 1, got {args.pairs}")
    n_actions = args.n_expert + args.n_shift + args.n_random
    if args.pairs > n_actions * (n_actions - 1) // 2:
        raise ValueError(
            f"--pairs {args.pairs} exceeds the {n_actions * (n_actions - 1) // 2} distinct pairs "
            f"of {n_actions} actions"
        )
    env = gym.make(
        "tfgym:TransferFunction-v0",
        scenes=list(scenes),
        image_size=args.image_size,
        working_size=args.working_size,
    )
    start = time.perf_counter()
    with PreferenceStore(args.db) as store:
        before = len(store)
        prefs = collect_multi(
            env,
            scenes,
            np.random.default_rng(args.seed),
            pairs_per_scene=args.pairs,
            labeler=args.labeler,
            store=store,
            progress=not args.no_progress,
            n_expert=args.n_expert,
            n_shift=args.n_shift,
            n_random=args.n_random,
        )
        total = len(store)
        exported = store.export_jsonl(args.jsonl) if args.jsonl else None
    env.close()
    asked = args.pairs * len(scenes)
    ties = sum(p.mu == 0.5 for p in prefs)
    print(
        f"stored {len(prefs)} preferences for {len(scenes)} scene(s) in {args.db} "
        f"({before} before, {total} now) in {time.perf_counter() - start:.1f} s"
    )
    print(
        f"ties {ties} ({ties / max(len(prefs), 1):.1%} of stored), skipped "
        f"{asked - len(prefs)} ({(asked - len(prefs)) / asked:.1%} of {asked} pairs), "
        f"labeler {labeler_id(args.labeler)}"
    )
    if exported is not None:
        print(f"exported {exported} records to {args.jsonl}")
    return 0


def add_collect_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``tfgym collect`` on an argparse subparsers object.

    Args:
        subparsers: the result of ``ArgumentParser.add_subparsers()``.

    Returns:
        The ``collect`` parser (its ``func`` default runs the command and returns 0; user
        errors raise ``ValueError``, which ``tfgym``'s main turns into exit status 2).
    """
    p = subparsers.add_parser(
        "collect",
        help="collect simulated preferences with the paper's protocol into a store",
        description="For each scene: build the paper's 100 actions (10 expert TFs found by "
        "search on the oracle score, 40 shifts of their vertices, 50 random), answer --pairs "
        "comparisons among them with a simulated labeler and store them in an SQLite "
        "preference store.",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--scene", action="append", help="a scene name or scan path (repeat for several)"
    )
    which.add_argument("--scenes", help="a scene set: train, heldout, phantoms, real, all")
    p.add_argument("--pairs", type=int, default=4000, help="comparisons per scene")
    p.add_argument(
        "--labeler", default="noisy", help=f"labeler preset: {', '.join(LABELER_PRESETS)}"
    )
    p.add_argument("--db", default="prefs.sqlite", help="preference store (SQLite file)")
    p.add_argument("--jsonl", help="also export the whole store to this JSON Lines file")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--image-size", type=int, default=128, help="rendering side in pixels")
    p.add_argument("--working-size", type=int, default=64, help="voxels along the longest side")
    p.add_argument("--n-expert", type=int, default=10, help="expert actions per scene")
    p.add_argument("--n-shift", type=int, default=40, help="shifted expert actions per scene")
    p.add_argument("--n-random", type=int, default=50, help="uniformly random actions per scene")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=_cmd_collect)
    return p
