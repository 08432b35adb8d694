"""One thread per API process that stores what concurrent requests dispatch, together.

A request's events wait in :class:`Gatherer` while the thread stores the previous group; the
thread then takes everything waiting (up to :data:`MAX_EVENTS` events) and hands it to intake as
one call of many groups (:func:`dispatch_groups`: each request all or nothing and refused on its
own, the rest stored in one transaction and queued in one Redis pipeline). Under load many
requests share a commit; alone, a request is stored at once. No thread-pool hop per request.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import DispatcherError
from ..intake.itemized import Dispatched, Outcome, dispatch_groups
from ..intake.request import DispatchRequest
from ..logs import log_line
from ..runtime import Runtime

MAX_EVENTS = 2000
"""The most events one group of requests stores in one transaction."""
DEADLINE_SECONDS = 60.0
"""A request waits this long for its group to be stored, then is told the outcome is unknown."""


class OutcomeUnknown(DispatcherError):
    """The request's events were handed to the database, and no answer came in time: they may
    be stored. Retrying with the same Idempotency-Key is safe."""


@dataclass
class _Waiting:
    requests: Sequence[DispatchRequest]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Outcome]


def _settle(future: asyncio.Future[Outcome], outcome: Outcome | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class Gatherer:
    """Requests waiting to be stored, and the thread that stores them."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._waiting: list[_Waiting] = []
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None

    async def dispatch(self, requests: Sequence[DispatchRequest]) -> list[Dispatched]:
        """Stores and queues ``requests`` (all or nothing) with whatever else is waiting.

        Raises:
            as :func:`~dispatcher.intake.itemized.dispatch_each`.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        with self._ready:
            self._waiting.append(_Waiting(requests, loop, future))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="api-gather", daemon=True)
                self._thread.start()
            self._ready.notify()
        try:
            outcome = await asyncio.wait_for(asyncio.shield(future), DEADLINE_SECONDS)
        except TimeoutError as exc:
            raise OutcomeUnknown(
                f"the database did not answer within {DEADLINE_SECONDS:.0f} s; the events may be stored: "
                "retry with the same Idempotency-Key"
            ) from exc
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _take(self) -> list[_Waiting]:
        """Everything waiting, up to MAX_EVENTS events (at least one request)."""
        with self._ready:
            while not self._waiting:
                self._ready.wait()
            taken: list[_Waiting] = []
            events = 0
            while self._waiting and (not taken or events + len(self._waiting[0].requests) <= MAX_EVENTS):
                one = self._waiting.pop(0)
                taken.append(one)
                events += len(one.requests)
            return taken

    def _run(self) -> None:
        while True:
            taken = self._take()
            outcomes: Sequence[Outcome | BaseException]
            try:
                outcomes = dispatch_groups(self.runtime, [w.requests for w in taken])
            except Exception as exc:  # noqa: BLE001 - each waiting request is answered with it (the app's handlers)
                log_line(logging.WARNING, "api: storing a group of requests failed", error=type(exc).__name__)
                outcomes = [exc] * len(taken)
            for waiting, outcome in zip(taken, outcomes, strict=True):
                try:
                    waiting.loop.call_soon_threadsafe(_settle, waiting.future, outcome)
                except RuntimeError:  # its event loop has closed: no one waits for the answer
                    continue
