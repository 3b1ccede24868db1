"""The ``tfgym`` command line: the top of the one-way stack.

Subcommands, one module per group::

    tfgym scenes                                   # scenes.py: bundled scenes and scene sets
    tfgym render --scene headsq --tf reference -o head.png
    tfgym version
    tfgym demo --out runs/demo --budget 400        # demo.py: CEM on a few scenes, figures
    tfgym export-tf runs/demo/headsq/best_tf.json --format vtk -o tf_vtk/   # export.py
    tfgym collect --scene phantom-00 --pairs 4000 --db prefs.sqlite   # collect.py
    tfgym collect --labeler human --scene headsq --db labels.sqlite  # queue pairs for people
    tfgym label --db labels.sqlite [--host 0.0.0.0 --token T]        # label.py: the web app
    tfgym label-sim --url http://127.0.0.1:8000 --labelers 8         # prefs.py: simulated people
    tfgym prefs export --db labels.sqlite --out labels.jsonl         # prefs.py
    tfgym train-rm --db prefs.sqlite --out rm.pt --variant mask        # rm.py
    tfgym eval-rm --model rm.pt --db prefs.sqlite --scene phantom-00   # rm.py
    tfgym train-agent --backend oracle --steps 200000 --out runs/ppo  # agents.py
    tfgym rlhf --short --out runs/rlhf                                 # agents.py
    tfgym evaluate runs/rlhf                                           # agents.py

Each command is a thin function over a library call; its options are generated from the
fields of that call's config dataclass (:mod:`tfgym.cli.options`), so every default is
written once, in the library. Modules here import only light things at the top; torch,
matplotlib and the reward models are imported inside the commands, so ``tfgym --help`` and
``tfgym version`` load neither torch nor matplotlib.

A user error (missing or corrupt file, malformed JSON, unknown scene, conflicting settings)
prints ``tfgym <command>: error: <the whole message>`` to stderr, with Python argument names
rewritten as the options a user types, and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tfgym.cli import agents, collect, demo, export, label, prefs, rm, scenes
from tfgym.cli.common import EXIT_USAGE, CliError, Command
from tfgym.cli.options import cli_words

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``tfgym`` parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="tfgym",
        description="Learn 2D transfer functions for CT volume rendering (Gymnasium env).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (scenes, demo, export, collect, label, prefs, rm, agents):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Args:
        argv: arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        0 on success, 2 on a user error (message on stderr).

    Example:
        >>> main(["version"])  # doctest: +ELLIPSIS
        tfgym ...
        0
    """
    args = build_parser().parse_args(argv)
    command: Command = args.command_spec
    try:
        return int(command.run(args))
    except (CliError, OSError, ValueError) as error:  # VolumeError is a ValueError
        message = str(error).strip() or repr(error)
        print(
            f"tfgym {args.command}: error: {cli_words(message, command.options)}", file=sys.stderr
        )
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"tfgym {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
