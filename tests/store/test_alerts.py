"""Alert occurrences and their sends (dispatcher.store.alerts) on SQLite and PostgreSQL: an
occurrence raised once, its send rows inserted once, a due send claimed by one sender, retried,
sent or failed; the episodes; and the reads alerts are derived from (deliveries that ran out of
attempts, the oldest waiting delivery, the newest worker heartbeat)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from dispatcher.store import alerts, leases
from dispatcher.store.schema import ALERT_SENDS, ATTEMPTS, DELIVERIES, ENDPOINT_STATE

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
HOLD = timedelta(seconds=120)


def add_delivery(
    engine,
    request_id: str,
    status: str,
    updated_at: datetime,
    *,
    endpoint: str = "pharmacy",
    reason: str | None = None,
    next_attempt_at: datetime | None = None,
    created_at: datetime | None = None,
) -> None:
    with engine.begin() as conn:
        conn.execute(
            DELIVERIES.insert().values(
                request_id=request_id,
                event="order_changed",
                endpoint=endpoint,
                url="http://127.0.0.1:9/hook",
                status=status,
                attempts=1,
                attempt_limit=1,
                reason=reason,
                next_attempt_at=next_attempt_at,
                created_at=created_at or updated_at,
                updated_at=updated_at,
            )
        )
        if status == "failed" and reason not in ("endpoint_disabled", "endpoint_removed"):
            add_failed_attempt(conn, request_id, endpoint, updated_at)


def add_failed_attempt(conn, request_id: str, endpoint: str, at: datetime) -> int:
    """The attempt row of a delivery that ran out of attempts, written at ``at``; its id."""
    return conn.execute(
        ATTEMPTS.insert().values(
            request_id=request_id, event="order_changed", endpoint=endpoint, url="http://127.0.0.1:9/hook",
            attempt=1, retry=False, outcome="failed", created_at=at,
        )
    ).inserted_primary_key[0]  # fmt: skip


def sends(engine) -> list[tuple]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(ALERT_SENDS).order_by(ALERT_SENDS.c.alert_id, ALERT_SENDS.c.channel))
        return [(r.alert_id, r.channel, r.status, r.attempts, r.next_at, r.answer, r.sent_at) for r in rows]


def test_an_occurrence_is_raised_once_with_one_send_row_per_channel(engine) -> None:
    first = alerts.raise_routed(
        engine,
        "delivery.failed",
        "delivery.failed:pharmacy:after:0",
        ["mail", "oncall", "mail"],
        detail="3 deliveries ran out of attempts",
        endpoint="pharmacy",
        count=3,
        request_ids=[f"r{i}" for i in range(25)],
        at=NOW,
    )
    again = alerts.raise_routed(
        engine, "delivery.failed", "delivery.failed:pharmacy:after:0", ["other"], detail="again", at=NOW
    )
    assert first is not None and again is None
    assert (
        alerts.raise_alert(engine, "delivery.failed", "delivery.failed:pharmacy:after:0", detail="x") is False
    )
    assert sends(engine) == [
        (first, "mail", "pending", 0, NOW, None, None),
        (first, "oncall", "pending", 0, NOW, None, None),
    ]
    ((alert, listed),) = alerts.list_alerts(engine)
    assert (alert.kind, alert.endpoint, alert.count, alert.occurred_at) == (
        "delivery.failed",
        "pharmacy",
        3,
        NOW,
    )
    assert alert.request_ids == tuple(f"r{i}" for i in range(20))  # at most 20 ids kept
    assert [s.channel for s in listed] == ["mail", "oncall"]


def test_send_rows_are_added_once_per_alert_and_channel(engine) -> None:
    assert alerts.raise_alert(
        engine, "endpoint.disabled", "endpoint.disabled:a:1", detail="a off", endpoint="a"
    )
    (alert,) = alerts.unrouted(engine, NOW - timedelta(days=3650), ["endpoint.disabled"])
    assert alerts.add_sends(engine, alert.id, ["oncall", "mail"], NOW) == 2
    assert alerts.add_sends(engine, alert.id, ["oncall", "mail", "pager"], NOW) == 1
    assert alerts.add_sends(engine, alert.id, [], NOW) == 0
    assert [s[1] for s in sends(engine)] == ["mail", "oncall", "pager"]
    assert alerts.unrouted(engine, NOW - timedelta(days=3650), ["endpoint.disabled"]) == []


def test_unrouted_lists_only_the_kinds_asked_since_the_time_given(engine) -> None:
    alerts.raise_alert(engine, "endpoint.disabled", "old", detail="old", at=NOW - timedelta(hours=2))
    alerts.raise_alert(engine, "endpoint.disabled", "new", detail="new", at=NOW)
    alerts.raise_alert(engine, "endpoint.recovered", "other kind", detail="other", at=NOW)
    found = alerts.unrouted(engine, NOW - timedelta(hours=1), ["endpoint.disabled"])
    assert [a.occurrence for a in found] == ["new"]


def test_a_due_send_is_claimed_by_one_sender_and_held(engine) -> None:
    alert_id = alerts.raise_routed(engine, "test", "t1", ["oncall"], detail="t", at=NOW)
    assert alert_id is not None
    ((alert, send),) = alerts.due_sends(engine, NOW)
    assert alerts.due_sends(engine, NOW - timedelta(seconds=1)) == []  # not due before next_at
    assert alerts.claim_send(engine, send, NOW, HOLD) is True
    assert alerts.claim_send(engine, send, NOW, HOLD) is False  # the same try, already taken
    assert alerts.due_sends(engine, NOW + HOLD - timedelta(seconds=1)) == []
    ((_, held),) = alerts.due_sends(engine, NOW + HOLD)  # a sender that died: due again
    assert (held.attempts, held.next_at) == (1, NOW + HOLD)


def test_a_send_is_retried_then_sent_and_a_sent_row_stays_sent(engine) -> None:
    alert_id = alerts.raise_routed(engine, "test", "t1", ["oncall"], detail="t", at=NOW)
    ((_, send),) = alerts.due_sends(engine, NOW)
    alerts.claim_send(engine, send, NOW, HOLD)
    assert alerts.mark_retry(engine, alert_id, "oncall", "HTTP 503 from h:443", NOW + timedelta(seconds=30))
    assert sends(engine) == [
        (alert_id, "oncall", "pending", 1, NOW + timedelta(seconds=30), "HTTP 503 from h:443", None)
    ]
    ((_, send),) = alerts.due_sends(engine, NOW + timedelta(seconds=30))
    assert alerts.claim_send(engine, send, NOW + timedelta(seconds=30), HOLD)
    assert alerts.mark_sent(engine, alert_id, "oncall", "HTTP 200 OK", NOW + timedelta(seconds=31))
    assert alerts.mark_failed(engine, alert_id, "oncall", "late") is False
    assert alerts.mark_retry(engine, alert_id, "oncall", "late", NOW) is False
    (row,) = sends(engine)
    assert row[2:] == (
        "sent",
        2,
        NOW + timedelta(seconds=30) + HOLD,
        "HTTP 200 OK",
        NOW + timedelta(seconds=31),
    )
    assert alerts.due_sends(engine, NOW + timedelta(days=1)) == []


def test_a_failed_send_is_never_due_again(engine) -> None:
    alert_id = alerts.raise_routed(engine, "test", "t1", ["mail"], detail="t", at=NOW)
    assert alerts.mark_failed(engine, alert_id, "mail", "login refused (535)")
    assert alerts.due_sends(engine, NOW + timedelta(days=1)) == []
    found = alerts.alert_with_sends(engine, alert_id)
    assert found is not None and [(s.status, s.answer) for s in found[1]] == [
        ("failed", "login refused (535)")
    ]
    assert alerts.alert_with_sends(engine, alert_id + 1000) is None


def test_list_is_newest_first_and_limited(engine) -> None:
    for i in range(5):
        alerts.raise_alert(engine, "test", f"t{i}", detail=f"t{i}", at=NOW + timedelta(minutes=i))
    listed = alerts.list_alerts(engine, limit=3)
    assert [a.occurrence for a, _ in listed] == ["t4", "t3", "t2"]
    assert all(s == [] for _, s in listed)


def test_episodes_open_by_prefix_and_resolve_once(engine) -> None:
    kind = "queue.backlog"
    alerts.raise_alert(engine, kind, "queue.backlog:600s:after:0", detail="a", at=NOW)
    alerts.raise_alert(engine, kind, "queue.backlog:3600s:after:0", detail="b", at=NOW)
    short = alerts.open_alert(engine, kind, "queue.backlog:600s:")
    assert short is not None and short.occurrence == "queue.backlog:600s:after:0"
    assert alerts.open_alert(engine, kind, "queue.backlog:60s:") is None
    assert alerts.resolve(engine, short.id, NOW + timedelta(minutes=5)) is True
    assert alerts.resolve(engine, short.id, NOW + timedelta(minutes=6)) is False
    assert alerts.open_alert(engine, kind, "queue.backlog:600s:") is None
    newest = alerts.newest_alert(engine, kind, "queue.backlog:600s:")
    assert newest is not None and newest.resolved_at == NOW + timedelta(minutes=5)
    # the prefix is literal: '_' and '%' are no wildcards
    alerts.raise_alert(engine, "workers.none_alive", "workersXnone_alive:x", detail="c")
    assert alerts.newest_alert(engine, "workers.none_alive", "workers.none%") is None
    assert alerts.newest_alert(engine, "workers.none_alive", endpoint="nobody") is None


def test_oldest_waiting_is_a_queued_delivery_or_a_due_retry_but_not_a_paused_endpoints(engine) -> None:
    assert alerts.oldest_waiting(engine, NOW) is None
    add_delivery(engine, "queued", "queued", NOW - timedelta(minutes=5))
    add_delivery(engine, "flying", "in_flight", NOW - timedelta(hours=3))
    add_delivery(
        engine, "later", "retrying", NOW - timedelta(hours=3), next_attempt_at=NOW + timedelta(minutes=1)
    )
    assert alerts.oldest_waiting(engine, NOW) == NOW - timedelta(minutes=5)
    add_delivery(
        engine, "overdue", "retrying", NOW - timedelta(hours=2), next_attempt_at=NOW - timedelta(minutes=20)
    )
    assert alerts.oldest_waiting(engine, NOW) == NOW - timedelta(minutes=20)
    add_delivery(engine, "paused", "queued", NOW - timedelta(hours=5), endpoint="resting")
    with engine.begin() as conn:
        conn.execute(
            ENDPOINT_STATE.insert().values(name="resting", disabled=False, paused=True, updated_at=NOW)
        )
    assert alerts.oldest_waiting(engine, NOW) == NOW - timedelta(minutes=20)
    # a delivery given back by an open breaker or a limit is as old as its dispatch, not its last hold
    add_delivery(engine, "held", "queued", NOW - timedelta(seconds=5), created_at=NOW - timedelta(hours=4))
    assert alerts.oldest_waiting(engine, NOW) == NOW - timedelta(hours=4)


def test_newest_heartbeat_is_the_latest_lease_renewal(engine) -> None:
    assert alerts.newest_heartbeat(engine) is None
    leases.renew(engine, "w1", NOW - timedelta(minutes=3), timedelta(seconds=30))
    leases.renew(engine, "w2", NOW - timedelta(minutes=1), timedelta(seconds=30))
    assert alerts.newest_heartbeat(engine) == NOW - timedelta(minutes=1)
    leases.release(engine, "w2")
    assert alerts.newest_heartbeat(engine) == NOW - timedelta(minutes=3)
