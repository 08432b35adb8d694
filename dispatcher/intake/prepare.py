"""From requests to the deliveries to store: every gate a way in passes, then the wrapper.

Every way in -- ``dispatch()``, ``dispatch_many()``, the outbox, ``dispatcher send``, replay,
the HTTP API -- hands intake a :class:`~dispatcher.intake.request.DispatchRequest` per event,
and :func:`prepare_request` is the one place their gates run: the caller's keys (:mod:`.keys`), who
dispatched, the data against the contract, the endpoints (each named one configured, else every
subscriber) and the idempotency key's fingerprint (:func:`admit`: what the caller gave), then
for each delivery the disabled rule (:mod:`.disabled`) and the payload's size (:func:`build`).

Nothing here touches the database or Redis: :func:`prepare_request` returns the rows to insert,
or raises before anything is stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Container, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..config import Endpoint, Settings
from ..contract import wrapper
from ..contract.catalogue import get_event
from ..contract.events import EventData
from ..contract.validation import validate, validated_model
from ..errors import InvalidEventData, PayloadTooLarge
from ..store import NewDelivery, search
from ..store.erasure import patient_keys
from ..store.idempotency import IdempotencyKey
from ..store.sealing import PLAIN, Keyring
from ..times import format_utc, utcnow
from ..vocabulary import DeliveryStatus, Reason
from . import keys
from .disabled import held_back
from .request import DEFAULT_DISPATCHED_BY, DispatchRequest


def targets(settings: Settings, event: str, names: Sequence[str] | None) -> list[Endpoint]:
    """The endpoints an event goes to: those named (each must exist), else every subscriber.

    Raises:
        UnknownEndpoint: a named endpoint is not configured.
    """
    if names is None:
        return [e for e in settings.endpoints if e.subscribes_to(event)]
    return [settings.require_endpoint(name) for name in names]


def check_dispatched_by(event: str, dispatched_by: object) -> None:
    """Raises InvalidEventData unless ``dispatched_by`` is a non-empty string that UTF-8 can
    carry (no lone surrogate)."""
    if not isinstance(dispatched_by, str) or not dispatched_by:
        raise InvalidEventData(str(event), ["dispatched_by: expected a non-empty string"])
    try:
        dispatched_by.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidEventData(
            str(event),
            [
                f"dispatched_by: contains a lone surrogate U+{ord(dispatched_by[exc.start]):04X} at index "
                f"{exc.start}, which UTF-8 cannot encode"
            ],
        ) from exc


def check_call(settings: Settings, event: str, endpoints: Sequence[str] | None, dispatched_by: str) -> None:
    """The gates of a call with no items at all (``dispatch_many(event, [])``): who
    dispatched, the event's name, the endpoints named."""
    check_dispatched_by(event, dispatched_by)
    get_event(event)
    targets(settings, event, endpoints)


def body_size(body: dict[str, Any], endpoint: Endpoint) -> int:
    """Bytes of the largest body an attempt to ``endpoint`` sends (its key counts, if in the body)."""
    size = len(wrapper.dumps(body).encode("utf-8"))
    if endpoint.include_key_in_body:
        size += len(wrapper.dumps({"webhook_key": endpoint.key}).encode("utf-8"))
    return size


def validated(event: str, items: Sequence[Any]) -> list[dict[str, Any]]:
    """The normalized data of every item (a mapping, or a model of this event), or one error
    naming every bad field of every item (prefixed ``[index]`` when there are several)."""
    model = get_event(event)
    cleaned: list[dict[str, Any]] = []
    problems: list[str] = []
    for index, data in enumerate(items):
        try:
            if isinstance(data, model):
                cleaned.append(validated_model(data))
            elif isinstance(data, EventData):
                raise InvalidEventData(
                    event, [f"data: an event model {type(data).__name__}, not the data of {event}"]
                )
            else:
                cleaned.append(validate(event, data))
        except InvalidEventData as exc:
            prefix = f"[{index}] " if len(items) > 1 else ""
            problems.extend(prefix + p for p in exc.problems)
    if problems:
        raise InvalidEventData(event, problems)
    return cleaned


