"""The circuit breaker and a paused endpoint through two real `python worker.py` processes, the
real Redis, SQLite and a scripted partner on 127.0.0.1: a partner that flaps (503 for a while,
then 200) opens the breaker, no attempt is used while it is open but the one probe, and it
closes; a paused endpoint's deliveries wait with no attempt used and, woken after the resume,
are delivered in dispatch order."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from dispatcher import dispatch, queue, store
from dispatcher.contract import catalogue as events
from dispatcher.policy import breaker as policy
from dispatcher.sending import breaker
from dispatcher.store.endpoints import set_endpoint_paused
from dispatcher.store.schema import ALERTS, ATTEMPTS, DELIVERIES
from dispatcher.vocabulary import FINAL_STATUSES, AlertKind, BreakerState, DeliveryStatus, JobState
from tests.conftest import wait_for
from tests.servers import Answer

ORDER = events.CATALOGUE["order_changed"].example()
MESSAGE = events.CATALOGUE["message_created"].example()
BREAKER = {"failure_ratio": 0.7, "min_attempts": 5, "window": "5s", "open_for": "2s", "max_open_for": "4s"}
DELIVERY = {"max_attempts": 40, "backoff": [1], "breaker": BREAKER}


def counts(runtime) -> tuple[int, int]:
    """Attempt rows, and how many deliveries are in flight (read first:
    when none is, no row can be added until a delivery is let through again)."""
    with runtime.engine.connect() as conn:
        flying = conn.execute(
            sa.select(sa.func.count()).where(DELIVERIES.c.status == DeliveryStatus.IN_FLIGHT)
        ).scalar_one()
        rows = conn.execute(sa.select(sa.func.count()).select_from(ATTEMPTS)).scalar_one()
    return int(rows), int(flying)


def quiet_open_period(runtime, client, receiver):
    """While the breaker is open and before its probe time, with nothing in flight: the
    breaker as read, and the attempt rows then. None until such a moment is seen."""
    stored, now = breaker.read(client, "partner")
    if policy.state_at(stored, now) is not BreakerState.OPEN:
        return None
    rows, flying = counts(runtime)
    seen = len(receiver.received)
    again, now = breaker.read(client, "partner")
    if (
        flying
        or again.generation != stored.generation
        or policy.state_at(again, now) is not BreakerState.OPEN
    ):
        return None
    return stored, rows, seen


def alert_kinds(runtime) -> list[str]:
    with runtime.engine.connect() as conn:
        return list(conn.execute(sa.select(ALERTS.c.kind).order_by(ALERTS.c.id)).scalars())


def all_final(runtime, request_ids, timeout: float = 90) -> list[dict]:
    def done():
        rows = [store.get_delivery(runtime.engine, rid) for rid in request_ids]
        return rows if all(r["status"] in FINAL_STATUSES for r in rows) else None

    return wait_for(done, timeout=timeout, message=f"{len(request_ids)} deliveries to finish")


def test_a_flapping_partner_opens_the_breaker_uses_no_attempts_while_open_and_closes(
    make_runtime, write_config, start_worker, receiver, redis_client
) -> None:
    endpoints = [{"name": "partner", "url": receiver.url}]
    receiver.default = Answer(status=503)
    runtime = make_runtime(endpoints=endpoints, delivery=DELIVERY)
    config = write_config(endpoints=endpoints, delivery=DELIVERY)
    start_worker(config)
    start_worker(config)
    ids = [rid for _ in range(12) for rid in dispatch("order_changed", ORDER)]

    # it opens, and an open period with nothing in flight is seen
    stored, rows, seen = wait_for(
        lambda: quiet_open_period(runtime, redis_client, receiver), timeout=30, message="open"
    )
    # until the breaker changes again, only its probe reaches the partner: one attempt
    wait_for(
        lambda: breaker.read(redis_client, "partner")[0].generation != stored.generation,
        timeout=30,
        message="the probe's answer",
    )
    reopened, _ = breaker.read(redis_client, "partner")
    assert reopened.open and reopened.since == stored.since  # the probe failed: open again, same opening
    assert reopened.open_seconds == 4  # twice open_for, at most max_open_for
    assert counts(runtime)[0] == rows + 1
    assert len(receiver.received) == seen + 1

    receiver.default = Answer(status=200)  # the partner is back
    rows_final = all_final(runtime, ids)
    assert {r["status"] for r in rows_final} == {DeliveryStatus.DELIVERED}
    assert breaker.states(redis_client, ["partner"])["partner"].state is BreakerState.CLOSED
    assert sum(r["attempts"] for r in rows_final) == counts(runtime)[0]  # no attempt used while held
    assert {r.request_id for r in receiver.received if r.answered == 200} == set(ids)
    # one opening (the failed probes reopened the same one), one recovery
    assert alert_kinds(runtime) == [AlertKind.ENDPOINT_BREAKER_OPENED, AlertKind.ENDPOINT_RECOVERED]


def test_a_paused_endpoints_deliveries_wait_without_attempts_and_resume_in_dispatch_order(
    make_runtime, write_config, start_worker, receiver
) -> None:
    endpoints = [
        {"name": "pharmacy", "url": receiver.url, "ordered": True},
        {"name": "lab", "url": receiver.url},
    ]
    runtime = make_runtime(endpoints=endpoints, delivery=DELIVERY)
    for name in ("pharmacy", "lab"):
        set_endpoint_paused(runtime.engine, name, True)
    config = write_config(endpoints=endpoints, delivery=DELIVERY)
    start_worker(config)
    start_worker(config)
    ids = [
        rid
        for n in range(5)
        for rid in dispatch("message_created", {**MESSAGE, "message": f"#{n}"}, endpoints=["pharmacy", "lab"])
    ]
    pharmacy = [rid for rid in ids if store.get_delivery(runtime.engine, rid)["endpoint"] == "pharmacy"]
    lab = [rid for rid in ids if rid not in pharmacy]

    def all_waiting() -> bool:
        states = queue.job_states(runtime.queue, ids)
        return all(state == JobState.SCHEDULED for state, _worker in states)

    wait_for(all_waiting, timeout=30, message="every job scheduled for later")
    for rid in ids:
        row = store.get_delivery(runtime.engine, rid)
        assert row["status"] == DeliveryStatus.QUEUED and row["attempts"] == 0, row
    assert receiver.received == [] and counts(runtime)[0] == 0
    log = process_log(runtime)
    for rid in lab + pharmacy[:1]:  # the lab's each; the pharmacy's head (the rest wait behind it)
        assert f"held back: endpoint paused request_id={rid}" in log

    for name in ("pharmacy", "lab"):
        set_endpoint_paused(runtime.engine, name, False)
    queue.wake(runtime.queue, ids)  # what the resume does: in dispatch order
    rows = all_final(runtime, ids, timeout=60)
    assert {r["status"] for r in rows} == {DeliveryStatus.DELIVERED}
    assert {r["attempts"] for r in rows} == {1}
    got = [r.request_id for r in receiver.received if r.request_id in pharmacy]
    assert got == pharmacy  # in dispatch order, once each


def process_log(runtime) -> str:
    folder = Path(runtime.settings.process_log).parent
    return "".join(p.read_text(errors="replace") for p in folder.glob("*.log") if not p.is_symlink())
