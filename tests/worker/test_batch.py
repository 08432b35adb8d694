"""One RQ job delivering a batch (``dispatcher.jobs.deliver``) in-process, against a real HTTP
receiver on 127.0.0.1, real Redis and SQLite: the sender threads, the limits, the Redis side of
taken jobs, and what happens when something fails in the middle."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from rq import Retry

from dispatcher import CATALOGUE, dispatch_many, queue, store
from dispatcher.worker import batch as jobs
from tests.servers import Answer

QUEUE_KEY = "rq:queue:send-webhook-request"
SCHEDULED_KEY = "rq:scheduled:send-webhook-request"


def endpoint(receiver, **extra) -> dict:
    return {"name": "partner-a", "url": receiver.url, "key": "k3y", "events": ["*"], **extra}


def dispatch_n(n: int) -> list[str]:
    return dispatch_many("order_changed", [CATALOGUE["order_changed"].example()] * n)


def pop_leader(redis_client) -> str:
    """What RQ's dequeue does before it runs the job."""
    return redis_client.lpop(QUEUE_KEY).decode()


def most_at_once(arrivals: list[float], lasting: float) -> int:
    """The most requests in the receiver at one moment, each lasting at least ``lasting`` s."""
    arrivals = sorted(arrivals)
    return max(sum(1 for t in arrivals if a <= t < a + lasting * 0.8) for a in arrivals)


def test_a_batch_keeps_up_to_threads_posts_in_flight(make_runtime, receiver, redis_client) -> None:
    runtime = make_runtime(endpoints=[endpoint(receiver)], worker={"threads": 4})
    receiver.default = Answer(delay=0.3)
    request_ids = dispatch_n(8)

    assert jobs.deliver(pop_leader(redis_client)) is None

    assert redis_client.llen(QUEUE_KEY) == 0
    assert sorted(r.request_id for r in receiver.received) == sorted(request_ids)  # each once
    assert most_at_once([r.at for r in receiver.received], 0.3) == 4  # the threads, never more
    for request_id in request_ids:
        assert store.get_delivery(runtime.engine, request_id)["status"] == "delivered"
        assert len(store.list_attempts(runtime.engine, request_id)) == 1


def test_max_concurrency_holds_across_the_threads(make_runtime, receiver, redis_client) -> None:
    runtime = make_runtime(endpoints=[endpoint(receiver, max_concurrency=1)], worker={"threads": 4})
    receiver.default = Answer(delay=0.2)
    request_ids = dispatch_n(4)
    leader = pop_leader(redis_client)

    jobs.deliver(leader)

    assert most_at_once([r.at for r in receiver.received], 0.2) == 1
    sent = {r.request_id for r in receiver.received}
    assert len(sent) >= 1
    scheduled = {m.decode() for m in redis_client.zrange("rq:scheduled:send-webhook-request", 0, -1)}
    for request_id in request_ids:
        got = store.get_delivery(runtime.engine, request_id)
        if request_id in sent:
            assert got["status"] == "delivered"
        else:  # deferred a second: the claim given back, the attempt not counted
            assert (got["status"], got["attempts"]) == ("queued", 0)
            assert request_id in scheduled or request_id == leader


def test_a_rate_limited_backlog_is_deferred_once_each_not_every_second(
    make_runtime, receiver, redis_client
) -> None:
    # 40 for an endpoint limited to 10/s: 10 go at once, 30 are booked a turn each over the next
    # 3 s. Deferring every refused one for a second, as before, made each ask again every second
    # until it won a token: 30 + 20 + 10 = 60 comebacks or more (81 measured), each a claim and
    # a release.
    runtime = make_runtime(endpoints=[endpoint(receiver, rate_per_second=10)], worker={"threads": 4})
    request_ids = dispatch_n(40)
    comebacks: dict[str, int] = {}

    def run(leader: str) -> None:
        # RQ's part: the leader's own Retry (each member's is scheduled by the batch itself)
        result = jobs.deliver(leader)
        if isinstance(result, Retry):
            redis_client.zadd(SCHEDULED_KEY, {leader: int(time.time() + result.intervals[0])})

    run(pop_leader(redis_client))
    deadline = time.monotonic() + 30
    while len({r.request_id for r in receiver.received}) < 40 and time.monotonic() < deadline:
        # the scheduler's part: each job due now goes back to a worker
        for member, due in redis_client.zrange(SCHEDULED_KEY, 0, -1, withscores=True):
            if due <= time.time() and redis_client.zrem(SCHEDULED_KEY, member):
                comebacks[member.decode()] = comebacks.get(member.decode(), 0) + 1
                run(member.decode())
        time.sleep(0.05)

    assert sorted(r.request_id for r in receiver.received) == sorted(request_ids)  # each once
    # about one each: a turn under a second away can be cut short by RQ's whole seconds
    assert max(comebacks.values()) <= 3 and sum(comebacks.values()) <= 45
    arrivals = sorted(r.at for r in receiver.received)
    # the bucket holds a second of tokens: at most 10 + 10 in any second
    assert max(sum(1 for t in arrivals if a <= t < a + 1) for a in arrivals) <= 20
    for request_id in request_ids:
        (attempt,) = store.list_attempts(runtime.engine, request_id)
        assert attempt["outcome"] == "delivered"


