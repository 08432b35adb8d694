"""dispatch() on real Redis and a real database: what is stored, what is queued, what is refused,
and what happens when Redis or the database is down (then reconcile)."""

from __future__ import annotations

import copy
import dataclasses
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
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
from dispatcher.runtime import Runtime, set_runtime
from dispatcher.vocabulary import DeliveryStatus
from dispatcher.worker.reconcile import reconcile

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


def test_an_endpoint_added_in_the_database_gets_the_next_event(make_runtime, redis_client) -> None:
    from dispatcher.store import endpoint_catalog

    runtime = make_runtime(endpoints=[ENDPOINTS[2]])
    runtime.adopt_file_endpoints()
    endpoint_catalog.add(runtime.engine, {"name": "partner-new", "url": "http://127.0.0.1:9/new"})
    runtime._catalog.checked = float("-inf")  # the second the process waits before looking again
    ids = dispatch("prescription_submitted", example("prescription_submitted"))
    assert {store.get_delivery(runtime.engine, i)["endpoint"] for i in ids} == {"partner-c", "partner-new"}


def test_an_endpoint_named_a_moment_after_it_was_added_is_found(make_runtime, redis_client) -> None:
    from dispatcher.store import endpoint_catalog

    runtime = make_runtime(endpoints=[ENDPOINTS[2]])
    runtime.adopt_file_endpoints()
    dispatch("prescription_submitted", example("prescription_submitted"))  # looked just now
    endpoint_catalog.add(runtime.engine, {"name": "partner-new", "url": "http://127.0.0.1:9/new"})
    ids = dispatch("order_changed", example("order_changed"), endpoints=["partner-new"])
    assert [store.get_delivery(runtime.engine, i)["endpoint"] for i in ids] == ["partner-new"]
    with pytest.raises(UnknownEndpoint):
        dispatch("order_changed", example("order_changed"), endpoints=["partner-none"])


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
    assert row["status"] == DeliveryStatus.QUEUED
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
    assert all(r["status"] == DeliveryStatus.QUEUED for r in rows)
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


def test_dispatch_many_of_nothing_dispatches_nothing_but_names_a_wrong_argument(
    make_runtime, redis_client
) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS)
    assert dispatch_many("order_changed", []) == []
    with pytest.raises(UnknownEvent):
        dispatch_many("order_shipped", [])
    with pytest.raises(UnknownEndpoint):
        dispatch_many("order_changed", [], endpoints=["nope"])
    with pytest.raises(InvalidEventData, match="dispatched_by"):
        dispatch_many("order_changed", [], dispatched_by="")
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
            assert row["status"] == DeliveryStatus.QUEUED
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
        assert store.get_delivery(working.engine, request_id)["status"] == DeliveryStatus.QUEUED

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
    assert all(r["status"] == DeliveryStatus.QUEUED for r in rows)


def test_database_down_raises_and_queues_nothing(make_runtime, redis_client) -> None:
    make_runtime(database_url=DEAD_PG, endpoints=ENDPOINTS)
    with pytest.raises(StoreUnavailable) as info:
        dispatch("order_changed", example("order_changed"))
    assert "127.0.0.1:1" in str(info.value)
    with pytest.raises(StoreUnavailable):
        dispatch_many("order_changed", [example("order_changed")])
    assert redis_client.llen(QUEUE_KEY) == 0
    assert job_keys(redis_client) == []


# --- what JSON cannot carry: refused at dispatch, naming the field ----------------------------


def nested(levels: int) -> list:
    """``levels`` arrays, one inside the other: ``nested(1) == []``."""
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


def with_attachment(*items: object) -> dict:
    data = example("message_created")
    data["attachment"] = list(items)
    return data


def looping() -> list:
    loop: list = [{"name": "a"}]
    loop[0]["self"] = loop
    return loop


