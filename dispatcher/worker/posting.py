"""One POST of a claimed delivery, on a sender thread: the last gate, the signature and the POST."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import Any

from .. import store, telemetry
from ..config import DeliverySettings, Endpoint
from ..config.partner_settings import OAuth2Client
from ..contract import signing
from ..policy import gates, health
from ..policy import retry as policy
from ..redaction import Masker
from ..runtime import Runtime
from ..sending import attempt, connections, oauth2
from ..vocabulary import FailureKind
from . import metrics

REDACTED_HEADER = "[redacted]"

Post = Callable[..., policy.DeliveryOutcome]
"""``attempt.post`` with everything but ``mask`` given."""


@dataclass
class Sending:
    """A claimed delivery whose POST is on a sender thread."""

    claim: store.Claim
    endpoint: Endpoint
    rules: DeliverySettings
    body: bytes
    logged_body: str
    headers: dict[str, str]
    limited: bool
    dispatch_trace: str | None = None
    """The context of its event's ``dispatch`` span, from its job (while the worker traces)."""
    previous_trace: str | None = None
    """The context of its previous attempt's ``deliver`` span, from its job."""
    span: telemetry.DeliverSpan | None = None
    """This attempt's ``deliver`` span, started as its POST is about to go."""


def send(
    runtime: Runtime, sending: Sending, gone: set[str]
) -> tuple[policy.DeliveryOutcome | None, datetime]:
    """Runs on a sender thread: the last gate, the signature (timestamped now, not when the
    delivery was claimed, since it may have waited its turn) and the POST. Returns no outcome
    when the last gate is closed.

    ``gone`` holds the endpoints that answered ``410 Gone`` during this flight; the sender thread
    adds the endpoint itself, so a thread that picks up the next delivery at once already knows."""
    if gates.before_post(sending.endpoint.name, gone).gate is not gates.Gate.SEND:
        return None, datetime.now(UTC)
    claim = sending.claim
    metrics.attempt_started(claim.event, claim.endpoint, claim.attempt, claim.dispatched_at)
    if telemetry.enabled():
        sending.span = telemetry.start_deliver(
            sending.dispatch_trace,
            sending.previous_trace,
            request_id=claim.request_id,
            endpoint=claim.endpoint,
            attempt=claim.attempt,
        )
    try:
        if sending.endpoint.signing_secrets:
            sending.headers.update(
                signing.signature_headers(
                    sending.claim.request_id, int(time.time()), sending.body, sending.endpoint.signing_keys()
                )
            )
        outcome = _post(runtime, sending)
        if health.is_gone(outcome.http_status, sending.rules.retry_4xx):
            gone.add(sending.endpoint.name)
    except Exception as exc:  # noqa: BLE001 - a bug must not leave the claim unrecorded
        outcome = policy.DeliveryOutcome(
            None, FailureKind.CONNECTION_ERROR, f"unexpected {type(exc).__name__} while sending", None, 0
        )
    finally:
        metrics.attempt_ended(claim.endpoint)
    return outcome, datetime.now(UTC)


def _post(runtime: Runtime, sending: Sending) -> policy.DeliveryOutcome:
    """The POST on the endpoint's route (its session: CA bundle, client certificate) and
    through its proxy, with its token when it uses OAuth2 (:func:`_authorized`)."""
    endpoint, rules = sending.endpoint, sending.rules
    route = connections.route_for(endpoint, rules)
    try:
        session = runtime.connections.session(route)
    except (OSError, ssl.SSLError) as exc:  # config check names the file and the problem
        error = f"TLS: the client certificate could not be loaded ({type(exc).__name__})"
        return policy.DeliveryOutcome(None, FailureKind.CONNECTION_ERROR, error, None, 0)
    post: Post = partial(
        attempt.post,
        session,
        endpoint.url,
        sending.body,
        sending.headers,
        response_body_limit=rules.response_body_limit,
        verify=route.requests_verify,
        proxies=connections.proxies_for(endpoint.url, endpoint, rules),
        timeout=rules.timeout,
        connect_timeout=rules.connect_timeout,
    )
    post = _traced(post, sending)
    mask = runtime.masker_for(endpoint).mask
    client = endpoint.auth
    if not isinstance(client, OAuth2Client):
        return post(mask=mask)
    fetch = partial(
        oauth2.fetch_token,
        session,
        client,
        verify=route.requests_verify,
        proxies=connections.proxies_for(client.token_url, endpoint, rules),
        response_limit=rules.response_body_limit,
        timeout=rules.timeout,
        connect_timeout=rules.connect_timeout,
    )
    return _authorized(runtime, sending, client, post, fetch, mask)


def _traced(post: Post, sending: Sending) -> Post:
    """``post`` inside its ``POST`` client span, when the attempt has a ``deliver`` span; with
    W3C ``traceparent`` added for an endpoint with ``propagate_trace: true``."""
    span = sending.span
    if span is None:
        if sending.endpoint.propagate_trace and sending.dispatch_trace and telemetry.enabled():
            sending.headers["traceparent"] = sending.dispatch_trace  # not sampled (flags 00): still passed on
        return post

    def traced(**kwargs: Any) -> policy.DeliveryOutcome:
        headers = sending.headers if sending.endpoint.propagate_trace else None
        with span.post(sending.endpoint.url, headers) as http:
            outcome = post(**kwargs)
            http.result(outcome.http_status, outcome.failure)
        return outcome

    return traced


def _authorized(
    runtime: Runtime,
    sending: Sending,
    client: OAuth2Client,
    post: Post,
    fetch: Callable[[], oauth2.Token],
    mask: Callable[[str], str],
) -> policy.DeliveryOutcome:
    """The POST with the endpoint's token from the shared cache: a partner's 401 to it gets one
    fresh token and one immediate resend, whose answer is the attempt's. No token, no POST:
    the attempt is a ``token_error`` with the token endpoint's one-line error."""
    name, started = sending.endpoint.name, time.perf_counter()
    try:
        token = runtime.tokens.token(name, client, fetch)
        outcome = _bearing(post, sending.headers, token, mask)
        if outcome.http_status == 401:
            token = runtime.tokens.refresh(name, client, token, fetch)
            again = _bearing(post, sending.headers, token, mask)
            outcome = replace(again, duration_ms=outcome.duration_ms + again.duration_ms)
    except oauth2.TokenError as exc:
        ms = int((time.perf_counter() - started) * 1000)
        return policy.DeliveryOutcome(None, FailureKind.TOKEN_ERROR, mask(str(exc)), None, ms)
    return outcome


def _bearing(
    post: Post, headers: dict[str, str], token: oauth2.Token, mask: Callable[[str], str]
) -> policy.DeliveryOutcome:
    """One POST with ``token`` as its Bearer, the token masked in whatever comes back."""
    headers["Authorization"] = f"Bearer {token.access_token}"
    token_mask = _token_masker(token.access_token).mask
    return post(mask=lambda text: token_mask(mask(text)))


@lru_cache(maxsize=8)
def _token_masker(access_token: str) -> Masker:
    """A token's masker, made once per token (the tokens this process holds anyway)."""
    return Masker([access_token])


def stored_headers(sending: Sending) -> dict[str, str]:
    """The headers as the attempt row keeps them: the key, the Authorization and every value of
    the endpoint's own ``headers`` (which may be a partner's API key) redacted."""
    hidden = {"x-webhook-key", "authorization"} | {name.lower() for name, _ in sending.endpoint.headers}
    return {
        name: REDACTED_HEADER if name.lower() in hidden else value for name, value in sending.headers.items()
    }
