"""Settings declared once, as dataclass fields, and everything derived from them.

A field made with `value`, `listed` or `switch` carries an `Option` in its metadata: its
help, how its text is read (the same for the flag and its environment twin), its kind.
`add_group` puts the fields of a dataclass on an `argparse` command line, `parse` reads it
(the command line, else the environment, else the default) and `table` writes the README's
table of them. `config.py` declares the server's.

Names are derived, never mapped by hand: field `max_connections` is `--max-connections` and
AIOHTTP_CHAT_MAX_CONNECTIONS; a list, whose flag is given once per item, takes the singular
(`trusted_proxies` is `--trusted-proxy` and AIOHTTP_CHAT_TRUSTED_PROXY).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable
from dataclasses import Field, dataclass, field, fields
from typing import Any, Final, Literal, NamedTuple, TypeVar

ENV_PREFIX: Final = "AIOHTTP_CHAT_"
REPEATABLE: Final = "repeatable (comma-separated in the environment)"
T = TypeVar("T")


def on_off(text: str) -> bool:
    """A switch's environment twin: 1 or 0, and their usual spellings."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError("must be 1 or 0 (true/false, yes/no, on/off)")


OPTION: Final = "option"  # the key of a field's `Option` in its metadata


@dataclass(frozen=True, slots=True)
class Option:
    """How a field is set from outside: its flag's help and how its text is read, the same
    for the flag and its environment twin. A `list` is repeatable (comma-separated in the
    environment); a `switch` is on/off (1 or 0 in the environment)."""

    help: str | None  # None: hidden, set by the program itself (no environment twin)
    parse: Callable[[str], object] = str
    kind: Literal["value", "switch", "list"] = "value"
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    readme: str | None = None  # the README's meaning, where it says more than `help`


def value(
    default: T,
    help: str,
    parse: Callable[[str], T],
    *,
    choices: tuple[str, ...] | None = None,
    metavar: str | None = None,
    readme: str | None = None,
) -> T:
    """A field set by one value."""
    option = Option(help, parse, "value", choices, metavar, readme)
    return field(default=default, metadata={OPTION: option})


def listed(
    default: tuple[T, ...],
    help: str,
    parse: Callable[[str], T],
    *,
    metavar: str,
    readme: str | None = None,
) -> tuple[T, ...]:
    """A field set by a flag given once per item, or a comma-separated environment twin."""
    option = Option(help, parse, "list", None, metavar, readme)
    return field(default=default, metadata={OPTION: option})


def switch(help: str | None, *, readme: str | None = None) -> bool:
    """A field off by default, on with `--FLAG` (or `--no-FLAG` to say off)."""
    return field(default=False, metadata={OPTION: Option(help, on_off, "switch", readme=readme)})


class Declared(NamedTuple):
    """A field as an option: its names outside, its default and its `Option`."""

    name: str  # the field's, and `parse_args`'s attribute
    flag: str
    env: str | None  # None for a hidden option
    default: object
    option: Option


def _singular(name: str) -> str:
    """The name of one item of a list: `trusted_proxies` is given as --trusted-proxy."""
    if name.endswith("ies"):
        return name.removesuffix("ies") + "y"
    return name.removesuffix("s")


def _declared(each: Field[Any]) -> Declared:
    option = each.metadata[OPTION]
    assert isinstance(option, Option), each.name
    name = _singular(each.name) if option.kind == "list" else each.name
    env = None if option.help is None else ENV_PREFIX + name.upper()
    return Declared(each.name, "--" + name.replace("_", "-"), env, each.default, option)


def declared(settings: type[Any]) -> tuple[Declared, ...]:
    """The options of a dataclass of settings, in its fields' order."""
    return tuple(map(_declared, fields(settings)))


def _shown(default: object) -> str:
    """A default as a person writes it on the command line, not as Python prints it."""
    if default is None or default == ():
        return "none"
    if isinstance(default, tuple):
        return ", ".join(map(_shown, default))
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def _help(declared: Declared) -> str:
    """An option's line in --help: what it does, its default and its environment twin."""
    option, env = declared.option, declared.env
    if option.help is None or env is None:
        return argparse.SUPPRESS
    if option.kind == "switch":
        shown = f"(default: {'on' if declared.default else 'off'}) [{env}=1]"
    else:
        shown = f"(default: {_shown(declared.default)}) [{env}]"
    repeatable = f"; {REPEATABLE}" if option.kind == "list" else ""
    return f"{option.help}{repeatable} {shown}".replace("%", "%%")  # (argparse formats with %)


