"""The gates a claimed delivery passes before its POST, as pure decisions.

In order: its endpoint is still configured; the endpoint is not disabled; it is not paused;
the stored payload renders; the endpoint's circuit breaker lets it go (:mod:`.breaker`); the
endpoint's limits let it go now; and, while it waited for a sender thread, the endpoint did not
answer ``410 Gone`` to another delivery of the same flight. Each gate returns a
:class:`GateVerdict`; the worker carries it out (records a failure, gives the claim back,
schedules the job again) and makes the I/O each gate needs (the disabled cache, the breaker and
the limits in Redis) only once the gates before it are open. A claim given back uses no attempt.
"""

from __future__ import annotations

import math
from collections.abc import Container
from dataclasses import dataclass
from enum import StrEnum

from .health import DISABLED_CACHE_SECONDS

SCHEDULER_SLACK_SECONDS = 1
"""RQ computes a retry's time from its own clock after the job returns and its scheduled
registry truncates that time to whole seconds, which can make a wait up to a second short.
One more second keeps every wait at least as long as the policy's ``next_attempt_at``."""
HELD_BACK_SECONDS = math.ceil(DISABLED_CACHE_SECONDS) + SCHEDULER_SLACK_SECONDS + 1
"""A delivery held back by a 410 comes back after every worker's disabled cache was re-read."""
PAUSED_RECHECK_SECONDS = 300
"""A paused endpoint's delivery looks again this often. Resuming the endpoint wakes its
deliveries at once, in dispatch order; this is only the way back for one that missed the wake."""


class Gate(StrEnum):
    SEND = "send"
    """Every gate is open: POST it."""
    FAIL = "fail"
    """It can never be sent: record a failed attempt (``error`` says why), send nothing."""
    DISABLED = "disabled"
    """Its endpoint is disabled: give the claim back as ``failed``, ``endpoint_disabled``."""
    DEFER = "defer"
    """Not now (a limit): give the claim back and come back in ``retry_in`` seconds."""
    HELD_BACK = "held_back"
    """Its endpoint answered 410 meanwhile: give the claim back and come back in ``retry_in``."""
    PAUSED = "paused"
    """Its endpoint is paused: give the claim back and come back in ``retry_in``."""
    BREAKER_OPEN = "breaker_open"
    """Its endpoint's breaker is open (or another delivery probes it): give the claim back and
    come back in ``retry_in``, at the probe time."""


@dataclass(frozen=True)
class GateVerdict:
    gate: Gate
    error: str | None = None
    retry_in: int | None = None


OPEN = GateVerdict(Gate.SEND)


def before_render(endpoint: str, configured: bool, disabled: Container[str]) -> GateVerdict:
    """The first two gates: the endpoint still exists, and is not disabled."""
    if not configured:
        return GateVerdict(Gate.FAIL, f"endpoint {endpoint!r} is no longer configured")
    if endpoint in disabled:
        return GateVerdict(Gate.DISABLED)
    return OPEN


def not_paused(endpoint: str, paused: Container[str]) -> GateVerdict:
    """The gate after the first two: the endpoint is not paused (its deliveries wait, no attempt
    used, and look again every :data:`PAUSED_RECHECK_SECONDS`)."""
    if endpoint in paused:
        return GateVerdict(Gate.PAUSED, retry_in=PAUSED_RECHECK_SECONDS)
    return OPEN


def unusable_payload(exc: BaseException) -> GateVerdict:
    """The third gate, closed: the stored payload could not be rendered for sending."""
    return GateVerdict(Gate.FAIL, f"stored payload is unusable: {type(exc).__name__}")


def stored_payload(payload: str | None) -> GateVerdict | None:
    """Before the third gate: a payload erased (None), or one no configured storage key opens (it
    says why in ``problem``), fails the delivery; None lets it be rendered."""
    if payload is None:
        return GateVerdict(Gate.FAIL, "stored payload is unreadable: it was erased")
    problem = getattr(payload, "problem", None)
    if problem is not None:
        return GateVerdict(Gate.FAIL, f"stored payload is unreadable: {problem}")
    return None


def after_breaker(wait_seconds: float) -> GateVerdict:
    """The breaker's gate: it asked to wait ``wait_seconds`` (0: go now, or probe). The job comes
    back no sooner than that, so a delivery held back by an open breaker arrives at the probe
    time, when the breaker is half-open."""
    if wait_seconds <= 0:
        return OPEN
    return GateVerdict(Gate.BREAKER_OPEN, retry_in=_whole_wait(wait_seconds))


def _whole_wait(wait_seconds: float) -> int:
    """RQ schedules in whole seconds and can make a wait up to a second short, so the job comes
    back at least a second later, and a second later than the wait when it is longer."""
    return 1 if wait_seconds <= 1 else math.ceil(wait_seconds) + SCHEDULER_SLACK_SECONDS


def after_limits(wait_seconds: float) -> GateVerdict:
    """The endpoint's limits asked to wait ``wait_seconds`` (0: go now); see :func:`_whole_wait`."""
    if wait_seconds <= 0:
        return OPEN
    return GateVerdict(Gate.DEFER, retry_in=_whole_wait(wait_seconds))


def before_post(endpoint: str, gone: Container[str]) -> GateVerdict:
    """The last gate, checked on the sender thread: no delivery of this flight to the same
    endpoint was answered ``410 Gone`` (see :func:`dispatcher.policy.health.is_gone`)."""
    if endpoint in gone:
        return GateVerdict(Gate.HELD_BACK, retry_in=HELD_BACK_SECONDS)
    return OPEN


UNUSABLE_HERE_SECONDS = 60
"""A delivery to an endpoint this host cannot use (its certificate file missing here) comes back
this much later, for a host that can: it is not failed for a file a host lacks."""


def retry_interval(delay_seconds: int) -> int:
    """RQ's interval for a retry the policy scheduled ``delay_seconds`` ahead."""
    return delay_seconds + SCHEDULER_SLACK_SECONDS
