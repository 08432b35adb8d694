"""``/v1/deliveries`` over the test client, on real Redis and SQLite (the paging on PostgreSQL
too): the log newest first by keyset, every filter checked and named when wrong, one delivery
with its payload only for ``read:payload`` (audited under the token), and the re-sends through
the doors, audited under the token's name."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from dispatcher import dispatch, store
from dispatcher.api.deliveries import read_cursor, write_cursor
from dispatcher.contract import catalogue as events
from dispatcher.ops import audit
from dispatcher.ops.door import Actor
from dispatcher.ops.endpoints import Disable
from dispatcher.store.records import AttemptRecord
from dispatcher.times import utcnow
from tests.api.conftest import make_token

ORDER = events.CATALOGUE["order_changed"].example()
ANSWER = "partner-answer-with-PHI-5521"
ENDPOINTS = [
    {"name": "pharmacy", "url": "http://127.0.0.1:9/hook", "key": "pharmacy-key-0123456789"},
    {"name": "lab", "url": "http://127.0.0.1:9/lab", "events": ["order_changed"]},
]


def actions(runtime: Any) -> list[Any]:
    """The audit rows of what the test did (the tokens' creation left out)."""
    return [e for e in audit.entries(runtime.engine) if e.action != "api tokens create"]


def dispatched(n: int, endpoint: str = "pharmacy") -> list[str]:
    """``n`` order_changed deliveries to ``endpoint`` (through ``dispatch()``), in dispatch order."""
    return [rid for _ in range(n) for rid in dispatch("order_changed", ORDER, endpoints=[endpoint])]


def failed_with_answer(runtime: Any, request_id: str) -> None:
    """One attempt as a worker records it: the partner answered 500 with a body; failed."""
    claim = store.claim(runtime.engine, request_id, "test-worker")
    assert claim is not None
    record = AttemptRecord(
        request_id=request_id,
        event=claim.event,
        endpoint=claim.endpoint,
        url=claim.url,
        attempt=1,
        outcome="failed",
        created_at=utcnow(),
        http_status=500,
        error="HTTP 500 Internal Server Error",
        response_body=ANSWER,
        duration_ms=12,
    )
    assert store.record_attempt(runtime.engine, record, "test-worker", "HTTP 500; attempts exhausted")


def newest_first(runtime: Any) -> list[str]:
    return [r["request_id"] for r in store.list_deliveries(runtime.engine, limit=10_000)]


def paged(api: Any, query: str = "limit=2") -> list[str]:
    """Every request id ``GET /v1/deliveries`` lists, following ``next_cursor`` to the end."""
    seen: list[str] = []
    cursor = None
    while True:
        answer = api.call("GET", f"/v1/deliveries?{query}" + (f"&cursor={cursor}" if cursor else ""))
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert len(page["deliveries"]) <= 2
        seen += [row["request_id"] for row in page["deliveries"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


def fields_named(answer: Any) -> list[str]:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    return [error["field"] for error in answer.json()["errors"]]


def test_every_delivery_is_listed_once_newest_first_a_page_at_a_time(make_api) -> None:
    api = make_api(endpoints=ENDPOINTS)
    dispatched(7)
    assert paged(api) == newest_first(api.runtime)
    assert len(set(paged(api))) == 7


def test_paging_on_postgresql(make_api, pg_url) -> None:
    api = make_api(endpoints=ENDPOINTS, database_url=pg_url)
    dispatched(5)
    dispatched(2, "lab")
    assert paged(api) == newest_first(api.runtime)
    assert len(set(paged(api))) == 7
    assert len(paged(api, "limit=2&endpoint=lab")) == 2


def test_a_row_is_json_with_utc_times(make_api) -> None:
    api = make_api(endpoints=ENDPOINTS)
    (rid,) = dispatched(1)
    [row] = api.call("GET", "/v1/deliveries").json()["deliveries"]
    assert set(row) == {*store.DELIVERY_FIELDS, "reason", "last_failure"}
    assert row["request_id"] == rid and row["status"] == "queued"
    assert row["created_at"].endswith("Z") and row["updated_at"].endswith("Z")


def test_filters_select(make_api) -> None:
    api = make_api(endpoints=ENDPOINTS)
    pharmacy = dispatched(2)
    lab = dispatched(1, "lab")
    failed_with_answer(api.runtime, pharmacy[0])

    def listed(query: str) -> set[str]:
        answer = api.call("GET", f"/v1/deliveries?{query}")
        assert answer.status_code == 200, answer.text
        return {row["request_id"] for row in answer.json()["deliveries"]}

    assert listed("endpoint=lab") == set(lab)
    assert listed("status=failed") == {pharmacy[0]}
    assert listed("status=queued&endpoint=pharmacy") == {pharmacy[1]}
    assert listed("event=order_changed") == {*pharmacy, *lab}
    assert listed("event=message_created") == set()
    assert listed("since=2h") == {*pharmacy, *lab}
    later = (utcnow() + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")  # no offset: UTC
    assert listed(f"since={later}") == set()
    assert listed(f"until={later}Z") == {*pharmacy, *lab}
    assert listed("endpoint=removed-long-ago") == set()


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("status=lost", ["status"]),
        ("event=order_shipped", ["event"]),
        ("since=yesterday", ["since"]),
        ("until=2026-13-01T00:00:00Z", ["until"]),
        ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", ["until"]),
        ("limit=0", ["limit"]),
        ("limit=501", ["limit"]),
        ("limit=ten", ["limit"]),
        ("cursor=not-a-cursor", ["cursor"]),
        ("cursor=" + "A" * 600, ["cursor"]),
        ("endpoint=%00", ["endpoint"]),
        ("colour=red&status=failed", ["colour"]),
        ("limit=2&limit=3", ["limit"]),
        ("status=", ["status"]),
    ],
)
def test_a_bad_query_is_a_422_naming_each_parameter(make_api, query: str, fields: list[str]) -> None:
    api = make_api(endpoints=ENDPOINTS)
    assert fields_named(api.call("GET", f"/v1/deliveries?{query}")) == fields


def test_a_cursor_reads_back_and_a_forged_one_is_refused() -> None:
    now = utcnow()
    assert read_cursor(write_cursor((now, "abc"))) == (now, "abc")
    for forged in (
        "W10",
        "WyJ4IiwieSJd",
        "WyIyMDI2LTAxLTAxVDAwOjAwOjAwIiwiYSJd",
    ):  # [], ["x","y"], naive time
        with pytest.raises(ValueError):
            read_cursor(forged)


def test_who_may_list(make_api) -> None:
    api = make_api(endpoints=ENDPOINTS)
    refused = api.call("GET", "/v1/deliveries", token=None)
    assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"
    sender = make_token(api.runtime, "sender", ("send",))
    forbidden = api.call("GET", "/v1/deliveries", token=sender)
    assert forbidden.status_code == 403 and "'read'" in forbidden.json()["detail"]


def test_a_delivery_shows_its_payload_only_to_read_payload_and_audits_that(make_api) -> None:
    api = make_api(endpoints=ENDPOINTS)
    (rid,) = dispatched(1)
    failed_with_answer(api.runtime, rid)
    reader = make_token(api.runtime, "reader", ("read",))

    hidden = api.call("GET", f"/v1/deliveries/{rid}", token=reader)
    assert hidden.status_code == 200, hidden.text
    document = hidden.json()
    assert document["payload_hidden"] is True and document["payload"] is None
    [attempt] = document["attempts"]
    assert attempt["http_status"] == 500 and attempt["response_body"] is None and attempt["error"] is None
    assert ANSWER not in hidden.text and ORDER["order_number"] not in hidden.text
    assert actions(api.runtime) == []

    shown = api.call("GET", f"/v1/deliveries/{rid}")
    document = shown.json()
    assert document["payload_hidden"] is False and document["payload"]["data"] == ORDER
    assert document["attempts"][0]["response_body"] == ANSWER
    assert document["created_at"].endswith("Z") and document["attempts"][0]["created_at"].endswith("Z")
    [entry] = actions(api.runtime)
    assert (entry.actor, entry.action) == ("test-all", "delivery reveal")
    assert entry.selection == {"request_id": rid, "via": "api"}


def test_an_unknown_delivery_is_a_404(make_api) -> None:
    api = make_api(endpoints=ENDPOINTS)
    for rid in ("no-such-id", "x" * 300, "bad%00id"):
        answer = api.call("GET", f"/v1/deliveries/{rid}")
        assert answer.status_code == 404 and answer.json()["status"] == 404
        assert api.call("POST", f"/v1/deliveries/{rid}/retry").status_code == 404
    assert actions(api.runtime) == []


def test_retrying_a_failed_delivery_requeues_it_audited_under_the_token(make_api) -> None:
    api = make_api(endpoints=ENDPOINTS)
    (rid,) = dispatched(1)
    failed_with_answer(api.runtime, rid)
    answer = api.call("POST", f"/v1/deliveries/{rid}/retry")
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"request_id": rid, "endpoint": "pharmacy", "result": "requeued"}
    assert store.get_delivery(api.runtime.engine, rid)["status"] == "queued"
    [entry] = actions(api.runtime)
    assert (entry.actor, entry.action, entry.selection["via"]) == ("test-all", "retry", "api")


def test_retrying_what_may_not_be_re_sent_is_a_409_saying_why(make_api) -> None:
    api = make_api(endpoints=ENDPOINTS)
    (queued,) = dispatched(1)
    answer = api.call("POST", f"/v1/deliveries/{queued}/retry")
    assert answer.status_code == 409 and "its status is queued" in answer.json()["detail"]
    (held,) = dispatched(1)
    failed_with_answer(api.runtime, held)
    Disable("pharmacy").carry_out(api.runtime, Actor("someone"))
    answer = api.call("POST", f"/v1/deliveries/{held}/retry")
    assert answer.status_code == 409 and "pharmacy is disabled" in answer.json()["detail"]
    assert [e.action for e in actions(api.runtime)] == ["endpoints disable"]


def test_retry_needs_operate_and_takes_no_fields(make_api) -> None:
    api = make_api(endpoints=ENDPOINTS)
    (rid,) = dispatched(1)
    reader = make_token(api.runtime, "reader", ("read", "read:payload"))
    assert api.call("POST", f"/v1/deliveries/{rid}/retry", token=reader).status_code == 403
    assert api.call("POST", f"/v1/deliveries/{rid}/retry", token=None).status_code == 401
    assert fields_named(api.call("POST", f"/v1/deliveries/{rid}/retry", json={"force": True})) == ["force"]


def test_retry_failed_counts_with_dry_run_then_requeues(make_api) -> None:
    api = make_api(endpoints=ENDPOINTS)
    pharmacy = dispatched(3)
    (lab,) = dispatched(1, "lab")
    for rid in (*pharmacy[:2], lab):
        failed_with_answer(api.runtime, rid)

    dry = api.call("POST", "/v1/deliveries/retry", json={"endpoint": "pharmacy", "dry_run": True})
    assert dry.status_code == 200, dry.text
    assert dry.json()["matched"] == 2 and dry.json()["requeued"] == 0 and dry.json()["dry_run"] is True
    assert sorted(dry.json()["request_ids"]) == sorted(pharmacy[:2])
    assert actions(api.runtime) == []

    done = api.call("POST", "/v1/deliveries/retry", json={"endpoint": "pharmacy", "since": "1h"})
    assert done.json()["matched"] == 2 and done.json()["requeued"] == 2 and done.json()["dry_run"] is False
    assert store.get_delivery(api.runtime.engine, lab)["status"] == "failed"
    [entry] = actions(api.runtime)
    assert entry.actor == "test-all" and entry.selection["via"] == "api"
    assert entry.selection["endpoint"] == "pharmacy" and entry.counts["requeued"] == 2

    nothing = api.call("POST", "/v1/deliveries/retry", json={"endpoint": "pharmacy"})
    assert nothing.status_code == 200 and nothing.json()["matched"] == 0
    assert len(actions(api.runtime)) == 1


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"dry_run": "yes"}, ["dry_run"]),
        ({"event": "order_shipped"}, ["event"]),
        ({"endpoint": 5}, ["endpoint"]),
        ({"since": 5}, ["since"]),
        ({"since": "soon"}, ["since"]),
        ({"status": "failed"}, ["status"]),
    ],
)
def test_a_bad_retry_body_is_a_422_naming_each_field(make_api, body: dict, fields: list[str]) -> None:
    api = make_api(endpoints=ENDPOINTS)
    assert fields_named(api.call("POST", "/v1/deliveries/retry", json=body)) == fields
