"""The effective settings as a document shaped like the file, every secret masked: what
``dispatcher config check`` prints.

Each key is the file's (``delivery.timeout`` under ``delivery``, ``worker.threads``,
``endpoints[].signing_secret``, ``idempotency_ttl`` in seconds, ``console.trusted_proxy.from``),
never a field of :mod:`.settings` (``worker_threads``, ``key_configured``), so what a person
reads can be looked up in the file, the README and the JSON Schema. The masked: endpoint keys
(``****``, or ``xxx (default)`` when none is configured), signing secrets (``whsec_****``),
storage keys, the search key, password hashes, the session secret, the passwords of the
Redis, database and proxy URLs, an endpoint's header values and every auth secret.
"""

from __future__ import annotations

from typing import Any

from ..redaction import MASK, mask_url
from .alert_settings import AlertSettings
from .api_settings import ApiSettings
from .console_settings import ConsoleSettings
from .partner_settings import Auth, BasicAuth, BearerAuth
from .settings import Backoff, BreakerSettings, DeliverySettings, Endpoint, ExponentialBackoff, Settings
from .telemetry_settings import RATIO_SAMPLERS, TelemetrySettings

DEFAULT_KEY_SHOWN = "xxx (default)"
SIGNING_SECRET_SHOWN = "whsec_****"


def settings_document(settings: Settings) -> dict[str, Any]:
    """The settings as the file names them, in the file's order, secrets masked."""
    metrics = settings.metrics
    return {
        "source": settings.source,
        "environment": settings.environment,
        "redis_url": mask_url(settings.redis_url),
        "database_url": mask_url(settings.database_url),
        "queue_name": settings.queue_name,
        "process_log": settings.process_log,
        "process_log_retention_days": settings.process_log_retention_days,
        "delivery": delivery_document(settings.delivery),
        "endpoints": [endpoint_document(e, settings.delivery_for(e)) for e in settings.endpoints],
        "allow_networks": list(settings.allow_networks),
        "metrics": None
        if metrics is None
        else {"port": metrics.port, "host": metrics.host, "port_range": metrics.port_range},
        "worker": {"threads": settings.worker_threads},
        "retention": {
            "payload_days": settings.retention.payload_days,
            "rows_days": settings.retention.rows_days,
        },
        "idempotency_ttl": settings.idempotency_ttl_seconds,
        "storage_keys": [MASK] * len(settings.storage_keys),
        "search_key": MASK if settings.search_key else None,
        "console": console_document(settings.console),
        "alerts": alerts_document(settings.alerts),
        "api": api_document(settings.api),
        "telemetry": telemetry_document(settings.telemetry),
    }


def backoff_document(backoff: Backoff) -> dict[str, float] | list[int]:
    """A backoff in a form the file takes: the mapping of an exponential one, or the list."""
    if isinstance(backoff, ExponentialBackoff):
        return {
            "base": backoff.base,
            "multiplier": backoff.multiplier,
            "cap": backoff.cap,
            "jitter": backoff.jitter,
        }
    return list(backoff.seconds)


def delivery_document(delivery: DeliverySettings) -> dict[str, Any]:
    return {
        "timeout": delivery.timeout,
        "connect_timeout": delivery.connect_timeout,
        "max_attempts": delivery.max_attempts,
        "backoff": backoff_document(delivery.backoff),
        "retry_4xx": list(delivery.retry_4xx),
        "max_payload_bytes": delivery.max_payload_bytes,
        "response_body_limit": delivery.response_body_limit,
        "tls_verify": delivery.tls_verify,
        "ca_bundle": delivery.ca_bundle,
        "proxy": mask_url(delivery.proxy) if delivery.proxy else None,
        "no_proxy": list(delivery.no_proxy),
        "breaker": breaker_document(delivery.breaker),
    }


def breaker_document(breaker: BreakerSettings | None) -> dict[str, Any] | bool:
    """A breaker as the file takes it: its mapping (durations in seconds), or false for ``off``."""
    if breaker is None:
        return False
    return {
        "failure_ratio": breaker.failure_ratio,
        "min_attempts": breaker.min_attempts,
        "window": breaker.window_seconds,
        "open_for": breaker.open_seconds,
        "max_open_for": breaker.max_open_seconds,
    }


def endpoint_document(endpoint: Endpoint, delivery: DeliverySettings) -> dict[str, Any]:
    """One endpoint; ``timeout``, ``connect_timeout``, ``max_attempts`` and ``backoff`` are the
    ones in force for it (``delivery``: its overrides, else the global ones)."""
    rule = endpoint.disable_after
    return {
        "name": endpoint.name,
        "url": mask_url(endpoint.url),
        "key": MASK if endpoint.key_configured else DEFAULT_KEY_SHOWN,
        "events": list(endpoint.events),
        "include_key_in_body": endpoint.include_key_in_body,
        "signing_secret": [SIGNING_SECRET_SHOWN] * len(endpoint.signing_secrets),
        "timeout": delivery.timeout,
        "connect_timeout": delivery.connect_timeout,
        "max_attempts": delivery.max_attempts,
        "backoff": backoff_document(delivery.backoff),
        "breaker": breaker_document(delivery.breaker),
        "max_concurrency": endpoint.max_concurrency,
        "rate_per_second": endpoint.rate_per_second,
        "disable_after": None
        if rule is None
        else {"failed_deliveries": rule.failed_deliveries, "window": rule.window_seconds},
        "ordered": endpoint.ordered,
        "ordering_fields": list(endpoint.ordering_fields),
        "propagate_trace": endpoint.propagate_trace,
        **connection_document(endpoint),
    }


