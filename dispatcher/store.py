"""The tables and every query on them. Knows nothing of HTTP or Redis.

Two tables:

* ``webhook_deliveries`` (:class:`Delivery`): one row per request_id, the source of truth for status.
* ``webhook_event_transaction_log`` (:class:`WebhookEventTransactionLog`): one row per attempt.

Statuses of a delivery: ``queued`` -> ``in_flight`` (a worker holds it) -> ``delivered`` |
``retrying`` | ``failed``. The move to ``in_flight`` is a conditional UPDATE (a claim), so two
workers, reconcile and an operator can never run one delivery twice at the same time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Field, SQLModel

from .errors import StoreUnavailable

QUEUED = "queued"
IN_FLIGHT = "in_flight"
RETRYING = "retrying"
DELIVERED = "delivered"
FAILED = "failed"
FINAL_STATUSES = (DELIVERED, FAILED)
CLAIMABLE = (QUEUED, RETRYING)
INTERRUPTED = "interrupted"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator):
    """Stores timezone-aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _time_column(nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index))


class Delivery(SQLModel, table=True):
    """One delivery of one event to one endpoint."""

    __tablename__ = "webhook_deliveries"

    request_id: str = Field(primary_key=True, max_length=36)
    event: str = Field(max_length=64, index=True)
    endpoint: str = Field(max_length=128, index=True)
    url: str
    status: str = Field(max_length=16, index=True)
    attempts: int = 0
    attempt_limit: int
    last_http_status: int | None = None
    payload: str
    reason: str | None = None
    worker: str | None = Field(default=None, max_length=255)
    replay_of: str | None = Field(default=None, max_length=36)
    attempt_started_at: datetime | None = _time_column(nullable=True)
    next_attempt_at: datetime | None = _time_column(nullable=True)
    created_at: datetime = _time_column(index=True)
    updated_at: datetime = _time_column(index=True)


class WebhookEventTransactionLog(SQLModel, table=True):
    """One row per attempt (and one ``interrupted`` row per attempt cut short by a dead worker)."""

    __tablename__ = "webhook_event_transaction_log"

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(max_length=36, index=True)
    event: str = Field(max_length=64)
    endpoint: str = Field(max_length=128)
    url: str
    attempt: int
    retry: bool
    outcome: str = Field(max_length=16)
    http_status: int | None = None
    error: str | None = None
    response_body: str | None = None
    duration_ms: int | None = None
    next_attempt_at: datetime | None = _time_column(nullable=True)
    request_payload: str | None = None
    request_headers: str | None = None
    created_at: datetime = _time_column(index=True)


class EndpointState(SQLModel, table=True):
    """An endpoint's health, shared by every worker: disabled by a 410 or by failing for a window."""

    __tablename__ = "webhook_endpoint_state"

    name: str = Field(primary_key=True, max_length=128)
    disabled: bool = False
    reason: str | None = None
    disabled_at: datetime | None = _time_column(nullable=True)
    updated_at: datetime = _time_column()


DELIVERIES = Delivery.__table__
ATTEMPTS = WebhookEventTransactionLog.__table__
ENDPOINT_STATE = EndpointState.__table__
TABLES = [DELIVERIES, ATTEMPTS, ENDPOINT_STATE]


