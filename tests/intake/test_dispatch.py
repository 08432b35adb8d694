"""dispatch() on real Redis and a real database: what is stored, what is queued, what is refused,
and what happens when Redis or the database is down (then reconcile)."""

from __future__ import annotations

import copy
import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq.job import Job

from dispatcher import (
    CATALOGUE,
    InvalidEventData,
    PayloadTooLarge,
    StoreUnavailable,
    UnknownEndpoint,
    UnknownEvent,
    dispatch,
    dispatch_many,
    store,
)
from dispatcher.reconcile import reconcile
from dispatcher.runtime import Runtime, set_runtime

QUEUE = "send-webhook-request"
QUEUE_KEY = f"rq:queue:{QUEUE}"
SECRET = "s3cret-partner-a-key"
DEAD_REDIS = "redis://127.0.0.1:1/0"
DEAD_PG = "postgresql+psycopg://postgres@127.0.0.1:1/test"

ENDPOINTS = [
    {
        "name": "partner-a",
        "url": "http://127.0.0.1:9/a",
        "key": SECRET,
        "events": ["*"],
        "include_key_in_body": True,
    },
    {"name": "partner-b", "url": "http://127.0.0.1:9/b", "events": ["order_changed", "encounter_cancelled"]},
    {"name": "partner-c", "url": "http://127.0.0.1:9/c", "events": ["prescription_submitted"]},
]


def example(event: str) -> dict:
    return copy.deepcopy(CATALOGUE[event].example())


def queued_job_ids(client: redis.Redis) -> list[str]:
    return [j.decode() for j in client.lrange(QUEUE_KEY, 0, -1)]


def job_keys(client: redis.Redis) -> list[bytes]:
    return list(client.scan_iter("rq:job:*"))


def log_text(runtime: Runtime) -> str:
    return Path(runtime.settings.process_log).read_text()


def is_uuid4(value: str) -> bool:
    parsed = uuid.UUID(value)
    return parsed.version == 4 and str(parsed) == value


# --- targets ---------------------------------------------------------------------------------


def test_one_uuid4_per_subscribed_endpoint(make_runtime, redis_client) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS)

    ids = dispatch("prescription_submitted", example("prescription_submitted"))

    assert len(ids) == 2
    assert all(is_uuid4(i) for i in ids)
    assert len(set(ids)) == 2
    endpoints = {store.get_delivery(runtime.engine, i)["endpoint"] for i in ids}
    assert endpoints == {"partner-a", "partner-c"}  # partner-b's list excludes the event
    assert sorted(queued_job_ids(redis_client)) == sorted(ids)

    order_ids = dispatch("order_changed", example("order_changed"))
    assert {store.get_delivery(runtime.engine, i)["endpoint"] for i in order_ids} == {
        "partner-a",
        "partner-b",
    }
    assert len(store.list_deliveries(runtime.engine)) == 4


def test_no_subscriber_returns_empty_list(make_runtime, redis_client) -> None:
    runtime = make_runtime(endpoints=[ENDPOINTS[1]])
    assert dispatch("message_created", example("message_created")) == []
    assert store.list_deliveries(runtime.engine) == []
    assert queued_job_ids(redis_client) == []

    make_runtime(endpoints=[])
    assert dispatch("order_changed", example("order_changed")) == []


def test_endpoints_argument_targets_one_endpoint(make_runtime, redis_client) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS)
    ids = dispatch("prescription_submitted", example("prescription_submitted"), endpoints=["partner-c"])
    assert len(ids) == 1
    assert store.get_delivery(runtime.engine, ids[0])["endpoint"] == "partner-c"
    assert queued_job_ids(redis_client) == ids


def test_unknown_endpoint_raises_and_stores_nothing(make_runtime, redis_client) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS)
    with pytest.raises(UnknownEndpoint, match="partner-z"):
        dispatch("order_changed", example("order_changed"), endpoints=["partner-a", "partner-z"])
    assert store.list_deliveries(runtime.engine) == []
    assert queued_job_ids(redis_client) == []
    assert job_keys(redis_client) == []


# --- what is stored and queued ---------------------------------------------------------------


