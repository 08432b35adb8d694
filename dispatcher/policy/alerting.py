"""The alerts' decisions, as pure functions of values and ``now``: how often ``delivery.failed``
may go out per endpoint and which failures an alert covers, when a condition that lasts (a
backlog, no worker alive) starts or ends an episode, and when a send that failed is tried again.

``delivery.failed`` is grouped per endpoint: an alert covers the failures recorded after the
previous one's cut (its ``occurred_at``) up to a cut a few seconds before now (a failure being
committed as the pass reads is in the next alert, never lost), and goes out at most every
``at_most_every`` (the smallest among the rules naming it; 0: at every pass that finds some). A
first alert, or one after a long quiet, looks back :data:`FAILED_LOOKBACK_SECONDS` at most.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from ..config.alert_settings import AlertSettings
from ..vocabulary import AlertKind

FIRST_RETRY_SECONDS = 30
"""A send that failed is tried again after 30 s, then 60 s, 120 s... (doubling)."""
LONGEST_RETRY_SECONDS = 3600
"""The wait between tries never grows past an hour."""
MAX_TRIES = 10
"""A send that failed this many times is ``failed`` for good (about 4.5 hours of trying)."""
SETTLE_SECONDS = 5
"""A ``delivery.failed`` alert covers failures up to this long before the pass."""
FAILED_LOOKBACK_SECONDS = 3600
"""How far back a first ``delivery.failed`` alert of an endpoint (or one after a long quiet) looks."""
NONE_ALIVE_AFTER_SECONDS = 60
"""``workers.none_alive``: no worker heartbeat (lease renewal) for this long."""


class Step(StrEnum):
    """What a pass does to an episode."""

    RAISE = "raise"
    RESOLVE = "resolve"
    KEEP = "keep"


def retry_in(tries: int) -> float:
    """Seconds before the next try of a send that failed ``tries`` times (1 or more)."""
    return float(min(LONGEST_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** max(0, min(tries - 1, 20))))


def next_try(tries: int, now: datetime) -> datetime | None:
    """When a send that failed ``tries`` times is tried again; None: it gave up."""
    return None if tries >= MAX_TRIES else now + timedelta(seconds=retry_in(tries))


def failed_every(alerts: AlertSettings) -> float:
    """Seconds between two ``delivery.failed`` alerts of one endpoint: the smallest
    ``at_most_every`` among the rules naming it (a rule without one: 0, every pass)."""
    rules = alerts.rules_for(AlertKind.DELIVERY_FAILED)
    return float(min((rule.at_most_every_seconds or 0 for rule in rules), default=0))


@dataclass(frozen=True)
class Window:
    """The failures an alert covers: recorded after ``since``, by ``until``."""

    since: datetime
    until: datetime


def widest_window(every: float, now: datetime) -> Window:
    """The most a ``delivery.failed`` alert covers: up to a few seconds ago, back
    :data:`FAILED_LOOKBACK_SECONDS` (or ``every``, when longer)."""
    until = now - timedelta(seconds=SETTLE_SECONDS)
    return Window(until - timedelta(seconds=max(every, FAILED_LOOKBACK_SECONDS)), until)


def failed_window(previous: datetime | None, every: float, now: datetime) -> Window | None:
    """The window the next ``delivery.failed`` alert of an endpoint covers, given its previous
    alert's cut (None: never), or None while the previous one is too recent."""
    widest = widest_window(every, now)
    if previous is None:
        return widest
    if widest.until < previous + timedelta(seconds=every) or widest.until <= previous:
        return None
    return Window(max(previous, widest.since), widest.until)


def episode(is_open: bool, holds: bool) -> Step:
    """A condition that lasts is raised once when it starts and resolved when it ends."""
    if holds and not is_open:
        return Step.RAISE
    if is_open and not holds:
        return Step.RESOLVE
    return Step.KEEP


def backlog_thresholds(alerts: AlertSettings) -> dict[int, tuple[str, ...]]:
    """Each ``queue.backlog`` threshold (seconds) and the channels its rules name, smallest
    first: rules with the same threshold share one episode."""
    thresholds: dict[int, list[str]] = {}
    for rule in alerts.rules_for(AlertKind.QUEUE_BACKLOG):
        channels = thresholds.setdefault(rule.backlog_seconds, [])
        channels.extend(name for name in rule.to if name not in channels)
    return {seconds: tuple(thresholds[seconds]) for seconds in sorted(thresholds)}


def backlogged(waiting_since: datetime | None, threshold: int, now: datetime) -> bool:
    """The oldest waiting delivery has waited ``threshold`` seconds or more."""
    return waiting_since is not None and now - waiting_since >= timedelta(seconds=threshold)


def none_alive(newest_heartbeat: datetime | None, leaseless_since: datetime | None, now: datetime) -> bool:
    """No worker beat for :data:`NONE_ALIVE_AFTER_SECONDS`. With no lease at all (no worker
    ever started, or every one stopped cleanly and released its lease) the silence counts from
    when it was first seen without one (``leaseless_since``; None: not known, so at once)."""
    silent_since = newest_heartbeat if newest_heartbeat is not None else leaseless_since
    if silent_since is None:
        return True
    return now - silent_since >= timedelta(seconds=NONE_ALIVE_AFTER_SECONDS)


def age_text(seconds: float) -> str:
    """A wait in words for an alert: ``12m 30s``, ``2h 5m``, ``45s``."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"
