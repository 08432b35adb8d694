"""How a POST reaches a partner (dispatcher.sending.connections): the proxy and route choices
(pure), then real servers on loopback -- Debian's nginx asking for a client certificate, tinyproxy
as the egress proxy -- reached through ``Connections``, the guard and ``attempt.post`` exactly as
the worker reaches them."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatcher.config import DeliverySettings, Endpoint
from dispatcher.config.partner_settings import NO_PROXY, ClientCert
from dispatcher.policy.retry import DeliveryOutcome
from dispatcher.sending import attempt
from dispatcher.sending.connections import (
    Connections,
    Route,
    bypasses,
    choose_proxy,
    host_port,
    proxies_for,
    route_for,
    ssl_context,
)
from dispatcher.vocabulary import FailureKind
from tests.partner_servers import (
    MISSING_NGINX,
    MISSING_TINYPROXY,
    NginxPartner,
    PartnerCerts,
    Tinyproxy,
    free_port,
    make_certs,
    nginx_binary,
    tinyproxy_binary,
)
from tests.servers import ScriptedReceiver

LOOPBACK = ("127.0.0.0/8", "::1/128")
KEY = "k-pharmacy-secret"
PROXY_USER, PROXY_PASSWORD = "clinic", "pr0xy-pass"

needs_nginx = pytest.mark.skipif(nginx_binary() is None, reason=MISSING_NGINX)
needs_tinyproxy = pytest.mark.skipif(tinyproxy_binary() is None, reason=MISSING_TINYPROXY)


# --- pure: which proxy, which route ----------------------------------------------------------


@pytest.mark.parametrize(
    "url, no_proxy, expected",
    [
        ("https://partner.example/hooks", ("*",), True),
        ("https://partner.example/hooks", ("partner.example",), True),
        ("https://api.partner.example/hooks", ("partner.example",), True),
        ("https://api.partner.example/hooks", (".partner.example",), True),
        ("https://PARTNER.example/hooks", ("Partner.Example",), True),
        ("https://notpartner.example/hooks", ("partner.example",), False),
        ("https://partner.example.evil/hooks", ("partner.example",), False),
        ("https://partner.example/hooks", ("partner.example:443",), True),
        ("https://partner.example:8443/hooks", ("partner.example:443",), False),
        ("http://partner.example/hooks", ("partner.example:80",), True),
        ("https://10.1.2.3/hooks", ("10.0.0.0/8",), True),
        ("https://10.1.2.3/hooks", ("10.1.2.3",), True),
        ("https://11.1.2.3/hooks", ("10.0.0.0/8",), False),
        ("https://[fd00::5]:8443/hooks", ("fd00::/8",), True),
        ("https://[fd00::5]:8443/hooks", ("[fd00::5]",), True),
        ("https://partner.example/hooks", (), False),
        ("https://partner.example/hooks", ("other.example", "partner.example"), True),
    ],
)
def test_bypasses_follows_no_proxy_rules(url: str, no_proxy: tuple[str, ...], expected: bool) -> None:
    assert bypasses(url, no_proxy) is expected


def test_host_port_is_the_schemes_port_when_none_is_given() -> None:
    assert host_port("https://Partner.Example/x") == ("partner.example", 443)
    assert host_port("http://partner.example/x") == ("partner.example", 80)
    assert host_port("https://[::1]:8443/x") == ("::1", 8443)


GLOBAL_PROXY = "http://proxy.clinic.internal:3128"
OWN_PROXY = "http://user:pw@egress.clinic.internal:8080"


def endpoint(url: str = "https://partner.example/hooks", **kwargs: object) -> Endpoint:
    return Endpoint(name="pharmacy", url=url, key=KEY, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "own, rules, url, expected",
    [
        (None, DeliverySettings(), "https://partner.example/h", None),
        (None, DeliverySettings(proxy=GLOBAL_PROXY), "https://partner.example/h", GLOBAL_PROXY),
        (OWN_PROXY, DeliverySettings(proxy=GLOBAL_PROXY), "https://partner.example/h", OWN_PROXY),
        (OWN_PROXY, DeliverySettings(), "https://partner.example/h", OWN_PROXY),
        (NO_PROXY, DeliverySettings(proxy=GLOBAL_PROXY), "https://partner.example/h", None),
        (
            None,
            DeliverySettings(proxy=GLOBAL_PROXY, no_proxy=("partner.example",)),
            "https://partner.example/h",
            None,
        ),
        (
            None,
            DeliverySettings(proxy=GLOBAL_PROXY, no_proxy=("other.example",)),
            "https://partner.example/h",
            GLOBAL_PROXY,
        ),
        # an endpoint's own proxy is its choice: no_proxy is the global proxy's exception list
        (
            OWN_PROXY,
            DeliverySettings(proxy=GLOBAL_PROXY, no_proxy=("partner.example",)),
            "https://partner.example/h",
            OWN_PROXY,
        ),
    ],
)
def test_choose_proxy_endpoint_first_then_delivery_unless_no_proxy(
    own: str | None, rules: DeliverySettings, url: str, expected: str | None
) -> None:
    assert choose_proxy(url, endpoint(url, proxy=own), rules) == expected
    assert proxies_for(url, endpoint(url, proxy=own), rules) == (
        {"http": expected, "https": expected} if expected else {}
    )


def test_choose_proxy_without_an_endpoint_is_the_delivery_proxy() -> None:
    rules = DeliverySettings(proxy=GLOBAL_PROXY, no_proxy=("auth.example",))
    assert choose_proxy("https://token.example/t", None, rules) == GLOBAL_PROXY
    assert choose_proxy("https://auth.example/t", None, rules) is None


def test_route_for_takes_the_endpoints_ca_bundle_over_the_delivery_one() -> None:
    cert = ClientCert("/etc/dispatcher/clinic.crt", "/etc/dispatcher/clinic.key")
    rules = DeliverySettings(ca_bundle="/etc/ssl/delivery.pem")
    assert route_for(endpoint(ca_bundle="/etc/ssl/pharmacy.pem"), rules) == Route(
        "/etc/ssl/pharmacy.pem", True
    )
    assert route_for(endpoint(), rules) == Route("/etc/ssl/delivery.pem", True)
    assert route_for(None, rules) == Route("/etc/ssl/delivery.pem", True)
    assert route_for(endpoint(tls_client_cert=cert), DeliverySettings(tls_verify=False)) == Route(
        None, False, cert
    )


def test_a_route_needs_its_own_context_only_for_a_client_certificate() -> None:
    cert = ClientCert("/c.pem")
    assert Route("/ca.pem", True).requests_verify == "/ca.pem" and not Route("/ca.pem", True).own_context
    assert Route(None, True).requests_verify is True
    assert Route("/ca.pem", False).requests_verify is False
    assert Route("/ca.pem", True, cert).own_context
    assert Route("/ca.pem", True, cert).requests_verify == "/ca.pem"  # only the bundle is trusted


def test_routes_without_a_client_certificate_share_the_default_session() -> None:
    default = attempt.new_session(LOOPBACK)
    connections = Connections(LOOPBACK, 4, default)
    assert connections.session(Route(None, True)) is default
    assert connections.session(Route("/some/ca.pem", True)) is default
    connections.close()
    default.close()


# --- real servers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> PartnerCerts:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def partner(tmp_path: Path, certs: PartnerCerts) -> Iterator[NginxPartner]:
    """nginx asking every client for a certificate signed by ``certs.ca``."""
    if nginx_binary() is None:
        pytest.skip(MISSING_NGINX)
    with NginxPartner(tmp_path / "nginx", certs) as server:
        yield server


@pytest.fixture
def proxy(tmp_path: Path, partner: NginxPartner) -> Iterator[Tinyproxy]:
    """tinyproxy letting CONNECT through to the partner's port (and 443)."""
    if tinyproxy_binary() is None:
        pytest.skip(MISSING_TINYPROXY)
    with Tinyproxy(tmp_path / "tinyproxy", connect_ports=[partner.port]) as server:
        yield server


