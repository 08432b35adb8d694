"""One HTTP attempt and its classification (dispatcher.sending.attempt), with `responses` intercepting
HTTP; the wording of real failures is tested in test_explain.py."""

from __future__ import annotations

import io
import json
import re
import socket

import pytest
import requests
import responses
import urllib3

from dispatcher.sending import attempt as delivery

URL = "https://partner.example.test/webhooks/baremeds"
KEY = "k-3f9a1c77e0"
BODY = json.dumps({"event": "patient.created", "data": {"name": "Zoë"}}, ensure_ascii=False).encode("utf-8")


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def session():
    s = delivery.new_session()
    yield s
    s.close()


def send(session, body: bytes = BODY, headers=None, **kwargs) -> delivery.DeliveryOutcome:
    kwargs.setdefault("timeout", 30)
    kwargs.setdefault("connect_timeout", 5)
    return delivery.post(
        session, URL, body, headers if headers is not None else delivery.build_headers(KEY), **kwargs
    )


# --- responses ------------------------------------------------------------------------------


def test_200_is_a_response_without_failure(rsps, session):
    rsps.add(responses.POST, URL, status=200, json={"received": True})
    outcome = send(session)
    assert outcome.http_status == 200
    assert outcome.failure is None
    assert outcome.error is None
    assert json.loads(outcome.response_body) == {"received": True}
    assert outcome.retry_after is None
    assert isinstance(outcome.duration_ms, int) and outcome.duration_ms >= 0
    assert len(rsps.calls) == 1


def test_204_has_an_empty_body(rsps, session):
    rsps.add(responses.POST, URL, status=204)
    outcome = send(session)
    assert outcome.http_status == 204
    assert outcome.failure is None
    assert outcome.response_body == ""


def test_503_is_a_response_with_error_text(rsps, session):
    rsps.add(responses.POST, URL, status=503, body="maintenance")
    outcome = send(session)
    assert outcome.http_status == 503
    assert outcome.failure is None
    assert "503" in outcome.error
    assert outcome.response_body == "maintenance"


def test_400_error_text_names_the_status(rsps, session):
    rsps.add(responses.POST, URL, status=400, json={"error": "bad"})
    outcome = send(session)
    assert outcome.http_status == 400
    assert outcome.failure is None
    assert outcome.error.startswith("HTTP 400")


def test_retry_after_header_is_captured(rsps, session):
    rsps.add(responses.POST, URL, status=429, headers={"Retry-After": "120"})
    outcome = send(session)
    assert outcome.http_status == 429
    assert outcome.retry_after == "120"


def test_retry_after_http_date_is_captured_verbatim(rsps, session):
    when = "Wed, 21 Oct 2026 07:28:00 GMT"
    rsps.add(responses.POST, URL, status=503, headers={"Retry-After": when})
    assert send(session).retry_after == when


def test_response_body_is_truncated_to_4096_characters(rsps, session):
    rsps.add(responses.POST, URL, status=500, body="a" * 10_000)
    outcome = send(session)
    assert delivery.STORED_BODY_BYTES == 4096
    assert outcome.response_body == "a" * 4096


def test_response_body_shorter_than_the_limit_is_kept_whole(rsps, session):
    text = "x" * 4095
    rsps.add(responses.POST, URL, status=200, body=text)
    assert send(session).response_body == text


def test_response_body_limit_smaller_than_the_stored_size(rsps, session):
    rsps.add(responses.POST, URL, status=200, body="b" * 1000)
    assert send(session, response_body_limit=100).response_body == "b" * 100


def test_utf8_response_body_is_decoded(rsps, session):
    rsps.add(responses.POST, URL, status=200, body="Zoë ✓".encode(), content_type="text/plain; charset=utf-8")
    assert send(session).response_body == "Zoë ✓"


def test_redirects_are_not_followed(rsps, session):
    rsps.add(responses.POST, URL, status=302, headers={"Location": "https://elsewhere.example.test/hook"})
    outcome = send(session)
    assert outcome.http_status == 302
    assert outcome.failure is None
    assert "302" in outcome.error
    assert len(rsps.calls) == 1
    assert rsps.calls[0].request.url == URL


def test_301_is_not_followed_either(rsps, session):
    rsps.add(responses.POST, URL, status=301, headers={"Location": URL + "/v2"})
    assert send(session).http_status == 301
    assert len(rsps.calls) == 1


# --- the request sent -----------------------------------------------------------------------