# --- engine ----------------------------------------------------------------------------------


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level; SQLAlchemy's "begin" below then issues BEGIN IMMEDIATE so a
    # writer waits (busy_timeout) for the lock instead of failing on a read-to-write upgrade.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # A read (see `reading`) takes no write lock, so reports never pause the workers' writes.
    read_only = connection.get_execution_options().get("dispatcher_read_only")
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads only: on SQLite a deferred transaction, not BEGIN IMMEDIATE."""
    with engine.connect() as conn:
        conn.execution_options(dispatcher_read_only=True)
        yield conn


def create_store_engine(database_url: str) -> Engine:
    """An engine for the URL, with the tables created on first use."""
    if database_url.startswith("sqlite"):
        path = sa.engine.make_url(database_url).database
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(database_url, connect_args={"timeout": 30, "check_same_thread": False})
        sa_event.listen(engine, "connect", _sqlite_pragmas)
        sa_event.listen(engine, "begin", _sqlite_begin)
    else:
        # No pre-ping: it costs a round trip per checkout. A connection the server dropped is
        # invalidated on first use and the write retried (insert_deliveries; tenacity in jobs).
        engine = sa.create_engine(database_url, pool_size=5, max_overflow=5)
    try:
        SQLModel.metadata.create_all(engine, tables=TABLES)
    except SQLAlchemyError as exc:
        raise StoreUnavailable(
            f"database {safe_url(database_url)} is unavailable: {_first_line(exc)}"
        ) from exc
    return engine


def safe_url(url: str) -> str:
    """The URL with any password hidden."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as the scheme only
        return url.split(":", 1)[0] + "://..."


def _first_line(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]


def describe_error(exc: BaseException) -> str:
    return _first_line(exc)


def is_transient(exc: BaseException) -> bool:
    """True for a database error that may pass if the write is tried again (the server away, a
    dropped connection, a lock or pool timeout); False for one that will fail the same way
    again (bad data, a constraint, a programming error)."""
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.TimeoutError):
        return True
    return isinstance(exc, sa.exc.DBAPIError) and bool(exc.connection_invalidated)


def storable_text(value: str | None) -> str | None:
    """Text every backend stores: PostgreSQL refuses NUL characters, so a partner's answer that
    holds one has it replaced by U+FFFD."""
    return value.replace("\x00", "\ufffd") if value and "\x00" in value else value


# --- writes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewDelivery:
    request_id: str
    event: str
    endpoint: str
    url: str
    payload: str
    attempt_limit: int
    replay_of: str | None = None
    status: str = QUEUED
    reason: str | None = None


def delivery_rows(rows: Iterable[NewDelivery], now: datetime | None = None) -> list[dict[str, Any]]:
    """The ``webhook_deliveries`` values for new deliveries (``queued`` unless held back)."""
    now = now or utcnow()
    return [
        {
            "request_id": r.request_id,
            "event": r.event,
            "endpoint": r.endpoint,
            "url": r.url,
            "status": r.status,
            "reason": r.reason,
            "attempts": 0,
            "attempt_limit": r.attempt_limit,
            "payload": r.payload,
            "replay_of": r.replay_of,
            "created_at": now,
            "updated_at": now,
        }
        for r in rows
    ]


def insert_deliveries(engine: Engine, rows: Iterable[NewDelivery], now: datetime | None = None) -> None:
    """Stores new deliveries as ``queued`` in one transaction."""
    values = delivery_rows(rows, now)
    if not values:
        return
    for try_number in (1, 2):
        try:
            with engine.begin() as conn:
                conn.execute(DELIVERIES.insert(), values)
            return
        except sa.exc.DBAPIError as exc:
            # A pooled connection the server dropped (a restart): the pool is invalidated, try once more.
            if try_number == 2 or not exc.connection_invalidated:
                raise


@dataclass(frozen=True)
class Claim:
    """A delivery a worker now holds for one attempt."""

    request_id: str
    event: str
    endpoint: str
    url: str
    payload: str
    attempt: int
    attempt_limit: int


_CLAIM_FIELDS = (
    DELIVERIES.c.request_id,
    DELIVERIES.c.event,
    DELIVERIES.c.endpoint,
    DELIVERIES.c.url,
    DELIVERIES.c.payload,
    DELIVERIES.c.attempts,
    DELIVERIES.c.attempt_limit,
)


