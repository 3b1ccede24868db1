"""What every command shares: the user-error type, the command record, stderr hygiene."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tfgym.cli.options import OptionMap, config_values

__all__ = ["EXIT_USAGE", "CliError", "Command", "add_command", "quiet_native_stderr"]

EXIT_USAGE = 2


class CliError(Exception):
    """A user error: printed with the command's name, exit status 2."""


@dataclass
class Command:
    """A subcommand: the function that runs it and the options generated for it.

    Attributes:
        run: takes the parsed namespace, returns the exit status.
        options: field name -> option of every option, to name options in error messages.
        groups: the options generated from each config dataclass, by a name of the command's
            choice (``"settings"``, ``"train"``...), to read the config back.
    """

    run: Callable[[argparse.Namespace], int]
    options: OptionMap = field(default_factory=OptionMap)
    groups: dict[str, OptionMap] = field(default_factory=dict)

    def add_group(self, name: str, options: OptionMap) -> None:
        """Record options generated from a config dataclass under ``name``."""
        self.groups[name] = options
        self.options.update(options)

    def values(self, args: argparse.Namespace, group: str) -> dict[str, Any]:
        """The parsed values of one group's fields (the config's keyword arguments)."""
        return config_values(args, self.groups[group])


def add_command(
    subparsers: Any, name: str, run: Callable[[argparse.Namespace], int], **kwargs: Any
) -> tuple[argparse.ArgumentParser, Command]:
    """Add a subcommand parser whose namespace carries its :class:`Command`."""
    parser = subparsers.add_parser(name, **kwargs)
    command = Command(run)
    parser.set_defaults(command_spec=command)
    return parser, command


def quiet_native_stderr(load: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``load`` with the process's stderr (fd 2) captured.

    ITK's file readers print parser noise straight to fd 2 before raising; on failure that
    noise is dropped (the raised error says what went wrong), on success it is passed on.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            result = load(*args, **kwargs)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        sys.stderr.write(captured.read().decode(errors="replace"))
    return result