def test_delivery_stored_queued_and_job_in_redis(make_runtime, redis_client, database_url: str) -> None:
    runtime = make_runtime(database_url=database_url, endpoints=[ENDPOINTS[0]])
    before = datetime.now(UTC).replace(microsecond=0)

    (request_id,) = dispatch("order_changed", example("order_changed"), dispatched_by="ops@baremeds")

    after = datetime.now(UTC)
    row = store.get_delivery(runtime.engine, request_id)
    assert row["status"] == store.QUEUED
    assert row["attempts"] == 0
    assert row["event"] == "order_changed"
    assert row["endpoint"] == "partner-a"
    assert row["url"] == "http://127.0.0.1:9/a"
    assert row["attempt_limit"] == 5
    assert before <= row["created_at"] <= after
    body = json.loads(row["payload"])
    assert list(body) == ["event", "timestamp", "data", "metadata"]
    assert body["event"] == "order_changed"
    assert body["data"] == example("order_changed")
    stamp = datetime.strptime(body["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= stamp <= after
    # include_key_in_body is true for partner-a, yet the stored body never carries the key.
    assert body["metadata"] == {
        "source": "Baremeds",
        "environment": "test",
        "webhook_version": "v1.0",
        "request_id": request_id,
        "dispatched_by": "ops@baremeds",
        "retry": False,
    }
    assert "webhook_key" not in row["payload"]
    assert SECRET not in row["payload"]

    assert queued_job_ids(redis_client) == [request_id]
    job = Job.fetch(request_id, connection=redis_client)
    assert job.id == request_id
    assert job.origin == QUEUE
    assert job.func_name == "dispatcher.jobs.deliver"
    assert list(job.args) == [request_id]
    assert job.get_status() == "queued"
    assert Queue(QUEUE, connection=redis_client).count == 1
    assert SECRET not in log_text(runtime)


def test_default_dispatched_by_is_system(make_runtime) -> None:
    runtime = make_runtime(endpoints=[ENDPOINTS[0]])
    (request_id,) = dispatch("order_changed", example("order_changed"))
    assert (
        json.loads(store.get_delivery(runtime.engine, request_id)["payload"])["metadata"]["dispatched_by"]
        == "SYSTEM"
    )


# --- refusals --------------------------------------------------------------------------------


def assert_nothing_done(runtime: Runtime, client: redis.Redis) -> None:
    assert store.list_deliveries(runtime.engine) == []
    assert client.llen(QUEUE_KEY) == 0
    assert job_keys(client) == []


def test_invalid_data_stores_and_queues_nothing(make_runtime, redis_client) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS)
    data = example("prescription_submitted")
    data["medication"][0]["quantity"] = "1"
    data["surprise"] = True
    with pytest.raises(InvalidEventData) as info:
        dispatch("prescription_submitted", data)
    assert isinstance(info.value, ValueError)
    assert "medication[0].quantity" in str(info.value)
    assert "surprise" in str(info.value)
    assert_nothing_done(runtime, redis_client)


def test_unknown_event_raises(make_runtime, redis_client) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS)
    with pytest.raises(UnknownEvent, match="order_shipped"):
        dispatch("order_shipped", example("order_changed"))
    assert_nothing_done(runtime, redis_client)


def test_payload_too_large_stores_nothing(make_runtime, redis_client) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS, delivery={"max_payload_bytes": 500})
    small = example("order_changed")
    assert dispatch("order_changed", small)  # under the limit: fine
    redis_client.flushdb()
    with runtime.engine.begin() as conn:
        conn.execute(store.DELIVERIES.delete())

    data = example("message_created")
    data["message"] = "x" * 600
    with pytest.raises(PayloadTooLarge, match="500"):
        dispatch("message_created", data)
    assert_nothing_done(runtime, redis_client)


def test_dispatch_many_stores_and_queues_every_item(make_runtime, redis_client) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS[:2])  # both subscribe to order_changed
    items = []
    for i in range(5):
        item = example("order_changed")
        item["order_number"] = f"ORDER-{i}"
        items.append(item)

    ids = dispatch_many("order_changed", items)

    assert len(ids) == 10
    assert len(set(ids)) == 10
    rows = store.list_deliveries(runtime.engine, limit=100)
    assert {r["request_id"] for r in rows} == set(ids)
    assert all(r["status"] == store.QUEUED for r in rows)
    # Item by item, endpoint by endpoint.
    for index in range(5):
        for offset, endpoint in enumerate(["partner-a", "partner-b"]):
            row = store.get_delivery(runtime.engine, ids[index * 2 + offset])
            assert row["endpoint"] == endpoint
            assert json.loads(row["payload"])["data"]["order_number"] == f"ORDER-{index}"
    assert sorted(queued_job_ids(redis_client)) == sorted(ids)
    assert len(job_keys(redis_client)) == 10


