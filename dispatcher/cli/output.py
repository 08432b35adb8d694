"""What every command prints with: JSON documents, tables (whole, never cut, when piped),
one-line errors, confirmations and progress bars on stderr.

``rich`` is imported only when a table or a bar is drawn, so a command that prints JSON starts
without it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ..logs import visible as visible
from ..times import format_utc

if TYPE_CHECKING:
    from rich.console import Console

Progress = Callable[[int], None]


def json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_utc(value)
    return value


_INDENT = "  "
_END = object()


def _json_key(key: Any) -> str:
    """An object key as ``json.dumps`` writes it (it makes strings of numbers, booleans and null)."""
    if isinstance(key, str):
        return encode_basestring(key)
    if key is None or isinstance(key, bool | int | float):
        return encode_basestring(_json_scalar(key))
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _json_scalar(value: Any) -> str:
    """A value that is not an object or an array, as ``json.dumps`` writes it; times as UTC text."""
    if isinstance(value, str):
        return encode_basestring(value)
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    if isinstance(value, datetime):
        return encode_basestring(format_utc(value))
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class _Open:
    """An object or array being written: its members still to come."""

    __slots__ = ("members", "is_object", "ident", "started")

    def __init__(self, item: dict[Any, Any] | list[Any] | tuple[Any, ...]) -> None:
        self.is_object = isinstance(item, dict)
        self.members: Iterator[Any] = iter(item.items()) if isinstance(item, dict) else iter(item)
        self.ident = id(item)
        self.started = False


def to_json(value: Any) -> str:
    """A stable JSON document: times as UTC ``YYYY-MM-DDTHH:MM:SSZ``, text as written.

    The text is that of ``json.dumps(value, indent=2, ensure_ascii=False)``, written with an
    explicit stack instead of recursion, so no nesting, however deep, can exhaust the stack.
    """
    chunks: list[str] = []
    stack: list[_Open] = []
    open_ids: set[int] = set()  # a member that is one of these would make the document endless

    def start(item: Any) -> None:
        if not isinstance(item, dict | list | tuple):
            chunks.append(_json_scalar(item))
        elif not item:
            chunks.append("{}" if isinstance(item, dict) else "[]")
        elif id(item) in open_ids:
            raise ValueError("Circular reference detected")
        else:
            open_ids.add(id(item))
            stack.append(_Open(item))
            chunks.append("{" if stack[-1].is_object else "[")

    start(value)
    while stack:
        frame = stack[-1]
        entry: Any = next(frame.members, _END)
        if entry is _END:
            stack.pop()
            open_ids.discard(frame.ident)
            chunks.append("\n" + _INDENT * len(stack) + ("}" if frame.is_object else "]"))
            continue
        chunks.append(("," if frame.started else "") + "\n" + _INDENT * len(stack))
        frame.started = True
        if frame.is_object:
            chunks.append(_json_key(entry[0]) + ": ")
            entry = entry[1]
        start(entry)
    return "".join(chunks)


def cell(value: Any) -> str:
    """A table cell: ``-`` for None, times as UTC text, the rest as :func:`visible` text."""
    return "-" if value is None else visible(str(json_value(value)))


def console(stderr: bool = False) -> Console:
    """A console that never wraps or cuts a table: piped output gets the width it needs."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    return Console(width=10_000, no_color=True, soft_wrap=True, stderr=stderr)


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, show_lines=False, header_style="bold", title_justify="left")
    for column in columns:
        table.add_column(column, no_wrap=True, overflow="ignore")
    for row in rows:  # as Text: a cell is never read as rich markup
        table.add_row(*(Text(cell(v)) for v in row))
    console().print(table)


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, then exit ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def say(message: str, as_json: bool = False) -> None:
    """A line for the operator: on stdout, or on stderr when stdout carries the JSON."""
    click.echo(message, err=as_json)


def confirm(question: str) -> None:
    """Asks on stderr; anything but yes (or no terminal to ask on) stops with nothing changed."""
    try:
        agreed = click.confirm(question, default=False, err=True)
    except click.exceptions.Abort:
        agreed = False
        click.echo("", err=True)
    if not agreed:
        fail("aborted; nothing was changed")


@contextmanager
def progress(description: str, total: int) -> Iterator[Progress]:
    """A progress bar on stderr, drawn only when stderr is a terminal; yields ``advance(n)``."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bar

    err = console(stderr=True)
    with Bar(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def deliveries(n: int, kind: str = "") -> str:
    """``1 delivery``, ``3 failed deliveries``."""
    return f"{n:,} {kind + ' ' if kind else ''}{'delivery' if n == 1 else 'deliveries'}"
