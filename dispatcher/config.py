"""Configuration: load the YAML file, apply the environment overrides, validate every key.

The file is named by ``DISPATCHER_CONFIG``; else ``./config.yaml`` when present; else the
built-in defaults. ``DISPATCHER_REDIS_URL`` and ``DISPATCHER_DATABASE_URL`` override the file.
Anything unknown or of the wrong type is a :class:`ConfigError` naming the setting, so a
worker refuses to start on it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .errors import ConfigError
from .events import EVENT_NAMES
from .guard import parse_networks
from .signing import decode_secret

DEFAULT_KEY = "xxx"
"""The seed's key for an endpoint that has none configured."""

DEFAULT_QUEUE_NAME = "send-webhook-request"
DEFAULT_PROCESS_LOG = "storage/logs/send-webhook-request-process.log"


@dataclass(frozen=True)
class ExponentialBackoff:
    """Wait before retry n (n = 1 after the first attempt) = min(cap, base * multiplier ** (n - 1)),
    then lengthened by a random factor in [1, 1 + jitter] so retries of many deliveries spread out.

    With the defaults the seven waits of an 8-attempt budget are about 30 s, 75 s, 3 min, 8 min,
    20 min, 49 min and 1 h: the whole window is about 2.4 to 2.6 hours.
    """

    base: float = 30.0
    multiplier: float = 2.5
    cap: float = 3600.0
    jitter: float = 0.1

    @property
    def maximum(self) -> float:
        return self.cap


@dataclass(frozen=True)
class ListBackoff:
    """Laravel-style list of waits in seconds; the last value repeats."""

    seconds: tuple[int, ...]

    @property
    def maximum(self) -> float:
        return float(max(self.seconds))


Backoff = ExponentialBackoff | ListBackoff


@dataclass(frozen=True)
class DeliverySettings:
    timeout: float = 30.0
    connect_timeout: float = 5.0
    max_attempts: int = 8
    backoff: Backoff = field(default_factory=ExponentialBackoff)
    retry_4xx: tuple[int, ...] = (408, 425, 429)
    max_payload_bytes: int = 262144
    response_body_limit: int = 65536
    tls_verify: bool = True
    ca_bundle: str | None = None

    @property
    def verify(self) -> bool | str:
        """The ``verify`` argument for requests: the CA bundle's path, or whether to verify."""
        return self.ca_bundle if (self.tls_verify and self.ca_bundle) else self.tls_verify


@dataclass(frozen=True)
class DisableAfter:
    """Disable an endpoint after ``failed_deliveries`` failures and no success within ``window_seconds``."""

    failed_deliveries: int
    window_seconds: int = 5 * 86400


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    key: str = DEFAULT_KEY
    events: tuple[str, ...] = ("*",)
    include_key_in_body: bool = False
    key_configured: bool = True
    signing_secrets: tuple[str, ...] = ()
    delivery: DeliverySettings | None = None
    """The global delivery settings with this endpoint's overrides (timeout, max_attempts, backoff)."""
    max_concurrency: int | None = None
    rate_per_second: float | None = None
    disable_after: DisableAfter | None = None

    def signing_keys(self) -> list[bytes]:
        return [decode_secret(s) for s in self.signing_secrets]

    def subscribes_to(self, event: str) -> bool:
        return "*" in self.events or event in self.events


@dataclass(frozen=True)
class MetricsSettings:
    """Prometheus metrics: each worker process serves the first free port of port .. port+port_range-1."""

    port: int = 9108
    host: str = "0.0.0.0"
    port_range: int = 16


DEFAULT_WORKER_THREADS = 16
MAX_WORKER_THREADS = 64


