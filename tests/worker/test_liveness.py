"""Who is alive, and whether Redis is the one the workers left (dispatcher.worker.liveness), and
what the heartbeat makes of it: on the real Redis."""

from __future__ import annotations

from dispatcher.worker import liveness
from dispatcher.worker.housekeeping import Heartbeat, Urgency


def test_a_worker_that_stops_beating_is_reported_dead_once_its_key_expires(redis_client) -> None:
    liveness.beat(redis_client, "w-dead")
    redis_client.zadd(liveness.REGISTRY_KEY, {"w-dead": 1})  # its last beat, long ago
    assert liveness.beat(redis_client, "w-live").dead == []  # its key still lives
    redis_client.delete(liveness.alive_key("w-dead"))  # the TTL ran out
    seen = liveness.beat(redis_client, "w-live")
    assert seen.dead == ["w-dead"] and "w-live" not in seen.dead
    liveness.forget(redis_client, seen.dead)
    assert liveness.beat(redis_client, "w-live").dead == []


def test_a_clean_stop_leaves_nothing_to_recover(redis_client) -> None:
    liveness.beat(redis_client, "w-1")
    liveness.mark_dead(redis_client, "w-1")
    assert redis_client.zscore(liveness.REGISTRY_KEY, "w-1") is None
    assert liveness.alive_workers(redis_client, ["w-1"]) == set()


def test_the_epoch_tells_an_empty_redis(redis_client) -> None:
    assert liveness.beat(redis_client, "w-1").redis_was_empty  # the first beat ever
    assert not liveness.beat(redis_client, "w-1").redis_was_empty
    redis_client.flushdb()
    assert liveness.beat(redis_client, "w-1").redis_was_empty


def test_the_heartbeat_asks_for_a_reconcile_when_redis_answers_again(make_runtime, monkeypatch) -> None:
    runtime = make_runtime(endpoints=[])
    urgency = Urgency()
    heartbeat = Heartbeat(runtime, urgency)
    heartbeat.beat()
    assert urgency.take() == (["redis empty"], set())
    heartbeat.beat()
    assert urgency.take() == ([], set())

    def refused(*_args: object) -> liveness.Beat:
        raise ConnectionError("Redis is away")

    monkeypatch.setattr(liveness, "beat", refused)
    heartbeat.beat()
    assert urgency.take() == ([], set()) and heartbeat.redis_failing
    monkeypatch.undo()
    heartbeat.beat()
    assert urgency.take() == (["redis answering again"], set())
