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

from dataclasses import replace
from typing import Annotated, Any, Self
from urllib.parse import urlsplit

from pydantic import ConfigDict, Discriminator, Field, Tag, model_validator
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from . import fields as f
from . import partner
from . import settings as frozen
from .checks import Problem, shown, shown_url
from .console import ConsoleFile
from .partner_settings import NO_PROXY
from .sections import Section, setting

_SETTINGS = frozen.Settings()
_DELIVERY = _SETTINGS.delivery
_BACKOFF = frozen.ExponentialBackoff()
_METRICS = frozen.MetricsSettings()
_RETENTION = frozen.RetentionSettings()
OVERRIDES = ("timeout", "connect_timeout", "max_attempts", "backoff")
"""The delivery settings an endpoint may set for itself."""


class BackoffMapping(Section):
    """Exponential backoff, tuned: the wait before retry n is min(cap, base * multiplier ** (n - 1)),
    lengthened by a random 0 to jitter share of it (jitter never shortens a wait)."""

    model_config = ConfigDict(title="backoff mapping")

    base: f.Wait = setting(_BACKOFF.base, "Seconds before the first retry.")
    multiplier: f.Multiplier = setting(_BACKOFF.multiplier, "Each wait is this many times the one before.")
    cap: f.Wait = setting(_BACKOFF.cap, "The longest wait, in seconds; at least base.")
    jitter: f.Jitter = setting(_BACKOFF.jitter, "Lengthens each wait by a random 0 to jitter share.")

    @model_validator(mode="after")
    def _cap_reaches_base(self) -> Self:
        if self.cap < self.base:
            raise Problem(f"must be at least {{sibling}} ({self.base})", at=("cap",), sibling="base")
        return self


def _backoff_form(value: Any) -> str | None:
    if isinstance(value, str):
        return "<name>"
    if isinstance(value, list):
        return "<list>"
    return "<mapping>" if isinstance(value, dict | BackoffMapping) else None


BackoffForm = Annotated[
    Annotated[f.BackoffName, Tag("<name>")]
    | Annotated[f.WaitList, Tag("<list>")]
    | Annotated[BackoffMapping, Tag("<mapping>")],
    Discriminator(
        _backoff_form,
        custom_error_type="wrong_type",
        custom_error_message="'exponential', a list of seconds or a mapping",  # what is expected
    ),
]
"""``exponential``, a list of seconds (the last repeats), or a :class:`BackoffMapping`. The
``<tag>`` of the form taken shows in an error's ``loc``; :mod:`.problems` leaves it out."""


def _one_or_list(value: Any) -> str | None:
    return "<one>" if isinstance(value, str) else "<list>" if isinstance(value, list) else None


SigningSecrets = Annotated[
    Annotated[f.SigningSecret, Tag("<one>")] | Annotated[list[f.SigningSecret], Tag("<list>")],
    Discriminator(
        _one_or_list,
        custom_error_type="wrong_type",
        custom_error_message="a string or a list",  # what is expected
    ),
]


def backoff_value(form: str | list[int] | BackoffMapping) -> frozen.Backoff:
    """The backoff a form written in the file stands for."""
    if isinstance(form, BackoffMapping):
        return frozen.ExponentialBackoff(form.base, form.multiplier, form.cap, form.jitter)
    return frozen.ListBackoff(tuple(form)) if isinstance(form, list) else frozen.ExponentialBackoff()


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
        )


class DisableAfterFile(Section):
    """Disable the endpoint after failed_deliveries failures with no success within window."""

    model_config = ConfigDict(title="disable_after")

    failed_deliveries: f.FailedDeliveries = Field(description="Failed deliveries that disable the endpoint.")
    window: f.Duration = setting(
        "5d", "With no success within: 5d, 12h, 1h30m, or seconds.", validate_default=True
    )