@dataclass(frozen=True)
class Settings:
    source: str = "Baremeds"
    environment: str = "production"
    redis_url: str = "redis://127.0.0.1:6379/0"
    database_url: str = "sqlite:///storage/webhooks.db"
    queue_name: str = DEFAULT_QUEUE_NAME
    process_log: str = DEFAULT_PROCESS_LOG
    process_log_retention_days: int = 14
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    endpoints: tuple[Endpoint, ...] = ()
    allow_networks: tuple[str, ...] = ()
    metrics: MetricsSettings | None = None
    worker_threads: int = DEFAULT_WORKER_THREADS
    """POSTs one worker process keeps in flight at once (``worker.threads``)."""

    def delivery_for(self, endpoint: Endpoint | None) -> DeliverySettings:
        """The delivery settings in force for an endpoint (its overrides, else the global ones)."""
        return endpoint.delivery if endpoint is not None and endpoint.delivery is not None else self.delivery

    def attempt_budgets(self) -> dict[str, int]:
        """``max_attempts`` of every endpoint that overrides it, by name."""
        return {e.name: e.delivery.max_attempts for e in self.endpoints if e.delivery is not None}

    def endpoint(self, name: str) -> Endpoint | None:
        for endpoint in self.endpoints:
            if endpoint.name == name:
                return endpoint
        return None

    def secrets(self) -> list[str]:
        """Every configured secret, for masking. The default key is public, so it is not one."""
        keys = [e.key for e in self.endpoints if e.key_configured and e.key != DEFAULT_KEY]
        signing = [s for e in self.endpoints for s in e.signing_secrets]
        return keys + signing + [s[len("whsec_") :] for s in signing]


# --- loading ---------------------------------------------------------------------------------

_TOP_KEYS = {
    "source": str,
    "environment": str,
    "redis_url": str,
    "database_url": str,
    "queue_name": str,
    "process_log": str,
    "process_log_retention_days": int,
    "delivery": dict,
    "endpoints": list,
    "allow_networks": list,
    "metrics": dict,
    "worker": dict,
}
_WORKER_KEYS = {"threads": int}
_METRICS_KEYS = {"port": int, "host": str, "port_range": int}
_DELIVERY_KEYS = {
    "timeout": (int, float),
    "connect_timeout": (int, float),
    "max_attempts": int,
    "backoff": (str, list, dict),
    "retry_4xx": list,
    "max_payload_bytes": int,
    "response_body_limit": int,
    "tls_verify": bool,
    "ca_bundle": str,
}
_ENDPOINT_KEYS = {
    "name": str,
    "url": str,
    "key": str,
    "events": list,
    "include_key_in_body": bool,
    "signing_secret": (str, list),
    "timeout": (int, float),
    "connect_timeout": (int, float),
    "max_attempts": int,
    "backoff": (str, list, dict),
    "max_concurrency": int,
    "rate_per_second": (int, float),
    "disable_after": dict,
}
_OVERRIDE_KEYS = ("timeout", "connect_timeout", "max_attempts", "backoff")
_DISABLE_AFTER_KEYS = {"failed_deliveries": int, "window": (str, int)}
_BACKOFF_KEYS = {
    "base": (int, float),
    "multiplier": (int, float),
    "cap": (int, float),
    "jitter": (int, float),
}


def _type_name(expected: type | tuple[type, ...]) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a mapping",
    }
    return " or ".join(names.get(t, t.__name__) for t in types)


def _check_type(setting: str, value: Any, expected: type | tuple[type, ...]) -> None:
    types = expected if isinstance(expected, tuple) else (expected,)
    # bool is an int in Python; a YAML `true` is never a valid number here.
    if isinstance(value, bool) and bool not in types:
        raise ConfigError(setting, f"expected {_type_name(expected)}, got {value!r}")
    if not isinstance(value, types):
        raise ConfigError(setting, f"expected {_type_name(expected)}, got {type(value).__name__} {value!r}")


def _check_keys(prefix: str, raw: dict, allowed: dict) -> None:
    for key, value in raw.items():
        setting = f"{prefix}{key}"
        if key not in allowed:
            raise ConfigError(setting, f"unknown setting; expected one of: {', '.join(allowed)}")
        _check_type(setting, value, allowed[key])


def _positive(setting: str, value: float) -> None:
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(setting, f"must be greater than 0, got {value!r}")


