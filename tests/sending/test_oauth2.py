"""Fetching one OAuth2 token (dispatcher.sending.oauth2) from a real token endpoint on 127.0.0.1
(tests/token_server.py): the three client authentication methods, RS384 and ES384 assertions
verified with the public key, and every way it fails -- in one line, with no secret in it."""

from __future__ import annotations

import base64
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from dispatcher.config.partner_settings import OAuth2Client, OAuth2Method
from dispatcher.sending import attempt, oauth2
from dispatcher.sending.oauth2 import Token, TokenError
from tests.servers import DripServer
from tests.token_server import Answer, TokenServer, ec_key_pair, rsa_key_pair, self_signed

SECRET = "s3cr3t-Value_9f8e7d"
"""Matches the error-code pattern on purpose: a server echoing it as its ``error`` is masked."""
ODD_SECRET = "p@ss:w+rd é/&="
"""Needs form-urlencoding in HTTP Basic (RFC 6749 2.3.1)."""


@pytest.fixture
def server() -> Iterator[TokenServer]:
    token_server = TokenServer(expires_in=3600)
    yield token_server
    token_server.close()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    guarded = attempt.new_session(["127.0.0.0/8"])
    yield guarded
    guarded.close()


def secret_client(
    server: TokenServer, method: OAuth2Method = OAuth2Method.CLIENT_SECRET_BASIC, **kw
) -> OAuth2Client:
    secret = kw.pop("client_secret", SECRET)
    server.register_secret("clinic-17", secret, str(method))
    return OAuth2Client(server.token_url, "clinic-17", method=method, client_secret=secret, **kw)


def fetch(session: requests.Session, client: OAuth2Client, **kw) -> Token:
    kw.setdefault("verify", True)
    kw.setdefault("proxies", {})
    kw.setdefault("timeout", 5)
    kw.setdefault("connect_timeout", 2)
    return oauth2.fetch_token(session, client, **kw)


def failure(session: requests.Session, client: OAuth2Client, **kw) -> str:
    with pytest.raises(TokenError) as caught:
        fetch(session, client, **kw)
    text = str(caught.value)
    assert "\n" not in text and text.startswith("oauth2: ")
    return text


def accepted_by_partner(server: TokenServer, token: Token) -> int:
    answer = requests.post(
        server.partner_url, json={}, headers={"Authorization": f"Bearer {token.access_token}"}
    )
    return answer.status_code


# --- the three methods ------------------------------------------------------------------------


def test_client_secret_basic_is_accepted_and_the_token_works_at_the_partner(server, session) -> None:
    client = secret_client(server, scope="system/*.write", audience="https://pharmacy.example")
    token = fetch(session, client, clock=lambda: 1000.0)
    assert accepted_by_partner(server, token) == 200
    (request,) = server.requests
    assert request.status == 200 and request.headers["authorization"].startswith("Basic ")
    assert request.form == {
        "grant_type": "client_credentials",
        "scope": "system/*.write",
        "audience": "https://pharmacy.example",
    }
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert (token.expires_at, token.refresh_at) == (4600.0, 4540.0)


def test_client_secret_basic_form_encodes_the_id_and_secret(server, session) -> None:
    client = secret_client(server, client_secret=ODD_SECRET)
    token = fetch(session, client)
    assert accepted_by_partner(server, token) == 200
    sent = base64.b64decode(server.requests[0].headers["authorization"][6:]).decode()
    assert sent == "clinic-17:p%40ss%3Aw%2Brd+%C3%A9%2F%26%3D"


def test_client_secret_post_sends_both_in_the_form(server, session) -> None:
    client = secret_client(server, OAuth2Method.CLIENT_SECRET_POST, client_secret=ODD_SECRET)
    token = fetch(session, client)
    assert accepted_by_partner(server, token) == 200
    (request,) = server.requests
    assert "authorization" not in request.headers
    assert request.form == {
        "grant_type": "client_credentials",
        "client_id": "clinic-17",
        "client_secret": ODD_SECRET,
    }


