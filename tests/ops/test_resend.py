"""``retry`` (ids and ``--failed``), ``replay`` and ``prune`` in-process (click's runner) against
the real Redis, on SQLite and PostgreSQL, including 100,000 seeded rows; and the retry doors
themselves (their plans write nothing, carrying one out writes one audit row)."""

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
from click.testing import CliRunner
from rq.job import Job, JobStatus

from dispatcher import dispatch, queue, store
from dispatcher.cli import cli
from dispatcher.contract import catalogue as events
from dispatcher.contract import wrapper as payload
from dispatcher.contract.validation import validate
from dispatcher.ops import audit, resend
from dispatcher.ops.bulk import ID_CAP
from dispatcher.ops.door import Actor
from dispatcher.times import utcnow
from dispatcher.vocabulary import DeliveryStatus

EP_A = "partner-a"
EP_B = "partner-b"


def endpoints(url: str) -> list[dict]:
    return [
        {"name": EP_A, "url": url, "key": "key-a-123"},
        {"name": EP_B, "url": url, "key": "key-b-456"},
    ]


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def rid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def stored_payload(request_id: str, event: str = "order_changed", dispatched_by: str = "SEED") -> str:
    return payload.dumps(
        payload.build(
            event=event,
            timestamp="2026-01-30T12:00:00Z",
            data=validate(event, events.get_event(event).example()),
            source="Baremeds",
            environment="test",
            request_id=request_id,
            dispatched_by=dispatched_by,
        )
    )


def seed(
    engine,
    first: int,
    count: int,
    *,
    status: str,
    created_at: datetime,
    updated_at: datetime | None = None,
    event: str = "order_changed",
    endpoint: str = EP_A,
    attempts: int = 1,
    attempt_rows: bool = False,
    chunk: int = 5000,
) -> list[str]:
    """Inserts deliveries directly (ids rid(first) .. rid(first+count-1)) in chunked transactions."""
    body = stored_payload(rid(0), event)  # the payload's request_id does not matter here
    for start in range(first, first + count, chunk):
        stop = min(start + chunk, first + count)
        rows = [
            {
                "request_id": rid(n),
                "event": event,
                "endpoint": endpoint,
                "url": "http://127.0.0.1:9/hook",
                "status": status,
                "attempts": attempts,
                "attempt_limit": 5,
                "last_http_status": 400 if status == DeliveryStatus.FAILED else 200,
                "payload": body,
                "created_at": created_at,
                "updated_at": updated_at or created_at,
            }
            for n in range(start, stop)
        ]
        with engine.begin() as conn:
            conn.execute(store.DELIVERIES.insert(), rows)
            if attempt_rows:
                conn.execute(
                    store.ATTEMPTS.insert(),
                    [
                        {
                            "request_id": r["request_id"],
                            "event": event,
                            "endpoint": endpoint,
                            "url": r["url"],
                            "attempt": 1,
                            "retry": False,
                            "outcome": "failed" if status == DeliveryStatus.FAILED else "delivered",
                            "http_status": r["last_http_status"],
                            "created_at": r["updated_at"],
                        }
                        for r in rows
                    ],
                )
    return [rid(n) for n in range(first, first + count)]


def snapshot(runtime) -> tuple:
    """Everything a bulk command could change: delivery rows, attempt rows, Redis keys."""
    with runtime.engine.connect() as conn:
        deliveries = conn.execute(sa.select(store.DELIVERIES).order_by(store.DELIVERIES.c.request_id)).all()
        attempts = conn.execute(sa.select(store.ATTEMPTS).order_by(store.ATTEMPTS.c.id)).all()
    return [tuple(r) for r in deliveries], [tuple(r) for r in attempts], sorted(runtime.redis.keys("*"))


def statuses(runtime) -> dict[str, str]:
    with runtime.engine.connect() as conn:
        return dict(conn.execute(sa.select(store.DELIVERIES.c.request_id, store.DELIVERIES.c.status)).all())


def queued_job_ids(runtime) -> set[str]:
    return set(runtime.queue.get_job_ids())


NOW = utcnow()
HOURS = timedelta(hours=1)


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


