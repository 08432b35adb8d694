"""The queue room: the only room that touches ``rq.Queue`` and RQ's job records.

Owns: the Redis connection (:mod:`.connection`), one RQ job per delivery whose job id is the
request_id -- enqueue, take a batch, schedule, re-queue, remove (:mod:`.jobs`) -- and the
read-only numbers of the queue and RQ's workers (:mod:`.snapshot`), and a delivery's trace
contexts kept in its job's record (:mod:`.traces`). Its Lua scripts are ``.lua``
files beside it. RQ's private layout in Redis (keys, record fields, status words) is named in
:mod:`.rq_edge` alone, and listed in ``docs/rq-edge.md``; the scripts get those names from it.

May import: ``config`` and the shared kernel. Knows nothing of HTTP or the database.

Invariant: a delivery has at most one job in Redis (the job id is the request_id); a duplicate
that slips through finds the delivery already claimed in the database and does nothing.
"""

from .connection import connect
from .jobs import (
    ACTIVE_STATUSES,
    FAILURE_TTL,
    JOB_FUNCTION,
    SENDS_PER_THREAD,
    JobQueue,
    enqueue_new,
    ensure_queued,
    is_waiting,
    job_state,
    job_states,
    job_states_started,
    job_timeout,
    leave_transit,
    make_queue,
    move_overdue_to_queue,
    put_back,
    remove_job,
    schedule_new,
    schedule_taken,
    slowest_attempt,
    stand_in_for_scheduler,
    stranded_in_transit,
    take,
    wake,
)
from .snapshot import WORKER_COLUMNS, oldest_queued_age, queue_snapshot, registered_workers, worker_records
from .traces import LAST_ATTEMPT_FIELD, TRACE_FIELD, keep_attempt_traces, traces

__all__ = [
    "LAST_ATTEMPT_FIELD",
    "TRACE_FIELD",
    "keep_attempt_traces",
    "traces",
    "ACTIVE_STATUSES",
    "FAILURE_TTL",
    "JOB_FUNCTION",
    "SENDS_PER_THREAD",
    "WORKER_COLUMNS",
    "JobQueue",
    "connect",
    "enqueue_new",
    "ensure_queued",
    "is_waiting",
    "job_state",
    "job_states",
    "job_states_started",
    "job_timeout",
    "leave_transit",
    "make_queue",
    "move_overdue_to_queue",
    "oldest_queued_age",
    "put_back",
    "queue_snapshot",
    "registered_workers",
    "remove_job",
    "schedule_new",
    "schedule_taken",
    "slowest_attempt",
    "stand_in_for_scheduler",
    "stranded_in_transit",
    "take",
    "wake",
    "worker_records",
]
