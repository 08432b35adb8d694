"""Operator operations on the transaction log: re-queue failed deliveries, replay a time range
to an endpoint, prune old rows. No click here; :mod:`dispatcher.commands.resend` is the CLI.

Every bulk operation streams the matching deliveries in keyset-paged batches of
:data:`BATCH_SIZE` (ordered by a time column and ``request_id``), so memory stays flat however
many rows match, and each batch is one database transaction plus one Redis pipeline. A
report keeps at most :data:`ID_CAP` request ids.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row

from . import queue, store
from .dispatch import prepare, store_and_queue
from .errors import InvalidEventData, PayloadTooLarge, UnknownEndpoint, UnknownEvent
from .logs import log_line
from .runtime import Runtime

BATCH_SIZE = 1000
"""Rows read, changed and queued per transaction / Redis pipeline."""
ID_CAP = 1000
"""Most request ids a report lists (``request_ids_truncated`` says when there were more)."""

Progress = Callable[[int], None]
"""Called after each batch with the number of deliveries it handled."""

D = store.DELIVERIES


# --- selection -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which deliveries an operation takes.

    ``since`` (inclusive) and ``until`` (exclusive) bound ``created_at``, like ``log list``;
    ``updated_before`` bounds ``updated_at`` (prune's cutoff).
    """

    statuses: tuple[str, ...] = ()
    event: str | None = None
    endpoint: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    updated_before: datetime | None = None

    def conditions(self) -> list[Any]:
        conditions: list[Any] = []
        if self.statuses:
            conditions.append(D.c.status.in_(self.statuses))
        if self.event:
            conditions.append(D.c.event == self.event)
        if self.endpoint:
            conditions.append(D.c.endpoint == self.endpoint)
        if self.since is not None:
            conditions.append(D.c.created_at >= self.since)
        if self.until is not None:
            conditions.append(D.c.created_at < self.until)
        if self.updated_before is not None:
            conditions.append(D.c.updated_at < self.updated_before)
        return conditions


def count(engine: Engine, selection: Selection) -> int:
    with store.reading(engine) as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(D).where(*selection.conditions())
        ).scalar_one()


def count_by_status(engine: Engine, selection: Selection) -> dict[str, int]:
    query = sa.select(D.c.status, sa.func.count()).where(*selection.conditions()).group_by(D.c.status)
    with store.reading(engine) as conn:
        return {status: n for status, n in conn.execute(query).all()}


def pages(
    engine: Engine,
    selection: Selection,
    columns: Sequence[str] = ("request_id",),
    *,
    order_by: str = "created_at",
    batch: int = BATCH_SIZE,
) -> Iterator[list[Row]]:
    """The selected deliveries, ``order_by`` then ``request_id`` ascending, one page at a time.

    Keyset paging (never OFFSET): each page starts after the last row of the previous one, so
    rows that leave the selection meanwhile (re-queued, deleted) shift nothing, rows are never
    handled twice, and each page is one short read on its own connection.
    """
    order = D.c[order_by]
    wanted = list(dict.fromkeys([*columns, order_by, "request_id"]))
    last: tuple[Any, str] | None = None
    while True:
        query = sa.select(*(D.c[name] for name in wanted)).where(*selection.conditions())
        if last is not None:
            query = query.where(order >= last[0], sa.or_(order > last[0], D.c.request_id > last[1]))
        query = query.order_by(order, D.c.request_id).limit(batch)
        with store.reading(engine) as conn:
            rows = conn.execute(query).all()
        if rows:
            yield rows
        if len(rows) < batch:
            return
        last = (getattr(rows[-1], order_by), rows[-1].request_id)


def first_rows(engine: Engine, selection: Selection, limit: int = ID_CAP) -> list[dict[str, Any]]:
    """The first ``limit`` selected deliveries (oldest first), for a dry run's listing."""
    for page in pages(engine, selection, store.DELIVERY_FIELDS, batch=limit):
        return [dict(row._mapping) for row in page]
    return []


@dataclass
class IdList:
    """Request ids kept for a report: the first :data:`ID_CAP`, and whether there were more."""

    cap: int = ID_CAP
    items: list[Any] = field(default_factory=list)
    truncated: bool = False

    def extend(self, values: Sequence[Any]) -> None:
        room = self.cap - len(self.items)
        if len(values) > room:
            self.truncated = True
        if room > 0:
            self.items.extend(values[:room])


# --- retry -----------------------------------------------------------------------------------

REQUEUED = "requeued"
MISSING = "missing"
NOT_FAILED = "not_failed"


def retry_one(runtime: Runtime, request_id: str) -> tuple[str, str | None]:
    """``dispatcher retry ID``: re-opens one failed delivery and queues it again.

    Returns (``requeued`` | ``missing`` | ``not_failed``, the status it had).
    """
    delivery = store.get_delivery(runtime.engine, request_id)
    if delivery is None:
        return MISSING, None
    budget = runtime.settings.delivery_for(runtime.settings.endpoint(delivery["endpoint"])).max_attempts
    if delivery["status"] != store.FAILED or not store.grant_retry(runtime.engine, request_id, budget):
        return NOT_FAILED, delivery["status"]
    queue.remove_job(runtime.queue, request_id)
    queue.ensure_queued(runtime.queue, request_id)
    return REQUEUED, delivery["status"]