@pytest.fixture
def connections() -> Iterator[Connections]:
    default = attempt.new_session(LOOPBACK)
    made = Connections(LOOPBACK, 4, default)
    yield made
    made.close()
    default.close()


def guarded(allow: tuple[str, ...]) -> Connections:
    return Connections(allow, 4, attempt.new_session(allow))


def client_cert(certs: PartnerCerts) -> ClientCert:
    return ClientCert(str(certs.client_cert), str(certs.client_key))


def send(
    connections: Connections, target: Endpoint, rules: DeliverySettings | None = None
) -> DeliveryOutcome:
    """One POST as the worker makes it: the endpoint's route and session, its proxy, no masking
    (an error must hold no secret by itself)."""
    rules = rules or DeliverySettings()
    route = route_for(target, rules)
    return attempt.post(
        connections.session(route),
        target.url,
        b'{"event":"lab.result_ready","data":{"order_number":"ORD-555"}}',
        attempt.build_headers(target.key, target.headers),
        timeout=5,
        connect_timeout=5,
        verify=route.requests_verify,
        proxies=proxies_for(target.url, target, rules),
    )


# --- mutual TLS --------------------------------------------------------------------------------


@pytest.mark.parametrize("combined", [False, True], ids=["cert-and-key", "one-file"])
def test_a_client_certificate_signed_by_the_partners_ca_is_accepted(
    partner: NginxPartner, certs: PartnerCerts, connections: Connections, combined: bool
) -> None:
    cert = ClientCert(str(certs.client_combined)) if combined else client_cert(certs)
    target = endpoint(
        partner.url,
        tls_client_cert=cert,
        ca_bundle=str(certs.ca),
        headers=(("X-Partner-Account", "clinic-17"),),
    )
    outcome = send(connections, target)
    assert (outcome.http_status, outcome.error, outcome.response_body) == (200, None, '{"ok":true}')
    [seen] = partner.wait_for_requests(1)
    assert seen["client_verify"] == "SUCCESS" and seen["client_dn"] == certs.client_subject
    assert (seen["webhook_key"], seen["partner_account"]) == (KEY, "clinic-17")
    assert seen["body"].startswith('{"event":"lab.result_ready"')


