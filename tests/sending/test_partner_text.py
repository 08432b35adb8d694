"""What a partner answers is kept short (issue 21, finding 5): a reason phrase at most
:data:`~dispatcher.sending.attempt.REASON_CHARS` characters, an attempt's error at most
:data:`~dispatcher.sending.attempt.ERROR_CHARS`, its body the first 4 KiB, against a real HTTP
server answering on a real socket."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dispatcher.sending import attempt

PATIENT = "patient Jane Roe, DOB 1961-04-12"
LONG_REASON = f"Unprocessable: {PATIENT} " + "x" * 60_000


class _Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    status, reason, body = 422, LONG_REASON, b"{}"

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(self.status, self.reason)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


@pytest.fixture
def partner() -> Iterator[tuple[str, type[_Answer]]]:
    handler = type("Answer", (_Answer,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()
    server.server_close()


def post(url: str, mask=str):
    session = attempt.new_session(allow_networks=["127.0.0.0/8"])
    try:
        return attempt.post(session, url, b"{}", {}, timeout=5, connect_timeout=2, mask=mask)
    finally:
        session.close()


def test_a_60000_character_reason_phrase_is_kept_to_200_characters(partner) -> None:
    url, _ = partner

    outcome = post(url)

    assert outcome.http_status == 422 and outcome.failure is None
    assert outcome.error is not None and outcome.error.startswith(f"HTTP 422 Unprocessable: {PATIENT} xxx")
    phrase = outcome.error.removeprefix("HTTP 422 ")
    assert len(phrase) == attempt.REASON_CHARS == 200 and phrase.endswith("...")
    assert len(outcome.error) <= attempt.ERROR_CHARS == 1000


def test_a_secret_in_the_reason_phrase_is_masked_before_it_is_cut(partner) -> None:
    url, handler = partner
    secret = "k3y-" + "s" * 40
    handler.reason = "x" * 180 + secret  # the cut falls inside the secret

    outcome = post(url, mask=lambda text: text.replace(secret, "[redacted]"))

    assert outcome.error == "HTTP 422 " + "x" * 180 + "[redacted]"
    assert "k3y-" not in outcome.error


def test_the_body_is_kept_to_4_kib(partner) -> None:
    url, handler = partner
    handler.body = ("é" * 5000).encode()

    outcome = post(url)

    assert outcome.response_body is not None
    assert len(outcome.response_body.encode()) <= attempt.STORED_BODY_BYTES == 4096


def test_an_answer_below_300_has_no_error(partner) -> None:
    url, handler = partner
    handler.status, handler.reason = 200, f"OK {PATIENT}"

    outcome = post(url)

    assert outcome.http_status == 200 and outcome.error is None
