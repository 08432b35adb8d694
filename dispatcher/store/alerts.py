"""Alert occurrences and their sending (``webhook_alerts``, ``webhook_alert_sends``).

An occurrence is raised once: its ``occurrence`` text is unique (e.g.
``endpoint.breaker_opened:pharmacy:2026-12-07T20:01:02Z``), so every process that sees the same
thing may raise it and one row results. What each channel was sent, and answered, is one row per
alert and channel, inserted once (:func:`add_sends`): ``pending`` until due (``next_at``), taken
by one sender at a time (:func:`claim_send` counts the try and holds the row), then ``sent``,
``pending`` again later (:func:`mark_retry`) or ``failed``. A condition that lasts (a backlog, no
worker alive) is an episode: one alert, open until :func:`resolve`.

The reads the alerts are derived from live here too: deliveries that ran out of attempts
(:func:`failing_endpoints`, :func:`failed_attempts`: failed attempt rows, by their ids), the oldest delivery waiting (:func:`oldest_waiting`) and the newest
worker heartbeat (:func:`newest_heartbeat`). No PHI: names, counts, request ids and categories.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from ..times import utcnow
from ..vocabulary import DeliveryStatus
from .alert_failures import MAX_REQUEST_IDS
from .engine import reading
from .schema import ALERT_SENDS, ALERTS, DELIVERIES, ENDPOINT_STATE, WORKER_LEASES

"""Most request ids an alert lists (its count says how many there were)."""
PENDING, SENT, FAILED = "pending", "sent", "failed"
"""A send row's statuses."""


@dataclass(frozen=True)
class Alert:
    """One occurrence, as stored."""

    id: int
    occurrence: str
    kind: str
    endpoint: str | None
    occurred_at: datetime
    count: int | None
    request_ids: tuple[str, ...]
    detail: str
    resolved_at: datetime | None
    cursor: int | None = None
    """``delivery.failed``: the id of the last failed attempt row it counted."""

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> Alert:
        ids = tuple(json.loads(row["request_ids"])) if row["request_ids"] else ()
        return cls(
            row["id"],
            row["occurrence"],
            row["kind"],
            row["endpoint"],
            row["occurred_at"],
            row["count"],
            ids,
            row["detail"],
            row["resolved_at"],
            row["cursor"],
        )


@dataclass(frozen=True)
class AlertSend:
    """One alert's sending to one channel."""

    alert_id: int
    channel: str
    status: str
    attempts: int
    next_at: datetime
    answer: str | None
    sent_at: datetime | None

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> AlertSend:
        return cls(*(row[c.name] for c in ALERT_SENDS.columns))


def raise_alert(
    db: Engine | Connection,
    kind: str,
    occurrence: str,
    *,
    detail: str,
    endpoint: str | None = None,
    count: int | None = None,
    request_ids: Sequence[str] = (),
    at: datetime | None = None,
) -> bool:
    """Records an occurrence unless it is already recorded; True when this call recorded it.
    ``db`` may be a connection inside the caller's transaction (the alert then commits with
    what caused it)."""
    row = _row(kind, occurrence, detail, endpoint, count, request_ids, at)
    if isinstance(db, Connection):
        return _insert_once(db, row) is not None
    with db.begin() as conn:
        return _insert_once(conn, row) is not None


def raise_routed(
    engine: Engine,
    kind: str,
    occurrence: str,
    channels: Sequence[str],
    *,
    detail: str,
    endpoint: str | None = None,
    count: int | None = None,
    request_ids: Sequence[str] = (),
    at: datetime | None = None,
    cursor: int | None = None,
) -> int | None:
    """Records an occurrence and its send rows (one per channel, due at once) in one transaction;
    its id, or None when the occurrence was already recorded (nothing written)."""
    row = {**_row(kind, occurrence, detail, endpoint, count, request_ids, at), "cursor": cursor}
    with engine.begin() as conn:
        alert_id = _insert_once(conn, row)
        if alert_id is not None:
            add_sends(conn, alert_id, channels, row["occurred_at"])
        return alert_id


def _row(
    kind: str,
    occurrence: str,
    detail: str,
    endpoint: str | None,
    count: int | None,
    request_ids: Sequence[str],
    at: datetime | None,
) -> dict[str, Any]:
    return {
        "occurrence": occurrence[:255],
        "kind": kind,
        "endpoint": endpoint,
        "occurred_at": at or utcnow(),
        "count": count,
        "request_ids": json.dumps(list(request_ids[:MAX_REQUEST_IDS])) if request_ids else None,
        "detail": detail,
    }


