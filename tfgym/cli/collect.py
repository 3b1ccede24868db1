"""``tfgym collect``: the paper's protocol on scenes, answered by a simulated labeler or queued.

With a simulated labeler preset the answers go into a preference store; with ``--labeler
human`` the comparisons are rendered at display quality and queued for the labeling server.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from tfgym.cli.common import CliError, add_command
from tfgym.cli.options import add_config_options
from tfgym.collect import HUMAN, CollectConfig
from tfgym.labeling.items import QueueConfig
from tfgym.scoring import ScoringSettings

__all__ = ["register"]

COLLECT_SETTINGS = ("image_size", "working_size", "histogram_bins", "n_vertices", "target")


def _collect(args: argparse.Namespace) -> int:
    from tfgym.collect import collect_multi
    from tfgym.oracle import labeler_id
    from tfgym.preferences import PreferenceStore
    from tfgym.scene import resolve_scenes

    command = args.command_spec
    scenes = resolve_scenes(args.scene if args.scene else args.scenes)
    config = CollectConfig(**command.values(args, "collect"))
    settings = ScoringSettings(**command.values(args, "settings"))
    if config.labeler == HUMAN:
        return _enqueue(args, scenes, config, settings)
    start = time.perf_counter()
    with PreferenceStore(args.db) as store:
        before = len(store)
        prefs = collect_multi(
            scenes, config, settings=settings, store=store, progress=not args.no_progress
        )
        total = len(store)
        exported = store.export_jsonl(args.jsonl) if args.jsonl else None
    asked = config.pairs * len(scenes)
    ties = sum(p.mu == 0.5 for p in prefs)
    print(
        f"stored {len(prefs)} preferences for {len(scenes)} scene(s) in {args.db} "
        f"({before} before, {total} now) in {time.perf_counter() - start:.1f} s"
    )
    print(
        f"ties {ties} ({ties / max(len(prefs), 1):.1%} of stored), skipped "
        f"{asked - len(prefs)} ({(asked - len(prefs)) / asked:.1%} of {asked} pairs), "
        f"labeler {labeler_id(config.labeler)}, working size {settings.working_size}"
    )
    if exported is not None:
        print(f"exported {exported} records to {args.jsonl}")
    return 0


def _enqueue(
    args: argparse.Namespace,
    scenes: tuple[str, ...],
    config: CollectConfig,
    settings: ScoringSettings,
) -> int:
    """``--labeler human``: queue the comparisons for the labeling server."""
    from tfgym.labeling.items import enqueue_multi
    from tfgym.preferences.queue import LabelQueue

    if args.jsonl:
        raise CliError(
            f"--jsonl exports answers, and --labeler {HUMAN} answers none yet: after labeling, "
            f"run tfgym prefs export --db {args.db} --out FILE.jsonl"
        )
    queue_config = QueueConfig(**args.command_spec.values(args, "queue"))
    start = time.perf_counter()
    with LabelQueue(args.db) as queue:
        queued = enqueue_multi(
            scenes,
            config,
            queue=queue,
            settings=settings,
            queue_config=queue_config,
            progress=not args.no_progress,
        )
        counts = queue.counts()
    total = sum(len(ids) for ids in queued.values())
    print(
        f"queued {total} comparisons for people ({config.pairs} per scene, {len(queued)} "
        f"scene(s), {config.n_actions} actions each rendered once at {queue_config.display_size} "
        f"voxels from {', '.join(queue_config.views)}) in {args.db} in "
        f"{time.perf_counter() - start:.1f} s; the queue has {counts['waiting']} waiting, "
        f"{counts['leased']} leased, {counts['answered']} answered"
    )
    print(f"start the label server:  tfgym label --db {args.db}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``collect``."""
    p, command = add_command(
        subparsers,
        "collect",
        _collect,
        help="collect simulated preferences with the paper's protocol into a store, or queue "
        "them for people",
        description="For each scene: build the paper's 100 actions (10 expert TFs found by "
        "search on the oracle score, 40 shifts of their vertices, 50 random), answer --pairs "
        "comparisons among them with a simulated labeler and store them, with the exact "
        "observation settings, in a preference store (an SQLite file or a PostgreSQL URL). "
        f"With --labeler {HUMAN}, answer none: render each action once at display quality and "
        "queue the comparisons in the store's label queue for the labeling server "
        "(tfgym label --db ...).",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--scene", action="append", help="a scene name or scan path (repeat for several)"
    )
    which.add_argument("--scenes", help="a scene set: train, heldout, phantoms, real, all")
    p.add_argument(
        "--db",
        default="prefs.sqlite",
        help="preference store: an SQLite file or a postgresql:// URL (default: %(default)s)",
    )
    p.add_argument("--jsonl", help="also export the whole store to this JSON Lines file")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    command.add_group("collect", add_config_options(p, CollectConfig))
    command.add_group("settings", add_config_options(p, ScoringSettings, include=COLLECT_SETTINGS))
    human = p.add_argument_group(f"--labeler {HUMAN}")
    command.add_group("queue", add_config_options(human, QueueConfig))
