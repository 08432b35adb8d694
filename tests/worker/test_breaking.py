"""A paused endpoint and an open breaker hold deliveries back without an attempt
(dispatcher.worker.breaking, through a flight): the job run in-process against a real HTTP
receiver on 127.0.0.1, real Redis and SQLite."""

from __future__ import annotations

import copy
from pathlib import Path

import redis
import sqlalchemy as sa
from rq import Retry

from dispatcher import CATALOGUE, dispatch, store
from dispatcher.config import BreakerSettings
from dispatcher.policy.breaker import Sample
from dispatcher.policy.gates import PAUSED_RECHECK_SECONDS, SCHEDULER_SLACK_SECONDS
from dispatcher.runtime import get_runtime
from dispatcher.sending import breaker
from dispatcher.store.endpoints import set_endpoint_paused
from dispatcher.store.schema import ALERTS
from dispatcher.vocabulary import AlertKind, BreakerState, DeliveryStatus
from dispatcher.worker import breaking
from dispatcher.worker.flight import Flight
from tests.servers import Answer

NAME = "partner-a"
BREAKER = {"failure_ratio": 0.7, "min_attempts": 3, "window": "60s", "open_for": "30s", "max_open_for": "10m"}
SETTINGS = BreakerSettings(0.7, 3, 60, 30, 600)


def deliver(request_id: str):
    """One delivery's flight, as its job flies it: its result (``rq.Retry`` or None)."""
    flight = Flight(get_runtime())
    try:
        results = {**flight.start([request_id]), **flight.drain()}
    finally:
        flight.close()
    return results[request_id]


def dispatch_one() -> str:
    (request_id,) = dispatch("order_changed", copy.deepcopy(CATALOGUE["order_changed"].example()))
    return request_id


def runtime_for(make_runtime, receiver, **delivery):
    return make_runtime(
        endpoints=[{"name": NAME, "url": receiver.url}],
        delivery={"breaker": BREAKER, "max_attempts": 10, **delivery},
    )


def redis_now(client) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def open_breaker(client, now: float) -> None:
    for _ in range(3):
        breaker.record(client, NAME, SETTINGS, Sample.FAILED, now=now)
    assert breaker.read(client, NAME)[0].open


def alerts(runtime) -> list[tuple[str, str]]:
    with runtime.engine.connect() as conn:
        rows = conn.execute(sa.select(ALERTS.c.kind, ALERTS.c.occurrence).order_by(ALERTS.c.id)).all()
    return [(r.kind, r.occurrence) for r in rows]


def log_text(runtime) -> str:
    folder = Path(runtime.settings.process_log).parent
    return "".join(p.read_text(errors="replace") for p in folder.glob("*.log") if not p.is_symlink())


def test_failed_attempts_open_the_breaker_once_and_raise_one_alert(make_runtime, receiver, redis_client):
    runtime = runtime_for(make_runtime, receiver)
    receiver.default = Answer(status=503)
    ids = [dispatch_one() for _ in range(4)]
    for request_id in ids[:3]:
        assert isinstance(deliver(request_id), Retry)
    assert breaker.states(redis_client, [NAME])[NAME].state is BreakerState.OPEN
    ((kind, occurrence),) = alerts(runtime)
    assert kind == AlertKind.ENDPOINT_BREAKER_OPENED and occurrence.startswith(
        f"endpoint.breaker_opened:{NAME}:"
    )
    assert "breaker opened endpoint=partner-a attempts=3 failures=3" in log_text(runtime)

    # the fourth is not attempted: given back until the probe time, its attempt not used
    result = deliver(ids[3])
    assert isinstance(result, Retry) and 30 <= result.intervals[0] <= 30 + SCHEDULER_SLACK_SECONDS
    assert len(receiver.received) == 3
    row = store.get_delivery(runtime.engine, ids[3])
    assert row["status"] == DeliveryStatus.QUEUED and row["attempts"] == 0 and row["worker"] is None
    assert store.list_attempts(runtime.engine, ids[3]) == []


def test_held_back_again_and_again_a_delivery_keeps_its_attempts(make_runtime, receiver, redis_client):
    runtime = runtime_for(make_runtime, receiver)
    receiver.default = Answer(status=503)
    request_id = dispatch_one()
    assert isinstance(deliver(request_id), Retry)  # one real attempt, 503
    open_breaker(redis_client, redis_now(redis_client))
    for _ in range(3):
        assert isinstance(deliver(request_id), Retry)
    row = store.get_delivery(runtime.engine, request_id)
    assert row["attempts"] == 1 and row["status"] == DeliveryStatus.RETRYING
    assert len(store.list_attempts(runtime.engine, request_id)) == 1
    assert len(receiver.received) == 1


def test_a_probe_answered_closes_the_breaker_and_raises_recovered(make_runtime, receiver, redis_client):
    runtime = runtime_for(make_runtime, receiver)
    open_breaker(redis_client, redis_now(redis_client) - 31)  # half-open by now
    request_id = dispatch_one()
    assert deliver(request_id) is None
    assert store.get_delivery(runtime.engine, request_id)["status"] == DeliveryStatus.DELIVERED
    assert breaker.states(redis_client, [NAME])[NAME].state is BreakerState.CLOSED
    assert [kind for kind, _ in alerts(runtime)] == [AlertKind.ENDPOINT_RECOVERED]
    assert "breaker probe endpoint=partner-a" in log_text(runtime)


