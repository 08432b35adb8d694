"""``/v1/endpoints`` over the test client, on real Redis and SQLite (and the listing on
PostgreSQL): every secret masked in whatever is shown, each change made through its door and
audited under the token's name, each mistake a 4xx naming the setting, nothing written."""

from __future__ import annotations

from typing import Any

import pytest

from dispatcher import dispatch, store
from dispatcher.contract import catalogue as events
from dispatcher.ops import audit
from dispatcher.ops.endpoints import stored_endpoint
from tests.api.conftest import make_token

ORDER = events.CATALOGUE["order_changed"].example()
KEY = "pharmacy-key-never-shown-0123"
SIGNING = "whsec_" + "c2VjcmV0LXNpZ25pbmcta2V5LW5ldmVyLXNob3du"
HEADER_SECRET = "partner-account-never-shown-77"
PASSWORD = "basic-password-never-shown-42"
BEARER = "bearer-token-never-shown-31"
SECRETS = (KEY, SIGNING, HEADER_SECRET, PASSWORD, BEARER)
ENDPOINTS = [
    {
        "name": "pharmacy",
        "url": "http://127.0.0.1:9/hook",
        "key": KEY,
        "signing_secret": SIGNING,
        "headers": {"X-Partner-Account": HEADER_SECRET, "X-Region": "north"},
        "events": ["order_changed"],
    },
    {
        "name": "lab",
        "url": "http://127.0.0.1:9/lab",
        "auth": {"basic": {"username": "lab", "password": PASSWORD}},
    },
]


@pytest.fixture
def api(make_api) -> Any:
    return make_api(endpoints=ENDPOINTS)


def actions(runtime: Any) -> list[Any]:
    """The audit rows of what the test did (the tokens' creation left out)."""
    return [e for e in audit.entries(runtime.engine) if e.action != "api tokens create"]


def no_secret_in(answer: Any) -> Any:
    for secret in SECRETS:
        assert secret not in answer.text, f"a secret in the answer to {answer.request.url}"
    return answer


def entries(api: Any) -> list[tuple[str, str, str | None]]:
    return [(e.actor, e.action, e.selection.get("via")) for e in actions(api.runtime)]


def test_the_list_shows_each_endpoint_and_its_state_with_no_secret(api) -> None:
    answer = no_secret_in(api.call("GET", "/v1/endpoints"))
    assert answer.status_code == 200, answer.text
    rows = {row["name"]: row for row in answer.json()["endpoints"]}
    assert set(rows) == {"pharmacy", "lab"}
    assert rows["pharmacy"]["disabled"] is False and rows["pharmacy"]["events"] == ["order_changed"]


def test_the_list_on_postgresql(make_api, pg_url) -> None:
    api = make_api(endpoints=ENDPOINTS, database_url=pg_url)
    api.call("POST", "/v1/endpoints/lab/disable", json={"reason": "maintenance"})
    rows = {row["name"]: row for row in no_secret_in(api.call("GET", "/v1/endpoints")).json()["endpoints"]}
    assert rows["lab"]["disabled"] is True and rows["lab"]["reason"] == "maintenance"
    assert rows["lab"]["disabled_at"].endswith("Z")


def test_one_endpoint_is_shown_with_every_secret_masked(api) -> None:
    answer = no_secret_in(api.call("GET", "/v1/endpoints/pharmacy"))
    assert answer.status_code == 200, answer.text
    view = answer.json()
    assert view["name"] == "pharmacy" and view["settings"]["key"] == "****"
    assert view["settings"]["headers"] == {"X-Partner-Account": "****", "X-Region": "****"}
    assert view["pending"] == 0 and view["paused"] is False
    missing = api.call("GET", "/v1/endpoints/nobody")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


def test_reading_needs_read_and_changing_needs_operate(api) -> None:
    assert api.call("GET", "/v1/endpoints", token=None).status_code == 401
    sender = make_token(api.runtime, "sender", ("send",))
    reader = make_token(api.runtime, "reader", ("read",))
    assert api.call("GET", "/v1/endpoints", token=sender).status_code == 403
    assert api.call("GET", "/v1/endpoints/pharmacy", token=reader).status_code == 200
    for method, path in (
        ("POST", "/v1/endpoints"),
        ("PATCH", "/v1/endpoints/pharmacy"),
        ("DELETE", "/v1/endpoints/pharmacy"),
        ("POST", "/v1/endpoints/pharmacy/pause"),
    ):
        assert api.call(method, path, token=reader, json={}).status_code == 403
    assert entries(api) == []


