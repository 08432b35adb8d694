"""Lua scripts, kept as ``.lua`` files beside the module that runs them, read once."""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def load(package: str, name: str) -> str:
    """The text of the Lua script ``name`` shipped in ``package`` (read once per process)."""
    return files(package).joinpath(name).read_text(encoding="utf-8")
