"""Per-key ordering on the worker's side (``dispatcher.worker.ordering``), in-process against real
Redis, SQLite and a scripted receiver: what a job does with a delivery the claim refused, and
waking the next head of a key once its head is final."""

from __future__ import annotations

from pathlib import Path

from rq import Retry

from dispatcher import dispatch
from dispatcher.contract import catalogue as events
from dispatcher.policy.ordering import PARK_SECONDS
from dispatcher.worker import ordering
from dispatcher.worker.results import POISON
from tests.servers import Answer
from tests.worker.test_flight import deliver

MESSAGE = events.CATALOGUE["message_created"].example()
QUEUE_KEY = "rq:queue:send-webhook-request"
SCHEDULED_KEY = "rq:scheduled:send-webhook-request"
UNKNOWN = "0b4e7f3c-1111-4222-8333-444455556666"


def pharmacy(receiver, ordered: bool = True) -> dict:
    return {"name": "pharmacy", "url": receiver.url, "key": "pharmacy-key-1", "ordered": ordered}


def dispatched(encounter: str = "E-A") -> str:
    (request_id,) = dispatch("message_created", {**MESSAGE, "encounter_id": encounter})
    return request_id


def scheduled(redis_client) -> set[str]:
    return {m.decode() for m in redis_client.zrange(SCHEDULED_KEY, 0, -1)}


def test_a_delivery_behind_its_head_waits_and_an_unknown_one_is_poison(make_runtime, receiver) -> None:
    runtime = make_runtime(endpoints=[pharmacy(receiver)])
    head, behind = dispatched(), dispatched()
    results = ordering.not_claimed(runtime, [behind, UNKNOWN])
    assert results[UNKNOWN] is POISON
    assert isinstance(results[behind], Retry) and results[behind].intervals == [PARK_SECONDS]
    assert "poison job: no delivery row" in Path(runtime.settings.process_log).read_text()
    assert deliver(head) is None
    assert ordering.not_claimed(runtime, [head]) == {head: None}  # final: nothing to do


def test_a_head_retrying_holds_the_next_until_just_after_its_retry(make_runtime, receiver) -> None:
    runtime = make_runtime(endpoints=[pharmacy(receiver)], delivery={"backoff": [30]})
    head, behind = dispatched(), dispatched()
    receiver.scripts[head] = [Answer(503)]
    assert isinstance(deliver(head), Retry)
    (result,) = ordering.not_claimed(runtime, [behind]).values()
    assert isinstance(result, Retry) and 30 <= result.intervals[0] <= 32


def test_a_final_head_wakes_the_next_of_its_key_only(make_runtime, receiver, redis_client) -> None:
    runtime = make_runtime(endpoints=[pharmacy(receiver)])
    head, behind, other_key = dispatched("E-A"), dispatched("E-A"), dispatched("E-B")
    assert behind in scheduled(redis_client) and other_key not in scheduled(redis_client)
    assert not ordering.became_head(runtime, behind)
    assert deliver(head) is None
    assert ordering.became_head(runtime, behind)

    assert ordering.hand_off(runtime, [head]) == 1
    assert behind.encode() in redis_client.lrange(QUEUE_KEY, 0, -1)
    assert behind not in scheduled(redis_client)


def test_a_waiting_delivery_whose_head_finished_meanwhile_is_woken(
    make_runtime, receiver, redis_client
) -> None:
    runtime = make_runtime(endpoints=[pharmacy(receiver)])
    head, behind = dispatched(), dispatched()
    assert deliver(head) is None
    assert ordering.hand_off(runtime, [], waiting=[behind]) == 1
    assert behind.encode() in redis_client.lrange(QUEUE_KEY, 0, -1)


def test_without_an_ordered_endpoint_nothing_is_looked_up(make_runtime, receiver) -> None:
    runtime = make_runtime(endpoints=[pharmacy(receiver, ordered=False)])
    request_id = dispatched()
    assert not ordering.any_ordered(runtime)
    assert ordering.hand_off(runtime, [request_id]) == 0
    assert not ordering.became_head(runtime, request_id)
