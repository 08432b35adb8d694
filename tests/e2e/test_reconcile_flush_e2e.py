"""A Redis flush under a live worker, and `dispatcher reconcile` run by hand after it (issue 21,
findings 10 and 12), and a worker killed before a flush (finding 10's follow-up): real `python
worker.py` processes, the real Redis, SQLite, and a partner on 127.0.0.1 that holds the head's
POST open until the test releases it.

The interleaving is made, never hoped for: the worker is paused (SIGSTOP) while its POST is held,
so its heartbeat cannot put its liveness key back before reconcile looks, exactly as when the
operator's reconcile comes between the flush and the worker's next beat.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dispatcher import dispatch, store
from dispatcher.contract import catalogue as events
from dispatcher.policy.reconcile import ABANDON_GRACE
from dispatcher.store.schema import WORKER_LEASES
from dispatcher.vocabulary import FINAL_STATUSES, AttemptOutcome, DeliveryStatus
from dispatcher.worker import reconcile
from dispatcher.worker.liveness import alive_key
from tests.conftest import ROOT, wait_for
from tests.e2e.test_faults import child_pids, process_log_text, running

MESSAGE = events.CATALOGUE["message_created"].example()
HOLD_LIMIT = 120
"""A held POST is answered after this many seconds even if the test never releases it."""


@dataclass
class Post:
    request_id: str
    started: float
    ended: float | None = None


class HoldingPartner:
    """A partner on 127.0.0.1 answering 200 at once, except every POST of :attr:`held`, which it
    holds open until :meth:`release`. It notes when each POST started and ended (monotonic)."""

    def __init__(self) -> None:
        self.held: str | None = None
        self.released = threading.Event()
        self.lock = threading.Lock()
        self.posts: list[Post] = []
        partner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                post = Post(body["metadata"]["request_id"], time.monotonic())
                with partner.lock:
                    partner.posts.append(post)
                if post.request_id == partner.held:
                    partner.released.wait(HOLD_LIMIT)
                answer = b'{"ok":true}'
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender was killed while its POST was held
                finally:
                    post.ended = time.monotonic()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/pharmacy"

    def posts_of(self, request_id: str) -> list[Post]:
        with self.lock:
            return [p for p in self.posts if p.request_id == request_id]

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def partner() -> Iterator[HoldingPartner]:
    server = HoldingPartner()
    yield server
    server.close()


def ordered(partner: HoldingPartner) -> list[dict]:
    return [{"name": "pharmacy", "url": partner.url, "key": "pharmacy-key-1", "ordered": True}]


DELIVERY = {"timeout": 60}
"""Longer than the test holds a POST, so the attempt's own deadline never cuts it."""


def dispatched(encounter: str, n: int) -> str:
    (request_id,) = dispatch(
        "message_created", {**MESSAGE, "encounter_id": encounter, "message": f"{encounter} #{n}"}
    )
    return request_id


def backdate(runtime: Any, request_ids: list[str], by: timedelta) -> None:
    """Makes the rows look last touched ``by`` ago: the claim is as old as in the report (11 s
    into its POST), past reconcile's grace for claims, without the test waiting for it."""
    with runtime.engine.begin() as conn:
        conn.execute(
            store.DELIVERIES.update()
            .where(store.DELIVERIES.c.request_id.in_(request_ids))
            .values(updated_at=datetime.now(UTC) - by)
        )


