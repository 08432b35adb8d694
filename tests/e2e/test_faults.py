"""The fault suite (issue 4): real faults against real servers, no mocks.

Every test runs real ``python worker.py`` processes against a real Redis, a real database and a
real HTTP receiver on 127.0.0.1, injects one fault (kill -9, FLUSHDB, a Redis server that dies,
PostgreSQL refusing connections, racing workers and reconcile, connection resets, a poison
job), and then checks the same invariants:

* every delivery reaches ``delivered`` or ``failed``;
* the receiver saw each request_id at least once;
* no request_id was ever in flight twice at once (``receiver.overlaps == []``);
* the transaction log has exactly one row per attempt: numbers 1..N for N == ``attempts``.

Where the product waits for a timer longer than a test should (reconcile runs in the workers
about once a minute), the test calls :func:`dispatcher.worker.reconcile.reconcile` itself, which is
what ``dispatcher reconcile`` does. It never shortens a liveness key or deletes one.

``pytest -s`` prints a summary table at the end of the module.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rq.job import Job

from dispatcher import dispatch, dispatch_many, queue, store
from dispatcher.contract import catalogue as events
from dispatcher.intake.prepare import one_per_item, prepare_request
from dispatcher.ops.redis_server import RedisServer, free_port
from dispatcher.vocabulary import FINAL_STATUSES, DeliveryStatus
from dispatcher.worker.liveness import alive_key
from dispatcher.worker.reconcile import reconcile
from tests.conftest import wait_for
from tests.servers import Answer, ScriptedReceiver

KEY = "partner-secret-key-123"
EVENT = "order_changed"
SUMMARY: list[dict] = []


# --- summary table -------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def summary_table() -> Iterator[None]:
    yield
    if not SUMMARY:
        return
    headers = ["fault", "dispatched", "delivered", "failed", "lost", "duplicates", "note"]
    rows = [[str(row[h]) for h in headers] for row in SUMMARY]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def table_row(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    print()
    print("fault suite summary")
    print(table_row(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(table_row(r))


# --- helpers -------------------------------------------------------------------------------------


def endpoint(receiver: ScriptedReceiver) -> dict:
    return {"name": "partner-a", "url": receiver.url, "key": KEY}


def example() -> dict:
    return events.CATALOGUE[EVENT].example()


def utcnow() -> datetime:
    return datetime.now(UTC)


def final(runtime, request_id: str) -> dict | None:
    row = store.get_delivery(runtime.engine, request_id)
    return row if row and row["status"] in FINAL_STATUSES else None


def wait_final(
    runtime,
    request_ids: list[str],
    timeout: float = 60,
    between: Callable[[], object] | None = None,
    interval: float = 0.2,
) -> list[dict]:
    """Waits until every delivery is final, calling ``between()`` (e.g. reconcile) at each poll."""

    def done() -> bool:
        if between is not None:
            between()
        return all(final(runtime, rid) for rid in request_ids)

    wait_for(done, timeout=timeout, interval=interval, message=f"{len(request_ids)} deliveries to finish")
    return [final(runtime, rid) for rid in request_ids]


def process_log_text(tmp_path: Path) -> str:
    log_dir = tmp_path / "logs"
    return "".join(p.read_text(errors="replace") for p in log_dir.glob("*.log") if not p.is_symlink())


def spooled(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "logs" / "spool"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process from /proc, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def child_pids(pid: int) -> list[int]:
    """The live children of ``pid`` (RQ forks its scheduler from the worker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat and stat[1] == pid and stat[0] != "Z":
                found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


@pytest.fixture
def reap() -> Iterator[list[int]]:
    """Pids this test's workers forked that may outlive them; ended by pid at teardown."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if running(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def check_and_record(
    fault: str,
    runtime,
    receiver: ScriptedReceiver,
    request_ids: list[str],
    ok_index: Callable[[str], int] | int = 0,
    note: str = "",
) -> dict:
    """Adds a summary row, then asserts the suite's invariants.

    ``ok_index(rid)`` is the 0-based index of the first request the receiver answers with a 2xx
    (by its script); any request for that id after it is a duplicate seen by the receiver.
    """
    ok_at = (lambda _rid: ok_index) if isinstance(ok_index, int) else ok_index
    rows = {rid: store.get_delivery(runtime.engine, rid) for rid in request_ids}
    delivered = sum(1 for r in rows.values() if r and r["status"] == DeliveryStatus.DELIVERED)
    failed = sum(1 for r in rows.values() if r and r["status"] == DeliveryStatus.FAILED)
    duplicates = sum(max(0, len(receiver.for_request(rid)) - (ok_at(rid) + 1)) for rid in request_ids)
    stats = {
        "fault": fault,
        "dispatched": len(request_ids),
        "delivered": delivered,
        "failed": failed,
        "lost": len(request_ids) - delivered - failed,
        "duplicates": duplicates,
        "note": note,
    }
    SUMMARY.append(stats)

    assert stats["lost"] == 0, {rid: r and r["status"] for rid, r in rows.items()}
    unseen = [rid for rid in request_ids if not receiver.for_request(rid)]
    assert unseen == [], "the receiver never saw these request ids"
    assert receiver.overlaps == [], "a request_id was in flight twice at once"
    for rid, row in rows.items():
        attempts = store.list_attempts(runtime.engine, rid)
        numbers = [a["attempt"] for a in attempts]
        assert numbers == list(range(1, row["attempts"] + 1)), (rid, numbers, row["attempts"])
        assert [a["retry"] for a in attempts] == [n > 1 for n in numbers]
        for got in receiver.for_request(rid):
            assert got.body["metadata"]["request_id"] == rid
    return stats


# --- 1. kill -9 mid-request ----------------------------------------------------------------------


@pytest.mark.slow
def test_kill9_worker_mid_request_is_recovered_as_interrupted(
    make_runtime, write_config, start_worker, receiver, redis_client, reap, tmp_path
):
    receiver.script_all(Answer(delay=3))  # the first request of each id sleeps, then 200
    runtime = make_runtime(endpoints=[endpoint(receiver)])
    config = write_config(endpoints=[endpoint(receiver)])
    worker_a = start_worker(config, name="worker-a")
    request_ids = dispatch_many(EVENT, [example()] * 3)
    # Worker A's threads POST all three at once; each request sleeps 3 s in the receiver.
    wait_for(lambda: len(receiver.received) == 3, timeout=20, message="worker A's three POSTs")
    killed = {r.request_id for r in receiver.received}
    assert killed == set(request_ids)
    for request_id in killed:
        assert store.get_delivery(runtime.engine, request_id)["status"] == DeliveryStatus.IN_FLIGHT
    reap.extend(child_pids(worker_a.process.pid))  # RQ's forked scheduler (see the orphan test)
    worker_a.stop(signal.SIGKILL)
    killed_at = time.time()
    assert worker_a.process.returncode == -signal.SIGKILL
    worker_b = start_worker(config, name="worker-b")

    # A live key means "never take it over": until A's key expires on its own, nothing moves;
    # then worker B's heartbeat sees A's key gone and has A's claims recovered at once, with
    # nobody running reconcile by hand.
    assert redis_client.exists(alive_key("worker-a"))
    wait_for(
        lambda: (
            not redis_client.exists(alive_key("worker-a"))
            or {store.get_delivery(runtime.engine, r)["worker"] for r in killed} == {"worker-a"}
        ),
        timeout=5,
        message="worker A's claims to stay its own while its key lives",
    )
    wait_for(
        lambda: all(len(receiver.for_request(r)) >= 2 for r in killed),
        timeout=75,
        interval=0.5,
        message="the killed deliveries to be re-sent",
    )
    took = max(receiver.for_request(r)[1].at for r in killed) - killed_at
    print(f"\n[kill -9] kill -> re-sent by worker B on its own: {took:.1f}s (liveness TTL 30 s, target 45 s)")
    rows = wait_final(runtime, request_ids, timeout=30)
    assert worker_b.process.poll() is None

    stats = check_and_record(
        "kill -9 worker mid-request",
        runtime,
        receiver,
        request_ids,
        note=f"3 in flight at the kill, re-sent {took:.0f}s after (no operator); each dup = at-least-once",
    )
    assert {r["status"] for r in rows} == {DeliveryStatus.DELIVERED}
    for request_id in killed:
        first, second = receiver.for_request(request_id)
        assert first.body["metadata"]["retry"] is False
        assert second.body["metadata"]["retry"] is True
        assert second.body["metadata"]["request_id"] == request_id
        assert second.body["timestamp"] == first.body["timestamp"]
        attempts = store.list_attempts(runtime.engine, request_id)
        assert [(a["attempt"], a["outcome"]) for a in attempts] == [(1, "interrupted"), (2, "delivered")]
        assert "worker-a" in attempts[0]["error"]
        row = store.get_delivery(runtime.engine, request_id)
        assert row["attempts"] == 2 and row["attempt_limit"] == 5 + 1  # the crash cost no try
    # the only duplicates are the killed attempts, and only the at-least-once kind (same request_id)
    assert stats["duplicates"] == len(killed)
    assert 'reason="workers stopped beating"' in process_log_text(tmp_path)


def test_kill9_leaves_no_orphan_scheduler(write_config, start_worker, receiver, reap):
    worker = start_worker(write_config(endpoints=[endpoint(receiver)]), name="orphan-check")
    children = wait_for(
        lambda: child_pids(worker.process.pid), timeout=20, message="RQ's scheduler process to fork"
    )
    reap.extend(children)
    worker.stop(signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(running(pid) for pid in children):
        time.sleep(0.2)
    assert [pid for pid in children if running(pid)] == [], "the killed worker's scheduler lives on"


# --- 2. FLUSHDB between dispatch and delivery ---------------------------------------------------


def test_flushdb_wipes_the_jobs_under_a_running_worker(
    make_runtime, write_config, start_worker, receiver, redis_client, tmp_path
):
    """Deliveries stored as queued whose jobs a FLUSHALL wiped: the running worker's heartbeat
    sees Redis empty and has them queued again at once, with nobody running reconcile."""
    runtime = make_runtime(endpoints=[endpoint(receiver)])
    worker = start_worker(write_config(endpoints=[endpoint(receiver)]), name="flush-witness")
    wait_for(
        lambda: redis_client.exists(alive_key("flush-witness")), timeout=20, message="the worker's first beat"
    )
    rows = prepare_request(
        runtime.settings, one_per_item(EVENT, [example()] * 5), disabled=()
    )  # dispatched, stored...
    store.insert_deliveries(runtime.engine, rows, now=utcnow() - timedelta(seconds=30))
    request_ids = [r.request_id for r in rows]
    redis_client.flushdb()  # ...and their jobs wiped
    flushed_at = time.time()
    rows_after = wait_final(runtime, request_ids, timeout=30)
    took = max(receiver.for_request(rid)[0].at for rid in request_ids) - flushed_at
    print(f"\n[FLUSHDB] flush -> delivered with no operator action: {took:.1f}s (target 10 s)")
    check_and_record(
        "FLUSHDB under a running worker", runtime, receiver, request_ids, note=f"delivered {took:.0f}s after"
    )
    assert {r["status"] for r in rows_after} == {DeliveryStatus.DELIVERED}
    assert [len(receiver.for_request(rid)) for rid in request_ids] == [1] * 5
    assert 'reason="redis empty"' in process_log_text(tmp_path)
    assert worker.process.poll() is None


# --- 3. the Redis server stops and restarts -----------------------------------------------------


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    directory = tmp_path / "private-redis"
    directory.mkdir()
    server = RedisServer(directory).start()
    yield server
    server.kill()


def test_redis_server_stops_and_restarts_under_a_running_worker(
    make_runtime, write_config, start_worker, receiver, private_redis, tmp_path
):
    runtime = make_runtime(endpoints=[endpoint(receiver)], redis_url=private_redis.url)
    worker = start_worker(write_config(endpoints=[endpoint(receiver)], redis_url=private_redis.url))
    before = dispatch_many(EVENT, [example()] * 4)
    wait_final(runtime, before, timeout=30)
    private_redis.kill()  # SIGKILL, --save "" --appendonly no: everything it held is gone
    started = time.monotonic()
    during = dispatch_many(EVENT, [example()] * 4)  # still accepted: the rows are stored
    assert len(during) == 4 and time.monotonic() - started < 15
    assert all(store.get_delivery(runtime.engine, rid)["status"] == DeliveryStatus.QUEUED for rid in during)
    assert "redis unavailable at dispatch" in process_log_text(tmp_path)
    time.sleep(3)  # an outage of a few seconds, the worker's loop retrying meanwhile

    private_redis.start()  # same port, empty
    restarted_at = time.time()
    rows = wait_final(runtime, during, timeout=30)
    took = max(receiver.for_request(rid)[0].at for rid in during) - restarted_at
    print(
        f"\n[Redis restart] Redis answering -> delivered with no operator action: {took:.1f}s (target 10 s)"
    )
    check_and_record(
        "Redis killed + restarted under a running worker",
        runtime,
        receiver,
        before + during,
        note=f"dispatched during the outage, delivered {took:.0f}s after Redis answered",
    )
    assert {r["status"] for r in rows} == {DeliveryStatus.DELIVERED}
    assert [len(receiver.for_request(rid)) for rid in before + during] == [1] * 8
    assert worker.process.poll() is None


def test_dispatcher_reconcile_right_after_redis_returns_queues_at_once(make_runtime, receiver, private_redis):
    """No worker runs: an operator's `dispatcher reconcile` queues what the outage left, at once."""
    from click.testing import CliRunner

    from dispatcher.cli import cli

    runtime = make_runtime(endpoints=[endpoint(receiver)], redis_url=private_redis.url)
    private_redis.kill()
    during = dispatch_many(EVENT, [example()] * 3)
    time.sleep(2.1)  # the outage lasted a moment longer than a dispatch takes to reach Redis
    private_redis.start()
    result = CliRunner().invoke(cli, ["reconcile", "--json"])
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(result.output)["requeued"]) == sorted(during)
    assert sorted(runtime.queue.job_ids) == sorted(during)
    again = json.loads(CliRunner().invoke(cli, ["reconcile", "--json"]).output)
    assert again["requeued"] == []  # one job each: a second pass finds them queued