def test_headers_sent(rsps, session):
    rsps.add(responses.POST, URL, status=200)
    send(session)
    sent = rsps.calls[0].request
    assert sent.method == "POST"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["X-Webhook-Key"] == KEY
    user_agent = sent.headers["User-Agent"]
    assert user_agent.startswith("Baremeds-Webhook-Dispatcher/")
    assert re.fullmatch(r"Baremeds-Webhook-Dispatcher/\d+\.\d+\S*", user_agent)
    assert user_agent == delivery.USER_AGENT
    assert "python-requests" not in user_agent


def test_build_headers():
    headers = delivery.build_headers("secret")
    assert headers == {
        "Content-Type": "application/json",
        "X-Webhook-Key": "secret",
        "User-Agent": delivery.USER_AGENT,
    }


def test_body_sent_is_exactly_the_bytes_given(rsps, session):
    body = b'{"z": 1, "a": "\xc3\xa9",  "spaces":   true}'
    rsps.add(responses.POST, URL, status=200)
    send(session, body=body)
    sent = rsps.calls[0].request
    assert sent.body == body
    assert sent.headers["Content-Length"] == str(len(body))


def test_timeouts_and_streaming_are_passed_to_the_transport(rsps, session):
    rsps.add(responses.POST, URL, status=200)
    send(session, timeout=30, connect_timeout=5)
    kwargs = rsps.calls[0].request.req_kwargs
    assert kwargs["timeout"] == (5, 30)
    assert kwargs["stream"] is True


