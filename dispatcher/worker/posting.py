"""One POST of a claimed delivery, on a sender thread: the last gate, the signature and the POST."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from .. import store
from ..config import DeliverySettings, Endpoint
from ..contract import signing
from ..policy import gates, health
from ..policy import retry as policy
from ..runtime import Runtime
from ..sending import attempt
from ..vocabulary import FailureKind


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
        outcome = attempt.post(
            runtime.http,
            sending.endpoint.url,
            sending.body,
            sending.headers,
            timeout=sending.rules.timeout,
            connect_timeout=sending.rules.connect_timeout,
            response_body_limit=sending.rules.response_body_limit,
            verify=sending.rules.verify,
            mask=runtime.masker_for(sending.endpoint).mask,
        )
        if health.is_gone(outcome.http_status, sending.rules.retry_4xx):
            gone.add(sending.endpoint.name)
    except Exception as exc:  # noqa: BLE001 - a bug must not leave the claim unrecorded
        outcome = policy.DeliveryOutcome(
            None, FailureKind.CONNECTION_ERROR, f"unexpected {type(exc).__name__} while sending", None, 0
        )
    return outcome, datetime.now(UTC)
