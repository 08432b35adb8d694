"""One POST of a claimed delivery (``dispatcher/worker/posting.py``), flown in-process against
real servers on 127.0.0.1: an endpoint's extra headers and Authorization reach the partner, the
attempt row keeps them redacted, and a client certificate that cannot be loaded is an attempt's
clear error. The OAuth2 path is ``test_posting_oauth2.py``."""

from __future__ import annotations

import json
from pathlib import Path

from dispatcher import store
from dispatcher.vocabulary import DeliveryStatus, FailureKind
from tests.worker.test_flight import deliver, dispatch_one, log_text

KEY = "k3y-posting-31337"
PASSWORD = "basic-pw-31337"
ACCOUNT = "acct-value-31337"


def endpoint(receiver, **extra) -> dict:
    return {"name": "pharmacy", "url": receiver.url, "key": KEY, **extra}


def test_extra_headers_and_basic_auth_reach_the_partner_and_are_stored_redacted(
    make_runtime, receiver
) -> None:
    runtime = make_runtime(
        endpoints=[
            endpoint(
                receiver,
                headers={"X-Partner-Account": ACCOUNT},
                auth={"basic": {"username": "clinic", "password": PASSWORD}},
            )
        ]
    )
    request_id = dispatch_one()

    assert deliver(request_id) is None

    (got,) = receiver.received
    assert got.headers["X-Partner-Account"] == ACCOUNT
    assert got.headers["X-Webhook-Key"] == KEY  # whatever auth adds, the seed's header stays
    assert got.headers["Authorization"].startswith("Basic ")
    (row,) = store.list_attempts(runtime.engine, request_id)
    stored = json.loads(row["request_headers"])
    assert stored["Authorization"] == stored["X-Partner-Account"] == stored["X-Webhook-Key"] == "[redacted]"
    assert stored["Content-Type"] == "application/json"
    text = row["request_headers"] + log_text(runtime)
    for secret in (KEY, PASSWORD, ACCOUNT, got.headers["Authorization"].split()[1]):
        assert secret not in text


def test_a_static_bearer_token_is_sent_and_masked_when_the_partner_echoes_it(make_runtime, receiver) -> None:
    from tests.servers import Answer

    token = "static-bearer-31337"
    runtime = make_runtime(endpoints=[endpoint(receiver, auth={"bearer": token})])
    receiver.default_script = [Answer(status=500, body=f'{{"echo":"Bearer {token}"}}'.encode())]
    request_id = dispatch_one()

    deliver(request_id)

    assert receiver.received[0].headers["Authorization"] == f"Bearer {token}"
    (row,) = store.list_attempts(runtime.engine, request_id)
    assert token not in (row["response_body"] or "") and "****" in row["response_body"]
    assert token not in row["request_headers"]


def test_a_client_certificate_that_cannot_be_loaded_is_the_attempts_error(
    make_runtime, receiver, tmp_path: Path
) -> None:
    broken = tmp_path / "clinic.crt"
    broken.write_text("not a certificate")
    runtime = make_runtime(endpoints=[endpoint(receiver, tls_client_cert={"cert": str(broken)})])
    request_id = dispatch_one()

    deliver(request_id)

    assert receiver.received == []
    (row,) = store.list_attempts(runtime.engine, request_id)
    assert row["failure"] == FailureKind.CONNECTION_ERROR
    assert row["error"] == "TLS: the client certificate could not be loaded (SSLError)"
    assert store.get_delivery(runtime.engine, request_id)["status"] == DeliveryStatus.RETRYING
