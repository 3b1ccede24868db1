r"""What people compare: display renderings of actions as PNG items, and comparison requests.

A person judges a transfer function by its rendering at display quality
(:mod:`tfgym.display`), not by the fast training rendering the oracle scores. This module turns
actions of one scene into :class:`~tfgym.preferences.queue.Item` values for the label queue:

* :func:`render_items` renders each action once from every view (:func:`tfgym.display.
  render_display`, display quality by default) and encodes each image as a compact PNG
  (:func:`encode_png`), with the action's TF (``TransferFunction.to_dict()``) and an optional key;
* :func:`comparison_requests` turns rows of item indices (pairs, or 4-item rankings) into
  :class:`~tfgym.preferences.queue.ComparisonRequest` values that share those items, so the
  queue stores each rendering once however many comparisons show it (content addressing);
* :func:`enqueue_preferences` and :func:`enqueue_multi` feed the queue the paper's protocol
  (``tfgym collect --labeler human``): the actions and pairs of :mod:`tfgym.collect`, rendered
  once per action (options: :class:`QueueConfig`), queued for people instead of answered.

The blocking human reward backend builds its requests here too.

Example:
    >>> import numpy as np
    >>> acts = np.array([[0.2, -1, 1, -1, 1, 1, 0.2, 1], [-0.5, -1, 1, -1, 1, 1, -0.5, 1]])
    >>> items = render_items("headsq", acts, working_size=16, keys=["a", "b"])
    >>> [sorted(item.views) for item in items], items[1].key, items[0].views["front"][:4]
    ([['front', 'side'], ['front', 'side']], 'b', b'\x89PNG')
    >>> (request,) = comparison_requests("headsq", items, [(1, 0)], source="doc")
    >>> [item.key for item in request.items], request.source
    (['b', 'a'], 'doc')
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tfgym.action_sets import ActionSet, paper_actions
from tfgym.collect import CollectConfig, check_pairs, sample_pairs
from tfgym.display import (
    DISPLAY_VIEWS,
    DISPLAY_WORKING_SIZE,
    check_views,
    display_scene,
    render_display,
)
from tfgym.observation import ObservationSettings
from tfgym.preferences.queue import ComparisonRequest, Item, LabelQueue
from tfgym.scene import Scene
from tfgym.scoring import SceneScorer, ScoringSettings
from tfgym.transfer_function import TransferFunction, validate_actions

__all__ = [
    "ITEM_COUNTS",
    "QueueConfig",
    "comparison_requests",
    "encode_png",
    "enqueue_multi",
    "enqueue_preferences",
    "render_items",
]

ITEM_COUNTS = (2, 4)
"""Items per comparison: a pair, or a ranking of four."""


def encode_png(image: np.ndarray) -> bytes:
    r"""A compact PNG of an RGB image.

    Args:
        image: uint8 ``(H, W, 3)``.

    Returns:
        The PNG file's bytes: zlib level 6 (about 80 kB for a 384-pixel display rendering,
        2 % above level 9 in half its time); the same pixels give the same bytes, so a
        rendering always has the same content address.

    Raises:
        ValueError: not a uint8 ``(H, W, 3)`` array.

    Example:
        >>> encode_png(np.zeros((8, 8, 3), np.uint8))[:8]
        b'\x89PNG\r\n\x1a\n'
    """
    from PIL import Image

    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3), got {arr.dtype} {tuple(arr.shape)}")
    buffer = io.BytesIO()
    Image.fromarray(arr).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def render_items(
    scene: str | Path | Scene,
    actions: np.ndarray | Sequence[Sequence[float]],
    *,
    settings: ScoringSettings | None = None,
    views: Sequence[str] = DISPLAY_VIEWS,
    working_size: int | None = None,
    keys: Sequence[str | None] | None = None,
) -> list[Item]:
    """Render actions of one scene at display quality as label-queue items.

    Every action is rendered once from each view (one :func:`~tfgym.display.render_display`
    call for all of them) and each image encoded as a PNG (:func:`encode_png`).

    Args:
        scene: a scene name, scan path or :class:`~tfgym.scene.Scene` (e.g. a scorer's).
        actions: ``(n, 2 * n_vertices)`` in [-1, 1] (values outside are clipped).
        settings: the settings the actions were scored with (default
            :class:`~tfgym.scoring.ScoringSettings`): vertex count, histogram bins, shading,
            opacity and colour scheme of the TFs.
        views: camera presets (:data:`tfgym.views.VIEWS`), one PNG each.
        working_size: voxels along the display volume's longest side (default
            :data:`tfgym.display.DISPLAY_WORKING_SIZE`; small values for tests).
        keys: one caller's id per action (e.g. its index in an action set), or None.

    Returns:
        One :class:`~tfgym.preferences.queue.Item` per action, in order: the action as a tuple
        of floats (clipped to [-1, 1]), ``views`` name -> PNG bytes, the TF's ``to_dict()``
        (with the scene's histogram ranges) and the key.

    Raises:
        ValueError: no actions, malformed actions, an unknown view or scene, or a number of
            keys that differs from the number of actions.
    """
    s = settings or ScoringSettings()
    acts = validate_actions(np.asarray(actions, dtype=np.float32), s.n_vertices)
    if len(acts) == 0:
        raise ValueError("no actions to render")
    if keys is not None and len(keys) != len(acts):
        raise ValueError(f"{len(keys)} keys for {len(acts)} actions")
    size = DISPLAY_WORKING_SIZE if working_size is None else int(working_size)
    shown = display_scene(scene, working_size=size, histogram_bins=s.histogram_bins)
    images = render_display(shown, acts, views=views, working_size=size, settings=s)
    names = tuple(views) if not isinstance(views, str) else (views,)
    items = []
    for k, action in enumerate(acts):
        tf = TransferFunction.from_action(
            action, opacity=s.opacity, color_scheme=s.color_scheme, ranges=shown.ranges
        )
        items.append(
            Item(
                action=tuple(float(x) for x in action),
                views={view: encode_png(images[k, v]) for v, view in enumerate(names)},
                tf=tf.to_dict(),
                key=None if keys is None else keys[k],
            )
        )
    return items


def comparison_requests(
    scene: str,
    items: Sequence[Item],
    rows: np.ndarray | Sequence[Sequence[int]],
    *,
    observation: ObservationSettings | None = None,
    priority: float = 0.0,
    overlap: int | None = None,
    source: str = "",
) -> list[ComparisonRequest]:
    """Comparison requests of the given items: one per row of item indices.

    Args:
        scene: the scene's name (what the labeling page shows and the answers record).
        items: the items of one scene (from :func:`render_items`); requests share them.
        rows: int ``(k, 2)`` (pairs) or ``(k, 4)`` (rankings), indices into ``items``; an
            index may not repeat within a row.
        observation: the observation settings the answers are recorded with.
        priority: higher is served first.
        overlap: distinct labelers who answer each request (None: the queue's default).
        source: who queued them (``"collect"``, ``"human:blocking"``, ...).

    Returns:
        The requests, in row order.

    Raises:
        ValueError: rows that are not ``(k, 2)`` or ``(k, 4)`` integers, out of range or with a
            repeated index.
    """
    idx = np.asarray(rows)
    if idx.ndim != 2 or idx.shape[1] not in ITEM_COUNTS or len(idx) == 0:
        raise ValueError(
            f"rows must be (k, 2) pairs or (k, 4) rankings of item indices, got shape {idx.shape}"
        )
    if not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"rows must be integer indices, got dtype {idx.dtype}")
    if idx.min() < 0 or idx.max() >= len(items):
        raise ValueError(f"rows index items out of range: {len(items)} items")
    if any(len(set(row)) != len(row) for row in idx.tolist()):
        raise ValueError("a row repeats an item index; a comparison needs distinct items")
    return [
        ComparisonRequest(
            scene=scene,
            items=tuple(items[i] for i in row),
            observation=observation,
            priority=float(priority),
            overlap=overlap,
            source=source,
        )
        for row in idx.tolist()
    ]


@dataclass(frozen=True)
class QueueConfig:
    """How comparisons for people are rendered and queued (``tfgym collect --labeler human``)."""

    display_size: int = field(
        default=DISPLAY_WORKING_SIZE,
        metadata={"help": "voxels along the longest side of the display renderings"},
    )
    views: tuple[str, ...] = field(
        default=DISPLAY_VIEWS, metadata={"help": "camera views shown for each TF"}
    )
    overlap: int | None = field(
        default=None,
        metadata={
            "help": "distinct labelers who answer each comparison",
            "default_help": "the queue's, 1",
        },
    )
    priority: float = field(
        default=0.0, metadata={"help": "queue priority of the comparisons (higher: served first)"}
    )

    def __post_init__(self) -> None:
        """Validate (fail before any rendering)."""
        if int(self.display_size) < 8:
            raise ValueError(f"display_size must be at least 8, got {self.display_size}")
        object.__setattr__(self, "views", check_views(self.views))
        if self.overlap is not None and int(self.overlap) < 1:
            raise ValueError(f"overlap must be at least 1, got {self.overlap}")
        if not np.isfinite(self.priority):
            raise ValueError(f"priority must be finite, got {self.priority}")


def enqueue_preferences(
    scorer: SceneScorer,
    actions: ActionSet | np.ndarray,
    *,
    queue: LabelQueue,
    n_pairs: int = 4000,
    rng: np.random.Generator,
    pairs: np.ndarray | None = None,
    config: QueueConfig | None = None,
    progress: bool = False,
) -> list[int]:
    """Queue ``n_pairs`` comparisons among ``actions`` for people to answer.

    The pairs are those :func:`tfgym.collect.collect_preferences` would answer
    (:func:`~tfgym.collect.sample_pairs` with the same ``rng``). Every action in a pair is
    rendered once at display quality (:func:`render_items`, ``config.display_size`` voxels,
    ``config.views``)
    and keyed ``"<i>:<kind>"`` (its index and, for an action set, its kind); the
    requests carry the scorer's observation settings, so the answers are recorded with them,
    and the source ``"collect"``.

    Args:
        scorer: the scene's scorer (its scene and settings: vertex count, histogram bins, TF
            look); nothing is scored.
        actions: an :class:`~tfgym.action_sets.ActionSet` or a ``(n_actions, 2 *
            n_vertices)`` array.
        queue: the label queue to fill.
        n_pairs: comparisons to queue.
        rng: the only source of randomness (the pairs).
        pairs: the pairs, int ``(k, 2)`` indices into ``actions``; None: drawn.
        config: display and queue options (default :class:`QueueConfig`).
        progress: show a progress bar while rendering.

    Returns:
        The queued comparisons' ids, in pair order.

    Raises:
        ValueError: more pairs than distinct pairs of the actions, or malformed pairs.
    """
    config = config or QueueConfig()
    kinds = actions.kinds if isinstance(actions, ActionSet) else None
    acts = actions.actions if isinstance(actions, ActionSet) else np.asarray(actions, np.float32)
    if acts.ndim != 2:
        raise ValueError(f"actions must be (n_actions, dim), got shape {acts.shape}")
    pairs = (
        sample_pairs(len(acts), n_pairs, rng) if pairs is None else check_pairs(pairs, len(acts))
    )
    used = np.unique(pairs)
    keys = [f"{i}:{kinds[i]}" if kinds is not None else str(i) for i in used]
    chunk = 16  # renderings in memory at a time, and progress steps
    starts = range(0, len(used), chunk)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"render {scorer.name}", unit="chunk", leave=False)
    items = []
    for start in starts:
        items += render_items(
            scorer.scene,
            acts[used[start : start + chunk]],
            settings=scorer.settings,
            views=config.views,
            working_size=config.display_size,
            keys=keys[start : start + chunk],
        )
    position = np.full(len(acts), -1, dtype=np.int64)
    position[used] = np.arange(len(used))
    requests = comparison_requests(
        scorer.name,
        items,
        position[pairs],
        observation=ObservationSettings.from_scene(
            scorer.scene, n_vertices=scorer.settings.n_vertices
        ),
        priority=config.priority,
        overlap=config.overlap,
        source="collect",
    )
    return list(queue.enqueue(requests))


def enqueue_multi(
    scenes: Sequence[str],
    config: CollectConfig | None = None,
    *,
    queue: LabelQueue,
    settings: ScoringSettings | None = None,
    queue_config: QueueConfig | None = None,
    progress: bool = False,
) -> dict[str, list[int]]:
    """:func:`~tfgym.collect.paper_actions` and :func:`enqueue_preferences` for each scene.

    The same actions and pairs as :func:`tfgym.collect.collect_multi` draws for the first
    scene with the same seed (later scenes differ: a simulated labeler's answers draw from the
    generator too). Each scene's comparisons are queued in one call (one transaction).

    Args:
        scenes: scene names or paths.
        config: the protocol (default :class:`~tfgym.collect.CollectConfig`; its ``labeler``
            is ignored).
        queue: the label queue to fill.
        settings: observation and rendering settings (default
            :class:`~tfgym.scoring.ScoringSettings`).
        queue_config: display and queue options (default :class:`QueueConfig`).
        progress: show progress bars.

    Returns:
        Scene name -> the queued comparisons' ids.
    """
    from tqdm.auto import tqdm

    config = config or CollectConfig()
    settings = settings or ScoringSettings()
    rng = np.random.default_rng(config.seed)
    out: dict[str, list[int]] = {}
    for scene in tqdm(list(scenes), desc="enqueue", unit="scene", disable=not progress):
        scorer = SceneScorer(scene, settings)
        actions = paper_actions(scorer, rng, **config.action_kwargs())
        out[scorer.name] = enqueue_preferences(
            scorer,
            actions,
            queue=queue,
            n_pairs=config.pairs,
            rng=rng,
            config=queue_config,
            progress=progress,
        )
    return out
