"""The options ``dispatcher endpoints add`` and ``edit`` share: every per-endpoint setting the
file has, by its name in kebab case (``--max-attempts`` is ``max_attempts``), and ``--set
KEY=YAML`` for any other or nested one (``auth``, ``headers``, ``tls_client_cert``,
``disable_after.window``). A value is read as YAML, as the file would hold it, and checked by the
same rules (the door's); ``${NAME}`` in a value is read from the environment, so a secret need
not be typed on the command line (``--set 'auth={bearer: ${PARTNER_TOKEN}}'``), and keys come
from a variable (``--key-env``) or stdin (``--key-stdin``)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])

YAML_SETTINGS = (
    "max_attempts",
    "timeout",
    "connect_timeout",
    "backoff",
    "max_concurrency",
    "rate_per_second",
)
"""Settings whose option value is read as YAML (a number, a list, a mapping)."""
TEXT_SETTINGS = ("url", "ca_bundle", "proxy")
FLAG_SETTINGS = ("ordered", "include_key_in_body")
LIST_SETTINGS = ("events", "ordering_fields")

_OPTIONS = [
    click.option("--url", help="The partner's URL (http:// or https://; https:// in production)."),
    click.option("--events", metavar="E1,E2|*", help="The events it receives, comma-separated; '*' for all."),
    click.option(
        "--ordered/--no-ordered", default=None, help="One ordering key's deliveries in dispatch order."
    ),
    click.option(
        "--include-key-in-body/--no-include-key-in-body",
        default=None,
        help="Also send the key as metadata.webhook_key.",
    ),
    click.option("--key-env", metavar="VAR", help="The X-Webhook-Key, read from environment variable VAR."),
    click.option("--key-stdin", is_flag=True, help="The X-Webhook-Key, read from the first line of stdin."),
    click.option("--signing-secret-env", metavar="VAR", help="A whsec_ signing secret, read from VAR."),
    click.option("--max-attempts", metavar="N", help="Attempts before a delivery fails."),
    click.option("--timeout", metavar="SECONDS", help="Seconds to wait for the answer."),
    click.option("--connect-timeout", metavar="SECONDS", help="Seconds to wait for the connection."),
    click.option("--backoff", metavar="YAML", help="exponential, a list of seconds, or a mapping."),
    click.option("--max-concurrency", metavar="N", help="Attempts in flight at once, across all workers."),
    click.option("--rate-per-second", metavar="N", help="Attempts per second, across all workers."),
    click.option("--ordering-fields", metavar="F1,F2", help="With --ordered: the data fields of the key."),
    click.option("--ca-bundle", metavar="PATH", help="A PEM CA bundle for this partner."),
    click.option("--proxy", metavar="URL", help="This endpoint's HTTP proxy, or none."),
    click.option(
        "--set",
        "assignments",
        multiple=True,
        metavar="KEY=YAML",
        help="Any setting by its file name or dotted path, its value as YAML; ${VAR} reads VAR.",
    ),
]

OPTION_NAMES = (*TEXT_SETTINGS, *FLAG_SETTINGS, *LIST_SETTINGS, *YAML_SETTINGS)


def setting_options(command: F) -> F:
    """Adds every setting option to ``command`` (its parameters: the setting names, ``key_env``,
    ``key_stdin``, ``signing_secret_env`` and ``assignments``)."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


_REFERENCE = re.compile(r"\$\{[^}]*\}")
_HELD = re.compile(r"__dispatcher_reference_(\d+)__")


def _yaml(setting: str, text: str) -> Any:
    """``text`` read as YAML, each ``${NAME}`` in it kept as written (for the environment to fill
    in later), wherever it stands: ``{bearer: ${TOKEN}}`` is a mapping, though YAML alone would
    refuse a ``{`` in a flow mapping's value."""
    import yaml

    references: list[str] = []

    def hold(match: re.Match[str]) -> str:
        references.append(match.group(0))
        return f"__dispatcher_reference_{len(references) - 1}__"

    try:
        value = yaml.safe_load(_REFERENCE.sub(hold, text))
    except yaml.YAMLError as exc:
        problem = str(getattr(exc, "problem", None) or "cannot be read")
        raise ConfigError(setting, f"not valid YAML ({problem})") from None
    return _restored(value, references)


def _restored(value: Any, references: list[str]) -> Any:
    if isinstance(value, str):
        return _HELD.sub(lambda m: references[int(m.group(1))], value)
    if isinstance(value, list):
        return [_restored(item, references) for item in value]
    if isinstance(value, dict):
        return {key: _restored(item, references) for key, item in value.items()}
    return value


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _from_env(setting: str, variable: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise ConfigError(setting, f"environment variable {variable} is not set")
    return value


def read_key_from_stdin() -> str:
    """The first line of stdin, without its line break.

    Raises:
        ConfigError: nothing was read.
    """
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise ConfigError("key", "nothing was read from stdin")
    return line


def key_given(key_env: str | None, key_stdin: bool) -> str | None:
    """The key given by ``--key-env`` or ``--key-stdin`` (not both), or None."""
    if key_env and key_stdin:
        raise click.UsageError("give the key with --key-env or with --key-stdin, not both")
    if key_env:
        return _from_env("key", key_env)
    return read_key_from_stdin() if key_stdin else None


def settings_given(given: dict[str, Any]) -> dict[str, Any]:
    """The settings the options name, by their file names (dotted for ``--set`` paths), with
    ``${NAME}`` read from the environment.

    Raises:
        ConfigError: naming the setting (a value that is not YAML, a variable not set, a
            ``--set`` without ``=``). Keys and secrets read from a variable or stdin are taken
            as they are, never expanded.
    """
    from ..config.interpolation import expand

    settings: dict[str, Any] = {}
    for name in OPTION_NAMES:
        value = given.get(name)
        if value is None:
            continue
        if name in YAML_SETTINGS:
            value = _yaml(name, value)
        elif name in LIST_SETTINGS:
            value = ["*"] if value.strip() == "*" else _names(value)
        settings[name] = value
    for assignment in given.get("assignments") or ():
        path, equals, text = assignment.partition("=")
        if not equals or not path.strip():
            raise ConfigError("--set", "expected KEY=YAML: a setting's name or dotted path, '=', its value")
        settings[path.strip()] = _yaml(path.strip(), text)
    expanded, _written = expand(settings, os.environ)
    settings = dict(expanded)
    key = key_given(given.get("key_env"), bool(given.get("key_stdin")))  # taken as they are
    if key is not None:
        settings["key"] = key
    if given.get("signing_secret_env"):
        settings["signing_secret"] = _from_env("signing_secret", given["signing_secret_env"])
    return settings