def _insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def _insert_once(conn: Connection, row: Mapping[str, object]) -> int | None:
    """Inserts the row unless its occurrence is there (a concurrent raise loses on the unique
    key); the new row's id, or None."""
    statement = _insert(conn)(ALERTS).values(**row).on_conflict_do_nothing().returning(ALERTS.c.id)
    found = conn.execute(statement).first()
    return None if found is None else int(found[0])


def add_sends(db: Engine | Connection, alert_id: int, channels: Iterable[str], now: datetime) -> int:
    """A pending send row per channel, due at ``now``, unless the alert has one for it already;
    how many were added."""
    names = list(dict.fromkeys(channels))
    if not names:
        return 0
    if isinstance(db, Engine):
        with db.begin() as conn:
            return add_sends(conn, alert_id, names, now)
    added = 0
    for name in names:
        row = {"alert_id": alert_id, "channel": name, "status": PENDING, "attempts": 0, "next_at": now}
        statement = _insert(db)(ALERT_SENDS).values(**row).on_conflict_do_nothing()
        added += len(db.execute(statement.returning(ALERT_SENDS.c.channel)).all())
    return added


def unrouted(engine: Engine, since: datetime, kinds: Sequence[str]) -> list[Alert]:
    """Alerts of ``kinds`` that occurred since ``since`` and have no send row yet, oldest first."""
    has_sends = sa.exists().where(ALERT_SENDS.c.alert_id == ALERTS.c.id)
    query = (
        sa.select(ALERTS)
        .where(ALERTS.c.occurred_at >= since, ALERTS.c.kind.in_(list(kinds)), ~has_sends)
        .order_by(ALERTS.c.id)
    )
    with reading(engine) as conn:
        return [Alert.of(row) for row in conn.execute(query).mappings()]


def due_sends(engine: Engine, now: datetime, limit: int = 100) -> list[tuple[Alert, AlertSend]]:
    """Pending sends due by ``now``, the longest due first, each with its alert."""
    query = (
        sa.select(ALERTS, *ALERT_SENDS.columns)
        .join(ALERT_SENDS, ALERT_SENDS.c.alert_id == ALERTS.c.id)
        .where(ALERT_SENDS.c.status == PENDING, ALERT_SENDS.c.next_at <= now)
        .order_by(ALERT_SENDS.c.next_at, ALERT_SENDS.c.alert_id, ALERT_SENDS.c.channel)
        .limit(limit)
    )
    with reading(engine) as conn:
        return [(Alert.of(row), AlertSend.of(row)) for row in conn.execute(query).mappings()]


def _send(alert_id: int, channel: str) -> sa.ColumnElement[bool]:
    return sa.and_(ALERT_SENDS.c.alert_id == alert_id, ALERT_SENDS.c.channel == channel)


def claim_send(engine: Engine, send: AlertSend, now: datetime, hold: timedelta) -> bool:
    """Takes a due send for one try: counts it and holds the row until ``now + hold`` (a sender
    that dies mid-try leaves it due again then). False when another sender took it first."""
    with engine.begin() as conn:
        result = conn.execute(
            ALERT_SENDS.update()
            .where(
                _send(send.alert_id, send.channel),
                ALERT_SENDS.c.status == PENDING,
                ALERT_SENDS.c.attempts == send.attempts,
                ALERT_SENDS.c.next_at <= now,
            )
            .values(attempts=send.attempts + 1, next_at=now + hold)
        )
    return bool(result.rowcount)


def _finish(engine: Engine, alert_id: int, channel: str, **values: Any) -> bool:
    with engine.begin() as conn:
        result = conn.execute(
            ALERT_SENDS.update()
            .where(_send(alert_id, channel), ALERT_SENDS.c.status == PENDING)
            .values(**values)
        )
    return bool(result.rowcount)


def mark_sent(engine: Engine, alert_id: int, channel: str, answer: str, now: datetime) -> bool:
    """The channel took the alert: ``sent`` with its answer."""
    return _finish(engine, alert_id, channel, status=SENT, answer=answer, sent_at=now)


def mark_retry(engine: Engine, alert_id: int, channel: str, answer: str, next_at: datetime) -> bool:
    """The channel refused or was away: pending again, due at ``next_at``."""
    return _finish(engine, alert_id, channel, answer=answer, next_at=next_at)


def mark_failed(engine: Engine, alert_id: int, channel: str, answer: str) -> bool:
    """Out of tries: ``failed`` with the last answer."""
    return _finish(engine, alert_id, channel, status=FAILED, answer=answer)