REFUSED = {
    "surrogate-in-message": (
        lambda: {**example("message_created"), "message": "hello \ud800"},
        "message: contains a lone surrogate U+D800 at index 6, which UTF-8 cannot encode",
    ),
    "surrogate-in-attachment-key": (
        lambda: with_attachment({"url": "https://f/a.pdf", "file\udc00name": "a.pdf"}),
        "attachment[0]['file\\udc00name']: object key contains a lone surrogate U+DC00 at index 4",
    ),
    "surrogate-deep-in-attachment": (
        lambda: with_attachment({"meta": {"title": "x\udfff"}}),
        "attachment[0].meta.title: contains a lone surrogate U+DFFF at index 1",
    ),
    "nan": (
        lambda: with_attachment({"score": float("nan")}),
        "attachment[0].score: float nan is not a JSON number",
    ),
    "inf": (
        lambda: with_attachment({"score": float("inf")}),
        "attachment[0].score: float inf is not a JSON number",
    ),
    "-inf": (lambda: with_attachment([float("-inf")]), "attachment[0][0]: float -inf is not a JSON number"),
    "datetime": (
        lambda: with_attachment({"sent_at": datetime(2026, 1, 30, tzinfo=UTC)}),
        "attachment[0].sent_at: expected a JSON value",
    ),
    "decimal": (
        lambda: with_attachment({"price": Decimal("9.99")}),
        "attachment[0].price: expected a JSON value",
    ),
    "bytes": (lambda: with_attachment({"content": b"%PDF"}), "attachment[0].content: expected a JSON value"),
    "set": (lambda: with_attachment({"tags": {"a", "b"}}), "attachment[0].tags: expected a JSON value"),
    "tuple": (lambda: with_attachment((1, 2)), "attachment[0]: expected a JSON value"),
    "object": (lambda: with_attachment(object()), "attachment[0]: expected a JSON value"),
    "non-string-key": (
        lambda: with_attachment({1: "one"}),
        "attachment[0]: object key int 1 is not a string",
    ),
    "2**53": (
        lambda: with_attachment({"size": 2**53}),
        "attachment[0].size: integer 9007199254740992 is outside the I-JSON range",
    ),
    "-2**53": (
        lambda: with_attachment({"size": -(2**53)}),
        "attachment[0].size: integer -9007199254740992 is outside",
    ),
    "5000-digit-integer": (
        lambda: with_attachment({"size": 10**4999}),
        "attachment[0].size: integer <about 5,000 digits> is outside the I-JSON range",
    ),
    "33-deep": (
        lambda: {**example("message_created"), "attachment": nested(33)},
        "attachment" + "[0]" * 32 + ": arrays and objects nested more than 32 levels deep",
    ),
    "reference-cycle": (
        lambda: {**example("message_created"), "attachment": looping()},
        "attachment[0].self: contains itself (a reference cycle)",
    ),
    "quantity-2**53": (
        lambda: {
            **example("prescription_submitted"),
            "medication": [{**example("prescription_submitted")["medication"][0], "quantity": 2**53}],
        },
        "medication[0].quantity: integer 9007199254740992 is outside the I-JSON range",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_data_json_cannot_carry_is_refused_naming_the_field(case: str, make_runtime, redis_client) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS)
    make_data, expected = REFUSED[case]
    data = make_data()
    event = "prescription_submitted" if "medication" in data else "message_created"
    with pytest.raises(InvalidEventData) as info:
        dispatch(event, data)
    message = str(info.value)
    assert message.startswith(f"invalid data for event '{event}': {expected}")
    assert len(info.value.problems) == 1 and len(message) < 400
    message.encode("utf-8")  # printable: what it describes is escaped
    assert_nothing_done(runtime, redis_client)


def test_every_bad_value_is_named_in_one_error(make_runtime, redis_client) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS)
    data = with_attachment({"size": 2**60, "score": float("nan")}, {"when": datetime.now(UTC)})
    data["message"] = "\ud800"
    with pytest.raises(InvalidEventData) as info:
        dispatch("message_created", data)
    assert [p.split(":")[0] for p in info.value.problems] == [
        "message",
        "attachment[0].size",
        "attachment[0].score",
        "attachment[1].when",
    ]
    assert_nothing_done(runtime, redis_client)


@pytest.mark.parametrize("levels", [10_000, 100_000])
def test_any_nesting_is_refused_fast_with_a_short_message(levels: int, make_runtime, redis_client) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS)
    data = {**example("message_created"), "attachment": nested(levels)}
    started = time.perf_counter()
    with pytest.raises(InvalidEventData) as info:
        dispatch("message_created", data)
    assert info.value.problems == [
        "attachment" + "[0]" * 32 + ": arrays and objects nested more than 32 levels deep"
    ]
    assert time.perf_counter() - started < 1
    assert_nothing_done(runtime, redis_client)


def test_a_ten_megabyte_string_gives_a_short_message_fast(make_runtime, redis_client) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS)
    data = {**example("message_created"), "message": "x" * 10_000_000 + "\ud800"}
    started = time.perf_counter()
    with pytest.raises(InvalidEventData) as info:
        dispatch("message_created", data)
    assert time.perf_counter() - started < 1
    assert str(info.value).endswith(
        "message: contains a lone surrogate U+D800 at index 10000000, which UTF-8 cannot encode"
    )
    assert_nothing_done(runtime, redis_client)


