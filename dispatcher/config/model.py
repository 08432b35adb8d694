"""The configuration file, as pydantic models: every key, its type, bounds, default and meaning,
defined once.

Validating the mapping read from YAML against :class:`ConfigFile` is the whole validation (the
types and their checks are in :mod:`.fields`); :meth:`ConfigFile.to_settings` then turns the file
into the frozen values of :mod:`.settings` that every other room reads. The same models give
the file's JSON Schema (:func:`file_schema`, ``dispatcher config schema``). A mistake is a
pydantic error, written as one ConfigError by :mod:`.problems`.

The models follow the file's shape, not the program's: ``signing_secret`` is a string or a list,
``backoff`` a name, a list or a mapping, ``window`` a duration, ``worker.threads`` nested.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Self
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, model_validator
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from . import fields as f
from . import partner
from . import settings as frozen
from .alerts import AlertsFile, BreakerFile, BreakerForm, breaker_value
from .api import ApiFile
from .checks import Problem, shown, shown_url
from .console import ConsoleFile
from .endpoint_file import BackoffForm, EndpointFile, backoff_value
from .partner_settings import NO_PROXY
from .sections import Section, setting
from .telemetry import TelemetryFile

_SETTINGS = frozen.Settings()
_DELIVERY = _SETTINGS.delivery
_METRICS = frozen.MetricsSettings()
_RETENTION = frozen.RetentionSettings()
_NO_ENVIRONMENT: Mapping[str, str] = MappingProxyType({})


class DeliveryFile(Section):
    """How every delivery is sent and retried (an endpoint may override the first four)."""

    model_config = ConfigDict(title="delivery")

    timeout: f.Seconds = setting(_DELIVERY.timeout, "Seconds to wait for the partner's answer.")
    connect_timeout: f.Seconds = setting(_DELIVERY.connect_timeout, "Seconds to wait to connect.")
    max_attempts: f.Attempts = setting(_DELIVERY.max_attempts, "Attempts, the first included.")
    backoff: BackoffForm = setting(
        "exponential",
        "The wait before each retry: 'exponential' (base 30 s, multiplier 2.5, cap 3600 s, "
        "jitter 0.1), a mapping {base, multiplier, cap, jitter}, or a list of seconds whose last repeats.",
    )
    retry_4xx: list[f.Status4xx] = setting(
        list(_DELIVERY.retry_4xx), "4xx codes retried; any other is final."
    )
    max_payload_bytes: f.BodyBytes = setting(_DELIVERY.max_payload_bytes, "Largest body dispatch() accepts.")
    response_body_limit: f.BodyBytes = setting(_DELIVERY.response_body_limit, "Most bytes of an answer read.")
    tls_verify: f.Flag = setting(_DELIVERY.tls_verify, "Verify partners' certificates; true in production.")
    ca_bundle: f.Omittable[f.CaBundle] = setting(
        None, "A PEM CA bundle to verify partners' certificates with."
    )
    proxy: f.Omittable[partner.ProxyUrl] = setting(
        None, "The HTTP proxy every delivery and token request goes through (CONNECT for https://)."
    )
    no_proxy: list[partner.NoProxyEntry] = setting(
        [], "Hosts sent to directly despite proxy: host, .domain, IP, network or *."
    )
    breaker: BreakerForm = setting(
        BreakerFile(), "Every endpoint's circuit breaker: a mapping, or off (an endpoint's own wins)."
    )

    def to_settings(self) -> frozen.DeliverySettings:
        return frozen.DeliverySettings(
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
            max_attempts=self.max_attempts,
            backoff=backoff_value(self.backoff),
            retry_4xx=tuple(self.retry_4xx),
            max_payload_bytes=self.max_payload_bytes,
            response_body_limit=self.response_body_limit,
            tls_verify=self.tls_verify,
            ca_bundle=self.ca_bundle,
            proxy=None if self.proxy == NO_PROXY else self.proxy,
            no_proxy=tuple(self.no_proxy),
            breaker=breaker_value(self.breaker),
        )


class MetricsFile(Section):
    """Prometheus metrics: each worker process serves /metrics on the first free port of
    port .. port + port_range - 1."""

    model_config = ConfigDict(title="metrics")

    port: f.Port = setting(_METRICS.port, "The first port to try.")
    host: f.Text = setting(_METRICS.host, "The address to listen on.")
    port_range: f.PortRange = setting(_METRICS.port_range, "How many ports to try, from port on.")

    @model_validator(mode="after")
    def _last_port(self) -> Self:
        if self.port + self.port_range - 1 > f.MAX_PORT:
            raise Problem(
                f"must be at least 1 and end at port {f.MAX_PORT} or below, got {shown(self.port_range)}",
                at=("port_range",),
            )
        return self


class RetentionFile(Section):
    """How long the log keeps PHI and rows; deliveries still to be sent are never touched."""

    model_config = ConfigDict(title="retention")

    payload_days: f.KeepDays | None = setting(
        _RETENTION.payload_days,
        "Days after a final delivery's last update its payload, request payloads and response "
        "bodies are erased (the row stays); null keeps them.",
    )
    rows_days: f.KeepDays | None = setting(
        _RETENTION.rows_days,
        "Days after which final deliveries are deleted with their attempts; null keeps them.",
    )


class WorkerFile(Section):
    """One worker process."""

    model_config = ConfigDict(title="worker")

    threads: f.Threads = setting(_SETTINGS.worker_threads, "POSTs in flight per worker process (1-64).")


class ConfigFile(Section):
    """The configuration of Baremeds' outgoing webhooks sender (config.yaml). Every key is optional."""

    model_config = ConfigDict(title="Baremeds webhook dispatcher configuration")

    source: f.Required = setting(_SETTINGS.source, "metadata.source of every payload.")
    environment: f.Required = setting(_SETTINGS.environment, "metadata.environment; production: https only.")
    redis_url: f.RedisUrl = setting(_SETTINGS.redis_url, "The RQ Redis; DISPATCHER_REDIS_URL overrides it.")
    database_url: f.DatabaseUrl = setting(
        _SETTINGS.database_url, "The log; DISPATCHER_DATABASE_URL overrides it."
    )
    queue_name: f.Required = setting(_SETTINGS.queue_name, "The RQ queue.")
    process_log: f.Required = setting(_SETTINGS.process_log, "The process log (daily files beside it).")
    process_log_retention_days: f.RetentionDays = setting(_SETTINGS.process_log_retention_days, "Days kept.")
    delivery: DeliveryFile = Field(
        default_factory=lambda: DeliveryFile(), description="How deliveries are sent and retried."
    )
    endpoints: list[EndpointFile] = setting([], "The partner endpoints; none by default.")
    allow_networks: list[f.Network] = setting([], "Non-public networks the sender may connect to.")
    metrics: f.Omittable[MetricsFile] = setting(None, "Off unless set.")
    worker: WorkerFile = Field(default_factory=lambda: WorkerFile(), description="Each worker process.")
    retention: RetentionFile = Field(
        default_factory=lambda: RetentionFile(), description="How long the log keeps PHI and rows."
    )
    idempotency_ttl: f.Ttl = setting(
        "24h",
        "How long a dispatch's idempotency key is remembered: a repeat within it returns the first "
        "dispatch's request ids and sends nothing.",
        validate_default=True,
    )
    storage_keys: list[f.StorageKey] = setting(
        [],
        "Encryption at rest of payloads and response bodies: the first key seals, every one opens "
        "(dispatcher keys generate --storage); DISPATCHER_STORAGE_KEYS (comma-separated) overrides "
        "it. Required by a production worker.",
    )
    search_key: f.Omittable[f.SearchKey] = setting(
        None,
        "The HMAC key of the business-id search index (order number, prescription, encounter or "
        "patient id), 32+ printable ASCII characters (dispatcher keys generate --search); "
        "DISPATCHER_SEARCH_KEY overrides it. Without it there is no business-id search.",
    )
    console: ConsoleFile = Field(
        default_factory=lambda: ConsoleFile(), description="The operator console (dispatcher console)."
    )
    alerts: AlertsFile = Field(
        default_factory=lambda: AlertsFile(), description="Alerts to the people on call: channels and rules."
    )
    api: ApiFile = Field(
        default_factory=lambda: ApiFile(),
        description="The HTTP API (dispatcher api): serving, bodies, rate limit.",
    )
    telemetry: TelemetryFile = Field(
        default_factory=lambda: TelemetryFile(),
        description="OpenTelemetry traces: the OTLP/HTTP collector, service name, sampling; "
        "the OTEL_* variables fill what it leaves unset.",
    )

    @model_validator(mode="after")
    def _whole_file(self) -> Self:
        seen: set[str] = set()
        for i, endpoint in enumerate(self.endpoints):
            if endpoint.name in seen:
                raise Problem(f"duplicate endpoint name {shown(endpoint.name)}", at=("endpoints", i, "name"))
            seen.add(endpoint.name)
        if self.environment == "production":
            self._production()
        return self

    def _production(self) -> None:
        """Production sends PHI: only over verified TLS."""
        if not self.delivery.tls_verify:
            raise Problem("must be true when environment is production", at=("delivery", "tls_verify"))
        for i, endpoint in enumerate(self.endpoints):
            if urlsplit(endpoint.url).scheme != "https":
                raise Problem(
                    f"must be https:// when environment is production, got {shown_url(endpoint.url)} "
                    "(set environment: staging for a plain-http test endpoint)",
                    at=("endpoints", i, "url"),
                )
            oauth2 = endpoint.auth.oauth2 if endpoint.auth is not None else None
            if oauth2 is not None and urlsplit(oauth2.token_url).scheme != "https":
                raise Problem(
                    f"must be https:// when environment is production, got {shown_url(oauth2.token_url)}",
                    at=("endpoints", i, "auth", "oauth2", "token_url"),
                )

    def to_settings(self, env: Mapping[str, str] = _NO_ENVIRONMENT) -> frozen.Settings:
        """The file's values; ``env``: the environment the ``OTEL_*`` variables are read from
        (none by default).

        Raises:
            ConfigError: a bad ``OTEL_*`` variable, naming it.
        """
        delivery = self.delivery.to_settings()
        metrics = self.metrics
        return frozen.Settings(
            source=self.source,
            environment=self.environment,
            redis_url=self.redis_url,
            database_url=self.database_url,
            queue_name=self.queue_name,
            process_log=self.process_log,
            process_log_retention_days=self.process_log_retention_days,
            delivery=delivery,
            endpoints=tuple(endpoint.to_endpoint(delivery) for endpoint in self.endpoints),
            allow_networks=tuple(self.allow_networks),
            metrics=frozen.MetricsSettings(metrics.port, metrics.host, metrics.port_range)
            if metrics
            else None,
            worker_threads=self.worker.threads,
            retention=frozen.RetentionSettings(self.retention.payload_days, self.retention.rows_days),
            storage_keys=tuple(self.storage_keys),
            search_key=self.search_key,
            idempotency_ttl_seconds=self.idempotency_ttl,
            console=self.console.to_settings(),
            alerts=self.alerts.to_settings(),
            api=self.api.to_settings(),
            telemetry=self.telemetry.to_settings(env),
        )


class _FileSchema(GenerateJsonSchema):
    """The file's JSON Schema: no ``default: null`` for a setting that is off unless set, and no
    title for every field (its key says it)."""

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        if schema.get("default", ...) is None:
            return self.generate_inner(schema["schema"])
        return super().default_schema(schema)

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def file_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of the configuration file; a string the loader checks also
    takes a ``${NAME}`` reference (:mod:`.interpolation`)."""
    from .interpolation import REFERENCE_SCHEMA, accept_references

    schema = accept_references(ConfigFile.model_json_schema(schema_generator=_FileSchema))
    schema["$defs"]["EnvironmentReference"] = REFERENCE_SCHEMA
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
