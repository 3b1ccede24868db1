"""``tfgym demo``: CEM on a few scenes with figures, TF JSON, a summary and TensorBoard logs."""

from __future__ import annotations

import argparse
from typing import Any

from tfgym.cli.common import add_command
from tfgym.cli.options import add_config_options
from tfgym.demo import DemoConfig
from tfgym.scoring import ScoringSettings

__all__ = ["register"]

DEMO_SETTINGS = ("image_size", "working_size", "target")


def _demo(args: argparse.Namespace) -> int:
    from tfgym.demo import run_demo

    command = args.command_spec
    config = DemoConfig(**command.values(args, "demo"))
    summary = run_demo(config, ScoringSettings(**command.values(args, "settings")))
    width = max(len("scene"), *(len(row["scene"]) for row in summary["scenes"]))
    print(f"\n{'scene':<{width}} {'random':>8} {'reference':>9} {'CEM best':>9} {'evals':>6}")
    for row in summary["scenes"]:
        ref = "-" if row["reference_reward"] is None else f"{row['reference_reward']:.3f}"
        print(
            f"{row['scene']:<{width}} {row['random_reward']:>8.3f} {ref:>9} "
            f"{row['best_reward']:>9.3f} {row['evaluations']:>6}"
        )
    for row in summary["scenes"]:
        if not row["target_plausible"]:
            print(f"warning: {row['scene']}: {row['target_warning']}; its scores mean nothing")
    print(
        f"\nwrote {config.out}/ (figures, renderings, TFs, summary.json) in {summary['seconds']} s"
    )
    print(f"TensorBoard: tensorboard --logdir {config.out}/tensorboard")
    return 0


def register(subparsers: Any) -> None:
    """Add ``demo``."""
    p, command = add_command(
        subparsers,
        "demo",
        _demo,
        help="search TFs with CEM on a few scenes; write figures, TFs and TensorBoard logs",
        description="Run the cross-entropy method on each scene (the total budget is split "
        "evenly) at the scoring settings' working size and write, under --out: a figure per "
        "scene (the best, a random and the hand-made TF rendered at display quality -- a "
        "--display-size volume, several --views -- above their polygons on the joint "
        "histogram), the scored renderings and TFs of each (PNG, JSON), summary.json and "
        "TensorBoard logs.",
    )
    command.add_group("demo", add_config_options(p, DemoConfig))
    command.add_group("settings", add_config_options(p, ScoringSettings, include=DEMO_SETTINGS))
