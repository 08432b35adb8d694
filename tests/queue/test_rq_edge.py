"""RQ's private layout, pinned against the installed rq (dispatcher.queue.rq_edge, docs/rq-edge.md).

Each test makes RQ write through its public API -- enqueue, enqueue_in, a SimpleWorker running a
job, its scheduler's lock and heartbeat, a worker's birth and heartbeat -- and checks that every
key, record field and status word the project reads or writes itself is the one RQ wrote. An rq
upgrade that moves one fails here, and the assertion names it. The last tests keep the rule:
no Lua script of the queue room spells one of RQ's names, and the worker's overrides of RQ's
methods still override something.
"""

from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from rq import Queue, SimpleWorker, Worker, get_current_job
from rq.job import JobStatus
from rq.scheduler import RQScheduler
from rq.utils import utcformat, utcparse

from dispatcher.queue import jobs, rq_edge, snapshot
from dispatcher.queue.rq_edge import JobField, SchedulerField
from dispatcher.vocabulary import JobState

QUEUE = "rq-edge"
SEEN: dict[str, Any] = {}
"""What a job saw of its own record while a SimpleWorker ran it (in this process)."""


def look_at_own_record() -> None:
    """The job a SimpleWorker runs: keeps its record and the started registry's size as RQ has them."""
    job = get_current_job()
    assert job is not None
    record = job.connection.hgetall(rq_edge.job_key(job.id))
    SEEN["record"] = {k.decode(): v.decode(errors="replace") for k, v in record.items()}
    SEEN["started"] = job.connection.zcard(rq_edge.started_key(QUEUE))


def fail() -> None:
    raise RuntimeError("a job that fails")


def text(raw: bytes | None) -> str | None:
    return raw.decode() if raw is not None else None


class EdgeWorker(SimpleWorker):
    """RQ's SimpleWorker without its command channel, whose thread may take a minute to stop
    (see ``WebhookWorker.unsubscribe``); nothing of the layout depends on it."""

    def subscribe(self) -> None:
        pass

    def unsubscribe(self) -> None:
        pass


def make_queue(redis_client) -> Queue:
    return Queue(QUEUE, connection=redis_client, default_timeout=180)


def test_the_keys_are_the_queues_own(redis_client) -> None:
    q = make_queue(redis_client)
    assert rq_edge.queue_key(QUEUE) == q.key, "rq_edge.queue_key"
    assert rq_edge.intermediate_key(QUEUE) == q.intermediate_queue_key, "rq_edge.intermediate_key"
    assert rq_edge.scheduled_key(QUEUE) == q.scheduled_job_registry.key, "rq_edge.scheduled_key"
    assert rq_edge.started_key(QUEUE) == q.started_job_registry.key, "rq_edge.started_key"
    assert rq_edge.failed_key(QUEUE) == q.failed_job_registry.key, "rq_edge.failed_key"
    assert rq_edge.QUEUES == Queue.redis_queues_keys, "rq_edge.QUEUES"


def test_an_enqueued_job_is_where_and_as_the_project_reads_it(redis_client) -> None:
    q = make_queue(redis_client)
    job = q.enqueue(look_at_own_record, job_id="edge-1")
    key = rq_edge.job_key("edge-1")
    assert job.key == key, "rq_edge.job_key (JOB_PREFIX)"
    assert redis_client.type(key) == b"hash", f"job record {key} is a hash"
    assert text(redis_client.hget(key, JobField.STATUS)) == rq_edge.QUEUED, "field status = queued"
    enqueued_at = text(redis_client.hget(key, JobField.ENQUEUED_AT))
    assert enqueued_at is not None, "field enqueued_at"
    assert utcparse(enqueued_at) == job.enqueued_at, "field enqueued_at in RQ's time format"
    assert redis_client.lrange(rq_edge.queue_key(QUEUE), 0, -1) == [b"edge-1"], "the queue's list"
    assert q.key.encode() in redis_client.smembers(rq_edge.QUEUES), "rq_edge.QUEUES holds the queue"


def test_a_scheduled_job_is_in_the_scheduled_registry_scored_by_its_time(redis_client) -> None:
    q = make_queue(redis_client)
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    q.enqueue_at(at, look_at_own_record, job_id="edge-2")
    key = rq_edge.job_key("edge-2")
    assert text(redis_client.hget(key, JobField.STATUS)) == rq_edge.SCHEDULED, "field status = scheduled"
    score = redis_client.zscore(rq_edge.scheduled_key(QUEUE), "edge-2")
    assert score == at.timestamp(), "rq_edge.scheduled_key scored in Unix seconds"
    assert q.key.encode() in redis_client.smembers(rq_edge.QUEUES), "rq_edge.QUEUES holds the queue"


