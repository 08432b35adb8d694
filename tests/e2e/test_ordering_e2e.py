"""Per-key ordering through real `python worker.py` processes, the real Redis, SQLite and a
scripted receiver on 127.0.0.1: a head waiting for its retry holds only its own key, and per
key the partner's first successful copies arrive in dispatch order with several workers racing,
reconcile running and one worker killed with SIGKILL in the middle of a batch."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading

import pytest
import sqlalchemy as sa

from dispatcher import dispatch, store
from dispatcher.contract import catalogue as events
from dispatcher.vocabulary import FINAL_STATUSES
from tests.conftest import ROOT, wait_for
from tests.servers import Answer

MESSAGE = events.CATALOGUE["message_created"].example()


def ordered_endpoint(receiver, **extra) -> dict:
    return {"name": "pharmacy", "url": receiver.url, "key": "pharmacy-key-1", "ordered": True, **extra}


def dispatched(encounter: str, n: int) -> str:
    (request_id,) = dispatch(
        "message_created", {**MESSAGE, "encounter_id": encounter, "message": f"{encounter} #{n}"}
    )
    return request_id


def all_final(runtime, request_ids, timeout: float) -> None:
    def done() -> bool:
        return all(store.get_delivery(runtime.engine, rid)["status"] in FINAL_STATUSES for rid in request_ids)

    wait_for(done, timeout=timeout, message=f"{len(request_ids)} deliveries to finish")


def first_success(receiver, request_id: str) -> float:
    return min(r.at for r in receiver.for_request(request_id) if r.answered == 200)


def first_seen(receiver, request_id: str) -> float:
    return min(r.at for r in receiver.for_request(request_id))


def test_a_head_retrying_holds_only_its_own_key(make_runtime, write_config, start_worker, receiver) -> None:
    endpoints = [ordered_endpoint(receiver)]
    runtime = make_runtime(endpoints=endpoints)
    a1 = dispatched("E-A", 1)
    receiver.scripts[a1] = [Answer(503), Answer(503)]  # then 200: two retries, a second or more each
    a2, b1, a3, b2 = dispatched("E-A", 2), dispatched("E-B", 1), dispatched("E-A", 3), dispatched("E-B", 2)
    start_worker(write_config(endpoints=endpoints))
    all_final(runtime, [a1, a2, a3, b1, b2], timeout=60)

    assert {store.get_delivery(runtime.engine, rid)["status"] for rid in (a1, a2, a3, b1, b2)} == {
        "delivered"
    }
    assert [r.answered for r in receiver.for_request(a1)] == [503, 503, 200]
    assert first_success(receiver, b2) < first_success(receiver, a1)  # E-B never waited for E-A
    assert first_success(receiver, b1) < first_success(receiver, b2)
    assert first_success(receiver, a1) < first_seen(receiver, a2)  # not even tried before a1 was final
    assert first_success(receiver, a2) < first_seen(receiver, a3)
    assert len(receiver.for_request(a2)) == len(receiver.for_request(a3)) == 1
    assert receiver.overlaps == []


def reconcile_loop(stop: threading.Event, config) -> None:
    env = {"DISPATCHER_CONFIG": str(config), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    while not stop.wait(2):
        subprocess.run(
            [sys.executable, "-m", "dispatcher", "reconcile"], cwd=ROOT, env=env, capture_output=True
        )


@pytest.mark.slow
def holds_claim(runtime, worker: str) -> bool:
    """Whether ``worker`` holds a delivery in flight right now."""
    with runtime.engine.connect() as conn:
        held = conn.execute(
            sa.text("select 1 from webhook_deliveries where status = 'in_flight' and worker = :w limit 1"),
            {"w": worker},
        ).first()
    return held is not None


def test_per_key_order_holds_with_workers_racing_reconcile_and_a_worker_killed(
    make_runtime, write_config, start_worker, receiver
) -> None:
    endpoints = [ordered_endpoint(receiver)]
    runtime = make_runtime(endpoints=endpoints)
    receiver.default = Answer(delay=0.15)
    rng = random.Random(7)
    keys = [f"E-{k}" for k in range(12)]
    order: dict[str, list[str]] = {key: [] for key in keys}
    for n in range(8):
        for key in rng.sample(keys, len(keys)):
            request_id = dispatched(key, n)
            order[key].append(request_id)
            if rng.random() < 0.15:
                receiver.scripts[request_id] = [Answer(503, delay=0.05)]
    config = write_config(endpoints=endpoints, worker={"threads": 4})
    workers = [start_worker(config, name=f"racer-{i}") for i in range(3)]
    stop = threading.Event()
    loop = threading.Thread(target=reconcile_loop, args=(stop, config), daemon=True)
    loop.start()
    try:
        wait_for(
            lambda: len(receiver.request_ids()) >= 30, timeout=60, message="a third of the deliveries sent"
        )
        wait_for(  # on a loaded machine it may have started late: kill it while it holds a claim
            lambda: holds_claim(runtime, "racer-0"),
            timeout=60,
            interval=0.01,
            message="racer-0 to hold a claim",
        )
        workers[0].stop(signal.SIGKILL)  # mid-batch: its claims are recovered once its liveness key expires
        all_ids = [rid for ids in order.values() for rid in ids]
        all_final(runtime, all_ids, timeout=150)
    finally:
        stop.set()
        loop.join(timeout=30)

    assert {store.get_delivery(runtime.engine, rid)["status"] for rid in all_ids} == {"delivered"}
    outcomes = [a["outcome"] for rid in all_ids for a in store.list_attempts(runtime.engine, rid)]
    assert "interrupted" in outcomes  # the killed worker held claims, and their keys moved on
    for key, ids in order.items():
        successes = [first_success(receiver, rid) for rid in ids]
        assert successes == sorted(successes), f"{key}: first successful copies out of order"
        for earlier, later in zip(ids, ids[1:], strict=False):
            assert first_success(receiver, earlier) < first_seen(receiver, later), (
                f"{key}: {later} sent too soon"
            )
