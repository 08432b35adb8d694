"""RQ's private layout in Redis, named once: every key, record field and status word of RQ that
the project reads or writes itself (this room's Lua scripts, its pipelines, the snapshot),
rather than through RQ's public API.

Each key is derived from RQ's own attributes and templates (``Job.redis_job_namespace_prefix``,
``Queue.redis_queues_keys``, the registries' ``key_template``, ``rq.scheduler``'s templates...),
so it follows RQ's ``RQ_KEY_PREFIX``; the record fields, which RQ spells only as literals inside
its methods, are spelled here and nowhere else; the status words are RQ's ``JobStatus``. The Lua
scripts get the fields and statuses from :data:`LUA_NAMES` (a preamble the queue room puts before
each script) and the key prefixes as arguments. ``tests/queue/test_rq_edge.py`` checks each name
against what the installed rq writes through its public API; ``docs/rq-edge.md`` says why each is
needed and what breaks if RQ changes it.
"""

from __future__ import annotations

from enum import StrEnum

from rq.intermediate_queue import IntermediateQueue
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, SCHEDULER_LOCKING_KEY_TEMPLATE
from rq.worker import Worker

from .. import lua

PINNED_RQ = "3.0.0"
"""The rq release these names were checked against (``tests/queue/test_rq_edge.py`` runs them
against whatever rq is installed)."""

JOB_PREFIX: str = Job.redis_job_namespace_prefix
"""A job's record (a hash) is ``JOB_PREFIX + job_id`` (``rq:job:``)."""
QUEUES: str = Queue.redis_queues_keys
"""The set of every queue's key (``rq:queues``): RQ's workers and ``Queue.all`` look there."""
WORKER_PREFIX: str = Worker.redis_worker_namespace_prefix
"""A worker's record (a hash) is ``WORKER_PREFIX + name`` (``rq:worker:``)."""
SCHEDULER_PREFIX: str = SCHEDULER_KEY_TEMPLATE % ""
"""A scheduler's record (a hash) is ``SCHEDULER_PREFIX + its name`` (``rq:scheduler:``)."""


def job_key(job_id: str) -> str:
    """The record of the job ``job_id``."""
    return JOB_PREFIX + job_id


def queue_key(queue_name: str) -> str:
    """The queue's list of job ids (``rq:queue:<name>``)."""
    return Queue.redis_queue_namespace_prefix + queue_name


def intermediate_key(queue_name: str) -> str:
    """The list a worker's dequeue moves an id to until it runs the job (``...:intermediate``)."""
    return IntermediateQueue.get_intermediate_queue_key(queue_key(queue_name))


def scheduled_key(queue_name: str) -> str:
    """The queue's scheduled jobs: a sorted set scored by when each runs (Unix seconds)."""
    return ScheduledJobRegistry.key_template.format(queue_name)


def started_key(queue_name: str) -> str:
    """The queue's running jobs (a sorted set; only counted here)."""
    return StartedJobRegistry.key_template.format(queue_name)


def failed_key(queue_name: str) -> str:
    """The queue's failed jobs (a sorted set; only counted here)."""
    return FailedJobRegistry.key_template.format(queue_name)


def scheduler_lock_key(queue_name: str) -> str:
    """Held by the scheduler that moves the queue's due jobs; its value is that scheduler's name."""
    return SCHEDULER_LOCKING_KEY_TEMPLATE % queue_name


def scheduler_key(scheduler_name: str) -> str:
    """The record of the scheduler ``scheduler_name`` (its ``last_heartbeat`` among others)."""
    return SCHEDULER_PREFIX + scheduler_name


def worker_key(worker_name: str) -> str:
    """The record of the worker ``worker_name``."""
    return WORKER_PREFIX + worker_name


class JobField(StrEnum):
    """The fields of a job's record the project reads or writes by name."""

    STATUS = "status"
    """The job's :class:`JobStatus` word."""
    WORKER_NAME = "worker_name"
    """The worker running it (``""`` when none)."""
    STARTED_AT = "started_at"
    """When it was started (RQ's time format, ``rq.utils.utcformat``)."""
    ENQUEUED_AT = "enqueued_at"
    """When it was put in the queue (same format)."""


class SchedulerField(StrEnum):
    """The fields of a scheduler's record the project reads by name."""

    LAST_HEARTBEAT = "last_heartbeat"
    """The scheduler's last beat (RQ's time format, which sorts as text)."""


QUEUED: str = JobStatus.QUEUED.value
SCHEDULED: str = JobStatus.SCHEDULED.value
STARTED: str = JobStatus.STARTED.value

LUA_NAMES = lua.constants(
    {
        "FIELD": {f.name: f.value for f in JobField},
        "SCHEDULER_FIELD": {f.name: f.value for f in SchedulerField},
        "STATUS": {"QUEUED": QUEUED, "SCHEDULED": SCHEDULED, "STARTED": STARTED},
    }
)
"""One line of Lua ``local`` tables put before each of this room's scripts: ``FIELD.STATUS``,
``FIELD.WORKER_NAME``, ``FIELD.STARTED_AT``, ``FIELD.ENQUEUED_AT``,
``SCHEDULER_FIELD.LAST_HEARTBEAT``, ``STATUS.QUEUED``, ``STATUS.SCHEDULED``, ``STATUS.STARTED``."""
