"""A pydantic validation error, as the one-line ConfigError naming the first bad setting.

pydantic says where (``loc``: ``("endpoints", 0, "url")``), what kind of mistake (``type``:
``string_type``, ``missing``, a check's :class:`.checks.Problem`) and the value (``input``). This
writes the setting as the README does -- ``endpoints[0].url``, ``delivery.backoff[2]``,
``(top level)`` -- and the problem in the words every ConfigError uses: ``expected a number, got
str 'thirty'``, the value quoted cut short (:func:`.checks.shown`) and a secret's never.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from ..errors import ConfigError
from .checks import Problem, UnknownSetting, got, shown

SECRET_SETTINGS = frozenset(
    {
        "key",
        "signing_secret",
        "storage_keys",
        "search_key",
        "bearer",
        "password",
        "client_secret",
        "key_password",
        "headers",
    }
)
"""Settings whose value an error never quotes: an endpoint's key and signing secrets, the
storage keys and the search key, an auth's token, password and client secret, a key's
passphrase, an endpoint's header values (one may be a partner's API key), an SMTP password."""

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dataclass_type": "a mapping",
}

Location = Sequence[str | int]


def config_error(error: ValidationError, set_by: Mapping[str, str] | None = None) -> ConfigError:
    """The first of pydantic's errors as a ConfigError. ``set_by`` names the environment variable
    a top-level setting came from (``redis_url`` -> ``DISPATCHER_REDIS_URL``): the problem says so."""
    first = error.errors(include_url=False)[0]
    loc = [part for part in first["loc"] if not _is_tag(part)]
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, Problem):
        loc += cause.at
        problem = cause.text
        if cause.sibling is not None:
            problem = problem.replace("{sibling}", setting_path([*loc[:-1], cause.sibling]))
        setting = setting_path(loc)
        if isinstance(cause, UnknownSetting):
            setting = _with_key(loc, cause.key)
    else:
        setting = setting_path(loc)
        problem = describe(
            first, secret=any(part in SECRET_SETTINGS for part in loc if isinstance(part, str))
        )
    if set_by and loc and loc[0] in set_by:
        problem += f" (set by {set_by[str(loc[0])]})"
    return ConfigError(setting, problem)


def setting_path(loc: Location) -> str:
    """``("endpoints", 0, "url")`` -> ``endpoints[0].url``; the whole file is ``(top level)``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text or "(top level)"


def describe(error: Mapping[str, Any], secret: bool = False) -> str:
    """What is wrong, in words, for an error pydantic itself found (a type, a missing key...)."""
    kind, value, ctx = error["type"], error["input"], error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "finite_number" or (kind == "float_type" and type(value) is int):
        return f"must be a finite number, got {shown(value)}"  # nan, inf, or an int no float holds
    expected = error["msg"] if kind == "wrong_type" else _EXPECTED.get(kind)  # a union's: its message
    if expected:
        return f"expected {expected}, {got(value, secret)}"
    return _one_line(str(ctx.get("error") or error["msg"]))


def _is_tag(part: str | int) -> bool:
    """A union's tag in a ``loc`` (``<list>``: which form of ``backoff`` was taken), not a setting."""
    return isinstance(part, str) and part.startswith("<") and part.endswith(">")


def _with_key(loc: Location, key: object) -> str:
    """The setting of an unknown ``key`` in the section at ``loc``; a key that is not a short
    printable string is quoted and cut short."""
    plain = isinstance(key, str) and 0 < len(key) <= 60 and key.isprintable()
    name = key if plain else shown(key)
    return f"{setting_path(loc)}.{name}" if loc else str(name)


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 160 else line[:157] + "..."