def queue_reopened(runtime: Runtime, request_ids: Sequence[str]) -> None:
    """Queues re-opened deliveries in one pipeline, clearing any job record they still have
    (a poison job in RQ's failed registry), as ``dispatcher retry ID`` does one by one."""
    if not request_ids:
        return
    states = queue.job_states(runtime.queue, list(request_ids))
    for request_id, (status, _worker) in zip(request_ids, states, strict=True):
        if status is not None:
            queue.remove_job(runtime.queue, request_id)
    queue.enqueue_new(runtime.queue, request_ids)


@dataclass
class RetryReport:
    matched: int
    dry_run: bool
    requeued: int = 0
    awaiting_reconcile: int = 0
    redis_error: str | None = None
    ids: IdList = field(default_factory=IdList)

    def as_dict(self) -> dict[str, Any]:
        return {
            "matched": self.matched,
            "requeued": self.requeued,
            "dry_run": self.dry_run,
            "awaiting_reconcile": self.awaiting_reconcile,
            "request_ids": self.ids.items,
            "request_ids_truncated": self.ids.truncated,
        }


def retry_failed(
    runtime: Runtime,
    selection: Selection,
    *,
    matched: int,
    dry_run: bool = False,
    progress: Progress | None = None,
    batch: int = BATCH_SIZE,
) -> RetryReport:
    """Re-queues every selected ``failed`` delivery (``selection.statuses`` is forced to failed).

    Each batch is re-opened in one transaction, then queued in one Redis pipeline. When Redis
    refuses, the re-opened deliveries are already durable as ``queued`` and reconcile queues
    them (workers run it every minute); the rest of the run then skips Redis and counts them in
    ``awaiting_reconcile``.
    """
    selection = replace(selection, statuses=(store.FAILED,))
    report = RetryReport(matched=matched, dry_run=dry_run)
    if dry_run:
        report.ids.extend([row["request_id"] for row in first_rows(runtime.engine, selection)])
        report.ids.truncated = matched > len(report.ids.items)
        return report
    settings = runtime.settings
    for page in pages(runtime.engine, selection, batch=batch):
        reopened = store.grant_retries(
            runtime.engine,
            [row.request_id for row in page],
            settings.delivery.max_attempts,
            settings.attempt_budgets(),
        )
        if reopened and report.redis_error is None:
            try:
                queue_reopened(runtime, reopened)
            except redis.RedisError as exc:
                report.redis_error = f"{type(exc).__name__}: {exc}"
                log_line(
                    logging.WARNING,
                    "redis unavailable during retry --failed; re-opened deliveries will be queued by reconcile",
                    error=report.redis_error,
                )
        if report.redis_error is not None:
            report.awaiting_reconcile += len(reopened)
        report.requeued += len(reopened)
        report.ids.extend(reopened)
        if progress:
            progress(len(page))
    return report


# --- replay ----------------------------------------------------------------------------------

REPLAY_ERRORS = (InvalidEventData, UnknownEvent, PayloadTooLarge)


@dataclass
class ReplayReport:
    matched: int
    dry_run: bool
    replayed: int = 0
    ids: IdList = field(default_factory=IdList)
    replays: IdList = field(default_factory=IdList)
    skipped: int = 0
    skipped_items: IdList = field(default_factory=IdList)

    def as_dict(self) -> dict[str, Any]:
        return {
            "matched": self.matched,
            "replayed": self.replayed,
            "dry_run": self.dry_run,
            "request_ids": self.ids.items,
            "request_ids_truncated": self.ids.truncated,
            "replays": self.replays.items,
            "skipped": self.skipped_items.items,
        }


def check_endpoint(runtime: Runtime, name: str) -> None:
    if runtime.settings.endpoint(name) is None:
        raise UnknownEndpoint(name, [e.name for e in runtime.settings.endpoints])


def _replay_source(row: Row) -> tuple[dict[str, Any], str]:
    """The original ``data`` and ``metadata.dispatched_by`` of a stored payload."""
    stored = json.loads(row.payload)
    data = stored["data"]
    if not isinstance(data, dict):
        raise ValueError("the stored payload's data is not an object")
    dispatched_by = (stored.get("metadata") or {}).get("dispatched_by") or "SYSTEM"
    return data, dispatched_by