@pytest.mark.parametrize("algorithm", ["RS384", "ES384"])
def test_private_key_jwt_assertions_are_verified_by_the_server(server, session, tmp_path, algorithm) -> None:
    pair = rsa_key_pair(tmp_path) if algorithm == "RS384" else ec_key_pair(tmp_path)
    server.register_key("clinic-17", pair.public_pem, algorithm)
    client = OAuth2Client(
        server.token_url,
        "clinic-17",
        method=OAuth2Method.PRIVATE_KEY_JWT,
        private_key=str(pair.private_path),
        key_id="clinic-17-2026",
        algorithm=algorithm,
    )
    tokens = [fetch(session, client), fetch(session, client)]
    assert [accepted_by_partner(server, t) for t in tokens] == [200, 200]
    assert [r.status for r in server.requests] == [200, 200], [r.refused for r in server.requests]
    first, second = server.requests
    assert first.assertion_header == {"alg": algorithm, "kid": "clinic-17-2026", "typ": "JWT"}
    claims = first.assertion_claims
    assert claims["iss"] == claims["sub"] == "clinic-17" and claims["aud"] == server.token_url
    assert claims["exp"] - claims["iat"] == 300
    assert claims["jti"] != second.assertion_claims["jti"]
    assert first.form["client_assertion_type"] == oauth2.ASSERTION_TYPE
    assert first.form["client_id"] == "clinic-17" and "authorization" not in first.headers


def test_the_server_refuses_a_replayed_assertion_and_a_wrong_key(server, session, tmp_path) -> None:
    """The test server really verifies: the same jti twice, or another key's signature, is refused."""
    pair, other = rsa_key_pair(tmp_path, "mine"), rsa_key_pair(tmp_path, "other")
    server.register_key("clinic-17", pair.public_pem, "RS384")
    client = OAuth2Client(
        server.token_url, "clinic-17", method=OAuth2Method.PRIVATE_KEY_JWT, private_key=str(pair.private_path)
    )
    assertion = oauth2.client_assertion(client, now=time.time(), jti="once")
    form = {"grant_type": "client_credentials", "client_assertion_type": oauth2.ASSERTION_TYPE}
    answers = [requests.post(server.token_url, data=form | {"client_assertion": assertion}) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 401] and server.requests[1].refused == "jti replayed"
    impostor = OAuth2Client(
        server.token_url,
        "clinic-17",
        method=OAuth2Method.PRIVATE_KEY_JWT,
        private_key=str(other.private_path),
    )
    assert failure(session, impostor) == "oauth2: token endpoint answered 401 invalid_client"


# --- the private key --------------------------------------------------------------------------


def key_client(path: Path | str, algorithm: str = "RS384") -> OAuth2Client:
    return OAuth2Client(
        "https://auth.example/token",
        "clinic-17",
        method=OAuth2Method.PRIVATE_KEY_JWT,
        private_key=str(path),
        algorithm=algorithm,
    )


def test_a_key_that_does_not_fit_the_algorithm_is_named(tmp_path) -> None:
    rsa_pair, p384 = rsa_key_pair(tmp_path), ec_key_pair(tmp_path)
    p256 = ec_key_pair(tmp_path, "p256", ec.SECP256R1())
    cases = [(p384, "RS384", "an EC P-384 key; algorithm RS384 needs an RSA key"),
             (rsa_pair, "ES384", "an RSA key; algorithm ES384 needs an EC P-384 key"),
             (p256, "ES384", "an EC P-256 key; algorithm ES384 needs an EC P-384 key")]  # fmt: skip
    for pair, algorithm, words in cases:
        with pytest.raises(TokenError) as caught:
            oauth2.client_assertion(key_client(pair.private_path, algorithm), 1000.0)
        assert str(caught.value) == f"oauth2: private key: {pair.private_path} is {words}"


def test_a_missing_a_garbled_or_a_short_key_is_a_token_error_before_any_request(
    server, session, tmp_path
) -> None:
    garbled = tmp_path / "garbled.pem"
    garbled.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    short = rsa_key_pair(tmp_path, "short", bits=1024)
    expected = {
        tmp_path
        / "absent.pem": f"oauth2: private key: cannot read {tmp_path / 'absent.pem'}: No such file or directory",
        garbled: f"oauth2: private key: {garbled} is not an unencrypted PEM private key",
        short.private_path: f"oauth2: private key: {short.private_path} is a 1024-bit RSA key; use at least 2048 bits",
    }
    for path, words in expected.items():
        client = OAuth2Client(
            server.token_url, "clinic-17", method=OAuth2Method.PRIVATE_KEY_JWT, private_key=str(path)
        )
        assert failure(session, client) == words
    assert server.token_requests == 0


