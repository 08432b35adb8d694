"""The words every room shares: event names, delivery statuses, attempt outcomes, failure kinds
and reasons, each defined once as a ``StrEnum``.

A member is a ``str`` (``DeliveryStatus.QUEUED == "queued"``), so it goes into JSON, the
database and the process log as its value, and a value read back compares equal to it. Import
from here instead of writing ``"queued"`` again.
"""

from __future__ import annotations

from enum import StrEnum


class EventName(StrEnum):
    """The six events of the partner contract (``outgoing-webhooks-api.txt``), in its order."""

    PRESCRIPTION_SUBMITTED = "prescription_submitted"
    PRESCRIPTION_DOSAGE_CHANGED = "prescription_dosage_changed"
    ENCOUNTER_CANCELLED = "encounter_cancelled"
    MESSAGE_CREATED = "message_created"
    ORDER_CHANGED = "order_changed"
    CASE_ASSIGNED_TO_CLINICIAN = "case_assigned_to_clinician"


EVENT_NAMES: tuple[str, ...] = tuple(e.value for e in EventName)


class DeliveryStatus(StrEnum):
    """Where a delivery is: ``queued`` -> ``in_flight`` (a worker holds it) -> ``delivered`` |
    ``retrying`` (waiting for its next attempt) | ``failed``."""

    QUEUED = "queued"
    IN_FLIGHT = "in_flight"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    FAILED = "failed"


STATUSES: tuple[str, ...] = tuple(s.value for s in DeliveryStatus)
"""Every status, in the order of the flow (``log list --status``, ``info``)."""
FINAL_STATUSES: tuple[str, ...] = (DeliveryStatus.DELIVERED.value, DeliveryStatus.FAILED.value)
"""Nothing more happens to a delivery in these, unless an operator re-sends it."""
CLAIMABLE_STATUSES: tuple[str, ...] = (DeliveryStatus.QUEUED.value, DeliveryStatus.RETRYING.value)
"""A worker may claim a delivery in these for its next attempt."""
PENDING_STATUSES: tuple[str, ...] = (
    DeliveryStatus.QUEUED.value,
    DeliveryStatus.IN_FLIGHT.value,
    DeliveryStatus.RETRYING.value,
)
"""Not final yet (``log stats``' ``pending``)."""


class AttemptOutcome(StrEnum):
    """What one attempt row says happened (``webhook_event_transaction_log.outcome``)."""

    DELIVERED = "delivered"
    RETRY_SCHEDULED = "retry_scheduled"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    """The worker died mid-attempt; written by reconcile, it does not count against the budget."""


class FailureKind(StrEnum):
    """Why an attempt got no HTTP answer (``DeliveryOutcome.failure``)."""

    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    DNS_ERROR = "dns_error"
    INVALID_REQUEST = "invalid_request"
    DESTINATION_REFUSED = "destination_refused"
    TOKEN_ERROR = "token_error"
    """No OAuth2 token could be had from the endpoint's token endpoint: nothing was sent."""


RETRYABLE_FAILURES: frozenset[str] = frozenset(
    {
        FailureKind.TIMEOUT.value,
        FailureKind.CONNECTION_ERROR.value,
        FailureKind.DNS_ERROR.value,
        FailureKind.TOKEN_ERROR.value,
    }
)


class Reason(StrEnum):
    """Reasons a delivery is ``failed`` that code looks for (others are free text, such as
    ``HTTP 404 is not retried``)."""

    ENDPOINT_DISABLED = "endpoint_disabled"
    ENDPOINT_REMOVED = "endpoint_removed"
    """Failed by ``dispatcher endpoints remove --force``: its endpoint was removed while it waited."""


class JobState(StrEnum):
    """The states of a delivery's RQ job, as RQ writes them in its job record (RQ's ``JobStatus``
    values; the queue room checks they agree)."""

    QUEUED = "queued"
    SCHEDULED = "scheduled"
    DEFERRED = "deferred"
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"
    CANCELED = "canceled"


ACTIVE_JOB_STATES: frozenset[str] = frozenset(
    {JobState.QUEUED.value, JobState.SCHEDULED.value, JobState.DEFERRED.value, JobState.STARTED.value}
)
"""A job in one of these will run (or is running): its delivery needs no other."""


class ExportRows(StrEnum):
    """What ``log export --rows`` streams: one row per attempt, or one per delivery."""

    ATTEMPTS = "attempts"
    DELIVERIES = "deliveries"


class AuditAction(StrEnum):
    """Every operator action that writes an audit row (``webhook_audit.action``), as stored."""

    RETRY = "retry"
    REPLAY = "replay"
    PRUNE = "prune"
    RETENTION_RUN = "retention run"
    LOG_ERASE = "log erase"
    LOG_EXPORT = "log export"
    ENDPOINTS_DISABLE = "endpoints disable"
    ENDPOINTS_ENABLE = "endpoints enable"
    STORAGE_ENCRYPT = "storage encrypt"
    STORAGE_ROTATE = "storage rotate"
    DELIVERY_REVEAL = "delivery reveal"
    ENDPOINTS_ADD = "endpoints add"
    ENDPOINTS_EDIT = "endpoints edit"
    ENDPOINTS_PAUSE = "endpoints pause"
    ENDPOINTS_RESUME = "endpoints resume"
    ENDPOINTS_ROTATE_KEY = "endpoints rotate-key"
    ENDPOINTS_ROTATE_SECRET = "endpoints rotate-secret"
    ENDPOINTS_REMOVE = "endpoints remove"
    ENDPOINTS_IMPORT = "endpoints import"
    ALERTS_TEST = "alerts test"
    API_TOKENS_CREATE = "api tokens create"
    API_TOKENS_REVOKE = "api tokens revoke"


class AlertKind(StrEnum):
    """What an alert tells the people on call (``alerts.rules[].events``)."""

    ENDPOINT_DISABLED = "endpoint.disabled"
    ENDPOINT_BREAKER_OPENED = "endpoint.breaker_opened"
    ENDPOINT_RECOVERED = "endpoint.recovered"
    """Its breaker closed again, or it was enabled."""
    DELIVERY_FAILED = "delivery.failed"
    """Deliveries ran out of attempts (grouped per endpoint)."""
    QUEUE_BACKLOG = "queue.backlog"
    WORKERS_NONE_ALIVE = "workers.none_alive"
    TEST = "test"
    """``dispatcher alerts test``: goes to the channels named, whatever the rules say."""


ALERT_KINDS: tuple[str, ...] = tuple(k.value for k in AlertKind if k is not AlertKind.TEST)
"""The kinds a rule may name."""


class BreakerState(StrEnum):
    """An endpoint's circuit breaker (:mod:`dispatcher.policy.breaker`)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