def prepare_replays(
    runtime: Runtime, rows: Sequence[Row], endpoint: str
) -> tuple[list[store.NewDelivery], list[dict[str, str]]]:
    """New deliveries to ``endpoint`` for a page of originals (same event, ``data`` and
    ``dispatched_by``; ``replay_of`` the original), and the originals that cannot be replayed."""
    groups: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    skipped: list[dict[str, str]] = []
    for row in rows:
        try:
            data, dispatched_by = _replay_source(row)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            skipped.append({"request_id": row.request_id, "reason": f"stored payload is unusable: {exc}"})
            continue
        groups.setdefault((row.event, dispatched_by), []).append((row.request_id, data))
    new: list[store.NewDelivery] = []

    def build(event: str, by: str, items: list[tuple[str, dict[str, Any]]]) -> list[store.NewDelivery]:
        return prepare(
            runtime.settings,
            event,
            [data for _rid, data in items],
            dispatched_by=by,
            endpoints=[endpoint],
            replay_of=[rid for rid, _data in items],
        )

    for (event, by), items in groups.items():
        try:
            new.extend(build(event, by, items))
        except REPLAY_ERRORS:
            # One bad original must not hold back the others: retry them one by one.
            for item in items:
                try:
                    new.extend(build(event, by, [item]))
                except REPLAY_ERRORS as exc:
                    skipped.append({"request_id": item[0], "reason": str(exc)})
    return new, skipped


def replay(
    runtime: Runtime,
    selection: Selection,
    endpoint: str,
    *,
    matched: int,
    dry_run: bool = False,
    progress: Progress | None = None,
    batch: int = BATCH_SIZE,
) -> ReplayReport:
    """Re-sends the selected deliveries to ``endpoint`` as new deliveries (new request ids).

    ``selection.until`` must be set (the caller fixes it at the start, at the latest), so the
    replays this run creates, stamped later, never fall into the range it is reading.
    """
    if selection.until is None:
        raise ValueError("replay needs an upper bound on created_at")
    selection = replace(selection, endpoint=endpoint)
    report = ReplayReport(matched=matched, dry_run=dry_run)
    if dry_run:
        report.ids.extend([row["request_id"] for row in first_rows(runtime.engine, selection)])
        report.ids.truncated = matched > len(report.ids.items)
        return report
    for page in pages(runtime.engine, selection, ("request_id", "event", "payload"), batch=batch):
        new, skipped = prepare_replays(runtime, page, endpoint)
        store_and_queue(runtime, new)
        report.replayed += len(new)
        report.ids.extend([d.replay_of for d in new])
        report.replays.extend([{"replay_of": d.replay_of, "request_id": d.request_id} for d in new])
        report.skipped += len(skipped)
        report.skipped_items.extend(skipped)
        if progress:
            progress(len(page))
    return report


# --- prune -----------------------------------------------------------------------------------


def delete_final(
    engine: Engine, request_ids: Sequence[str], statuses: Sequence[str], cutoff: datetime
) -> tuple[int, int]:
    """Deletes, in one transaction, those of the deliveries still in a final status in
    ``statuses`` and last updated before ``cutoff``, with their attempt rows.

    The conditions are checked again by the DELETE itself, so a delivery re-opened since it
    was read (``dispatcher retry``) is kept, attempts and all. Returns (deliveries, attempts).
    """
    statuses = [s for s in statuses if s in store.FINAL_STATUSES]
    if not request_ids or not statuses:
        return 0, 0
    with engine.begin() as conn:
        deleted = list(
            conn.execute(
                D.delete()
                .where(D.c.request_id.in_(request_ids), D.c.status.in_(statuses), D.c.updated_at < cutoff)
                .returning(D.c.request_id)
            ).scalars()
        )
        if not deleted:
            return 0, 0
        attempts = conn.execute(
            store.ATTEMPTS.delete().where(store.ATTEMPTS.c.request_id.in_(deleted))
        ).rowcount
    return len(deleted), attempts


@dataclass
class PruneReport:
    matched: int
    matched_by_status: dict[str, int]
    cutoff: datetime
    statuses: tuple[str, ...]
    dry_run: bool
    deleted: int = 0
    attempts_deleted: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "matched": self.matched,
            "matched_by_status": self.matched_by_status,
            "deleted": self.deleted,
            "attempts_deleted": self.attempts_deleted,
            "dry_run": self.dry_run,
            "cutoff": self.cutoff,
            "statuses": list(self.statuses),
        }


def prune_selection(statuses: Sequence[str], cutoff: datetime) -> Selection:
    chosen = tuple(s for s in statuses if s in store.FINAL_STATUSES) or store.FINAL_STATUSES
    return Selection(statuses=chosen, updated_before=cutoff)


def prune(
    engine: Engine,
    selection: Selection,
    *,
    matched_by_status: dict[str, int],
    dry_run: bool = False,
    progress: Progress | None = None,
    batch: int = BATCH_SIZE,
) -> PruneReport:
    """Deletes the selected final deliveries (see :func:`prune_selection`) and their attempts."""
    if selection.updated_before is None or not set(selection.statuses) <= set(store.FINAL_STATUSES):
        raise ValueError("prune takes only final statuses and needs a cutoff")
    report = PruneReport(
        matched=sum(matched_by_status.values()),
        matched_by_status=matched_by_status,
        cutoff=selection.updated_before,
        statuses=selection.statuses,
        dry_run=dry_run,
    )
    if dry_run:
        return report
    for page in pages(engine, selection, order_by="updated_at", batch=batch):
        deleted, attempts = delete_final(
            engine, [row.request_id for row in page], selection.statuses, selection.updated_before
        )
        report.deleted += deleted
        report.attempts_deleted += attempts
        if progress:
            progress(len(page))
    return report
