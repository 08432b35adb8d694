"""Telemetry's settings, as values (``telemetry:`` in the file, and the standard ``OTEL_*``
variables): where OpenTelemetry traces and metrics go, the service they are named after, and
which traces are sampled.

:func:`resolve_telemetry` is the one place the ``OTEL_*`` variables are read, from the mapping
it is handed (the loader hands it the environment). A key the file sets wins; telemetry is on
with a collector -- the file's ``otlp_endpoint``, else ``OTEL_EXPORTER_OTLP_ENDPOINT`` -- unless
``OTEL_SDK_DISABLED`` is ``true``; and only then do the other variables fill what the file leaves
unset (a host application's own OpenTelemetry variables are not read while the dispatcher's
telemetry is off). Telemetry never stops events from being dispatched: a variable this project
cannot use is never an error (the file's keys are: the file is ours) but a line in
:attr:`TelemetrySettings.warnings` naming it and what was used instead, never quoting its value.
An empty variable is ignored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

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
PROTOCOL = "http/protobuf"
"""The only OTLP protocol exported (OTLP/HTTP with protobuf)."""
SIGNAL_PATHS = ("/v1/traces", "/v1/metrics")
"""What the exporters append to the collector's base URL."""

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
SERVICE_NAME_VARIABLE = "OTEL_SERVICE_NAME"
SAMPLER_VARIABLE = "OTEL_TRACES_SAMPLER"
SAMPLER_ARG_VARIABLE = "OTEL_TRACES_SAMPLER_ARG"
DISABLED_VARIABLE = "OTEL_SDK_DISABLED"
PROTOCOL_VARIABLE = "OTEL_EXPORTER_OTLP_PROTOCOL"
TRACES_ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"

_RATIO_RULE = "must be a number from 0 to 1 (0.25 samples a quarter of the traces)"
_SAMPLER_WORD = re.compile(r"[a-z][a-z0-9_]{0,63}")
"""A sampler's name as OpenTelemetry spells them: quoted in a warning; anything else is not."""
PROTOCOL_WARNING = (
    f"{PROTOCOL_VARIABLE}: only OTLP over HTTP with protobuf is supported; "
    f"set {PROTOCOL_VARIABLE}={PROTOCOL} or leave it unset"
)
TRACES_ENDPOINT_WARNING = (
    f"{TRACES_ENDPOINT_VARIABLE} is not read; set {ENDPOINT_VARIABLE} to the collector's base URL"
)
DISABLED_WARNING = f"{DISABLED_VARIABLE}: only true turns telemetry off; telemetry is on"


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
    warnings: tuple[str, ...] = ()
    """What could not be used of the ``OTEL_*`` variables, one line each naming the variable and
    what was used instead (``config check`` and a worker at start say them); never a value."""

    @property
    def enabled(self) -> bool:
        """Whether traces are exported at all."""
        return self.otlp_endpoint is not None


