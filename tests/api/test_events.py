"""POST /v1/events and /v1/events/batch over real Redis and a real database: accepted events
are stored and queued, every mistake is a problem naming the field by its path, and nothing is
stored when one is refused."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import redis

from dispatcher import store

from .conftest import Api, example, make_token, stored

QUEUE_KEY = "rq:queue:send-webhook-request"
ENDPOINTS = [
    {"name": "partner-a", "url": "http://127.0.0.1:9/a", "events": ["*"], "key": "partner-a-key-9f2"},
    {"name": "partner-b", "url": "http://127.0.0.1:9/b", "events": ["order_changed"]},
]


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api(endpoints=ENDPOINTS)


def test_an_event_is_accepted_stored_and_queued(api: Api, redis_client: redis.Redis) -> None:
    response = api.call("POST", "/v1/events", json={"event": "order_changed", "data": example()})
    assert response.status_code == 202
    deliveries = response.json()["deliveries"]
    assert [d["endpoint"] for d in deliveries] == ["partner-a", "partner-b"]
    queued = sorted(j.decode() for j in redis_client.lrange(QUEUE_KEY, 0, -1))
    assert queued == sorted(d["request_id"] for d in deliveries)
    row = store.get_delivery(api.runtime.engine, deliveries[0]["request_id"])
    assert row is not None and json.loads(row["payload"])["metadata"]["dispatched_by"] == "SYSTEM"


def test_the_optional_fields_reach_the_payload_and_choose_the_endpoints(api: Api) -> None:
    response = api.call(
        "POST",
        "/v1/events",
        json={
            "event": "order_changed",
            "data": example(),
            "dispatched_by": "dr.who",
            "endpoints": ["partner-b"],
        },
    )
    assert response.status_code == 202
    (only,) = response.json()["deliveries"]
    assert only["endpoint"] == "partner-b"
    row = store.get_delivery(api.runtime.engine, only["request_id"])
    assert row is not None and json.loads(row["payload"])["metadata"]["dispatched_by"] == "dr.who"


def test_invalid_data_names_every_field_with_dispatch_messages(api: Api) -> None:
    data = example()
    data["order_number"] = 5
    del data["status"]
    response = api.call("POST", "/v1/events", json={"event": "order_changed", "data": data, "extra": 1})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422 and problem["title"] == "Unprocessable Content"
    assert {
        "field": "extra",
        "detail": "unknown field; expected event, data, dispatched_by, endpoints, ordering_key",
    } in problem["errors"]
    # the shape is checked first; the data once the shape is right
    response = api.call("POST", "/v1/events", json={"event": "order_changed", "data": data})
    errors = response.json()["errors"]
    assert {"field": "data.order_number", "detail": "expected a string, got int 5"} in errors
    assert {"field": "data.status", "detail": "required field is missing"} in errors
    assert stored(api.runtime) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event": "no_such_event", "data": {}}, "event"),
        ({"event": "order_changed", "data": example(), "endpoints": ["nobody"]}, "endpoints"),
        ({"event": "order_changed", "data": example(), "endpoints": "partner-a"}, "endpoints"),
        ({"event": "order_changed", "data": example(), "endpoints": [1]}, "endpoints[0]"),
        ({"event": "order_changed", "data": example(), "ordering_key": 7}, "ordering_key"),
        ({"event": "order_changed", "data": example(), "dispatched_by": ""}, "dispatched_by"),
        ({"event": 3, "data": example()}, "event"),
        ({"data": example()}, "event"),
        ({"event": "order_changed"}, "data"),
        ({"event": "order_changed", "data": []}, "data"),
    ],
)
def test_each_bad_field_is_a_422_naming_it(api: Api, body: dict, field: str) -> None:
    response = api.call("POST", "/v1/events", json=body)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert stored(api.runtime) == 0


def test_a_batch_is_all_or_nothing_and_names_the_item(api: Api) -> None:
    bad = example()
    bad["order_number"] = 5
    items = [{"event": "order_changed", "data": example()} for _ in range(3)]
    items.append({"event": "order_changed", "data": bad})
    response = api.call("POST", "/v1/events/batch", json={"events": items})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "events[3].data.order_number", "detail": "expected a string, got int 5"}
    ]
    assert response.json()["detail"] == "events[3].data.order_number: expected a string, got int 5"
    assert stored(api.runtime) == 0
    items[3] = {"event": "encounter_cancelled", "data": example("encounter_cancelled")}
    response = api.call("POST", "/v1/events/batch", json={"events": items})
    assert response.status_code == 202
    answers = response.json()["events"]
    assert [len(a["deliveries"]) for a in answers] == [2, 2, 2, 1]
    assert stored(api.runtime) == 7


@pytest.mark.parametrize("events", [[], "x", None])
def test_a_batch_must_hold_events(api: Api, events: object) -> None:
    response = api.call("POST", "/v1/events/batch", json={"events": events})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "events"


def test_a_batch_over_1000_events_is_refused(api: Api) -> None:
    items = [{"event": "order_changed", "data": example()}] * 1001
    response = api.call("POST", "/v1/events/batch", json={"events": items})
    assert response.status_code == 422
    assert "1 to 1000 events, got 1001 events" in response.json()["detail"]


def test_an_event_over_max_payload_bytes_is_413(make_api: Callable[..., Api]) -> None:
    api = make_api(endpoints=ENDPOINTS, delivery={"max_payload_bytes": 1024})
    data = example()
    data["order_number"] = "x" * 2000
    response = api.call("POST", "/v1/events", json={"event": "order_changed", "data": data})
    assert response.status_code == 413
    assert "delivery.max_payload_bytes (1024)" in response.json()["detail"]
    assert stored(api.runtime) == 0


def test_a_body_over_api_max_body_bytes_is_413_before_it_is_read(make_api: Callable[..., Api]) -> None:
    api = make_api(endpoints=ENDPOINTS, api={"max_body_bytes": 2048})
    body = json.dumps({"event": "order_changed", "data": example(), "pad": "x" * 4096})
    response = api.call("POST", "/v1/events", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "api.max_body_bytes (2048 bytes)" in response.json()["detail"]

    def chunks():  # no Content-Length: refused while streaming
        yield body[:1000].encode()
        yield body[1000:].encode()

    response = api.call("POST", "/v1/events", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("content", "status", "words"),
    [
        (b"{not json", 400, "not JSON"),
        (b"", 400, "empty"),
        (b'{"event": NaN}', 400, "NaN is not JSON"),
        (b"\xff\xfe", 400, "not UTF-8"),
        (b"[1, 2]", 400, "must be a JSON object, got array"),
        (b"[" * 100000, 400, "not JSON"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_400(api: Api, content: bytes, status: int, words: str) -> None:
    response = api.call("POST", "/v1/events", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert words in response.json()["detail"]


def test_a_body_that_says_it_is_not_json_is_415(api: Api) -> None:
    response = api.call("POST", "/v1/events", content=b"event=x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415


def test_sending_needs_a_token_with_the_send_scope(api: Api) -> None:
    body = {"event": "order_changed", "data": example()}
    response = api.call("POST", "/v1/events", token=None, json=body)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert api.call("POST", "/v1/events", token="dsp_not-a-token", json=body).status_code == 401
    reader = make_token(api.runtime, "reader", ("read",))
    response = api.call("POST", "/v1/events", token=reader, json=body)
    assert response.status_code == 403
    assert "'send'" in response.json()["detail"] and reader not in response.text
    assert stored(api.runtime) == 0
