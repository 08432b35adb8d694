"""`python worker.py --concurrency N`: a supervisor, N real workers, replacement and clean stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import redis
from rq import Worker

from dispatcher import dispatch_many, store
from dispatcher.contract import catalogue as events
from tests.conftest import REDIS_URL, ROOT, wait_for


def workers_named(prefix: str) -> list[Worker]:
    connection = redis.Redis.from_url(REDIS_URL)
    return [w for w in Worker.all(connection=connection) if w.name.startswith(prefix)]


def test_concurrency_runs_n_workers_replaces_a_dead_one_and_stops_cleanly(
    make_runtime, write_config, receiver, tmp_path
):
    ep = {"name": "partner-a", "url": receiver.url, "key": "k-sup-1"}
    runtime = make_runtime(endpoints=[ep])
    config = write_config(endpoints=[ep])
    env = {**os.environ, "DISPATCHER_CONFIG": str(config)}
    env.pop("DISPATCHER_REDIS_URL", None)
    env.pop("DISPATCHER_DATABASE_URL", None)
    log = open(tmp_path / "supervisor.out", "wb")
    supervisor = subprocess.Popen(
        [sys.executable, "worker.py", "--concurrency", "3", "--threads", "2", "--name", "sup"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: len(workers_named("sup.")) == 3, timeout=30, message="three workers registered")
        for w in workers_named("sup."):  # each child was given the supervisor's --threads
            argv = open(f"/proc/{w.pid}/cmdline", "rb").read().split(b"\0")
            assert argv[argv.index(b"--threads") + 1] == b"2"
        request_ids = dispatch_many("order_changed", [events.CATALOGUE["order_changed"].example()] * 30)
        wait_for(
            lambda: all(store.get_delivery(runtime.engine, r)["status"] == "delivered" for r in request_ids),
            timeout=60,
            message="deliveries",
        )
        assert {len(receiver.for_request(r)) for r in request_ids} == {1}

        victim = workers_named("sup.")[0]
        os.kill(victim.pid, signal.SIGKILL)
        wait_for(
            lambda: (
                len([w for w in workers_named("sup.") if w.name != victim.name and w.pid != victim.pid]) >= 3
            ),
            timeout=60,
            message="the killed worker to be replaced by a new one",
        )
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=60) == 0
        # A child stopped in the instant between RQ registering it and installing its signal
        # handlers dies without deregistering; RQ drops such a record when its TTL (60 s) ends.
        wait_for(
            lambda: not [w for w in workers_named("sup.") if w.name != victim.name],
            timeout=75,
            message="workers gone",
        )
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
        log.close()


def test_workers_on_one_redis_and_one_postgresql_share_the_work_without_duplicates(
    make_runtime, write_config, start_worker, receiver, pg_url
):
    """Several hosts' workers, as separate processes with their own names, on PostgreSQL."""
    from tests.servers import Answer

    receiver.default = Answer(delay=0.05)
    ep = {"name": "partner-a", "url": receiver.url, "key": "k-hosts-1"}
    runtime = make_runtime(endpoints=[ep], database_url=pg_url)
    # Two threads each (four claims in hand at most), so 60 deliveries are more than one takes.
    config = write_config(endpoints=[ep], database_url=pg_url, worker={"threads": 2})
    for host in ("host-a", "host-b", "host-c"):
        start_worker(config, name=f"{host}.1")
    request_ids = dispatch_many("order_changed", [events.CATALOGUE["order_changed"].example()] * 60)
    wait_for(
        lambda: all(store.get_delivery(runtime.engine, r)["status"] == "delivered" for r in request_ids),
        timeout=90,
        message="every delivery",
    )
    assert [len(receiver.for_request(r)) for r in request_ids] == [1] * 60
    assert receiver.overlaps == []
    for request_id in request_ids:
        assert [a["attempt"] for a in store.list_attempts(runtime.engine, request_id)] == [1]
    assert {w.name for w in workers_named("host-")} == {"host-a.1", "host-b.1", "host-c.1"}
    # Who sent what: each attempt's process-log line names its worker (batches included).
    lines = Path(runtime.settings.process_log).read_text().splitlines()
    sent = Counter(m.group(1) for line in lines if (m := re.search(r" attempt .* worker=(host-\S+)", line)))
    assert sum(sent.values()) == 60
    assert set(sent) == {"host-a.1", "host-b.1", "host-c.1"}, sent  # each took a share
