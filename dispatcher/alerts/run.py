"""One alerts pass: under the Redis lock, evaluate what is derived (:mod:`.evaluate`), route what
was raised elsewhere (:mod:`.routing`), send what is due (:mod:`.sending`). Workers run it every
few seconds on their housekeeping thread (without raising ``workers.none_alive``: a worker is
alive by running it); ``dispatcher alerts check`` runs it with ``workers.none_alive``, from cron
or a systemd timer, for when every worker is down.

The check must work when Redis is what took the workers down: it then runs without the lock
(what it raises is deduplicated by the database, and each send row is claimed before it is
tried). With no lease at all, how long no worker has run is counted from when a check first saw
none (:data:`LEASELESS_KEY` in Redis; without Redis, at once).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from ..runtime import Runtime
from ..store import alerts as stored
from ..times import utcnow
from . import lock
from .evaluate import evaluate
from .routing import route_new
from .sending import Sent, send_due

LEASELESS_KEY = "dispatcher:alerts:leaseless-since"
"""When a check first saw no worker lease at all (deleted as soon as one is seen)."""
LEASELESS_TTL_SECONDS = 86400


@dataclass
class PassReport:
    """What a pass did (``alerts check --json``)."""

    locked: bool
    """False: Redis did not answer, the pass ran without the lock."""
    raised: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    routed: int = 0
    tries: list[Sent] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        statuses = [t.status for t in self.tries]
        return {
            "raised": len(self.raised),
            "resolved": len(self.resolved),
            "routed": self.routed,
            "sent": statuses.count(stored.SENT),
            "retrying": statuses.count(stored.PENDING),
            "failed": statuses.count(stored.FAILED),
        }

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "counts": self.counts()}

    def changed(self) -> bool:
        return any(self.counts().values())


def run_once(
    runtime: Runtime, now: datetime | None = None, *, include_none_alive: bool = False
) -> PassReport | None:
    """One pass, or None when alerts are not configured or another process holds the lock.
    ``include_none_alive`` (the check) also runs without the lock when Redis does not answer."""
    alerts = runtime.settings.alerts
    if not alerts.channels or not alerts.rules:
        return None
    now = now or utcnow()
    try:
        token = lock.acquire(runtime.redis)
    except redis.RedisError:
        if not include_none_alive:
            raise
        return _pass(runtime, now, include_none_alive, PassReport(locked=False))
    if token is None:
        return None
    try:
        return _pass(runtime, now, include_none_alive, PassReport(locked=True))
    finally:
        _release(runtime.redis, token)


def _release(client: redis.Redis, token: str) -> None:
    try:
        lock.release(client, token)
    except redis.RedisError:
        pass  # it expires on its own


def _pass(runtime: Runtime, now: datetime, include_none_alive: bool, report: PassReport) -> PassReport:
    alerts, engine = runtime.settings.alerts, runtime.engine
    leaseless = None
    if include_none_alive and report.locked:
        try:
            leaseless = leaseless_since(runtime.redis, stored.newest_heartbeat(engine) is not None, now)
        except redis.RedisError:
            leaseless = None  # Redis went away: counted as at once, like a pass without it
    changes = evaluate(engine, alerts, now, include_none_alive=include_none_alive, leaseless_since=leaseless)
    report.raised, report.resolved = changes.raised, changes.resolved
    report.routed = route_new(engine, alerts, now)
    report.tries = send_due(engine, alerts, runtime.settings.environment, now).tries
    return report


def leaseless_since(client: redis.Redis, has_lease: bool, now: datetime) -> datetime | None:
    """Since when no worker lease has been seen: ``now`` the first time, the same time after
    (kept a day); None, and forgotten, while a lease exists."""
    if has_lease:
        client.delete(LEASELESS_KEY)
        return None
    client.set(LEASELESS_KEY, str(now.timestamp()), nx=True, ex=LEASELESS_TTL_SECONDS)
    value = client.get(LEASELESS_KEY)
    try:
        return datetime.fromtimestamp(float(value), UTC) if value is not None else now
    except (TypeError, ValueError):
        return now
