"""``endpoints check``'s steps against real servers on loopback: a plain HTTP receiver, an address
the guard refuses, a closed port, Debian's nginx asking for a client certificate, a TLS 1.3
server that refuses a client after the handshake, a real OAuth2 token endpoint, and tinyproxy
as the egress proxy. Nothing is stored or queued, and no secret reaches a step's line."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from dispatcher.contract.signing import generate_secret
from dispatcher.errors import InvalidDispatchArgument, UnknownEndpoint, UnknownEvent
from dispatcher.ops.endpoint_check import Step, check_endpoint, sample_event
from tests.partner_servers import (
    NginxPartner,
    PartnerCerts,
    Tinyproxy,
    free_port,
    make_certs,
    nginx_binary,
    tinyproxy_binary,
)
from tests.token_server import TokenServer

needs_nginx = pytest.mark.skipif(
    nginx_binary() is None, reason="nginx is not installed (apt-get install nginx)"
)
needs_tinyproxy = pytest.mark.skipif(tinyproxy_binary() is None, reason="tinyproxy is not installed")
PROXY_PASSWORD = "proxy-pw-31337"
CLIENT_SECRET = "client-secret-31337"


@pytest.fixture(name="certs", scope="module")
def certs_fixture(tmp_path_factory: pytest.TempPathFactory) -> PartnerCerts:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(name="nginx")
def nginx_fixture(tmp_path: Path, certs: PartnerCerts) -> Iterator[NginxPartner]:
    """nginx on https:// that requires a client certificate signed by ``certs.ca``."""
    with NginxPartner(tmp_path / "nginx", certs) as server:
        yield server


@pytest.fixture(name="proxy")
def proxy_fixture(tmp_path: Path, nginx: NginxPartner) -> Iterator[Tinyproxy]:
    """tinyproxy asking for clinic:PROXY_PASSWORD, tunnelling to nginx's port."""
    with Tinyproxy(
        tmp_path / "proxy", connect_ports=[nginx.port], credentials=("clinic", PROXY_PASSWORD)
    ) as server:
        yield server


@pytest.fixture(name="token_server")
def token_server_fixture() -> Iterator[TokenServer]:
    server = TokenServer(expires_in=3600)
    server.register_secret("clinic-17", CLIENT_SECRET)
    yield server
    server.close()


def tls_endpoint(nginx: NginxPartner, certs: PartnerCerts, name: str = "pharmacy", **extra) -> dict:
    """An endpoint on nginx with the partner's CA bundle and the clinic's certificate (its
    encrypted key and passphrase); ``tls_client_cert=None`` leaves the certificate out."""
    cert = {
        "cert": str(certs.client_cert),
        "key": str(certs.encrypted_key),
        "key_password": certs.key_password,
    }
    endpoint = {"name": name, "url": nginx.url, "key": "k-pharmacy-31337", "ca_bundle": str(certs.ca)}
    endpoint["tls_client_cert"] = cert
    endpoint.update(extra)
    return {k: v for k, v in endpoint.items() if v is not None}


def oauth2_endpoint(token_server: TokenServer, secret: str = CLIENT_SECRET) -> dict:
    client = {"token_url": token_server.token_url, "client_id": "clinic-17", "client_secret": secret}
    return {"name": "lab", "url": token_server.partner_url, "key": "k-lab-31337", "auth": {"oauth2": client}}


def by_name(steps: list[Step]) -> dict[str, Step]:
    return {step.name: step for step in steps}


def assert_no_secret(steps: list[Step], *secrets: str) -> None:
    text = repr(steps)
    for secret in secrets:
        assert secret not in text


def test_every_step_passes_against_a_plain_receiver_and_send_delivers_the_sample(
    make_runtime, receiver
) -> None:
    secret = generate_secret()
    endpoint = {"name": "partner-a", "url": receiver.url, "key": "k-check-31337", "signing_secret": secret}
    runtime = make_runtime(endpoints=[endpoint])

    steps = check_endpoint(runtime, "partner-a", "prescription_submitted")

    assert [(s.name, s.ok) for s in steps] == [("resolve", True), ("connect", True), ("send", True)]
    port = receiver.server.server_address[1]
    assert steps[0].detail == "127.0.0.1: allowed" and steps[1].detail == f"connected to 127.0.0.1:{port}"
    assert all(isinstance(s.ms, int) and s.ms >= 0 for s in steps)
    (got,) = receiver.received
    assert got.body["event"] == "prescription_submitted" and got.body["metadata"]["environment"] == "test"
    assert steps[2].detail == f"answered 200 (request_id {got.request_id})"
    assert got.headers["X-Webhook-Key"] == "k-check-31337" and got.body["metadata"]["retry"] is False
    Webhook(secret).verify(got.raw, {k.lower(): v for k, v in got.headers.items()})
    assert "engine" not in runtime.__dict__ and "redis" not in runtime.__dict__  # nothing stored or queued
    assert_no_secret(steps, "k-check-31337", secret)


