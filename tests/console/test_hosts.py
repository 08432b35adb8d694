"""The Host header (issue 21 #3): the console answers only to its own host names
(``console.allowed_hosts``, by default the listen address, localhost, 127.0.0.1 and ::1), and
every redirect is a path -- or under ``console.public_url`` -- never an address a Host wrote."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from dispatcher.config import parse_settings
from dispatcher.console.app import create_app
from dispatcher.errors import ConfigError

from .conftest import console_section, sign_in


def test_a_foreign_host_is_refused_and_a_trailing_slash_redirects_to_a_path(client_for):
    victor = client_for("victor")
    evil = victor.get("/deliveries/", headers={"host": "evil.example"}, follow_redirects=False)
    assert evil.status_code == 400, evil.headers.get("location")
    assert "evil.example" not in evil.headers.get("location", "") and "host name" in evil.text
    slash = victor.get("/deliveries/?status=failed", follow_redirects=False)
    assert (slash.status_code, slash.headers["location"]) == (307, "/deliveries?status=failed")
    double = victor.get("http://testserver//evil.example/", follow_redirects=False)
    assert double.headers["location"] == "/evil.example"  # a path, never //host
    for host in ("evil.example:80", "testserver.evil.example", "", "[::2]:80", "localhost:x"):
        refused = victor.get("/deliveries", headers={"host": host}, follow_redirects=False)
        assert refused.status_code == 400, host


def test_by_default_the_console_answers_to_its_listen_address_and_loopback_names(make_runtime):
    section = console_section()
    del section["allowed_hosts"]
    app = create_app(make_runtime(console=section), listen_host="10.1.2.3")
    for host in ("localhost:8480", "127.0.0.1:8480", "[::1]:8480", "10.1.2.3:8480", "LOCALHOST"):
        client = TestClient(app, base_url="http://localhost")
        assert client.get("/login", headers={"host": host}).status_code == 200, host
    assert TestClient(app).get("/login").status_code == 400  # Host: testserver


def test_a_public_url_is_allowed_and_redirects_start_with_it(make_runtime):
    section = console_section(allowed_hosts=["127.0.0.1"], public_url="https://Console.Example.org")
    app = create_app(make_runtime(console=section))
    assert TestClient(app, base_url="http://localhost").get("/login").status_code == 400  # not listed
    client = TestClient(app, base_url="https://console.example.org")
    signed = sign_in(client, "victor")
    assert (signed.status_code, signed.headers["location"]) == (303, "https://console.example.org/deliveries")
    home = client.get("/", follow_redirects=False)
    assert home.headers["location"] == "https://console.example.org/deliveries"


@pytest.mark.parametrize(
    ("console", "message"),
    [
        ({"allowed_hosts": ["console.example.org:443"]}, "console.allowed_hosts[0]: must be a host name"),
        ({"allowed_hosts": ["https://console.example.org"]}, "console.allowed_hosts[0]: must be a host name"),
        ({"allowed_hosts": []}, "console.allowed_hosts: list the console's host names"),
        ({"allowed_hosts": "localhost"}, "console.allowed_hosts: "),
        ({"public_url": "console.example.org"}, "console.public_url: must be the console's absolute address"),
        ({"public_url": "https://console.example.org/console"}, "console.public_url: must be"),
        ({"public_url": "https://console.example.org/?a=1"}, "console.public_url: must be"),
        ({"public_url": "ftp://console.example.org"}, "console.public_url: must be"),
    ],
)
def test_a_bad_host_setting_is_one_line_naming_it(console, message):
    with pytest.raises(ConfigError) as caught:
        parse_settings({"console": console}, env={})
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_host_settings_are_normalized():
    console = parse_settings(
        {
            "console": {
                "allowed_hosts": ["Console.Example.org.", "[::1]"],
                "public_url": "https://B.example:8443/",
            }
        },
        env={},
    ).console
    assert console.allowed_hosts == ("console.example.org", "::1")
    assert console.public_url == "https://b.example:8443"
    assert console.hosts("0.0.0.0") == {"console.example.org", "::1", "b.example"}
