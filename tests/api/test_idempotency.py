"""The Idempotency-Key header over real Redis and a real database: a repeat gets the first
answer and stores nothing, another body with the key is 422, a key still being processed is
409, and a failed request leaves its key free."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import redis

from dispatcher.api import idempotency

from .conftest import Api, example, stored

ENDPOINTS = [
    {"name": "partner-a", "url": "http://127.0.0.1:9/a", "events": ["*"]},
    {"name": "partner-b", "url": "http://127.0.0.1:9/b", "events": ["order_changed"]},
]


@pytest.fixture
def api(make_api: Callable[..., Api], database_url: str) -> Api:
    return make_api(endpoints=ENDPOINTS, database_url=database_url)


def post(api: Api, path: str, body: dict, key: str | None = "key-1") -> object:
    headers = {idempotency.HEADER: key} if key else {}
    return api.call("POST", path, json=body, headers=headers)


def test_a_repeat_gets_the_first_answer_and_stores_nothing(api: Api) -> None:
    body = {"event": "order_changed", "data": example()}
    first = post(api, "/v1/events", body)
    again = post(api, "/v1/events", body)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert idempotency.REPLAYED.lower() not in first.headers
    assert again.headers[idempotency.REPLAYED] == "true"
    assert stored(api.runtime) == 2


def test_the_same_key_with_another_body_is_422(api: Api) -> None:
    post(api, "/v1/events", {"event": "order_changed", "data": example()})
    changed = example()
    changed["order_number"] = "ORD-2"
    response = post(api, "/v1/events", {"event": "order_changed", "data": changed})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "Idempotency-Key", "detail": "used for a different request body"}
    ]
    assert stored(api.runtime) == 2


def test_the_log_still_refuses_another_body_when_redis_forgot_the_mark(
    api: Api, redis_client: redis.Redis
) -> None:
    post(api, "/v1/events", {"event": "order_changed", "data": example()})
    for key in redis_client.scan_iter(idempotency.MARK_PREFIX + "*"):
        redis_client.delete(key)
    changed = example()
    changed["order_number"] = "ORD-3"
    response = post(api, "/v1/events", {"event": "order_changed", "data": changed})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert stored(api.runtime) == 2


def test_a_batch_repeat_is_replayed_and_a_changed_batch_is_422(api: Api) -> None:
    items = [
        {"event": "order_changed", "data": example()},
        {"event": "encounter_cancelled", "data": example("encounter_cancelled")},
    ]
    first = post(api, "/v1/events/batch", {"events": items}, key="batch-1")
    again = post(api, "/v1/events/batch", {"events": items}, key="batch-1")
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers[idempotency.REPLAYED] == "true"
    shorter = post(api, "/v1/events/batch", {"events": items[:1]}, key="batch-1")
    assert shorter.status_code == 422
    assert stored(api.runtime) == 3


def test_a_key_still_being_processed_is_409(api: Api) -> None:
    body = {"event": "order_changed", "data": example()}
    # the first request holds its mark, as it does while it is stored and queued
    client, keyring = api.runtime.redis, api.runtime.keyring
    mark = idempotency.begin(client, keyring, "key-busy", idempotency.digest("event", body))
    response = post(api, "/v1/events", body, key="key-busy")
    assert response.status_code == 409
    assert response.headers["retry-after"] == "1"
    changed = {"event": "order_changed", "data": {**example(), "order_number": "ORD-9"}}
    assert post(api, "/v1/events", changed, key="key-busy").status_code == 422
    idempotency.finish(client, mark, api.runtime.settings.idempotency_ttl_seconds, None)
    assert post(api, "/v1/events", body, key="key-busy").status_code == 202


def test_a_refused_request_leaves_its_key_free(api: Api) -> None:
    bad = example()
    bad["order_number"] = 5
    assert post(api, "/v1/events", {"event": "order_changed", "data": bad}, key="key-2").status_code == 422
    response = post(api, "/v1/events", {"event": "order_changed", "data": example()}, key="key-2")
    assert response.status_code == 202
    assert idempotency.REPLAYED.lower() not in response.headers


def test_an_event_no_endpoint_takes_is_replayed_too(make_api: Callable[..., Api]) -> None:
    api = make_api(
        endpoints=[{"name": "partner-b", "url": "http://127.0.0.1:9/b", "events": ["order_changed"]}]
    )
    body = {"event": "encounter_cancelled", "data": example("encounter_cancelled")}
    assert post(api, "/v1/events", body).json() == {"deliveries": []}
    again = post(api, "/v1/events", body)
    assert again.json() == {"deliveries": []}
    assert again.headers[idempotency.REPLAYED] == "true"


@pytest.mark.parametrize("key", ["", "x" * 251, "tab\there"])
def test_an_unusable_key_is_422_naming_the_header(api: Api, key: str) -> None:
    response = api.call(
        "POST",
        "/v1/events",
        json={"event": "order_changed", "data": example()},
        headers={idempotency.HEADER: key},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"


def test_the_key_is_kept_only_as_a_keyed_hash(api: Api, redis_client: redis.Redis) -> None:
    post(api, "/v1/events", {"event": "order_changed", "data": example()}, key="patient-Jane-Doe-42")
    dumped = b"".join(
        k + (redis_client.get(k) or b"") for k in redis_client.scan_iter(idempotency.MARK_PREFIX + "*")
    )
    assert dumped and b"Jane" not in dumped


def test_a_replay_is_the_first_answer_even_after_the_endpoints_changed(api: Api) -> None:
    body = {"event": "encounter_cancelled", "data": example("encounter_cancelled")}
    first = post(api, "/v1/events", body, key="before-change")
    assert [d["endpoint"] for d in first.json()["deliveries"]] == ["partner-a"]
    subscribed = api.call("PATCH", "/v1/endpoints/partner-b", json={"events": ["*"]})
    assert subscribed.status_code == 200
    again = post(api, "/v1/events", body, key="before-change")
    assert again.json() == first.json()
    assert again.headers[idempotency.REPLAYED] == "true"
    assert stored(api.runtime) == 1  # nothing new for partner-b


def test_a_body_with_a_lone_surrogate_and_a_key_is_422_not_500(api: Api) -> None:
    data = example()
    data["order_number"] = "ORD-\ud800"
    raw = json.dumps({"event": "order_changed", "data": data})  # ASCII, with the escape
    response = api.call(
        "POST",
        "/v1/events",
        content=raw,
        headers={idempotency.HEADER: "k-s", "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "data.order_number"