def test_adding_an_endpoint_stores_it_audited_under_the_token(api) -> None:
    body = {
        "name": "clinic",
        "url": "http://127.0.0.1:9/clinic?token=clinic-token-never-shown",
        "key": "clinic-key-never-shown",
        "auth": {"bearer": BEARER},
        "max_attempts": 3,
    }
    answer = api.call("POST", "/v1/endpoints", json=body)
    assert answer.status_code == 201, answer.text
    assert answer.headers["location"] == "/v1/endpoints/clinic"
    assert "clinic-key-never-shown" not in answer.text and "clinic-token-never-shown" not in answer.text
    no_secret_in(answer)
    no_secret_in(api.call("GET", "/v1/endpoints"))
    assert answer.json()["settings"]["max_attempts"] == 3 and answer.json()["settings"]["key"] == "****"
    assert entries(api) == [("test-all", "endpoints add", "api")]
    assert api.call("GET", "/v1/endpoints/clinic").status_code == 200


def test_adding_a_name_in_use_is_a_409_and_a_bad_setting_a_422_naming_it(api) -> None:
    taken = api.call("POST", "/v1/endpoints", json={"name": "lab", "url": "http://127.0.0.1:9/x"})
    assert taken.status_code == 409 and "'lab'" in taken.json()["detail"]
    bad = api.call(
        "POST", "/v1/endpoints", json={"name": "x", "url": "http://127.0.0.1:9/x", "max_attempts": "many"}
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "max_attempts"
    event = api.call(
        "POST", "/v1/endpoints", json={"name": "x", "url": "http://127.0.0.1:9/x", "events": ["nope"]}
    )
    assert event.status_code == 422 and event.json()["errors"][0]["field"].startswith("events")
    for name in (None, "", "a/b", "nul\u0000", 5):
        nameless = api.call("POST", "/v1/endpoints", json={"name": name, "url": "http://127.0.0.1:9/x"})
        assert nameless.status_code == 422 and nameless.json()["errors"][0]["field"] == "name"
    masked = api.call(
        "POST", "/v1/endpoints", json={"name": "x", "url": "http://127.0.0.1:9/x", "key": "****"}
    )
    assert masked.status_code == 422 and masked.json()["errors"][0]["field"] == "key"
    deep: dict[str, Any] = {}
    for _ in range(40):
        deep = {"a": deep}
    assert api.call("POST", "/v1/endpoints", json={"name": "x", "headers": deep}).status_code == 422
    assert entries(api) == []


def test_a_merge_patch_changes_what_it_names_and_keeps_the_rest(api) -> None:
    patch = {"max_attempts": 2, "headers": {"X-Region": None, "X-Clinic": "7"}, "events": None}
    answer = no_secret_in(api.call("PATCH", "/v1/endpoints/pharmacy", json=patch))
    assert answer.status_code == 200, answer.text
    stored = stored_endpoint(api.runtime, "pharmacy").definition
    assert stored["headers"] == {"X-Partner-Account": HEADER_SECRET, "X-Clinic": "7"}
    assert stored["max_attempts"] == 2 and "events" not in stored and stored["key"] == KEY
    assert answer.json()["settings"]["events"] == ["*"]
    [(actor, action, via)] = entries(api)
    assert (actor, action, via) == ("test-all", "endpoints edit", "api")
    settings = actions(api.runtime)[0].selection["settings"]
    assert set(settings) == {"max_attempts", "headers", "events"}


def test_a_patch_that_changes_nothing_writes_nothing(api) -> None:
    answer = api.call(
        "PATCH",
        "/v1/endpoints/pharmacy",
        json={"proxy": None, "events": ["order_changed"]},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert answer.status_code == 200, answer.text
    assert entries(api) == []


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"name": "renamed"}, "name"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"key": "****"}, "key"),
        ({"headers.X-Region": "south"}, "headers.X-Region"),
    ],
)
def test_a_bad_patch_is_a_422_naming_the_setting(api, patch: dict, field: str) -> None:
    answer = api.call("PATCH", "/v1/endpoints/pharmacy", json=patch)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == field
    assert stored_endpoint(api.runtime, "pharmacy").definition["key"] == KEY
    assert entries(api) == []


def test_patching_an_unknown_endpoint_is_a_404(api) -> None:
    assert api.call("PATCH", "/v1/endpoints/nobody", json={"max_attempts": 2}).status_code == 404


