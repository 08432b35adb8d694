"""Sessions kept on the server (issue 21 #1): the cookie holds a random id, and signing out, the
hours running out, or the user's removal, new role or new password hash end the session at
once, for whoever holds a copy of the cookie; Redis out of reach is a 503 page."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from dispatcher.console.app import create_app

from . import browser
from .conftest import console_section, csrf_of, endpoints, password_hashes, sign_in

SESSION_KEYS = "dispatcher:console:session:*"


def session_cookie(client: TestClient) -> dict[str, str]:
    return {
        name: value
        for name, value in client.cookies.items()
        if "session" in name or name == "dispatcher_console"
    }


def test_a_copied_session_cookie_opens_nothing_after_sign_out(client_for):
    victor = client_for("victor")
    copied = dict(victor.cookies.items())
    page = victor.get("/deliveries")
    assert page.status_code == 200
    out = victor.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    thief = client_for(cookies=copied)
    answer = thief.get("/deliveries", follow_redirects=False)
    assert (answer.status_code, answer.headers.get("location")) == (303, "/login")


def test_the_cookie_holds_a_random_id_and_redis_the_session(client_for, redis_client):
    victor = client_for("victor")
    (value,) = session_cookie(victor).values()
    assert len(value) == 43 and "victor" not in value
    (key,) = redis_client.keys(SESSION_KEYS)
    assert value.encode() not in key  # the key is a hash of the id, never the id
    stored = redis_client.hgetall(key)
    assert stored[b"user"] == b"victor" and stored[b"role"] == b"viewer"
    assert password_hashes()["victor"].encode() not in b"".join(stored.values())
    assert 0 < redis_client.ttl(key) <= 8 * 3600


@pytest.mark.parametrize("change", ["removed", "new role", "new password_hash"])
def test_a_session_ends_when_its_user_changes_in_the_config(console_runtime, redis_client, change):
    hashes = password_hashes()
    first = TestClient(create_app(console_runtime()))
    assert sign_in(first, "victor").status_code == 303
    cookies = dict(first.cookies.items())
    users = [{"name": "olivia", "password_hash": hashes["olivia"], "role": "operator"}]
    victor = {"name": "victor", "password_hash": hashes["victor"], "role": "viewer"}
    if change == "new role":
        users.append({**victor, "role": "operator"})
    elif change == "new password_hash":
        users.append({**victor, "password_hash": hashes["olivia"]})
    unchanged = TestClient(create_app(console_runtime()), cookies=cookies)
    assert unchanged.get("/deliveries").status_code == 200  # a restart keeps it
    after = TestClient(create_app(console_runtime(users=users)), cookies=cookies)
    answer = after.get("/deliveries", follow_redirects=False)
    assert (answer.status_code, answer.headers.get("location")) == (303, "/login")
    assert redis_client.keys(SESSION_KEYS) == []
    assert unchanged.get("/deliveries", follow_redirects=False).status_code == 303  # for every copy


def test_a_session_ends_session_hours_after_sign_in(client_for, redis_client):
    victor = client_for("victor")
    assert victor.get("/deliveries").status_code == 200
    (key,) = redis_client.keys(SESSION_KEYS)
    redis_client.hset(key, "since", repr(time.time() - 8 * 3600 - 1))  # signed in 8 h and 1 s ago
    answer = victor.get("/deliveries", follow_redirects=False)
    assert (answer.status_code, answer.headers.get("location")) == (303, "/login")
    assert redis_client.keys(SESSION_KEYS) == []


def test_redis_out_of_reach_is_a_503_page_not_a_sign_in(console_runtime, make_runtime):
    runtime = console_runtime()
    away = make_runtime(
        endpoints=endpoints(),
        console=console_section(),
        redis_url=f"redis://127.0.0.1:{browser.free_port()}/0",
    )
    signed_in = TestClient(create_app(runtime))
    assert sign_in(signed_in, "olivia").status_code == 303
    client = TestClient(create_app(away), cookies=dict(signed_in.cookies.items()))
    page = client.get("/deliveries", follow_redirects=False)
    assert page.status_code == 503 and "cannot reach Redis" in page.text
    assert client.get("/login").status_code == 503  # it cannot tell whether the cookie still holds
    stranger = TestClient(create_app(away))
    login = stranger.get("/login")
    attempt = stranger.post(
        "/login",
        data={"name": "olivia", "password": "operator-pass-1", "csrf": csrf_of(login.text)},
        follow_redirects=False,
    )
    assert attempt.status_code == 503 and "cannot reach Redis" in attempt.text


def test_a_stored_session_holds_while_young_and_its_user_unchanged():
    from dataclasses import replace

    from dispatcher.config.console_settings import Concealed, ConsoleSettings, ConsoleUser
    from dispatcher.console.sessions import fingerprint, valid

    ann = ConsoleUser("ann", Concealed("$argon2id$v=19$m=1,t=1,p=1$salt$hash"), "operator")
    console = ConsoleSettings(users=(ann,), session_hours=2)
    record = {
        b"user": b"ann",
        b"role": b"operator",
        b"since": b"1000.0",
        b"csrf": b"t" * 43,
        b"password": fingerprint(ann.password_hash.reveal()).encode(),
    }
    assert ann.password_hash.reveal() not in record[b"password"].decode()
    assert valid(record, console, 1000 + 7199)
    assert not valid(record, console, 1000 + 7200)  # session_hours ran out
    assert not valid(record, ConsoleSettings(users=(), session_hours=2), 1001)  # removed
    assert not valid(record, replace(console, users=(replace(ann, role="viewer"),)), 1001)
    new_hash = replace(ann, password_hash=Concealed("$argon2id$v=19$m=1,t=1,p=1$salt$other"))
    assert not valid(record, replace(console, users=(new_hash,)), 1001)
    assert not valid({**record, b"since": b"soon"}, console, 1001)
