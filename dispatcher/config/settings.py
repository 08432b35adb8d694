"""The settings, as values: what the configuration file says once it is validated.

The file's models (:mod:`dispatcher.config.model`) build them from the YAML file and the
environment, and take their defaults from here; every other room reads them and never parses
anything itself. Plain frozen dataclasses: hashable, ``dataclasses.replace`` works, and tests and
the demo build them directly with keyword arguments (unchecked: only the file is validated).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..contract.signing import decode_secret
from ..errors import UnknownEndpoint
from .alert_settings import AlertSettings
from .api_settings import ApiSettings
from .console_settings import ConsoleSettings
from .partner_settings import Auth, ClientCert, auth_secrets, proxy_secrets
from .telemetry_settings import TelemetrySettings

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
class BreakerSettings:
    """An endpoint's circuit breaker (``breaker``): it opens when at least ``failure_ratio`` of at
    least ``min_attempts`` attempts in the last ``window_seconds`` failed in a retryable way (5xx,
    timeout, connection error); after ``open_seconds`` one delivery probes it; a failed probe
    opens it again for twice as long, at most ``max_open_seconds``."""

    failure_ratio: float = 0.7
    min_attempts: int = 10
    window_seconds: int = 60
    open_seconds: int = 30
    max_open_seconds: int = 600


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
    proxy: str | None = None
    """The HTTP proxy of every delivery and token request (``delivery.proxy``); None: direct."""
    no_proxy: tuple[str, ...] = ()
    """Hosts sent to directly despite :attr:`proxy` (``delivery.no_proxy``)."""
    breaker: BreakerSettings | None = field(default_factory=BreakerSettings)
    """The circuit breaker of every endpoint (``delivery.breaker``; an endpoint's own overrides
    it); None: ``breaker: off``."""

    @property
    def verify(self) -> bool | str:
        """The ``verify`` argument for requests: the CA bundle's path, or whether to verify."""
        return self.ca_bundle if (self.tls_verify and self.ca_bundle) else self.tls_verify


@dataclass(frozen=True)
class DisableAfter:
    """Disable an endpoint after ``failed_deliveries`` failures and no success within ``window_seconds``."""

    failed_deliveries: int
    window_seconds: int = 5 * 86400


DEFAULT_ORDERING_FIELDS = ("encounter_id", "order_number", "patient_id")
"""An ordered endpoint's keys, by default: a visit, an order, else the patient."""


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
    ordered: bool = False
    """Deliveries of one ordering key are attempted in dispatch order, one at a time."""
    ordering_fields: tuple[str, ...] = DEFAULT_ORDERING_FIELDS
    """Where a delivery's ordering key comes from when dispatch() is given none: the first of
    these fields present in the event's data."""
    headers: tuple[tuple[str, str], ...] = ()
    """Extra static headers (``headers``), sent with every POST; their values are never shown."""
    auth: Auth | None = None
    """The ``Authorization`` the sender adds: Basic, Bearer, or an OAuth2 token."""
    tls_client_cert: ClientCert | None = None
    ca_bundle: str | None = None
    """This partner's CA bundle (and its token endpoint's); ``delivery.ca_bundle`` when None."""
    proxy: str | None = None
    """This endpoint's proxy URL, ``none`` (direct), or None: ``delivery.proxy``."""
    propagate_trace: bool = False
    """Adds the W3C ``traceparent`` header to the POST so the partner can join the trace; off
    by default: a partner sees nothing new unless asked (``propagate_trace``)."""

    def ordering_key(self, data: Mapping[str, Any], given: str | None = None) -> str | None:
        """The delivery's ordering key: ``given``, else the first of :attr:`ordering_fields` the
        data holds as text or a number; None when the endpoint is not ordered or none is there."""
        if not self.ordered:
            return None
        if given is not None:
            return given
        for name in self.ordering_fields:
            value = data.get(name)
            if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
                return f"{name}={value}"
        return None

    def secrets(self) -> list[str]:
        """This endpoint's secrets, for masking: its key (unless the public default) and its
        signing secrets, with and without their ``whsec_`` prefix."""
        key = [self.key] if self.key_configured and self.key != DEFAULT_KEY else []
        signing = list(self.signing_secrets) + [s[len("whsec_") :] for s in self.signing_secrets]
        return key + signing + auth_secrets(self.auth, self.tls_client_cert, self.proxy)

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


@dataclass(frozen=True)
class RetentionSettings:
    """How long the log keeps PHI and rows (``retention``): a final delivery's payload, request
    payloads and response bodies are erased ``payload_days`` after it was last updated, its row
    deleted after ``rows_days``; None keeps them."""

    payload_days: int | None = 30
    rows_days: int | None = None


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
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    storage_keys: tuple[str, ...] = ()
    """Encryption at rest (``storage_keys``, ``DISPATCHER_STORAGE_KEYS``): the first seals, all open."""
    search_key: str | None = None
    """The HMAC key of the business-id search index (``search_key``, ``DISPATCHER_SEARCH_KEY``);
    None: no business-id search."""
    idempotency_ttl_seconds: int = 86400
    """How long an idempotency key is remembered (``idempotency_ttl``)."""
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    """The operator console's users and sessions (``console``)."""
    alerts: AlertSettings = field(default_factory=AlertSettings)
    """Who is told when an endpoint goes down, deliveries fail or the queue stalls (``alerts``)."""
    api: ApiSettings = field(default_factory=ApiSettings)
    """The HTTP API: https behind a proxy, the largest body it reads, each token's rate limit (``api``)."""
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    """OpenTelemetry traces: the OTLP/HTTP collector (None: off), service name and sampler
    (``telemetry``, the ``OTEL_*`` variables filling what it leaves unset)."""

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

    def require_endpoint(self, name: str) -> Endpoint:
        """The endpoint named ``name``.

        Raises:
            UnknownEndpoint: no endpoint has that name (the message lists the configured ones).
        """
        endpoint = self.endpoint(name)
        if endpoint is None:
            raise UnknownEndpoint(name, [e.name for e in self.endpoints])
        return endpoint

    def secrets(self) -> list[str]:
        """Every configured secret, for masking: endpoint keys and signing secrets (the default
        key is public, so it is not one), the storage keys and the search key."""
        return (
            [secret for endpoint in self.endpoints for secret in endpoint.secrets()]
            + proxy_secrets(self.delivery.proxy)
            + list(self.storage_keys)
            + ([self.search_key] if self.search_key else [])
            + self.console.secrets()
            + self.alerts.secrets()
        )