def add_group(parser: argparse.ArgumentParser, title: str, options: Iterable[Declared]) -> None:
    """One option per declared field, under `title` in --help."""
    group = parser.add_argument_group(title)
    for each in options:
        _add(group, each)


def _add(group: argparse._ArgumentGroup, declared: Declared) -> None:
    """Absent from the command line, an option is absent from its answer (its default is
    SUPPRESS): `parse_args` then looks in the environment, then at the field's default."""
    option, flag, name, text = declared.option, declared.flag, declared.name, _help(declared)
    if option.kind == "switch":
        group.add_argument(
            flag,
            action=argparse.BooleanOptionalAction,
            dest=name,
            default=argparse.SUPPRESS,
            help=text,
        )
    else:
        group.add_argument(
            flag,
            action="append" if option.kind == "list" else "store",
            dest=name,
            default=argparse.SUPPRESS,
            type=option.parse,
            choices=option.choices,
            metavar=option.metavar,
            help=text,
        )


def parse(
    parser: argparse.ArgumentParser, argv: list[str] | None, options: Iterable[Declared]
) -> argparse.Namespace:
    """`argv` parsed: one attribute per declared field, by its name, from the command line,
    else from its environment twin, else the field's default. An environment value its
    option refuses, not overridden, is a usage error that names the variable (exit 2)."""
    args = parser.parse_args(argv)
    for declared in options:
        if declared.name in vars(args):  # given on the command line
            if declared.option.kind == "list":
                setattr(args, declared.name, tuple(getattr(args, declared.name)))
            continue
        value, raw = declared.default, os.environ.get(declared.env) if declared.env else None
        if raw is not None:
            try:
                value = _from_environment(declared.option, raw)
            except argparse.ArgumentTypeError as exc:
                parser.error(f"environment variable {declared.env}={raw!r}: {exc}")
        setattr(args, declared.name, value)
    return args


def _from_environment(option: Option, raw: str) -> object:
    """An environment variable's value, read by its option's own parser."""
    if option.kind == "switch":
        return on_off(raw)
    if option.kind == "list":
        return tuple(_parsed(option, item) for item in raw.split(",") if item.strip())
    return _parsed(option, raw)


def _parsed(option: Option, text: str) -> object:
    """`text` read as argparse reads a flag's: its parser, then its choices."""
    try:
        value = option.parse(text)
    except argparse.ArgumentTypeError:
        raise
    except (TypeError, ValueError):
        name = getattr(option.parse, "__name__", "a")
        raise argparse.ArgumentTypeError(f"invalid {name} value") from None
    if option.choices is not None and value not in option.choices:
        listed = ", ".join(option.choices)
        raise argparse.ArgumentTypeError(f"invalid choice (choose from {listed})")
    return value


def table(options: Iterable[Declared]) -> str:
    """The README's table of `options`, in Markdown."""
    rows = ["| option | environment variable | default | meaning |", "|---|---|---|---|"]
    rows += (_row(each) for each in options if each.env is not None)
    return "\n".join(rows) + "\n"


def _row(declared: Declared) -> str:
    option, flag, env = declared.option, declared.flag, declared.env
    if option.kind == "switch":
        cells = [f"`{flag}` / `--no-{flag[2:]}`", f"`{env}=1`"]
        cells.append("on" if declared.default else "off")
    else:
        metavar = f" {option.metavar}" if option.metavar else ""
        cells = [f"`{flag}{metavar}`", f"`{env}`"]
        if option.kind == "list":
            cells[1] += " (comma-separated)"
        if declared.default is None or declared.default == ():
            cells.append("none")
        elif isinstance(declared.default, tuple):
            cells.append(", ".join(f"`{_shown(item)}`" for item in declared.default))
        else:
            cells.append(f"`{_shown(declared.default)}`")
    meaning = option.readme or option.help or ""
    cells.append(meaning + ("; repeatable" if option.kind == "list" else ""))
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