def test_the_key_file_is_parsed_once_until_it_changes(tmp_path, monkeypatch) -> None:
    first, second = rsa_key_pair(tmp_path, "first"), rsa_key_pair(tmp_path, "second")
    parsed: list[bytes] = []
    real = oauth2.serialization.load_pem_private_key

    def counting(data, password=None):
        parsed.append(data)
        return real(data, password=password)

    monkeypatch.setattr(oauth2.serialization, "load_pem_private_key", counting)
    client = key_client(first.private_path)
    assertions = [oauth2.client_assertion(client, 1000.0 + i) for i in range(50)]
    assert len(parsed) == 1
    assert jwt.decode(
        assertions[-1], first.public_pem, ["RS384"], audience=client.token_url, options={"verify_exp": False}
    )
    first.private_path.write_bytes(second.private_path.read_bytes())
    stat = first.private_path.stat()
    os.utime(first.private_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    renewed = oauth2.client_assertion(client, 2000.0)
    assert len(parsed) == 2
    jwt.decode(
        renewed, second.public_pem, ["RS384"], audience=client.token_url, options={"verify_exp": False}
    )


# --- failures, in one line, without secrets ---------------------------------------------------


def test_a_wrong_secret_is_401_invalid_client_and_never_quotes_the_description(server, session) -> None:
    server.register_secret("clinic-17", "the-right-one")
    client = OAuth2Client(server.token_url, "clinic-17", client_secret=SECRET)
    assert failure(session, client) == "oauth2: token endpoint answered 401 invalid_client"
    assert server.requests[0].refused == "wrong secret"


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (Answer(400, {"error": "invalid_scope", "error_description": SECRET}), "answered 400 invalid_scope"),
        (Answer(400, {"error": "not <a> code"}), "answered 400"),
        (Answer(400, {"error": SECRET}), "answered 400 ****"),
        (Answer(500, body=b"<html>" + SECRET.encode() + b"</html>"), "answered 500"),
        (Answer(503, body=b'{"error": "temporarily_unavailable"' + b" " * 70000 + b"}"), "answered 503"),
        (Answer(302, headers={"Location": "/partner/hooks"}), "answered 302 (redirects are not followed)"),
        (Answer(200, {"token_type": "Bearer"}), "'s answer has no access_token"),
        (Answer(200, {"access_token": "a b"}), "'s access_token is not visible ASCII (cannot be sent)"),
        (
            Answer(200, {"access_token": "t", "token_type": "mac"}),
            "'s answer has a token_type that is not Bearer",
        ),
        (
            Answer(200, {"access_token": "t", "expires_in": -5}),
            "'s expires_in is not a positive number of seconds",
        ),
        (Answer(200, body=b"access_token=t"), "'s answer is not a JSON object"),
        (
            Answer(200, body=b'{"access_token": "' + b"a" * 70000 + b'"}'),
            "'s answer is larger than 65536 bytes",
        ),
    ],
)
def test_what_the_token_endpoint_answers_instead_of_a_token(server, session, answer, words) -> None:
    client = secret_client(server)
    server.script(answer)
    text = failure(session, client)
    assert text == f"oauth2: token endpoint{'' if words.startswith(chr(39)) else ' '}{words}"
    assert SECRET not in text and "html" not in text
    assert server.token_requests == 1 and server.partner_requests == []


def test_expires_in_absent_lowercase_bearer_and_numeric_strings_are_accepted(server, session) -> None:
    client = secret_client(server)
    server.script(
        Answer(200, {"access_token": "t1"}),
        Answer(200, {"access_token": "t2", "token_type": "bearer", "expires_in": "120"}),
    )
    default = fetch(session, client, clock=lambda: 1000.0)
    assert (default.expires_at, default.refresh_at) == (1300.0, 1270.0)
    short = fetch(session, client, clock=lambda: 1000.0)
    assert (short.access_token, short.expires_at, short.refresh_at) == ("t2", 1120.0, 1108.0)


