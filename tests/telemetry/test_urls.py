"""An endpoint's URL as telemetry shows it (``dispatcher/telemetry/urls.py``): its scheme, host
and port, the path as ``/REDACTED`` -- never its credentials, path, query or fragment, where a
partner's token often rides."""

from __future__ import annotations

import pytest

from dispatcher.telemetry.urls import server_address, url_full


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://partner.example/hooks/in", "https://partner.example/REDACTED"),
        ("https://clinic:s3cret@partner.example/hooks/in", "https://partner.example/REDACTED"),
        ("https://clinic@partner.example/hooks/in", "https://partner.example/REDACTED"),
        ("https://partner.example/hooks/in?token=s3cret&x=1", "https://partner.example/REDACTED"),
        ("https://partner.example/hooks/in#s3cret", "https://partner.example/REDACTED"),
        ("https://hooks.partner.example/services/T000/B000/s3cret", "https://hooks.partner.example/REDACTED"),
        ("https://partner.example/s3cret;clinic", "https://partner.example/REDACTED"),
        (
            "https://clinic:s3cret@partner.example:8443/hooks/in?token=s3cret#frag",
            "https://partner.example:8443/REDACTED",
        ),
        ("https://partner.example:443/hooks", "https://partner.example:443/REDACTED"),
        ("http://[::1]:8080/hooks?token=s3cret", "http://[::1]:8080/REDACTED"),
        ("http://clinic:s3cret@[2001:db8::7]/hooks", "http://[2001:db8::7]/REDACTED"),
        ("http://127.0.0.1:9000/a/b/", "http://127.0.0.1:9000/REDACTED"),
    ],
)
def test_url_full_keeps_scheme_host_and_port_and_redacts_the_path(url: str, shown: str) -> None:
    assert url_full(url) == shown
    for hidden in ("s3cret", "clinic", "token", "frag", "T000", "/in", "/b"):
        assert hidden not in url_full(url), hidden


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://partner.example", "https://partner.example/"),
        ("https://partner.example/", "https://partner.example/"),
        ("https://partner.example?token=s3cret", "https://partner.example/"),
        ("https://partner.example/?token=s3cret", "https://partner.example/"),
        ("https://clinic:s3cret@partner.example:8443#frag", "https://partner.example:8443/"),
        ("http://[::1]:8080", "http://[::1]:8080/"),
    ],
)
def test_a_url_without_a_path_shows_the_root_and_nothing_redacted(url: str, shown: str) -> None:
    """No path to hide: ``/``, not ``/REDACTED`` (which would suggest a path that is not there)."""
    assert url_full(url) == shown


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("https://partner.example/hooks", ("partner.example", 443)),
        ("http://partner.example/hooks", ("partner.example", 80)),
        ("https://partner.example:8443/hooks", ("partner.example", 8443)),
        ("http://partner.example:443/hooks", ("partner.example", 443)),
        ("https://clinic:s3cret@partner.example/hooks?token=s3cret", ("partner.example", 443)),
        ("http://[::1]:8080/hooks", ("::1", 8080)),
        ("https://[2001:db8::7]/hooks", ("2001:db8::7", 443)),
    ],
)
def test_server_address_is_the_host_and_the_port_the_scheme_implies(url: str, address: tuple) -> None:
    assert server_address(url) == address