def list_alerts(engine: Engine, limit: int = 50) -> list[tuple[Alert, list[AlertSend]]]:
    """The newest ``limit`` alerts, newest first, each with its sends in channel order."""
    query = sa.select(ALERTS).order_by(ALERTS.c.occurred_at.desc(), ALERTS.c.id.desc()).limit(limit)
    with reading(engine) as conn:
        alerts = [Alert.of(row) for row in conn.execute(query).mappings()]
        ids = [a.id for a in alerts]
        sends = conn.execute(
            sa.select(ALERT_SENDS).where(ALERT_SENDS.c.alert_id.in_(ids)).order_by(ALERT_SENDS.c.channel)
        ).mappings()
        by_alert: dict[int, list[AlertSend]] = {i: [] for i in ids}
        for row in sends:
            by_alert[row["alert_id"]].append(AlertSend.of(row))
    return [(alert, by_alert[alert.id]) for alert in alerts]


def alert_with_sends(engine: Engine, alert_id: int) -> tuple[Alert, list[AlertSend]] | None:
    """One alert and its sends, in channel order; None when there is no such alert."""
    with reading(engine) as conn:
        row = conn.execute(sa.select(ALERTS).where(ALERTS.c.id == alert_id)).mappings().first()
        if row is None:
            return None
        sends = conn.execute(
            sa.select(ALERT_SENDS).where(ALERT_SENDS.c.alert_id == alert_id).order_by(ALERT_SENDS.c.channel)
        ).mappings()
        return Alert.of(row), [AlertSend.of(send) for send in sends]


def _of_kind(kind: str, prefix: str, endpoint: str | None) -> list[sa.ColumnElement[bool]]:
    conditions = [ALERTS.c.kind == kind]
    if prefix:
        conditions.append(ALERTS.c.occurrence.startswith(prefix, autoescape=True))
    if endpoint is not None:
        conditions.append(ALERTS.c.endpoint == endpoint)
    return conditions


def newest_alert(engine: Engine, kind: str, prefix: str = "", endpoint: str | None = None) -> Alert | None:
    """The newest alert of ``kind`` (whose occurrence starts with ``prefix``, of ``endpoint``)."""
    query = sa.select(ALERTS).where(*_of_kind(kind, prefix, endpoint)).order_by(ALERTS.c.id.desc()).limit(1)
    with reading(engine) as conn:
        row = conn.execute(query).mappings().first()
    return None if row is None else Alert.of(row)


def open_alert(engine: Engine, kind: str, prefix: str = "") -> Alert | None:
    """The episode of ``kind`` (occurrence starting with ``prefix``) still unresolved, if any."""
    query = (
        sa.select(ALERTS)
        .where(*_of_kind(kind, prefix, None), ALERTS.c.resolved_at.is_(None))
        .order_by(ALERTS.c.id.desc())
        .limit(1)
    )
    with reading(engine) as conn:
        row = conn.execute(query).mappings().first()
    return None if row is None else Alert.of(row)


def resolve(engine: Engine, alert_id: int, at: datetime) -> bool:
    """Ends an episode; False when it was resolved already."""
    with engine.begin() as conn:
        result = conn.execute(
            ALERTS.update()
            .where(ALERTS.c.id == alert_id, ALERTS.c.resolved_at.is_(None))
            .values(resolved_at=at)
        )
    return bool(result.rowcount)


def oldest_waiting(engine: Engine, now: datetime) -> datetime | None:
    """Since when the longest-waiting delivery waits to be sent: a queued one since it was
    dispatched (its ``created_at``: a claim given back, by a limit or an open breaker, does not
    make it younger), a retry since it was due (``next_attempt_at`` by ``now``). A paused
    endpoint's deliveries are left out (they wait on purpose); None when none waits."""
    d = DELIVERIES.c
    paused = sa.select(ENDPOINT_STATE.c.name).where(ENDPOINT_STATE.c.paused.is_(True))
    queued = sa.select(sa.func.min(d.created_at)).where(
        d.status == DeliveryStatus.QUEUED, d.endpoint.not_in(paused)
    )
    due = sa.select(sa.func.min(d.next_attempt_at)).where(
        d.status == DeliveryStatus.RETRYING, d.next_attempt_at <= now, d.endpoint.not_in(paused)
    )
    with reading(engine) as conn:
        found = [conn.execute(queued).scalar(), conn.execute(due).scalar()]
    times = [_aware(t) for t in found if t is not None]
    return min(times) if times else None


def _aware(value: datetime) -> datetime:
    """An aggregate's time, in UTC whatever the backend hands back."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def newest_heartbeat(engine: Engine) -> datetime | None:
    """When a worker last renewed its lease (the newest of all leases); None when no worker holds
    one (none ever ran, or every one stopped cleanly)."""
    with reading(engine) as conn:
        found = conn.execute(sa.select(sa.func.max(WORKER_LEASES.c.renewed_at))).scalar()
    return None if found is None else _aware(found)
