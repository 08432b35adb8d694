"""``retry`` (ids and ``--failed``) and ``replay`` in-process (click's runner) against the real
Redis, on SQLite and PostgreSQL, including 100,000 seeded rows (with ``prune``), and what they
say about a delivery whose payload was erased. The doors behind them are tested in
tests/ops/test_resend.py, whose seeded rows these tests share."""

from __future__ import annotations

import gc
import json
import os
import resource
import threading
import time
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from rq.job import Job, JobStatus

from dispatcher import dispatch, queue, store
from dispatcher.contract import catalogue as events
from dispatcher.contract import wrapper as payload
from dispatcher.ops.bulk import ID_CAP
from dispatcher.store import erasure
from dispatcher.times import utcnow
from dispatcher.vocabulary import DeliveryStatus
from tests.cli.helpers import attempt_counts, invoke
from tests.ops.test_phi_lifecycle import finished, message
from tests.ops.test_resend import (
    EP_A,
    EP_B,
    HOURS,
    NOW,
    endpoints,
    queued_job_ids,
    rid,
    seed,
    snapshot,
    statuses,
    stored_payload,
)

# --- retry REQUEST_ID... (the previous behaviour) --------------------------------------------


def test_retry_ids_keeps_its_behaviour(make_runtime):
    runtime = make_runtime(endpoints=endpoints("http://127.0.0.1:9/"))
    (failed,) = seed(runtime.engine, 1, 1, status=DeliveryStatus.FAILED, created_at=NOW, attempts=3)
    (delivered,) = seed(runtime.engine, 2, 1, status=DeliveryStatus.DELIVERED, created_at=NOW)
    unknown = rid(99)

    ok = invoke("retry", failed)
    assert ok.exit_code == 0 and ok.stdout == f"{failed}: re-queued\n" and ok.stderr == ""
    row = store.get_delivery(runtime.engine, failed)
    assert row["status"] == "queued" and row["attempt_limit"] == 3 + runtime.settings.delivery.max_attempts
    assert queued_job_ids(runtime) == {failed}

    mixed = invoke("retry", failed, delivered, unknown)
    assert mixed.exit_code == 1 and mixed.stdout == ""
    assert mixed.stderr.splitlines() == [
        f"{failed}: left alone, its status is queued (only failed deliveries are re-queued)",
        f"{delivered}: left alone, its status is delivered (only failed deliveries are re-queued)",
        f"{unknown}: no such delivery",
    ]


def test_retry_usage_errors(make_runtime):
    make_runtime()
    both = invoke("retry", rid(1), "--failed")
    assert both.exit_code == 2 and "give REQUEST_IDs or --failed, not both" in both.stderr
    neither = invoke("retry")
    assert neither.exit_code == 2 and "--failed" in neither.stderr
    filters = invoke("retry", rid(1), "--event", "order_changed", "--yes")
    assert filters.exit_code == 2 and "--event, --yes only apply with --failed" in filters.stderr
    bad = invoke("retry", "--failed", "--since", "yesterday")
    assert bad.exit_code == 2 and "'--since'" in bad.stderr and "'yesterday'" in bad.stderr
    backwards = invoke("retry", "--failed", "--since", "1h", "--until", "2h")
    assert backwards.exit_code == 2 and "must be before --until" in backwards.stderr


# --- retry --failed --------------------------------------------------------------------------


