"""The RQ job: one delivery's attempt, and, while it runs, a batch of more taken from the queue.

claim (database) -> POST (on the runtime's sender threads) -> decide -> record (database, with
retries, else the local spool) -> return ``rq.Retry`` so RQ's scheduler runs the next attempt. A
worker never sleeps through a backoff. The steps of one flight are in :mod:`.flight`.

RQ's own bookkeeping costs more than a delivery does, so a job takes more queued jobs from the
head of the queue and delivers them too (:func:`deliver`): claims are made a group at a time in
one statement, up to ``worker.threads`` POSTs are in flight at once (with as many more claimed,
waiting their turn), and the attempts that finish together are recorded in one transaction.
Each delivery keeps its own claim, attempt row, retry and job.
"""

from __future__ import annotations

import logging
import time

import redis
from rq import Retry, get_current_job

from .. import queue, telemetry
from ..errors import PoisonJob
from ..logs import log_line
from ..runtime import Runtime, get_runtime
from . import ordering
from .flight import Flight
from .results import POISON, Result, retry_in

BATCH_MAX = 200
"""Most queued jobs one RQ job takes after its own (see :func:`deliver`)."""
POLL_SECONDS = 0.5
"""While POSTs are under way and the queue was empty, how often the batch looks again: a slow
partner holding some threads never keeps another partner's new deliveries waiting."""


def _returned(request_id: str, result: Result) -> Retry | None:
    if result is POISON:
        raise PoisonJob(f"no delivery row for request_id {request_id}; the job cannot be delivered")
    return result


def deliver(request_id: str) -> Retry | None:
    """The job RQ runs. Returns ``rq.Retry`` to schedule the next attempt, or None when done.

    While it runs it takes more queued jobs from the head of the queue and delivers them too (a
    batch). Each taken job leaves the queue atomically, marked started by this worker, so no
    other worker gets it; each keeps its own claim, attempt row and retry (its own scheduled
    job). A worker killed meanwhile leaves its taken jobs and claims to reconcile, which
    recovers them like any other dead worker's. The batch stops taking when the queue is empty,
    after :data:`BATCH_MAX` jobs, when the RQ job's time runs short, or when the worker is asked
    to stop; it always finishes and records what it started.

    Raises:
        PoisonJob: no delivery row has this request_id (failed in RQ, never retried).
    """
    runtime = get_runtime()
    batch = Batch(runtime)
    batch.run(request_id)
    result = batch.results[request_id]
    if not isinstance(result, Retry):
        ordering.hand_off(runtime, [request_id])
    elif request_id not in batch.flight.claimed and ordering.became_head(runtime, request_id):
        result = retry_in(0)  # its key's head finished since the claim: go again now, not later
    return _returned(request_id, result)


