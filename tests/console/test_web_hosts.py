"""The Host header (issue 21 #3) at the console's outer door (``dispatcher/console/web.py``):
the console answers only to its own host names (``console.allowed_hosts``, by default the listen
address, localhost, 127.0.0.1 and ::1), and every redirect is a path -- or under
``console.public_url`` -- never an address a Host wrote. The host settings themselves are
``tests/config/test_console.py``."""

from __future__ import annotations

from starlette.testclient import TestClient

from dispatcher.console.app import create_app

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
