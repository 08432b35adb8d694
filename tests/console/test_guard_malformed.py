"""Malformed requests (issue 21 #4) at the door every page goes through
(``dispatcher/console/guard.py``), sent to a served console (``dispatcher console`` in its own
process): each is a 400 or 403 with a short page, and the console's log holds one access line
for it and never a traceback -- a non-ASCII CSRF token, bytes that are not UTF-8, broken
multipart bodies, a file, a control character, an oversized body, a session cookie this console
never made. A client that goes away in the middle of its body is ``test_web_access_log.py``."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from . import browser
from .conftest import console_section, csrf_of

FORM = "application/x-www-form-urlencoded"


def malformed_requests(client: httpx.Client, token: str) -> dict[str, Callable[[], httpx.Response]]:
    post = client.post
    return {
        "non-ASCII token": lambda: post("/login", data={"name": "olivia", "password": "x", "csrf": "é" * 43}),
        "token not UTF-8": lambda: post(
            "/login", content=b"name=olivia&password=x&csrf=\xff\xfe", headers={"content-type": FORM}
        ),
        "NUL in a field": lambda: post("/login", data={"name": "oli\x00via", "password": "x", "csrf": token}),
        "broken multipart": lambda: post(
            "/login", content=b"--xx\r\nbroken", headers={"content-type": "multipart/form-data; boundary=xx"}
        ),
        "multipart, no boundary": lambda: post(
            "/login", content=b"a=b", headers={"content-type": "multipart/form-data"}
        ),
        "a file": lambda: post("/login", data={"csrf": token}, files={"name": ("n.txt", b"olivia")}),
        "oversized body": lambda: post(
            "/login",
            content=b"name=" + b"a" * 200_000 + b"&csrf=" + token.encode(),
            headers={"content-type": FORM},
        ),
        "cookie not the console's": lambda: client.get(
            "/deliveries", headers={"cookie": "dispatcher_console_session=%C3%A9;dispatcher_console=x"}
        ),
        "NUL in the query": lambda: client.get("/deliveries?request_id=%00"),
    }


def test_malformed_input_is_a_short_400_or_403_page_and_no_traceback(write_config, tmp_path):
    log = tmp_path / "console.out"
    with browser.console_process(write_config(console=console_section()), log) as base:
        with httpx.Client(base_url=base, timeout=30, follow_redirects=False) as client:
            token = csrf_of(client.get("/login").text)
            for what, send in malformed_requests(client, token).items():
                answer = send()
                assert answer.status_code in (400, 403), (what, answer.status_code, answer.text[-300:])
                assert 'id="problem"' in answer.text and len(answer.text) < 4000, what
                if what.startswith("cookie"):
                    assert (
                        answer.status_code == 400
                        and "dispatcher_console_session=" in answer.headers["set-cookie"]
                    )
            assert client.get("/login").status_code == 200  # the console still answers
    text = log.read_text()  # the console has stopped: all it wrote is here
    assert "Traceback" not in text and "Exception" not in text, text
    assert text.count("POST /login 4") == 7 and "GET /deliveries 400" in text
