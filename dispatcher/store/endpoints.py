"""Endpoint state: which endpoints are disabled and why, shared by every worker through the
database, and read through a cache of a few seconds in each process; and how each endpoint's
deliveries ended lately (its success rate per delivery).

A disabled endpoint gets no new jobs: ``dispatch()`` still returns an id for each of its
deliveries, recorded ``failed`` with reason ``endpoint_disabled``, so nothing silently vanishes,
and ``dispatcher endpoints enable NAME`` offers to re-send them. When a failure disables an
endpoint is decided by :mod:`dispatcher.policy.health`. A paused endpoint's deliveries wait, using
no attempt; resuming it sends those waiting on in dispatch order (:func:`waiting_deliveries`).
Removing an endpoint fails those waiting (:func:`fail_waiting`) and forgets its state.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..logs import log_line
from ..policy.health import DISABLED_CACHE_SECONDS
from ..times import utcnow
from ..vocabulary import (
    CLAIMABLE_STATUSES,
    FINAL_STATUSES,
    PENDING_STATUSES,
    AlertKind,
    DeliveryStatus,
    Reason,
)
from . import counts
from .alerts import raise_alert
from .engine import reading
from .schema import DELIVERIES, ENDPOINT_STATE

CACHE_SECONDS = DISABLED_CACHE_SECONDS


def disabled_endpoints(engine: Engine) -> dict[str, str | None]:
    """Disabled endpoints and why."""
    return gate_states(engine)[0]


def gate_states(engine: Engine) -> tuple[dict[str, str | None], frozenset[str]]:
    """Disabled endpoints and why, and the paused endpoints: one read."""
    query = sa.select(
        ENDPOINT_STATE.c.name, ENDPOINT_STATE.c.reason, ENDPOINT_STATE.c.disabled, ENDPOINT_STATE.c.paused
    ).where(sa.or_(ENDPOINT_STATE.c.disabled.is_(True), ENDPOINT_STATE.c.paused.is_(True)))
    with reading(engine) as conn:
        rows = conn.execute(query).all()
    return {r.name: r.reason for r in rows if r.disabled}, frozenset(r.name for r in rows if r.paused)


def set_endpoint_paused(engine: Engine, name: str, paused: bool) -> bool:
    """Pauses or resumes an endpoint; True when that changed its state."""
    now = utcnow()
    with engine.begin() as conn:
        current = conn.execute(
            sa.select(ENDPOINT_STATE.c.paused).where(ENDPOINT_STATE.c.name == name)
        ).first()
        if current is None:
            if paused:
                conn.execute(
                    ENDPOINT_STATE.insert().values(
                        name=name, disabled=False, paused=True, paused_at=now, updated_at=now
                    )
                )
            return paused
        if bool(current.paused) == paused:
            return False
        conn.execute(
            ENDPOINT_STATE.update()
            .where(ENDPOINT_STATE.c.name == name)
            .values(paused=paused, paused_at=now if paused else None, updated_at=now)
        )
        return True


def endpoint_states(engine: Engine) -> dict[str, dict[str, Any]]:
    with reading(engine) as conn:
        return {row["name"]: dict(row) for row in conn.execute(sa.select(ENDPOINT_STATE)).mappings()}


def set_endpoint_disabled(engine: Engine, name: str, disabled: bool, reason: str | None = None) -> bool:
    """Disables or enables an endpoint; True when that changed its state (and then the alert,
    ``endpoint.disabled`` or ``endpoint.recovered``, is raised in the same transaction)."""
    now = utcnow()
    with engine.begin() as conn:
        changed = _set_disabled(conn, name, disabled, reason, now)
        if changed:
            _raise_state_alert(conn, name, disabled, reason, now)
        return changed


def _raise_state_alert(
    conn: Connection, name: str, disabled: bool, reason: str | None, now: datetime
) -> None:
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if disabled:
        kind, detail = AlertKind.ENDPOINT_DISABLED, f"endpoint {name} disabled: {reason or 'no reason given'}"
    else:
        kind, detail = AlertKind.ENDPOINT_RECOVERED, f"endpoint {name} enabled again"
    raise_alert(conn, kind, f"{kind}:{name}:{stamp}", detail=detail, endpoint=name, at=now)


def _set_disabled(conn: Connection, name: str, disabled: bool, reason: str | None, now: datetime) -> bool:
    """Sets the disabled state in ``conn``'s transaction; True when it changed."""
    current = conn.execute(sa.select(ENDPOINT_STATE.c.disabled).where(ENDPOINT_STATE.c.name == name)).first()
    if current is None:
        conn.execute(
            ENDPOINT_STATE.insert().values(
                name=name,
                disabled=disabled,
                reason=reason,
                disabled_at=now if disabled else None,
                updated_at=now,
            )
        )
        return disabled
    if bool(current.disabled) == disabled:
        return False
    conn.execute(
        ENDPOINT_STATE.update()
        .where(ENDPOINT_STATE.c.name == name)
        .values(disabled=disabled, reason=reason, disabled_at=now if disabled else None, updated_at=now)
    )
    return True