def test_without_a_client_certificate_the_partner_answers_400(
    partner: NginxPartner, certs: PartnerCerts, connections: Connections
) -> None:
    outcome = send(connections, endpoint(partner.url, ca_bundle=str(certs.ca)))
    assert outcome.http_status == 400 and outcome.error == "HTTP 400 Bad Request"
    assert "No required SSL certificate was sent" in (outcome.response_body or "")
    assert partner.wait_for_requests(1)[0]["client_verify"] == "NONE"


def test_an_encrypted_key_opens_with_its_passphrase(
    partner: NginxPartner, certs: PartnerCerts, connections: Connections
) -> None:
    cert = ClientCert(str(certs.client_cert), str(certs.encrypted_key), key_password=certs.key_password)
    outcome = send(connections, endpoint(partner.url, tls_client_cert=cert, ca_bundle=str(certs.ca)))
    assert outcome.http_status == 200
    assert partner.wait_for_requests(1)[0]["client_verify"] == "SUCCESS"


def test_a_wrong_passphrase_fails_when_the_key_is_loaded_and_is_not_quoted(
    certs: PartnerCerts, connections: Connections
) -> None:
    cert = ClientCert(str(certs.client_cert), str(certs.encrypted_key), key_password="not-the-passphrase")
    route = route_for(endpoint(tls_client_cert=cert, ca_bundle=str(certs.ca)), DeliverySettings())
    with pytest.raises(ssl.SSLError) as failed:
        connections.session(route)
    assert "not-the-passphrase" not in str(failed.value)
    assert connections.session(route_for(endpoint(tls_client_cert=client_cert(certs)), DeliverySettings()))


