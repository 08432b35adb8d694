"""``${NAME}`` in the file: a string value that is, or contains, ``${NAME}`` takes the
environment variable ``NAME`` there, so a secret need not be written in the file::

    endpoints:
      - name: pharmacy
        key: ${PHARMACY_KEY}
    database_url: postgresql+psycopg://webhooks:${DB_PASSWORD}@db.internal:5432/webhooks

Only string values are read (never a key of a mapping, a number or a boolean); ``$${`` is a
literal ``${``, and a ``$`` not followed by ``{`` stays as it is (an argon2 hash keeps its
``$``). A variable that is not set, or is empty, is a ConfigError naming the setting and the
variable: ``config: endpoints[0].key: environment variable PHARMACY_KEY is not set``.

No error ever prints a variable's value: :func:`expand` returns, beside the expanded document,
each value that came from the environment with the text the file wrote
(:class:`Substitutions`); :func:`.checks.concealing` makes every error quote the written text
(``'${DB_URL}'``) instead of the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from .problems import setting_path

_REFERENCE = re.compile(r"\$\$\{|\$\{(?P<name>[^}]*)(?P<close>\}?)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_DEPTH = 64
"""Deeper than the file may nest (:data:`.files.MAX_DEPTH`): left as it is, and refused there."""

Substitutions = dict[str, str]
"""A value made with the environment -> the text the file wrote (``'https://h/x'`` ->
``'https://${HOST}/x'``), and each variable's value -> ``'${NAME}'``."""


def expand(raw: Any, env: Mapping[str, str]) -> tuple[Any, Substitutions]:
    """``raw`` with every ``${NAME}`` in its string values replaced from ``env``, and what was
    replaced. Collections are copied only where something changed.

    Raises:
        ConfigError: naming the setting, for an unset or empty variable or a ``${`` that does
            not close on a name (the value is never quoted).
    """
    substitutions: Substitutions = {}
    return _walk(raw, env, (), substitutions), substitutions


def _walk(value: Any, env: Mapping[str, str], loc: tuple[str | int, ...], done: Substitutions) -> Any:
    if len(loc) > MAX_DEPTH:
        return value
    if isinstance(value, str):
        return _expand_text(value, env, loc, done) if "${" in value else value
    if isinstance(value, dict):
        items = {
            k: _walk(v, env, (*loc, k if isinstance(k, str) else str(k)), done) for k, v in value.items()
        }
        return items if any(items[k] is not value[k] for k in value) else value
    if isinstance(value, list):
        members = [_walk(v, env, (*loc, i), done) for i, v in enumerate(value)]
        return members if any(m is not v for m, v in zip(members, value, strict=True)) else value
    return value


def _expand_text(text: str, env: Mapping[str, str], loc: tuple[str | int, ...], done: Substitutions) -> str:
    used: list[tuple[str, str]] = []

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name = match.group("name")
        if not match.group("close") or not _NAME.fullmatch(name):
            raise ConfigError(
                setting_path(loc),
                "${ must be followed by a variable name and } (such as ${PARTNER_KEY}); "
                "write $${ for a literal ${",
            )
        value = env.get(name)
        if value is None or value == "":
            state = "is not set" if value is None else "is empty"
            raise ConfigError(setting_path(loc), f"environment variable {name} {state}")
        used.append((name, value))
        return value

    expanded = _REFERENCE.sub(replace, text)
    if used:
        done[expanded] = text
        done.setdefault(expanded.strip(), text)  # as a check that strips it quotes it
        for name, value in used:
            done.setdefault(value, f"${{{name}}}")
    return expanded


REFERENCE_SCHEMA = {
    "type": "string",
    "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*\}",
    "description": "Holds ${NAME}: replaced by the environment variable NAME when the file is read.",
}
"""What an editor accepts for a string the file leaves to the environment (checked at load)."""
_CONSTRAINED = ("pattern", "format", "enum", "const")
_OUTER = ("description", "default", "examples", "title")


def accept_references(schema: Any) -> Any:
    """The file's JSON Schema with every constrained string (a pattern, format, enumeration or
    minimum length) also accepting a ``${NAME}`` reference, as the loader does: a copy."""
    if isinstance(schema, list):
        return [accept_references(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    node = {key: accept_references(value) for key, value in schema.items()}
    constrained = any(key in node for key in _CONSTRAINED) or node.get("minLength", 0) > 1
    if node.get("type") != "string" or not constrained:
        return node
    outer = {key: node[key] for key in _OUTER if key in node}
    inner = {key: value for key, value in node.items() if key not in _OUTER}
    return {**outer, "anyOf": [inner, {"$ref": "#/$defs/EnvironmentReference"}]}
