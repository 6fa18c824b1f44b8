"""Settings dataclasses become command-line options: one field, one option, its help from metadata."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any


def option(default: Any, help: str, **kwargs: Any) -> Any:
    """A settings field with its one line of help (shown by --help and kept next to the code)."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help, **kwargs})
    return dataclasses.field(default=default, metadata={"help": help, **kwargs})


def _base_type(value_type: Any) -> Any:
    if isinstance(value_type, types.UnionType) or typing.get_origin(value_type) is typing.Union:
        args = [a for a in typing.get_args(value_type) if a is not type(None)]
        return args[0] if args else str
    return value_type


def add_settings_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.name in skip or field.metadata.get("cli") is False:
            continue
        flag = "--" + field.name.replace("_", "-")
        value_type = _base_type(hints[field.name])
        has_default = field.default is not dataclasses.MISSING
        default = field.default if has_default else field.default_factory()  # type: ignore[misc]
        help_text = field.metadata.get("help", "")
        choices = field.metadata.get("choices")
        if value_type is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        elif typing.get_origin(value_type) in (list, tuple):
            item = typing.get_args(value_type)[0] if typing.get_args(value_type) else str
            # an empty default: the flag may also be repeated (--base-url A --base-url B), values add up
            parser.add_argument(flag, nargs="+", type=item, default=default, help=help_text,
                                action="store" if default else "extend")
        else:
            parser.add_argument(flag, type=value_type, default=default, choices=choices,
                                required=field.metadata.get("required", False), help=help_text)


def settings_from_args(cls: type, ns: argparse.Namespace, **overrides: Any) -> Any:
    values = {f.name: getattr(ns, f.name) for f in dataclasses.fields(cls) if hasattr(ns, f.name)}
    values.update(overrides)
    return cls(**values)
