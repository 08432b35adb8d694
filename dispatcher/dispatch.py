"""``dispatch()``: validate, wrap, store durably, then queue.

Order matters: every delivery is written to the database before its job goes to Redis. If the
database refuses, nothing is queued and :class:`StoreUnavailable` is raised. If Redis refuses
after the rows are stored, the call still succeeds (the process log says so) and reconcile
queues the deliveries later, keeping their request ids.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Container, Sequence
from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy.exc import SQLAlchemyError

from . import events, health, payload, queue, store
from .config import Endpoint, Settings
from .errors import InvalidEventData, PayloadTooLarge, StoreUnavailable, UnknownEndpoint
from .logs import log_line
from .runtime import Runtime, get_runtime


def _targets(settings: Settings, event: str, names: Sequence[str] | None) -> list[Endpoint]:
    if names is None:
        return [e for e in settings.endpoints if e.subscribes_to(event)]
    chosen = []
    for name in names:
        endpoint = settings.endpoint(name)
        if endpoint is None:
            raise UnknownEndpoint(name, [e.name for e in settings.endpoints])
        chosen.append(endpoint)
    return chosen


def _body_size(body: dict[str, Any], endpoint: Endpoint) -> int:
    size = len(payload.dumps(body).encode("utf-8"))
    if endpoint.include_key_in_body:
        size += len(payload.dumps({"webhook_key": endpoint.key}).encode("utf-8"))
    return size


def prepare(
    settings: Settings,
    event: str,
    items: Sequence[Any],
    *,
    dispatched_by: str = "SYSTEM",
    endpoints: Sequence[str] | None = None,
    replay_of: Sequence[str | None] | None = None,
    now: datetime | None = None,
    disabled: Container[str] = (),
) -> list[store.NewDelivery]:
    """Validates every item and builds its deliveries; nothing is stored. Deliveries to a
    ``disabled`` endpoint are built ``failed`` with reason ``endpoint_disabled``.

    Raises:
        UnknownEvent, InvalidEventData, UnknownEndpoint, PayloadTooLarge: before anything is stored.
    """
    if not isinstance(dispatched_by, str) or not dispatched_by:
        raise InvalidEventData(str(event), ["dispatched_by: expected a non-empty string"])
    events.get_event(event)
    cleaned: list[dict[str, Any]] = []
    problems: list[str] = []
    for index, data in enumerate(items):
        try:
            cleaned.append(events.validate(event, data))
        except InvalidEventData as exc:
            prefix = f"[{index}] " if len(items) > 1 else ""
            problems.extend(prefix + p for p in exc.problems)
    if problems:
        raise InvalidEventData(event, problems)
    targets = _targets(settings, event, endpoints)
    timestamp = events.format_utc(now or datetime.now(UTC))
    limit = settings.delivery.max_payload_bytes
    new: list[store.NewDelivery] = []
    for index, data in enumerate(cleaned):
        for endpoint in targets:
            request_id = str(uuid.uuid4())
            body = payload.build(
                event=event,
                timestamp=timestamp,
                data=data,
                source=settings.source,
                environment=settings.environment,
                request_id=request_id,
                dispatched_by=dispatched_by,
            )
            size = _body_size(body, endpoint)
            if size > limit:
                raise PayloadTooLarge(event, size, limit)
            new.append(
                store.NewDelivery(
                    request_id=request_id,
                    event=event,
                    endpoint=endpoint.name,
                    url=endpoint.url,
                    payload=payload.dumps(body),
                    attempt_limit=settings.delivery_for(endpoint).max_attempts,
                    replay_of=replay_of[index] if replay_of else None,
                    status=store.FAILED if endpoint.name in disabled else store.QUEUED,
                    reason=health.DISABLED_REASON if endpoint.name in disabled else None,
                )
            )
    return new


def _disabled(runtime: Runtime) -> Container[str]:
    try:
        return runtime.disabled.get()
    except SQLAlchemyError as exc:
        raise StoreUnavailable(
            f"could not read endpoint state from {store.safe_url(runtime.settings.database_url)}: "
            f"{store.describe_error(exc)}; nothing was dispatched"
        ) from exc


def store_and_queue(runtime: Runtime, deliveries: list[store.NewDelivery]) -> list[str]:
    """Stores the deliveries in one transaction, then queues them in one Redis pipeline."""
    if not deliveries:
        return []
    try:
        store.insert_deliveries(runtime.engine, deliveries)
    except SQLAlchemyError as exc:
        raise StoreUnavailable(
            f"could not store the deliveries in {store.safe_url(runtime.settings.database_url)}: "
            f"{store.describe_error(exc)}; nothing was dispatched"
        ) from exc
    request_ids = [d.request_id for d in deliveries]
    to_queue = [d.request_id for d in deliveries if d.status == store.QUEUED]
    try:
        queue.enqueue_new(runtime.queue, to_queue)
        queued = True
    except redis.RedisError as exc:
        queued = False
        log_line(
            logging.WARNING,
            "redis unavailable at dispatch; stored deliveries will be queued by reconcile",
            count=len(request_ids),
            error=f"{type(exc).__name__}: {exc}",
        )
    for d in deliveries:
        if d.status != store.QUEUED:
            log_line(
                logging.WARNING,
                "held back: endpoint disabled",
                request_id=d.request_id,
                event=d.event,
                endpoint=d.endpoint,
            )
            continue
        log_line(
            logging.INFO,
            "dispatched" if queued else "stored",
            request_id=d.request_id,
            event=d.event,
            endpoint=d.endpoint,
        )
    return request_ids


def dispatch(
    event: str,
    data: dict[str, Any],
    *,
    dispatched_by: str = "SYSTEM",
    endpoints: Sequence[str] | None = None,
) -> list[str]:
    """Validates the event, creates one delivery per subscribed endpoint, and returns their request ids.

    Args:
        event: one of the catalogue's six event names.
        data: the event's data, as documented in the seed.
        dispatched_by: ``metadata.dispatched_by``.
        endpoints: send only to these configured endpoints (by name) instead of every subscriber.

    Returns:
        One request id (uuid4) per delivery; ``[]`` when no endpoint subscribes to the event.

    Raises:
        UnknownEvent, InvalidEventData, UnknownEndpoint, PayloadTooLarge: nothing was stored or queued.
        StoreUnavailable: the database refused; nothing was stored or queued.
    """
    runtime = get_runtime()
    deliveries = prepare(
        runtime.settings,
        event,
        [data],
        dispatched_by=dispatched_by,
        endpoints=endpoints,
        disabled=_disabled(runtime),
    )
    return store_and_queue(runtime, deliveries)


def dispatch_many(
    event: str,
    items: Sequence[dict[str, Any]],
    *,
    dispatched_by: str = "SYSTEM",
    endpoints: Sequence[str] | None = None,
) -> list[str]:
    """Like :func:`dispatch` for many events of one kind: one validation pass, one database
    transaction, one Redis pipeline. All or nothing: one invalid item rejects the batch.

    Returns:
        The request ids, item by item, endpoint by endpoint.
    """
    runtime = get_runtime()
    deliveries = prepare(
        runtime.settings,
        event,
        list(items),
        dispatched_by=dispatched_by,
        endpoints=endpoints,
        disabled=_disabled(runtime),
    )
    return store_and_queue(runtime, deliveries)
