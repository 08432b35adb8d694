"""An OAuth2 endpoint's deliveries flown in-process (``dispatcher/worker/posting.py``) against
a real token server and its partner on 127.0.0.1, real Redis and SQLite: the token is fetched
once and shared, a partner's 401 gets one fresh token and one resend within the same attempt, a
token endpoint that fails sends nothing and is retried, and no secret or token is kept."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatcher import dispatch, store
from dispatcher.sending.tokens import KEY_PREFIX
from dispatcher.vocabulary import DeliveryStatus, FailureKind
from tests.servers import Answer as PartnerAnswer
from tests.token_server import Answer, TokenServer, self_signed
from tests.worker.test_flight import deliver, dispatch_one, example, log_text

CLIENT_SECRET = "client-secret-31337"
STORAGE_KEY = "KlJtPQ3RtJK714n-i00gwv9-5KxcybK_I0X4uBgY56Q="


@pytest.fixture
def server() -> Iterator[TokenServer]:
    token_server = TokenServer(expires_in=3600)
    token_server.register_secret("clinic-17", CLIENT_SECRET)
    yield token_server
    token_server.close()


def oauth2_endpoint(server: TokenServer, url: str | None = None, **oauth2) -> dict:
    settings = {"token_url": server.token_url, "client_id": "clinic-17", "client_secret": CLIENT_SECRET}
    return {"name": "pharmacy", "url": url or server.partner_url, "auth": {"oauth2": {**settings, **oauth2}}}


def rows_text(runtime, request_id: str) -> str:
    return json.dumps(store.list_attempts(runtime.engine, request_id), default=str)


def test_one_token_serves_every_delivery_and_nothing_secret_is_kept(
    make_runtime, server, redis_client
) -> None:
    runtime = make_runtime(endpoints=[oauth2_endpoint(server)], storage_keys=[STORAGE_KEY])
    request_ids = [dispatch_one() for _ in range(3)]

    assert [deliver(r) for r in request_ids] == [None, None, None]

    assert server.token_requests == 1
    assert [p.status for p in server.partner_requests] == [200, 200, 200]
    token = server.partner_requests[0].headers["authorization"].split()[1]
    kept = "".join(rows_text(runtime, r) for r in request_ids) + log_text(runtime)
    assert token not in kept and CLIENT_SECRET not in kept
    (key,) = redis_client.keys(f"{KEY_PREFIX}:pharmacy:*")
    assert token.encode() not in redis_client.get(key)  # sealed with the storage keys


def test_a_401_gets_one_fresh_token_and_one_resend_within_the_attempt(make_runtime, server) -> None:
    runtime = make_runtime(endpoints=[oauth2_endpoint(server)])
    deliver(dispatch_one())
    server.expire_all()  # the partner now refuses the cached token
    request_id = dispatch_one()

    assert deliver(request_id) is None

    assert server.token_requests == 2
    assert [p.status for p in server.partner_requests] == [200, 401, 200]
    delivery = store.get_delivery(runtime.engine, request_id)
    assert (delivery["status"], delivery["attempts"]) == (DeliveryStatus.DELIVERED, 1)


def test_a_second_401_is_the_attempts_answer(make_runtime, server, receiver) -> None:
    receiver.default_script = [PartnerAnswer(status=401), PartnerAnswer(status=401)]
    runtime = make_runtime(endpoints=[oauth2_endpoint(server, url=receiver.url)])
    request_id = dispatch_one()

    deliver(request_id)

    assert len(receiver.received) == 2 and server.token_requests == 2
    (row,) = store.list_attempts(runtime.engine, request_id)
    assert row["http_status"] == 401
    assert store.get_delivery(runtime.engine, request_id)["status"] == DeliveryStatus.FAILED


def test_a_refused_client_sends_nothing_and_is_retried_with_a_one_line_error(make_runtime, server) -> None:
    server.script(Answer(401, json={"error": "invalid_client", "error_description": f"bad {CLIENT_SECRET}"}))
    runtime = make_runtime(endpoints=[oauth2_endpoint(server)])
    request_id = dispatch_one()

    deliver(request_id)

    assert server.partner_requests == []
    (row,) = store.list_attempts(runtime.engine, request_id)
    assert (row["failure"], row["error"]) == (
        FailureKind.TOKEN_ERROR,
        "oauth2: token endpoint answered 401 invalid_client",
    )
    assert row["http_status"] is None
    assert store.get_delivery(runtime.engine, request_id)["status"] == DeliveryStatus.RETRYING
    assert CLIENT_SECRET not in rows_text(runtime, request_id) + log_text(runtime)


def test_an_unreachable_token_endpoint_is_named_and_retried(make_runtime, server, tmp_path: Path) -> None:
    server.close()  # nothing listens on its port any more
    runtime = make_runtime(endpoints=[oauth2_endpoint(server)])
    request_id = dispatch_one()

    deliver(request_id)

    (row,) = store.list_attempts(runtime.engine, request_id)
    port = server.token_url.split(":")[2].split("/")[0]
    assert row["failure"] == FailureKind.TOKEN_ERROR
    assert row["error"] == f"oauth2: token endpoint unreachable (connection refused by 127.0.0.1:{port})"
    assert store.get_delivery(runtime.engine, request_id)["status"] == DeliveryStatus.RETRYING


def test_the_token_endpoint_is_verified_with_the_endpoints_ca_bundle(make_runtime, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    https = TokenServer(tls=(cert, key))
    https.register_secret("clinic-17", CLIENT_SECRET)
    try:
        trusted = {**oauth2_endpoint(https), "ca_bundle": str(cert)}
        untrusted = {**oauth2_endpoint(https), "name": "untrusted"}
        runtime = make_runtime(endpoints=[trusted, untrusted])
        delivered, refused = dispatch("order_changed", example("order_changed"))  # one per endpoint

        deliver(delivered)
        deliver(refused)

        assert store.get_delivery(runtime.engine, delivered)["status"] == DeliveryStatus.DELIVERED
        (row,) = store.list_attempts(runtime.engine, refused)
        assert row["failure"] == FailureKind.TOKEN_ERROR
        assert row["error"] == "oauth2: token endpoint unreachable (TLS: self-signed certificate (127.0.0.1))"
        assert https.token_requests == 1  # the untrusted one never got as far as asking
    finally:
        https.close()
