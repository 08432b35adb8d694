"""A reference partner endpoint: what a receiver of these webhooks should do.

It accepts a POST on any path, checks ``X-Webhook-Key`` (401 otherwise), parses the wrapper
(400 when it is not one), handles each ``metadata.request_id`` once (a duplicate gets 200 and is
not handled again), and answers 200 at once, as the seed asks. Used by ``dispatcher receiver``
and by the demo; partners can read it as an example.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..contract import signing


@dataclass
class ReceivedEvent:
    request_id: str
    event: str
    retry: bool
    body: dict[str, Any]


@dataclass
class ReceiverState:
    key: str
    signing_secret: str | None = None
    fail_once: set[str] = field(default_factory=set)
    seen: dict[str, ReceivedEvent] = field(default_factory=dict)
    duplicates: int = 0
    rejected: int = 0
    failed_once: set[str] = field(default_factory=set)
    on_event: Callable[[ReceivedEvent], None] | None = None
    on_reject: Callable[[str], None] | None = None  # told why a POST got 401 (never the key sent)
    lock: threading.Lock = field(default_factory=threading.Lock)


SIGNATURE_TOLERANCE_SECONDS = 300


def verify_signature(secret: str, raw: bytes, headers: Any) -> bool:
    """Standard Webhooks verification: one of the v1 signatures matches, timestamp within 5 min."""
    msg_id, timestamp, signatures = (
        headers.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature")
    )
    if not (msg_id and timestamp and signatures and timestamp.isdigit()):
        return False
    if abs(time.time() - int(timestamp)) > SIGNATURE_TOLERANCE_SECONDS:
        return False
    expected = signing.signature_headers(msg_id, int(timestamp), raw, [signing.decode_secret(secret)])
    wanted = expected["webhook-signature"]
    return any(hmac.compare_digest(wanted, candidate) for candidate in signatures.split(" "))


class _Handler(BaseHTTPRequestHandler):
    server: ReceiverServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's name
        pass

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _reject(self, error: str, why: str) -> None:
        state = self.server.state
        with state.lock:
            state.rejected += 1
        self._answer(401, {"error": error})
        if state.on_reject:
            state.on_reject(why)

    def do_POST(self) -> None:  # the stdlib's name
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if not hmac.compare_digest(self.headers.get("X-Webhook-Key", ""), state.key):
            self._reject("invalid X-Webhook-Key", "the X-Webhook-Key is not the one this receiver accepts")
            return
        if state.signing_secret and not verify_signature(state.signing_secret, raw, self.headers):
            self._reject("invalid webhook-signature", "the webhook-signature does not verify")
            return
        try:
            body = json.loads(raw)
            request_id = body["metadata"]["request_id"]
            event = body["event"]
            retry = bool(body["metadata"].get("retry"))
        except (ValueError, KeyError, TypeError):
            self._answer(400, {"error": "not a webhook payload"})
            return
        received = ReceivedEvent(request_id, event, retry, body)
        with state.lock:
            if request_id in state.seen:
                state.duplicates += 1
                duplicate = True
            elif event in state.fail_once and event not in state.failed_once:
                state.failed_once.add(event)
                self._answer(503, {"error": "scripted failure, retry later"})
                return
            else:
                duplicate = False
                state.seen[request_id] = received
        if duplicate:
            self._answer(200, {"status": "duplicate", "request_id": request_id})
            return
        if state.on_event:
            state.on_event(received)
        self._answer(200, {"status": "received", "request_id": request_id})


class ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog is 5; a worker opens up to ``worker.threads``
    # connections at once, and a busy accept loop would drop the rest's SYNs (connect timeouts).
    request_queue_size = 128

    def __init__(self, host: str, port: int, state: ReceiverState) -> None:
        super().__init__((host, port), _Handler)
        self.state = state

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/webhooks/baremeds"

    def start_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="reference-receiver", daemon=True)
        thread.start()
        return thread
