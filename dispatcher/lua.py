"""Lua scripts, kept as ``.lua`` files beside the module that runs them, read once; and the
``local`` tables of names a room puts before its scripts, so a script spells no name it does not own."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib.resources import files

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@cache
def load(package: str, name: str) -> str:
    """The text of the Lua script ``name`` shipped in ``package`` (read once per process)."""
    return files(package).joinpath(name).read_text(encoding="utf-8")


def constants(tables: Mapping[str, Mapping[str, str]]) -> str:
    """One line of Lua declaring each table of string constants, such as
    ``local FIELD = {STATUS = 'status'}``, to put before a script (a line, so the script's own
    line numbers shift by one only).

    Raises:
        ValueError: a table or key is not a Lua name.
    """
    declarations = []
    for table, values in tables.items():
        for name in (table, *values):
            if not _NAME.match(name):
                raise ValueError(f"lua constant name: {name!r} is not a Lua name")
        entries = ", ".join(f"{key} = {_quoted(value)}" for key, value in values.items())
        declarations.append(f"local {table} = {{{entries}}}")
    return "; ".join(declarations) + "\n"


def _quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
    return f"'{escaped}'"
