"""An endpoint's circuit breaker, as pure decisions: what an attempt's result counts as, when
the breaker opens, what a delivery that arrives gets, and what a probe's result does.

The breaker is closed while the partner answers. It opens when at least ``failure_ratio`` of
at least ``min_attempts`` attempts in the last ``window_seconds`` failed in a retryable way (a
5xx, a timeout, a connection or DNS error): a partner that is down then stops costing every
queued delivery its attempts. While it is open, a delivery is not attempted: it is given back
without using an attempt and comes back when the breaker lets one delivery try (the probe),
``open_seconds`` after it opened. At that time it is half-open: one delivery across all
workers is the probe and the others wait a little. A probe the partner answers closes it; a
probe that fails opens it again for twice as long, at most ``max_open_seconds``.

What counts: an answer below 500 (even a 4xx: the partner is up and said no) is an attempt
that did not fail; a 5xx, a timeout, a connection or DNS error is a failed one; an attempt that
never reached the partner (no OAuth2 token, a refused destination, a request that could not be
made) counts for nothing.

The state lives in Redis (:mod:`dispatcher.sending.breaker`), read as a :class:`Stored` value;
clocks are arguments (seconds since the epoch, from Redis's clock, shared by every worker).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..config import BreakerSettings
from ..vocabulary import BreakerState, FailureKind

PROBE_WAIT_SECONDS = 5.0
"""While one delivery probes a half-open breaker, another delivery waits at most this long
before it looks again: the probe's answer usually comes within a second, and if it closed the
breaker the wait is short."""
PROBE_SLACK_SECONDS = 30.0
"""A probe's turn lasts its attempt's deadline and this much more; a worker killed while it
probed leaves no breaker half-open for ever: after that, another delivery probes."""
FAILED_ATTEMPTS = frozenset({FailureKind.TIMEOUT, FailureKind.CONNECTION_ERROR, FailureKind.DNS_ERROR})
"""The failures without an answer that count against the partner (a token error, a refused
destination or an invalid request never reached it)."""
RATIO_TOLERANCE = 1e-9
"""7 failures of 10 is 70 %, whatever the floating-point division says."""


class Sample(StrEnum):
    """What one attempt's result counts as in the breaker's window."""

    ANSWERED = "answered"
    """The partner answered below 500: an attempt that did not fail."""
    FAILED = "failed"
    """A 5xx, a timeout, a connection or DNS error: a retryable failure of the partner."""
    NOTHING = "nothing"
    """The attempt never reached the partner: it does not count."""


def sample(http_status: int | None, failure: str | None) -> Sample:
    """What an attempt's result (its HTTP status, else its failure kind) counts as."""
    if http_status is not None:
        return Sample.FAILED if http_status >= 500 else Sample.ANSWERED
    if failure in FAILED_ATTEMPTS:
        return Sample.FAILED
    return Sample.NOTHING


def opens(attempts: int, failures: int, settings: BreakerSettings) -> bool:
    """Whether a closed breaker opens, given the attempts and retryable failures in its window."""
    if attempts < settings.min_attempts or attempts <= 0:
        return False
    return failures / attempts >= settings.failure_ratio - RATIO_TOLERANCE


@dataclass(frozen=True)
class Stored:
    """A breaker as it is stored: open or not, and while open, since when, until when, for how
    long this time, and which delivery probes it (until when). ``generation`` changes at every
    opening and closing, so a change made from an older reading is refused."""

    open: bool = False
    generation: int = 0
    since: float | None = None
    """When it opened from closed (a failed probe does not change it)."""
    opened_at: float | None = None
    """When it opened this time (at its opening, or the last failed probe)."""
    open_until: float | None = None
    open_seconds: int | None = None
    probe: str | None = None
    probe_until: float | None = None


CLOSED = Stored()


def state_at(stored: Stored, now: float) -> BreakerState:
    """Closed, open (before its probe time) or half-open (from its probe time)."""
    if not stored.open:
        return BreakerState.CLOSED
    if stored.open_until is not None and now < stored.open_until:
        return BreakerState.OPEN
    return BreakerState.HALF_OPEN


class Admission(StrEnum):
    GO = "go"
    """Closed: send it."""
    WAIT = "wait"
    """Open, or another delivery probes: give it back, look again in ``wait_seconds``."""
    PROBE = "probe"
    """Half-open and nobody probes: this delivery is the probe, if it wins the turn."""


@dataclass(frozen=True)
class Admit:
    admission: Admission
    wait_seconds: float = 0.0


GO = Admit(Admission.GO)


def admit(stored: Stored, request_id: str, now: float) -> Admit:
    """What a delivery arriving at ``now`` gets from the breaker. While it is open it waits for
    the probe time; when half-open, the delivery already probing it (its job back again) probes
    on, another waits while the probe's turn lasts (at most :data:`PROBE_WAIT_SECONDS`), and if
    nobody holds the turn this one probes."""
    state = state_at(stored, now)
    if state is BreakerState.CLOSED:
        return GO
    if state is BreakerState.OPEN:
        assert stored.open_until is not None
        return Admit(Admission.WAIT, stored.open_until - now)
    taken = stored.probe is not None and stored.probe_until is not None and stored.probe_until > now
    if taken and stored.probe != request_id:
        assert stored.probe_until is not None
        return Admit(Admission.WAIT, min(PROBE_WAIT_SECONDS, stored.probe_until - now))
    return Admit(Admission.PROBE)


def probe_seconds(timeout: float, connect_timeout: float) -> float:
    """How long a probe's turn lasts: its attempt's deadline and :data:`PROBE_SLACK_SECONDS`."""
    return timeout + connect_timeout + PROBE_SLACK_SECONDS


class AfterProbe(StrEnum):
    CLOSE = "close"
    """The partner answered: the breaker closes."""
    REOPEN = "reopen"
    """It failed again: open again, for twice as long (at most the maximum)."""
    RELEASE = "release"
    """Nothing was learnt (the probe never reached the partner): another delivery probes."""


def after_probe(result: Sample) -> AfterProbe:
    """What a probe's result does to its half-open breaker."""
    if result is Sample.ANSWERED:
        return AfterProbe.CLOSE
    if result is Sample.FAILED:
        return AfterProbe.REOPEN
    return AfterProbe.RELEASE


def reopen_seconds(current: int | None, settings: BreakerSettings) -> int:
    """How long the breaker opens again after a failed probe: twice this time, at most
    ``max_open_seconds`` (and at least ``open_seconds``)."""
    base = current if current is not None and current > 0 else settings.open_seconds
    return max(settings.open_seconds, min(base * 2, settings.max_open_seconds))
