"""The destination guard: address checks (pure) and real refusals on loopback only."""

from __future__ import annotations

import ipaddress
import socket
import threading

import pytest

from dispatcher.sending.guard import (
    DestinationRefused,
    address_kind,
    guarded_create_connection,
    is_allowed,
    is_forbidden,
    parse_networks,
    refusal_reason,
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


REASONS = {
    "127.0.0.1": "loopback",
    "::1": "loopback",
    "::ffff:127.0.0.1": "loopback",
    "10.0.0.1": "private",
    "172.16.5.4": "private",
    "192.168.1.1": "private",
    "fc00::1": "private",
    "::ffff:10.0.0.1": "private",
    "169.254.1.1": "link-local",
    "fe80::1": "link-local",
    "169.254.169.254": "cloud metadata",
    "fd00:ec2::254": "cloud metadata",
    "224.0.0.1": "multicast",
    "ff02::1": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "0.0.0.0": "unspecified",
    "::": "unspecified",
    "100.64.0.1": "shared address space",
    "192.0.2.1": "documentation",
    "2001:db8::1": "documentation",
    "198.18.0.1": "benchmarking",
    "0.1.2.3": "this network",
}


@pytest.mark.parametrize(("address", "reason"), list(REASONS.items()))
def test_a_refused_address_says_why(address, reason):
    assert refusal_reason(address, ()) == reason
    assert address_kind(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", FORBIDDEN)
def test_every_forbidden_address_has_a_reason_and_an_allowed_one_none(address):
    assert refusal_reason(address, ()) is not None
    assert refusal_reason(address, parse_networks(["0.0.0.0/0", "::/0"])) is None


@pytest.mark.parametrize("address", PUBLIC)
def test_a_public_address_has_no_reason(address):
    assert refusal_reason(address, ()) is None
    assert refusal_reason(ipaddress.ip_address(address), ()) is None


def test_refusal_reason_agrees_with_is_allowed():
    allow = parse_networks(["127.0.0.0/8", "10.1.0.0/16"])
    for address in [*FORBIDDEN, *PUBLIC, "10.1.2.3", "fe80::1%eth0"]:
        assert (refusal_reason(address, allow) is None) == is_allowed(address, allow)


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
    with pytest.raises(DestinationRefused) as refused:
        guarded_create_connection("127.0.0.1", port, 2, ())
    thread.join()
    server.close()
    assert accepted == []  # nothing ever reached the listener
    assert str(refused.value) == "127.0.0.1 is not allowed (loopback): add it to allow_networks"


def test_a_name_refused_on_every_address_is_one_line_naming_the_first():
    addresses = sorted({info[4][0] for info in socket.getaddrinfo("localhost", 80, 0, socket.SOCK_STREAM)})
    with pytest.raises(DestinationRefused) as refused:
        guarded_create_connection("localhost", 9, 2, ())
    more = len(addresses) - 1
    expected = f"{addresses[0]} is not allowed (loopback): add it to allow_networks"
    if more:
        expected += f" (and {more} more address{'es' if more > 1 else ''})"
    assert str(refused.value) == expected and "\n" not in str(refused.value)


def test_loopback_connects_when_allowed():
    server, thread, accepted = _listener()
    port = server.getsockname()[1]
    sock = guarded_create_connection("127.0.0.1", port, 2, parse_networks(["127.0.0.0/8"]))
    thread.join()
    assert sock.getpeername()[0] == "127.0.0.1" and len(accepted) == 1
    sock.close()
    accepted[0].close()
    server.close()