def test_without_send_nothing_reaches_the_partner(make_runtime, receiver) -> None:
    runtime = make_runtime(endpoints=[{"name": "partner-a", "url": receiver.url, "key": "k-1"}])
    assert [(s.name, s.ok) for s in check_endpoint(runtime, "partner-a")] == [
        ("resolve", True),
        ("connect", True),
    ]
    assert receiver.received == []


def test_a_refused_address_fails_resolve_and_skips_the_rest(make_runtime, receiver) -> None:
    runtime = make_runtime(
        endpoints=[{"name": "partner-a", "url": receiver.url, "key": "k-1"}], allow_networks=[]
    )
    steps = check_endpoint(runtime, "partner-a", "order_changed")
    assert steps == [
        Step("resolve", False, "127.0.0.1 is not allowed (loopback): add it to allow_networks", steps[0].ms),
        Step("connect", None, "skipped: resolve failed", None),
        Step("send", None, "skipped: resolve failed", None),
    ]
    assert receiver.received == []


def test_a_closed_port_fails_connect(make_runtime) -> None:
    port = free_port()
    runtime = make_runtime(endpoints=[{"name": "gone", "url": f"http://127.0.0.1:{port}/h", "key": "k-1"}])
    resolve, connect = check_endpoint(runtime, "gone")
    assert resolve.ok is True
    assert (connect.ok, connect.detail) == (False, f"connection refused by 127.0.0.1:{port}")


def test_the_event_is_checked_before_anything_runs(make_runtime, receiver) -> None:
    endpoint = {"name": "partner-b", "url": receiver.url, "key": "k-1", "events": ["message_created"]}
    runtime = make_runtime(endpoints=[endpoint])
    with pytest.raises(UnknownEndpoint, match="unknown endpoint 'nope'; configured: partner-b"):
        check_endpoint(runtime, "nope")
    with pytest.raises(UnknownEvent):
        check_endpoint(runtime, "partner-b", "no_such_event")
    with pytest.raises(InvalidDispatchArgument, match="does not subscribe to order_changed"):
        check_endpoint(runtime, "partner-b", "order_changed")
    assert sample_event(runtime.settings.endpoints[0]) == "message_created"
    assert receiver.received == []


@needs_nginx
def test_mutual_tls_passes_with_the_client_certificate(make_runtime, nginx, certs) -> None:
    runtime = make_runtime(endpoints=[tls_endpoint(nginx, certs)])
    steps = by_name(check_endpoint(runtime, "pharmacy", "order_changed"))
    assert [s.ok for s in steps.values()] == [True, True, True, True]
    tls = steps["tls"].detail
    assert tls.startswith("TLSv1.") and "certificate CN=partner.test, expires " in tls
    assert tls.endswith("; client certificate offered; a GET (no event) answered 200")
    get, post = nginx.wait_for_requests(2)
    assert (get["method"], get["body"], get["client_verify"]) == ("GET", "", "SUCCESS")
    assert (post["method"], post["client_verify"], post["webhook_key"]) == (
        "POST",
        "SUCCESS",
        "k-pharmacy-31337",
    )
    assert_no_secret(list(steps.values()), certs.key_password, "k-pharmacy-31337")


@needs_nginx
def test_mutual_tls_fails_without_a_certificate_or_with_a_stranger(make_runtime, nginx, certs) -> None:
    stranger = {"cert": str(certs.other_client_cert), "key": str(certs.other_client_key)}
    endpoints = [
        tls_endpoint(nginx, certs, "none", tls_client_cert=None),
        tls_endpoint(nginx, certs, "stranger", tls_client_cert=stranger),
    ]
    runtime = make_runtime(endpoints=endpoints)
    none = by_name(check_endpoint(runtime, "none", "order_changed"))
    assert (none["tls"].ok, none["tls"].detail) == (
        False,
        "the partner answered 400: no client certificate was sent; set tls_client_cert",
    )
    assert (none["send"].ok, none["send"].detail) == (None, "skipped: tls failed")
    refused = by_name(check_endpoint(runtime, "stranger"))["tls"]
    assert (refused.ok, refused.detail) == (
        False,
        "the partner answered 400: the partner did not accept the client certificate (tls_client_cert)",
    )
    assert [r["method"] for r in nginx.wait_for_requests(2)] == ["GET", "GET"]  # no event was sent


