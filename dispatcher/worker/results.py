"""What a delivery's job does next: the :data:`Result` a flight (:mod:`.flight`) or per-key
ordering (:mod:`.ordering`) gives it, and the job (:mod:`.batch`) carries out.

A result is one of three named cases: an ``rq.Retry`` (schedule the job again, see
:func:`retry_in`), None (done: delivered, failed, or nothing to do) or :data:`POISON` (no
delivery row has the job's request_id).
"""

from __future__ import annotations

import enum
from typing import Final, TypeAlias

from rq import Retry

RETRY_FOREVER = 10**9
"""RQ's own retry counter is never the budget: the delivery table is."""


class Poison(enum.Enum):
    """The result of a job whose request_id has no delivery row (it fails in RQ, never retried)."""

    POISON = "poison"


POISON: Final = Poison.POISON
Result: TypeAlias = Retry | Poison | None
"""What a delivery's job does next: ``rq.Retry`` (schedule it), None (done) or :data:`POISON`."""


def retry_in(seconds: int) -> Retry:
    """The job runs again in ``seconds`` (scheduled by RQ, never a sleep)."""
    return Retry(max=RETRY_FOREVER, interval=seconds)
