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
    answered: int | None = None
    """The status answered (None: the connection was reset, or no answer yet)."""
    peer: str = ""
    """The sender's address (which host sent it, in the network tests)."""

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

    def __init__(self, host: str = "127.0.0.1") -> None:
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

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                item = Received(time.time(), self.path, dict(self.headers.items()), raw, body)
                item.peer = self.client_address[0]
                rid = item.request_id or "?"
                with receiver.lock:
                    receiver.received.append(item)
                    receiver.in_flight[rid] = receiver.in_flight.get(rid, 0) + 1
                    if receiver.in_flight[rid] > 1:
                        receiver.overlaps.append(rid)
                    answer = receiver._next_answer(rid)
                    item.answered = None if answer.reset else answer.status
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

        self.server = _Server((host, 0), Handler)
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


class DripServer:
    """A partner that answers one byte at a time: the status line (``drip="status"``), the
    headers (``"headers"``) or the body (``"body"``), a byte every ``interval`` seconds, for
    as long as the client stays. Real sockets on 127.0.0.1; it records each request it read."""

    def __init__(self, drip: str = "status", interval: float = 0.5, answer_first: int = 0) -> None:
        self.drip = drip
        self.interval = interval
        self.answer_first = answer_first
        """Requests on each connection answered at once (kept alive) before the dripping starts."""
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed_after: list[float] = []
        """Seconds each connection was dripped to before the client cut it."""
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.stopping = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/webhooks/slow"

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _read_request(self, conn: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(
            next(
                (
                    line.split(b":")[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                b"0",
            )
        )
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body

    def _serve(self, conn: socket.socket) -> None:
        started = time.monotonic()
        status, headers = (
            b"HTTP/1.1 200 OK\r\n",
            b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
        )
        fast, slow = {
            "status": (b"", status + headers),
            "headers": (status, headers),
            "body": (status + headers, b"x" * 100000),
        }[self.drip]
        with conn:
            for _ in range(self.answer_first):
                self.requests.append(self._read_request(conn))
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            self.requests.append(self._read_request(conn))
            try:
                conn.sendall(fast)
                for byte in slow:
                    if self.stopping.wait(self.interval):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                self.closed_after.append(time.monotonic() - started)

    def close(self) -> None:
        self.stopping.set()
        self.listener.close()
