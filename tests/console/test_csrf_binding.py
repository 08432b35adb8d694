"""CSRF beyond the token alone: a form token of the single sign-on proxy's users (and of the
sign-in form) is bound to its user, a POST from another origin is refused whatever token it
carries, and over https the cookies have ``__Host-`` names (a sibling host can neither set nor
shadow them)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from starlette.testclient import TestClient

from dispatcher import store
from dispatcher.console.app import create_app
from dispatcher.ops import audit
from dispatcher.runtime import Runtime
from tests.conftest import wait_for

from . import browser
from .conftest import PASSWORDS, console_section, csrf_of, sign_in

FORM = "dispatcher_console_form"
SESSION = "dispatcher_console_session"
PROXIED = {
    "trusted_proxy": {"header": "X-Forwarded-User", "from": ["127.0.0.1/32"]},
    "proxy_roles": {"mallory": "viewer", "opal": "operator"},
}
EVIL = "https://evil.example"


def as_user(name: str) -> dict[str, str]:
    return {"X-Forwarded-User": name}


def nothing_disabled(runtime: Runtime) -> bool:
    return store.disabled_endpoints(runtime.engine) == {} and audit.entries(runtime.engine) == []


def test_an_sso_users_form_token_passes_for_no_other_user(console_runtime):
    """The reviewer's scenario: mallory (a viewer) hands her form cookie and token to a request
    made as opal (an operator). On a5dce7c the endpoint is disabled (303) under opal's name."""
    runtime = console_runtime(**PROXIED)
    app = create_app(runtime)
    mallory = TestClient(app, client=("127.0.0.1", 5000))
    page = mallory.get("/deliveries", headers=as_user("mallory"))
    nonce, token = mallory.cookies[FORM], csrf_of(page.text)
    opal = TestClient(app, client=("127.0.0.1", 5001), cookies={FORM: nonce})
    forged = opal.post(
        "/endpoints/pharmacy/disable",
        headers=as_user("opal"),
        data={"csrf": token, "reason": "forged"},
        follow_redirects=False,
    )
    assert forged.status_code == 403 and "the form has expired" in forged.text
    assert nothing_disabled(runtime)
    # opal's own page, over the same nonce, gives opal a token that works: only the user differs
    confirm = opal.get("/endpoints/pharmacy/disable", headers=as_user("opal"))
    assert csrf_of(confirm.text) != token
    done = opal.post(
        "/endpoints/pharmacy/disable",
        headers=as_user("opal"),
        data={"csrf": csrf_of(confirm.text), "reason": "maintenance"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert store.disabled_endpoints(runtime.engine) == {"pharmacy": "maintenance"}
    assert [(e.actor, e.action) for e in audit.entries(runtime.engine)] == [("opal", "endpoints disable")]


def test_the_sign_in_forms_token_passes_for_no_signed_in_user(console_runtime):
    """A token made for the sign-in form (nobody) is not an SSO user's. On a5dce7c: 303."""
    runtime = console_runtime(**PROXIED)
    client = TestClient(create_app(runtime), client=("127.0.0.1", 5000))
    token = csrf_of(client.get("/login").text)
    forged = client.post(
        "/endpoints/pharmacy/disable",
        headers=as_user("opal"),
        data={"csrf": token},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert nothing_disabled(runtime)


@pytest.mark.parametrize(
    "origin",
    [
        EVIL,
        "http://console.testserver",
        "http://testserver:8080",
        "https://testserver",
        "http://testserver/x",
    ],
)
def test_a_form_from_another_origin_is_refused_whatever_its_token(client_for, runtime, origin):
    """A valid session token, sent from another origin (another site, a sibling host, another
    port or scheme). On a5dce7c: 303 and the endpoint disabled."""
    operator = client_for("olivia")
    token = csrf_of(operator.get("/endpoints/pharmacy/disable").text)
    refused = operator.post(
        "/endpoints/pharmacy/disable",
        headers={"Origin": origin},
        data={"csrf": token},
        follow_redirects=False,
    )
    assert refused.status_code == 403 and "cross-site form refused" in refused.text
    assert nothing_disabled(runtime)


def test_the_reviewers_request_is_refused_for_its_origin_too(console_runtime):
    runtime = console_runtime(**PROXIED)
    app = create_app(runtime)
    opal = TestClient(app, client=("127.0.0.1", 5000))
    token = csrf_of(opal.get("/endpoints/pharmacy/disable", headers=as_user("opal")).text)
    refused = opal.post(
        "/endpoints/pharmacy/disable",
        headers={**as_user("opal"), "Origin": EVIL},
        data={"csrf": token},
        follow_redirects=False,
    )
    assert refused.status_code == 403 and "cross-site form refused" in refused.text
    assert nothing_disabled(runtime)


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_a_form_a_browser_calls_cross_or_same_site_is_refused(client_for, runtime, site):
    """No Origin (or ``Origin: null``), but ``Sec-Fetch-Site`` says another origin sent it. On
    a5dce7c: 303 and the endpoint disabled."""
    operator = client_for("olivia")
    for origin in ({}, {"Origin": "null"}):
        token = csrf_of(operator.get("/endpoints/pharmacy/disable").text)
        refused = operator.post(
            "/endpoints/pharmacy/disable",
            headers={"Sec-Fetch-Site": site, **origin},
            data={"csrf": token},
            follow_redirects=False,
        )
        assert refused.status_code == 403 and "cross-site form refused" in refused.text
    assert nothing_disabled(runtime)


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://testserver"},
        {"Origin": "HTTP://TestServer:80"},
        {"Origin": "null", "Sec-Fetch-Site": "same-origin"},  # Chromium, under no-referrer
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
        {},  # curl
    ],
)
def test_a_form_from_the_consoles_own_pages_is_taken(client_for, runtime, headers):
    operator = client_for("olivia")
    token = csrf_of(operator.get("/endpoints/pharmacy/disable").text)
    done = operator.post(
        "/endpoints/pharmacy/disable", headers=headers, data={"csrf": token}, follow_redirects=False
    )
    assert done.status_code == 303
    assert list(store.disabled_endpoints(runtime.engine)) == ["pharmacy"]


def test_the_public_url_is_an_origin_of_the_console(console_runtime):
    """Behind a proxy that rewrites Host, the browser's Origin is the public URL's."""
    runtime = console_runtime(public_url="https://console.example.org")
    client = TestClient(create_app(runtime))
    token = csrf_of(client.get("/login").text)
    form = {"name": "olivia", "password": PASSWORDS["olivia"], "csrf": token}
    other = client.post("/login", headers={"Origin": "https://other.example.org"}, data=form)
    assert other.status_code == 403 and SESSION not in client.cookies
    signed_in = client.post(
        "/login", headers={"Origin": "https://console.example.org"}, data=form, follow_redirects=False
    )
    assert signed_in.status_code == 303 and SESSION in client.cookies


def test_sign_in_and_out_from_another_origin_are_refused(client_for):
    """Login CSRF: the attacker's own name and password, posted from their site. On a5dce7c: 303
    and the browser signed in as the attacker."""
    client = client_for()
    token = csrf_of(client.get("/login").text)
    form = {"name": "victor", "password": PASSWORDS["victor"], "csrf": token}
    refused = client.post("/login", headers={"Origin": EVIL}, data=form, follow_redirects=False)
    assert refused.status_code == 403 and "cross-site form refused" in refused.text
    assert SESSION not in client.cookies
    assert sign_in(client, "victor").status_code == 303
    token = csrf_of(client.get("/deliveries").text)
    out = client.post("/logout", headers={"Sec-Fetch-Site": "cross-site"}, data={"csrf": token})
    assert out.status_code == 403
    assert client.get("/deliveries", follow_redirects=False).status_code == 200  # still signed in


def _set_cookies(response: httpx.Response) -> dict[str, str]:
    """Each Set-Cookie header by its cookie's name (lower case)."""
    return {h.split("=", 1)[0]: h.lower() for h in response.headers.get_list("set-cookie")}


def test_over_https_the_cookies_have_host_prefixed_names(console_runtime):
    """On a5dce7c the cookies are named ``dispatcher_console_*`` under https too."""
    runtime = console_runtime(https=True)
    client = TestClient(create_app(runtime), base_url="https://testserver")
    login_page = client.get("/login")
    form_cookie = _set_cookies(login_page)[f"__Host-{FORM}"]
    signed_in = sign_in(client, "victor")
    session_cookie = _set_cookies(signed_in)[f"__Host-{SESSION}"]
    for cookie in (form_cookie, session_cookie):
        assert "; secure" in cookie and "; path=/" in cookie and "domain=" not in cookie
    assert set(client.cookies) == {f"__Host-{FORM}", f"__Host-{SESSION}"}
    assert client.get("/deliveries", follow_redirects=False).status_code == 200
    # the session is read under that name only: the same id under the plain name opens nothing
    plain = TestClient(create_app(runtime), base_url="https://testserver")
    plain.cookies.set(SESSION, client.cookies[f"__Host-{SESSION}"])
    assert plain.get("/deliveries", follow_redirects=False).headers["location"] == "/login"
    out = client.post(
        "/logout", data={"csrf": csrf_of(client.get("/deliveries").text)}, follow_redirects=False
    )
    cleared = _set_cookies(out)[f"__Host-{SESSION}"]
    assert "max-age=0" in cleared and "; secure" in cleared and "; path=/" in cleared
    assert client.get("/deliveries", follow_redirects=False).headers["location"] == "/login"


def test_without_https_the_cookies_keep_their_names(client_for):
    client = client_for()
    client.get("/login")
    assert sign_in(client, "victor").status_code == 303
    assert set(client.cookies) == {FORM, SESSION}


def test_behind_a_tls_proxy_the_origin_is_https(console_runtime):
    """``console.https``: the browser is at https://<host>, whatever scheme reaches the console."""
    client = TestClient(create_app(console_runtime(https=True)))  # plain http, as from the proxy
    page = client.get("/login")
    set_cookie = next(h for h in page.headers.get_list("set-cookie") if h.startswith(f"__Host-{FORM}="))
    headers = {"Cookie": set_cookie.split(";")[0]}  # a Secure cookie: the client keeps it off http
    form = {"name": "victor", "password": PASSWORDS["victor"], "csrf": csrf_of(page.text)}
    plain = client.post("/login", headers={**headers, "Origin": "http://testserver"}, data=form)
    assert plain.status_code == 403 and "cross-site form refused" in plain.text
    tls = client.post(
        "/login", headers={**headers, "Origin": "https://testserver"}, data=form, follow_redirects=False
    )
    assert tls.status_code == 303


@contextmanager
def attacker_site(html: str) -> Iterator[str]:
    """A page served at another port of 127.0.0.1: another origin of the same site, as a sibling
    subdomain is."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's name
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing()))
def test_login_csrf_from_a_sibling_origin_in_chromium(write_config, tmp_path):
    """In a real Chromium: a page on another port of the console's host plants its own form
    cookie (cookies do not keep ports apart) and posts the attacker's name, password and
    token to /login. On a5dce7c the browser ends signed in as the attacker."""
    from selenium.webdriver.common.by import By

    config = write_config(console=console_section())
    with browser.console_process(config, tmp_path / "console.out") as base, browser.chromium() as driver:
        login_page = httpx.get(f"{base}/login")
        nonce, token = login_page.cookies[FORM], csrf_of(login_page.text)
        html = (
            f'<!doctype html><script>document.cookie = "{FORM}={nonce}; path=/";</script>'
            f'<form id="f" method="post" action="{base}/login">'
            f'<input name="name" value="victor"><input name="password" value="{PASSWORDS["victor"]}">'
            f'<input name="csrf" value="{token}"></form>'
            '<script>document.getElementById("f").submit();</script>'
        )
        with attacker_site(html) as evil:
            driver.get(evil)
            wait_for(lambda: driver.current_url.startswith(base), 10, message="the forged sign-in")
        assert "cross-site form refused" in driver.find_element(By.TAG_NAME, "body").text
        assert SESSION not in {c["name"] for c in driver.get_cookies()}
        driver.get(f"{base}/deliveries")
        assert driver.current_url == f"{base}/login"