@dataclass(frozen=True)
class Admitted:
    """A request past the gates that need no endpoint state (:func:`admit`)."""

    request: DispatchRequest
    data: dict[str, Any]
    """Its data, validated and normalized."""
    endpoints: list[Endpoint]
    idempotency: IdempotencyKey | None
    """Its idempotency key as the log stores it, with its fingerprint."""
    repeat: bool
    """It repeats an earlier request's idempotency key in the same call: it gets no deliveries."""


def admit(
    settings: Settings, requests: Sequence[DispatchRequest], keyring: Keyring = PLAIN
) -> list[Admitted]:
    """The gates every request passes before anything is built: its keys, who dispatched it,
    its data (all the requests of one call are of one event, validated in one pass), its
    endpoints, and its idempotency key against the others' in the call.

    Raises:
        UnknownEvent, InvalidEventData, UnknownEndpoint, InvalidDispatchArgument,
        IdempotencyConflict: naming what is wrong.
    """
    if not requests:
        return []
    event = _one_event(requests)
    for request in requests:
        if request.ordering_key is not None:
            keys.check_key("ordering_key", request.ordering_key)
        if request.idempotency_key is not None:
            keys.check_key("idempotency_key", request.idempotency_key)
        check_dispatched_by(event, request.dispatched_by)
    cleaned = validated(event, [r.data for r in requests])
    chosen = [targets(settings, event, r.endpoints) for r in requests]
    idempotent = [_idempotency(keyring, r, data) for r, data in zip(requests, cleaned, strict=True)]
    repeats = keys.repeats_within(idempotent)
    return [
        Admitted(request, data, endpoints, key, index in repeats)
        for index, (request, data, endpoints, key) in enumerate(
            zip(requests, cleaned, chosen, idempotent, strict=True)
        )
    ]


def prepare_request(
    settings: Settings,
    requests: Sequence[DispatchRequest],
    *,
    disabled: Container[str],
    keyring: Keyring = PLAIN,
    now: datetime | None = None,
) -> list[NewDelivery]:
    """Every request's deliveries, one per endpoint, after every gate; nothing is stored. All
    or nothing: one request refused refuses the call. :func:`admit`, then :func:`build`.

    Raises:
        UnknownEvent, InvalidEventData, UnknownEndpoint, PayloadTooLarge, InvalidDispatchArgument,
        IdempotencyConflict: before anything is stored.
    """
    return build(settings, admit(settings, requests, keyring), disabled, keyring, now)


def build(
    settings: Settings,
    admitted: Sequence[Admitted],
    disabled: Container[str],
    keyring: Keyring,
    now: datetime | None = None,
) -> list[NewDelivery]:
    """The deliveries of admitted requests, one per endpoint, each wrapped and its size checked.
    A delivery to a ``disabled`` endpoint (no default: every way in gives it) is built
    ``failed`` with reason ``endpoint_disabled`` (:mod:`dispatcher.intake.disabled`). Each
    carries the keyed hashes of its patient and encounter ids (``keyring``), by which erasure
    finds it, those of its business ids under ``settings.search_key`` (none without one), by
    which a search finds it, its request's ordering key for an ordered endpoint, its
    idempotency key, and its request's index (``item``). A request repeating an earlier one's idempotency key gets no
    deliveries (the earlier one's stand).

    Raises:
        PayloadTooLarge: a body over ``delivery.max_payload_bytes``; nothing is stored.
    """
    timestamp = format_utc(now or utcnow())
    new: list[NewDelivery] = []
    for index, one in enumerate(admitted):
        if one.repeat:
            continue
        patient_key, encounter_key = patient_keys(keyring, one.data)
        business_keys = search.business_keys(settings.search_key, one.data)
        for endpoint in one.endpoints:
            new.append(
                _delivery(
                    settings,
                    one,
                    endpoint,
                    timestamp,
                    held=held_back(endpoint.name, disabled),
                    patient_key=patient_key,
                    encounter_key=encounter_key,
                    business_keys=business_keys,
                    ordering=keys.ordering_for(keyring, endpoint, one.data, one.request.ordering_key),
                    item=index,
                )
            )
    return new


