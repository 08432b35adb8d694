"""Deriving the alerts nobody raises as they happen: ``delivery.failed`` (deliveries that ran out
of attempts, grouped per endpoint), ``queue.backlog`` and ``workers.none_alive`` (conditions
that last: an episode each, raised once when it starts, resolved when it ends). The decisions
are :mod:`dispatcher.policy.alerting`'s; this module reads the database and records.

Each occurrence's text is decided by what came before it -- ``delivery.failed:pharmacy:after:41``
follows alert 41 of that endpoint, ``queue.backlog:600s:after:0`` is that threshold's first
episode -- so two processes evaluating at once (a worker and ``dispatcher alerts check``
without Redis) raise the same text, and the database keeps one. A kind no rule names is not
evaluated at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from ..config.alert_settings import AlertSettings
from ..policy import alerting
from ..policy.alerting import Step
from ..store import alert_failures as failures
from ..store import alerts as stored
from ..times import format_utc
from ..vocabulary import AlertKind


@dataclass
class Changes:
    """What a pass recorded: the occurrences raised and the episodes resolved."""

    raised: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)


def evaluate(
    engine: Engine,
    alerts: AlertSettings,
    now: datetime,
    *,
    include_none_alive: bool,
    leaseless_since: datetime | None = None,
) -> Changes:
    """Every derived kind a rule names; ``workers.none_alive`` is raised only with
    ``include_none_alive`` (a worker, alive by being there, only resolves it)."""
    changes = Changes()
    failed(engine, alerts, now, changes)
    backlog(engine, alerts, now, changes)
    workers(engine, alerts, now, changes, include_none_alive, leaseless_since)
    return changes


def failed(engine: Engine, alerts: AlertSettings, now: datetime, changes: Changes) -> None:
    """One ``delivery.failed`` per endpoint with new failures, at most every ``at_most_every``.
    Each alert counts the failed attempt rows after the previous one's cursor (the first, those
    of the look-back), so a failure written late -- from a spool, by a host whose clock is
    behind -- is in the next alert, never lost."""
    kind = AlertKind.DELIVERY_FAILED
    channels = alerts.channels_for(kind)
    if not channels:
        return
    every = alerting.failed_every(alerts)
    widest = alerting.widest_window(every, now)
    cursors = failures.newest_cursors(engine, kind)
    lowest = min(cursors.values(), default=None)
    for endpoint in sorted(failures.failing_endpoints(engine, widest.since, lowest)):
        previous = stored.newest_alert(engine, kind, endpoint=endpoint)
        window = alerting.failed_window(previous.occurred_at if previous else None, every, now)
        if window is None:
            continue
        cursor = cursors.get(endpoint)
        group = failures.failed_attempts(engine, endpoint, after_id=cursor, since=widest.since)
        if group is None:
            continue
        occurrence = f"{kind}:{endpoint}:after:{previous.id if previous else 0}"
        since = previous.occurred_at if previous is not None else widest.since
        detail = f"{group.count} deliveries to {endpoint} ran out of attempts since {format_utc(since)}"
        raised = stored.raise_routed(
            engine,
            kind,
            occurrence,
            channels,
            detail=detail,
            endpoint=endpoint,
            count=group.count,
            request_ids=group.request_ids,
            at=window.until,
            cursor=group.upto,
        )
        if raised is not None:
            changes.raised.append(occurrence)


def backlog(engine: Engine, alerts: AlertSettings, now: datetime, changes: Changes) -> None:
    """An episode per ``older_than`` threshold: the oldest waiting delivery waited that long."""
    thresholds = alerting.backlog_thresholds(alerts)
    if not thresholds:
        return
    kind = AlertKind.QUEUE_BACKLOG
    since = stored.oldest_waiting(engine, now)
    for seconds, channels in thresholds.items():
        prefix = f"{kind}:{seconds}s:"
        waited = alerting.age_text((now - since).total_seconds()) if since else ""
        detail = f"the oldest waiting delivery has waited {waited} (alert at {alerting.age_text(seconds)})"
        _episode(
            engine,
            Episode(kind, prefix, channels, detail),
            alerting.backlogged(since, seconds, now),
            now,
            changes,
        )


def workers(
    engine: Engine,
    alerts: AlertSettings,
    now: datetime,
    changes: Changes,
    include_none_alive: bool,
    leaseless_since: datetime | None,
) -> None:
    """The episode of no worker alive: no lease renewed for a minute."""
    kind = AlertKind.WORKERS_NONE_ALIVE
    channels = alerts.channels_for(kind)
    if not channels:
        return
    heartbeat = stored.newest_heartbeat(engine)
    holds = alerting.none_alive(heartbeat, leaseless_since, now)
    if heartbeat is not None:
        detail = f"no worker heartbeat since {format_utc(heartbeat)} ({_ago(now - heartbeat)} ago)"
    else:
        detail = "no worker holds a lease: none was started, or every one stopped"
    episode = Episode(kind, f"{kind}:", tuple(channels), detail, may_raise=include_none_alive)
    _episode(engine, episode, holds, now, changes)


def _ago(delta: timedelta) -> str:
    return alerting.age_text(delta.total_seconds())


@dataclass(frozen=True)
class Episode:
    """A condition that lasts: its kind, its occurrences' prefix, its channels and words."""

    kind: str
    prefix: str
    channels: tuple[str, ...]
    detail: str
    may_raise: bool = True


def _episode(engine: Engine, episode: Episode, holds: bool, now: datetime, changes: Changes) -> None:
    """Raises the episode when it starts, resolves it when it ends."""
    current = stored.open_alert(engine, episode.kind, episode.prefix)
    step = alerting.episode(current is not None, holds)
    if step is Step.RESOLVE and current is not None:
        if stored.resolve(engine, current.id, now):
            changes.resolved.append(current.occurrence)
    elif step is Step.RAISE and episode.may_raise:
        previous = stored.newest_alert(engine, episode.kind, episode.prefix)
        occurrence = f"{episode.prefix}after:{previous.id if previous else 0}"
        raised = stored.raise_routed(
            engine, episode.kind, occurrence, episode.channels, detail=episode.detail, at=now
        )
        if raised is not None:
            changes.raised.append(occurrence)
