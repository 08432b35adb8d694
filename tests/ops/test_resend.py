"""The retry doors (:class:`~dispatcher.ops.resend.Retry`, :class:`~dispatcher.ops.resend.RetryFailed`)
against the real Redis, on SQLite and PostgreSQL: their plans write nothing, carrying one out writes
one audit row; and the seeded rows the ``retry``, ``replay`` and ``prune`` command tests
(tests/cli/test_resend.py, tests/cli/test_prune.py) share."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from dispatcher import store
from dispatcher.contract import catalogue as events
from dispatcher.contract import wrapper as payload
from dispatcher.contract.validation import validate
from dispatcher.ops import audit, resend
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
    assert door.preview(runtime, Actor.cli(), plan).as_dict()["request_ids"] == failed
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