def test_retry_failed_filters_select_exactly_the_matching_rows(make_runtime, database_url):
    runtime = make_runtime(database_url=database_url, endpoints=endpoints("http://127.0.0.1:9/"))
    engine = runtime.engine
    target = seed(engine, 1, 3, status=DeliveryStatus.FAILED, created_at=NOW - 2 * HOURS, attempts=5)
    other_event = seed(
        engine, 10, 1, status=DeliveryStatus.FAILED, created_at=NOW - 2 * HOURS, event="message_created"
    )
    other_endpoint = seed(
        engine, 20, 1, status=DeliveryStatus.FAILED, created_at=NOW - 2 * HOURS, endpoint=EP_B
    )
    too_old = seed(engine, 30, 1, status=DeliveryStatus.FAILED, created_at=NOW - 48 * HOURS)
    too_new = seed(engine, 40, 1, status=DeliveryStatus.FAILED, created_at=NOW - timedelta(minutes=5))
    delivered = seed(engine, 50, 1, status=DeliveryStatus.DELIVERED, created_at=NOW - 2 * HOURS)
    retrying = seed(engine, 60, 1, status=DeliveryStatus.RETRYING, created_at=NOW - 2 * HOURS)
    before = statuses(runtime)

    args = ("--event", "order_changed", "--endpoint", EP_A, "--since", "1d", "--until", "1h")
    result = invoke("retry", "--failed", *args, "--yes", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report == {
        "matched": 3,
        "requeued": 3,
        "dry_run": False,
        "awaiting_reconcile": 0,
        "request_ids": target,
        "request_ids_truncated": False,
        "skipped_endpoint_disabled": 0,
    }
    after = statuses(runtime)
    assert {r: after[r] for r in target} == dict.fromkeys(target, "queued")
    untouched = other_event + other_endpoint + too_old + too_new + delivered + retrying
    assert {r: after[r] for r in untouched} == {r: before[r] for r in untouched}
    assert queued_job_ids(runtime) == set(target)
    row = store.get_delivery(engine, target[0])
    assert row["attempt_limit"] == 5 + runtime.settings.delivery.max_attempts and row["reason"] is None

    # Without filters: every remaining failed delivery, and only those.
    rest = invoke("retry", "--failed", "--yes")
    assert rest.exit_code == 0 and "re-queued 4 of 4" in rest.stdout
    assert "4 failed deliveries match" in rest.stdout
    assert {r for r, s in statuses(runtime).items() if s == "queued"} == set(
        target + other_event + other_endpoint + too_old + too_new
    )
    none_left = json.loads(invoke("retry", "--failed", "--yes", "--json").stdout)
    assert none_left["matched"] == 0 and none_left["requeued"] == 0 and none_left["request_ids"] == []


def test_retry_failed_dry_run_and_a_declined_prompt_change_nothing(make_runtime, database_url):
    runtime = make_runtime(database_url=database_url, endpoints=endpoints("http://127.0.0.1:9/"))
    failed = seed(runtime.engine, 1, 4, status=DeliveryStatus.FAILED, created_at=NOW - HOURS)
    seed(runtime.engine, 10, 2, status=DeliveryStatus.DELIVERED, created_at=NOW - HOURS)
    before = snapshot(runtime)

    dry = invoke("retry", "--failed", "--dry-run", "--json")
    assert dry.exit_code == 0
    assert json.loads(dry.stdout) == {
        "matched": 4,
        "requeued": 0,
        "dry_run": True,
        "awaiting_reconcile": 0,
        "request_ids": failed,
        "request_ids_truncated": False,
        "skipped_endpoint_disabled": 0,
    }
    text = invoke("retry", "--failed", "--dry-run")
    assert text.exit_code == 0 and "4 failed deliveries match; dry run, nothing was re-queued" in text.stdout
    assert all(r in text.stdout for r in failed)
    assert snapshot(runtime) == before

    declined = invoke("retry", "--failed", input="n\n")
    assert declined.exit_code == 1
    assert "Re-queue 4 deliveries" in declined.stderr and "aborted; nothing was changed" in declined.stderr
    no_answer = invoke("retry", "--failed")  # no terminal, no input: nothing is changed
    assert no_answer.exit_code == 1 and "aborted" in no_answer.stderr
    assert snapshot(runtime) == before

    agreed = invoke("retry", "--failed", input="y\n")
    assert agreed.exit_code == 0 and "re-queued 4 of 4" in agreed.stdout
    assert queued_job_ids(runtime) == set(failed)


def test_retry_failed_clears_a_poison_job_record(make_runtime):
    runtime = make_runtime(endpoints=endpoints("http://127.0.0.1:9/"))
    (request_id,) = seed(runtime.engine, 1, 1, status=DeliveryStatus.FAILED, created_at=NOW)
    job = runtime.queue.create_job(queue.JOB_FUNCTION, args=(request_id,), job_id=request_id)
    job.set_status(JobStatus.FAILED)
    job.save()
    runtime.queue.failed_job_registry.add(job, ttl=60)

    assert invoke("retry", "--failed", "--yes").exit_code == 0
    assert queue.job_state(runtime.queue, request_id)[0] == JobStatus.QUEUED
    assert request_id not in runtime.queue.failed_job_registry.get_job_ids()
    assert Job.fetch(request_id, connection=runtime.redis).args == (request_id,)


# --- replay ----------------------------------------------------------------------------------


def _set_times(runtime, request_ids: list[str], created_at: datetime, status: str | None = None) -> None:
    values: dict = {"created_at": created_at}
    if status:
        values["status"] = status
    with runtime.engine.begin() as conn:
        conn.execute(
            store.DELIVERIES.update().where(store.DELIVERIES.c.request_id.in_(request_ids)).values(values)
        )


def test_replay_creates_new_deliveries_with_replay_of_and_the_same_data(make_runtime, database_url):
    runtime = make_runtime(database_url=database_url, endpoints=endpoints("http://127.0.0.1:9/"))
    order = events.get_event("order_changed").example()
    message = events.get_event("message_created").example()
    a1, b1 = dispatch("order_changed", order, dispatched_by="ORDERS")
    a2, b2 = dispatch("message_created", message, dispatched_by="CHAT")
    (a_old,) = dispatch("order_changed", order, endpoints=[EP_A])
    _set_times(runtime, [a1], NOW - 30 * timedelta(minutes=1), DeliveryStatus.DELIVERED)
    _set_times(runtime, [a2], NOW - 20 * timedelta(minutes=1), DeliveryStatus.FAILED)
    _set_times(runtime, [a_old], NOW - 5 * HOURS, DeliveryStatus.DELIVERED)
    runtime.redis.flushdb()
    originals = {r: store.get_delivery(runtime.engine, r) for r in (a1, a2)}

    result = invoke("replay", "--since", "1h", "--endpoint", EP_A, "--yes", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["matched"] == 2 and report["replayed"] == 2 and report["dry_run"] is False
    assert report["request_ids"] == [a1, a2] and report["request_ids_truncated"] is False
    assert report["skipped"] == []
    replays = {item["replay_of"]: item["request_id"] for item in report["replays"]}
    assert set(replays) == {a1, a2}
    assert set(replays.values()).isdisjoint({a1, a2, b1, b2, a_old})
    assert queued_job_ids(runtime) == set(replays.values())
    for original_id, new_id in replays.items():
        new = store.get_delivery(runtime.engine, new_id)
        original = originals[original_id]
        assert new["replay_of"] == original_id and new["status"] == "queued" and new["attempts"] == 0
        assert (new["endpoint"], new["event"]) == (EP_A, original["event"])
        new_body, old_body = json.loads(new["payload"]), json.loads(original["payload"])
        assert new_body["data"] == old_body["data"]
        assert new_body["metadata"]["request_id"] == new_id
        assert new_body["metadata"]["dispatched_by"] == old_body["metadata"]["dispatched_by"]
        assert new_body["metadata"]["retry"] is False
    shown = json.loads(invoke("log", "show", replays[a2], "--json").stdout)
    assert shown["replay_of"] == a2 and shown["payload"]["metadata"]["dispatched_by"] == "CHAT"

    only_orders = json.loads(
        invoke(
            "replay",
            "--since",
            "6h",
            "--until",
            "1h",
            "--event",
            "order_changed",
            "--endpoint",
            EP_A,
            "--yes",
            "--json",
        ).stdout
    )
    assert only_orders["request_ids"] == [a_old] and only_orders["replayed"] == 1
    assert len(statuses(runtime)) == 8  # 5 dispatched + 2 + 1 replays, none to partner-b


def test_replay_dry_run_declined_and_unknown_endpoint(make_runtime):
    runtime = make_runtime(endpoints=endpoints("http://127.0.0.1:9/"))
    ids = seed(runtime.engine, 1, 3, status=DeliveryStatus.DELIVERED, created_at=NOW - HOURS)
    before = snapshot(runtime)

    dry = invoke("replay", "--since", "2h", "--endpoint", EP_A, "--dry-run", "--json")
    assert dry.exit_code == 0
    assert json.loads(dry.stdout) == {
        "matched": 3,
        "replayed": 0,
        "dry_run": True,
        "request_ids": ids,
        "request_ids_truncated": False,
        "replays": [],
        "skipped": [],
        "held_back": 0,
    }
    text = invoke("replay", "--since", "2h", "--endpoint", EP_A, "--dry-run")
    assert "3 deliveries match (endpoint partner-a, created since" in text.stdout
    assert "dry run, nothing was sent" in text.stdout
    declined = invoke("replay", "--since", "2h", "--endpoint", EP_A, input="n\n")
    assert declined.exit_code == 1 and "aborted; nothing was changed" in declined.stderr
    assert snapshot(runtime) == before

    unknown = invoke("replay", "--since", "2h", "--endpoint", "partner-z", "--yes")
    assert unknown.exit_code == 1
    assert unknown.stderr == "error: unknown endpoint 'partner-z'; configured: partner-a, partner-b\n"
    missing = invoke("replay", "--endpoint", EP_A)
    assert missing.exit_code == 2 and "'--since'" in missing.stderr
    assert snapshot(runtime) == before


def test_replay_skips_an_unusable_original_and_sends_the_rest(make_runtime):
    runtime = make_runtime(endpoints=endpoints("http://127.0.0.1:9/"))
    good = seed(runtime.engine, 1, 2, status=DeliveryStatus.DELIVERED, created_at=NOW - HOURS)
    (broken,) = seed(runtime.engine, 3, 1, status=DeliveryStatus.DELIVERED, created_at=NOW - HOURS)
    with runtime.engine.begin() as conn:
        body = json.loads(stored_payload(broken))
        body["data"]["status"] = 5  # no longer valid for the catalogue
        conn.execute(
            store.DELIVERIES.update()
            .where(store.DELIVERIES.c.request_id == broken)
            .values(payload=payload.dumps(body))
        )
    result = invoke("replay", "--since", "2h", "--endpoint", EP_A, "--yes", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["replayed"] == 2 and [r["replay_of"] for r in report["replays"]] == good
    (skipped,) = report["skipped"]
    assert skipped["request_id"] == broken and "status" in skipped["reason"]
    assert f"{broken}: not replayed:" in result.stderr


# --- an erased delivery --------------------------------------------------------------------


def test_retry_and_replay_say_an_erased_delivery_cannot_be_sent(runtime) -> None:
    engine = runtime.engine
    request_id = dispatch("message_created", message())[0]
    finished(engine, request_id, "failed")
    erasure.erase(engine, [request_id], utcnow())

    retry = invoke("retry", request_id)
    assert retry.exit_code == 1
    assert (
        retry.stderr.strip()
        == f"{request_id}: cannot be re-sent, its payload was erased (retention or log erase)"
    )
    bulk = invoke("retry", "--failed", "--yes")
    assert "1 failed delivery whose payload was erased cannot be re-sent; left alone" in bulk.stderr
    assert "no failed deliveries match" in bulk.stdout
    replay = invoke("replay", "--since", "1h", "--endpoint", "pharmacy", "--yes")
    assert replay.exit_code == 1
    assert f"{request_id}: not replayed: its payload was erased (retention or log erase)" in replay.stderr
    assert store.get_delivery(engine, request_id)["status"] == "failed"
    shown = json.loads(invoke("log", "show", request_id, "--json").stdout)
    assert shown["payload"] is None and shown["payload_erased_at"] is not None
    assert "erased" in shown["payload_note"]


# --- 100,000 rows ----------------------------------------------------------------------------

BIG = 100_000
MEMORY_BOUND = 50 * 1024 * 1024


def current_rss() -> int:
    """This process's resident memory now, in bytes (Linux /proc; else the high-water mark)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakRss:
    """Samples the resident memory every 10 ms while a command runs; ``growth`` is its peak
    minus what it was at the start (no tracemalloc, so the timing is the real one)."""

    def __enter__(self) -> PeakRss:
        gc.collect()
        self.base = self.peak = current_rss()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.done.wait(0.01):
            self.peak = max(self.peak, current_rss())

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()
        self.peak = max(self.peak, current_rss())

    @property
    def growth(self) -> int:
        return self.peak - self.base


def measured(label: str, *args: str) -> dict:
    """Runs the command; prints and returns its report, its time and its peak memory growth."""
    with PeakRss() as memory:
        started = time.perf_counter()
        result = invoke(*args)
        elapsed = time.perf_counter() - started
    assert result.exit_code == 0, result.output[-2000:]
    print(f"\n{label}: {elapsed:.1f} s, peak RSS growth {memory.growth / 2**20:.1f} MiB")
    assert memory.growth < MEMORY_BOUND, f"{label} grew memory by {memory.growth / 2**20:.1f} MiB"
    return json.loads(result.stdout)


@pytest.mark.slow
def test_bulk_commands_on_100k_rows_keep_memory_flat(make_runtime):
    runtime = make_runtime(endpoints=endpoints("http://127.0.0.1:9/"))
    started = time.perf_counter()
    seed(runtime.engine, 0, BIG, status=DeliveryStatus.FAILED, created_at=NOW - HOURS, attempt_rows=True)
    print(
        f"\nseeded {BIG:,} failed deliveries + {BIG:,} attempt rows in {time.perf_counter() - started:.1f} s"
    )

    dry = measured(
        "replay --dry-run (100k match)", "replay", "--since", "2h", "--endpoint", EP_A, "--dry-run", "--json"
    )
    assert dry["matched"] == BIG and dry["request_ids_truncated"] is True
    assert len(dry["request_ids"]) == ID_CAP

    retried = measured("retry --failed --yes (100k)", "retry", "--failed", "--yes", "--json")
    assert retried["matched"] == retried["requeued"] == BIG
    assert len(retried["request_ids"]) == ID_CAP and retried["request_ids_truncated"] is True
    assert runtime.queue.count == BIG
    with runtime.engine.connect() as conn:
        counts = dict(
            conn.execute(
                sa.select(store.DELIVERIES.c.status, sa.func.count()).group_by(store.DELIVERIES.c.status)
            ).all()
        )
    assert counts == {"queued": BIG}

    # As if workers had delivered half and failed half, 60 days ago.
    runtime.redis.flushdb()
    long_ago = NOW - 60 * 24 * HOURS
    with runtime.engine.begin() as conn:
        conn.execute(
            store.DELIVERIES.update()
            .where(store.DELIVERIES.c.request_id < rid(BIG // 2))
            .values(status=DeliveryStatus.DELIVERED, updated_at=long_ago)
        )
        conn.execute(
            store.DELIVERIES.update()
            .where(store.DELIVERIES.c.request_id >= rid(BIG // 2))
            .values(status=DeliveryStatus.FAILED, updated_at=long_ago)
        )
    seed(runtime.engine, BIG, 10, status=DeliveryStatus.QUEUED, created_at=long_ago, attempt_rows=True)

    pruned = measured(
        "prune --older-than 30d --yes (100k)", "prune", "--older-than", "30d", "--yes", "--json"
    )
    assert pruned["matched"] == pruned["deleted"] == BIG and pruned["attempts_deleted"] == BIG
    assert statuses(runtime) == {rid(n): "queued" for n in range(BIG, BIG + 10)}
    assert len(attempt_counts(runtime)) == 10
