"""``tfgym label``: serve the labeling web app on a label queue."""

from __future__ import annotations

import argparse
import os
from typing import Any

from tfgym.cli.common import add_command
from tfgym.cli.options import add_config_options
from tfgym.labeling.server import ServerConfig

__all__ = ["TOKEN_ENV", "register"]

TOKEN_ENV = "TFGYM_LABEL_TOKEN"
"""Environment variable read for the token when ``--token`` is not given."""


def _label(args: argparse.Namespace) -> int:
    from tfgym.labeling.server import serve

    values = args.command_spec.values(args, "server")
    if values["token"] is None:
        values["token"] = os.environ.get(TOKEN_ENV) or None
    ServerConfig(**values)  # refuse bad settings (an open bind) before the database opens
    serve(args.db, **values)  # returns after Ctrl-C or SIGTERM
    return 0


def register(subparsers: Any) -> None:
    """Add ``label``."""
    p, command = add_command(
        subparsers,
        "label",
        _label,
        help="serve the labeling web app (people compare renderings in a browser)",
        description="Serve the label queue in --db to people: a web page of two renderings "
        "side by side (/), a ranking page of four (/rank), statistics (/stats) and a JSON API "
        "(/api/next, /api/answer, /api/stats). Listens on 127.0.0.1 unless --host says "
        "otherwise; any other address needs --token (or $TFGYM_LABEL_TOKEN), which every "
        "request must then carry. Fill the queue with `tfgym collect --labeler human`.",
    )
    p.add_argument(
        "--db",
        required=True,
        help="label database: an SQLite file or sqlite:/// URL, or postgresql://user@host/db",
    )
    command.add_group("server", add_config_options(p, ServerConfig))
