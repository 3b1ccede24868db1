"""Command-line options generated from the fields of the library's config dataclasses.

A command's options are the fields of the dataclass whose values it passes to the library, so
a default is written once, in the dataclass. Each field carries its help text in
``metadata={"help": ...}`` and optionally ``"flag"`` (when the option's name differs from
``--field-name``), ``"choices"``, ``"default_help"`` (how to show a ``None`` default) and
``"cli": False`` (a field that is no option, e.g. a nested config).

* ``int``, ``float``, ``str`` and their ``| None`` forms become typed options;
* ``tuple[str, ...]`` becomes an option taking one or more values;
* a ``bool`` that defaults to True becomes ``--no-<name>``, one that defaults to False
  ``--<name>``.

Every option's help shows its default. :class:`OptionMap` remembers which flag belongs to
which field, so error messages that name a Python argument (``series_id=``) can name the
option a user types (``--series-id``) instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from collections.abc import Iterable
from typing import Any

__all__ = ["OptionMap", "add_config_options", "cli_words", "config_values"]


class OptionMap(dict[str, str]):
    """Field name -> the option that sets it (e.g. ``"working_size" -> "--working-size"``)."""


def _field_type(hint: Any) -> tuple[type, bool]:
    """``(scalar type, many)`` of a field's type hint (``X | None`` reads as ``X``)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return next((a for a in args if a in (int, float, str, bool)), str), False
    if origin is tuple:
        return typing.get_args(hint)[0], True
    return hint, False


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def add_config_options(
    parser: Any,
    config: type,
    *,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    options: OptionMap | None = None,
) -> OptionMap:
    """Add one option per field of a config dataclass.

    Args:
        parser: the parser (or argument group) to add to.
        config: the dataclass type.
        include: only these fields, in this order (default: all init fields, in order).
        exclude: fields to leave out (nested configs, fields the command sets itself).
        options: a map to add the new field -> flag entries to.

    Returns:
        The field -> flag map (``options`` if given).

    Raises:
        TypeError: a field without help text, or of a type with no option form.

    Example:
        >>> from dataclasses import dataclass, field
        >>> @dataclass
        ... class Config:
        ...     epochs: int = field(default=3, metadata={"help": "passes"})
        ...     progress: bool = field(default=True, metadata={"help": "progress bars"})
        >>> parser = argparse.ArgumentParser()
        >>> add_config_options(parser, Config)
        {'epochs': '--epochs', 'progress': '--no-progress'}
        >>> parser.parse_args(["--epochs", "5", "--no-progress"])
        Namespace(epochs=5, progress=False)
    """
    out = OptionMap() if options is None else options
    hints = typing.get_type_hints(config)
    by_name = {f.name: f for f in dataclasses.fields(config) if f.init}
    names = list(by_name) if include is None else list(include)
    for name in names:
        if name in set(exclude):
            continue
        f = by_name[name]
        meta = dict(f.metadata)
        if meta.get("cli") is False:  # e.g. a nested config: not an option
            continue
        if "help" not in meta:
            raise TypeError(f"{config.__name__}.{name} has no help text (metadata['help'])")
        default = _default(f)
        scalar, many = _field_type(hints[name])
        shown = meta.get("default_help", default)
        if isinstance(shown, tuple):
            shown = " ".join(map(str, shown))
        help_text = f"{meta['help']} (default: {shown})"
        if "choices" in meta:
            help_text = f"{meta['help']}: {', '.join(map(str, meta['choices']))} (default: {shown})"
        if scalar is bool:
            flag = meta.get("flag") or (
                f"--no-{name.replace('_', '-')}" if default else f"--{name.replace('_', '-')}"
            )
            action = "store_false" if default else "store_true"
            help_text = meta["help"] if not default else f"no {meta['help']}"
            parser.add_argument(flag, dest=name, action=action, default=default, help=help_text)
        else:
            if scalar not in (int, float, str):
                raise TypeError(f"{config.__name__}.{name}: no option form for {hints[name]}")
            flag = meta.get("flag") or f"--{name.replace('_', '-')}"
            kwargs: dict[str, Any] = {"dest": name, "type": scalar, "help": help_text}
            kwargs["metavar"] = flag.lstrip("-").replace("-", "_").upper()
            kwargs["default"] = default
            if many:
                kwargs["nargs"] = "+"
            if "choices" in meta:
                kwargs["choices"] = tuple(meta["choices"])
            parser.add_argument(flag, **kwargs)
        out[name] = flag
    return out


def config_values(args: argparse.Namespace, options: OptionMap) -> dict[str, Any]:
    """The parsed values of the fields in ``options`` (tuples for multi-value options)."""
    values = {}
    for name in options:
        value = getattr(args, name)
        values[name] = tuple(value) if isinstance(value, list) else value
    return values


def cli_words(message: str, options: OptionMap) -> str:
    """Rewrite Python argument names in an error message as the options a user types.

    ``name=`` becomes the option; a field name with an underscore is rewritten wherever it
    stands as a word; a plain one-word name only where it opens a clause ("pairs must be ...").

    Example:
        >>> cli_words("pass series_id= to choose", OptionMap(series_id="--series-id"))
        'pass --series-id to choose'
        >>> cli_words("labeled at working_size=32", OptionMap(working_size="--working-size"))
        'labeled at --working-size 32'
        >>> cli_words("pairs must be at least 1; 2 pairs", OptionMap(pairs="--pairs"))
        '--pairs must be at least 1; 2 pairs'
    """
    for name, flag in options.items():
        if flag.startswith("--no-"):
            continue
        word = re.escape(name)
        message = re.sub(rf"\b{word}=(?=[^\s;,.)])", f"{flag} ", message)
        message = re.sub(rf"\b{word}=", flag, message)
        if "_" in name:
            message = re.sub(rf"(?<![-\w]){word}\b", flag, message)
        else:
            message = re.sub(rf"(^|[:;] |\n){word}(?= )", rf"\g<1>{flag}", message)
    return message