@needs_nginx
def test_an_unknown_partner_certificate_fails_tls(make_runtime, nginx, certs) -> None:
    runtime = make_runtime(endpoints=[tls_endpoint(nginx, certs, ca_bundle=str(certs.other_ca))])
    tls = by_name(check_endpoint(runtime, "pharmacy"))["tls"]
    assert (tls.ok, tls.detail) == (False, "TLS: unable to get local issuer certificate (127.0.0.1)")


@pytest.fixture
def strict_tls_server(certs: PartnerCerts) -> Iterator[str]:
    """A TLS 1.3 server that requires a client certificate: without one, the client's handshake
    completes and the refusal (an alert) arrives with the first read. Yields its URL."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(certs.server_cert, certs.server_key)
    context.load_verify_locations(certs.ca)
    context.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed: the test is over
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(4096)
                    tls.sendall(
                        b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
            except OSError:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{listener.getsockname()[1]}/hooks"
    listener.close()


def test_a_refusal_just_after_a_tls13_handshake_fails_tls(make_runtime, strict_tls_server, certs) -> None:
    base = {"url": strict_tls_server, "key": "k-1", "ca_bundle": str(certs.ca)}
    with_cert = {**base, "name": "with", "tls_client_cert": {"cert": str(certs.client_combined)}}
    runtime = make_runtime(endpoints=[{**base, "name": "without"}, with_cert])
    port = strict_tls_server.rsplit(":", 1)[1].split("/")[0]
    tls = by_name(check_endpoint(runtime, "without"))["tls"]
    # The alert, or (when the server's close overtakes it: an RST) a broken connection.
    assert tls.ok is False and f"(127.0.0.1:{port}); " in tls.detail
    assert tls.detail.endswith("; the partner may require a client certificate (tls_client_cert)")
    tls = by_name(check_endpoint(runtime, "with"))["tls"]
    assert tls.ok is True and tls.detail.startswith("TLSv1.3; ") and tls.detail.endswith("answered 405")


def test_the_token_step_fetches_a_fresh_token_and_the_send_uses_it(make_runtime, token_server) -> None:
    runtime = make_runtime(endpoints=[oauth2_endpoint(token_server)])
    steps = check_endpoint(runtime, "lab", "order_changed")
    assert [(s.name, s.ok) for s in steps] == [
        ("resolve", True),
        ("connect", True),
        ("token", True),
        ("send", True),
    ]
    address = token_server.base_url.split("//")[1]
    assert steps[2].detail == f"a token from {address}, expires in 3600 s"
    assert token_server.token_requests == 1 and token_server.partner_requests[0].status == 200
    check_endpoint(runtime, "lab")  # never the cache: a token of its own each time
    assert token_server.token_requests == 2
    assert_no_secret(steps, CLIENT_SECRET, *token_server.issued)


def test_a_wrong_client_secret_fails_the_token_step_in_one_line(make_runtime, token_server) -> None:
    runtime = make_runtime(endpoints=[oauth2_endpoint(token_server, secret="wrong-secret-31337")])
    steps = by_name(check_endpoint(runtime, "lab", "order_changed"))
    assert (steps["token"].ok, steps["token"].detail) == (
        False,
        "oauth2: token endpoint answered 401 invalid_client",
    )
    assert steps["send"] == Step("send", None, "skipped: token failed", None)
    assert token_server.partner_requests == []
    assert_no_secret(list(steps.values()), "wrong-secret-31337")


@needs_nginx
@needs_tinyproxy
def test_through_the_proxy_the_connect_step_shows_the_connect(make_runtime, nginx, proxy, certs) -> None:
    endpoint = tls_endpoint(nginx, certs, proxy=proxy.url_with("clinic", PROXY_PASSWORD))
    runtime = make_runtime(endpoints=[endpoint])
    steps = by_name(check_endpoint(runtime, "pharmacy", "order_changed"))
    assert [s.ok for s in steps.values()] == [True, True, True, True]
    assert steps["connect"].detail == (
        f"through proxy {proxy.address}: CONNECT 127.0.0.1:{nginx.port} answered 200 Connection established"
    )
    assert proxy.requests()[0] == f"CONNECT 127.0.0.1:{nginx.port} HTTP/1.1"
    assert [r["method"] for r in nginx.wait_for_requests(2)] == ["GET", "POST"]
    assert_no_secret(list(steps.values()), PROXY_PASSWORD)


@needs_nginx
@needs_tinyproxy
def test_a_wrong_proxy_password_fails_connect_without_showing_it(make_runtime, nginx, proxy, certs) -> None:
    endpoint = tls_endpoint(nginx, certs, proxy=proxy.url_with("clinic", "wrong-pw-31337"))
    runtime = make_runtime(endpoints=[endpoint])
    steps = by_name(check_endpoint(runtime, "pharmacy"))
    assert steps["connect"].ok is False
    assert steps["connect"].detail == (
        f"through proxy {proxy.address}: CONNECT 127.0.0.1:{nginx.port} answered 401 Unauthorized; "
        "check the user and password in the proxy's URL"
    )
    assert steps["tls"] == Step("tls", None, "skipped: connect failed", None)
    assert nginx.requests() == []
    assert_no_secret(list(steps.values()), "wrong-pw-31337", PROXY_PASSWORD)


@needs_tinyproxy
def test_an_http_partner_through_delivery_proxy_is_forwarded_not_tunnelled(
    make_runtime, receiver, tmp_path
) -> None:
    endpoint = {"name": "partner-a", "url": receiver.url, "key": "k-1"}
    with Tinyproxy(tmp_path / "proxy", credentials=("clinic", PROXY_PASSWORD)) as proxy:
        delivery = {"proxy": proxy.url_with("clinic", PROXY_PASSWORD)}
        runtime = make_runtime(endpoints=[endpoint], delivery=delivery)
        steps = by_name(check_endpoint(runtime, "partner-a", "order_changed"))
        assert (
            steps["connect"].detail
            == f"connected to proxy {proxy.address} (it forwards http:// requests: no CONNECT)"
        )
        assert steps["send"].ok is True
        assert proxy.wait_for_requests(1) == [f"POST {receiver.url} HTTP/1.1"]
        bypassed = make_runtime(endpoints=[endpoint], delivery={**delivery, "no_proxy": ["127.0.0.1"]})
        direct = by_name(check_endpoint(bypassed, "partner-a"))["connect"]
        assert direct.detail == f"connected to 127.0.0.1:{receiver.server.server_address[1]}"
    assert len(receiver.received) == 1
    assert_no_secret(list(steps.values()), PROXY_PASSWORD)


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for side in (source, target):
            try:
                side.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def https_proxy(tmp_path: Path, nginx: NginxPartner, certs: PartnerCerts) -> Iterator[str]:
    """tinyproxy behind a TLS front (the proxy's own https://, certificate from ``certs.ca``):
    yields the front's URL."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.server_cert, certs.server_key)
    front = socket.create_server(("127.0.0.1", 0))
    with Tinyproxy(tmp_path / "proxy", connect_ports=[nginx.port]) as proxy:

        def serve() -> None:
            while True:
                try:
                    conn, _ = front.accept()
                    client = context.wrap_socket(conn, server_side=True)
                    upstream = socket.create_connection(("127.0.0.1", proxy.port))
                except OSError:
                    return  # closed: the test is over
                threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()
                threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()
        yield f"https://127.0.0.1:{front.getsockname()[1]}"
        front.close()


@needs_nginx
@needs_tinyproxy
def test_tls_inside_an_https_proxys_tls(make_runtime, nginx, https_proxy, certs) -> None:
    runtime = make_runtime(endpoints=[tls_endpoint(nginx, certs, proxy=https_proxy)])
    steps = by_name(check_endpoint(runtime, "pharmacy", "order_changed"))
    assert [s.ok for s in steps.values()] == [True, True, True, True], steps
    assert steps["connect"].detail.endswith(
        f"CONNECT 127.0.0.1:{nginx.port} answered 200 Connection established"
    )
    assert steps["tls"].detail.endswith("client certificate offered; a GET (no event) answered 200")
    assert [r["client_verify"] for r in nginx.wait_for_requests(2)] == ["SUCCESS", "SUCCESS"]