# --- prune -----------------------------------------------------------------------------------


def _attempt_counts(runtime) -> dict[str, int]:
    a = store.ATTEMPTS
    with runtime.engine.connect() as conn:
        return dict(conn.execute(sa.select(a.c.request_id, sa.func.count()).group_by(a.c.request_id)).all())


def test_prune_deletes_old_final_deliveries_with_their_attempts_only(make_runtime, database_url):
    runtime = make_runtime(database_url=database_url, endpoints=endpoints("http://127.0.0.1:9/"))
    old, recent = NOW - 40 * 24 * HOURS, NOW - 24 * HOURS
    e = runtime.engine
    old_delivered = seed(e, 1, 3, status=DeliveryStatus.DELIVERED, created_at=old, attempt_rows=True)
    seed(e, 10, 2, status=DeliveryStatus.FAILED, created_at=old, attempt_rows=True)
    kept = (
        seed(e, 20, 2, status=DeliveryStatus.DELIVERED, created_at=old, updated_at=recent, attempt_rows=True)
        + seed(e, 30, 1, status=DeliveryStatus.QUEUED, created_at=old, attempt_rows=True)
        + seed(e, 40, 1, status=DeliveryStatus.RETRYING, created_at=old, attempt_rows=True)
        + seed(e, 50, 1, status=DeliveryStatus.IN_FLIGHT, created_at=old, attempt_rows=True)
    )
    before = snapshot(runtime)

    dry = json.loads(invoke("prune", "--older-than", "30d", "--dry-run", "--json").stdout)
    assert dry["matched"] == 5 and dry["deleted"] == 0 and dry["dry_run"] is True
    assert dry["matched_by_status"] == {"delivered": 3, "failed": 2}
    assert dry["statuses"] == ["delivered", "failed"] and dry["cutoff"].endswith("Z")
    declined = invoke("prune", "--older-than", "30d", input="n\n")
    assert declined.exit_code == 1 and "5 deliveries (delivered: 3, failed: 2)" in declined.stdout
    assert snapshot(runtime) == before

    only_failed = json.loads(
        invoke("prune", "--older-than", "30d", "--status", "failed", "--yes", "--json").stdout
    )
    assert only_failed["deleted"] == 2 and only_failed["attempts_deleted"] == 2
    assert only_failed["statuses"] == ["failed"] and only_failed["matched_by_status"] == {"failed": 2}
    assert set(statuses(runtime)) == set(old_delivered + kept)

    text = invoke("prune", "--older-than", "30d", "--yes")
    assert text.exit_code == 0 and "deleted 3 deliveries and 3 attempt rows" in text.stdout
    assert set(statuses(runtime)) == set(kept)
    assert set(_attempt_counts(runtime)) == set(kept)

    everything_old = invoke("prune", "--older-than", "1h", "--yes", "--json")
    assert json.loads(everything_old.stdout)["deleted"] == 2  # the recently updated delivered ones
    assert sorted(statuses(runtime).values()) == ["in_flight", "queued", "retrying"]


def test_prune_bad_option_values_are_usage_errors(make_runtime):
    make_runtime()
    bad = invoke("prune", "--older-than", "a month")
    assert bad.exit_code == 2 and "Invalid value for '--older-than'" in bad.stderr
    assert "'a month' is neither an ISO 8601 time nor an age like 30m, 2h, 7d" in bad.stderr
    status = invoke("prune", "--older-than", "30d", "--status", "queued")
    assert status.exit_code == 2 and "'--status'" in status.stderr
    missing = invoke("prune")
    assert missing.exit_code == 2 and "'--older-than'" in missing.stderr
    nothing = invoke("prune", "--older-than", "30d", "--yes")
    assert nothing.exit_code == 0 and nothing.stdout.startswith("no deliveries (delivered, failed)")
    empty = json.loads(invoke("prune", "--older-than", "30d", "--json").stdout)
    assert empty["matched"] == 0 and empty["matched_by_status"] == {"delivered": 0, "failed": 0}


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
    assert len(_attempt_counts(runtime)) == 10


# --- the doors (ops.resend.Retry, ops.resend.RetryFailed) -------------------------------------