def one_per_item(
    event: str,
    items: Sequence[Any],
    *,
    dispatched_by: str = DEFAULT_DISPATCHED_BY,
    endpoints: Sequence[str] | None = None,
    ordering_keys: Sequence[str | None] | None = None,
    idempotency_keys: Sequence[str | None] | None = None,
    replay_of: Sequence[str | None] | None = None,
) -> list[DispatchRequest]:
    """A request for each item of one event, all to the same endpoints and by the same
    dispatcher; ``ordering_keys``, ``idempotency_keys`` and ``replay_of``: one per item, or None.

    Raises:
        InvalidDispatchArgument: a list of keys not one per item, or a bad key, named by its
            list and index (``ordering_keys[2]``).
    """
    ordering = keys.checked_keys("ordering_keys", ordering_keys, len(items))
    given = keys.checked_keys("idempotency_keys", idempotency_keys, len(items))
    return [
        DispatchRequest(
            event,
            item,
            endpoints=endpoints,
            dispatched_by=dispatched_by,
            idempotency_key=given[index],
            ordering_key=ordering[index],
            replay_of=replay_of[index] if replay_of else None,
        )
        for index, item in enumerate(items)
    ]


def _one_event(requests: Sequence[DispatchRequest]) -> str:
    """The event every request of one call names (one validation pass, one error)."""
    events = {request.event for request in requests}
    if len(events) > 1:
        raise ValueError(f"one event per call, got {len(events)}: prepare each event's requests apart")
    return requests[0].event


def _idempotency(keyring: Keyring, request: DispatchRequest, data: dict[str, Any]) -> IdempotencyKey | None:
    """The stored form of a request's idempotency key, fingerprinting all it covers (or None)."""
    if request.idempotency_key is None:
        return None
    return keys.idempotency_for(
        keyring,
        request.event,
        data,
        request.idempotency_key,
        endpoints=request.endpoints,
        ordering_key=request.ordering_key,
        dispatched_by=request.dispatched_by,
    )


def _delivery(
    settings: Settings, admitted: Admitted, endpoint: Endpoint, timestamp: str, held: bool, **marks: Any
) -> NewDelivery:
    """One request's delivery to one endpoint, its wrapper built and its size checked;
    ``marks`` are the rest of its fields (patient and business keys, ordering, item)."""
    request = admitted.request
    request_id = str(uuid.uuid4())
    body = wrapper.build(
        event=request.event,
        timestamp=timestamp,
        data=admitted.data,
        source=settings.source,
        environment=settings.environment,
        request_id=request_id,
        dispatched_by=request.dispatched_by,
    )
    _check_size(settings, request.event, body, endpoint)
    return NewDelivery(
        request_id=request_id,
        event=request.event,
        endpoint=endpoint.name,
        url=endpoint.url,
        payload=wrapper.dumps(body),
        attempt_limit=settings.delivery_for(endpoint).max_attempts,
        status=DeliveryStatus.FAILED if held else DeliveryStatus.QUEUED,
        reason=Reason.ENDPOINT_DISABLED if held else None,
        replay_of=request.replay_of,
        idempotency=admitted.idempotency,
        **marks,
    )


def _check_size(settings: Settings, event: str, body: dict[str, Any], endpoint: Endpoint) -> None:
    limit = settings.delivery.max_payload_bytes
    size = body_size(body, endpoint)
    if size > limit:
        raise PayloadTooLarge(event, size, limit)