def test_a_running_job_says_started_by_its_worker(redis_client) -> None:
    q = make_queue(redis_client)
    q.enqueue(look_at_own_record, job_id="edge-3")
    worker = EdgeWorker([q], connection=redis_client, name="edge-worker")
    SEEN.clear()
    assert worker.work(burst=True)
    record = SEEN["record"]
    assert record.get(JobField.STATUS) == rq_edge.STARTED, "field status = started"
    assert record.get(JobField.WORKER_NAME) == "edge-worker", "field worker_name"
    started_at = record.get(JobField.STARTED_AT)
    assert started_at, "field started_at"
    assert utcformat(utcparse(started_at)) == started_at, "field started_at in RQ's time format"
    assert SEEN["started"] == 1, "rq_edge.started_key counts the running job"


def test_a_failed_job_is_in_the_failed_registry(redis_client) -> None:
    q = make_queue(redis_client)
    q.enqueue(fail, job_id="edge-4")
    EdgeWorker([q], connection=redis_client, name="edge-failing").work(burst=True)
    assert redis_client.zscore(rq_edge.failed_key(QUEUE), "edge-4") is not None, "rq_edge.failed_key"


def test_a_dequeued_job_waits_in_the_intermediate_list(redis_client) -> None:
    q = make_queue(redis_client)
    q.enqueue(look_at_own_record, job_id="edge-5")
    assert Queue.dequeue_any([q], None, connection=redis_client) is not None
    taken = redis_client.lrange(rq_edge.intermediate_key(QUEUE), 0, -1)
    assert taken == [b"edge-5"], "rq_edge.intermediate_key"
    assert jobs.stranded_in_transit(q, ["edge-5"]) == {"edge-5"}


def test_the_scheduler_lock_names_a_scheduler_whose_record_beats(redis_client) -> None:
    q = make_queue(redis_client)
    scheduler = RQScheduler([q], connection=redis_client)
    assert scheduler.acquire_locks() == {QUEUE}
    try:
        scheduler.heartbeat()
        holder = text(redis_client.get(rq_edge.scheduler_lock_key(QUEUE)))
        assert holder == scheduler.name, "rq_edge.scheduler_lock_key holds the scheduler's name"
        beat = text(redis_client.hget(rq_edge.scheduler_key(holder), SchedulerField.LAST_HEARTBEAT))
        assert beat is not None, "rq_edge.scheduler_key, field last_heartbeat"
        assert utcformat(utcparse(beat)) == beat, "field last_heartbeat in RQ's time format"
        assert jobs.stand_in_for_scheduler(q) is None, "the stand-in sees RQ's scheduler beating"
    finally:
        scheduler.release_locks()


def test_a_workers_record_outlives_a_flush_through_its_heartbeat(redis_client) -> None:
    q = make_queue(redis_client)
    worker = Worker([q], connection=redis_client, name="edge-beating")
    worker.register_birth()
    assert worker.key == rq_edge.worker_key("edge-beating"), "rq_edge.worker_key (WORKER_PREFIX)"
    redis_client.flushdb()  # RQ's sets of workers are gone; the heartbeat writes the record again
    worker.heartbeat()
    found = snapshot.registered_workers(q, also={"edge-beating"})
    assert [w.name for w in found] == ["edge-beating"], "rq_edge.worker_key found by Worker.find_by_key"


def test_the_status_words_are_rqs() -> None:
    assert rq_edge.QUEUED == JobStatus.QUEUED.value, "status queued"
    assert rq_edge.SCHEDULED == JobStatus.SCHEDULED.value, "status scheduled"
    assert rq_edge.STARTED == JobStatus.STARTED.value, "status started"
    for state in JobState:
        assert JobStatus[state.name].value == state.value, f"vocabulary.JobState.{state.name}"


@pytest.mark.parametrize("scheduled", [False, True])
def test_the_records_the_project_writes_are_the_ones_rq_writes(redis_client, scheduled) -> None:
    """enqueue.lua and schedule.lua write a job's whole record (``Job.to_dict``): the same
    fields, and the same values but for the times, the id and the description, as RQ's own."""
    q = make_queue(redis_client)
    options = {"result_ttl": 0, "failure_ttl": jobs.FAILURE_TTL}
    if scheduled:
        jobs.schedule_new(q, ["ours"], timedelta(minutes=5))
        q.enqueue_in(timedelta(minutes=5), jobs.JOB_FUNCTION, "rqs", job_id="rqs", **options)
    else:
        jobs.enqueue_new(q, ["ours"])
        q.enqueue(jobs.JOB_FUNCTION, "rqs", job_id="rqs", **options)
    ours, rqs = (redis_client.hgetall(rq_edge.job_key(i)) for i in ("ours", "rqs"))
    assert sorted(ours) == sorted(rqs), "the job record's fields"
    varying = {b"created_at", b"enqueued_at", b"data", b"description"}
    assert {k: v for k, v in ours.items() if k not in varying} == {
        k: v for k, v in rqs.items() if k not in varying
    }, "the job record's values"


LUA_DIR = Path(str(files("dispatcher.queue")))
SCRIPTS = sorted(p.name for p in LUA_DIR.glob("*.lua"))
RQ_WORDS = {f.value for f in JobField} | {f.value for f in SchedulerField} | {s.value for s in JobStatus}
RQ_KEYS = {rq_edge.JOB_PREFIX, rq_edge.QUEUES, rq_edge.WORKER_PREFIX, rq_edge.SCHEDULER_PREFIX, "rq:"}


