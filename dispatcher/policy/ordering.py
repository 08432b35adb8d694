"""When a delivery waiting behind the head of its ordering key looks again.

A waiting delivery keeps a scheduled job, so nothing can strand it; the worker that finishes a
head wakes the next one at once (its job moved to the queue), and this wait is only how soon a
waiting delivery looks for itself: just after its head's retry is due, or
:data:`PARK_SECONDS` from now when the head is queued or in flight.
"""

from __future__ import annotations

import math
from datetime import datetime

PARK_SECONDS = 30
"""How long a delivery behind a queued or in-flight head waits before it looks again."""


def wake_in(head_due: datetime | None, now: datetime) -> int:
    """Whole seconds until a waiting delivery looks again: a second past its head's retry (when
    the head waits for one), never sooner than a second, never later than the retry."""
    if head_due is None:
        return PARK_SECONDS
    return max(1, math.ceil((head_due - now).total_seconds()) + 1)
