"""One POST of a claimed delivery, on a sender thread: the last gate, the signature and the POST."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import requests

from .. import store
from ..config import DeliverySettings, Endpoint
from ..config.partner_settings import OAuth2Client
from ..contract import signing
from ..policy import gates, health
from ..policy import retry as policy
from ..redaction import Masker
from ..runtime import Runtime
from ..sending import attempt, connections, oauth2
from ..vocabulary import FailureKind

REDACTED_HEADER = "[redacted]"


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
    return outcome, datetime.now(UTC)


def _post(runtime: Runtime, sending: Sending) -> policy.DeliveryOutcome:
    """The POST on the endpoint's route, through its proxy, with its token when it uses OAuth2:
    a partner's 401 to a token gets one fresh token and one immediate resend, whose answer is
    the attempt's. No token, no POST: the attempt is a ``token_error``."""
    endpoint, rules = sending.endpoint, sending.rules
    started = time.perf_counter()
    try:
        session = runtime.connections.session(connections.route_for(endpoint, rules))
    except (OSError, ssl.SSLError) as exc:  # config check names the file and the problem
        error = f"TLS: the client certificate could not be loaded ({type(exc).__name__})"
        return policy.DeliveryOutcome(None, FailureKind.CONNECTION_ERROR, error, None, 0)
    client = endpoint.auth if isinstance(endpoint.auth, OAuth2Client) else None
    mask = runtime.masker_for(endpoint).mask
    try:
        token = (
            runtime.tokens.token(endpoint.name, client, _fetch(runtime, session, endpoint))
            if client
            else None
        )
        outcome = _once(session, sending, token, mask)
        if client is not None and token is not None and outcome.http_status == 401:
            token = runtime.tokens.refresh(endpoint.name, client, token, _fetch(runtime, session, endpoint))
            again = _once(session, sending, token, mask)
            outcome = replace(again, duration_ms=outcome.duration_ms + again.duration_ms)
    except oauth2.TokenError as exc:
        ms = int((time.perf_counter() - started) * 1000)
        return policy.DeliveryOutcome(None, FailureKind.TOKEN_ERROR, mask(str(exc)), None, ms)
    return outcome


def _once(
    session: requests.Session, sending: Sending, token: oauth2.Token | None, mask: Callable[[str], str]
) -> policy.DeliveryOutcome:
    """One POST of the delivery, with ``token`` as its Bearer (masked in whatever comes back)."""
    endpoint, rules = sending.endpoint, sending.rules
    if token is not None:
        sending.headers["Authorization"] = f"Bearer {token.access_token}"
        mask = _and_token(mask, token.access_token)
    return attempt.post(
        session,
        endpoint.url,
        sending.body,
        sending.headers,
        timeout=rules.timeout,
        connect_timeout=rules.connect_timeout,
        response_body_limit=rules.response_body_limit,
        verify=connections.route_for(endpoint, rules).requests_verify,
        mask=mask,
        proxies=connections.proxies_for(endpoint.url, endpoint, rules),
    )


def _and_token(mask: Callable[[str], str], token: str) -> Callable[[str], str]:
    token_mask = Masker([token]).mask
    return lambda text: token_mask(mask(text))


def _fetch(runtime: Runtime, session: requests.Session, endpoint: Endpoint) -> Callable[[], oauth2.Token]:
    """Fetches a token for ``endpoint`` from its token endpoint, on the endpoint's route and
    proxy, within the endpoint's timeouts (called by the token cache when none is fresh)."""
    rules = runtime.settings.delivery_for(endpoint)
    client = endpoint.auth
    assert isinstance(client, OAuth2Client)

    def fetch() -> oauth2.Token:
        return oauth2.fetch_token(
            session,
            client,
            verify=connections.route_for(endpoint, rules).requests_verify,
            proxies=connections.proxies_for(client.token_url, endpoint, rules),
            timeout=rules.timeout,
            connect_timeout=rules.connect_timeout,
            response_limit=rules.response_body_limit,
        )

    return fetch


def stored_headers(sending: Sending) -> dict[str, str]:
    """The headers as the attempt row keeps them: the key, the Authorization and every value of
    the endpoint's own ``headers`` (which may be a partner's API key) redacted."""
    hidden = {"x-webhook-key", "authorization"} | {name.lower() for name, _ in sending.endpoint.headers}
    return {
        name: REDACTED_HEADER if name.lower() in hidden else value for name, value in sending.headers.items()
    }
