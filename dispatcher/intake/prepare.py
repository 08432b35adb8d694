"""From a caller's event to the deliveries to store: validate, choose the endpoints, wrap.

Nothing here touches the database or Redis: :func:`prepare` returns the rows to insert, or
raises before anything is stored.
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
from ..store import NewDelivery
from ..store.erasure import patient_keys
from ..store.sealing import PLAIN, Keyring
from ..times import format_utc, utcnow
from ..vocabulary import DeliveryStatus, Reason
from . import keys
from .disabled import held_back


def targets(settings: Settings, event: str, names: Sequence[str] | None) -> list[Endpoint]:
    """The endpoints an event goes to: those named (each must exist), else every subscriber.

    Raises:
        UnknownEndpoint: a named endpoint is not configured.
    """
    if names is None:
        return [e for e in settings.endpoints if e.subscribes_to(event)]
    return [settings.require_endpoint(name) for name in names]


def check_dispatched_by(event: str, dispatched_by: object) -> None:
    """Raises InvalidEventData unless ``dispatched_by`` is a non-empty string."""
    if not isinstance(dispatched_by, str) or not dispatched_by:
        raise InvalidEventData(str(event), ["dispatched_by: expected a non-empty string"])


def body_size(body: dict[str, Any], endpoint: Endpoint) -> int:
    """Bytes of the largest body an attempt to ``endpoint`` sends (its key counts, if in the body)."""
    size = len(wrapper.dumps(body).encode("utf-8"))
    if endpoint.include_key_in_body:
        size += len(wrapper.dumps({"webhook_key": endpoint.key}).encode("utf-8"))
    return size


def event_and_data(event: str | EventData, data: Any = None) -> tuple[str, Any]:
    """``dispatch``'s two ways in: an event name and its data, or an event's model."""
    if isinstance(event, EventData):
        if data is not None:
            raise InvalidEventData(
                event.event, ["data: give an event model, or an event name and its data, not both"]
            )
        return event.event, event
    return event, data


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


def prepare(
    settings: Settings,
    event: str,
    items: Sequence[Any],
    *,
    dispatched_by: str = "SYSTEM",
    endpoints: Sequence[str] | None = None,
    replay_of: Sequence[str | None] | None = None,
    now: datetime | None = None,
    disabled: Container[str],
    keyring: Keyring = PLAIN,
    ordering_keys: Sequence[str | None] | None = None,
    idempotency_keys: Sequence[str | None] | None = None,
    key_names: tuple[str, str] = ("ordering_keys", "idempotency_keys"),
) -> list[NewDelivery]:
    """Validates every item and builds its deliveries; nothing is stored. Deliveries to a
    ``disabled`` endpoint (no default: every way in gives it) are built ``failed`` with reason
    ``endpoint_disabled`` (:mod:`dispatcher.intake.disabled`). Each carries the keyed hashes of
    its patient and encounter ids (``keyring``), by which erasure finds it, its item's ordering
    key for an ordered endpoint and its item's idempotency key. An item repeating an earlier
    item's idempotency key gets no deliveries (the earlier one's stand).

    Raises:
        UnknownEvent, InvalidEventData, UnknownEndpoint, PayloadTooLarge, InvalidDispatchArgument,
        IdempotencyConflict: before anything is stored.
    """
    check_dispatched_by(event, dispatched_by)
    cleaned = validated(event, items)
    chosen = targets(settings, event, endpoints)
    ordering_given = keys.checked_keys(key_names[0], ordering_keys, len(cleaned))
    given = keys.checked_keys(key_names[1], idempotency_keys, len(cleaned))
    idempotent = [
        None if k is None else keys.idempotency_for(keyring, event, d, k, **scope)
        for k, d, scope in zip(given, cleaned, _scopes(endpoints, ordering_given, dispatched_by), strict=True)
    ]
    repeats = keys.repeats_within(idempotent)
    stamp = _Stamp(format_utc(now or utcnow()), dispatched_by)
    new: list[NewDelivery] = []
    for index, data in enumerate(cleaned):
        if index in repeats:
            continue
        patient_key, encounter_key = patient_keys(keyring, data)
        for endpoint in chosen:
            new.append(
                _delivery(
                    settings,
                    event,
                    endpoint,
                    data,
                    stamp,
                    held=held_back(endpoint.name, disabled),
                    replay_of=replay_of[index] if replay_of else None,
                    patient_key=patient_key,
                    encounter_key=encounter_key,
                    ordering=keys.ordering_for(keyring, endpoint, data, ordering_given[index]),
                    idempotency=idempotent[index],
                    item=index,
                )
            )
    return new


def _scopes(
    endpoints: Sequence[str] | None, ordering_keys: list[str | None], dispatched_by: str
) -> list[dict[str, Any]]:
    """Each item's part of its idempotency fingerprint besides its event and data."""
    return [
        {"endpoints": endpoints, "ordering_key": key, "dispatched_by": dispatched_by} for key in ordering_keys
    ]


@dataclass(frozen=True)
class _Stamp:
    """What every delivery of one call shares: its timestamp and who dispatched it."""

    timestamp: str
    dispatched_by: str


def _delivery(
    settings: Settings,
    event: str,
    endpoint: Endpoint,
    data: dict[str, Any],
    stamp: _Stamp,
    held: bool,
    **marks: Any,
) -> NewDelivery:
    """One item's delivery to one endpoint, its wrapper built and its size checked; ``marks``
    are the rest of its fields (replay, patient keys, ordering, idempotency, item)."""
    request_id = str(uuid.uuid4())
    body = wrapper.build(
        event=event,
        timestamp=stamp.timestamp,
        data=data,
        source=settings.source,
        environment=settings.environment,
        request_id=request_id,
        dispatched_by=stamp.dispatched_by,
    )
    _check_size(settings, event, body, endpoint)
    return NewDelivery(
        request_id=request_id,
        event=event,
        endpoint=endpoint.name,
        url=endpoint.url,
        payload=wrapper.dumps(body),
        attempt_limit=settings.delivery_for(endpoint).max_attempts,
        status=DeliveryStatus.FAILED if held else DeliveryStatus.QUEUED,
        reason=Reason.ENDPOINT_DISABLED if held else None,
        **marks,
    )


def _check_size(settings: Settings, event: str, body: dict[str, Any], endpoint: Endpoint) -> None:
    limit = settings.delivery.max_payload_bytes
    size = body_size(body, endpoint)
    if size > limit:
        raise PayloadTooLarge(event, size, limit)