def _parse_backoff(raw: Any, setting: str = "delivery.backoff") -> Backoff:
    if isinstance(raw, str):
        if raw != "exponential":
            raise ConfigError(setting, f"expected 'exponential', a list of seconds or a mapping, got {raw!r}")
        return ExponentialBackoff()
    if isinstance(raw, list):
        if not raw:
            raise ConfigError(setting, "the list of seconds is empty")
        for i, value in enumerate(raw):
            _check_type(f"{setting}[{i}]", value, int)
            if value < 1:
                raise ConfigError(f"{setting}[{i}]", f"must be at least 1 second, got {value}")
        return ListBackoff(tuple(raw))
    _check_keys(f"{setting}.", raw, _BACKOFF_KEYS)
    backoff = ExponentialBackoff(**{k: float(v) for k, v in raw.items()})
    _positive(f"{setting}.base", backoff.base)
    if backoff.multiplier < 1:
        raise ConfigError(f"{setting}.multiplier", f"must be at least 1, got {backoff.multiplier}")
    if backoff.cap < backoff.base:
        raise ConfigError(f"{setting}.cap", f"must be at least {setting}.base ({backoff.base})")
    if not 0 <= backoff.jitter <= 1:
        raise ConfigError(f"{setting}.jitter", f"must be between 0 and 1, got {backoff.jitter}")
    return backoff


def _parse_delivery(
    raw: dict, prefix: str = "delivery.", base: DeliverySettings | None = None
) -> DeliverySettings:
    """The ``delivery`` mapping, or an endpoint's overrides of it (``prefix`` names where)."""
    if prefix == "delivery.":
        _check_keys(prefix, raw, _DELIVERY_KEYS)
    values: dict[str, Any] = {}
    for key in ("timeout", "connect_timeout"):
        if key in raw:
            _positive(f"{prefix}{key}", raw[key])
            values[key] = float(raw[key])
    for key in ("max_attempts", "max_payload_bytes", "response_body_limit"):
        if key in raw:
            _positive(f"{prefix}{key}", raw[key])
            values[key] = raw[key]
    if "backoff" in raw:
        values["backoff"] = _parse_backoff(raw["backoff"], f"{prefix}backoff")
    if "tls_verify" in raw:
        values["tls_verify"] = raw["tls_verify"]
    if "ca_bundle" in raw:
        if not Path(raw["ca_bundle"]).is_file():
            raise ConfigError("delivery.ca_bundle", f"file {raw['ca_bundle']!r} does not exist")
        values["ca_bundle"] = raw["ca_bundle"]
    if "retry_4xx" in raw:
        codes = raw["retry_4xx"]
        for i, code in enumerate(codes):
            _check_type(f"delivery.retry_4xx[{i}]", code, int)
            if not 400 <= code <= 499:
                raise ConfigError(f"delivery.retry_4xx[{i}]", f"must be a 4xx status code, got {code}")
        values["retry_4xx"] = tuple(codes)
    return replace(base, **values) if base is not None else DeliverySettings(**values)


