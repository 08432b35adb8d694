"""Baremeds outgoing webhooks, the sending side.

``dispatch(event, data)`` validates an event against the catalogue, wraps it in the seed's
standard payload, stores one delivery per subscribed endpoint and queues it on the
``send-webhook-request`` RQ queue; workers POST it, retry what may be retried, and record
every attempt in ``WebhookEventTransactionLog``. ARCHITECTURE.md maps the rooms.

The names below are the public API (a test pins them). Each is imported on first use, so
``import dispatcher`` (and the ``dispatcher`` command) loads no database or Redis library until
one is needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    ConfigError,
    DeliveryNotFound,
    DispatcherError,
    InvalidEventData,
    PayloadTooLarge,
    StoreUnavailable,
    UnknownEndpoint,
    UnknownEvent,
)
from .vocabulary import EVENT_NAMES

if TYPE_CHECKING:
    from .contract.catalogue import CATALOGUE
    from .intake.dispatch import dispatch, dispatch_many
    from .intake.outbox import dispatch_in_transaction

_LAZY = {
    "CATALOGUE": "dispatcher.contract.catalogue",
    "dispatch": "dispatcher.intake.dispatch",
    "dispatch_many": "dispatcher.intake.dispatch",
    "dispatch_in_transaction": "dispatcher.intake.outbox",
}

__all__ = [
    "CATALOGUE",
    "EVENT_NAMES",
    "ConfigError",
    "DeliveryNotFound",
    "DispatcherError",
    "InvalidEventData",
    "PayloadTooLarge",
    "StoreUnavailable",
    "UnknownEndpoint",
    "UnknownEvent",
    "dispatch",
    "dispatch_in_transaction",
    "dispatch_many",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dispatcher' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