def reconcile_by_hand(config: Path) -> dict:
    """`dispatcher reconcile --json`, a process of its own with the workers' config."""
    env = {**os.environ, "DISPATCHER_CONFIG": str(config), "PYTHONPATH": str(ROOT)}
    env.pop("DISPATCHER_REDIS_URL", None)
    env.pop("DISPATCHER_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "dispatcher", "reconcile", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def all_final(runtime: Any, request_ids: list[str], timeout: float = 60) -> None:
    def done() -> bool:
        return all(store.get_delivery(runtime.engine, rid)["status"] in FINAL_STATUSES for rid in request_ids)

    wait_for(done, timeout=timeout, message=f"{len(request_ids)} deliveries to finish")


def ready_and_scheduled(runtime: Any) -> tuple[set[str], set[str]]:
    """The job ids in the queue's ready list and in its scheduled registry (RQ's public API)."""
    return set(runtime.queue.get_job_ids()), set(runtime.queue.scheduled_job_registry.get_job_ids())


@pytest.fixture
def paused() -> Iterator[list[int]]:
    """Pids the test paused with SIGSTOP; each is continued however the test ends."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def test_flushdb_and_a_hand_run_reconcile_leave_a_live_workers_claim_alone(
    make_runtime, write_config, start_worker, redis_client, partner, paused
) -> None:
    """Finding 10: Redis flushed while a live worker is in the middle of a slow POST of an
    ordered key's head, then `dispatcher reconcile` as the README says. The worker's lease in
    the database says it is alive: its claim is not recorded interrupted, the head is POSTed
    once, and the key's next delivery starts only after the head's POST ended."""
    endpoints = ordered(partner)
    runtime = make_runtime(endpoints=endpoints, delivery=DELIVERY)
    head, after = dispatched("E-A", 1), dispatched("E-A", 2)
    partner.held = head
    config = write_config(endpoints=endpoints, delivery=DELIVERY)
    worker = start_worker(config, name="holder")
    wait_for(lambda: partner.posts_of(head), timeout=30, message="the head's POST")
    assert store.get_delivery(runtime.engine, head)["status"] == DeliveryStatus.IN_FLIGHT
    backdate(runtime, [head, after], ABANDON_GRACE + timedelta(seconds=5))

    os.kill(worker.process.pid, signal.SIGSTOP)  # its heartbeat cannot beat before reconcile looks
    paused.append(worker.process.pid)
    redis_client.flushdb()
    report = reconcile_by_hand(config)
    assert not redis_client.exists(alive_key("holder"))  # reconcile saw Redis without the worker
    os.kill(worker.process.pid, signal.SIGCONT)

    partner.release()
    all_final(runtime, [head, after])
    attempts = store.list_attempts(runtime.engine, head)
    print(f"\n[flush + reconcile] report {report}; head attempts {[a['outcome'] for a in attempts]}")
    assert len(partner.posts_of(head)) == 1, "the head was POSTed twice: its live claim was taken"
    assert AttemptOutcome.INTERRUPTED not in [a["outcome"] for a in attempts]
    assert store.get_delivery(runtime.engine, head)["attempts"] == 1
    (last_of_head,) = partner.posts_of(head)
    first_of_next = min(p.started for p in partner.posts_of(after))
    assert last_of_head.ended is not None and first_of_next > last_of_head.ended, (
        f"the next delivery started {last_of_head.ended - first_of_next:.1f}s before the head's POST ended"
    )
    assert head not in report["abandoned"] and after in report["requeued"]
    assert {store.get_delivery(runtime.engine, r)["status"] for r in (head, after)} == {"delivered"}
    assert worker.process.poll() is None


def test_a_hand_run_reconcile_after_flushdb_queues_due_deliveries_at_once(
    make_runtime, write_config, start_worker, redis_client, partner
) -> None:
    """Finding 12: after FLUSHDB, `dispatcher reconcile` puts every delivery that is due in the
    queue's ready list, where a worker takes it as soon as it runs; only a retry whose time is
    still ahead waits in the scheduled registry."""
    endpoints = [{"name": "pharmacy", "url": partner.url, "key": "pharmacy-key-1"}]
    runtime = make_runtime(endpoints=endpoints)
    queued = [dispatched(f"E-{n}", 1) for n in range(3)]
    due, ahead = dispatched("E-due", 1), dispatched("E-ahead", 1)
    now = datetime.now(UTC)
    with runtime.engine.begin() as conn:
        table = store.DELIVERIES
        retrying = {"status": DeliveryStatus.RETRYING, "attempts": 1}
        conn.execute(table.update().where(table.c.request_id == due).values(**retrying, next_attempt_at=now))
        conn.execute(
            table.update()
            .where(table.c.request_id == ahead)
            .values(**retrying, next_attempt_at=now + timedelta(hours=1))
        )
    backdate(runtime, [*queued, due, ahead], timedelta(minutes=1))
    redis_client.flushdb()
    config = write_config(endpoints=endpoints)

    report = reconcile_by_hand(config)
    reconciled = time.monotonic()
    ready, scheduled = ready_and_scheduled(runtime)
    assert sorted(report["requeued"]) == sorted([*queued, due, ahead])
    assert ready == {*queued, due}, "a due delivery waits for a scheduler pass"
    assert scheduled == {ahead}

    started = time.monotonic()
    start_worker(config, name="late-starter")
    all_final(runtime, [*queued, due])
    first = min(p.started for p in partner.posts)
    print(
        f"\n[reconcile by hand] worker start -> first delivery {first - started:.1f}s "
        f"(reconcile -> first delivery {first - reconciled:.1f}s)"
    )
    assert partner.posts_of(ahead) == []
    assert store.get_delivery(runtime.engine, ahead)["status"] == DeliveryStatus.RETRYING


@pytest.fixture
def forked() -> Iterator[list[int]]:
    """Pids a killed worker forked (RQ's scheduler) that may outlive it; ended by pid."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if running(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def reconcile_lines(tmp_path: Path, after: int) -> list[str]:
    """The process log's reconcile lines written past its first ``after`` characters."""
    text = process_log_text(tmp_path)[after:]
    return [line for line in text.splitlines() if " reconcile reason=" in line]


def test_a_worker_killed_before_a_flush_has_its_claim_recovered_as_soon_as_its_lease_expires(
    make_runtime, write_config, start_worker, redis_client, partner, forked, tmp_path
) -> None:
    """The reviewer's case: worker lw5 is mid-POST on a slow partner; kill -9 it; FLUSHDB; start
    lw6. The flush erased lw5 from the heartbeats' registry, so no heartbeat ever calls it dead;
    lw6's lease thread sees lw5's lease expired and has the claim recovered at once. The routine
    reconcile is kept from running (its lock held, as when another worker ran it a moment ago),
    and lw5's lease is made to expire now instead of 30 s after the kill."""
    endpoints = [{"name": "pharmacy", "url": partner.url, "key": "pharmacy-key-1"}]
    runtime = make_runtime(endpoints=endpoints, delivery=DELIVERY)
    held = dispatched("E-K", 1)
    partner.held = held
    config = write_config(endpoints=endpoints, delivery=DELIVERY)
    killed = start_worker(config, name="lw5")
    wait_for(lambda: partner.posts_of(held), timeout=30, message="lw5's POST")
    assert store.get_delivery(runtime.engine, held)["worker"] == "lw5"
    forked.extend(child_pids(killed.process.pid))  # RQ's forked scheduler
    killed.stop(signal.SIGKILL)
    partner.release()  # the POST sent again is answered at once

    redis_client.flushdb()
    redis_client.set(reconcile.LOCK_KEY, "a routine reconcile that just ran", ex=600)
    logged = len(process_log_text(tmp_path))  # lw5's lines, its own start's reconcile among them
    start_worker(config, name="lw6")
    wait_for(
        lambda: any('reason="redis empty"' in line for line in reconcile_lines(tmp_path, logged)),
        timeout=30,
        message="lw6's reconcile for the flush (lw5's lease still runs: its claim is left)",
    )
    assert store.get_delivery(runtime.engine, held)["status"] == DeliveryStatus.IN_FLIGHT
    expired_at = datetime.now(UTC)
    backdate(runtime, [held], ABANDON_GRACE + timedelta(seconds=5))
    with runtime.engine.begin() as conn:
        conn.execute(
            WORKER_LEASES.update().where(WORKER_LEASES.c.worker == "lw5").values(expires_at=expired_at)
        )

    wait_for(
        lambda: (
            AttemptOutcome.INTERRUPTED in [a["outcome"] for a in store.list_attempts(runtime.engine, held)]
        ),
        timeout=30,
        message="lw5's claim to be recovered (no routine reconcile can run)",
    )
    all_final(runtime, [held])
    attempts = store.list_attempts(runtime.engine, held)
    took = (attempts[0]["created_at"] - expired_at).total_seconds()
    lines = reconcile_lines(tmp_path, logged)
    print(f"\n[kill -9 + FLUSHDB] lw5's lease expiry -> claim recovered by lw6: {took:.1f}s (lease beat 5 s)")
    print("\n".join(lines))
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [(1, "interrupted"), (2, "delivered")]
    assert "lw5" in attempts[0]["error"]
    first, second = partner.posts_of(held)
    assert second.started > first.started
    recovered = [line for line in lines if "abandoned=1" in line]
    assert len(recovered) == 1 and 'reason="workers stopped beating" ' in recovered[0], lines
    assert not any("reason=due" in line for line in lines), "a routine reconcile ran"
    with runtime.engine.connect() as conn:
        assert set(conn.execute(sa.select(WORKER_LEASES.c.worker)).scalars()) == {"lw6"}