_CLAIM = (
    DELIVERIES.update()
    .where(
        DELIVERIES.c.request_id.in_(sa.bindparam("c_ids", expanding=True)),
        DELIVERIES.c.status.in_(CLAIMABLE),
    )
    .values(
        status=IN_FLIGHT,
        worker=sa.bindparam("c_worker"),
        attempts=DELIVERIES.c.attempts + 1,
        attempt_started_at=sa.bindparam("c_now", type_=UTCDateTime()),
        updated_at=sa.bindparam("c_now", type_=UTCDateTime()),
    )
    .returning(*_CLAIM_FIELDS)
)
_OWN_CLAIMS = sa.select(*_CLAIM_FIELDS).where(
    DELIVERIES.c.request_id.in_(sa.bindparam("c_ids", expanding=True)),
    DELIVERIES.c.status == IN_FLIGHT,
    DELIVERIES.c.worker == sa.bindparam("c_worker"),
    DELIVERIES.c.attempt_started_at == sa.bindparam("c_now", type_=UTCDateTime()),
)
"""Built once, so each batch's claim is only its parameters (the SQL is compiled once)."""


def claim_many(
    engine: Engine, request_ids: Sequence[str], worker: str, now: datetime | None = None
) -> dict[str, Claim]:
    """Takes the queued or retrying deliveries among ``request_ids`` for one attempt each, in one
    statement; returns the claims by request_id. An id missing from the answer is not claimable
    (already delivered or failed, held by another worker right now, or no such delivery).

    Safe to call again with the same ``now`` after an error whose commit may have gone through
    (a lost acknowledgement): a row this worker already claimed at exactly ``now`` is this
    call's own claim and is returned, not refused.
    """
    if not request_ids:
        return {}
    params = {"c_ids": sorted(set(request_ids)), "c_worker": worker, "c_now": now or utcnow()}
    with engine.begin() as conn:
        rows = conn.execute(_CLAIM, params).all()
        if len(rows) < len(params["c_ids"]):  # the rest are not claimable, unless claimed by this very call
            got = {row.request_id for row in rows}
            rest = [i for i in params["c_ids"] if i not in got]
            rows += conn.execute(_OWN_CLAIMS, {**params, "c_ids": rest}).all()
    return {
        row.request_id: Claim(
            row.request_id, row.event, row.endpoint, row.url, row.payload, row.attempts, row.attempt_limit
        )
        for row in rows
    }


def claim(engine: Engine, request_id: str, worker: str, now: datetime | None = None) -> Claim | None:
    """:func:`claim_many` for one delivery; None when it is not claimable."""
    return claim_many(engine, [request_id], worker, now).get(request_id)


def release_claim(engine: Engine, request_id: str, worker: str, fail_reason: str | None = None) -> None:
    """Gives back a claim that made no attempt: back to ``queued``/``retrying`` (a deferral for an
    endpoint's limits), or to ``failed`` with ``fail_reason`` (an endpoint that is disabled)."""
    was = sa.case((DELIVERIES.c.attempts <= 1, QUEUED), else_=RETRYING)
    with engine.begin() as conn:
        conn.execute(
            DELIVERIES.update()
            .where(
                DELIVERIES.c.request_id == request_id,
                DELIVERIES.c.status == IN_FLIGHT,
                DELIVERIES.c.worker == worker,
            )
            .values(
                status=FAILED if fail_reason else was,
                reason=fail_reason,
                worker=None,
                attempts=DELIVERIES.c.attempts - 1,
                updated_at=utcnow(),
            )
        )


def claims_held_by(engine: Engine, worker: str, claimed_before: datetime) -> list[str]:
    """The deliveries ``in_flight`` under ``worker`` whose claim was made before ``claimed_before``."""
    with reading(engine) as conn:
        return list(
            conn.execute(
                sa.select(DELIVERIES.c.request_id).where(
                    DELIVERIES.c.status == IN_FLIGHT,
                    DELIVERIES.c.worker == worker,
                    DELIVERIES.c.attempt_started_at < claimed_before,
                )
            ).scalars()
        )


def delivery_exists(engine: Engine, request_id: str) -> bool:
    return bool(existing_deliveries(engine, [request_id]))