def check_otlp_endpoint(url: str, quote: bool = True) -> str:
    """An OTLP/HTTP collector's base URL: http(s), a host, no credentials, no query or fragment,
    not ending in a path the exporter appends; returned without a trailing ``/``. ``quote``: the
    problem may quote the URL (never one from the environment)."""
    url_text(url)
    if "://" not in url:  # collector:4318: urlsplit would take "collector" for the scheme
        raise Problem(
            "is missing http:// or https:// in front: expected an http:// or https:// URL "
            "such as http://collector:4318"
        )
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
    for signal in SIGNAL_PATHS:
        if parts.path.rstrip("/").endswith(signal):
            raise Problem(
                f"ends in {signal}, which the exporter appends: give the collector's base URL, "
                f"without {signal}"
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
    """The telemetry settings from what the file set (None: left unset, else already checked)
    and ``env``. Never raises: what a variable holds that cannot be used is left for the default
    and said in :attr:`TelemetrySettings.warnings`."""
    notes: list[str] = []
    endpoint = _endpoint(env, otlp_endpoint, notes)
    sampling = None if sample_ratio is None else (FILE_RATIO_SAMPLER, float(sample_ratio))
    if endpoint is not None:  # on: the variables fill what the file leaves unset
        if env.get(PROTOCOL_VARIABLE, "").strip().lower() not in ("", PROTOCOL):
            notes.append(PROTOCOL_WARNING)
        if service_name is None:
            using = f"using {DEFAULT_SERVICE_NAME}"
            service_name = _read(env, SERVICE_NAME_VARIABLE, check_service_name, notes, using)
        if sampling is None:
            sampling = _sampling(env, notes)
    sampler, ratio = sampling or (DEFAULT_SAMPLER, 1.0)
    return TelemetrySettings(
        otlp_endpoint=endpoint,
        service_name=service_name or DEFAULT_SERVICE_NAME,
        sampler=sampler,
        ratio=ratio,
        warnings=tuple(notes),
    )


def _endpoint(env: Mapping[str, str], written: str | None, notes: list[str]) -> str | None:
    """The collector: the file's, else ``OTEL_EXPORTER_OTLP_ENDPOINT``'s; None (off) without
    one, with ``OTEL_SDK_DISABLED=true`` (trimmed, any case: any other value is not disabled, as
    OpenTelemetry says), or with a variable that is not a base URL (a warning)."""
    disabled = env.get(DISABLED_VARIABLE, "").strip().lower()
    if disabled == "true":
        return None
    endpoint = written
    if endpoint is None:
        endpoint = _read(env, ENDPOINT_VARIABLE, _env_endpoint, notes, "telemetry is off")
        if not env.get(ENDPOINT_VARIABLE) and env.get(TRACES_ENDPOINT_VARIABLE):
            notes.append(TRACES_ENDPOINT_WARNING)
    if endpoint is not None and disabled not in ("", "false"):
        notes.append(DISABLED_WARNING)  # 1, yes: taken for false, which was likely not meant
    return endpoint


def _read(
    env: Mapping[str, str], variable: str, check: Callable[[str], str], notes: list[str], instead: str
) -> str | None:
    """``variable`` checked by ``check``; None when unset or empty, or when ``check`` refuses
    it: then a warning naming the variable, the problem and ``instead`` (what is done instead)."""
    value = env.get(variable, "")
    if not value:
        return None
    try:
        return check(unicode_text(value))
    except Problem as problem:
        notes.append(f"{variable}: {problem.text}; {instead}")
        return None


def _env_endpoint(url: str) -> str:
    return check_otlp_endpoint(url, quote=False)


def _sampling(env: Mapping[str, str], notes: list[str]) -> tuple[str, float]:
    """``OTEL_TRACES_SAMPLER`` and, for a ``*traceidratio`` one, ``OTEL_TRACES_SAMPLER_ARG``
    (1.0 when unset or not a ratio); the default sampler without the first or for one this
    project does not support."""
    using = f"using {DEFAULT_SAMPLER}"
    sampler = _read(env, SAMPLER_VARIABLE, _sampler, notes, using) or DEFAULT_SAMPLER
    if sampler not in RATIO_SAMPLERS:
        return sampler, 1.0
    ratio = _read(env, SAMPLER_ARG_VARIABLE, _ratio, notes, "using 1.0")
    return sampler, 1.0 if ratio is None else float(ratio)


def _sampler(value: str) -> str:
    name = value.strip().lower()
    if name not in SAMPLERS:
        what = name if _SAMPLER_WORD.fullmatch(name) else "this sampler"
        raise Problem(f"{what} is not supported here")
    return name


def _ratio(value: str) -> str:
    try:
        ratio = float(value)
    except ValueError:
        raise Problem(_RATIO_RULE) from None
    if not math.isfinite(ratio) or not 0 <= ratio <= 1:
        raise Problem(_RATIO_RULE)
    return repr(ratio)
