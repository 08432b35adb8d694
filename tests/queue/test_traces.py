"""A delivery's trace contexts in its job record (``dispatcher/queue/traces.py``), on the real
Redis: written with the job by ``enqueue_new`` and ``schedule_new``, read in one round trip, the
last attempt's kept only while the record exists -- and RQ loading the record as ever."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue
from rq.job import Job, JobStatus

from dispatcher.queue import rq_edge
from dispatcher.queue.jobs import JOB_FUNCTION, enqueue_new, schedule_new
from dispatcher.queue.traces import LAST_ATTEMPT_FIELD, TRACE_FIELD, keep_attempt_traces, traces

DISPATCH = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
WITH_STATE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\nvendor=abc"
ATTEMPT = "00-0af7651916cd43dd8448eb211c80319c-53995c3f42cd8ad8-01"


def make_queue(redis_client: redis.Redis) -> Queue:
    return Queue("send-webhook-request", connection=redis_client, default_timeout=180)


def field(redis_client: redis.Redis, request_id: str, name: str) -> str | None:
    raw = redis_client.hget(rq_edge.job_key(request_id), name)
    return raw.decode() if raw is not None else None


def test_our_fields_are_not_rqs() -> None:
    assert {TRACE_FIELD, LAST_ATTEMPT_FIELD}.isdisjoint(set(rq_edge.JobField))
    assert TRACE_FIELD != LAST_ATTEMPT_FIELD


def test_enqueue_new_writes_the_context_into_the_record_and_rq_still_loads_it(redis_client) -> None:
    q = make_queue(redis_client)

    assert enqueue_new(q, ["r-1", "r-2", "r-3"], {"r-1": DISPATCH, "r-3": WITH_STATE, "r-9": DISPATCH}) == [
        "r-1",
        "r-2",
        "r-3",
    ]

    assert field(redis_client, "r-1", TRACE_FIELD) == DISPATCH
    assert field(redis_client, "r-2", TRACE_FIELD) is None  # no context: no field at all
    assert field(redis_client, "r-3", TRACE_FIELD) == WITH_STATE
    assert not redis_client.exists(rq_edge.job_key("r-9"))  # a context alone makes no job
    for request_id in ("r-1", "r-2", "r-3"):
        job = Job.fetch(request_id, connection=redis_client)
        assert (job.func_name, job.args, job.origin) == (JOB_FUNCTION, (request_id,), q.name)
        assert job.get_status() == JobStatus.QUEUED
    assert q.job_ids == ["r-1", "r-2", "r-3"]


def test_an_enqueue_of_a_job_that_exists_leaves_its_context(redis_client) -> None:
    q = make_queue(redis_client)
    enqueue_new(q, ["r-1"], {"r-1": DISPATCH})

    assert enqueue_new(q, ["r-1"], {"r-1": WITH_STATE}) == []

    assert field(redis_client, "r-1", TRACE_FIELD) == DISPATCH and q.job_ids == ["r-1"]


def test_enqueue_new_without_traces_writes_none(redis_client) -> None:
    q = make_queue(redis_client)
    assert enqueue_new(q, ["r-1"]) == ["r-1"]
    assert enqueue_new(q, ["r-2"], {}) == ["r-2"]
    assert traces(q, ["r-1", "r-2"]) == {"r-1": (None, None), "r-2": (None, None)}


def test_schedule_new_writes_the_context_of_a_scheduled_job(redis_client) -> None:
    q = make_queue(redis_client)

    assert schedule_new(q, ["s-1", "s-2"], timedelta(seconds=30), {"s-1": DISPATCH}) == ["s-1", "s-2"]

    assert field(redis_client, "s-1", TRACE_FIELD) == DISPATCH
    assert field(redis_client, "s-2", TRACE_FIELD) is None
    job = Job.fetch("s-1", connection=redis_client)
    assert job.get_status() == JobStatus.SCHEDULED and job.args == ("s-1",)
    assert sorted(q.scheduled_job_registry.get_job_ids()) == ["s-1", "s-2"] and q.job_ids == []
    assert traces(q, ["s-1"]) == {"s-1": (DISPATCH, None)}


def test_traces_reads_both_contexts_of_each_job_in_order(redis_client) -> None:
    q = make_queue(redis_client)
    enqueue_new(q, ["r-1", "r-2"], {"r-1": DISPATCH, "r-2": WITH_STATE})
    keep_attempt_traces(q, {"r-1": ATTEMPT})

    got = traces(q, ["r-2", "missing", "r-1"])

    assert list(got) == ["r-2", "missing", "r-1"]
    assert got == {"r-1": (DISPATCH, ATTEMPT), "r-2": (WITH_STATE, None), "missing": (None, None)}
    assert traces(q, []) == {}


def test_keep_attempt_traces_writes_only_into_a_record_that_exists(redis_client) -> None:
    """A record made by this write alone would look like a job to the unique enqueue, and the
    delivery would never be queued again."""
    q = make_queue(redis_client)
    enqueue_new(q, ["r-1"], {"r-1": DISPATCH})
    redis_client.script_flush()  # a Redis that restarted: the script is loaded again

    keep_attempt_traces(q, {"r-1": ATTEMPT, "gone": ATTEMPT})

    assert field(redis_client, "r-1", LAST_ATTEMPT_FIELD) == ATTEMPT
    assert field(redis_client, "r-1", TRACE_FIELD) == DISPATCH
    job = Job.fetch("r-1", connection=redis_client)
    assert job.get_status() == JobStatus.QUEUED and job.args == ("r-1",)
    assert not redis_client.exists(rq_edge.job_key("gone"))
    assert enqueue_new(q, ["gone"]) == ["gone"]  # still queued when dispatched or reconciled
    assert q.job_ids == ["r-1", "gone"]


def test_a_later_attempt_replaces_the_last_context(redis_client) -> None:
    q = make_queue(redis_client)
    enqueue_new(q, ["r-1"])
    keep_attempt_traces(q, {"r-1": ATTEMPT})
    keep_attempt_traces(q, {"r-1": WITH_STATE})
    assert traces(q, ["r-1"]) == {"r-1": (None, WITH_STATE)}


def test_nothing_to_keep_asks_nothing_of_redis() -> None:
    unreachable = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    q = Queue("send-webhook-request", connection=unreachable)
    keep_attempt_traces(q, {})  # no round trip
    with pytest.raises(redis.ConnectionError):
        keep_attempt_traces(q, {"r-1": ATTEMPT})
    with pytest.raises(redis.ConnectionError):
        traces(q, ["r-1"])


def test_a_take_reads_each_taken_jobs_contexts_in_the_same_round_trip(redis_client) -> None:
    """A worker that traces takes its batch and the jobs' trace contexts at once: as many jobs as
    asked, each with its dispatch context and last attempt's ('' unset: None)."""
    from dispatcher import queue
    from dispatcher.queue import jobs

    q = Queue("send-webhook-request", connection=redis_client)
    ids = ["t-1", "t-2", "t-3", "t-4"]
    jobs.enqueue_new(q, ids, {"t-1": "00-" + "a" * 32 + "-" + "b" * 16 + "-01", "t-3": "ctx-3"})
    queue.keep_attempt_traces(q, {"t-3": "last-3"})
    traces: dict = {}
    assert jobs.take(q, "w1", 3, (), traces) == ["t-1", "t-2", "t-3"]
    assert traces == {
        "t-1": ("00-" + "a" * 32 + "-" + "b" * 16 + "-01", None),
        "t-2": (None, None),
        "t-3": ("ctx-3", "last-3"),
    }
    assert jobs.take(q, "w1", 5) == ["t-4"]  # without: ids only, as before