def existing_deliveries(engine: Engine, request_ids: Sequence[str]) -> set[str]:
    """The ids among ``request_ids`` that have a delivery row."""
    if not request_ids:
        return set()
    with reading(engine) as conn:
        return set(
            conn.execute(
                sa.select(DELIVERIES.c.request_id).where(DELIVERIES.c.request_id.in_(list(request_ids)))
            ).scalars()
        )


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt row; what an attempt that sent nothing lacks defaults to None."""

    request_id: str
    event: str
    endpoint: str
    url: str
    attempt: int
    outcome: str
    created_at: datetime
    http_status: int | None = None
    error: str | None = None
    response_body: str | None = None
    duration_ms: int | None = None
    next_attempt_at: datetime | None = None
    request_payload: str | None = None
    request_headers: dict[str, str] | None = None

    def as_row(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "event": self.event,
            "endpoint": self.endpoint,
            "url": self.url,
            "attempt": self.attempt,
            "retry": self.attempt > 1,
            "outcome": self.outcome,
            "http_status": self.http_status,
            "error": storable_text(self.error),
            "response_body": storable_text(self.response_body),
            "duration_ms": self.duration_ms,
            "next_attempt_at": self.next_attempt_at,
            "request_payload": self.request_payload,
            "request_headers": json.dumps(self.request_headers) if self.request_headers is not None else None,
            "created_at": self.created_at,
        }


_STATUS_AFTER = {"delivered": DELIVERED, "retry_scheduled": RETRYING, "failed": FAILED, INTERRUPTED: RETRYING}


def record_attempt(engine: Engine, record: AttemptRecord, worker: str, reason: str | None = None) -> bool:
    """Writes the attempt row and moves the delivery on, in one transaction.

    Only the holder of the claim (``worker``) moves the delivery. An ``interrupted`` record (a
    dead worker's attempt, written by reconcile) gives the attempt back to the budget, so a
    crash never costs a delivery one of its tries. Returns False, writing nothing, when the
    claim is no longer held.
    """
    return record_attempts(engine, [(record, reason)], worker)[0]


def _record_statement(interrupted: bool) -> Any:
    """The conditional UPDATE of a delivery after an attempt, built once (its SQL is cached)."""
    values: dict[str, Any] = {
        "status": sa.bindparam("r_status"),
        "worker": None,
        "next_attempt_at": sa.bindparam("r_next_attempt_at", type_=UTCDateTime()),
        "reason": sa.bindparam("r_reason"),
        "updated_at": sa.bindparam("r_updated_at", type_=UTCDateTime()),
    }
    if interrupted:  # a dead worker's attempt goes back to the budget
        values["attempt_limit"] = DELIVERIES.c.attempt_limit + 1
    else:
        values["last_http_status"] = sa.bindparam("r_http_status", type_=sa.Integer())
    return (
        DELIVERIES.update()
        .where(
            DELIVERIES.c.request_id == sa.bindparam("r_request_id"),
            DELIVERIES.c.status == IN_FLIGHT,
            DELIVERIES.c.worker == sa.bindparam("r_worker"),
        )
        .values(**values)
    )


_RECORD = _record_statement(interrupted=False)
_RECORD_INTERRUPTED = _record_statement(interrupted=True)


class _ClaimLost(Exception):
    """Rolls back a batch record in which some claim was no longer held."""


def record_attempts(
    engine: Engine, records: Sequence[tuple[AttemptRecord, str | None]], worker: str
) -> list[bool]:
    """:func:`record_attempt` for several attempts (with each one's ``reason``) in one
    transaction: one commit for a batch. Returns, for each, whether it was written.

    The usual case, every claim still held, is one UPDATE run for all of them (one round trip)
    and one INSERT. When some claim is gone, that transaction is rolled back and each is
    written on its own, so the others still are."""
    if len(records) > 1 and all(r.outcome != INTERRUPTED for r, _ in records):
        try:
            with engine.begin() as conn:
                params = [_record_params(r, reason, worker) for r, reason in records]
                if conn.execute(_RECORD, params).rowcount != len(params):
                    raise _ClaimLost
                conn.execute(ATTEMPTS.insert(), [r.as_row() for r, _ in records])
            return [True] * len(records)
        except _ClaimLost:
            pass
    written: list[bool] = []
    rows: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for record, reason in records:
            params = _record_params(record, reason, worker)
            updated = conn.execute(_RECORD_INTERRUPTED if record.outcome == INTERRUPTED else _RECORD, params)
            written.append(updated.rowcount == 1)
            if updated.rowcount == 1:
                rows.append(record.as_row())
        if rows:
            conn.execute(ATTEMPTS.insert(), rows)
    return written


def _record_params(record: AttemptRecord, reason: str | None, worker: str) -> dict[str, Any]:
    params = {
        "r_request_id": record.request_id,
        "r_worker": worker,
        "r_status": _STATUS_AFTER[record.outcome],
        "r_next_attempt_at": record.next_attempt_at,
        "r_reason": reason,
        "r_updated_at": record.created_at,
    }
    if record.outcome != INTERRUPTED:
        params["r_http_status"] = record.http_status
    return params


def fail_delivery(engine: Engine, request_id: str, reason: str, now: datetime | None = None) -> None:
    """Marks a delivery failed without an attempt (an unusable stored payload, a removed endpoint)."""
    now = now or utcnow()
    with engine.begin() as conn:
        conn.execute(
            DELIVERIES.update()
            .where(DELIVERIES.c.request_id == request_id, DELIVERIES.c.status.not_in(FINAL_STATUSES))
            .values(status=FAILED, worker=None, reason=reason, updated_at=now)
        )


def grant_retries(
    engine: Engine,
    request_ids: Sequence[str],
    max_attempts: int,
    per_endpoint: Mapping[str, int] | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Re-opens the deliveries still ``failed`` among ``request_ids`` with a fresh attempt budget
    (``per_endpoint`` overrides ``max_attempts`` by endpoint name), in one statement; returns
    the ids it re-opened."""
    if not request_ids:
        return []
    budget: Any = max_attempts
    if per_endpoint:
        budget = sa.case(
            *((DELIVERIES.c.endpoint == name, n) for name, n in per_endpoint.items()), else_=max_attempts
        )
    with engine.begin() as conn:
        return list(
            conn.execute(
                DELIVERIES.update()
                .where(DELIVERIES.c.request_id.in_(list(request_ids)), DELIVERIES.c.status == FAILED)
                .values(
                    status=QUEUED,
                    attempt_limit=DELIVERIES.c.attempts + budget,
                    reason=None,
                    next_attempt_at=None,
                    updated_at=now or utcnow(),
                )
                .returning(DELIVERIES.c.request_id)
            ).scalars()
        )


def grant_retry(engine: Engine, request_id: str, max_attempts: int, now: datetime | None = None) -> bool:
    """Re-opens one failed delivery with a fresh attempt budget; False unless it was ``failed``."""
    return bool(grant_retries(engine, [request_id], max_attempts, now=now))


# --- endpoint state --------------------------------------------------------------------------


def disabled_endpoints(engine: Engine) -> dict[str, str | None]:
    """Disabled endpoints and why."""
    query = sa.select(ENDPOINT_STATE.c.name, ENDPOINT_STATE.c.reason).where(
        ENDPOINT_STATE.c.disabled.is_(True)
    )
    with reading(engine) as conn:
        return {row.name: row.reason for row in conn.execute(query)}


def endpoint_states(engine: Engine) -> dict[str, dict[str, Any]]:
    with reading(engine) as conn:
        return {row["name"]: dict(row) for row in conn.execute(sa.select(ENDPOINT_STATE)).mappings()}


def set_endpoint_disabled(engine: Engine, name: str, disabled: bool, reason: str | None = None) -> bool:
    """Disables or enables an endpoint; True when that changed its state."""
    now = utcnow()
    with engine.begin() as conn:
        current = conn.execute(
            sa.select(ENDPOINT_STATE.c.disabled).where(ENDPOINT_STATE.c.name == name)
        ).first()
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
            sa.or_(DELIVERIES.c.reason.is_(None), DELIVERIES.c.reason != "endpoint_disabled"),
        )
        .group_by(DELIVERIES.c.status)
    )
    with reading(engine) as conn:
        counts = dict(conn.execute(final).all())
    return 0 if counts.get(DELIVERED) else counts.get(FAILED, 0)