def test_an_error_mid_batch_records_what_was_sent_and_puts_the_rest_back(
    make_runtime, receiver, redis_client, monkeypatch
) -> None:
    runtime = make_runtime(endpoints=[endpoint(receiver)], worker={"threads": 4})
    request_ids = dispatch_n(6)
    prepare = jobs.Flight._prepare
    calls = []

    def failing_third(self, claim):
        calls.append(claim.request_id)
        if len(calls) == 3:
            raise RuntimeError("a bug in the middle of a batch")
        return prepare(self, claim)

    monkeypatch.setattr(jobs.Flight, "_prepare", failing_third)
    leader = pop_leader(redis_client)

    with pytest.raises(RuntimeError):
        jobs.deliver(leader)

    statuses = {r: store.get_delivery(runtime.engine, r)["status"] for r in request_ids}
    assert "in_flight" not in statuses.values()  # no claim outlives the job
    sent = {r.request_id for r in receiver.received}
    assert sent == set(calls[:2])
    assert {r for r, s in statuses.items() if s == "delivered"} == sent
    back = {m.decode() for m in redis_client.lrange(QUEUE_KEY, 0, -1)}
    assert back == set(request_ids) - sent - {leader}  # the leader is RQ's to fail; reconcile re-queues it
    for member in back:
        assert queue.job_state(runtime.queue, member)[0] == "queued"
    for member in sent - {leader}:
        assert redis_client.exists(f"rq:job:{member}") == 0  # finished: its record dropped


def test_retries_inside_a_batch_are_each_their_own_scheduled_job(
    make_runtime, receiver, redis_client
) -> None:
    runtime = make_runtime(endpoints=[endpoint(receiver)], worker={"threads": 3})
    receiver.script_all(503, 200)
    request_ids = dispatch_n(7)
    leader = pop_leader(redis_client)

    result = jobs.deliver(leader)

    assert isinstance(result, Retry)
    scheduled = {m.decode() for m in redis_client.zrange("rq:scheduled:send-webhook-request", 0, -1)}
    assert scheduled == set(request_ids) - {leader}
    for request_id in request_ids:
        (attempt,) = store.list_attempts(runtime.engine, request_id)
        assert attempt["outcome"] == "retry_scheduled"
        assert store.get_delivery(runtime.engine, request_id)["status"] == "retrying"