# --- 4. PostgreSQL refuses connections during an attempt ----------------------------------------


class TcpProxy:
    """A TCP forwarder on 127.0.0.1 that can be made to refuse: its listening socket is closed
    (new connections get ECONNREFUSED) and every open connection is cut.

    ``cut_after_commit(marker)`` arms a one-shot fault for PostgreSQL: on the first connection
    whose client sends ``marker`` (a piece of SQL), the next ``COMMIT`` is passed to the server,
    its answer is swallowed and the connection is cut: the server commits, the client never
    learns it did (a lost commit acknowledgement).
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.lock = threading.Lock()
        self.sockets: set[socket.socket] = set()
        self.listener: socket.socket | None = None
        self.accepting = threading.Event()
        self.commit_marker: bytes | None = None
        self.cuts = 0
        self.restore()

    @property
    def refusing(self) -> bool:
        return self.listener is None

    def cut_after_commit(self, marker: bytes) -> None:
        self.commit_marker = marker

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self.listener = listener
        stop = threading.Event()
        self.accepting = stop
        self.acceptor = threading.Thread(target=self._accept, args=(listener, stop), daemon=True)
        self.acceptor.start()

    def refuse(self) -> None:
        listener, self.listener = self.listener, None
        self.accepting.set()
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # stops listening at once, even mid-poll
            except OSError:
                pass
            self.acceptor.join(timeout=5)
            listener.close()
        with self.lock:
            open_sockets, self.sockets = list(self.sockets), set()
        for sock in open_sockets:
            self._cut(sock)

    def close(self) -> None:
        self.refuse()

    @staticmethod
    def _cut(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def _accept(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self.lock:
                if stop.is_set():
                    client.close()
                    upstream.close()
                    return
                self.sockets.update((client, upstream))
            state = {"marked": False, "swallow": False}
            threading.Thread(target=self._pump, args=(client, upstream, True, state), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False, state), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, to_server: bool, state: dict) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not to_server:
                    if state["swallow"]:
                        continue
                    dst.sendall(data)
                    continue
                marker = self.commit_marker
                if marker is not None and marker in data:
                    state["marked"] = True
                if state["marked"] and b"COMMIT\x00" in data:
                    with self.lock:
                        if self.commit_marker is None:
                            state["marked"] = False
                        else:
                            self.commit_marker = None
                            state["swallow"] = True
                    if state["swallow"]:
                        dst.sendall(data)
                        time.sleep(0.5)  # the server commits; its answer is swallowed
                        self.cuts += 1
                        break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            with self.lock:
                self.sockets.discard(src)
                self.sockets.discard(dst)


@pytest.fixture
def pg_proxy(pg_url: str) -> Iterator[tuple[str, TcpProxy]]:
    """(direct URL, proxy): the tables are reset by ``pg_url``; the worker goes through the proxy."""
    from sqlalchemy.engine import make_url

    direct = make_url(pg_url)
    proxy = TcpProxy((direct.host or "127.0.0.1", direct.port or 5432))
    yield pg_url, proxy
    proxy.close()


def proxied_url(pg_url: str, proxy: TcpProxy) -> str:
    from sqlalchemy.engine import make_url

    return make_url(pg_url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


def _pg_outage_during_attempt(
    make_runtime, write_config, start_worker, receiver, pg_proxy, redis_client, tmp_path, outage: float
) -> tuple[object, dict, str, bool]:
    direct_url, proxy = pg_proxy
    receiver.script_all(Answer(delay=2))
    runtime = make_runtime(endpoints=[endpoint(receiver)], database_url=direct_url)
    worker = start_worker(
        write_config(endpoints=[endpoint(receiver)], database_url=proxied_url(direct_url, proxy)),
        name="pg-worker",
    )
    (request_id,) = dispatch(EVENT, example())
    wait_for(lambda: receiver.for_request(request_id), timeout=20, message="the POST to start")
    proxy.refuse()  # new and existing connections, while the POST is in flight
    refused_at = time.monotonic()
    assert proxy.refusing
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1).close()

    saw_spool = False
    while time.monotonic() - refused_at < outage:
        time.sleep(1)
        saw_spool = saw_spool or bool(spooled(tmp_path))
        # a live worker waiting out the database is never raced, whatever the clock says
        report = reconcile(runtime, now=utcnow() + timedelta(minutes=5))
        assert report.abandoned == [] and report.requeued == []
        row = store.get_delivery(runtime.engine, request_id)
        assert row["status"] == DeliveryStatus.IN_FLIGHT and row["worker"] == "pg-worker"
        assert redis_client.exists(alive_key("pg-worker"))
    proxy.restore()
    (row,) = wait_final(runtime, [request_id], timeout=30)
    time.sleep(2)  # a re-send, were one coming, would show now
    assert worker.process.poll() is None
    return runtime, row, request_id, saw_spool


def test_pg_refuses_briefly_during_attempt_record_retried(
    make_runtime, write_config, start_worker, receiver, pg_proxy, redis_client, tmp_path
):
    runtime, row, request_id, saw_spool = _pg_outage_during_attempt(
        make_runtime, write_config, start_worker, receiver, pg_proxy, redis_client, tmp_path, outage=5
    )
    check_and_record("PostgreSQL refuses 5 s mid-attempt", runtime, receiver, [request_id])
    assert row["status"] == DeliveryStatus.DELIVERED and row["attempts"] == 1
    assert len(receiver.for_request(request_id)) == 1  # never re-sent because the write failed
    (attempt,) = store.list_attempts(runtime.engine, request_id)
    assert attempt["outcome"] == "delivered" and attempt["duration_ms"] >= 1900
    assert not saw_spool and spooled(tmp_path) == []
    assert "held in the spool" not in process_log_text(tmp_path)


@pytest.mark.slow
def test_pg_refuses_beyond_tenacity_attempt_spooled_then_written(
    make_runtime, write_config, start_worker, receiver, pg_proxy, redis_client, tmp_path
):
    runtime, row, request_id, saw_spool = _pg_outage_during_attempt(
        make_runtime, write_config, start_worker, receiver, pg_proxy, redis_client, tmp_path, outage=30
    )
    check_and_record(
        "PostgreSQL refuses 30 s mid-attempt", runtime, receiver, [request_id], note="record spooled"
    )
    assert saw_spool, "the record should have been held in the spool while the database refused"
    assert row["status"] == DeliveryStatus.DELIVERED and row["attempts"] == 1
    assert len(receiver.for_request(request_id)) == 1
    (attempt,) = store.list_attempts(runtime.engine, request_id)
    assert attempt["outcome"] == "delivered" and attempt["http_status"] == 200
    assert spooled(tmp_path) == []
    assert "held in the spool" in process_log_text(tmp_path)


CLAIM_SQL = b"attempts=(webhook_deliveries.attempts + "


def test_pg_connection_lost_after_claim_commit_is_not_stuck(
    make_runtime, write_config, start_worker, receiver, pg_proxy, tmp_path
):
    direct_url, proxy = pg_proxy
    runtime = make_runtime(endpoints=[endpoint(receiver)], database_url=direct_url)
    worker = start_worker(
        write_config(endpoints=[endpoint(receiver)], database_url=proxied_url(direct_url, proxy)),
        name="pg-worker",
    )
    proxy.cut_after_commit(CLAIM_SQL)
    (request_id,) = dispatch(EVENT, example())
    wait_for(lambda: proxy.cuts, timeout=20, message="the claim's commit to be cut")
    row = wait_for(
        lambda: (
            (r := store.get_delivery(runtime.engine, request_id))["status"] == DeliveryStatus.IN_FLIGHT and r
        ),
        timeout=10,
        message="the claim to be committed",
    )
    assert row["worker"] == "pg-worker" and row["attempts"] == 1
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline and not final(runtime, request_id):
        reconcile(runtime, now=utcnow() + timedelta(minutes=5))  # as reconcile would, much later
        time.sleep(0.5)
    assert worker.process.poll() is None
    check_and_record(
        "PG commit ack lost at claim",
        runtime,
        receiver,
        [request_id],
        note="" if final(runtime, request_id) else "stuck in_flight",
    )
    assert len(receiver.for_request(request_id)) == 1


# --- 5. workers racing with reconcile -----------------------------------------------------------


def test_three_workers_racing_with_reconcile(make_runtime, write_config, start_worker, receiver):
    count = 60
    rng = random.Random(4)
    runtime = make_runtime(endpoints=[endpoint(receiver)])
    request_ids = dispatch_many(EVENT, [example()] * count)  # before reconcile runs: no dispatch race
    failures: dict[str, int] = {}
    with receiver.lock:
        for rid in request_ids:
            n503 = rng.choices([0, 1, 2], weights=[65, 25, 10])[0]
            failures[rid] = n503
            receiver.scripts[rid] = [
                *(Answer(status=503, delay=rng.uniform(0, 0.15)) for _ in range(n503)),
                Answer(status=200, delay=rng.uniform(0, 0.15)),
            ]
    config = write_config(endpoints=[endpoint(receiver)])
    workers = [start_worker(config, name=f"racer-{i}") for i in range(3)]

    totals = {"runs": 0, "abandoned": 0, "requeued": 0, "overdue": 0}
    totals_lock = threading.Lock()

    def reconcile_forced() -> None:
        # now + 5 min: every row is past every grace, so reconcile looks at all of them
        report = reconcile(runtime, now=utcnow() + timedelta(minutes=5))
        with totals_lock:
            totals["runs"] += 1
            totals["abandoned"] += len(report.abandoned)
            totals["requeued"] += len(report.requeued)
            totals["overdue"] += len(report.overdue)

    # a second reconciler in a thread (``dispatcher reconcile`` by hand while a worker runs its own)
    stop = threading.Event()
    errors: list[BaseException] = []

    def second_reconciler() -> None:
        while not stop.is_set():
            try:
                reconcile_forced()
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)
                return
            time.sleep(0.03)

    thread = threading.Thread(target=second_reconciler, daemon=True)
    started = time.monotonic()
    thread.start()
    try:
        rows = wait_final(runtime, request_ids, timeout=120, between=reconcile_forced, interval=0.05)
        took = time.monotonic() - started
        time.sleep(1.5)  # keep racing a little after the end: nothing may be sent again
    finally:
        stop.set()
        thread.join(timeout=10)
    assert errors == []
    print(
        f"\n[race] {count} deliveries, 3 workers, {totals['runs']} reconcile passes in {took:.1f}s: "
        f"requeued={totals['requeued']} overdue={totals['overdue']} abandoned={totals['abandoned']}"
    )
    stats = check_and_record(
        "3 workers + reconcile racing",
        runtime,
        receiver,
        request_ids,
        ok_index=lambda rid: failures[rid],
        note=f"{sum(failures.values())} scripted 503s; {totals['runs']} reconcile passes",
    )
    assert {r["status"] for r in rows} == {DeliveryStatus.DELIVERED}
    assert all(w.process.poll() is None for w in workers)
    assert totals["abandoned"] == 0  # every worker was alive: nothing was taken from one
    for rid in request_ids:
        seen = receiver.for_request(rid)
        assert len(seen) == failures[rid] + 1, (rid, len(seen), failures[rid])
        attempts = store.list_attempts(runtime.engine, rid)
        outcomes = [a["outcome"] for a in attempts]
        assert outcomes == ["retry_scheduled"] * failures[rid] + ["delivered"], [
            (a["outcome"], a["http_status"], a["error"]) for a in attempts
        ]
    assert stats["duplicates"] == 0


# --- 6. a receiver that resets connections ------------------------------------------------------


def test_receiver_resets_connections(make_runtime, write_config, start_worker, receiver):
    receiver.script_all(Answer(reset=True), Answer(reset=True))  # then the default 200
    runtime = make_runtime(endpoints=[endpoint(receiver)])
    start_worker(write_config(endpoints=[endpoint(receiver)]))
    request_ids = dispatch_many(EVENT, [example()] * 3)
    rows = wait_final(runtime, request_ids, timeout=40)
    check_and_record("receiver resets connections x2", runtime, receiver, request_ids, ok_index=2)
    assert {r["status"] for r in rows} == {DeliveryStatus.DELIVERED}
    for rid in request_ids:
        assert [g.body["metadata"]["retry"] for g in receiver.for_request(rid)] == [False, True, True]
        attempts = store.list_attempts(runtime.engine, rid)
        assert [(a["outcome"], a["http_status"]) for a in attempts] == [
            ("retry_scheduled", None),
            ("retry_scheduled", None),
            ("delivered", 200),
        ]
        assert "reset" in attempts[0]["error"].lower() or "aborted" in attempts[0]["error"].lower()


# --- 7. poison: a job without a delivery row ----------------------------------------------------


def test_poison_job_without_row_fails_clearly_and_worker_keeps_working(
    make_runtime, write_config, start_worker, receiver
):
    runtime = make_runtime(endpoints=[endpoint(receiver)])
    worker = start_worker(write_config(endpoints=[endpoint(receiver)]))
    poison = str(uuid.uuid4())
    assert queue.ensure_queued(runtime.queue, poison)
    registry = runtime.queue.failed_job_registry
    wait_for(lambda: poison in registry.get_job_ids(), timeout=20, message="the poison job to fail")
    result = Job.fetch(poison, connection=runtime.redis).latest_result()
    assert "PoisonJob" in result.exc_string
    assert f"no delivery row for request_id {poison}" in result.exc_string

    (request_id,) = dispatch(EVENT, example())
    rows = wait_final(runtime, [request_id], timeout=20)
    time.sleep(1)
    check_and_record(
        "poison job (no delivery row)", runtime, receiver, [request_id], note="+1 poison job failed in RQ"
    )
    assert rows[0]["status"] == DeliveryStatus.DELIVERED
    assert worker.process.poll() is None
    # failed once, not retried: not queued, not scheduled, still in the failed registry
    assert poison not in runtime.queue.get_job_ids()
    assert poison not in runtime.queue.scheduled_job_registry.get_job_ids()
    assert poison in registry.get_job_ids()
    assert receiver.request_ids() == {request_id}
    assert store.get_delivery(runtime.engine, poison) is None


def test_dispatch_after_the_database_dropped_its_connections(make_runtime, pg_proxy, receiver):
    """No pre-ping: a pooled connection the server dropped is invalidated and the write retried once."""
    direct_url, proxy = pg_proxy
    runtime = make_runtime(database_url=proxied_url(direct_url, proxy), endpoints=[endpoint(receiver)])
    (first,) = dispatch("order_changed", example())  # the pool now holds a connection
    proxy.refuse()
    proxy.restore()  # every open connection was cut; new ones are accepted again
    (second,) = dispatch("order_changed", example())
    assert store.get_delivery(runtime.engine, first)["status"] == "queued"
    assert store.get_delivery(runtime.engine, second)["status"] == "queued"