class EndpointFile(Section):
    """A partner endpoint: each event goes to every endpoint that subscribes to it."""

    model_config = ConfigDict(title="endpoint")

    name: f.EndpointName = Field(description="Required, unique: the CLI and the log name the endpoint by it.")
    url: f.EndpointUrl = Field(
        description="Required: http:// or https:// (https:// in production), no credentials."
    )
    key: f.Omittable[f.HeaderKey] = setting(
        None, "Sent as X-Webhook-Key; the seed's default 'xxx' when absent."
    )
    events: list[f.Event] = setting(["*"], "The events this endpoint receives; '*' for all.")
    include_key_in_body: f.Flag = setting(False, "Also send the key as metadata.webhook_key.")
    signing_secret: SigningSecrets = setting(
        [], "whsec_... or a list (rotation): Standard Webhooks signatures."
    )
    timeout: f.Omittable[f.Seconds] = setting(None, "This endpoint's delivery.timeout.")
    connect_timeout: f.Omittable[f.Seconds] = setting(None, "This endpoint's delivery.connect_timeout.")
    max_attempts: f.Omittable[f.Attempts] = setting(None, "This endpoint's delivery.max_attempts.")
    backoff: f.Omittable[BackoffForm] = setting(None, "This endpoint's delivery.backoff.")
    max_concurrency: f.Omittable[f.Concurrency] = setting(
        None, "Attempts in flight at once, across all workers."
    )
    rate_per_second: f.Omittable[f.Rate] = setting(None, "Attempts per second, across all workers.")
    disable_after: f.Omittable[DisableAfterFile] = setting(None, "Off unless set.")
    ordered: f.Flag = setting(
        False, "Deliveries of one ordering key are attempted in dispatch order, one at a time."
    )
    ordering_fields: list[f.EventField] = setting(
        list(frozen.DEFAULT_ORDERING_FIELDS),
        "With ordered: the event data fields the ordering key comes from (the first present), "
        "unless dispatch() is given ordering_key.",
    )
    headers: partner.Headers = setting(
        {}, "Extra static headers, e.g. {X-Partner-Account: clinic-17}; their values are never shown."
    )
    auth: f.Omittable[partner.AuthFile] = setting(None, "The Authorization header: basic, bearer or oauth2.")
    tls_client_cert: f.Omittable[partner.ClientCertFile] = setting(
        None, "Mutual TLS: {cert, key, key_password}."
    )
    ca_bundle: f.Omittable[f.CaBundle] = setting(
        None, "A PEM CA bundle for this partner and its token endpoint; delivery.ca_bundle otherwise."
    )
    proxy: f.Omittable[partner.ProxyUrl] = setting(
        None, "This endpoint's HTTP proxy, or none; delivery.proxy otherwise."
    )

    def to_endpoint(self, delivery: frozen.DeliverySettings) -> frozen.Endpoint:
        """The endpoint, its ``delivery`` the global ``delivery`` with its overrides (None without)."""
        overrides: dict[str, Any] = {k: getattr(self, k) for k in OVERRIDES if getattr(self, k) is not None}
        if "backoff" in overrides:
            overrides["backoff"] = backoff_value(overrides["backoff"])
        secrets = [self.signing_secret] if isinstance(self.signing_secret, str) else self.signing_secret
        rule = self.disable_after
        return frozen.Endpoint(
            name=self.name,
            url=self.url,
            key=frozen.DEFAULT_KEY if self.key is None else self.key,
            events=tuple(self.events),
            include_key_in_body=self.include_key_in_body,
            key_configured=self.key is not None,
            signing_secrets=tuple(secrets),
            delivery=replace(delivery, **overrides) if overrides else None,
            max_concurrency=self.max_concurrency,
            rate_per_second=self.rate_per_second,
            disable_after=frozen.DisableAfter(rule.failed_deliveries, rule.window)
            if rule is not None
            else None,
            ordered=self.ordered,
            ordering_fields=tuple(self.ordering_fields),
            headers=tuple(self.headers.items()),
            auth=self.auth.to_settings() if self.auth is not None else None,
            tls_client_cert=self.tls_client_cert.to_settings() if self.tls_client_cert else None,
            ca_bundle=self.ca_bundle,
            proxy=self.proxy,
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

    def to_settings(self) -> frozen.Settings:
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
