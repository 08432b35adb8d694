"""``dispatch()``: validate, wrap, store durably, then queue.

Order matters: every delivery is written to the database before its job goes to Redis. If the
database refuses, nothing is queued and :class:`StoreUnavailable` is raised. If Redis refuses
after the rows are stored, the call still succeeds (the process log says so) and reconcile
queues the deliveries later, keeping their request ids.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import redis
from sqlalchemy.exc import SQLAlchemyError

from .. import queue, store, telemetry
from ..contract.events import EventData
from ..errors import DispatcherError, StoreUnavailable, UnknownEndpoint
from ..logs import log_line
from ..policy.ordering import PARK_SECONDS
from ..runtime import Runtime, get_runtime
from ..times import utcnow
from ..vocabulary import DeliveryStatus
from .disabled import disabled_endpoints
from .prepare import admit, build, check_call, one_per_item
from .request import DEFAULT_DISPATCHED_BY, DispatchRequest

T = TypeVar("T")


def store_and_queue(
    runtime: Runtime,
    deliveries: list[store.NewDelivery],
    item_keys: Sequence[str | None] = (),
    parents: Sequence[Any] = (),
    events: Mapping[int, str] | None = None,
) -> list[str]:
    """Stores the deliveries in one transaction, then queues them in one Redis pipeline.
    Returns the request ids item by item (``item_keys``: each item's idempotency key, or None):
    an item whose key was used already gets the first dispatch's ids, and nothing is stored or
    queued for it. ``events``: each item's event, for its ``dispatch`` span even when no
    endpoint subscribes (``webhook.deliveries`` 0: the trace that says why nothing went)."""
    if not deliveries:
        traces = telemetry.dispatch_traces(events, parents) if events else None
        if traces is not None:
            traces.end({})
        return ids_by_item([], {}, item_keys)
    stored = store_then_queue(runtime, deliveries, parents, events)
    return ids_by_item(stored.rows, stored.repeated, item_keys)


def store_then_queue(
    runtime: Runtime,
    deliveries: list[store.NewDelivery],
    parents: Sequence[Any] = (),
    events: Mapping[int, str] | None = None,
) -> store.Stored:
    """:func:`store_and_queue`'s work: what the transaction stored and what it found repeated.
    Each event's ``dispatch`` span (while telemetry is on) covers both, a child of its item's
    ``parents`` entry when given, else of the current span.

    Raises:
        StoreUnavailable: the database refused; nothing was dispatched.
        IdempotencyConflict: a key was used for another dispatch; nothing was dispatched.
    """
    traces = None
    if telemetry.enabled():  # off: not even the items are walked
        traces = telemetry.dispatch_traces(events or {d.item: d.event for d in deliveries}, parents)
    try:
        stored = store.insert_deliveries(
            runtime.engine, deliveries, idempotency_ttl=runtime.settings.idempotency_ttl_seconds
        )
    except SQLAlchemyError as exc:
        if traces is not None:
            traces.end({}, type(exc).__name__)
        raise StoreUnavailable(
            f"could not store the deliveries in {store.safe_url(runtime.settings.database_url)}: "
            f"{store.describe_error(exc)}; nothing was dispatched"
        ) from exc
    except BaseException as exc:
        if traces is not None:
            traces.end({}, type(exc).__name__)
        raise
    log_stored(stored, queue_stored(runtime, stored, traces))
    if traces is not None:
        traces.end(Counter(d.item for d in stored.rows))
    for given, ids in stored.repeated.items():
        log_line(logging.INFO, "idempotent repeat: nothing dispatched", request_ids=",".join(ids))
        del given  # the caller's key is not logged: it may name a patient
    return stored


def log_stored(stored: store.Stored, queued: bool, **extra: str) -> None:
    """One process-log line per new delivery: dispatched (or only stored, when Redis refused),
    or held back for its disabled endpoint."""
    said = "dispatched" if queued else "stored"
    for d in stored.rows:
        held = d.status != DeliveryStatus.QUEUED
        level, message = (logging.WARNING, "held back: endpoint disabled") if held else (logging.INFO, said)
        log_line(level, message, request_id=d.request_id, event=d.event, endpoint=d.endpoint, **extra)


def queue_stored(
    runtime: Runtime, stored: store.Stored, traces: telemetry.DispatchTraces | None = None
) -> bool:
    """Queues the new deliveries: each now, except one waiting behind an earlier pending
    delivery of its ordering key, whose job is scheduled to look again later (the worker that
    finishes the one before wakes it sooner). False when Redis refused (reconcile queues them)."""
    rows = stored.rows
    to_queue = [d.request_id for d in rows if d.status == DeliveryStatus.QUEUED]
    waiting = {d.request_id for d in rows if d.ordering is not None and d.request_id not in stored.heads}
    contexts = _contexts(rows, traces)
    try:
        queue.enqueue_new(runtime.queue, [rid for rid in to_queue if rid not in waiting], contexts)
        waiting &= set(to_queue)
        if waiting:
            queue.schedule_new(runtime.queue, sorted(waiting), timedelta(seconds=PARK_SECONDS), contexts)
        if stored.recheck:  # the one before finished while this was being stored: go now
            woken = store.ordering.heads_among(runtime.engine, stored.recheck)
            if woken:
                queue.wake(runtime.queue, sorted(woken))
        return True
    except (redis.RedisError, SQLAlchemyError) as exc:
        log_line(
            logging.WARNING,
            "redis unavailable at dispatch; stored deliveries will be queued by reconcile",
            count=len(to_queue),
            error=f"{type(exc).__name__}: {exc}",
        )
        return False


def _contexts(rows: list[store.NewDelivery], traces: telemetry.DispatchTraces | None) -> dict[str, str]:
    """Each delivery's event's ``dispatch`` span context, for its job to carry."""
    if traces is None:
        return {}
    contexts = {}
    for row in rows:
        context = traces.carrier(row.item)
        if context:
            contexts[row.request_id] = context
    return contexts


def ids_by_item(
    rows: list[store.NewDelivery], repeated: Mapping[str, list[str]], item_keys: Sequence[str | None]
) -> list[str]:
    """The request ids in item order: an item's own deliveries, or for an item whose key was
    used (before, or by an earlier item of this call) the ids stored for that key."""
    own: dict[int, list[str]] = {}
    for row in rows:
        own.setdefault(row.item, []).append(row.request_id)
    by_key = dict(repeated)
    ids: list[str] = []
    for item in range(max([len(item_keys), *(r.item + 1 for r in rows)], default=0)):
        key = item_keys[item] if item < len(item_keys) else None
        mine = own.get(item)
        if mine is None and key is not None:
            mine = by_key.get(key, [])
        if key is not None:
            by_key.setdefault(key, mine or [])
        ids.extend(mine or [])
    return ids


def prepare_for(runtime: Runtime, requests: Sequence[DispatchRequest]) -> list[store.NewDelivery]:
    """The requests' deliveries (:func:`~dispatcher.intake.prepare.prepare_request`: every
    gate); nothing is stored. What the caller gave is checked before the endpoints' state is
    read (through the process's cache)."""
    admitted = admit(runtime.settings, requests, runtime.keyring)
    return build(runtime.settings, admitted, disabled_endpoints(runtime), runtime.keyring)


def dispatch_requests(runtime: Runtime, requests: Sequence[DispatchRequest]) -> list[str]:
    """Stores the requests' deliveries in one transaction, then queues them in one Redis
    pipeline; all or nothing. Returns the request ids request by request, endpoint by endpoint
    (a request repeating an idempotency key: the first dispatch's)."""
    prepared = with_current_endpoints(runtime, lambda: prepare_for(runtime, requests))
    keys = [r.idempotency_key for r in requests]
    if not telemetry.enabled():  # off: no per-item work for traces
        return store_and_queue(runtime, prepared, keys)
    parents, events = [r.trace for r in requests], {i: r.event for i, r in enumerate(requests)}
    return store_and_queue(runtime, prepared, keys, parents, events)


def with_current_endpoints(runtime: Runtime, step: Callable[[], T]) -> T:
    """``step`` with the database's endpoints in force (an endpoint added a moment ago by an
    operator gets the next event): looked at once the database is open, at most every second,
    and once more before an endpoint named is refused as unknown."""
    try:
        runtime.engine  # noqa: B018 - dispatching stores in it anyway; opened here to read the endpoints
    except DispatcherError:
        return step()  # storing will say what is wrong, with nothing dispatched
    runtime.refresh_endpoints()
    try:
        return step()
    except UnknownEndpoint:
        if not runtime.refresh_endpoints(force=True):  # not added a moment ago either
            raise
        return step()


def dispatch_request(runtime: Runtime, request: DispatchRequest) -> list[str]:
    """One request, from ``dispatch()``, ``dispatcher send`` or the HTTP API: a repeat of a live
    idempotency key returns the first dispatch's request ids (a read before anything is built;
    the insert decides a race), else :func:`dispatch_requests`. Raises as :func:`dispatch`."""
    earlier = with_current_endpoints(runtime, lambda: _earlier(runtime, request))
    if earlier is not None:
        log_line(logging.INFO, "idempotent repeat: nothing dispatched", request_ids=",".join(earlier))
        return earlier
    return dispatch_requests(runtime, [request])


def _earlier(runtime: Runtime, request: DispatchRequest) -> list[str] | None:
    """The request ids of a live first dispatch with the request's idempotency key, or None
    (none given, none recorded, or recorded too long ago)."""
    if request.idempotency_key is None:
        return None
    (admitted,) = admit(runtime.settings, [request], runtime.keyring)
    assert admitted.idempotency is not None  # a request with a key has its stored form
    try:
        return store.idempotency.repeated(
            runtime.engine, admitted.idempotency, utcnow(), runtime.settings.idempotency_ttl_seconds
        )
    except SQLAlchemyError as exc:
        raise StoreUnavailable(
            f"could not read idempotency keys from {store.safe_url(runtime.settings.database_url)}: "
            f"{store.describe_error(exc)}; nothing was dispatched"
        ) from exc


def dispatch(
    event: str | EventData,
    data: Mapping[str, Any] | None = None,
    *,
    dispatched_by: str = DEFAULT_DISPATCHED_BY,
    endpoints: Sequence[str] | None = None,
    idempotency_key: str | None = None,
    ordering_key: str | None = None,
) -> list[str]:
    """Validates the event, creates one delivery per subscribed endpoint, and returns their request ids.

    Args:
        event: one of the catalogue's six event names, or an event's model
            (``dispatch(OrderChanged(...))``; its name comes from the model).
        data: the event's data, as documented in the seed (not with a model).
        dispatched_by: ``metadata.dispatched_by``.
        endpoints: send only to these configured endpoints (by name) instead of every subscriber.
        idempotency_key: up to 255 characters. A repeat with the same key within
            ``idempotency_ttl`` returns the first call's request ids and stores, queues and
            sends nothing; the repeat must be the same dispatch -- event, data, ``endpoints``,
            ``ordering_key`` and ``dispatched_by`` -- or it is an IdempotencyConflict. After
            ``idempotency_ttl`` the key is free again (a use makes new deliveries).
        ordering_key: for endpoints with ``ordered: true``, the key whose deliveries arrive in
            dispatch order (default: the first of the endpoint's ``ordering_fields`` in the data).

    Returns:
        One request id (uuid4) per delivery; ``[]`` when no endpoint subscribes to the event.

    Raises:
        UnknownEvent, InvalidEventData, UnknownEndpoint, PayloadTooLarge, InvalidDispatchArgument:
            nothing was stored or queued.
        IdempotencyConflict: the key was used for another dispatch (another event, other
            data, other endpoints, ordering key or dispatched_by); nothing was stored or queued.
        StoreUnavailable: the database refused; nothing was stored or queued.
    """
    runtime = get_runtime()
    request = DispatchRequest.of(event, data, endpoints, dispatched_by, idempotency_key, ordering_key)
    return dispatch_request(runtime, request)


def dispatch_many(
    event: str,
    items: Sequence[Mapping[str, Any] | EventData],
    *,
    dispatched_by: str = DEFAULT_DISPATCHED_BY,
    endpoints: Sequence[str] | None = None,
    idempotency_keys: Sequence[str | None] | None = None,
    ordering_keys: Sequence[str | None] | None = None,
) -> list[str]:
    """Like :func:`dispatch` for many events of one kind: one validation pass, one database
    transaction, one Redis pipeline. All or nothing: one invalid item (or a key that conflicts)
    rejects the batch. Each item is the event's data, or its model. ``idempotency_keys`` and
    ``ordering_keys``: one per item (None for an item without), as :func:`dispatch`'s.

    Returns:
        The request ids, item by item, endpoint by endpoint (an item repeating a key: the first
        dispatch's).
    """
    runtime = get_runtime()
    requests = one_per_item(
        event,
        list(items),
        dispatched_by=dispatched_by,
        endpoints=endpoints,
        ordering_keys=ordering_keys,
        idempotency_keys=idempotency_keys,
    )
    if not requests:  # nothing to send, but a wrong event, endpoint or dispatched_by is named
        check_call(runtime.settings, event, endpoints, dispatched_by)
    return dispatch_requests(runtime, requests)
