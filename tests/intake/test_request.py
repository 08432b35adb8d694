"""``DispatchRequest``: one event on its way in, as every way in hands it to intake."""

from __future__ import annotations

import dataclasses
import sys

import pytest

from dispatcher import CATALOGUE, InvalidEventData
from dispatcher.intake import DispatchRequest

ORDER = CATALOGUE["order_changed"].example()


def test_a_request_is_frozen_with_dispatchs_defaults() -> None:
    request = DispatchRequest("order_changed", ORDER)
    assert (request.endpoints, request.dispatched_by) == (None, "SYSTEM")
    assert (request.idempotency_key, request.ordering_key, request.replay_of) == (None, None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.event = "message_created"  # type: ignore[misc]


def test_of_takes_a_name_and_data_or_a_model() -> None:
    from dispatcher.events import OrderChanged

    model = OrderChanged(order_number="ORDER-1", status="updated", created_at="2026-01-30T12:00:00Z")
    assert DispatchRequest.of(model) == DispatchRequest("order_changed", model)
    named = DispatchRequest.of("order_changed", ORDER, ["partner-a"], "DR-1", "k-1", "enc-1")
    assert named == DispatchRequest(
        "order_changed",
        ORDER,
        ["partner-a"],
        dispatched_by="DR-1",
        idempotency_key="k-1",
        ordering_key="enc-1",
    )
    with pytest.raises(InvalidEventData, match="not both"):
        DispatchRequest.of(model, ORDER)


def test_the_request_module_loads_no_database_redis_or_rq_library() -> None:
    """The HTTP API and the CLI build requests before anything connects."""
    import subprocess

    code = "import sys, dispatcher.intake.request; print(sorted({'sqlalchemy', 'redis', 'rq'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
