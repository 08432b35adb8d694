"""The configuration's validation: the file's mapping and the environment's overrides, as Settings.

The file is named by ``DISPATCHER_CONFIG``; else ``./config.yaml`` when present; else the
built-in defaults (:mod:`.files` reads it). Its ``${NAME}`` references are replaced from the
environment (:mod:`.interpolation`); ``DISPATCHER_REDIS_URL``, ``DISPATCHER_DATABASE_URL``,
``DISPATCHER_STORAGE_KEYS`` and ``DISPATCHER_SEARCH_KEY`` override it (:mod:`.environment`);
the standard ``OTEL_*`` variables fill what its ``telemetry:`` leaves unset
(:func:`.telemetry_settings.resolve_telemetry`). What the file may hold is defined
once, by the pydantic models of :mod:`.model`; anything unknown, of the wrong type or out of
bounds is a :class:`ConfigError` naming the setting (:mod:`.problems`), so a worker refuses to
start on it.

pydantic is imported on the first validation, not with the package: ``dispatcher --help`` and
every module that only names a settings type do not pay for it; pydantic-settings only when a
``DISPATCHER_*`` variable other than ``DISPATCHER_CONFIG`` is set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..redaction import Masker
from .checks import concealing, shown
from .settings import DEFAULT_KEY, Settings

_PREFIX = "DISPATCHER_"
_MASKED_CHARS = 4
_NOT_AN_OVERRIDE = frozenset({"DISPATCHER_CONFIG"})  # names the file (files.config_path)


def parse_settings(raw: dict[str, Any] | None, env: Mapping[str, str] | None = None) -> Settings:
    """Validates a mapping (as read from YAML) and applies the environment overrides (the
    ``DISPATCHER_*`` ones, and the ``OTEL_*`` ones for what ``telemetry:`` leaves unset).

    Raises:
        ConfigError: naming the first bad setting.
    """
    from pydantic import ValidationError

    from .interpolation import expand
    from .model import ConfigFile
    from .problems import config_error

    env = os.environ if env is None else env
    raw = {} if raw is None else raw
    overrides, set_by = _overrides(env)
    written: dict[str, str] = {}
    if isinstance(raw, dict):
        # The environment wins; the file's value is neither checked nor expanded.
        raw, written = expand({k: v for k, v in raw.items() if k not in overrides}, env)
        raw = {**raw, **overrides}
    with concealing(written):
        try:
            file = ConfigFile.model_validate(raw)
        except ValidationError as exc:
            raise _unquoted(config_error(exc, set_by), written) from None
    return file.to_settings(env)  # the OTEL_* variables fill what telemetry: leaves unset


def _unquoted(error: ConfigError, written: Mapping[str, str]) -> ConfigError:
    """``error`` with any value from the environment masked, should a check have quoted one
    other than through :func:`.checks.shown` (too short a value to mask is left as it is)."""
    masker = Masker(value for value in written if len(value) >= _MASKED_CHARS)
    return ConfigError(error.setting, masker(error.problem)) if masker else error


def _overrides(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The settings the environment sets, and the variable that set each (none, and
    pydantic-settings not imported, without a ``DISPATCHER_*`` variable to read)."""
    if not any(
        name.startswith(_PREFIX) and name not in _NOT_AN_OVERRIDE and value for name, value in env.items()
    ):
        return {}, {}
    from .environment import read_overrides, variable

    overrides = read_overrides(env)
    return overrides, {name: variable(name) for name in overrides}


def config_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of the configuration file, for editors and ``config schema``."""
    from .model import file_schema

    return file_schema()


STORAGE_KEYS_REQUIRED = (
    "required in production: payloads and answers are PHI and are stored encrypted; set "
    "DISPATCHER_STORAGE_KEYS or storage_keys (dispatcher keys generate --storage prints a key)"
)


def require_for_worker(settings: Settings) -> None:
    """What stops a worker beyond a valid file: in production, storage keys.

    Raises:
        ConfigError: ``storage_keys`` is empty and ``environment`` is production.
    """
    if settings.environment == "production" and not settings.storage_keys:
        raise ConfigError("storage_keys", STORAGE_KEYS_REQUIRED)


def production_warnings(settings: Settings) -> list[str]:
    """What ``config check`` refuses in production: what stops a worker, and the default key."""
    if settings.environment != "production":
        return []
    missing_keys = [] if settings.storage_keys else [f"storage_keys: {STORAGE_KEYS_REQUIRED}"]
    return missing_keys + default_key_warnings(settings)


def default_key_warnings(settings: Settings) -> list[str]:
    """One line for every endpoint on the seed's default key ``xxx``, in any environment (a
    worker warns at start-up; ``config check`` refuses it in production, ``--strict`` anywhere)."""
    return [
        f"endpoints[{i}].key: endpoint {shown(e.name)} uses the default key xxx; configure a unique key"
        for i, e in enumerate(settings.endpoints)
        if e.key == DEFAULT_KEY
    ]