def connection_document(endpoint: Endpoint) -> dict[str, Any]:
    """An endpoint's headers (their values masked: one may be a partner's API key), auth, client
    certificate, CA bundle and proxy, every secret masked."""
    cert = endpoint.tls_client_cert
    return {
        "headers": {name: MASK for name, _ in endpoint.headers},
        "auth": auth_document(endpoint.auth),
        "tls_client_cert": None
        if cert is None
        else {"cert": cert.cert, "key": cert.key, "key_password": MASK if cert.key_password else None},
        "ca_bundle": endpoint.ca_bundle,
        "proxy": mask_url(endpoint.proxy) if endpoint.proxy else None,
    }


def auth_document(auth: Auth | None) -> dict[str, Any] | None:
    if isinstance(auth, BasicAuth):
        return {"basic": {"username": auth.username, "password": MASK}}
    if isinstance(auth, BearerAuth):
        return {"bearer": MASK}
    if auth is None:
        return None
    return {
        "oauth2": {
            "token_url": mask_url(auth.token_url),
            "client_id": auth.client_id,
            "method": auth.method.value,
            "client_secret": MASK if auth.client_secret else None,
            "scope": auth.scope,
            "audience": auth.audience,
            "private_key": auth.private_key,
            "key_id": auth.key_id,
            "algorithm": auth.algorithm,
        }
    }


def alerts_document(alerts: AlertSettings) -> dict[str, Any]:
    """The alert channels (a webhook's URL and an SMTP password masked) and rules."""
    channels: list[dict[str, Any]] = []
    for channel in alerts.channels:
        if channel.webhook is not None:
            hook = channel.webhook
            secret = SIGNING_SECRET_SHOWN if hook.signing_secret else None
            channels.append(
                {"name": channel.name, "webhook": {"url": mask_url(hook.url), "signing_secret": secret}}
            )
        elif channel.email is not None:
            mail = channel.email
            channels.append(
                {
                    "name": channel.name,
                    "email": {
                        "smtp_host": mail.smtp_host,
                        "smtp_port": mail.smtp_port,
                        "starttls": mail.starttls,
                        "username": mail.username,
                        "password": MASK if mail.password else None,
                        "from": mail.sender,
                        "to": list(mail.to),
                    },
                }
            )
    rules = [
        {
            "events": list(rule.events),
            "to": list(rule.to),
            "at_most_every": rule.at_most_every_seconds,
            "older_than": rule.older_than_seconds,
        }
        for rule in alerts.rules
    ]
    return {"channels": channels, "rules": rules}


def console_document(console: ConsoleSettings) -> dict[str, Any]:
    proxy = console.trusted_proxy
    return {
        "users": [{"name": u.name, "password_hash": MASK, "role": u.role} for u in console.users],
        "session_hours": console.session_hours,
        "https": console.https,
        "session_secret": MASK if console.session_secret is not None else None,
        "trusted_proxy": None if proxy is None else {"header": proxy.header, "from": list(proxy.networks)},
        "proxy_roles": dict(console.proxy_roles),
        "allowed_hosts": list(console.allowed_hosts),
        "public_url": console.public_url,
    }


def api_document(api: ApiSettings) -> dict[str, Any]:
    """The ``api`` section; its rate limit a mapping, or ``off``."""
    rate = api.rate_limit
    return {
        "https": api.https,
        "max_body_bytes": api.max_body_bytes,
        "rate_limit": "off" if rate is None else {"per_second": rate.per_second, "burst": rate.burst},
    }


def telemetry_document(telemetry: TelemetrySettings) -> dict[str, Any]:
    """The ``telemetry`` section in force (an ``OTEL_*`` variable's value included); its
    ``sample_ratio`` the share of traces the sampler keeps: the ratio of a ``*traceidratio``
    sampler, 0 for an ``*always_off`` one, 1 for an ``*always_on`` one."""
    if telemetry.sampler in RATIO_SAMPLERS:
        ratio = telemetry.ratio
    else:
        ratio = 0.0 if telemetry.sampler.endswith("always_off") else 1.0
    return {
        "otlp_endpoint": mask_url(telemetry.otlp_endpoint) if telemetry.otlp_endpoint else None,
        "service_name": telemetry.service_name,
        "sample_ratio": ratio,
    }
