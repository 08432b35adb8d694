"""``prepare_request``: every gate a way in passes, in one place, on a DispatchRequest -- with no
server (nothing here touches the database or Redis)."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest

from dispatcher import CATALOGUE, InvalidEventData, PayloadTooLarge, UnknownEndpoint, UnknownEvent
from dispatcher.errors import IdempotencyConflict, InvalidDispatchArgument
from dispatcher.intake import DispatchRequest
from dispatcher.intake.prepare import one_per_item, prepare_request
from dispatcher.vocabulary import DeliveryStatus, Reason
from tests.conftest import settings_dict, settings_from

ENDPOINTS = [
    {"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": "key-a-123", "events": ["*"]},
    {"name": "partner-b", "url": "http://127.0.0.1:9/b", "key": "key-b-123", "events": ["order_changed"]},
]


@pytest.fixture
def settings(tmp_path: Path):
    raw = settings_dict(
        redis_url="redis://127.0.0.1:1/0",
        database_url=f"sqlite:///{tmp_path}/log.db",
        tmp_path=tmp_path,
        endpoints=ENDPOINTS,
    )
    return settings_from(raw)


def order(**changes) -> dict:
    return {**copy.deepcopy(CATALOGUE["order_changed"].example()), **changes}


def test_a_request_becomes_one_delivery_per_subscriber(settings) -> None:
    request = DispatchRequest("order_changed", order(), dispatched_by="DR-1")
    rows = prepare_request(settings, [request], disabled=())
    assert [r.endpoint for r in rows] == ["partner-a", "partner-b"]
    assert all(r.status == DeliveryStatus.QUEUED and r.item == 0 for r in rows)
    assert json.loads(rows[0].payload)["metadata"]["dispatched_by"] == "DR-1"


def test_a_disabled_endpoint_gets_its_delivery_built_failed(settings) -> None:
    rows = prepare_request(settings, [DispatchRequest("order_changed", order())], disabled={"partner-b"})
    held = {r.endpoint: (r.status, r.reason) for r in rows}
    assert held == {
        "partner-a": (DeliveryStatus.QUEUED, None),
        "partner-b": (DeliveryStatus.FAILED, Reason.ENDPOINT_DISABLED),
    }


@pytest.mark.parametrize(
    ("request_", "error", "named"),
    [
        (DispatchRequest("order_shipped", {}), UnknownEvent, "order_shipped"),
        (DispatchRequest("order_changed", order(status=1)), InvalidEventData, "status"),
        (DispatchRequest("order_changed", order(), endpoints=["nope"]), UnknownEndpoint, "nope"),
        (DispatchRequest("order_changed", order(), dispatched_by=""), InvalidEventData, "dispatched_by"),
        (DispatchRequest("order_changed", order(), ordering_key=""), InvalidDispatchArgument, "ordering_key"),
        (
            DispatchRequest("order_changed", order(), idempotency_key="x" * 256),
            InvalidDispatchArgument,
            "idempotency_key",
        ),
    ],
    ids=["event", "data", "endpoint", "dispatched_by", "ordering_key", "idempotency_key"],
)
def test_each_gate_refuses_naming_what_is_wrong(settings, request_, error, named) -> None:
    with pytest.raises(error, match=named):
        prepare_request(settings, [request_], disabled=())


def test_the_size_gate_counts_the_whole_body(settings) -> None:
    small = dataclasses.replace(
        settings, delivery=dataclasses.replace(settings.delivery, max_payload_bytes=200)
    )
    with pytest.raises(PayloadTooLarge):
        prepare_request(small, [DispatchRequest("order_changed", order())], disabled=())


def test_a_call_is_all_or_nothing_and_names_the_bad_item(settings) -> None:
    requests = [DispatchRequest("order_changed", order()), DispatchRequest("order_changed", order(status=1))]
    with pytest.raises(InvalidEventData, match=r"\[1\] status"):
        prepare_request(settings, requests, disabled=())


def test_a_repeated_key_in_one_call_gets_no_deliveries_and_a_different_one_conflicts(settings) -> None:
    same = [DispatchRequest("order_changed", order(), idempotency_key="k-1") for _ in range(2)]
    assert [r.item for r in prepare_request(settings, same, disabled=())] == [0, 0]
    other = [same[0], DispatchRequest("order_changed", order(status="cancelled"), idempotency_key="k-1")]
    with pytest.raises(IdempotencyConflict):
        prepare_request(settings, other, disabled=())


def test_one_event_per_call(settings) -> None:
    message = CATALOGUE["message_created"].example()
    requests = [DispatchRequest("order_changed", order()), DispatchRequest("message_created", message)]
    with pytest.raises(ValueError, match="one event per call"):
        prepare_request(settings, requests, disabled=())
    assert prepare_request(settings, [], disabled=()) == []


def test_one_per_item_names_a_bad_key_by_its_list_and_index() -> None:
    with pytest.raises(InvalidDispatchArgument, match=r"^ordering_keys\[1\]: must be 1 to 255"):
        one_per_item("order_changed", [order(), order()], ordering_keys=["a", ""])
    with pytest.raises(InvalidDispatchArgument, match=r"^idempotency_keys: expected a list of 2 keys"):
        one_per_item("order_changed", [order(), order()], idempotency_keys=["a"])
    requests = one_per_item("order_changed", [order()], replay_of=["rid-1"], endpoints=["partner-a"])
    assert requests == [DispatchRequest("order_changed", order(), endpoints=["partner-a"], replay_of="rid-1")]
