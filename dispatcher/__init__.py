"""Baremeds outgoing webhooks, the sending side.

``dispatch(event, data)`` validates an event against the catalogue, wraps it in the seed's
standard payload, stores one delivery per subscribed endpoint and queues it on the
``send-webhook-request`` RQ queue; workers POST it, retry what may be retried, and record
every attempt in ``WebhookEventTransactionLog``.
"""

from .dispatch import dispatch, dispatch_many
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
from .events import CATALOGUE, EVENT_NAMES

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
    "dispatch_many",
]