def test_after_a_410_the_deliveries_waiting_for_a_thread_are_not_sent(
    make_runtime, receiver, redis_client
) -> None:
    # One thread, so the second claimed delivery waits its turn behind the first, which is
    # answered 410 Gone: the partner said it is gone and must not get the second one (PHI).
    runtime = make_runtime(endpoints=[endpoint(receiver)], worker={"threads": 1})
    receiver.script_all(Answer(status=410, delay=0.2))
    request_ids = dispatch_n(5)
    leader = pop_leader(redis_client)

    jobs.deliver(leader)

    assert len(receiver.received) == 1
    (first,) = [r.request_id for r in receiver.received]
    assert store.get_delivery(runtime.engine, first)["status"] == "failed"
    assert [a["http_status"] for a in store.list_attempts(runtime.engine, first)] == [410]
    assert "partner-a" in store.disabled_endpoints(runtime.engine)
    scheduled = {m.decode() for m in redis_client.zrange("rq:scheduled:send-webhook-request", 0, -1)}
    held_back = set()
    for request_id in set(request_ids) - {first}:
        got = store.get_delivery(runtime.engine, request_id)
        assert store.list_attempts(runtime.engine, request_id) == []  # never sent
        if got["status"] == "queued":  # claimed before the 410: given back, its job comes back
            assert got["attempts"] == 0 and request_id in scheduled
            held_back.add(request_id)
        else:  # claimed after it: failed as disabled at once
            assert (got["status"], got["reason"]) == ("failed", "endpoint_disabled")
    assert held_back  # the one that was waiting for the thread

    for request_id in held_back:  # each job back from the scheduler
        redis_client.zrem("rq:scheduled:send-webhook-request", request_id)
        jobs.deliver(request_id)
        got = store.get_delivery(runtime.engine, request_id)
        assert (got["status"], got["reason"]) == ("failed", "endpoint_disabled")
    assert len(receiver.received) == 1


def test_a_410_listed_in_retry_4xx_holds_nothing_back(make_runtime, receiver, redis_client) -> None:
    runtime = make_runtime(
        endpoints=[endpoint(receiver)], worker={"threads": 1}, delivery={"retry_4xx": [408, 410, 429]}
    )
    receiver.script_all(Answer(status=410, delay=0.2))
    request_ids = dispatch_n(3)

    jobs.deliver(pop_leader(redis_client))

    assert sorted(r.request_id for r in receiver.received) == sorted(request_ids)  # each sent once
    for request_id in request_ids:
        assert store.get_delivery(runtime.engine, request_id)["status"] == "retrying"
    assert "partner-a" not in store.disabled_endpoints(runtime.engine)


def test_take_drops_finished_records_and_skips_ids_without_a_job(make_runtime, redis_client) -> None:
    runtime = make_runtime(endpoints=[])
    q = runtime.queue
    for job_id in ("a", "b", "c"):
        redis_client.hset(f"rq:job:{job_id}", mapping={"status": "queued"})
    redis_client.rpush(q.key, "gone", "a", "b", "c")  # "gone" has no job record
    redis_client.hset("rq:job:done", mapping={"status": "started", "worker_name": "w1"})
    redis_client.hset("rq:job:taken-again", mapping={"status": "started", "worker_name": "w2"})

    assert queue.take(q, "w1", 2, ["done", "taken-again"]) == ["a", "b"]
    assert redis_client.exists("rq:job:done") == 0
    assert redis_client.exists("rq:job:taken-again") == 1  # a second copy w2 runs: w2's to drop
    assert queue.job_state(q, "a") == ("started", "w1")
    assert queue.take(q, "w1", 5) == ["c"]
    assert queue.take(q, "w1", 5) == []
    assert queue.take(q, "w1", 0, ["a"]) == [] and redis_client.exists("rq:job:a") == 0


def test_reconcile_requeues_a_taken_job_stranded_by_a_live_worker(make_runtime, redis_client) -> None:
    """A batch whose Redis failed before it could give a taken job back leaves the job marked
    started by a live worker. Once that is older than any RQ job may run, reconcile re-queues
    it; a job taken a moment ago is left to its batch."""
    from datetime import UTC, datetime, timedelta

    from dispatcher.worker.liveness import mark_alive
    from dispatcher.worker.reconcile import reconcile

    runtime = make_runtime(endpoints=[{"name": "partner-a", "url": "http://127.0.0.1:9/h", "key": "k"}])
    stranded, fresh = dispatch_n(2)
    mark_alive(runtime.redis, "live-worker")
    assert queue.take(runtime.queue, "live-worker", 2) == [stranded, fresh]
    long_ago = datetime.now(UTC) - timedelta(seconds=queue.job_timeout(runtime.settings) + 120)
    redis_client.hset(f"rq:job:{stranded}", "started_at", long_ago.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))

    report = reconcile(runtime, now=datetime.now(UTC) + timedelta(minutes=1))

    assert report.requeued == [stranded]
    assert queue.job_state(runtime.queue, stranded) == ("queued", None)
    assert queue.job_state(runtime.queue, fresh) == ("started", "live-worker")
    assert [m.decode() for m in redis_client.lrange(QUEUE_KEY, 0, -1)] == [stranded]


