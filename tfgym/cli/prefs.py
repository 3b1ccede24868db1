"""``tfgym prefs export`` and ``tfgym label-sim``: queue data out, simulated labelers in.

* ``tfgym prefs export --db URL --out FILE.jsonl``: every comparison of the label queue with
  its answers (labeler, time, lead time) and the queue's stats, one JSON object per line
  (:meth:`tfgym.preferences.queue.LabelQueue.export_jsonl`);
* ``tfgym label-sim --url URL --labelers 8``: simulated labelers that answer a running labeling
  server through its HTTP API with the oracle (:func:`tfgym.labeling.client.simulate_labelers`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tfgym.cli.common import CliError, add_command
from tfgym.cli.options import add_config_options
from tfgym.oracle import LABELER_PRESETS
from tfgym.scoring import ScoringSettings

__all__ = ["register"]

SIM_SETTINGS = ("working_size", "image_size", "histogram_bins", "target")


def _export(args: argparse.Namespace) -> int:
    from tfgym.preferences.queue import LabelQueue

    with LabelQueue(args.db) as queue:
        n = queue.export_jsonl(args.out)
        counts = queue.counts()
        answers = len(queue.answers())
    print(
        f"exported {n} comparisons with {answers} answers and the stats to {args.out}; the "
        f"queue has {counts['waiting']} waiting, {counts['leased']} leased, "
        f"{counts['answered']} answered"
    )
    return 0


def _print_report(report: Any) -> None:
    figures = report.summary()
    print(f"{'labeler':<12} {'answers':>8} {'errors':>8}  stopped")
    for r in report.labelers:
        print(f"{r.labeler:<12} {len(r.acks):>8} {sum(r.errors.values()):>8}  {r.stopped}")
    print(
        f"{figures['answers']} answers in {figures['elapsed_s']:.1f} s "
        f"({figures['answers_per_s']:.1f}/s); /api/next p50 {figures['next_ms']['p50']:.1f} ms, "
        f"p99 {figures['next_ms']['p99']:.1f} ms; /api/answer p50 "
        f"{figures['answer_ms']['p50']:.1f} ms, p99 {figures['answer_ms']['p99']:.1f} ms"
    )
    if figures["errors"]:
        print(f"errors: {json.dumps(figures['errors'], sort_keys=True)}")


def _label_sim(args: argparse.Namespace) -> int:
    from tfgym.labeling.client import LabelClientError, simulate_labelers

    settings = ScoringSettings(**args.command_spec.values(args, "settings"))
    if not args.url.startswith(("http://", "https://")):
        raise CliError(f"--url must start with http:// or https://, got {args.url!r}")
    try:
        report = simulate_labelers(
            args.url,
            labelers=args.labelers,
            answers_per_labeler=args.answers,
            pace_s=args.pace_s,
            preset=args.preset,
            token=args.token,
            seed=args.seed,
            stop_when_empty=not args.wait,
            settings=settings,
            kinds=tuple(args.kinds),
            idle_s=args.idle_s,
            deadline_s=args.deadline_s,
        )
    except LabelClientError as e:
        raise CliError(str(e)) from e
    _print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report.summary(), indent=2) + "\n")
        print(f"wrote {args.json}")
    unreachable = [r.labeler for r in report.labelers if r.stopped == "unreachable"]
    if unreachable:
        print(
            f"tfgym label-sim: {args.url} unreachable for {len(unreachable)} labeler(s)",
            file=sys.stderr,
        )
        return 1
    return 0


def _register_export(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "prefs",
        help="the preference store and label queue: export",
        description="Work with a preference store and its label queue.",
    )
    actions = p.add_subparsers(dest="prefs_command", required=True, metavar="ACTION")
    e, _ = add_command(
        actions,
        "export",
        _export,
        help="export the label queue: comparisons, answers, stats (JSON Lines)",
        description="Write every comparison of the label queue with its answers (labeler, "
        "time, lead time) and the queue's stats (per-labeler counts and speed, agreement) to a "
        "JSON Lines file, one object per line.",
    )
    e.add_argument(
        "--db", required=True, help="preference store: an SQLite file or a postgresql:// URL"
    )
    e.add_argument("--out", required=True, help="the JSON Lines file to write")


def _register_sim(subparsers: Any) -> None:
    p, command = add_command(
        subparsers,
        "label-sim",
        _label_sim,
        help="simulated labelers answering a labeling server over HTTP",
        description="Start --labelers threads, each a labeler sim-<i> that asks a running "
        "labeling server (tfgym label) for pairs or rankings, scores their TFs with the oracle "
        "and answers as the simulated labeler --preset would, through the HTTP API. For tests, "
        "demos and benchmarks; prints answers, rate and latencies.",
    )
    p.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000")
    p.add_argument("--labelers", type=int, default=8, help="concurrent labelers (default: 8)")
    p.add_argument(
        "--answers", type=int, help="answers per labeler (default: until the queue is empty)"
    )
    p.add_argument(
        "--pace-s", type=float, default=0.0, help="seconds to look before answering (default: 0)"
    )
    p.add_argument(
        "--preset",
        default="noisy",
        choices=tuple(LABELER_PRESETS),
        help="simulated labeler preset (default: %(default)s)",
    )
    p.add_argument("--token", help="the server's access token")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--kinds",
        nargs="+",
        default=["pair", "rank"],
        choices=("pair", "rank"),
        help="kinds of task to answer (default: pair rank)",
    )
    p.add_argument(
        "--wait", action="store_true", help="keep waiting for new work when the queue is empty"
    )
    p.add_argument(
        "--idle-s",
        type=float,
        default=1.0,
        help="stop after the queue has been empty this long (default: 1.0)",
    )
    p.add_argument("--deadline-s", type=float, help="stop after this many seconds")
    p.add_argument("--json", help="also write the report's figures to this JSON file")
    command.add_group("settings", add_config_options(p, ScoringSettings, include=SIM_SETTINGS))


def register(subparsers: Any) -> None:
    """Add ``prefs`` (with ``export``) and ``label-sim``."""
    _register_export(subparsers)
    _register_sim(subparsers)
