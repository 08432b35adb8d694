"""Telemetry's settings, as values (``telemetry:`` in the file, and the standard ``OTEL_*``
variables): where OpenTelemetry traces and metrics go, the service they are named after, and
which traces are sampled.

:func:`resolve_telemetry` is the one place the ``OTEL_*`` variables are read, from the mapping
it is handed (the loader hands it the environment): a key the file sets wins, and a variable
fills what the file leaves unset (a variable the file makes useless is not read, so not
checked); ``OTEL_SDK_DISABLED=true`` turns telemetry off whatever the file says. An empty
variable is ignored. A bad variable is a one-line ConfigError naming it that never quotes its
value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import ConfigError
from .checks import Problem, shown_url, unicode_text, url_text

SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
"""The samplers ``OTEL_TRACES_SAMPLER`` may name (OpenTelemetry's names)."""
RATIO_SAMPLERS = frozenset({"traceidratio", "parentbased_traceidratio"})
"""The samplers that take ``OTEL_TRACES_SAMPLER_ARG``, a ratio."""
DEFAULT_SAMPLER = "parentbased_always_on"
FILE_RATIO_SAMPLER = "parentbased_traceidratio"
"""The sampler of ``telemetry.sample_ratio``: a trace's first span decides, its children follow."""
DEFAULT_SERVICE_NAME = "dispatcher"
MAX_SERVICE_NAME_CHARS = 255

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
SERVICE_NAME_VARIABLE = "OTEL_SERVICE_NAME"
SAMPLER_VARIABLE = "OTEL_TRACES_SAMPLER"
SAMPLER_ARG_VARIABLE = "OTEL_TRACES_SAMPLER_ARG"
DISABLED_VARIABLE = "OTEL_SDK_DISABLED"

_RATIO_RULE = "must be a number from 0 to 1 (0.25 samples a quarter of the traces)"


@dataclass(frozen=True)
class TelemetrySettings:
    """OpenTelemetry: traces (and metrics) exported over OTLP/HTTP to ``otlp_endpoint``."""

    otlp_endpoint: str | None = None
    """The OTLP/HTTP collector's base URL, without a trailing ``/`` (the exporter appends
    ``/v1/traces`` and ``/v1/metrics``); None: telemetry is off."""
    service_name: str = DEFAULT_SERVICE_NAME
    """The ``service.name`` the spans are exported under."""
    sampler: str = DEFAULT_SAMPLER
    """One of :data:`SAMPLERS`."""
    ratio: float = 1.0
    """The share of traces sampled by a ``*traceidratio`` sampler (0 to 1); unused by the others."""

    @property
    def enabled(self) -> bool:
        """Whether traces are exported at all."""
        return self.otlp_endpoint is not None


def check_otlp_endpoint(url: str, quote: bool = True) -> str:
    """An OTLP/HTTP collector's base URL: http(s), a host, no credentials, no query or fragment;
    returned without a trailing ``/``. ``quote``: the problem may quote the URL (never one from
    the environment)."""
    url_text(url)
    got = f", got {shown_url(url)}" if quote else ""
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port  # a port that is not a number raises here
    except ValueError:  # an unclosed [IPv6] bracket, a port that is not a number
        raise Problem(f"is not a valid URL{got}") from None
    if "@" in parts.netloc:
        raise Problem(
            "must not carry credentials (user:password@): they would show wherever the URL is shown"
        )
    if parts.scheme not in ("http", "https") or not host:
        raise Problem(f"must be an http:// or https:// URL with a host, such as http://collector:4318{got}")
    if "?" in url or "#" in url:
        raise Problem(
            "must not have a query (?) or a fragment (#): give the collector's base URL "
            "(/v1/traces and /v1/metrics are appended)"
        )
    return url.rstrip("/")


def check_service_name(name: str) -> str:
    """The ``service.name``: not empty, at most :data:`MAX_SERVICE_NAME_CHARS` characters."""
    if not name.strip():
        raise Problem("must not be empty")
    if len(name) > MAX_SERVICE_NAME_CHARS:
        raise Problem(f"must be at most {MAX_SERVICE_NAME_CHARS} characters, got {len(name)}")
    return name


def resolve_telemetry(
    env: Mapping[str, str],
    *,
    otlp_endpoint: str | None = None,
    service_name: str | None = None,
    sample_ratio: float | None = None,
) -> TelemetrySettings:
    """The telemetry settings from what the file set (None: left unset) and ``env``.

    Raises:
        ConfigError: a variable that is read is bad; it names the variable, not its value.
    """
    endpoint = otlp_endpoint if otlp_endpoint is not None else _read(env, ENDPOINT_VARIABLE, _env_endpoint)
    name = service_name if service_name is not None else _read(env, SERVICE_NAME_VARIABLE, check_service_name)
    if sample_ratio is not None:
        sampler, ratio = FILE_RATIO_SAMPLER, float(sample_ratio)
    else:
        sampler, ratio = _sampling(env)
    return TelemetrySettings(
        otlp_endpoint=None if _disabled(env) else endpoint,
        service_name=DEFAULT_SERVICE_NAME if name is None else name,
        sampler=sampler,
        ratio=ratio,
    )


def _read(env: Mapping[str, str], variable: str, check: Callable[[str], str]) -> str | None:
    """``variable`` checked by ``check``, None when unset or empty; a problem names the variable."""
    value = env.get(variable, "")
    if not value:
        return None
    try:
        return check(unicode_text(value))
    except Problem as problem:
        raise ConfigError(variable, problem.text) from None


def _env_endpoint(url: str) -> str:
    return check_otlp_endpoint(url, quote=False)


def _sampling(env: Mapping[str, str]) -> tuple[str, float]:
    """``OTEL_TRACES_SAMPLER`` and, for a ``*traceidratio`` one, ``OTEL_TRACES_SAMPLER_ARG``
    (1.0 when unset); the default sampler without the first."""
    sampler = _read(env, SAMPLER_VARIABLE, _sampler) or DEFAULT_SAMPLER
    if sampler not in RATIO_SAMPLERS:
        return sampler, 1.0
    ratio = _read(env, SAMPLER_ARG_VARIABLE, _ratio)
    return sampler, 1.0 if ratio is None else float(ratio)


def _sampler(value: str) -> str:
    name = value.strip().lower()
    if name not in SAMPLERS:
        raise Problem(f"must be one of: {', '.join(SAMPLERS)}")
    return name


def _ratio(value: str) -> str:
    try:
        ratio = float(value)
    except ValueError:
        raise Problem(_RATIO_RULE) from None
    if not math.isfinite(ratio) or not 0 <= ratio <= 1:
        raise Problem(_RATIO_RULE)
    return repr(ratio)


def _disabled(env: Mapping[str, str]) -> bool:
    """``OTEL_SDK_DISABLED``: true (any case) turns telemetry off; false, empty or unset leaves it."""
    value = _read(env, DISABLED_VARIABLE, _flag)
    return value == "true"


def _flag(value: str) -> str:
    flag = value.strip().lower()
    if flag not in ("true", "false"):
        raise Problem("must be true or false")
    return flag