def test_remove_job_when_a_batch_drops_the_record_meanwhile(make_runtime, redis_client, monkeypatch) -> None:
    """Reconcile removing a job whose record a batch deletes between RQ's fetch and delete."""
    from rq.job import Job

    runtime = make_runtime(endpoints=[{"name": "partner-a", "url": "http://127.0.0.1:9/h", "key": "k"}])
    (request_id,) = dispatch_n(1)
    fetch = Job.fetch

    def fetch_then_vanish(job_id, connection=None, **kwargs):
        job = fetch(job_id, connection=connection, **kwargs)
        redis_client.delete(job.key)  # the batch's take drops it right now
        return job

    monkeypatch.setattr(Job, "fetch", staticmethod(fetch_then_vanish))
    queue.remove_job(runtime.queue, request_id)  # no error: nothing is left to remove
    assert redis_client.exists(f"rq:job:{request_id}") == 0


def test_redis_failing_mid_batch_loses_nothing(make_runtime, receiver, redis_client, monkeypatch) -> None:
    """Redis refuses the batch's second take: what was sent is recorded, no claim is left in
    flight, the jobs never taken are still queued, and the leader's job fails in RQ (reconcile
    would re-queue a leader that still had attempts to make)."""
    import redis

    runtime = make_runtime(endpoints=[endpoint(receiver)], worker={"threads": 2})
    request_ids = dispatch_n(6)
    take = queue.take
    calls = []

    def second_take_fails(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise redis.ConnectionError("Connection refused")
        return take(*args, **kwargs)

    monkeypatch.setattr(queue, "take", second_take_fails)
    leader = pop_leader(redis_client)

    with pytest.raises(redis.ConnectionError):
        jobs.deliver(leader)

    sent = [r.request_id for r in receiver.received]
    assert len(sent) == len(set(sent)) == 4  # the leader and the three of the first take
    statuses = {r: store.get_delivery(runtime.engine, r)["status"] for r in request_ids}
    assert {r for r, s in statuses.items() if s == "delivered"} == set(sent)
    assert {r for r, s in statuses.items() if s == "queued"} == set(request_ids) - set(sent)
    queued = {m.decode() for m in redis_client.lrange(QUEUE_KEY, 0, -1)}
    assert queued == set(request_ids) - set(sent)


def test_a_member_recorded_but_not_settled_is_not_put_back_early(
    make_runtime, receiver, redis_client, monkeypatch
) -> None:
    """The batch fails after a member's retry was recorded but before its job was rescheduled:
    putting it back on the queue would send it before its backoff. It stays with its row, which
    reconcile re-queues (a stranded job) at its next_attempt_at."""
    runtime = make_runtime(endpoints=[endpoint(receiver)], worker={"threads": 1})
    receiver.script_all(503, 200)
    dispatch_n(2)
    leader = pop_leader(redis_client)
    after = jobs.Flight._after
    calls = []

    def member_after_fails(self, finished):
        calls.append(finished.sending.claim.request_id)
        if finished.sending.claim.request_id != leader:
            raise RuntimeError("interrupted after the record")
        return after(self, finished)

    monkeypatch.setattr(jobs.Flight, "_after", member_after_fails)

    with pytest.raises(RuntimeError):
        jobs.deliver(leader)

    (member,) = set(calls) - {leader}
    row = store.get_delivery(runtime.engine, member)
    assert row["status"] == "retrying" and row["next_attempt_at"] is not None
    assert redis_client.llen(QUEUE_KEY) == 0  # not put back: it would be claimed at once
    assert queue.job_state(runtime.queue, member)[0] == "started"


def test_a_worker_recovers_its_own_claims_that_no_job_holds(make_runtime) -> None:
    """RQ killed the job (its timeout) before it could record or give back its claims, or a
    claim's commit acknowledgement was lost: the worker lives on, so reconcile leaves its claims
    alone, but the worker itself knows which claims its running jobs hold and which records
    wait in its spool, and recovers the rest."""
    from datetime import UTC, datetime, timedelta

    from dispatcher.worker import spool
    from dispatcher.worker.liveness import mark_alive
    from dispatcher.worker.reconcile import OWN_CLAIM_GRACE, reconcile, recover_own_claims

    runtime = make_runtime(endpoints=[{"name": "partner-a", "url": "http://127.0.0.1:9/h", "key": "k"}])
    me = runtime.worker_name
    cut_short, running, spooled, recent = dispatch_n(4)
    now = datetime.now(UTC)
    old = now - OWN_CLAIM_GRACE - timedelta(seconds=5)
    for request_id in (cut_short, running, spooled):
        assert store.claim(runtime.engine, request_id, me, now=old)
    assert store.claim(runtime.engine, recent, me, now=now - timedelta(seconds=5))
    runtime.hold([running])  # a job of this process is still on it (a slow partner)
    claim = store.claim_many(runtime.engine, [spooled], me, now=old)[spooled]
    spool.hold(
        runtime.spool_dir,
        store.AttemptRecord(spooled, claim.event, claim.endpoint, claim.url, 1, "delivered", now),
        me,
        None,
    )
    mark_alive(runtime.redis, me)
    assert reconcile(runtime, now=now + timedelta(minutes=10)).abandoned == []  # a live worker's

    report = recover_own_claims(runtime, now=now)

    assert report.abandoned == [cut_short]
    (attempt,) = store.list_attempts(runtime.engine, cut_short)
    assert attempt["outcome"] == "interrupted"
    assert queue.job_state(runtime.queue, cut_short)[0] == "queued"
    for request_id in (running, spooled, recent):
        assert store.get_delivery(runtime.engine, request_id)["status"] == "in_flight"


def test_a_flight_holds_its_claims_until_the_job_ends(make_runtime, receiver, redis_client) -> None:
    runtime = make_runtime(endpoints=[endpoint(receiver)], worker={"threads": 2})
    receiver.default = Answer(delay=0.3)
    (request_id,) = dispatch_n(1)
    flight = jobs.Flight(runtime)
    flight.start([request_id])
    assert runtime.holding_now() == {request_id}
    flight.drain()
    flight.close()
    assert runtime.holding_now() == set()


def test_an_answer_holding_a_nul_is_recorded_on_postgresql(
    make_runtime, receiver, redis_client, pg_url
) -> None:
    """PostgreSQL refuses NUL in text; the stored answer has U+FFFD instead, and the group's
    other attempts are recorded with it."""
    runtime = make_runtime(endpoints=[endpoint(receiver)], database_url=pg_url, worker={"threads": 4})
    receiver.default = Answer(body=b'{"ok":true,"note":"a\x00b"}')
    request_ids = dispatch_n(4)

    assert jobs.deliver(pop_leader(redis_client)) is None

    for request_id in request_ids:
        assert store.get_delivery(runtime.engine, request_id)["status"] == "delivered"
        (attempt,) = store.list_attempts(runtime.engine, request_id)
        assert attempt["response_body"] == '{"ok":true,"note":"a\ufffdb"}'


def test_a_record_refused_for_good_holds_back_no_other(
    make_runtime, receiver, redis_client, monkeypatch
) -> None:
    """One attempt record the database refuses for a reason that will not pass: the group is
    written one by one at once (no 20 s of retries), the others land, the bad one is spooled."""
    import sqlalchemy as sa

    runtime = make_runtime(endpoints=[endpoint(receiver)], worker={"threads": 4})
    request_ids = dispatch_n(4)
    leader = pop_leader(redis_client)
    bad = request_ids[2]
    write = store.record_attempts
    calls = []

    def refuse_bad(engine, records, worker):
        calls.append(len(records))
        if any(r.request_id == bad for r, _ in records):
            raise sa.exc.DataError("INSERT ...", {}, ValueError("invalid byte sequence"))
        return write(engine, records, worker)

    monkeypatch.setattr(store, "record_attempts", refuse_bad)
    jobs.deliver(leader)

    for request_id in request_ids:
        expected = "in_flight" if request_id == bad else "delivered"
        assert store.get_delivery(runtime.engine, request_id)["status"] == expected
    held = list(Path(runtime.spool_dir).glob("*.json"))
    assert [p.name for p in held if bad in p.name] and len(held) == 1
    assert calls.count(1) >= 1 and len(calls) <= 2 * len(request_ids)  # never retried for 20 s
