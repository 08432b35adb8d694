"""Realistic, internally consistent webhook traffic, for partners testing their receiver.

Two separate parts: :func:`generate` (:mod:`.encounters`) is a pure, seeded generator of
``(event, data)`` drawing from :mod:`.world`; :func:`run` (:mod:`.pacing`) paces any such
stream at a rate and hands each event to a ``send`` callable (``dispatch`` in the CLI),
reporting progress.
"""

from .encounters import DEFAULT_CONCURRENCY, DISPATCHED_BY, SIM_EPOCH, generate, message_id
from .pacing import Summary, parse_rate, planned_events, run, start_for

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DISPATCHED_BY",
    "SIM_EPOCH",
    "Summary",
    "generate",
    "message_id",
    "parse_rate",
    "planned_events",
    "run",
    "start_for",
]