def test_new_session_does_not_trust_the_environment(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    session = delivery.new_session()
    try:
        assert session.trust_env is False
        assert len(session.headers) == 0
        settings = session.merge_environment_settings(URL, {}, None, None, None)
        assert not settings["proxies"]
    finally:
        session.close()


def test_session_sends_no_proxy_from_the_environment(rsps, session, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    rsps.add(responses.POST, URL, status=200)
    send(session)
    assert not rsps.calls[0].request.req_kwargs["proxies"]


# --- no response ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc, words",
    [
        (
            requests.ConnectTimeout("connect timed out"),
            "could not connect to partner.example.test:443 within 5 s",
        ),
        (requests.ReadTimeout("read timed out"), "no answer within 30 s"),
        (requests.Timeout("timed out"), "no answer within 30 s"),
    ],
)
def test_timeouts(rsps, session, exc, words):
    rsps.add(responses.POST, URL, body=exc)
    outcome = send(session)
    assert outcome.http_status is None
    assert outcome.failure == "timeout"
    assert outcome.error == words
    assert outcome.response_body is None


def test_connection_error(rsps, session):
    rsps.add(responses.POST, URL, body=requests.ConnectionError("Connection refused"))
    outcome = send(session)
    assert outcome.http_status is None
    assert outcome.failure == "connection_error"
    assert outcome.error == "ConnectionError: Connection refused"
    assert outcome.response_body is None


def test_connection_refused_through_urllib3_is_not_dns_nor_a_timeout(rsps, session):
    conn = urllib3.connection.HTTPSConnection("partner.example.test")
    refused = urllib3.exceptions.NewConnectionError(conn, "[Errno 111] Connection refused")
    refused.__cause__ = ConnectionRefusedError(111, "Connection refused")
    exc = requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/webhooks", reason=refused))
    rsps.add(responses.POST, URL, body=exc)
    outcome = send(session)
    assert outcome.failure == "connection_error"
    assert outcome.error == "connection refused by partner.example.test:443"


def test_connection_error_caused_by_gaierror_is_dns(rsps, session):
    exc = requests.ConnectionError("could not connect")
    exc.__cause__ = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    rsps.add(responses.POST, URL, body=exc)
    outcome = send(session)
    assert outcome.http_status is None
    assert outcome.failure == "dns_error"


def test_connection_error_with_gaierror_argument_is_dns(rsps, session):
    exc = requests.ConnectionError(socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    rsps.add(responses.POST, URL, body=exc)
    assert send(session).failure == "dns_error"


def test_urllib3_name_resolution_error_is_dns(rsps, session):
    # The shape requests produces: ConnectionError(MaxRetryError(reason=NameResolutionError)).
    conn = urllib3.connection.HTTPSConnection("partner.example.test")
    resolution = urllib3.exceptions.NameResolutionError(
        "partner.example.test", conn, socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    )
    exc = requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/webhooks", reason=resolution))
    rsps.add(responses.POST, URL, body=exc)
    outcome = send(session)
    assert outcome.failure == "dns_error"
    assert outcome.error == "could not resolve partner.example.test"


def test_error_text_is_short(rsps, session):
    rsps.add(responses.POST, URL, body=requests.ConnectionError("x" * 5000))
    outcome = send(session)
    assert outcome.failure == "connection_error"
    assert len(outcome.error) <= 200
    assert outcome.error.endswith("...")


def test_chunked_encoding_error_is_a_connection_error(rsps, session):
    rsps.add(responses.POST, URL, body=requests.exceptions.ChunkedEncodingError("broken"))
    outcome = send(session)
    assert outcome.failure == "connection_error"
    assert outcome.error == "partner.example.test:443 closed the connection before the answer was complete"


@pytest.mark.parametrize(
    "url, words",
    [
        ("not a url", "the endpoint's url is not a valid URL"),
        ("ftp://partner.example.test/hook", "the endpoint's url must start with https:// or http://"),
        ("http://", "the endpoint's url is not a valid URL"),
    ],
)
def test_malformed_url_is_an_invalid_request(rsps, session, url, words):
    outcome = delivery.post(session, url, BODY, delivery.build_headers(KEY), timeout=1, connect_timeout=1)
    assert outcome.http_status is None
    assert outcome.failure == "invalid_request"
    assert outcome.error == words
    assert len(rsps.calls) == 0


def test_an_error_never_holds_a_secret_the_mask_knows(rsps, session):
    exc = requests.ConnectionError(ValueError(f"header X-Webhook-Key: {KEY} refused"))
    rsps.add(responses.POST, URL, body=exc)
    outcome = send(session, mask=lambda text: text.replace(KEY, "[redacted]"))
    assert outcome.error == "ValueError: header X-Webhook-Key: [redacted] refused"


class _StallingBody(io.BufferedReader):
    """A response body whose first read times out, as a socket would after the headers arrived."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(b"never read"))

    def read(self, *args, **kwargs):
        raise TimeoutError("timed out")

    read1 = read

    def readinto(self, buffer):
        raise TimeoutError("timed out")


def test_read_timeout_while_reading_the_body_is_a_timeout(rsps, session):
    rsps.add(responses.POST, URL, status=200, body=_StallingBody())
    outcome = send(session)
    assert outcome.http_status is None
    assert outcome.failure == "timeout"
    assert outcome.error == "no answer within 30 s"


def test_unknown_response_charset_does_not_break_the_attempt(rsps, session):
    rsps.add(
        responses.POST, URL, status=200, body=b"ok", content_type="text/plain; charset=x-no-such-charset"
    )
    outcome = send(session)
    assert outcome.http_status == 200
    assert outcome.failure is None


def test_a_proxys_407_to_a_plain_http_post_is_the_proxys_failure_not_the_partners(receiver):
    from tests.servers import Answer

    proxy = receiver.url.split("/webhooks")[0].replace("127.0.0.1", "proxy-user:proxy-pw@127.0.0.1")
    receiver.default_script = [Answer(status=407, body=b"proxy-pw")]
    session = delivery.new_session(["127.0.0.0/8"])
    outcome = delivery.post(
        session,
        "http://127.0.0.1:9/hooks",
        b"{}",
        delivery.build_headers("k"),
        timeout=5,
        connect_timeout=2,
        proxies={"http": proxy, "https": proxy},
    )
    assert receiver.received[0].path == "http://127.0.0.1:9/hooks"  # the request went to the proxy
    assert outcome.http_status is None and outcome.failure == "connection_error"
    port = proxy.rsplit(":", 1)[1]
    assert outcome.error == f"proxy 127.0.0.1:{port} answered 407 (check the proxy's user and password)"


def test_endpoint_headers_add_the_extra_headers_and_the_authorization():
    from dispatcher.config import Endpoint
    from dispatcher.config.partner_settings import BasicAuth, OAuth2Client

    basic = Endpoint("p", "https://p.example", key="k", headers=(("X-A", "1"),), auth=BasicAuth("u", "pw"))
    headers = delivery.endpoint_headers(basic)
    assert headers["X-A"] == "1" and headers["X-Webhook-Key"] == "k"
    assert headers["Authorization"] == BasicAuth("u", "pw").header()
    oauth2 = Endpoint(
        "p", "https://p.example", auth=OAuth2Client("https://a.example/t", "c", client_secret="s")
    )
    assert "Authorization" not in delivery.endpoint_headers(oauth2)
    assert delivery.endpoint_headers(oauth2, token="tok")["Authorization"] == "Bearer tok"
