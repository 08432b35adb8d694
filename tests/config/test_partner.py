"""The partner-connection settings of the file (``dispatcher/config/partner.py``): headers,
auth, tls_client_cert, ca_bundle and proxy per endpoint; delivery.proxy and no_proxy. Each
mistake is one error naming the setting; a secret is never quoted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dispatcher.config import parse_settings
from dispatcher.config.partner_settings import BasicAuth, BearerAuth, ClientCert, OAuth2Client, OAuth2Method
from dispatcher.errors import ConfigError

URL = "https://pharmacy.example/hooks"


def endpoint(**more: Any) -> dict[str, Any]:
    return {"environment": "staging", "endpoints": [{"name": "pharmacy", "url": URL, **more}]}


def error_of(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw, env={})
    return str(caught.value)


@pytest.fixture
def pem(tmp_path: Path) -> str:
    path = tmp_path / "key.pem"
    path.write_text("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n")
    return str(path)


def test_every_form_becomes_its_frozen_value(pem: str) -> None:
    raw = endpoint(
        headers={"X-Partner-Account": "clinic-17"},
        auth={
            "oauth2": {"token_url": "https://auth.example/token", "client_id": "c17", "client_secret": "s3"}
        },
        tls_client_cert={"cert": pem, "key": pem, "key_password": "pw"},
        ca_bundle=pem,
        proxy="http://proxy.internal:3128",
    )
    raw["delivery"] = {"proxy": "http://u:p@egress.internal:8080", "no_proxy": [".internal", "10.0.0.0/8"]}
    settings = parse_settings(raw, env={})
    (partner,) = settings.endpoints
    assert partner.headers == (("X-Partner-Account", "clinic-17"),)
    assert partner.auth == OAuth2Client(
        "https://auth.example/token", "c17", OAuth2Method.CLIENT_SECRET_BASIC, "s3"
    )
    assert partner.tls_client_cert == ClientCert(pem, pem, "pw")
    assert (partner.ca_bundle, partner.proxy) == (pem, "http://proxy.internal:3128")
    assert settings.delivery.proxy == "http://u:p@egress.internal:8080"
    assert settings.delivery.no_proxy == (".internal", "10.0.0.0/8")


def test_basic_and_bearer_become_their_values() -> None:
    basic = parse_settings(endpoint(auth={"basic": {"username": "clinic", "password": "pw"}}), env={})
    bearer = parse_settings(endpoint(auth={"bearer": "tok"}), env={})
    assert basic.endpoints[0].auth == BasicAuth("clinic", "pw")
    assert bearer.endpoints[0].auth == BearerAuth("tok")


@pytest.mark.parametrize(
    "name",
    [
        "Host",
        "content-length",
        "Content-Type",
        "Transfer-Encoding",
        "Connection",
        "X-Webhook-Key",
        "Proxy-Authorization",
        "webhook-signature",
        "Webhook-Id",
    ],
)
def test_a_header_the_sender_writes_is_refused_by_name(name: str) -> None:
    message = error_of(endpoint(headers={name: "v"}))
    assert "endpoints[0].headers" in message and name in message and "may not be set here" in message


def test_authorization_is_refused_pointing_at_auth() -> None:
    message = error_of(endpoint(headers={"Authorization": "Bearer x"}))
    assert "use the endpoint's auth" in message and "Bearer x" not in message


def test_a_header_name_that_is_not_a_token_and_a_repeated_name_are_refused() -> None:
    assert "is not a valid header name" in error_of(endpoint(headers={"X Bad": "v"}))
    assert "are the same header" in error_of(endpoint(headers={"X-A": "1", "x-a": "2"}))


def test_auth_takes_exactly_one_kind() -> None:
    both = error_of(endpoint(auth={"bearer": "t", "basic": {"username": "u", "password": "p"}}))
    assert (
        "endpoints[0].auth" in both and "exactly one of basic, bearer or oauth2, got basic and bearer" in both
    )
    assert "got none" in error_of(endpoint(auth={}))


def test_a_basic_username_with_a_colon_is_refused_and_the_password_never_quoted() -> None:
    message = error_of(endpoint(auth={"basic": {"username": "a:b", "password": "hunter2-secret"}}))
    assert "auth.basic.username" in message and "colon" in message and "hunter2" not in message


@pytest.mark.parametrize(
    ("oauth2", "path", "words"),
    [
        ({"method": "client_secret_post"}, "client_secret", "is required with method: client_secret_post"),
        (
            {"method": "private_key_jwt", "key_id": "k"},
            "private_key",
            "is required with method: private_key_jwt",
        ),
        ({"client_secret": "s", "key_id": "k"}, "key_id", "is used only with method: private_key_jwt"),
        ({"client_secret": "s", "algorithm": "HS256"}, "algorithm", "must be RS384 or ES384"),
        ({"client_secret": "s", "method": "password"}, "method", ""),
    ],
)
def test_an_oauth2_setting_the_method_needs_or_does_not_use_is_named(
    oauth2: dict[str, Any], path: str, words: str
) -> None:
    raw = endpoint(auth={"oauth2": {"token_url": "https://auth.example/token", "client_id": "c", **oauth2}})
    message = error_of(raw)
    assert f"endpoints[0].auth.oauth2.{path}" in message and words in message


def test_private_key_jwt_refuses_a_client_secret(pem: str) -> None:
    oauth2 = {
        "token_url": "https://a.example/t",
        "client_id": "c",
        "method": "private_key_jwt",
        "private_key": pem,
        "key_id": "k",
        "client_secret": "unused-secret",
    }
    message = error_of(endpoint(auth={"oauth2": oauth2}))
    assert "client_secret: is not used with method: private_key_jwt" in message
    assert "unused-secret" not in message


def test_production_wants_an_https_token_url() -> None:
    raw = endpoint(
        auth={"oauth2": {"token_url": "http://auth.example/token", "client_id": "c", "client_secret": "s"}}
    )
    raw["environment"] = "production"
    assert "endpoints[0].auth.oauth2.token_url: must be https://" in error_of(raw)


@pytest.mark.parametrize(
    ("proxy", "words"),
    [
        ("socks5://proxy:1080", "must be an http:// or https:// proxy URL"),
        ("http://proxy.internal", "must name the proxy's port"),
        ("http://proxy.internal:3128/path", "no path or query"),
    ],
)
def test_a_bad_proxy_is_named(proxy: str, words: str) -> None:
    assert words in error_of(endpoint(proxy=proxy))


def test_a_proxy_password_is_never_quoted() -> None:
    message = error_of(endpoint(proxy="ftp://user:s3cret-pass@proxy:21"))
    assert "endpoints[0].proxy" in message and "s3cret-pass" not in message


def test_none_is_a_proxy_for_an_endpoint_and_sends_direct() -> None:
    settings = parse_settings(
        {**endpoint(proxy="none"), "delivery": {"proxy": "http://p.internal:3128"}}, env={}
    )
    assert settings.endpoints[0].proxy == "none"


@pytest.mark.parametrize("entry", ["*", "example.com", ".example.com", "10.0.0.0/8", "::1", "host:8443"])
def test_no_proxy_takes_hosts_domains_addresses_and_networks(entry: str) -> None:
    assert parse_settings({"delivery": {"no_proxy": [entry]}}, env={}).delivery.no_proxy == (entry,)


def test_a_bad_no_proxy_entry_is_named() -> None:
    assert "delivery.no_proxy[0]" in error_of({"delivery": {"no_proxy": ["bad host!"]}})


def test_a_missing_certificate_file_is_named(tmp_path: Path) -> None:
    message = error_of(endpoint(tls_client_cert={"cert": str(tmp_path / "nope.crt")}))
    assert "endpoints[0].tls_client_cert.cert" in message


def test_secrets_from_the_environment_are_read_and_masked(pem: str) -> None:
    raw = endpoint(
        auth={"basic": {"username": "clinic", "password": "${PHARMACY_BASIC}"}},
        proxy="http://u:${PROXY_PW}@p.internal:3128",
    )
    settings = parse_settings(raw, env={"PHARMACY_BASIC": "b4sic-pass", "PROXY_PW": "pr0xy-pass"})
    secrets = settings.secrets()
    assert "b4sic-pass" in secrets and "pr0xy-pass" in secrets
    assert BasicAuth("clinic", "b4sic-pass").header().split(" ")[1] in secrets