def failures_without_success(engine: Engine, endpoint: str, since: datetime) -> int:
    """Failed deliveries to ``endpoint`` since ``since``, or 0 when one was delivered in that time."""
    final = (
        sa.select(DELIVERIES.c.status, sa.func.count())
        .where(
            DELIVERIES.c.endpoint == endpoint,
            DELIVERIES.c.updated_at >= since,
            DELIVERIES.c.status.in_(FINAL_STATUSES),
            sa.or_(DELIVERIES.c.reason.is_(None), DELIVERIES.c.reason != Reason.ENDPOINT_DISABLED),
        )
        .group_by(DELIVERIES.c.status)
    )
    with reading(engine) as conn:
        counts: dict[str, int] = {status: int(n) for status, n in conn.execute(final).all()}
    return 0 if counts.get(DeliveryStatus.DELIVERED) else counts.get(DeliveryStatus.FAILED, 0)


@dataclass(frozen=True)
class FinalDeliveries:
    """An endpoint's deliveries that ended in a window: delivered, and failed."""

    delivered: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.delivered + self.failed

    @property
    def success_rate(self) -> float | None:
        """Delivered over final deliveries (per delivery, not per attempt); None when none ended."""
        return self.delivered / self.total if self.total else None


def final_deliveries(engine: Engine, since: datetime) -> dict[str, FinalDeliveries]:
    """Per endpoint, the deliveries that ended (delivered or failed) since ``since``, leaving out
    those held back while it was disabled (``endpoint_disabled``: the partner never saw them).
    A delivery ends when it last changes, so it is read by ``updated_at``, through its index."""
    query = (
        sa.select(DELIVERIES.c.endpoint, DELIVERIES.c.status, sa.func.count())
        .where(
            DELIVERIES.c.updated_at >= since,
            DELIVERIES.c.status.in_(FINAL_STATUSES),
            sa.or_(DELIVERIES.c.reason.is_(None), DELIVERIES.c.reason != Reason.ENDPOINT_DISABLED),
        )
        .group_by(DELIVERIES.c.endpoint, DELIVERIES.c.status)
    )
    counted: dict[str, dict[str, int]] = {}
    with reading(engine) as conn:
        for endpoint, status, n in conn.execute(query).all():
            counted.setdefault(endpoint, {})[status] = int(n)
    return {
        endpoint: FinalDeliveries(
            delivered=by.get(DeliveryStatus.DELIVERED, 0), failed=by.get(DeliveryStatus.FAILED, 0)
        )
        for endpoint, by in counted.items()
    }


def held_back(engine: Engine, endpoint: str) -> list[str]:
    """Deliveries failed with ``endpoint_disabled`` for an endpoint, oldest first."""
    query = (
        sa.select(DELIVERIES.c.request_id)
        .where(
            DELIVERIES.c.endpoint == endpoint,
            DELIVERIES.c.status == DeliveryStatus.FAILED,
            DELIVERIES.c.reason == Reason.ENDPOINT_DISABLED,
        )
        .order_by(DELIVERIES.c.created_at)
    )
    with reading(engine) as conn:
        return list(conn.execute(query).scalars())


