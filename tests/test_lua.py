"""Lua scripts and their names (dispatcher.lua): a script shipped beside its module is read once
per process, and the ``local`` tables of names put before a script are one line the real Redis
runs, every value spelled back exactly, a name Lua cannot hold refused by name."""

from __future__ import annotations

from importlib.resources import files

import pytest

from dispatcher import lua


def test_a_script_is_read_from_its_package_once() -> None:
    text = lua.load("dispatcher.queue", "take.lua")
    assert text == files("dispatcher.queue").joinpath("take.lua").read_text(encoding="utf-8")
    hits = lua.load.cache_info().hits
    assert lua.load("dispatcher.queue", "take.lua") is text
    assert lua.load.cache_info().hits == hits + 1
    with pytest.raises(FileNotFoundError):
        lua.load("dispatcher.queue", "no-such-script.lua")


def test_the_tables_are_one_line_of_locals() -> None:
    line = lua.constants({"FIELD": {"STATUS": "status", "WORKER": "worker"}, "STATUS": {"QUEUED": "queued"}})
    assert (
        line == "local FIELD = {STATUS = 'status', WORKER = 'worker'}; local STATUS = {QUEUED = 'queued'}\n"
    )
    assert line.count("\n") == 1  # a script's own line numbers shift by one only


def test_redis_runs_the_tables_and_reads_every_value_back_exactly(redis_client) -> None:
    values = {"PLAIN": "status", "QUOTE": "it's", "BACKSLASH": "a\\b", "NEWLINE": "one\ntwo", "CR": "x\ry"}
    script = lua.constants({"NAMES": values}) + "return {" + ", ".join(f"NAMES.{k}" for k in values) + "}"
    assert redis_client.eval(script, 0) == [v.encode() for v in values.values()]


@pytest.mark.parametrize(
    ("tables", "name"),
    [
        ({"FIELD-NAME": {"A": "a"}}, "FIELD-NAME"),
        ({"FIELD": {"1ST": "a"}}, "1ST"),
        ({"FIELD": {"A B": "a"}}, "A B"),
        ({"": {}}, ""),
    ],
    ids=["table", "digit-first", "space", "empty"],
)
def test_a_name_lua_cannot_hold_is_refused_by_name(tables, name: str) -> None:
    with pytest.raises(ValueError, match=rf"^lua constant name: {name!r} is not a Lua name$"):
        lua.constants(tables)