def held_back(engine: Engine, endpoint: str) -> list[str]:
    """Deliveries failed with ``endpoint_disabled`` for an endpoint, oldest first."""
    query = (
        sa.select(DELIVERIES.c.request_id)
        .where(
            DELIVERIES.c.endpoint == endpoint,
            DELIVERIES.c.status == FAILED,
            DELIVERIES.c.reason == "endpoint_disabled",
        )
        .order_by(DELIVERIES.c.created_at)
    )
    with reading(engine) as conn:
        return list(conn.execute(query).scalars())


# --- reads -----------------------------------------------------------------------------------

DELIVERY_FIELDS = (
    "request_id",
    "event",
    "endpoint",
    "status",
    "attempts",
    "last_http_status",
    "created_at",
    "updated_at",
)
ATTEMPT_FIELDS = (
    "attempt",
    "retry",
    "outcome",
    "http_status",
    "error",
    "duration_ms",
    "response_body",
    "next_attempt_at",
    "created_at",
)


def get_delivery(engine: Engine, request_id: str) -> dict[str, Any] | None:
    with reading(engine) as conn:
        row = (
            conn.execute(sa.select(DELIVERIES).where(DELIVERIES.c.request_id == request_id))
            .mappings()
            .first()
        )
    return dict(row) if row else None