def test_dispatch_many_one_invalid_item_rejects_the_batch(make_runtime, redis_client) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS)
    items = [example("order_changed") for _ in range(4)]
    items[2]["status"] = 7
    with pytest.raises(InvalidEventData) as info:
        dispatch_many("order_changed", items)
    assert "[2] status" in str(info.value)
    assert "[0]" not in str(info.value) and "[1]" not in str(info.value)
    assert_nothing_done(runtime, redis_client)


# --- Redis down, database down, reconcile ----------------------------------------------------


def with_redis_down(working: Runtime) -> Runtime:
    """Installs a runtime on the same database whose Redis is a closed port."""
    broken = Runtime(dataclasses.replace(working.settings, redis_url=DEAD_REDIS), worker_name="test-worker")
    set_runtime(broken)
    return broken


def test_redis_down_at_dispatch_still_stores(make_runtime, redis_client) -> None:
    broken = with_redis_down(make_runtime(endpoints=ENDPOINTS))
    try:
        ids = dispatch("prescription_submitted", example("prescription_submitted"))
        more = dispatch_many("order_changed", [example("order_changed"), example("order_changed")])

        assert len(ids) == 2 and len(more) == 4
        assert all(is_uuid4(i) for i in ids + more)
        for request_id in ids + more:
            row = store.get_delivery(broken.engine, request_id)
            assert row["status"] == store.QUEUED
            assert row["attempts"] == 0
        assert queued_job_ids(redis_client) == []  # nothing reached the real Redis either
        text = log_text(broken)
        warnings = [line for line in text.splitlines() if " WARNING " in line]
        assert any("redis" in line.lower() for line in warnings), text
    finally:
        broken.close()


def test_reconcile_queues_what_redis_missed_exactly_once(
    make_runtime, redis_client, database_url: str
) -> None:
    working = make_runtime(database_url=database_url, endpoints=ENDPOINTS)
    broken = with_redis_down(working)
    try:
        ids = dispatch("prescription_submitted", example("prescription_submitted"))
        ids += dispatch("order_changed", example("order_changed"))
    finally:
        broken.close()
    assert len(ids) == 4
    assert queued_job_ids(redis_client) == []

    # Within the grace period a fresh row may still be on its way to Redis: left alone.
    assert reconcile(working).requeued == []
    assert queued_job_ids(redis_client) == []

    later = datetime.now(UTC) + timedelta(minutes=1)
    report = reconcile(working, now=later)
    assert sorted(report.requeued) == sorted(ids)
    assert report.abandoned == []
    assert sorted(queued_job_ids(redis_client)) == sorted(ids)
    for request_id in ids:
        job = Job.fetch(request_id, connection=redis_client)
        assert job.origin == QUEUE
        assert job.func_name == "dispatcher.jobs.deliver"
        assert list(job.args) == [request_id]
        assert store.get_delivery(working.engine, request_id)["status"] == store.QUEUED

    again = reconcile(working, now=later + timedelta(seconds=5))
    assert again.requeued == []
    assert again.checked == 4
    assert sorted(queued_job_ids(redis_client)) == sorted(ids)  # no duplicates

    redis_client.flushdb()
    after_flush = reconcile(working, now=later + timedelta(seconds=10))
    assert sorted(after_flush.requeued) == sorted(ids)
    assert sorted(queued_job_ids(redis_client)) == sorted(ids)
    assert reconcile(working, now=later + timedelta(seconds=15)).requeued == []
    rows = store.list_deliveries(working.engine)
    assert sorted(r["request_id"] for r in rows) == sorted(ids)  # same request ids, no new rows
    assert all(r["status"] == store.QUEUED for r in rows)


def test_database_down_raises_and_queues_nothing(make_runtime, redis_client) -> None:
    make_runtime(database_url=DEAD_PG, endpoints=ENDPOINTS)
    with pytest.raises(StoreUnavailable) as info:
        dispatch("order_changed", example("order_changed"))
    assert "127.0.0.1:1" in str(info.value)
    with pytest.raises(StoreUnavailable):
        dispatch_many("order_changed", [example("order_changed")])
    assert redis_client.llen(QUEUE_KEY) == 0
    assert job_keys(redis_client) == []