def _erase(runtime, request_ids: list[str]) -> None:
    with runtime.engine.begin() as conn:
        conn.execute(
            store.DELIVERIES.update()
            .where(store.DELIVERIES.c.request_id.in_(request_ids))
            .values(payload=None, payload_erased_at=NOW)
        )


def test_retry_failed_door_plans_without_writing_and_audits_once(make_runtime, database_url):
    runtime = make_runtime(database_url=database_url, endpoints=endpoints("http://127.0.0.1:9/"))
    failed = seed(runtime.engine, 1, 3, status=DeliveryStatus.FAILED, created_at=NOW - HOURS)
    erased = seed(runtime.engine, 10, 1, status=DeliveryStatus.FAILED, created_at=NOW - HOURS)
    seed(runtime.engine, 20, 1, status=DeliveryStatus.DELIVERED, created_at=NOW - HOURS)
    seed(runtime.engine, 30, 1, status=DeliveryStatus.FAILED, created_at=NOW - HOURS, endpoint=EP_B)
    _erase(runtime, erased)
    before = snapshot(runtime)

    door = resend.RetryFailed(store.Selection(endpoint=EP_A))
    plan = door.plan(runtime)
    assert (plan.action, plan.count, plan.details) == ("retry", 3, {"erased": 1})
    assert plan.description.startswith("Re-queue 3 deliveries (same request ids")
    assert plan.notes == ("1 failed delivery whose payload was erased cannot be re-sent; left alone",)
    assert door.preview(runtime, plan).as_dict()["request_ids"] == failed
    assert snapshot(runtime) == before and audit.entries(runtime.engine) == []

    report = door.carry_out(runtime, Actor.console("olivia"), plan)
    assert report.requeued == 3 and queued_job_ids(runtime) == set(failed)
    [entry] = audit.entries(runtime.engine)
    assert (entry.actor, entry.action) == ("olivia", "retry")
    assert entry.selection == {
        "endpoint": EP_A,
        "statuses": ["failed"],
        "with_payload": True,
        "via": "console",
    }
    assert entry.counts == {
        "matched": 3,
        "requeued": 3,
        "awaiting_reconcile": 0,
        "skipped_endpoint_disabled": 0,
    }


def test_retry_door_judges_each_id_in_its_plan_and_audits_once(make_runtime):
    runtime = make_runtime(endpoints=endpoints("http://127.0.0.1:9/"))
    (failed,) = seed(runtime.engine, 1, 1, status=DeliveryStatus.FAILED, created_at=NOW)
    (delivered,) = seed(runtime.engine, 2, 1, status=DeliveryStatus.DELIVERED, created_at=NOW)
    (erased,) = seed(runtime.engine, 3, 1, status=DeliveryStatus.FAILED, created_at=NOW)
    _erase(runtime, [erased])
    before = snapshot(runtime)

    door = resend.Retry([failed, delivered, erased, rid(99)])
    plan = door.plan(runtime)
    assert [v.result for v in plan.verdicts] == ["requeued", "not_failed", "erased", "missing"]
    assert plan.count == 1 and plan.selection == {"request_ids": [failed, delivered, erased, rid(99)]}
    assert plan.notes == (
        f"{delivered} is left alone: its status is delivered",
        f"{erased} is left alone: its payload was erased",
        f"{rid(99)} is left alone: no such delivery",
    )
    assert snapshot(runtime) == before and audit.entries(runtime.engine) == []
    one = resend.Retry([failed]).plan(runtime)
    assert (
        one.description
        == f"Re-queue {failed} to {EP_A}: same request id, retry: true, a fresh attempt budget"
    )

    outcome = door.carry_out(runtime, Actor.cli())
    assert [v.result for v in outcome.verdicts] == ["requeued", "not_failed", "erased", "missing"]
    [entry] = audit.entries(runtime.engine)
    assert (entry.actor, entry.action) == (audit.os_actor(), "retry")
    assert entry.selection == {"request_ids": [failed, delivered, erased, rid(99)]}  # no via: the CLI
    assert entry.counts == {"requeued": 1, "left_alone": 3}
