"""The ``telemetry:`` section of the file, as a pydantic model: where OpenTelemetry traces go
(an OTLP/HTTP collector), the service name and the share of traces sampled. Its value is
:class:`~.telemetry_settings.TelemetrySettings`, the ``OTEL_*`` variables filling what the file
leaves unset while telemetry is on (:func:`~.telemetry_settings.resolve_telemetry`). A bad key
is a ConfigError (the file is ours); a variable never is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import AfterValidator, AllowInfNan, ConfigDict, Strict

from . import fields as f
from .sections import Section, setting
from .telemetry_settings import (
    DEFAULT_SERVICE_NAME,
    MAX_SERVICE_NAME_CHARS,
    TelemetrySettings,
    check_otlp_endpoint,
    check_service_name,
    resolve_telemetry,
)

OtlpEndpoint = Annotated[
    f.Text,
    AfterValidator(check_otlp_endpoint),
    f.Hint(
        format="uri",
        pattern=r"^(?!.*/v1/(traces|metrics)/*$)[Hh][Tt][Tt][Pp][Ss]?://[^/?#@]+(/[^?#]*)?$",
        examples=["http://collector:4318"],
    ),
]
"""An OTLP/HTTP collector's base URL: http(s), a host, no credentials, query or fragment, and
not ending in /v1/traces or /v1/metrics (the exporter appends them)."""
ServiceName = Annotated[
    f.Required, AfterValidator(check_service_name), f.Hint(maxLength=MAX_SERVICE_NAME_CHARS)
]
SampleRatio = Annotated[float, Strict(), AllowInfNan(False), f.Range(0, 1, meaning="a number from 0 to 1")]


class TelemetryFile(Section):
    """OpenTelemetry traces, exported over OTLP/HTTP; every key optional, each OTEL_* variable
    filling only what the file leaves unset, and only while telemetry is on."""

    model_config = ConfigDict(title="telemetry")

    otlp_endpoint: f.Omittable[OtlpEndpoint] = setting(
        None,
        "The OTLP/HTTP collector's base URL, http:// or https://, without /v1/traces (/v1/traces "
        "and /v1/metrics are appended); OTEL_EXPORTER_OTLP_ENDPOINT when left out; telemetry is "
        "off without either, or with OTEL_SDK_DISABLED=true.",
    )
    service_name: ServiceName = setting(
        DEFAULT_SERVICE_NAME,
        "The service.name of the spans (1-255 characters); OTEL_SERVICE_NAME when left out "
        "(read only while telemetry is on).",
    )
    sample_ratio: f.Omittable[SampleRatio] = setting(
        None,
        "The share of traces sampled, 0 to 1 (parentbased_traceidratio: a trace's first span decides); "
        "OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG when left out (read only while telemetry "
        "is on), else every trace.",
    )

    def to_settings(self, env: Mapping[str, str]) -> TelemetrySettings:
        """The section's value, the ``OTEL_*`` variables of ``env`` filling what it leaves unset
        while telemetry is on; what a variable holds that cannot be used is in its ``warnings``,
        never an error."""
        return resolve_telemetry(
            env,
            otlp_endpoint=self.otlp_endpoint,
            service_name=self.service_name if "service_name" in self.model_fields_set else None,
            sample_ratio=self.sample_ratio,
        )
