"""A scripted partner endpoint on 127.0.0.1 for tests: real HTTP, answers chosen per request."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    at: float
    path: str
    headers: dict[str, str]
    raw: bytes
    body: dict[str, Any] | None

    @property
    def request_id(self) -> str | None:
        return (self.body or {}).get("metadata", {}).get("request_id")


@dataclass
class Answer:
    """One scripted answer: a status (with headers/body), a delay first, or a connection reset."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"ok":true}'
    delay: float = 0.0
    reset: bool = False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # three 16-thread workers open up to 48 connections at once; socketserver's backlog of 5
    # dropped SYNs under load, which the workers rightly saw as connect timeouts
    request_queue_size = 128


class ScriptedReceiver:
    """Answers each request with the next scripted answer (per request_id), else the default.

    ``in_flight`` tracks requests being handled at this moment, so tests can assert that no
    request_id is ever in flight twice at once.
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.scripts: dict[str, list[Answer]] = {}
        self.default_script: list[Answer] = []
        self.default = Answer()
        self.lock = threading.Lock()
        self.in_flight: dict[str, int] = {}
        self.overlaps: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                item = Received(time.time(), self.path, dict(self.headers.items()), raw, body)
                rid = item.request_id or "?"
                with receiver.lock:
                    receiver.received.append(item)
                    receiver.in_flight[rid] = receiver.in_flight.get(rid, 0) + 1
                    if receiver.in_flight[rid] > 1:
                        receiver.overlaps.append(rid)
                    answer = receiver._next_answer(rid)
                try:
                    if answer.delay:
                        time.sleep(answer.delay)
                    if answer.reset:
                        # RST instead of FIN: the client sees "connection reset by peer".
                        self.connection.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                        self.close_connection = True
                        self.connection.close()
                        return
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except OSError:
                    pass
                finally:
                    with receiver.lock:
                        receiver.in_flight[rid] -= 1

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _next_answer(self, request_id: str) -> Answer:
        if request_id not in self.scripts and self.default_script:
            self.scripts[request_id] = list(self.default_script)
        script = self.scripts.get(request_id)
        if script:
            return script.pop(0)
        return self.default

    def script_all(self, *answers: Answer | int) -> None:
        """Every new request_id gets this sequence of answers, then the default."""
        self.default_script = [a if isinstance(a, Answer) else Answer(status=a) for a in answers]

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/webhooks/baremeds"

    def for_request(self, request_id: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.request_id == request_id]

    def request_ids(self) -> set[str]:
        with self.lock:
            return {r.request_id for r in self.received if r.request_id}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
