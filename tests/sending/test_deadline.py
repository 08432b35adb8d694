"""An attempt ends within timeout + connect_timeout of its start, however slowly the partner
answers (dispatcher.sending.deadline): real sockets, a partner that drips one byte at a time."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from dispatcher.sending.attempt import build_headers, new_session, post
from dispatcher.sending.deadline import Watchdog
from dispatcher.vocabulary import FailureKind
from tests.servers import DripServer, ScriptedReceiver

LOOPBACK = ("127.0.0.0/8",)


@pytest.fixture
def session() -> Iterator:
    session = new_session(LOOPBACK)
    yield session
    session.close()


@pytest.mark.parametrize("drip", ["status", "headers", "body"])
def test_a_dripping_answer_is_cut_at_the_deadline_as_a_timeout(session, drip: str) -> None:
    """Each byte comes within the read timeout, so only a deadline on the whole attempt ends it:
    the drip would take 100,000 half-seconds."""
    server = DripServer(drip=drip, interval=0.2)
    try:
        outcome = post(session, server.url, b"{}", build_headers("k"), timeout=1.0, connect_timeout=0.5)
    finally:
        server.close()
    assert outcome.failure == FailureKind.TIMEOUT and outcome.http_status is None
    assert outcome.error is not None and outcome.error.startswith("no complete answer within")
    assert 1_000 <= outcome.duration_ms < 10_000  # cut near 1.5 s, not after the drip
    assert len(server.requests) == 1


def test_a_kept_alive_connection_that_starts_dripping_is_cut_too(session) -> None:
    """The deadline reaches a connection taken from the pool, not only a new one."""
    server = DripServer(drip="headers", interval=0.2, answer_first=1)
    try:
        first = post(session, server.url, b"{}", build_headers("k"), timeout=1.0, connect_timeout=0.5)
        second = post(session, server.url, b"{}", build_headers("k"), timeout=1.0, connect_timeout=0.5)
    finally:
        server.close()
    assert first.http_status == 200 and server.connections == 1  # the second went on the same one
    assert second.failure == FailureKind.TIMEOUT and second.duration_ms < 10_000


def test_a_fast_answer_is_untouched_and_its_connection_kept(session) -> None:
    receiver = ScriptedReceiver()
    try:
        outcomes = [
            post(session, receiver.url, b"{}", build_headers("k"), timeout=0.5, connect_timeout=0.2)
            for _ in range(5)
        ]
        time.sleep(1.0)  # every alarm has gone off by now; none may cut a pooled connection
        outcomes.append(
            post(session, receiver.url, b"{}", build_headers("k"), timeout=0.5, connect_timeout=0.2)
        )
    finally:
        receiver.close()
    assert [o.http_status for o in outcomes] == [200] * 6


def test_an_alarm_cuts_only_its_own_sockets_and_only_once_due() -> None:
    import socket

    watchdog = Watchdog()
    left, right = socket.socketpair()
    other_left, other_right = socket.socketpair()
    try:
        soon, later = watchdog.arm(0.2), watchdog.arm(30)
        soon.attach(left)
        later.attach(other_left)
        time.sleep(0.5)
        assert soon.fired and not later.fired
        assert left.recv(1) == b""  # shut down: the blocked read would have returned
        other_right.sendall(b"x")
        assert other_left.recv(1) == b"x"
        finished = watchdog.arm(0.1)
        finished.finish()
        finished.attach(other_left)
        time.sleep(0.3)
        assert not finished.fired  # an attempt that is over is never cut
    finally:
        for sock in (left, right, other_left, other_right):
            sock.close()
