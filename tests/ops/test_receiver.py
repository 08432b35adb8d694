"""The reference receiver (``dispatcher receive``, the demo) keeps up with a worker's threads."""

from __future__ import annotations

import socket

from dispatcher.ops.receiver import ReceiverServer, ReceiverState


def test_connections_wait_for_a_busy_accept_loop_instead_of_timing_out():
    # A 16-thread worker opens up to 16 connections at once (three workers, 48). The accept loop
    # is not running here, as if it were busy: every connect must still complete from the listen
    # backlog. socketserver's default backlog of 5 left the rest to SYN retries and connect timeouts.
    server = ReceiverServer("127.0.0.1", 0, ReceiverState(key="xxx"))
    clients: list[socket.socket] = []
    try:
        for _ in range(64):
            clients.append(socket.create_connection(server.server_address[:2], timeout=0.5))
        assert len(clients) == 64
    finally:
        for client in clients:
            client.close()
        server.server_close()