def test_an_encrypted_key_without_a_passphrase_fails_at_once_naming_the_setting(certs: PartnerCerts) -> None:
    # Without a passphrase callback OpenSSL would prompt on the terminal and block the worker;
    # stdin is closed here, so a prompt would fail differently.
    cert = ClientCert(str(certs.client_cert), str(certs.encrypted_key))
    with pytest.raises(ssl.SSLError, match="set tls_client_cert.key_password"):
        ssl_context(route_for(endpoint(tls_client_cert=cert), DeliverySettings()))


@pytest.mark.parametrize(
    "which, verdict",
    [
        ("other_ca", "FAILED:unable to verify the first certificate"),
        ("expired", "FAILED:certificate has expired"),
    ],
)
def test_a_certificate_the_partner_does_not_trust_is_refused(
    partner: NginxPartner, certs: PartnerCerts, connections: Connections, which: str, verdict: str
) -> None:
    cert = (
        ClientCert(str(certs.other_client_cert), str(certs.other_client_key))
        if which == "other_ca"
        else ClientCert(str(certs.expired_client_cert), str(certs.client_key))
    )
    outcome = send(connections, endpoint(partner.url, tls_client_cert=cert, ca_bundle=str(certs.ca)))
    assert outcome.http_status == 400 and "The SSL certificate error" in (outcome.response_body or "")
    assert partner.wait_for_requests(1)[0]["client_verify"] == verdict


@needs_nginx
@pytest.mark.parametrize("with_cert", [True, False], ids=["own-context", "default-session"])
def test_the_endpoints_ca_bundle_overrides_the_delivery_one(
    tmp_path: Path, certs: PartnerCerts, connections: Connections, with_cert: bool
) -> None:
    cert = client_cert(certs) if with_cert else None
    with NginxPartner(tmp_path / "nginx", certs, verify_client="optional") as server:
        right, wrong = str(certs.ca), str(certs.other_ca)
        trusted = send(
            connections,
            endpoint(server.url, tls_client_cert=cert, ca_bundle=right),
            DeliverySettings(ca_bundle=wrong),
        )
        assert trusted.http_status == 200
        by_delivery = send(
            connections, endpoint(server.url, tls_client_cert=cert), DeliverySettings(ca_bundle=right)
        )
        assert by_delivery.http_status == 200
        refused = send(
            connections,
            endpoint(server.url, tls_client_cert=cert, ca_bundle=wrong),
            DeliverySettings(ca_bundle=right),
        )
        assert refused.http_status is None
        assert refused.error == "TLS: unable to get local issuer certificate (127.0.0.1)"
        assert [r["client_verify"] for r in server.wait_for_requests(2)] == [
            "SUCCESS" if cert else "NONE"
        ] * 2


# --- the egress proxy --------------------------------------------------------------------------


def test_an_https_post_goes_through_the_proxys_connect_with_the_client_certificate(
    partner: NginxPartner, proxy: Tinyproxy, certs: PartnerCerts, connections: Connections
) -> None:
    target = endpoint(partner.url, tls_client_cert=client_cert(certs), ca_bundle=str(certs.ca))
    outcome = send(connections, target, DeliverySettings(proxy=proxy.url))
    assert outcome.http_status == 200
    assert proxy.wait_for_requests(1) == [f"CONNECT 127.0.0.1:{partner.port} HTTP/1.0"]
    assert partner.wait_for_requests(1)[0]["client_verify"] == "SUCCESS"