def disable(engine: Engine, name: str, reason: str) -> bool:
    """Disables an endpoint (logged at ERROR); True when it was enabled."""
    changed = set_endpoint_disabled(engine, name, True, reason)
    if changed:
        log_line(logging.ERROR, "endpoint disabled", endpoint=name, reason=reason)
    return changed


def enable(engine: Engine, name: str) -> bool:
    """Enables an endpoint again; True when it was disabled."""
    changed = set_endpoint_disabled(engine, name, False, None)
    if changed:
        log_line(logging.WARNING, "endpoint enabled", endpoint=name)
    return changed


def pending_count(engine: Engine, endpoint: str) -> int:
    """The deliveries to ``endpoint`` not final yet (queued, in flight or retrying)."""
    query = sa.select(sa.func.count()).where(
        DELIVERIES.c.status.in_(PENDING_STATUSES), DELIVERIES.c.endpoint == endpoint
    )
    with reading(engine) as conn:
        return int(conn.execute(query).scalar_one())


def waiting_deliveries(engine: Engine, endpoint: str, due_by: datetime | None = None) -> list[str]:
    """The deliveries to ``endpoint`` waiting for an attempt (queued or retrying), in dispatch
    order; with ``due_by``, only those whose next attempt is due by then (a retry still in its
    backoff keeps its time)."""
    query = sa.select(DELIVERIES.c.request_id).where(
        DELIVERIES.c.status.in_(CLAIMABLE_STATUSES), DELIVERIES.c.endpoint == endpoint
    )
    if due_by is not None:
        query = query.where(
            sa.or_(DELIVERIES.c.next_attempt_at.is_(None), DELIVERIES.c.next_attempt_at <= due_by)
        )
    query = query.order_by(DELIVERIES.c.created_at, DELIVERIES.c.ordering_seq, DELIVERIES.c.request_id)
    with reading(engine) as conn:
        return list(conn.execute(query).scalars())


def fail_waiting(engine: Engine, endpoint: str, reason: str = Reason.ENDPOINT_REMOVED) -> int:
    """Fails every delivery to ``endpoint`` waiting for an attempt (queued or retrying) with
    ``reason``, using no attempt, in one conditional UPDATE (a delivery a worker holds right now
    is left to its worker); the failed counts move in the same transaction. Returns how many."""
    with engine.begin() as conn:
        failed = conn.execute(
            DELIVERIES.update()
            .where(DELIVERIES.c.endpoint == endpoint, DELIVERIES.c.status.in_(CLAIMABLE_STATUSES))
            .values(status=DeliveryStatus.FAILED, reason=reason, worker=None, updated_at=utcnow())
        ).rowcount
        counts.add(conn, {DeliveryStatus.FAILED: failed})
    return int(failed)


def forget_endpoint_state(engine: Engine, name: str) -> bool:
    """Drops an endpoint's state (disabled, paused) when it is removed, so an endpoint added
    later under its name starts enabled and running; True when there was one."""
    with engine.begin() as conn:
        return bool(conn.execute(ENDPOINT_STATE.delete().where(ENDPOINT_STATE.c.name == name)).rowcount)


class DisabledCache:
    """The disabled endpoints (name: reason) and the paused ones, re-read at most every ``ttl``
    seconds."""

    def __init__(self, engine: Engine, ttl: float = CACHE_SECONDS) -> None:
        self.engine = engine
        self.ttl = ttl
        self._value: dict[str, str | None] = {}
        self._paused: frozenset[str] = frozenset()
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def get(self) -> dict[str, str | None]:
        with self._lock:
            self._refresh()
            return self._value

    def paused(self) -> frozenset[str]:
        with self._lock:
            self._refresh()
            return self._paused

    def _refresh(self) -> None:
        if time.monotonic() - self._read_at >= self.ttl:
            self._value, self._paused = gate_states(self.engine)
            self._read_at = time.monotonic()

    def invalidate(self) -> None:
        with self._lock:
            self._read_at = float("-inf")
