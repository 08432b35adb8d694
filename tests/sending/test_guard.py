"""The destination guard: address checks (pure) and real refusals on loopback only."""

from __future__ import annotations

import ipaddress
import socket
import threading

import pytest

from dispatcher.sending.guard import (
    DestinationRefused,
    guarded_create_connection,
    is_allowed,
    is_forbidden,
    parse_networks,
)

FORBIDDEN = [
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "127.0.0.1",
    "127.255.255.254",
    "169.254.169.254",
    "169.254.1.1",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd00:ec2::254",
    "ff02::1",
    "::ffff:10.0.0.1",
    "::ffff:127.0.0.1",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2001:4860:4860::8888", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", FORBIDDEN)
def test_non_public_addresses_are_forbidden(address):
    assert is_forbidden(ipaddress.ip_address(address))
    assert not is_allowed(address, ())


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address):
    assert not is_forbidden(ipaddress.ip_address(address))
    assert is_allowed(address, ())


def test_allow_networks_opens_exactly_what_it_names():
    allow = parse_networks(["127.0.0.0/8", "::1/128"])
    assert is_allowed("127.0.0.1", allow) and is_allowed("::1", allow)
    assert not is_allowed("10.0.0.1", allow) and not is_allowed("169.254.169.254", allow)


def _listener():
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept():
        server.settimeout(2)
        try:
            conn, _ = server.accept()
            accepted.append(conn)
        except OSError:
            pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    return server, thread, accepted


def test_loopback_is_refused_before_any_connection_is_made():
    server, thread, accepted = _listener()
    port = server.getsockname()[1]
    with pytest.raises(DestinationRefused, match="allow_networks"):
        guarded_create_connection("localhost", port, 2, ())
    thread.join()
    server.close()
    assert accepted == []  # nothing ever reached the listener


def test_loopback_connects_when_allowed():
    server, thread, accepted = _listener()
    port = server.getsockname()[1]
    sock = guarded_create_connection("127.0.0.1", port, 2, parse_networks(["127.0.0.0/8"]))
    thread.join()
    assert sock.getpeername()[0] == "127.0.0.1" and len(accepted) == 1
    sock.close()
    accepted[0].close()
    server.close()
