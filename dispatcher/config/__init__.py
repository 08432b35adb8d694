"""The config room: the settings every other room reads, and the one place they are parsed.

Owns: finding and reading the YAML file, plain YAML of bounded size (:mod:`.files`); the file
defined once as pydantic models (:mod:`.model`: keys, types, bounds, defaults, descriptions, and
so its JSON Schema), their field types (:mod:`.fields`) and the checks beyond a type
(:mod:`.checks`); the ``DISPATCHER_*`` environment overrides, read with pydantic-settings
(:mod:`.environment`); ``${NAME}`` references in the file's values (:mod:`.interpolation`);
pydantic's errors as one ConfigError (:mod:`.problems`); validating (:mod:`.loading`); the
settings as frozen values (:mod:`.settings`), and as a document keyed like the file with every
secret masked (:mod:`.document`, what ``config check`` prints); the ``telemetry:`` section and the
standard ``OTEL_*`` variables that fill what it leaves unset (:mod:`.telemetry`,
:mod:`.telemetry_settings`).

May import: the contract (signing secrets) and the shared kernel (``vocabulary``, ``times``,
``errors``, ``redaction``); pydantic, pydantic-settings and PyYAML. No I/O library.

Invariant: a setting that is wrong is a :class:`~dispatcher.errors.ConfigError` naming it, in one
line, raised before anything runs; the error quotes a value only cut short and never a secret,
a URL's password or a value that came from the environment; no other room reads the file or the
environment.
"""

from .files import config_path, load_settings
from .loading import (
    config_schema,
    default_key_warnings,
    parse_settings,
    production_warnings,
    require_for_worker,
)
from .settings import (
    DEFAULT_KEY,
    DEFAULT_PROCESS_LOG,
    DEFAULT_QUEUE_NAME,
    DEFAULT_WORKER_THREADS,
    MAX_WORKER_THREADS,
    Backoff,
    BreakerSettings,
    DeliverySettings,
    DisableAfter,
    Endpoint,
    ExponentialBackoff,
    ListBackoff,
    MetricsSettings,
    RetentionSettings,
    Settings,
)
from .telemetry_settings import TelemetrySettings

__all__ = [
    "DEFAULT_KEY",
    "DEFAULT_PROCESS_LOG",
    "DEFAULT_QUEUE_NAME",
    "DEFAULT_WORKER_THREADS",
    "MAX_WORKER_THREADS",
    "Backoff",
    "BreakerSettings",
    "DeliverySettings",
    "DisableAfter",
    "Endpoint",
    "ExponentialBackoff",
    "ListBackoff",
    "MetricsSettings",
    "RetentionSettings",
    "Settings",
    "TelemetrySettings",
    "config_path",
    "config_schema",
    "default_key_warnings",
    "load_settings",
    "parse_settings",
    "production_warnings",
    "require_for_worker",
]
