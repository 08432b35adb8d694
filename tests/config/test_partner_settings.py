"""The partner-connection values (``dispatcher/config/partner_settings.py``): the Authorization
each auth gives and every secret they hold, for masking."""

from __future__ import annotations

import base64

from dispatcher.config.partner_settings import (
    BasicAuth,
    BearerAuth,
    ClientCert,
    OAuth2Client,
    auth_secrets,
    proxy_secrets,
)


def test_basic_is_base64_of_user_and_password_and_both_spellings_are_secrets() -> None:
    auth = BasicAuth("clinic", "pä ss")
    encoded = base64.b64encode("clinic:pä ss".encode()).decode()
    assert auth.header() == f"Basic {encoded}"
    assert auth.secrets() == ["pä ss", encoded]


def test_bearer_sends_its_token_which_is_a_secret() -> None:
    assert BearerAuth("tok-1").header() == "Bearer tok-1"
    assert BearerAuth("tok-1").secrets() == ["tok-1"]


def test_an_oauth2_client_secret_and_its_basic_pair_are_secrets() -> None:
    client = OAuth2Client("https://a.example/token", "c17", client_secret="s3")
    assert client.secrets() == ["s3", base64.b64encode(b"c17:s3").decode()]
    assert OAuth2Client("https://a.example/token", "c17").secrets() == []


def test_a_proxy_password_and_userinfo_are_secrets_raw_and_unquoted() -> None:
    assert proxy_secrets("http://user:p%40ss@proxy:3128") == ["p%40ss", "p@ss", "user:p%40ss", "user:p@ss"]
    assert proxy_secrets("http://proxy:3128") == []
    assert proxy_secrets("none") == proxy_secrets(None) == []
    assert proxy_secrets("http://[bad") == []


def test_auth_secrets_gathers_auth_the_key_passphrase_and_the_proxy() -> None:
    found = auth_secrets(BearerAuth("t"), ClientCert("c.pem", "k.pem", "phrase"), "http://u:pw@p:1")
    assert found == ["t", "phrase", "pw", "pw", "u:pw", "u:pw"]
    assert auth_secrets(None, ClientCert("c.pem"), None) == []
