"""Endpoint warnings before anything is sent: every address the guard will refuse, named with
why and the setting to change, and every host that does not resolve; resolved for real (IP
literals, localhost, and .invalid names, which never resolve: RFC 6761)."""

from __future__ import annotations

import threading
import time

import pytest

from dispatcher.config import Endpoint, Settings
from dispatcher.sending.guard import parse_networks, refusal_reason
from dispatcher.sending.preflight import endpoint_warnings, resolve, suggested_network


def settings(*urls: str, allow: tuple[str, ...] = ()) -> Settings:
    endpoints = tuple(Endpoint(name=f"e{i}", url=url, key="k") for i, url in enumerate(urls))
    return Settings(endpoints=endpoints, allow_networks=allow)


def test_a_loopback_endpoint_is_named_with_why_and_the_setting_to_change() -> None:
    warnings = endpoint_warnings(settings("http://127.0.0.1:9000/hook/patient-123?order=ORDER-9"))
    assert warnings == [
        "endpoint e0 (http://127.0.0.1:9000): 127.0.0.1 is not allowed (loopback): add it to "
        'allow_networks, e.g. allow_networks: ["127.0.0.0/8"]'
    ]
    assert "patient-123" not in warnings[0] and "ORDER-9" not in warnings[0]  # no path or query


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://10.1.2.3/", "endpoint e0 (http://10.1.2.3): 10.1.2.3 is not allowed (private)"),
        (
            "https://[fe80::1]:8443/x",
            "endpoint e0 (https://[fe80::1]:8443): fe80::1 is not allowed (link-local)",
        ),
        ("http://169.254.169.254/latest", "169.254.169.254 is not allowed (cloud metadata)"),
        ("http://[::1]:8787/", "::1 is not allowed (loopback): add it to allow_networks"),
        ("http://0.0.0.0/", "0.0.0.0 is not allowed (unspecified)"),
    ],
)
def test_each_refused_address_says_why(url: str, expected: str) -> None:
    (warning,) = endpoint_warnings(settings(url))
    assert expected in warning and "add it to allow_networks, e.g. allow_networks: [" in warning


def test_localhost_warns_about_every_address_it_resolves_to() -> None:
    addresses = resolve("localhost", 80)
    warnings = endpoint_warnings(settings("http://localhost:8787/webhooks"))
    assert len(warnings) == len(addresses) >= 1
    for address, warning in zip(addresses, warnings, strict=True):
        assert warning.startswith(f"endpoint e0 (http://localhost:8787): {address} is not allowed (loopback)")


def test_allowed_and_public_addresses_give_no_warning() -> None:
    allowed = settings("http://127.0.0.1:8787/", "http://[::1]:8787/", allow=("127.0.0.0/8", "::1/128"))
    assert endpoint_warnings(allowed) == []
    assert endpoint_warnings(settings("https://8.8.8.8/hook", "https://[2001:4860:4860::8888]/")) == []
    assert endpoint_warnings(settings()) == []


def test_allowing_one_address_leaves_the_others_warned() -> None:
    warnings = endpoint_warnings(settings("http://10.0.0.7/", "http://10.0.0.8/", allow=("10.0.0.7/32",)))
    assert warnings == [
        "endpoint e1 (http://10.0.0.8): 10.0.0.8 is not allowed (private): add it to allow_networks, "
        'e.g. allow_networks: ["10.0.0.8/32"]'
    ]


def test_a_host_that_does_not_resolve_is_a_warning() -> None:
    warnings = endpoint_warnings(
        settings("https://partner.example.invalid/webhooks?id=7", "http://127.0.0.1/")
    )
    assert (
        warnings[0]
        == "endpoint e0 (https://partner.example.invalid): could not resolve partner.example.invalid"
    )
    assert warnings[1].startswith("endpoint e1 (http://127.0.0.1): 127.0.0.1 is not allowed")


def test_a_resolver_that_never_answers_costs_at_most_the_timeout() -> None:
    release = threading.Event()

    def hanging(host: str, port: int) -> list[str]:
        release.wait(10)
        return ["127.0.0.1"]

    started = time.monotonic()
    warnings = endpoint_warnings(settings("https://slow.example/", "https://slow.example/x"), 0.3, hanging)
    release.set()
    assert time.monotonic() - started < 2
    assert warnings == [
        "endpoint e0 (https://slow.example): could not resolve slow.example within 0.3 s",
        "endpoint e1 (https://slow.example): could not resolve slow.example within 0.3 s",
    ]


def test_an_endpoint_name_that_could_move_a_terminal_is_quoted() -> None:
    endpoint = Endpoint(name="bad\x1b[2Jname", url="http://127.0.0.1/", key="k")
    (warning,) = endpoint_warnings(Settings(endpoints=(endpoint,)))
    assert warning.startswith("endpoint 'bad\\x1b[2Jname' (http://127.0.0.1)") and "\x1b" not in warning


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("127.0.0.1", "127.0.0.0/8"),
        ("127.8.9.10", "127.0.0.0/8"),
        ("::1", "::1/128"),
        ("10.0.0.7", "10.0.0.7/32"),
        ("fe80::1%eth0", "fe80::1/128"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1/128"),  # judged as IPv4, allowed only as written
    ],
)
def test_the_suggested_network_opens_what_was_refused(address: str, network: str) -> None:
    assert suggested_network(address) == network
    assert refusal_reason(address, ()) is not None
    assert refusal_reason(address, parse_networks([network])) is None