def test_the_answer_is_read_only_up_to_the_limit(server, session) -> None:
    client = secret_client(server)
    assert (
        failure(session, client, response_limit=20)
        == "oauth2: token endpoint's answer is larger than 20 bytes"
    )


def test_an_unreachable_token_endpoint_says_why() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = OAuth2Client(f"http://127.0.0.1:{port}/oauth2/token?tenant=7", "clinic-17", client_secret=SECRET)
    session = attempt.new_session(["127.0.0.0/8"])
    assert (
        failure(session, client)
        == f"oauth2: token endpoint unreachable (connection refused by 127.0.0.1:{port})"
    )


def test_the_destination_guard_applies_to_the_token_endpoint(server) -> None:
    client = secret_client(server)
    text = failure(attempt.new_session(), client)
    assert text.startswith("oauth2: token endpoint unreachable (127.0.0.1 is not allowed (loopback)")
    assert server.token_requests == 0


def test_a_slow_token_endpoint_times_out(server, session) -> None:
    client = secret_client(server)
    server.script(Answer(200, {"access_token": "late"}, delay=2))
    text = failure(session, client, timeout=0.3, connect_timeout=1)
    assert text == "oauth2: token endpoint unreachable (no answer within 0.3 s)"


def test_a_dripping_token_endpoint_is_cut_at_the_whole_request_deadline() -> None:
    drip = DripServer(drip="body", interval=0.1)
    try:
        client = OAuth2Client(drip.url, "clinic-17", client_secret=SECRET)
        text = failure(attempt.new_session(["127.0.0.0/8"]), client, timeout=0.5, connect_timeout=0.5)
    finally:
        drip.close()
    assert text == "oauth2: token endpoint gave no complete answer within 1 s"


def test_https_is_verified_with_the_given_bundle(tmp_path, session) -> None:
    cert, key = self_signed(tmp_path)
    server = TokenServer(tls=(cert, key))
    try:
        client = secret_client(server)
        assert fetch(session, client, verify=str(cert)).access_token in server.issued
        text = failure(session, client, verify=True)
    finally:
        server.close()
    assert text.startswith("oauth2: token endpoint unreachable (TLS: ") and text.endswith("(127.0.0.1))")


def test_no_secret_or_assertion_reaches_an_error_text(server, session, tmp_path) -> None:
    """A server echoing the secret as its error code, its description or its body: neither the
    secret, its Basic form, nor the assertion (a JWT) is in the text, for each method."""
    pair = rsa_key_pair(tmp_path)
    server.register_key("jwt-client", pair.public_pem)
    jwt_client = OAuth2Client(
        server.token_url, "jwt-client", OAuth2Method.PRIVATE_KEY_JWT, private_key=str(pair.private_path)
    )
    clients = [
        secret_client(server),
        OAuth2Client(server.token_url, "clinic-17", OAuth2Method.CLIENT_SECRET_POST, client_secret=SECRET),
        jwt_client,
    ]
    texts = []
    for client in clients:
        server.script(
            Answer(401, {"error": SECRET, "error_description": SECRET}), Answer(500, body=SECRET.encode())
        )
        texts += [failure(session, client), failure(session, client)]
    basic = base64.b64encode(f"clinic-17:{SECRET}".encode()).decode()
    assert (
        texts[:4] == ["oauth2: token endpoint answered 401 ****", "oauth2: token endpoint answered 500"] * 2
    )
    assert all(basic not in t and "eyJ" not in t for t in texts), texts
    assert server.requests[-1].form["client_assertion"].startswith("eyJ")


# --- the token's times ------------------------------------------------------------------------


def test_refresh_margin_is_60_s_or_a_tenth_of_a_short_lifetime() -> None:
    assert [oauth2.refresh_margin(s) for s in (3600, 600, 300, 60)] == [60, 60, 30, 6]


def test_a_token_is_due_before_it_expires_and_hides_itself_in_repr() -> None:
    token = Token.issued("opaque-token-value", 60, now=1000.0)
    assert (token.due(1053.9), token.due(1054.0), token.expired(1059.9), token.expired(1060.0)) == (
        False,
        True,
        False,
        True,
    )
    assert "opaque-token-value" not in repr(token)