@needs_tinyproxy
def test_an_http_post_is_forwarded_by_the_proxy(tmp_path: Path, receiver: ScriptedReceiver) -> None:
    with Tinyproxy(tmp_path / "tinyproxy") as proxy:
        outcome = send(guarded(LOOPBACK), endpoint(receiver.url), DeliverySettings(proxy=proxy.url))
        assert outcome.http_status == 200
        assert proxy.wait_for_requests(1) == [f"POST {receiver.url} HTTP/1.1"]
    [received] = receiver.received
    assert received.headers["X-Webhook-Key"] == KEY
    assert received.body == {"event": "lab.result_ready", "data": {"order_number": "ORD-555"}}


@needs_tinyproxy
@pytest.mark.parametrize("scheme", ["https", "http"])
def test_proxy_credentials_are_accepted_and_never_quoted_when_refused(
    tmp_path: Path, partner: NginxPartner, certs: PartnerCerts, receiver: ScriptedReceiver, scheme: str
) -> None:
    url = partner.url if scheme == "https" else receiver.url
    target = endpoint(url, tls_client_cert=client_cert(certs), ca_bundle=str(certs.ca))
    connections = guarded(LOOPBACK)
    credentials = (PROXY_USER, PROXY_PASSWORD)
    with Tinyproxy(tmp_path / "tinyproxy", connect_ports=[partner.port], credentials=credentials) as proxy:
        accepted = send(connections, target, DeliverySettings(proxy=proxy.url_with(*credentials)))
        assert accepted.http_status == 200
        wrong = send(connections, target, DeliverySettings(proxy=proxy.url_with(PROXY_USER, "wrong-pass")))
        missing = send(connections, target, DeliverySettings(proxy=proxy.url))
    if scheme == "https":  # the CONNECT is refused: no answer from the partner
        assert (
            wrong.error
            == f"proxy {proxy.address} answered 401 to CONNECT (check the proxy's user and password)"
        )
        assert (
            missing.error
            == f"proxy {proxy.address} answered 407 to CONNECT (check the proxy's user and password)"
        )
        assert wrong.failure == missing.failure == FailureKind.CONNECTION_ERROR
    else:  # tinyproxy answers a forwarded POST (401 or 407), then resets: its body is unread
        for outcome, status in ((wrong, 401), (missing, 407)):
            assert outcome.http_status == status or (
                outcome.http_status is None and f"(through proxy {proxy.address})" in str(outcome.error)
            )
        assert len(receiver.received) == 1
        assert "Proxy-Authorization" not in receiver.received[0].headers
    for outcome in (wrong, missing):
        text = f"{outcome.error} {outcome.response_body}"
        assert "wrong-pass" not in text and PROXY_PASSWORD not in text and f"{PROXY_USER}:" not in text


@needs_nginx
@needs_tinyproxy
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_the_guard_refuses_a_loopback_partner_before_anything_reaches_the_proxy(
    tmp_path: Path, certs: PartnerCerts, host: str
) -> None:
    """Only 127.0.0.2 is allowed: the proxy on 127.0.0.1 is reached because it is configured,
    the partner on 127.0.0.1 is refused, the one on 127.0.0.2 is not."""
    connections = guarded(("127.0.0.2/32",))
    with (
        NginxPartner(tmp_path / "near", certs, verify_client="off") as near,
        NginxPartner(tmp_path / "allowed", certs, host="127.0.0.2", verify_client="off") as allowed,
        Tinyproxy(tmp_path / "tinyproxy", connect_ports=[near.port, allowed.port]) as proxy,
    ):
        rules = DeliverySettings(proxy=proxy.url)
        refused = send(connections, endpoint(near.url_for(host=host), ca_bundle=str(certs.ca)), rules)
        assert refused.failure == FailureKind.DESTINATION_REFUSED
        assert refused.error is not None and refused.error.startswith("127.0.0.1 is not allowed (loopback)")
        # the next request is logged once it reached the proxy: the refused one never did
        assert send(connections, endpoint(allowed.url, ca_bundle=str(certs.ca)), rules).http_status == 200
        assert proxy.wait_for_requests(1) == [f"CONNECT 127.0.0.2:{allowed.port} HTTP/1.0"]
        assert proxy.connections() == 1 and near.requests() == []


