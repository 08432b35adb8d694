"""Reconcile's verdicts on one unfinished delivery, as pure decisions.

Reconcile (:mod:`dispatcher.worker.reconcile`) reads a delivery's row, its RQ job's state and
which workers are alive (a liveness key in Redis, or a lease in the database); these functions say what to do: leave it, recover a dead worker's
claim, re-queue it (now, or at its ``next_attempt_at``), or move an overdue retry to the queue.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from ..vocabulary import ACTIVE_JOB_STATES, JobState

ORPHAN_GRACE = timedelta(seconds=2)
"""A queued row younger than this is most likely a dispatch still on its way to Redis; had it
been re-queued, no harm: enqueueing is unique per request_id, so one of the two finds the job
there and leaves it."""
ABANDON_GRACE = timedelta(seconds=10)
"""A claim younger than this is left alone, whoever holds it."""
OVERDUE_GRACE = timedelta(seconds=30)
"""A scheduled retry this late means RQ's scheduler is not running it (a dead lock holder)."""
STRANDED_SLACK_SECONDS = 60
"""A job started longer ago than RQ's job timeout plus this is no longer being run by anyone."""


class Action(StrEnum):
    LEAVE = "leave"
    REQUEUE = "requeue"
    MOVE_OVERDUE = "move_overdue"


@dataclass(frozen=True)
class Verdict:
    action: Action
    at: datetime | None = None
    """For a re-queue: when its job should run (None: now)."""


LEAVE = Verdict(Action.LEAVE)


def is_alive(worker: str | None, alive: Container[str], leased: Container[str]) -> bool:
    """A worker is alive while its liveness key is in Redis (``alive``) *or* its lease in the
    database has not expired (``leased``): a Redis flush or restart removes every key, never a
    lease, so a live worker is never taken for dead because Redis lost its data."""
    return worker is not None and (worker in alive or worker in leased)


def is_abandoned(worker: str | None, alive: Container[str], leased: Container[str]) -> bool:
    """An ``in_flight`` delivery whose worker is gone: its liveness key has expired *and* its
    lease has (killed, host lost); its claim is recovered. A live worker's claims are its own to
    recover, whatever Redis says."""
    return not is_alive(worker, alive, leased)


def is_stranded(
    job_state: str | None,
    worker_alive: bool,
    started_at: datetime | None,
    now: datetime,
    job_timeout_seconds: float,
) -> bool:
    """A job a live worker marked started longer ago than any RQ job may run, for a delivery
    that is not in flight: no batch holds it any more (one could not give it back because Redis
    failed at that moment)."""
    cutoff = now - timedelta(seconds=job_timeout_seconds + STRANDED_SLACK_SECONDS)
    return job_state == JobState.STARTED and worker_alive and started_at is not None and started_at < cutoff


def orphan_verdict(
    job_state: str | None,
    worker_alive: bool,
    stranded: bool,
    due: datetime | None,
    now: datetime,
) -> Verdict:
    """What to do with a ``queued`` or ``retrying`` delivery, given its job's state (None: no job),
    whether the worker its job names is alive, whether the job is stranded, and when its next
    attempt is due."""
    if job_state == JobState.SCHEDULED and due is not None and due < now - OVERDUE_GRACE:
        return Verdict(Action.MOVE_OVERDUE)
    running_elsewhere = job_state == JobState.STARTED and not worker_alive
    if job_state in ACTIVE_JOB_STATES and not running_elsewhere and not stranded:
        return LEAVE
    return Verdict(Action.REQUEUE, at=due if due is not None and due > now else None)
