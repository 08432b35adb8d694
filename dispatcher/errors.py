"""Typed errors. Each message names what was wrong and, where it helps, what to do."""

from __future__ import annotations

from collections.abc import Sequence


class DispatcherError(Exception):
    """Base class for every error this package raises on purpose."""


class ConfigError(DispatcherError, ValueError):
    """The configuration is invalid; the message names the setting."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"config: {setting}: {problem}")


class UnknownEvent(DispatcherError, ValueError):
    """The event name is not one of the catalogue's events."""

    def __init__(self, event: object, known: Sequence[str]) -> None:
        self.event = event
        super().__init__(f"unknown event {event!r}; expected one of: {', '.join(known)}")


class InvalidEventData(DispatcherError, ValueError):
    """The event's data does not match the catalogue; every bad field is named by its path."""

    def __init__(self, event: str, problems: list[str]) -> None:
        self.event = event
        self.problems = problems
        super().__init__(f"invalid data for event {event!r}: " + "; ".join(problems))


class PayloadTooLarge(DispatcherError, ValueError):
    """The serialized body is larger than `delivery.max_payload_bytes`."""

    def __init__(self, event: str, size: int, limit: int) -> None:
        super().__init__(
            f"payload for event {event!r} is {size} bytes, more than delivery.max_payload_bytes ({limit})"
        )


class UnknownEndpoint(DispatcherError, ValueError):
    """An endpoint name that is not configured."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(f"unknown endpoint {name!r}; configured: {', '.join(known) or '(none)'}")


class StoreUnavailable(DispatcherError):
    """The log database could not be reached; nothing was dispatched."""


class DeliveryNotFound(DispatcherError, LookupError):
    """No delivery has that request_id."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(f"no delivery with request_id {request_id}")


class PoisonJob(DispatcherError):
    """A queued job that can never succeed (missing row, unusable payload); failed, never retried."""


class SchemaMismatch(DispatcherError):
    """The log database is not at the schema revision this version needs; nothing was changed."""


class SchemaOutdated(SchemaMismatch):
    """The log database is behind this version's schema: ``run: dispatcher db upgrade``."""


class SchemaUnknown(SchemaMismatch):
    """The log database is at a revision this version does not know (a newer version made it)."""


class IdempotencyConflict(DispatcherError, ValueError):
    """The idempotency key was used, within ``idempotency_ttl``, for another dispatch: another
    event, other data, other ``endpoints``, another ``ordering_key`` or ``dispatched_by``."""

    def __init__(self, key: str) -> None:
        self.key = key
        shown = key if len(key) <= 80 else key[:77] + "..."
        super().__init__(
            f"idempotency_key {shown!r} was already used for a different dispatch (event, data, "
            "endpoints, ordering_key or dispatched_by) within idempotency_ttl; nothing was "
            "dispatched: use a new key for a new event"
        )


class InvalidDispatchArgument(DispatcherError, ValueError):
    """An argument of dispatch() other than the event's data (an idempotency or ordering key)
    is not usable; the message names it."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        super().__init__(f"{name}: {problem}; nothing was dispatched")
