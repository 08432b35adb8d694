"""An endpoint as the database keeps it: the mapping the file would hold for it (its YAML names,
secrets in clear -- the store seals them), and back.

:func:`endpoint_definition` writes an endpoint's mapping (what ``dispatcher endpoints import``
stores); :func:`endpoint_from_definition` validates a mapping with the file's own model
(:class:`~.endpoint_file.EndpointFile`) and the file's production rules, so an endpoint added
with the CLI is checked exactly as one written in the file, each mistake one
:class:`~dispatcher.errors.ConfigError` naming the setting. Signing secrets being retired are
added after the current ones while their grace lasts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError
from .checks import shown_url
from .document import backoff_document, breaker_document
from .partner_settings import Auth, BasicAuth, BearerAuth
from .settings import DEFAULT_ORDERING_FIELDS, DeliverySettings, Endpoint, Settings

OVERRIDDEN = ("timeout", "connect_timeout", "max_attempts", "backoff", "breaker")
"""The delivery settings an endpoint may set for itself, by their file names."""


def endpoint_definition(endpoint: Endpoint, delivery: DeliverySettings) -> dict[str, Any]:
    """The mapping the file would hold for ``endpoint`` (only what differs from the defaults and
    from the global ``delivery``), secrets in clear."""
    definition: dict[str, Any] = {"name": endpoint.name, "url": endpoint.url}
    if endpoint.key_configured:
        definition["key"] = endpoint.key
    if endpoint.events != ("*",):
        definition["events"] = list(endpoint.events)
    if endpoint.include_key_in_body:
        definition["include_key_in_body"] = True
    if endpoint.signing_secrets:
        definition["signing_secret"] = list(endpoint.signing_secrets)
    definition.update(_overrides(endpoint.delivery, delivery))
    optional = {
        "max_concurrency": endpoint.max_concurrency,
        "rate_per_second": endpoint.rate_per_second,
        "ca_bundle": endpoint.ca_bundle,
        "proxy": endpoint.proxy,
    }
    definition.update({k: v for k, v in optional.items() if v is not None})
    if endpoint.disable_after is not None:
        rule = endpoint.disable_after
        definition["disable_after"] = {
            "failed_deliveries": rule.failed_deliveries,
            "window": rule.window_seconds,
        }
    if endpoint.ordered:
        definition["ordered"] = True
    if endpoint.ordering_fields != DEFAULT_ORDERING_FIELDS:
        definition["ordering_fields"] = list(endpoint.ordering_fields)
    if endpoint.propagate_trace:
        definition["propagate_trace"] = True
    if endpoint.headers:
        definition["headers"] = dict(endpoint.headers)
    if endpoint.auth is not None:
        definition["auth"] = auth_definition(endpoint.auth)
    cert = endpoint.tls_client_cert
    if cert is not None:
        definition["tls_client_cert"] = {
            k: v
            for k, v in {"cert": cert.cert, "key": cert.key, "key_password": cert.key_password}.items()
            if v
        }
    return definition


def _overrides(own: DeliverySettings | None, delivery: DeliverySettings) -> dict[str, Any]:
    if own is None:
        return {}
    written: dict[str, Any] = {}
    for name in OVERRIDDEN:
        value = getattr(own, name)
        if value == getattr(delivery, name):
            continue
        if name == "backoff":
            value = backoff_document(value)
        elif name == "breaker":
            value = breaker_document(value)
        written[name] = value
    return written


def auth_definition(auth: Auth) -> dict[str, Any]:
    """An endpoint's ``auth`` as the file writes it, secrets in clear."""
    if isinstance(auth, BasicAuth):
        return {"basic": {"username": auth.username, "password": auth.password}}
    if isinstance(auth, BearerAuth):
        return {"bearer": auth.token}
    fields = {
        "token_url": auth.token_url,
        "client_id": auth.client_id,
        "method": auth.method.value,
        "client_secret": auth.client_secret,
        "scope": auth.scope,
        "audience": auth.audience,
        "private_key": auth.private_key,
        "key_id": auth.key_id,
    }
    written = {k: v for k, v in fields.items() if v is not None}
    if auth.private_key is not None:
        written["algorithm"] = auth.algorithm
    return {"oauth2": written}


def endpoint_from_definition(
    definition: Mapping[str, Any], settings: Settings, retiring: Sequence[str] = ()
) -> Endpoint:
    """The endpoint a stored (or CLI-given) mapping stands for, checked as the file's endpoints
    are: its model, then the production rules (https only); ``retiring``: signing secrets still in
    their grace, which sign after the endpoint's own.

    Raises:
        ConfigError: naming the first bad setting by its file name (``max_attempts``, ``auth.oauth2.token_url``).
    """
    from pydantic import ValidationError

    from .endpoint_file import EndpointFile
    from .problems import config_error

    try:
        file = EndpointFile.model_validate(dict(definition))
    except ValidationError as exc:
        raise config_error(exc) from None
    endpoint = file.to_endpoint(settings.delivery)
    if settings.environment == "production":
        _production(endpoint)
    if retiring:
        extra = tuple(s for s in retiring if s not in endpoint.signing_secrets)
        endpoint = replace(endpoint, signing_secrets=endpoint.signing_secrets + extra)
    return endpoint


def _production(endpoint: Endpoint) -> None:
    if urlsplit(endpoint.url).scheme != "https":
        raise ConfigError(
            "url",
            f"must be https:// when environment is production, got {shown_url(endpoint.url)}",
        )
    token_url = getattr(endpoint.auth, "token_url", None)
    if token_url is not None and urlsplit(token_url).scheme != "https":
        raise ConfigError(
            "auth.oauth2.token_url",
            f"must be https:// when environment is production, got {shown_url(token_url)}",
        )
