"""The configuration's validation: the file's mapping and the environment's overrides, as Settings.

The file is named by ``DISPATCHER_CONFIG``; else ``./config.yaml`` when present; else the
built-in defaults (:mod:`.files` reads it). ``DISPATCHER_REDIS_URL`` and
``DISPATCHER_DATABASE_URL`` override it (:mod:`.environment`). What the file may hold is defined
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
from .checks import shown
from .settings import DEFAULT_KEY, Settings

_PREFIX = "DISPATCHER_"
_NOT_AN_OVERRIDE = frozenset({"DISPATCHER_CONFIG"})  # names the file (files.config_path)


def parse_settings(raw: dict[str, Any] | None, env: Mapping[str, str] | None = None) -> Settings:
    """Validates a mapping (as read from YAML) and applies the environment overrides.

    Raises:
        ConfigError: naming the first bad setting.
    """
    from pydantic import ValidationError

    from .model import ConfigFile
    from .problems import config_error

    env = os.environ if env is None else env
    raw = {} if raw is None else raw
    overrides, set_by = _overrides(env)
    if overrides and isinstance(raw, dict):
        raw = {**raw, **overrides}  # the environment wins; the file's value is not checked
    try:
        file = ConfigFile.model_validate(raw)
    except ValidationError as exc:
        raise config_error(exc, set_by) from None
    return file.to_settings()


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
    return missing_keys + [
        f"endpoints[{i}].key: endpoint {shown(e.name)} uses the default key xxx; configure a unique key"
        for i, e in enumerate(settings.endpoints)
        if e.key == DEFAULT_KEY
    ]