class Batch:
    """One RQ job's deliveries: its own and the members it takes from the queue."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.started = time.monotonic()
        self.threads = runtime.settings.worker_threads
        self.capacity = self.threads * queue.SENDS_PER_THREAD  # claimed and not yet recorded, at most
        self.budget = self._time_budget()
        self.flight = Flight(runtime)
        self.taken: set[str] = set()
        """Members taken and not settled yet."""
        self.finished: list[str] = []
        """Settled members whose job record goes with the next take."""
        self.results: dict[str, Result] = {}
        self.traces: dict[str, tuple[str | None, str | None]] = {}
        """The trace contexts of the members taken, read with them (while the worker traces)."""
        self.handled = 0
        self.queue_has_more = True
        self.next_poll = 0.0
        """When the queue was found empty, the time to look again."""

    def _time_budget(self) -> float:
        """Seconds this job may keep taking: the sends in hand must still finish, and be
        recorded, inside RQ's limit -- this job's own (set when it was queued, before any change
        of configuration), else today's."""
        settings = self.runtime.settings
        job = get_current_job()
        limit = job.timeout if job is not None and job.timeout else queue.job_timeout(settings)
        return limit - 60 - queue.SENDS_PER_THREAD * queue.slowest_attempt(settings)

    def can_take(self) -> bool:
        return (
            (self.queue_has_more or time.monotonic() >= self.next_poll)
            and self.handled < BATCH_MAX
            and not self.runtime.stop_requested
            and time.monotonic() - self.started < self.budget
        )

    def take(self, ids: list[str]) -> list[str]:
        """More members, a group at a time (a thread's worth of room, or all when idle), so that
        claims and records are one statement per group while the threads keep sending."""
        free = self.capacity - len(self.flight.pending) - len(ids)
        if not (self.can_take() and free > 0 and (free >= self.threads or not self.flight.pending)):
            return []
        wanted = min(free, BATCH_MAX - self.handled)
        try:
            traces = self.traces if telemetry.enabled() else None
            members = queue.take(self.runtime.queue, self.runtime.worker_name, wanted, self.finished, traces)
        except redis.RedisError:
            self.runtime.take_lost = True  # what it took, if anything, is found before the next job
            raise
        self.finished.clear()
        self.handled += len(members)
        self.taken.update(members)
        self.queue_has_more = len(members) == wanted
        if not self.queue_has_more:
            self.next_poll = time.monotonic() + POLL_SECONDS
        return members

    def run(self, request_id: str) -> None:
        ids = [request_id]
        try:
            while True:
                ids += self.take(ids)
                self.runtime.refresh_endpoints()  # a change made meanwhile applies to what is claimed next
                self.results.update(self.flight.start(ids, self.traces))
                ids = []
                self.settle()
                if not self.flight.pending:
                    if self.queue_has_more and self.can_take():
                        continue
                    break
                self.results.update(self.flight.collect(timeout=POLL_SECONDS))
                self.settle()
        except BaseException:
            self.wind_down()
            raise
        finally:
            self.close()

    def settle(self) -> None:
        """Gives each member with a result its next step in Redis: its retry scheduled, or its
        job record dropped with the next take; then wakes the next delivery of each ordered key
        a member finished, and a waiting member whose key's head finished meanwhile."""
        done, waiting = [], []
        for member in [m for m in self.taken if m in self.results]:
            self.taken.discard(member)
            result = self.results[member]
            if isinstance(result, Retry):
                claimed = member in self.flight.claimed
                queue.schedule_taken(
                    self.runtime.queue, member, self.runtime.worker_name, result.intervals[0], claimed=claimed
                )
                if not claimed:  # refused by the claim: waiting in its key
                    waiting.append(member)
            else:
                self.finished.append(member)
                done.append(member)
        if (done or waiting) and ordering.hand_off(self.runtime, done, waiting):
            self.queue_has_more = True  # it queued the next of a key: take it now, not at the next poll

    def wind_down(self) -> None:
        """After an error: records what was sent, and gives every member a way back."""
        try:
            self.results.update(self.flight.drain())  # what was sent is recorded whatever else went wrong
            self.settle()
            for member in list(self.taken):
                if member not in self.flight.claimed:  # never claimed: queued again, not lost
                    queue.put_back(self.runtime.queue, member)
                    self.taken.discard(member)
            # A member claimed but not settled keeps its job record (started by this worker) and
            # its row: reconcile re-queues it from the row, at its next_attempt_at (a stranded
            # job), or recovers its claim if it was never recorded. Put back now, it could be
            # sent too early.
        except Exception as exc:  # noqa: BLE001 - Redis away: reconcile re-queues from the database
            log_line(logging.WARNING, "batch wind-down incomplete", error=f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        self.flight.close()
        if not self.finished:
            return
        try:
            queue.take(self.runtime.queue, self.runtime.worker_name, 0, self.finished)
        except Exception as exc:  # noqa: BLE001 - a finished job's leftover record is harmless
            log_line(logging.WARNING, "finished job records not dropped", error=f"{type(exc).__name__}")