def list_deliveries(
    engine: Engine,
    *,
    event: str | None = None,
    status: str | None = None,
    endpoint: str | None = None,
    request_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Deliveries newest first (by created_at), filtered; ``since`` inclusive, ``until`` exclusive."""
    query = sa.select(*(DELIVERIES.c[name] for name in DELIVERY_FIELDS))
    for column, value in (
        ("event", event),
        ("status", status),
        ("endpoint", endpoint),
        ("request_id", request_id),
    ):
        if value:
            query = query.where(DELIVERIES.c[column] == value)
    if since is not None:
        query = query.where(DELIVERIES.c.created_at >= since)
    if until is not None:
        query = query.where(DELIVERIES.c.created_at < until)
    query = (
        query.order_by(DELIVERIES.c.created_at.desc(), DELIVERIES.c.request_id.desc())
        .limit(limit)
        .offset(offset)
    )
    with reading(engine) as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def list_attempts(engine: Engine, request_id: str) -> list[dict[str, Any]]:
    query = (
        sa.select(ATTEMPTS)
        .where(ATTEMPTS.c.request_id == request_id)
        .order_by(ATTEMPTS.c.attempt, ATTEMPTS.c.id)
    )
    with reading(engine) as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def deliveries_by_status(
    engine: Engine, statuses: Iterable[str], older_than: datetime, batch: int = 1000
) -> Iterator[dict[str, Any]]:
    """Deliveries in the given statuses not updated since ``older_than``, oldest first, in batches."""
    statuses = tuple(statuses)
    last_key: tuple[datetime, str] | None = None
    columns = (
        DELIVERIES.c.request_id,
        DELIVERIES.c.status,
        DELIVERIES.c.worker,
        DELIVERIES.c.next_attempt_at,
        DELIVERIES.c.attempt_started_at,
        DELIVERIES.c.updated_at,
    )
    while True:
        query = sa.select(*columns).where(
            DELIVERIES.c.status.in_(statuses), DELIVERIES.c.updated_at < older_than
        )
        if last_key is not None:
            query = query.where(
                sa.or_(
                    DELIVERIES.c.updated_at > last_key[0],
                    sa.and_(DELIVERIES.c.updated_at == last_key[0], DELIVERIES.c.request_id > last_key[1]),
                )
            )
        query = query.order_by(DELIVERIES.c.updated_at, DELIVERIES.c.request_id).limit(batch)
        with reading(engine) as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        yield from rows
        if len(rows) < batch:
            return
        last_key = (rows[-1]["updated_at"], rows[-1]["request_id"])