def test_a_failed_probe_opens_it_again_for_twice_as_long(make_runtime, receiver, redis_client):
    runtime = runtime_for(make_runtime, receiver)
    receiver.default = Answer(status=503)
    open_breaker(redis_client, redis_now(redis_client) - 31)
    request_id = dispatch_one()
    assert isinstance(deliver(request_id), Retry)
    stored, now = breaker.read(redis_client, NAME)
    assert stored.open and stored.open_seconds == 60 and stored.open_until > now + 55
    assert alerts(runtime) == []  # it was open already: no second alert
    assert "breaker probe failed; open again" in log_text(runtime)


def test_a_paused_endpoint_gives_the_delivery_back_without_an_attempt(make_runtime, receiver):
    runtime = runtime_for(make_runtime, receiver)
    set_endpoint_paused(runtime.engine, NAME, True)
    request_id = dispatch_one()
    result = deliver(request_id)
    assert isinstance(result, Retry) and result.intervals == [PAUSED_RECHECK_SECONDS]
    row = store.get_delivery(runtime.engine, request_id)
    assert row["status"] == DeliveryStatus.QUEUED and row["attempts"] == 0 and row["worker"] is None
    assert receiver.received == [] and store.list_attempts(runtime.engine, request_id) == []
    assert f"held back: endpoint paused request_id={request_id}" in log_text(runtime)


def test_a_resumed_endpoint_is_sent_even_while_the_cache_still_says_paused(make_runtime, receiver):
    runtime = runtime_for(make_runtime, receiver)
    set_endpoint_paused(runtime.engine, NAME, True)
    assert NAME in runtime.disabled.paused()  # cached for a few seconds
    set_endpoint_paused(runtime.engine, NAME, False)
    request_id = dispatch_one()
    assert deliver(request_id) is None
    assert store.get_delivery(runtime.engine, request_id)["status"] == DeliveryStatus.DELIVERED


def test_with_redis_away_the_breaker_lets_deliveries_go_and_says_so_once(make_runtime, receiver):
    runtime = runtime_for(make_runtime, receiver)
    ids = [dispatch_one() for _ in range(2)]
    away = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    runtime.__dict__["redis"] = away  # the jobs are not needed: the flight is run here
    for request_id in ids:
        assert deliver(request_id) is None
    assert {store.get_delivery(runtime.engine, r)["status"] for r in ids} == {DeliveryStatus.DELIVERED}
    assert log_text(runtime).count("breaker state unreachable; sending as if closed") == 1
    del runtime.__dict__["redis"]
    dispatch_one()  # Redis back: the next breaker call says so
    holds = breaking.Holds(runtime)
    endpoint = runtime.settings.endpoint(NAME)
    assert holds.admit(endpoint, runtime.settings.delivery_for(endpoint), "r-again").retry_in is None
    assert "breaker state reachable again" in log_text(runtime)


def test_breaker_off_asks_nothing_of_redis(make_runtime, receiver, redis_client):
    runtime = make_runtime(endpoints=[{"name": NAME, "url": receiver.url, "breaker": False}])
    receiver.default = Answer(status=503)
    for _ in range(12):
        deliver(dispatch_one())
    assert not redis_client.exists(breaker.state_key(NAME), breaker.window_key(NAME))
    assert len(receiver.received) == 12
    assert runtime.settings.delivery_for(runtime.settings.endpoint(NAME)).breaker is None


def test_a_probe_held_back_by_another_gate_gives_its_turn_back(make_runtime, receiver, redis_client):
    runtime = runtime_for(make_runtime, receiver)
    open_breaker(redis_client, redis_now(redis_client) - 31)
    holds = breaking.Holds(runtime)
    endpoint = runtime.settings.endpoint(NAME)
    rules = runtime.settings.delivery_for(endpoint)
    assert holds.admit(endpoint, rules, "first").retry_in is None and holds.probes == {"first"}
    assert holds.admit(endpoint, rules, "second").retry_in is not None  # the turn is taken
    holds.release(NAME, "first")
    assert holds.probes == set()
    assert holds.admit(endpoint, rules, "second").retry_in is None


def test_a_group_asks_each_breaker_once_and_counts_its_results_together(make_runtime, receiver, redis_client):
    runtime = runtime_for(make_runtime, receiver)
    redis_client.delete(breaker.state_key(NAME), breaker.window_key(NAME))
    holds = breaking.Holds(runtime)
    endpoint = runtime.settings.endpoint(NAME)
    rules = runtime.settings.delivery_for(endpoint)
    holds.begin_group()
    assert holds.admit(endpoint, rules, "one").retry_in is None
    runtime.__dict__["redis"] = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    assert holds.admit(endpoint, rules, "two").retry_in is None  # told the group's answer: no call
    assert "breaker state unreachable" not in log_text(runtime)
    del runtime.__dict__["redis"]
    for request_id in ("one", "two", "three"):
        holds.after_attempt(endpoint, rules, request_id, Sample.FAILED)
    assert not redis_client.exists(breaker.window_key(NAME))  # kept until counted
    holds.count()  # 3 failures of 3 attempts, min_attempts 3: it opens, in one call
    assert breaker.states(redis_client, [NAME])[NAME].state is BreakerState.OPEN
    holds.begin_group()
    assert holds.admit(endpoint, rules, "four").retry_in is not None  # the next group asks afresh