@needs_tinyproxy
def test_an_http_partner_at_a_forbidden_address_is_refused_before_the_proxy(
    tmp_path: Path, receiver: ScriptedReceiver
) -> None:
    with Tinyproxy(tmp_path / "tinyproxy") as proxy:
        outcome = send(guarded(("10.0.0.0/8",)), endpoint(receiver.url), DeliverySettings(proxy=proxy.url))
        assert outcome.error == "127.0.0.1 is not allowed (loopback): add it to allow_networks"
        assert (
            send(guarded(LOOPBACK), endpoint(receiver.url), DeliverySettings(proxy=proxy.url)).http_status
            == 200
        )
        assert len(proxy.wait_for_requests(1)) == 1 and proxy.connections() == 1
    assert len(receiver.received) == 1


def test_no_proxy_sends_directly(
    partner: NginxPartner, proxy: Tinyproxy, certs: PartnerCerts, connections: Connections
) -> None:
    rules = DeliverySettings(proxy=proxy.url, no_proxy=("localhost",))
    direct = endpoint(
        partner.url_for(host="localhost"), tls_client_cert=client_cert(certs), ca_bundle=str(certs.ca)
    )
    proxied = endpoint(partner.url, tls_client_cert=client_cert(certs), ca_bundle=str(certs.ca))
    assert send(connections, direct, rules).http_status == 200
    assert send(connections, proxied, rules).http_status == 200
    # the direct one finished before the proxied one began: the proxy saw only the second
    assert proxy.wait_for_requests(1) == [f"CONNECT 127.0.0.1:{partner.port} HTTP/1.0"]
    assert proxy.connections() == 1 and len(partner.wait_for_requests(2)) == 2


def test_an_endpoints_proxy_none_sends_directly(
    partner: NginxPartner, proxy: Tinyproxy, certs: PartnerCerts, connections: Connections
) -> None:
    rules = DeliverySettings(proxy=proxy.url)
    direct = endpoint(
        partner.url, tls_client_cert=client_cert(certs), ca_bundle=str(certs.ca), proxy=NO_PROXY
    )
    proxied = endpoint(partner.url, tls_client_cert=client_cert(certs), ca_bundle=str(certs.ca))
    assert send(connections, direct, rules).http_status == 200
    assert send(connections, proxied, rules).http_status == 200
    assert proxy.wait_for_requests(1) == [f"CONNECT 127.0.0.1:{partner.port} HTTP/1.0"]
    assert proxy.connections() == 1


def test_an_endpoints_own_proxy_is_used_over_the_delivery_one(
    partner: NginxPartner, proxy: Tinyproxy, certs: PartnerCerts, connections: Connections
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    target = endpoint(
        partner.url, tls_client_cert=client_cert(certs), ca_bundle=str(certs.ca), proxy=proxy.url
    )
    assert send(connections, target, DeliverySettings(proxy=closed)).http_status == 200
    assert proxy.wait_for_requests(1) == [f"CONNECT 127.0.0.1:{partner.port} HTTP/1.0"]


def test_a_proxy_that_is_not_listening_is_named_by_host_and_port(
    partner: NginxPartner, certs: PartnerCerts, connections: Connections
) -> None:
    port = free_port()
    target = endpoint(partner.url, tls_client_cert=client_cert(certs), ca_bundle=str(certs.ca))
    outcome = send(
        connections, target, DeliverySettings(proxy=f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{port}")
    )
    assert outcome.error == f"proxy 127.0.0.1:{port}: connection refused"
    assert outcome.failure == FailureKind.CONNECTION_ERROR
    assert partner.requests() == []