def test_removing_waits_for_pending_deliveries_unless_forced(api) -> None:
    dispatch("order_changed", ORDER, endpoints=["pharmacy"])
    dispatch("order_changed", ORDER, endpoints=["pharmacy"])
    busy = api.call("DELETE", "/v1/endpoints/pharmacy")
    assert busy.status_code == 409 and "2 pending deliveries" in busy.json()["detail"]
    assert "force=true" in busy.json()["detail"]
    bad = api.call("DELETE", "/v1/endpoints/pharmacy?force=yes")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "force"
    assert entries(api) == []
    done = api.call("DELETE", "/v1/endpoints/pharmacy?force=true")
    assert done.status_code == 200, done.text
    assert done.json() == {"name": "pharmacy", "removed": True, "failed": 2}
    assert entries(api) == [("test-all", "endpoints remove", "api")]
    assert api.call("GET", "/v1/endpoints/pharmacy").status_code == 404
    assert api.call("DELETE", "/v1/endpoints/pharmacy").status_code == 404


def test_disable_then_enable_resending_what_was_held_back(api) -> None:
    answer = api.call("POST", "/v1/endpoints/pharmacy/disable", json={"reason": "partner down"})
    assert answer.status_code == 200 and answer.json() == {
        "name": "pharmacy",
        "disabled": True,
        "changed": True,
    }
    (held,) = dispatch("order_changed", ORDER, endpoints=["pharmacy"])
    assert store.get_delivery(api.runtime.engine, held)["status"] == "failed"
    enabled = api.call("POST", "/v1/endpoints/pharmacy/enable", json={"resend_held_back": True})
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["held_back"] == 1 and enabled.json()["requeued"] == 1
    assert store.get_delivery(api.runtime.engine, held)["status"] == "queued"
    assert entries(api) == [
        ("test-all", "endpoints disable", "api"),
        ("test-all", "endpoints enable", "api"),
    ]


def test_pause_and_resume(api) -> None:
    paused = api.call("POST", "/v1/endpoints/lab/pause")
    assert paused.status_code == 200 and paused.json() == {"name": "lab", "paused": True, "changed": True}
    assert api.call("GET", "/v1/endpoints/lab").json()["paused"] is True
    resumed = api.call("POST", "/v1/endpoints/lab/resume", json={})
    assert resumed.json() == {"name": "lab", "paused": False, "changed": True, "woken": 0}
    assert [a for _, a, _ in entries(api)] == ["endpoints pause", "endpoints resume"]


def test_rotating_the_key_never_shows_it(api) -> None:
    answer = api.call("POST", "/v1/endpoints/pharmacy/rotate-key", json={"key": "the-new-key-never-shown-9"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["key_rotated"] is True and "the-new-key-never-shown-9" not in answer.text
    assert stored_endpoint(api.runtime, "pharmacy").definition["key"] == "the-new-key-never-shown-9"
    missing = api.call("POST", "/v1/endpoints/pharmacy/rotate-key", json={})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "key"
    same = api.call("POST", "/v1/endpoints/pharmacy/rotate-key", json={"key": "the-new-key-never-shown-9"})
    assert same.status_code == 422 and same.json()["errors"][0]["field"] == "key"
    assert entries(api) == [("test-all", "endpoints rotate-key", "api")]


def test_rotating_the_signing_secret_shows_the_new_one_once(api) -> None:
    answer = api.call("POST", "/v1/endpoints/pharmacy/rotate-secret", json={"grace_seconds": 3600})
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    done = answer.json()
    assert done["secret"].startswith("whsec_") and done["retiring_until"].endswith("Z")
    assert done["secret"] == stored_endpoint(api.runtime, "pharmacy").definition["signing_secret"]
    assert done["secret"] not in api.call("GET", "/v1/endpoints/pharmacy").text
    assert done["secret"] not in str(actions(api.runtime)[0].as_dict())
    for grace in (-1, "1h", True, 10**12):
        bad = api.call("POST", "/v1/endpoints/pharmacy/rotate-secret", json={"grace_seconds": grace})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "grace_seconds"


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/endpoints/pharmacy/explode", {}, 404),
        ("/v1/endpoints/nobody/pause", {}, 404),
        ("/v1/endpoints/nobody/disable", {}, 404),
        ("/v1/endpoints/pharmacy/pause", {"now": True}, 422),
        ("/v1/endpoints/pharmacy/disable", {"reason": 5}, 422),
        ("/v1/endpoints/pharmacy/enable", {"resend_held_back": "yes"}, 422),
        ("/v1/endpoints/pharmacy/pause", [], 400),
    ],
)
def test_a_bad_action_is_refused_with_nothing_done(api, path: str, body: Any, status: int) -> None:
    answer = api.call("POST", path, json=body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert entries(api) == []


def test_a_dotted_setting_name_on_create_is_422(api: Any) -> None:
    response = api.call(
        "POST", "/v1/endpoints", json={"name": "dotted", "url": "http://127.0.0.1:9/x", "breaker.open_for": 5}
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "breaker.open_for", "detail": "a setting's name has no '.': nest it as an object"}
    ]