def test_a_lone_surrogate_in_dispatched_by_is_refused_naming_it(make_runtime, redis_client) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS)
    with pytest.raises(
        InvalidEventData, match="dispatched_by: contains a lone surrogate U\\+D800 at index 3"
    ):
        dispatch("order_changed", example("order_changed"), dispatched_by="svc\ud800")
    assert_nothing_done(runtime, redis_client)


def test_dispatch_many_names_the_item_holding_nan(make_runtime, redis_client) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS)
    items = [with_attachment(), with_attachment({"score": float("nan")})]
    with pytest.raises(InvalidEventData, match=r"\[1\] attachment\[0\]\.score: float nan"):
        dispatch_many("message_created", items)
    assert_nothing_done(runtime, redis_client)


def test_what_is_at_the_limits_is_stored_and_reads_back_exactly(make_runtime, redis_client) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS)
    edge = {"max": 2**53 - 1, "min": -(2**53 - 1), "zero": -0.0, "text": "Grüße 😀", "deep": nested(30)}
    data = with_attachment(edge)  # attachment is level 1, the object 2, "deep" reaches level 32
    (request_id,) = dispatch("message_created", data)
    row = store.get_delivery(runtime.engine, request_id)
    assert json.loads(row["payload"])["data"]["attachment"] == [edge]
    assert queued_job_ids(redis_client) == [request_id]


# --- typed events ------------------------------------------------------------------------------


def test_an_event_model_is_dispatched_like_its_data(make_runtime, redis_client) -> None:
    from dispatcher.events import Medication, OrderChanged, PrescriptionSubmitted

    runtime = make_runtime(endpoints=ENDPOINTS)
    order = OrderChanged(
        order_number="ORDER123", status="updated", created_at=datetime(2026, 1, 30, 14, tzinfo=UTC)
    )
    ids = dispatch(order)
    assert len(ids) == 2
    stored = json.loads(store.get_delivery(runtime.engine, ids[0])["payload"])
    assert stored["event"] == "order_changed"
    assert stored["data"] == {
        "order_number": "ORDER123",
        "status": "updated",
        "created_at": "2026-01-30T14:00:00Z",
    }
    rx = PrescriptionSubmitted(
        patient_id="p-1",
        encounter_id="e-1",
        medication=[
            Medication(quantity=2, directions="Take 1 daily", prescribed_item_id="i-1", medication="M")
        ],
        created_at="2026-01-30T12:00:00Z",
    )
    (rx_id,) = dispatch(rx, endpoints=["partner-a"])
    data = json.loads(store.get_delivery(runtime.engine, rx_id)["payload"])["data"]
    assert list(data) == [
        "patient_id",
        "encounter_id",
        "order_number",
        "medication",
        "created_at",
        "special_necessities",
    ]
    assert data["order_number"] is None and data["medication"][0]["rx_order_id"] is None
    assert dispatch_many("order_changed", [order, example("order_changed")])  # models and dicts mixed


def test_a_model_is_as_strict_as_the_contract() -> None:
    from pydantic import ValidationError

    from dispatcher.events import OrderChanged

    with pytest.raises(ValidationError):
        OrderChanged(order_number=1, status="updated", created_at="2026-01-30T12:00:00Z")
    with pytest.raises(ValidationError):
        OrderChanged(order_number="O-1", status="updated", created_at="2026-01-30")  # no time, no zone
    with pytest.raises(ValidationError):
        OrderChanged(order_number="O-1", status="updated", created_at="2026-01-30T12:00:00Z", shipped=True)


def test_a_model_and_data_together_or_a_model_of_another_event_are_refused(
    make_runtime, redis_client
) -> None:
    from dispatcher.events import OrderChanged

    runtime = make_runtime(endpoints=ENDPOINTS)
    order = OrderChanged(order_number="O-1", status="updated", created_at="2026-01-30T12:00:00Z")
    with pytest.raises(InvalidEventData, match="not both"):
        dispatch(order, example("order_changed"))
    with pytest.raises(
        InvalidEventData, match="an event model OrderChanged, not the data of message_created"
    ):
        dispatch_many("message_created", [order])
    assert_nothing_done(runtime, redis_client)


def test_a_models_text_that_utf8_cannot_encode_is_refused_naming_the_field(
    make_runtime, redis_client
) -> None:
    from dispatcher.events import OrderChanged

    runtime = make_runtime(endpoints=ENDPOINTS)
    with pytest.raises(InvalidEventData, match=r"^invalid data for event 'order_changed': status: "):
        dispatch(OrderChanged(order_number="O-1", status="shipped\ud800", created_at="2026-01-30T12:00:00Z"))
    assert_nothing_done(runtime, redis_client)
