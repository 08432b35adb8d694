"""Partner connections end to end through real ``python worker.py`` processes, the real Redis
and SQLite: an OAuth2 partner (a real token server) and a partner behind mutual TLS and Basic
auth (Debian's nginx) reached through an egress proxy (tinyproxy)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatcher import dispatch, store
from dispatcher.contract import catalogue as events
from tests.e2e.test_worker_e2e import wait_final
from tests.partner_servers import (
    MISSING_NGINX,
    MISSING_TINYPROXY,
    NginxPartner,
    Tinyproxy,
    make_certs,
    nginx_binary,
    tinyproxy_binary,
)
from tests.token_server import TokenServer

CLIENT_SECRET = "client-secret-e2e-31337"
KEY = "pharmacy-key-e2e-31337"
BASIC_PASSWORD = "basic-pw-e2e-31337"
ACCOUNT = "clinic-17-account-31337"
PROXY_PASSWORD = "proxy-pw-e2e-31337"


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    server = TokenServer(expires_in=3600)
    server.register_secret("clinic-17", CLIENT_SECRET, method="client_secret_post")
    yield server
    server.close()


def oauth2_endpoint(server: TokenServer) -> dict:
    oauth2 = {
        "token_url": server.token_url,
        "client_id": "clinic-17",
        "client_secret": CLIENT_SECRET,
        "method": "client_secret_post",
    }
    return {"name": "pharmacy", "url": server.partner_url, "auth": {"oauth2": oauth2}}


def test_two_workers_share_one_token_and_refresh_it_once_when_the_partner_refuses_it(
    make_runtime, write_config, start_worker, token_server
) -> None:
    endpoints = [oauth2_endpoint(token_server)]
    runtime = make_runtime(endpoints=endpoints)
    config = write_config(endpoints=endpoints)
    workers = [start_worker(config), start_worker(config)]
    example = events.CATALOGUE["order_changed"].example()

    first = [dispatch("order_changed", example)[0] for _ in range(20)]
    assert {row["status"] for row in wait_final(runtime, first)} == {"delivered"}
    assert token_server.token_requests == 1  # one fetch for both processes and all their threads

    token_server.expire_all()  # every worker's cached token is now refused by the partner
    second = [dispatch("order_changed", example)[0] for _ in range(20)]
    rows = wait_final(runtime, second)
    assert {(row["status"], row["attempts"]) for row in rows} == {("delivered", 1)}
    assert token_server.token_requests == 2  # one refresh, however many 401s the workers got

    tokens = {p.headers["authorization"].split()[1] for p in token_server.partner_requests}
    for worker in workers:
        worker.stop()
    logs = "".join(w.output() for w in workers) + Path(runtime.settings.process_log).read_text()
    assert "attempt" in logs and "pharmacy" in logs
    assert CLIENT_SECRET not in logs and not any(token in logs for token in tokens)


@pytest.mark.skipif(nginx_binary() is None, reason=MISSING_NGINX)
@pytest.mark.skipif(tinyproxy_binary() is None, reason=MISSING_TINYPROXY)
def test_a_worker_reaches_a_mutual_tls_basic_auth_partner_through_the_egress_proxy(
    tmp_path: Path, make_runtime, write_config, start_worker
) -> None:
    certs = make_certs(tmp_path / "certs")
    with (
        NginxPartner(tmp_path / "nginx", certs, basic_auth=("clinic", BASIC_PASSWORD)) as partner,
        Tinyproxy(
            tmp_path / "proxy", connect_ports=[partner.port], credentials=("egress", PROXY_PASSWORD)
        ) as proxy,
    ):
        endpoint = {
            "name": "pharmacy",
            "url": partner.url,
            "key": KEY,
            "headers": {"X-Partner-Account": ACCOUNT},
            "auth": {"basic": {"username": "clinic", "password": BASIC_PASSWORD}},
            "tls_client_cert": {
                "cert": str(certs.client_cert),
                "key": str(certs.encrypted_key),
                "key_password": certs.key_password,
            },
            "ca_bundle": str(certs.ca),
        }
        delivery = {"proxy": proxy.url_with("egress", PROXY_PASSWORD)}
        runtime = make_runtime(endpoints=[endpoint], delivery=delivery)
        worker = start_worker(write_config(endpoints=[endpoint], delivery=delivery))
        example = events.CATALOGUE["prescription_submitted"].example()
        request_ids = [dispatch("prescription_submitted", example)[0] for _ in range(3)]

        assert {row["status"] for row in wait_final(runtime, request_ids)} == {"delivered"}
        received = partner.wait_for_requests(3)
        assert {r["client_verify"] for r in received} == {"SUCCESS"}
        assert {r["client_dn"] for r in received} == {certs.client_subject}
        assert {(r["remote_user"], r["webhook_key"], r["partner_account"]) for r in received} == {
            ("clinic", KEY, ACCOUNT)
        }
        assert any(line.startswith("CONNECT 127.0.0.1:") for line in proxy.requests())
        worker.stop()
        kept = json.dumps([store.list_attempts(runtime.engine, r) for r in request_ids], default=str)
        kept += worker.output() + Path(runtime.settings.process_log).read_text()
        for secret in (KEY, BASIC_PASSWORD, ACCOUNT, PROXY_PASSWORD, certs.key_password):
            assert secret not in kept