def _parse_url(setting: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(setting, f"must be an http:// or https:// URL with a host, got {url!r}")
    return url


def parse_duration(setting: str, value: str | int) -> int:
    """Seconds from ``90``, ``45s``, ``30m``, ``12h``, ``5d`` or ``2w``."""
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    else:
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
        text = str(value).strip()
        if not text or not (text[:-1].isdigit() and text[-1] in units) and not text.isdigit():
            raise ConfigError(setting, f"expected a duration like 30m, 12h or 5d, got {value!r}")
        seconds = int(text) if text.isdigit() else int(text[:-1]) * units[text[-1]]
    if seconds <= 0:
        raise ConfigError(setting, f"must be longer than 0, got {value!r}")
    return seconds


def _parse_disable_after(setting: str, raw: dict) -> DisableAfter:
    _check_keys(f"{setting}.", raw, _DISABLE_AFTER_KEYS)
    if "failed_deliveries" not in raw:
        raise ConfigError(f"{setting}.failed_deliveries", "is required")
    _positive(f"{setting}.failed_deliveries", raw["failed_deliveries"])
    window = parse_duration(f"{setting}.window", raw.get("window", "5d"))
    return DisableAfter(raw["failed_deliveries"], window)


def _parse_endpoint(index: int, raw: Any, delivery: DeliverySettings | None = None) -> Endpoint:
    prefix = f"endpoints[{index}]"
    _check_type(prefix, raw, dict)
    _check_keys(f"{prefix}.", raw, _ENDPOINT_KEYS)
    for required in ("name", "url"):
        if required not in raw:
            raise ConfigError(f"{prefix}.{required}", "is required")
    name = raw["name"].strip()
    if not name:
        raise ConfigError(f"{prefix}.name", "must not be empty")
    url = _parse_url(f"{prefix}.url", raw["url"])
    events = raw.get("events", ["*"])
    for i, event in enumerate(events):
        _check_type(f"{prefix}.events[{i}]", event, str)
        if event != "*" and event not in EVENT_NAMES:
            raise ConfigError(
                f"{prefix}.events[{i}]",
                f"unknown event {event!r}; expected '*' or one of: {', '.join(EVENT_NAMES)}",
            )
    key = raw.get("key")
    if key is not None and not key:
        raise ConfigError(f"{prefix}.key", "must not be empty; leave it out to use the default key")
    secrets = raw.get("signing_secret", [])
    secrets = [secrets] if isinstance(secrets, str) else secrets
    for i, secret in enumerate(secrets):
        setting = f"{prefix}.signing_secret" + (
            f"[{i}]" if isinstance(raw.get("signing_secret"), list) else ""
        )
        _check_type(setting, secret, str)
        try:
            decode_secret(secret)
        except ValueError as exc:
            # The message never repeats the secret itself.
            raise ConfigError(
                setting, f"{exc} (a Standard Webhooks secret: whsec_ + base64 of 24-64 bytes)"
            ) from None
    overrides = {k: raw[k] for k in _OVERRIDE_KEYS if k in raw}
    for limit in ("max_concurrency", "rate_per_second"):
        if limit in raw:
            _positive(f"{prefix}.{limit}", raw[limit])
    return Endpoint(
        name=name,
        url=url,
        key=key if key is not None else DEFAULT_KEY,
        events=tuple(events),
        include_key_in_body=raw.get("include_key_in_body", False),
        key_configured=key is not None,
        signing_secrets=tuple(secrets),
        delivery=_parse_delivery(overrides, f"{prefix}.", delivery or DeliverySettings())
        if overrides
        else None,
        max_concurrency=raw.get("max_concurrency"),
        rate_per_second=float(raw["rate_per_second"]) if "rate_per_second" in raw else None,
        disable_after=_parse_disable_after(f"{prefix}.disable_after", raw["disable_after"])
        if "disable_after" in raw
        else None,
    )


def parse_settings(raw: dict | None, env: dict[str, str] | None = None) -> Settings:
    """Validates a mapping (as read from YAML) and applies the environment overrides.

    Raises:
        ConfigError: naming the first bad setting.
    """
    env = os.environ if env is None else env
    raw = dict(raw or {})
    _check_type("(top level)", raw, dict)
    _check_keys("", raw, _TOP_KEYS)
    values: dict[str, Any] = {}
    for key in ("source", "environment", "redis_url", "database_url", "queue_name", "process_log"):
        if key in raw:
            if not raw[key].strip():
                raise ConfigError(key, "must not be empty")
            values[key] = raw[key]
    if "process_log_retention_days" in raw:
        _positive("process_log_retention_days", raw["process_log_retention_days"])
        values["process_log_retention_days"] = raw["process_log_retention_days"]
    if "delivery" in raw:
        values["delivery"] = _parse_delivery(raw["delivery"])
    endpoints = tuple(
        _parse_endpoint(i, e, values.get("delivery")) for i, e in enumerate(raw.get("endpoints", []))
    )
    seen: set[str] = set()
    for i, endpoint in enumerate(endpoints):
        if endpoint.name in seen:
            raise ConfigError(f"endpoints[{i}].name", f"duplicate endpoint name {endpoint.name!r}")
        seen.add(endpoint.name)
    values["endpoints"] = endpoints
    if "metrics" in raw:
        _check_keys("metrics.", raw["metrics"], _METRICS_KEYS)
        metrics = MetricsSettings(**raw["metrics"])
        if not 1 <= metrics.port <= 65535:
            raise ConfigError("metrics.port", f"must be a port number 1-65535, got {metrics.port}")
        if metrics.port_range < 1 or metrics.port + metrics.port_range - 1 > 65535:
            raise ConfigError(
                "metrics.port_range",
                f"must be at least 1 and end at port 65535 or below, got {metrics.port_range}",
            )
        values["metrics"] = metrics
    if "worker" in raw:
        _check_keys("worker.", raw["worker"], _WORKER_KEYS)
        threads = raw["worker"].get("threads", DEFAULT_WORKER_THREADS)
        if not 1 <= threads <= MAX_WORKER_THREADS:
            raise ConfigError("worker.threads", f"must be between 1 and {MAX_WORKER_THREADS}, got {threads}")
        values["worker_threads"] = threads
    if "allow_networks" in raw:
        for i, entry in enumerate(raw["allow_networks"]):
            _check_type(f"allow_networks[{i}]", entry, str)
            try:
                parse_networks([entry])
            except ValueError:
                raise ConfigError(
                    f"allow_networks[{i}]", f"expected a network like 127.0.0.0/8 or ::1/128, got {entry!r}"
                ) from None
        values["allow_networks"] = tuple(raw["allow_networks"])
    if env.get("DISPATCHER_REDIS_URL"):
        values["redis_url"] = env["DISPATCHER_REDIS_URL"]
    if env.get("DISPATCHER_DATABASE_URL"):
        values["database_url"] = env["DISPATCHER_DATABASE_URL"]
    settings = Settings(**values)
    if settings.environment == "production":
        _check_production(settings)
    if urlsplit(settings.redis_url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError("redis_url", f"expected a redis:// URL, got {settings.redis_url!r}")
    if "://" not in settings.database_url:
        raise ConfigError(
            "database_url",
            f"expected an SQLAlchemy URL such as sqlite:///path.db, got {settings.database_url!r}",
        )
    return settings


def _check_production(settings: Settings) -> None:
    """Production sends PHI: only over verified TLS."""
    if not settings.delivery.tls_verify:
        raise ConfigError("delivery.tls_verify", "must be true when environment is production")
    for i, endpoint in enumerate(settings.endpoints):
        if urlsplit(endpoint.url).scheme != "https":
            raise ConfigError(
                f"endpoints[{i}].url",
                f"must be https:// when environment is production, got {endpoint.url!r} "
                "(set environment: staging for a plain-http test endpoint)",
            )


def production_warnings(settings: Settings) -> list[str]:
    """What ``config check`` refuses in production beyond what stops a worker."""
    if settings.environment != "production":
        return []
    return [
        f"endpoints[{i}].key: endpoint {e.name!r} uses the default key xxx; configure a unique key"
        for i, e in enumerate(settings.endpoints)
        if e.key == DEFAULT_KEY
    ]


def config_path(env: dict[str, str] | None = None) -> Path | None:
    """The file that would be loaded: ``DISPATCHER_CONFIG``, else ``./config.yaml``, else none."""
    env = os.environ if env is None else env
    named = env.get("DISPATCHER_CONFIG")
    if named:
        return Path(named)
    local = Path("config.yaml")
    return local if local.exists() else None


def load_settings(path: str | os.PathLike | None = None, env: dict[str, str] | None = None) -> Settings:
    """Loads and validates the configuration.

    Raises:
        ConfigError: the file is missing, not YAML, or a setting is invalid.
    """
    file = Path(path) if path is not None else config_path(env)
    raw: Any = {}
    if file is not None:
        try:
            raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            setting = "DISPATCHER_CONFIG" if path is None else "config file"
            raise ConfigError(setting, f"file {str(file)!r} does not exist") from None
        except OSError as exc:
            raise ConfigError(str(file), f"cannot be read: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(str(file), f"is not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(str(file), "must hold a mapping of settings at the top level")
    return parse_settings(raw, env)
