"""The worker's threads: the heartbeat is never held up by housekeeping."""

from __future__ import annotations

import threading
import time

from dispatcher.worker import housekeeping as housekeeping_module
from dispatcher.worker import reconcile
from dispatcher.worker.liveness import alive_key


def test_the_heartbeat_keeps_beating_while_reconcile_is_stuck(
    make_runtime, redis_client, monkeypatch
) -> None:
    runtime = make_runtime(endpoints=[])
    runtime.worker_name = "hb-worker"
    monkeypatch.setattr(housekeeping_module, "HEARTBEAT_SECONDS", 0.1)
    inside, release = threading.Event(), threading.Event()

    def stuck_reconcile(*_args):
        inside.set()
        release.wait(10)  # a long pass over a big backlog, or a hung database connection

    monkeypatch.setattr(reconcile, "reconcile_if_due", stuck_reconcile)
    housekeeping = housekeeping_module.Housekeeping(runtime, reconcile_every=1)
    heartbeat = housekeeping_module.Heartbeat(runtime)
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
