"""dispatch_each() on real Redis and a real database: requests of several events in one call,
every mistake named by its place and path, all or nothing, and idempotent repeats answered
with the first dispatch's deliveries."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import redis

from dispatcher import CATALOGUE, store
from dispatcher.errors import IdempotencyConflict, StoreUnavailable
from dispatcher.intake.itemized import InvalidRequests, ItemProblem, dispatch_each, dispatch_groups
from dispatcher.intake.request import DispatchRequest
from dispatcher.runtime import Runtime

QUEUE_KEY = "rq:queue:send-webhook-request"
ENDPOINTS = [
    {"name": "partner-a", "url": "http://127.0.0.1:9/a", "events": ["*"]},
    {"name": "partner-b", "url": "http://127.0.0.1:9/b", "events": ["order_changed"]},
]


def example(event: str) -> dict:
    return copy.deepcopy(CATALOGUE[event].example())


def stored_count(runtime: Runtime) -> int:
    return sum(store.status_counts(runtime.engine).values())


@pytest.fixture
def runtime(make_runtime: Callable[..., Runtime], database_url: str) -> Runtime:
    return make_runtime(endpoints=ENDPOINTS, database_url=database_url)


def test_requests_of_several_events_are_stored_and_queued_in_order(
    runtime: Runtime, redis_client: redis.Redis
) -> None:
    answers = dispatch_each(
        runtime,
        [
            DispatchRequest("order_changed", example("order_changed")),
            DispatchRequest("encounter_cancelled", example("encounter_cancelled")),
        ],
    )
    assert [[e for _, e in a.deliveries] for a in answers] == [["partner-a", "partner-b"], ["partner-a"]]
    assert not any(a.repeated for a in answers)
    ids = [rid for a in answers for rid, _ in a.deliveries]
    assert store.selection.endpoints_of(runtime.engine, ids) == {
        rid: e for a in answers for rid, e in a.deliveries
    }
    assert sorted(j.decode() for j in redis_client.lrange(QUEUE_KEY, 0, -1)) == sorted(ids)


def test_every_bad_request_is_named_by_place_and_path_and_nothing_is_stored(runtime: Runtime) -> None:
    bad_data = example("order_changed")
    bad_data["order_number"] = 5
    del bad_data["status"]
    with pytest.raises(InvalidRequests) as caught:
        dispatch_each(
            runtime,
            [
                DispatchRequest("order_changed", example("order_changed")),
                DispatchRequest("order_changed", bad_data),
                DispatchRequest("no_such_event", {}),
                DispatchRequest("order_changed", example("order_changed"), endpoints=["nobody"]),
                DispatchRequest("order_changed", example("order_changed"), ordering_key=""),
            ],
        )
    problems = caught.value.problems
    assert ItemProblem(1, "data.order_number", "expected a string, got int 5") in problems
    assert ItemProblem(1, "data.status", "required field is missing") in problems
    assert [p.field for p in problems if p.index == 2] == ["event"]
    assert [p.field for p in problems if p.index == 3] == ["endpoints"]
    assert [p.field for p in problems if p.index == 4] == ["ordering_key"]
    assert not any(p.index == 0 for p in problems)
    assert caught.value.too_large is False
    assert stored_count(runtime) == 0


def test_a_body_over_the_payload_limit_is_named_as_too_large(
    make_runtime: Callable[..., Runtime],
) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS, delivery={"max_payload_bytes": 1024})
    big = example("order_changed")
    big["order_number"] = "x" * 2000
    with pytest.raises(InvalidRequests) as caught:
        dispatch_each(
            runtime,
            [
                DispatchRequest("order_changed", example("order_changed")),
                DispatchRequest("order_changed", big),
            ],
        )
    assert caught.value.too_large is True
    assert [(p.index, p.field) for p in caught.value.problems] == [(1, "data")]
    assert "max_payload_bytes" in caught.value.problems[0].detail
    assert stored_count(runtime) == 0


def test_a_repeated_key_gets_the_first_deliveries_and_stores_nothing(runtime: Runtime) -> None:
    request = DispatchRequest("order_changed", example("order_changed"), idempotency_key="k-1")
    (first,) = dispatch_each(runtime, [request])
    (again,) = dispatch_each(runtime, [request])
    assert first.repeated is False
    assert again.repeated is True
    assert again.deliveries == first.deliveries
    assert stored_count(runtime) == 2


def test_a_repeated_key_with_other_data_is_a_conflict(runtime: Runtime) -> None:
    dispatch_each(
        runtime, [DispatchRequest("order_changed", example("order_changed"), idempotency_key="k-2")]
    )
    changed = example("order_changed")
    changed["order_number"] = "ORD-other"
    with pytest.raises(IdempotencyConflict):
        dispatch_each(runtime, [DispatchRequest("order_changed", changed, idempotency_key="k-2")])
    assert stored_count(runtime) == 2


def test_an_endpoint_added_a_moment_ago_is_found_before_it_is_refused(runtime: Runtime) -> None:
    from dispatcher.ops.door import Actor
    from dispatcher.ops.endpoint_admin import Add

    runtime.adopt_file_endpoints()
    runtime.refresh_endpoints(force=True)
    other = runtime.__class__(runtime.settings, worker_name="other")  # another process's view
    try:
        Add({"name": "partner-new", "url": "http://127.0.0.1:9/n", "events": ["*"]}).carry_out(
            other, Actor("op")
        )
        (answer,) = dispatch_each(
            runtime, [DispatchRequest("order_changed", example("order_changed"), endpoints=["partner-new"])]
        )
    finally:
        other.close()
    assert [e for _, e in answer.deliveries] == ["partner-new"]


def test_groups_are_refused_alone_and_the_rest_stored_together(runtime: Runtime) -> None:
    bad = example("order_changed")
    bad["order_number"] = 5
    outcomes = dispatch_groups(
        runtime,
        [
            [DispatchRequest("order_changed", example("order_changed"))],
            [
                DispatchRequest("order_changed", example("order_changed")),
                DispatchRequest("order_changed", bad),
            ],
            [DispatchRequest("encounter_cancelled", example("encounter_cancelled"))],
        ],
    )
    assert isinstance(outcomes[1], InvalidRequests)
    assert [p.index for p in outcomes[1].problems] == [1]  # numbered within its own group
    first, third = outcomes[0], outcomes[2]
    assert isinstance(first, list) and isinstance(third, list)
    assert [e for _, e in first[0].deliveries] == ["partner-a", "partner-b"]
    assert [e for _, e in third[0].deliveries] == ["partner-a"]
    assert stored_count(runtime) == 3


def test_a_key_two_groups_share_is_one_dispatch_and_another_body_is_refused(runtime: Runtime) -> None:
    same = DispatchRequest("order_changed", example("order_changed"), idempotency_key="shared")
    changed = example("order_changed")
    changed["order_number"] = "ORD-else"
    other = DispatchRequest("order_changed", changed, idempotency_key="shared")
    outcomes = dispatch_groups(runtime, [[same], [same], [other]])
    assert isinstance(outcomes[0], list) and isinstance(outcomes[1], list)
    assert outcomes[1][0].deliveries == outcomes[0][0].deliveries
    assert outcomes[1][0].repeated is True and outcomes[0][0].repeated is False
    assert isinstance(outcomes[2], IdempotencyConflict)
    assert stored_count(runtime) == 2


def test_a_key_found_used_only_as_they_are_stored_refuses_only_its_group(runtime: Runtime) -> None:
    dispatch_each(
        runtime, [DispatchRequest("order_changed", example("order_changed"), idempotency_key="old")]
    )
    changed = example("order_changed")
    changed["order_number"] = "ORD-new"
    outcomes = dispatch_groups(
        runtime,
        [
            [DispatchRequest("encounter_cancelled", example("encounter_cancelled"))],
            [DispatchRequest("order_changed", changed, idempotency_key="old")],
        ],
    )
    assert isinstance(outcomes[0], list) and len(outcomes[0][0].deliveries) == 1
    assert isinstance(outcomes[1], IdempotencyConflict)
    assert stored_count(runtime) == 3


def test_a_database_that_refuses_refuses_every_group_that_passed(
    make_runtime: Callable[..., Runtime],
) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS, database_url="postgresql+psycopg://postgres@127.0.0.1:1/test")
    bad = example("order_changed")
    bad["order_number"] = 5
    outcomes = dispatch_groups(
        runtime,
        [
            [DispatchRequest("order_changed", example("order_changed"))],
            [DispatchRequest("order_changed", bad)],
        ],
    )
    assert isinstance(outcomes[0], StoreUnavailable)
    assert isinstance(outcomes[1], InvalidRequests)


def test_a_key_shared_with_a_group_that_is_refused_is_dispatched_afresh(
    make_runtime: Callable[..., Runtime],
) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS, delivery={"max_payload_bytes": 2048})
    big = example("order_changed")
    big["order_number"] = "x" * 4000
    keyed = DispatchRequest("encounter_cancelled", example("encounter_cancelled"), idempotency_key="K")
    outcomes = dispatch_groups(runtime, [[keyed, DispatchRequest("order_changed", big)], [keyed]])
    assert isinstance(outcomes[0], InvalidRequests)
    assert isinstance(outcomes[1], list)
    assert outcomes[1][0].repeated is False and len(outcomes[1][0].deliveries) == 1
    assert stored_count(runtime) == 1


def test_when_the_groups_go_alone_a_shared_key_still_gets_the_first_deliveries(runtime: Runtime) -> None:
    dispatch_each(
        runtime, [DispatchRequest("order_changed", example("order_changed"), idempotency_key="old")]
    )
    changed = example("order_changed")
    changed["order_number"] = "ORD-other"
    keyed = DispatchRequest("encounter_cancelled", example("encounter_cancelled"), idempotency_key="K")
    outcomes = dispatch_groups(
        runtime, [[keyed], [keyed], [DispatchRequest("order_changed", changed, idempotency_key="old")]]
    )
    assert isinstance(outcomes[0], list) and isinstance(outcomes[1], list)
    assert outcomes[1][0].deliveries == outcomes[0][0].deliveries != []
    assert outcomes[1][0].repeated is True
    assert isinstance(outcomes[2], IdempotencyConflict)
    assert stored_count(runtime) == 3


def test_a_dispatched_by_utf8_cannot_carry_refuses_only_its_group(runtime: Runtime) -> None:
    outcomes = dispatch_groups(
        runtime,
        [
            [DispatchRequest("order_changed", example("order_changed"), dispatched_by="\ud800")],
            [DispatchRequest("order_changed", example("order_changed"))],
        ],
    )
    assert isinstance(outcomes[0], InvalidRequests)
    assert [p.field for p in outcomes[0].problems] == ["dispatched_by"]
    assert isinstance(outcomes[1], list) and len(outcomes[1][0].deliveries) == 2
