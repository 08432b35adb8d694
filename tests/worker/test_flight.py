"""The RQ job run in-process (``dispatcher.jobs.deliver``) against a real HTTP receiver on
127.0.0.1, real Redis and SQLite: what is sent, what is recorded, and what follows."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path

import pytest
from rq import Retry

from dispatcher import CATALOGUE, dispatch, store
from dispatcher.errors import PoisonJob
from dispatcher.policy.gates import SCHEDULER_SLACK_SECONDS
from dispatcher.runtime import get_runtime
from dispatcher.vocabulary import DeliveryStatus
from dispatcher.worker import batch as jobs
from dispatcher.worker.flight import Flight
from dispatcher.worker.results import POISON
from tests.servers import Answer


def deliver(request_id: str):
    """One delivery's flight as its job flies it -- claim, POST, record -- without taking the
    rest of the queue as a batch (the tests call it while other deliveries' jobs still sit in
    the queue). Returns its result: an ``rq.Retry``, None, or ``POISON``."""
    flight = Flight(get_runtime())
    try:
        results = {**flight.start([request_id]), **flight.drain()}
    finally:
        flight.close()
    return results[request_id]


SECRET = "k3y-that-must-never-be-logged"


def endpoint(receiver, **extra) -> dict:
    return {"name": "partner-a", "url": receiver.url, "key": SECRET, "events": ["*"], **extra}


def example(event: str) -> dict:
    return copy.deepcopy(CATALOGUE[event].example())


def dispatch_one(event: str = "order_changed") -> str:
    (request_id,) = dispatch(event, example(event))
    return request_id


def log_text(runtime) -> str:
    return Path(runtime.settings.process_log).read_text()


def test_200_delivers_and_records_one_redacted_attempt(make_runtime, receiver) -> None:
    runtime = make_runtime(endpoints=[endpoint(receiver)])
    request_id = dispatch_one("prescription_submitted")

    assert deliver(request_id) is None

    (got,) = receiver.received
    assert got.path == "/webhooks/baremeds"
    assert got.headers["X-Webhook-Key"] == SECRET
    assert got.headers["Content-Type"] == "application/json"
    assert "Baremeds-Webhook-Dispatcher" in got.headers["User-Agent"]
    assert got.body["metadata"]["request_id"] == request_id
    assert got.body["metadata"]["retry"] is False
    assert "webhook_key" not in got.body["metadata"]
    assert got.body["data"] == json.loads(store.get_delivery(runtime.engine, request_id)["payload"])["data"]

    delivery = store.get_delivery(runtime.engine, request_id)
    assert delivery["status"] == DeliveryStatus.DELIVERED
    assert delivery["attempts"] == 1
    assert delivery["last_http_status"] == 200
    assert delivery["worker"] is None

    (attempt,) = store.list_attempts(runtime.engine, request_id)
    assert attempt["attempt"] == 1
    assert attempt["retry"] is False
    assert attempt["outcome"] == "delivered"
    assert attempt["http_status"] == 200
    assert attempt["endpoint"] == "partner-a"
    assert attempt["url"] == receiver.url
    assert attempt["response_body"] == '{"ok":true}'
    assert attempt["duration_ms"] is not None and attempt["duration_ms"] >= 0
    assert attempt["next_attempt_at"] is None
    assert attempt["request_payload"] == got.raw.decode("utf-8")
    headers = json.loads(attempt["request_headers"])
    assert headers["X-Webhook-Key"] == "[redacted]"
    assert headers["Content-Type"] == "application/json"
    assert SECRET not in attempt["request_headers"]
    assert SECRET not in attempt["request_payload"]
    assert SECRET not in log_text(runtime)


def test_503_returns_retry_with_the_recorded_delay_then_retry_true(make_runtime, receiver) -> None:
    runtime = make_runtime(endpoints=[endpoint(receiver)], delivery={"backoff": [7, 60]})
    request_id = dispatch_one()
    receiver.script_all(503)

    result = deliver(request_id)

    assert isinstance(result, Retry)
    (first,) = store.list_attempts(runtime.engine, request_id)
    assert first["outcome"] == "retry_scheduled"
    assert first["http_status"] == 503
    assert first["next_attempt_at"] is not None
    # The recorded delay is the policy's (backoff[0] = 7 s). The job asks RQ for that delay plus
    # gates.SCHEDULER_SLACK_SECONDS, because RQ truncates scheduled times to whole seconds: the
    # real wait is never shorter than the recorded next_attempt_at.
    recorded = first["next_attempt_at"] - first["created_at"]
    assert recorded == timedelta(seconds=7)
    assert result.intervals == [7 + SCHEDULER_SLACK_SECONDS]
    assert 0 <= result.intervals[0] - recorded.total_seconds() <= 1
    delivery = store.get_delivery(runtime.engine, request_id)
    assert delivery["status"] == DeliveryStatus.RETRYING
    assert delivery["next_attempt_at"] == first["next_attempt_at"]
    assert delivery["last_http_status"] == 503

    assert deliver(request_id) is None  # the receiver's default answer is 200

    first_sent, second_sent = receiver.for_request(request_id)
    assert first_sent.body["metadata"]["retry"] is False
    assert second_sent.body["metadata"]["retry"] is True
    # request_id and timestamp stay the same on every attempt.
    assert second_sent.body["timestamp"] == first_sent.body["timestamp"]
    assert second_sent.body["data"] == first_sent.body["data"]
    attempts = store.list_attempts(runtime.engine, request_id)
    assert [(a["attempt"], a["retry"], a["outcome"]) for a in attempts] == [
        (1, False, "retry_scheduled"),
        (2, True, "delivered"),
    ]
    assert attempts[1]["request_payload"] == second_sent.raw.decode("utf-8")
    delivery = store.get_delivery(runtime.engine, request_id)
    assert delivery["status"] == DeliveryStatus.DELIVERED
    assert delivery["attempts"] == 2


def test_second_retry_uses_the_next_backoff_value(make_runtime, receiver) -> None:
    runtime = make_runtime(endpoints=[endpoint(receiver)], delivery={"backoff": [7, 60]})
    request_id = dispatch_one()
    receiver.script_all(503, 500)
    assert deliver(request_id).intervals == [7 + SCHEDULER_SLACK_SECONDS]
    assert deliver(request_id).intervals == [60 + SCHEDULER_SLACK_SECONDS]
    assert deliver(request_id) is None
    attempts = store.list_attempts(runtime.engine, request_id)
    assert [a["http_status"] for a in attempts] == [503, 500, 200]
    assert [(a["next_attempt_at"] - a["created_at"]).total_seconds() for a in attempts[:2]] == [7, 60]
    assert attempts[2]["next_attempt_at"] is None


def test_400_fails_without_retry(make_runtime, receiver) -> None:
    runtime = make_runtime(endpoints=[endpoint(receiver)])
    request_id = dispatch_one()
    receiver.script_all(Answer(status=400, body=b'{"error":"bad"}'))

    assert deliver(request_id) is None

    delivery = store.get_delivery(runtime.engine, request_id)
    assert delivery["status"] == DeliveryStatus.FAILED
    assert delivery["last_http_status"] == 400
    assert delivery["reason"]
    (attempt,) = store.list_attempts(runtime.engine, request_id)
    assert attempt["outcome"] == "failed"
    assert attempt["http_status"] == 400
    assert attempt["response_body"] == '{"error":"bad"}'
    assert attempt["next_attempt_at"] is None
    # A job for a failed delivery does nothing more.
    assert deliver(request_id) is None
    assert len(receiver.received) == 1


def test_attempts_exhausted_fails(make_runtime, receiver) -> None:
    runtime = make_runtime(endpoints=[endpoint(receiver)], delivery={"max_attempts": 3, "backoff": [1]})
    request_id = dispatch_one()
    receiver.default = Answer(status=503)

    assert isinstance(deliver(request_id), Retry)
    assert isinstance(deliver(request_id), Retry)
    assert deliver(request_id) is None

    delivery = store.get_delivery(runtime.engine, request_id)
    assert delivery["status"] == DeliveryStatus.FAILED
    assert delivery["attempts"] == 3
    attempts = store.list_attempts(runtime.engine, request_id)
    assert [a["outcome"] for a in attempts] == ["retry_scheduled", "retry_scheduled", "failed"]
    assert "attempts exhausted" in attempts[-1]["error"]
    assert attempts[-1]["next_attempt_at"] is None
    assert deliver(request_id) is None
    assert len(receiver.for_request(request_id)) == 3


def test_unknown_request_id_is_a_poison_job(make_runtime, receiver) -> None:
    make_runtime(endpoints=[endpoint(receiver)])
    assert deliver("0b4e7f3c-1111-4222-8333-444455556666") is POISON
    with pytest.raises(PoisonJob, match="0b4e7f3c-1111-4222-8333-444455556666"):
        jobs.deliver("0b4e7f3c-1111-4222-8333-444455556666")  # the job RQ runs fails, never retried
    assert receiver.received == []


def test_already_delivered_does_nothing(make_runtime, receiver) -> None:
    runtime = make_runtime(endpoints=[endpoint(receiver)])
    request_id = dispatch_one()
    assert deliver(request_id) is None
    assert len(receiver.received) == 1
    before = store.get_delivery(runtime.engine, request_id)

    assert deliver(request_id) is None

    assert len(receiver.received) == 1
    assert store.get_delivery(runtime.engine, request_id) == before
    assert len(store.list_attempts(runtime.engine, request_id)) == 1


def test_endpoint_removed_from_config_fails_without_sending(make_runtime, receiver) -> None:
    make_runtime(endpoints=[endpoint(receiver)])
    request_id = dispatch_one()
    other = {"name": "partner-b", "url": receiver.url, "key": SECRET, "events": ["*"]}
    runtime = make_runtime(endpoints=[other])  # same database, partner-a is gone

    assert deliver(request_id) is None

    assert receiver.received == []
    delivery = store.get_delivery(runtime.engine, request_id)
    assert delivery["status"] == DeliveryStatus.FAILED
    assert "partner-a" in delivery["reason"] and "no longer configured" in delivery["reason"]
    (attempt,) = store.list_attempts(runtime.engine, request_id)
    assert attempt["outcome"] == "failed"
    assert attempt["http_status"] is None
    assert "partner-a" in attempt["error"] and "no longer configured" in attempt["error"]
    assert attempt["request_payload"] is None


def test_include_key_in_body_sends_the_key_but_stores_it_redacted(make_runtime, receiver) -> None:
    runtime = make_runtime(endpoints=[endpoint(receiver, include_key_in_body=True)])
    request_id = dispatch_one("case_assigned_to_clinician")

    assert deliver(request_id) is None

    (got,) = receiver.received
    assert got.body["metadata"]["webhook_key"] == SECRET
    assert list(got.body["metadata"]) == [
        "source",
        "environment",
        "webhook_version",
        "request_id",
        "dispatched_by",
        "retry",
        "webhook_key",
    ]
    assert got.headers["X-Webhook-Key"] == SECRET
    (attempt,) = store.list_attempts(runtime.engine, request_id)
    logged = json.loads(attempt["request_payload"])
    assert logged["metadata"]["webhook_key"] == "[redacted]"
    assert SECRET not in attempt["request_payload"]
    assert SECRET not in attempt["request_headers"]
    # Apart from the redaction, the stored body is exactly what was sent.
    sent = json.loads(got.raw)
    sent["metadata"]["webhook_key"] = "[redacted]"
    assert logged == sent
    assert attempt["request_payload"] == got.raw.decode("utf-8").replace(SECRET, "[redacted]")
    assert SECRET not in store.get_delivery(runtime.engine, request_id)["payload"]
    assert SECRET not in log_text(runtime)


def test_no_key_configured_sends_xxx(make_runtime, receiver) -> None:
    runtime = make_runtime(endpoints=[{"name": "partner-a", "url": receiver.url}])
    request_id = dispatch_one()

    assert deliver(request_id) is None

    (got,) = receiver.received
    assert got.headers["X-Webhook-Key"] == "xxx"
    (attempt,) = store.list_attempts(runtime.engine, request_id)
    assert json.loads(attempt["request_headers"])["X-Webhook-Key"] == "[redacted]"
    assert store.get_delivery(runtime.engine, request_id)["status"] == DeliveryStatus.DELIVERED


def test_a_job_takes_the_queued_backlog_as_a_batch(make_runtime, receiver, redis_client) -> None:
    from dispatcher import dispatch_many
    from dispatcher.worker.batch import BATCH_MAX
    from dispatcher.worker.batch import deliver as rq_job

    runtime = make_runtime(endpoints=[endpoint(receiver)])
    receiver.script_all(503, 200)  # every delivery needs a retry: each gets its own scheduled job
    request_ids = dispatch_many("order_changed", [CATALOGUE["order_changed"].example()] * 5)
    leader = redis_client.lpop("rq:queue:send-webhook-request").decode()  # as RQ's dequeue does
    assert leader == request_ids[0]
    result = rq_job(leader)
    assert isinstance(result, Retry)
    assert redis_client.llen("rq:queue:send-webhook-request") == 0  # the other four were taken
    scheduled = {m.decode() for m in redis_client.zrange("rq:scheduled:send-webhook-request", 0, -1)}
    assert scheduled == set(request_ids[1:])  # each member's retry is its own scheduled job
    for request_id in request_ids:
        (attempt,) = store.list_attempts(runtime.engine, request_id)
        assert attempt["outcome"] == "retry_scheduled"
        assert len(receiver.for_request(request_id)) == 1
    assert BATCH_MAX >= 5


def test_a_batch_leaves_no_job_records_for_finished_deliveries(make_runtime, receiver, redis_client) -> None:
    from dispatcher import dispatch_many
    from dispatcher.worker.batch import deliver as rq_job

    runtime = make_runtime(endpoints=[endpoint(receiver)])
    request_ids = dispatch_many("order_changed", [CATALOGUE["order_changed"].example()] * 6)
    leader = redis_client.lpop("rq:queue:send-webhook-request").decode()
    assert rq_job(leader) is None
    assert {store.get_delivery(runtime.engine, r)["status"] for r in request_ids} == {"delivered"}
    members = [r for r in request_ids if r != leader]
    assert sum(redis_client.exists(f"rq:job:{r}") for r in members) == 0
    assert redis_client.exists(f"rq:job:{leader}") == 1  # the leader's own record is RQ's to finish


def test_a_stored_payload_nested_past_reading_fails_without_sending(make_runtime, receiver) -> None:
    """A row an older version stored, nested deeper than json can read back: the job fails it
    as unusable instead of crashing."""
    runtime = make_runtime(endpoints=[{"name": "partner-a", "url": receiver.url, "key": "k-deep-1"}])
    (request_id,) = dispatch("order_changed", CATALOGUE["order_changed"].example())
    with runtime.engine.begin() as conn:
        conn.execute(
            store.DELIVERIES.update()
            .where(store.DELIVERIES.c.request_id == request_id)
            .values(payload='{"data": ' + "[" * 100_000 + "]" * 100_000 + "}")
        )
    assert deliver(request_id) is None
    row = store.get_delivery(runtime.engine, request_id)
    assert row["status"] == "failed" and row["reason"] == "stored payload is unusable: RecursionError"
    assert receiver.received == []
