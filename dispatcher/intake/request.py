"""One event on its way in, as every way in hands it to intake: :class:`DispatchRequest`.

``dispatch()``, ``dispatch_many()`` (one request per item), the outbox, ``dispatcher send``,
replay and the HTTP API each say what they were asked in one of these, and nothing more;
:func:`dispatcher.intake.prepare.prepare_request` runs every gate on it (nothing here checks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..contract.events import EventData
from ..errors import InvalidEventData

DEFAULT_DISPATCHED_BY = "SYSTEM"
"""``metadata.dispatched_by`` when a caller names no one."""


@dataclass(frozen=True)
class DispatchRequest:
    """One event to dispatch, as its caller gave it (checked by ``prepare_request``, not here).

    Attributes:
        event: the event's name (one of the catalogue's).
        data: the event's data, or its model (``OrderChanged(...)``).
        endpoints: send only to these configured endpoints (by name); None: every subscriber.
        dispatched_by: ``metadata.dispatched_by``.
        idempotency_key: a repeat with this key returns the first dispatch's request ids.
        ordering_key: for ordered endpoints, the key whose deliveries arrive in dispatch order
            (None: the first of the endpoint's ``ordering_fields`` in the data).
        replay_of: for a replay, the request_id of the delivery it re-sends.
        trace: the context its ``dispatch`` span is a child of, when the request is stored on
            another thread than its caller's (the HTTP API's); None: the current span's.
    """

    event: str
    data: Mapping[str, Any] | EventData | None
    endpoints: Sequence[str] | None = None
    dispatched_by: str = DEFAULT_DISPATCHED_BY
    idempotency_key: str | None = None
    ordering_key: str | None = None
    replay_of: str | None = None
    trace: Any = field(default=None, compare=False)

    @classmethod
    def of(
        cls,
        event: str | EventData,
        data: Mapping[str, Any] | None = None,
        endpoints: Sequence[str] | None = None,
        dispatched_by: str = DEFAULT_DISPATCHED_BY,
        idempotency_key: str | None = None,
        ordering_key: str | None = None,
    ) -> DispatchRequest:
        """A request named as ``dispatch()`` takes it: an event's name and its data, or its
        model (the rest as the fields, in their order).

        Raises:
            InvalidEventData: a model and data both.
        """
        if not isinstance(event, EventData):
            return cls(event, data, endpoints, dispatched_by, idempotency_key, ordering_key)
        if data is not None:
            raise InvalidEventData(
                event.event, ["data: give an event model, or an event name and its data, not both"]
            )
        return cls(event.event, event, endpoints, dispatched_by, idempotency_key, ordering_key)
