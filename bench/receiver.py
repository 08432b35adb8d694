"""A fast HTTP/1.1 keep-alive receiver: ``python -m bench.receiver PORT [DELAY_SECONDS [RECORD_FILE]]``.

With RECORD_FILE, each request's ``metadata.request_id`` and the time it was read in full
(``time.time()``) are appended to the file, one ``request_id time`` line each, for latency.

A raw asyncio protocol, no framework: it reads each request (headers and Content-Length body)
and answers ``200 OK`` with a 2-byte body, after DELAY seconds when one is given. The delay is an
``asyncio`` timer, so one process holds many slow requests at once. Requests on one connection
are answered in order (HTTP/1.1 without pipelining, as requests/urllib3 send them).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from typing import Any

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
BAD = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class Receiver(asyncio.Protocol):
    delay: float = 0.0
    record: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = bytearray()
        self.busy = False

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self.process()

    def process(self) -> None:
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in bytes(self.buffer[:end]).split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    try:
                        length = int(value.strip())
                    except ValueError:
                        self.transport.write(BAD)
                        self.transport.close()
                        return
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            if self.record is not None:
                body = bytes(self.buffer[end + 4 : total])
                at = body.find(b'"request_id":"')
                if at >= 0:
                    rid = body[at + 14 : at + 50].decode("ascii", "replace")
                    self.record.write(f"{rid} {time.time():.6f}\n")
                    self.record.flush()
            del self.buffer[:total]
            if self.delay > 0:
                self.busy = True
                asyncio.get_running_loop().call_later(self.delay, self.answer_later)
                return
            self.transport.write(RESPONSE)

    def answer_later(self) -> None:
        self.busy = False
        if self.transport.is_closing():
            return
        self.transport.write(RESPONSE)
        self.process()


async def serve(port: int, delay: float, record: str | None = None) -> None:
    Receiver.delay = delay
    Receiver.record = open(record, "a", encoding="ascii") if record else None
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Receiver, "127.0.0.1", port, backlog=1024, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening on 127.0.0.1:{port} delay={delay}", flush=True)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(
        serve(
            int(sys.argv[1]),
            float(sys.argv[2]) if len(sys.argv) > 2 else 0.0,
            sys.argv[3] if len(sys.argv) > 3 else None,
        )
    )
