"""A Redis flush under a live worker, and `dispatcher reconcile` run by hand after it (issue 21,
findings 10 and 12): real `python worker.py` processes, the real Redis, SQLite, and a partner on
127.0.0.1 that holds the head's POST open until the test releases it.

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

from dispatcher import dispatch, store
from dispatcher.contract import catalogue as events
from dispatcher.policy.reconcile import ABANDON_GRACE
from dispatcher.vocabulary import FINAL_STATUSES, AttemptOutcome, DeliveryStatus
from dispatcher.worker.liveness import alive_key
from tests.conftest import ROOT, wait_for

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

            def do_POST(self) -> None:  # noqa: N802
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
