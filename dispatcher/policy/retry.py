"""The outcome policy: given what an attempt produced, deliver, retry (and when) or fail.

Pure: no Redis, no HTTP, no clock of its own (``now`` and ``rand`` are passed in).

| result                                   | action                                        |
|------------------------------------------|-----------------------------------------------|
| 2xx                                      | delivered                                     |
| 5xx                                      | retry with backoff                            |
| timeout, connection refused/reset, DNS   | retry with backoff                            |
| 4xx in ``retry_4xx``                     | retry; Retry-After may lengthen the wait      |
| other 4xx, 3xx, 1xx, a malformed request | failed, no retry                              |
| a refused destination (private network)  | failed, no retry                              |
| attempts reach the budget                | failed                                        |
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from ..config import Backoff, DeliverySettings, ExponentialBackoff, ListBackoff
from ..vocabulary import RETRYABLE_FAILURES, AttemptOutcome, DeliveryStatus, FailureKind

DELIVERED = AttemptOutcome.DELIVERED
RETRY = AttemptOutcome.RETRY_SCHEDULED
FAILED = AttemptOutcome.FAILED

STATUS_AFTER: dict[str, DeliveryStatus] = {
    AttemptOutcome.DELIVERED: DeliveryStatus.DELIVERED,
    AttemptOutcome.RETRY_SCHEDULED: DeliveryStatus.RETRYING,
    AttemptOutcome.FAILED: DeliveryStatus.FAILED,
    AttemptOutcome.INTERRUPTED: DeliveryStatus.RETRYING,
}
"""A delivery's status once an attempt with this outcome is recorded (an interrupted attempt's
delivery is sent again)."""


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one attempt produced (made by :mod:`dispatcher.sending.attempt`, judged here).

    ``failure`` is None when a response arrived; otherwise a :class:`FailureKind`.
    """

    http_status: int | None
    failure: str | None
    error: str | None
    response_body: str | None
    duration_ms: int
    retry_after: str | None = None


@dataclass(frozen=True)
class RetryDecision:
    """``outcome`` is the attempt row's outcome; ``delay_seconds`` is whole seconds, only for a retry."""

    outcome: AttemptOutcome
    reason: str
    delay_seconds: int | None = None
    next_attempt_at: datetime | None = None
    exhausted: bool = False


def backoff_seconds(backoff: Backoff, retry_number: int, rand: Callable[[], float] = random.random) -> float:
    """The wait before retry ``retry_number`` (1 = the wait after the first attempt)."""
    if isinstance(backoff, ListBackoff):
        index = min(retry_number - 1, len(backoff.seconds) - 1)
        return float(backoff.seconds[index])
    assert isinstance(backoff, ExponentialBackoff)
    nominal = min(backoff.cap, backoff.base * backoff.multiplier ** (retry_number - 1))
    # Jitter only lengthens the wait, so a retry is never earlier than the nominal schedule.
    return nominal * (1 + backoff.jitter * rand())


def retry_after_seconds(header: str | None, now: datetime) -> float | None:
    """Seconds asked for by a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not header:
        return None
    text = header.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _classify(outcome: DeliveryOutcome, settings: DeliverySettings) -> tuple[AttemptOutcome, str]:
    """(action, reason) before the attempt budget is considered."""
    status = outcome.http_status
    if status is None:
        failure = outcome.failure or FailureKind.CONNECTION_ERROR
        return (RETRY if failure in RETRYABLE_FAILURES else FAILED), str(failure)
    if 200 <= status <= 299:
        return DELIVERED, f"HTTP {status}"
    if 500 <= status <= 599:
        return RETRY, f"HTTP {status}"
    if status in settings.retry_4xx:
        return RETRY, f"HTTP {status}"
    return FAILED, f"HTTP {status} is not retried"


def decide(
    outcome: DeliveryOutcome,
    *,
    attempt: int,
    attempt_limit: int,
    settings: DeliverySettings,
    now: datetime,
    rand: Callable[[], float] = random.random,
) -> RetryDecision:
    """Decides what follows an attempt.

    Args:
        outcome: what the attempt produced.
        attempt: this attempt's number (1-based, counting every attempt of the delivery).
        attempt_limit: the highest attempt number allowed (grows when an operator re-queues).
        settings: the delivery settings (retry_4xx, backoff).
        now: the current time, timezone-aware.
        rand: a source of [0, 1) for jitter.
    """
    action, reason = _classify(outcome, settings)
    if action != RETRY:
        return RetryDecision(action, reason)
    if attempt >= attempt_limit:
        return RetryDecision(
            FAILED, f"{reason}; attempts exhausted ({attempt} of {attempt_limit})", exhausted=True
        )
    # The retry number is counted from the attempt limit so a granted budget starts over.
    retry_number = attempt - (attempt_limit - settings.max_attempts)
    wait = backoff_seconds(settings.backoff, max(1, retry_number), rand)
    if outcome.http_status in settings.retry_4xx:
        asked = retry_after_seconds(outcome.retry_after, now)
        if asked is not None:
            wait = max(wait, min(asked, settings.backoff.maximum))
    delay = max(1, math.ceil(wait))
    return RetryDecision(RETRY, reason, delay, now + timedelta(seconds=delay))
