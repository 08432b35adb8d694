"""The worker's threads: the heartbeat is never held up by housekeeping."""

from __future__ import annotations

import threading
import time

from dispatcher import reconcile
from dispatcher import worker as worker_module
from dispatcher.reconcile import alive_key


def test_the_heartbeat_keeps_beating_while_reconcile_is_stuck(
    make_runtime, redis_client, monkeypatch
) -> None:
    runtime = make_runtime(endpoints=[])
    runtime.worker_name = "hb-worker"
    monkeypatch.setattr(worker_module, "HEARTBEAT_SECONDS", 0.1)
    inside, release = threading.Event(), threading.Event()

    def stuck_reconcile(*_args):
        inside.set()
        release.wait(10)  # a long pass over a big backlog, or a hung database connection

    monkeypatch.setattr(reconcile, "reconcile_if_due", stuck_reconcile)
    housekeeping = worker_module.Housekeeping(runtime, reconcile_every=1)
    heartbeat = worker_module.Heartbeat(runtime)
    housekeeping.start()
    heartbeat.start()
    try:
        assert inside.wait(5)
        redis_client.delete(alive_key("hb-worker"))
        deadline = time.monotonic() + 3
        while not redis_client.exists(alive_key("hb-worker")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert redis_client.exists(alive_key("hb-worker")), "no heartbeat while reconcile was stuck"
    finally:
        release.set()
        heartbeat.stop()
        housekeeping.stop()


def test_a_sigterm_before_rq_listens_stops_the_loop_before_its_first_job(make_runtime) -> None:
    """RQ registers the worker, forks its scheduler, and only then installs its signal handlers;
    a SIGTERM in between must not kill the worker with its registration left behind."""
    runtime = make_runtime(endpoints=[])
    worker = worker_module.WebhookWorker([runtime.queue], connection=runtime.redis, name="early-stop")
    assert worker._stop_requested is False
    worker_module._stop_before_rq_listens(worker, runtime)(15, None)
    assert worker._stop_requested is True and runtime.stop_requested is True
    assert worker.work(burst=True) is False  # the loop stops before dequeuing anything
    assert "early-stop" not in {w.name for w in worker_module.SimpleWorker.all(connection=runtime.redis)}