def lua_code(name: str) -> str:
    """The script without its comments."""
    lines = (LUA_DIR / name).read_text(encoding="utf-8").splitlines()
    return "\n".join(line.split("--", 1)[0] for line in lines)


def test_the_queue_room_has_its_seven_scripts() -> None:
    assert SCRIPTS == [
        "enqueue.lua",
        "keep_trace.lua",
        "reschedule.lua",
        "schedule.lua",
        "stand_in.lua",
        "take.lua",
        "wake.lua",
    ]


@pytest.mark.parametrize("name", SCRIPTS)
def test_no_lua_script_spells_an_rq_name(name) -> None:
    code = lua_code(name)
    literals = {a or b for a, b in re.findall(r"'([^']*)'|\"([^\"]*)\"", code)}
    assert not literals & RQ_WORDS, f"{name} spells {sorted(literals & RQ_WORDS)}: use FIELD, STATUS"
    assert not [k for k in RQ_KEYS if k in code], f"{name} spells an RQ key: pass it as an argument"


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_name_a_script_uses_is_in_its_preamble(name, redis_client) -> None:
    tables = dict(re.findall(r"local (\w+) = \{([^}]*)\}", rq_edge.LUA_NAMES))
    for table, key in re.findall(r"\b(FIELD|SCHEDULER_FIELD|STATUS)\.(\w+)", lua_code(name)):
        assert re.search(rf"\b{key} = ", tables[table]), f"{name}: {table}.{key} is not in rq_edge.LUA_NAMES"
    assert redis_client.script_load(jobs.script_text(name)), f"{name} compiles with its preamble"


OVERRIDDEN = (
    "dequeue_job_and_maintain_ttl",
    "set_state",
    "unsubscribe",
    "execute_job",
    "heartbeat",
    "check_for_suspension",
    "run_maintenance_tasks",
    "request_stop",
)


@pytest.mark.parametrize("method", OVERRIDDEN)
def test_the_workers_overrides_still_override_rqs_methods(method) -> None:
    from dispatcher.worker.process import WebhookWorker

    assert method in WebhookWorker.__dict__, f"WebhookWorker.{method}"
    rqs = getattr(SimpleWorker, method, None)
    assert rqs is not None, f"SimpleWorker.{method} is gone: WebhookWorker's override is dead"
    ours = WebhookWorker.__dict__[method]
    assert list(inspect.signature(ours).parameters) == list(inspect.signature(rqs).parameters), method


def test_the_private_worker_attributes_the_worker_uses_are_rqs(redis_client) -> None:
    worker = SimpleWorker([make_queue(redis_client)], connection=redis_client, name="edge-private")
    assert worker._stop_requested is False, "SimpleWorker._stop_requested"
    assert "self._stop_requested" in inspect.getsource(SimpleWorker.work), "RQ's loop reads _stop_requested"
    assert hasattr(worker, "pubsub") and worker.pubsub_channel_name, (
        "SimpleWorker.pubsub, pubsub_channel_name"
    )
    assert "self.pubsub_thread =" in inspect.getsource(SimpleWorker.subscribe), "SimpleWorker.pubsub_thread"
    assert "max_connection_wait_time" in vars(Worker.__mro__[1]), "BaseWorker.max_connection_wait_time"


ROOT = Path(__file__).resolve().parents[2]


def test_the_edge_page_lists_every_name_and_the_pinned_rq() -> None:
    page = (ROOT / "docs" / "rq-edge.md").read_text(encoding="utf-8")
    assert f"rq {rq_edge.PINNED_RQ}" in page, "docs/rq-edge.md names the rq the names were pinned against"
    defined = [
        name
        for name, value in vars(rq_edge).items()
        if not name.startswith("_")
        and getattr(value, "__module__", rq_edge.__name__) == rq_edge.__name__
        and (callable(value) or isinstance(value, str))
        and name not in {"annotations", "LUA_NAMES"}
    ]
    words = [f"`{f.value}`" for f in (*JobField, *SchedulerField)]
    missing = [name for name in defined + words if name not in page]
    assert not missing, f"docs/rq-edge.md does not mention {missing}"


def test_outside_the_queue_room_rq_is_imported_by_its_public_names_only() -> None:
    """The wall: RQ's submodules (its job, registry, scheduler, worker internals) and its key
    names are the queue room's; the other rooms import ``from rq import <public name>`` at most."""
    sources = [
        p for p in (ROOT / "dispatcher").rglob("*.py") if "queue" not in p.relative_to(ROOT).parts[1:2]
    ]
    for path in [*sources, ROOT / "worker.py"]:
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(ROOT)
        assert not re.search(r"^\s*(from|import) rq\.", text, re.M), f"{where} imports an rq submodule"
        assert not re.search(r"[\"']rq:", text), f"{where} spells an RQ key"
        assert "namespace_prefix" not in text, f"{where} builds an RQ key"
        assert not re.search(r"^\s*from .*rq_edge|^\s*import .*rq_edge", text, re.M), (
            f"{where} imports rq_edge"
        )
