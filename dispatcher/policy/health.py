"""When a failure disables an endpoint (pure: the caller counts, this decides).

A ``410 Gone`` disables an endpoint at once (Standard Webhooks), unless ``retry_4xx`` makes 410
retryable; ``disable_after: {failed_deliveries: N, window: 5d}`` disables it after N failed
deliveries with no success in the window. The state itself lives in the database
(:mod:`dispatcher.store.endpoints`), shared by every worker.
"""

from __future__ import annotations

from ..config import DisableAfter

GONE = 410
DISABLED_CACHE_SECONDS = 5.0
"""How long a process may trust what it read of the disabled endpoints: a disable reaches every
worker within this time."""


def is_gone(http_status: int | None, retry_4xx: tuple[int, ...] = ()) -> bool:
    """The partner said the endpoint is gone for good (and 410 is not configured as retryable)."""
    return http_status == GONE and GONE not in retry_4xx


def counts_failures(http_status: int | None, rule: DisableAfter | None) -> bool:
    """Whether deciding after this final failure needs the endpoint's recent failure count."""
    return http_status != GONE and rule is not None


def disable_reason(
    http_status: int | None, rule: DisableAfter | None, failures_without_success: int | None = None
) -> str | None:
    """Why this final failure disables the endpoint, or None when it does not.

    Args:
        http_status: the failed attempt's status, None when no answer came.
        rule: the endpoint's ``disable_after``, if any.
        failures_without_success: failed deliveries in the rule's window, 0 when one was
            delivered in it (needed only when :func:`counts_failures` says so).
    """
    if http_status == GONE:
        return "410 Gone"
    if rule is None or failures_without_success is None:
        return None
    if failures_without_success < rule.failed_deliveries:
        return None
    return f"{failures_without_success} failed deliveries and no success in {rule.window_seconds} s"
