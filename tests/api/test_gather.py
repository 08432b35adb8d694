"""The API's gathering thread on real Redis and a real database: requests that arrive while a
group is being stored wait and are then stored together, each answered with its own deliveries
or its own refusal."""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from dispatcher import CATALOGUE, store
from dispatcher.api import gather
from dispatcher.api.gather import Gatherer, OutcomeUnknown
from dispatcher.intake.itemized import InvalidRequests
from dispatcher.intake.request import DispatchRequest
from dispatcher.runtime import Runtime

ENDPOINTS = [{"name": "partner-a", "url": "http://127.0.0.1:9/a", "events": ["*"]}]


def request(order_number: Any = "ORD-1") -> DispatchRequest:
    data = copy.deepcopy(CATALOGUE["order_changed"].example())
    data["order_number"] = order_number
    return DispatchRequest("order_changed", data)


def test_requests_waiting_behind_a_group_are_stored_together(
    make_runtime: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS)
    calls: list[int] = []
    holding = threading.Event()
    release = threading.Event()
    real = gather.dispatch_groups

    def held(rt: Runtime, groups: Sequence[Sequence[DispatchRequest]]) -> Any:
        calls.append(len(groups))
        if len(calls) == 1:  # the first group is being stored: hold it there
            holding.set()
            release.wait(10)
        return real(rt, groups)

    monkeypatch.setattr(gather, "dispatch_groups", held)
    gatherer = Gatherer(runtime)

    async def scenario() -> list[Any]:
        first = asyncio.ensure_future(gatherer.dispatch([request("ORD-1")]))
        await asyncio.get_running_loop().run_in_executor(None, holding.wait, 10)
        later = [
            asyncio.ensure_future(gatherer.dispatch([request("ORD-2")])),
            asyncio.ensure_future(gatherer.dispatch([request(5)])),
            asyncio.ensure_future(gatherer.dispatch([request("ORD-3"), request("ORD-4")])),
        ]
        while len(gatherer._waiting) < 3:  # all three are waiting behind the held group
            await asyncio.sleep(0)
        release.set()
        return await asyncio.gather(first, *later, return_exceptions=True)

    answers = asyncio.run(scenario())
    assert calls == [1, 3]  # the three that waited went as one call
    assert len(answers[0]) == 1 and len(answers[1]) == 1 and len(answers[3]) == 2
    assert isinstance(answers[2], InvalidRequests)
    assert sum(store.status_counts(runtime.engine).values()) == 4


def test_a_failure_of_the_whole_call_answers_every_waiting_request(
    make_runtime: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS)

    def broken(rt: Runtime, groups: Sequence[Sequence[DispatchRequest]]) -> Any:
        raise RuntimeError("unexpected")

    monkeypatch.setattr(gather, "dispatch_groups", broken)
    gatherer = Gatherer(runtime)

    async def scenario() -> list[Any]:
        return await asyncio.gather(gatherer.dispatch([request()]), return_exceptions=True)

    (answer,) = asyncio.run(scenario())
    assert isinstance(answer, RuntimeError)
    # and the thread goes on with the next request
    monkeypatch.setattr(gather, "dispatch_groups", lambda rt, groups: [[] for _ in groups])
    assert asyncio.run(scenario()) == [[]]


def test_a_group_the_database_never_answers_is_an_unknown_outcome(
    make_runtime: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS)
    release = threading.Event()

    def stuck(rt: Runtime, groups: Sequence[Sequence[DispatchRequest]]) -> Any:
        release.wait(10)
        return [[] for _ in groups]

    monkeypatch.setattr(gather, "dispatch_groups", stuck)
    monkeypatch.setattr(gather, "DEADLINE_SECONDS", 0.2)
    gatherer = Gatherer(runtime)

    async def scenario() -> list[Any]:
        return await asyncio.gather(gatherer.dispatch([request()]), return_exceptions=True)

    try:
        (answer,) = asyncio.run(scenario())
    finally:
        release.set()
    assert isinstance(answer, OutcomeUnknown)
    assert "retry with the same Idempotency-Key" in str(answer)


def test_a_thread_that_died_is_started_again(
    make_runtime: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS)
    gatherer = Gatherer(runtime)
    assert asyncio.run(gatherer.dispatch([request("ORD-1")]))[0].deliveries
    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join()
    gatherer._thread = dead  # as if the thread had ended
    assert asyncio.run(gatherer.dispatch([request("ORD-2")]))[0].deliveries
    assert gatherer._thread is not dead and gatherer._thread.is_alive()
