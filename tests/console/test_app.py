"""The console's ASGI app (``dispatcher/console/app.py``): its routes, Starlette's own refusals
as the console's short page with its headers, the stylesheet, the ``when`` filter, the secret
forms and patient links are keyed with, and the host names it answers to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from starlette.testclient import TestClient

from dispatcher.console.app import ROUTES, create_app
from dispatcher.console.web import CSP

from .conftest import SESSION_SECRET, console_section, endpoints


def test_home_is_the_deliveries_page(client_for):
    home = client_for("victor").get("/", follow_redirects=False)
    assert (home.status_code, home.headers["location"]) == (303, "/deliveries")


def test_no_such_page_and_a_wrong_method_are_the_consoles_short_page(client_for):
    victor = client_for("victor")
    missing = victor.get("/no-such-page")
    assert missing.status_code == 404 and 'id="problem">not found<' in missing.text
    assert missing.headers["content-security-policy"] == CSP
    wrong = victor.put("/deliveries")
    assert wrong.status_code == 405 and 'id="problem">method not allowed<' in wrong.text
    assert "GET" in wrong.headers["allow"] and wrong.headers["cache-control"] == "no-store"


def test_the_stylesheet_is_served_and_every_route_is_listed(client_for):
    css = client_for().get("/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    paths = {getattr(route, "path", None) for route in ROUTES}
    assert {"/login", "/logout", "/deliveries", "/endpoints", "/queue", "/audit"} <= paths
    assert "/deliveries/{request_id}/retry" in paths and "/endpoints/{name}/disable" in paths


def test_times_are_written_in_utc_as_the_cli_writes_them(runtime):
    when = create_app(runtime).state.templates.env.filters["when"]
    plus_two = datetime(2026, 2, 1, 14, 30, 5, 123, tzinfo=timezone(timedelta(hours=2)))
    assert when(plus_two) == "2026-02-01T12:30:05Z"
    assert when(datetime(2026, 2, 1, 12, 0, tzinfo=UTC)) == "2026-02-01T12:00:00Z"
    assert (when(None), when("yesterday")) == ("", "yesterday")


def test_forms_are_keyed_with_the_configured_secret_else_the_given_else_a_random_one(make_runtime):
    configured = make_runtime(endpoints=endpoints(), console=console_section())
    assert create_app(configured, session_secret="x" * 32).state.secret == SESSION_SECRET
    section = console_section()
    del section["session_secret"]
    unset = make_runtime(endpoints=endpoints(), console=section)
    assert create_app(unset, session_secret="y" * 32).state.secret == "y" * 32
    first, second = create_app(unset).state.secret, create_app(unset).state.secret
    assert first != second and len(first) >= 32


def test_the_app_answers_to_the_hosts_of_its_settings_and_listen_address(make_runtime):
    section = console_section()
    del section["allowed_hosts"]
    app = create_app(make_runtime(console=section), listen_host="10.1.2.3")
    assert app.state.hosts == {"localhost", "127.0.0.1", "::1", "10.1.2.3"}
    assert TestClient(app, base_url="http://10.1.2.3:8480").get("/login").status_code == 200
