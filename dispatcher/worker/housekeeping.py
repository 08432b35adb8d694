"""The worker's threads beside RQ's loop: the heartbeat (its liveness key, what it sees of
Redis and the other workers, and a stand-in for RQ's scheduler while none runs), the lease (its
liveness in the database, renewed as often) and housekeeping (the spool flush, reconcile, its
own cut-short claims, the retention policy, and the alerts pass about every 15 seconds).

Reconcile runs about once a minute, one worker at a time; and at once, on one worker, when a
heartbeat sees a reason: Redis answering again after failing, Redis empty (flushed, or
restarted without its data), or a worker whose liveness key expired and whose lease has too;
or when the lease thread, renewing its own lease, finds another worker's lease expired (the
registry of heartbeats is in Redis and a flush empties it; the leases are not). So a delivery
whose job Redis lost is queued again within seconds of Redis answering, and a dead worker's
claims are sent again within seconds of its key and lease expiring, whatever Redis lost; a live
worker's claims are never taken.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from .. import queue, store
from ..alerts.run import run_once as run_alerts
from ..logs import log_line
from ..runtime import Runtime
from ..store import leases
from . import liveness, reconcile, retention
from .recording import flush_spool

HEARTBEAT_SECONDS = 5
RECONCILE_EVERY_SECONDS = 60
ALERTS_EVERY_SECONDS = 15
"""How often a worker runs the alerts pass (one worker at a time runs it: a Redis lock)."""
WORKERS_GONE = "workers stopped beating"
"""The reason when workers stopped beating: in the registry without their liveness key (the
heartbeat saw it), or with their lease expired (the lease thread saw it)."""


class Urgency:
    """Reasons the heartbeat found to reconcile now, handed to housekeeping."""

    def __init__(self) -> None:
        self.wake = threading.Event()
        self._lock = threading.Lock()
        self._reasons: list[str] = []
        self._dead: set[str] = set()

    def raise_(self, reason: str, dead: list[str] | None = None, wake: bool = True) -> None:
        """Adds a reason; ``wake=False`` keeps it for the next round instead of waking now."""
        with self._lock:
            if reason not in self._reasons:
                self._reasons.append(reason)
            self._dead.update(dead or ())
        if wake:
            self.wake.set()

    def take(self) -> tuple[list[str], set[str]]:
        with self._lock:
            reasons, dead = self._reasons, self._dead
            self._reasons, self._dead = [], set()
            self.wake.clear()
        return reasons, dead


class Heartbeat(threading.Thread):
    """Keeps the worker's liveness key fresh and reports what it sees; no database or reconcile
    work runs on this thread, so nothing delays it past the key's TTL (which would let
    reconcile take over live claims)."""

    def __init__(self, runtime: Runtime, urgency: Urgency | None = None) -> None:
        super().__init__(name="dispatcher-heartbeat", daemon=True)
        self.runtime = runtime
        self.urgency = urgency or Urgency()
        self.stopping = threading.Event()
        self.redis_failing = False

    def beat(self) -> None:
        try:
            seen = liveness.beat(self.runtime.redis, self.runtime.worker_name)
        except Exception as exc:  # noqa: BLE001 - Redis away: try again next beat
            self.redis_failing = True
            log_line(
                logging.WARNING,
                "heartbeat failed",
                worker=self.runtime.worker_name,
                error=f"{type(exc).__name__}: {exc}",
            )
            return
        if self.redis_failing:
            self.redis_failing = False
            self.urgency.raise_("redis answering again")
        if seen.redis_was_empty:
            self.urgency.raise_("redis empty")
        if seen.dead:
            self.urgency.raise_(WORKERS_GONE, seen.dead)
        self.stand_in()

    def stand_in(self) -> None:
        """Moves due retries and parked deliveries to the queue while RQ's scheduler is not
        running (its holder died; another worker takes its lock only at its next maintenance,
        up to a minute later): one Redis script, nothing when a scheduler beats."""
        try:
            moved = queue.stand_in_for_scheduler(self.runtime.queue)
        except Exception as exc:  # noqa: BLE001 - Redis away: the next beat says so
            log_line(logging.WARNING, "scheduler stand-in failed", error=f"{type(exc).__name__}: {exc}")
            return
        if moved:
            log_line(
                logging.WARNING,
                "no rq scheduler running; due jobs moved to the queue",
                worker=self.runtime.worker_name,
                jobs=moved,
            )

    def run(self) -> None:
        while not self.stopping.wait(HEARTBEAT_SECONDS):
            self.beat()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)


class Lease(threading.Thread):
    """Renews the worker's lease in the database every beat, on a thread of its own: a database
    that hangs never delays the Redis heartbeat, and Redis never delays the lease. A database
    error is an expected event: logged once, tried again at the next beat (the liveness key
    still counts). After each renewal it asks for the other workers' expired leases: a worker
    killed while Redis lost the registry is noticed here, and reconcile runs at once."""

    def __init__(self, runtime: Runtime, urgency: Urgency | None = None) -> None:
        super().__init__(name="dispatcher-lease", daemon=True)
        self.runtime = runtime
        self.urgency = urgency or Urgency()
        self.stopping = threading.Event()
        self.failing = False
        self.reading_failing = False

    def step(self) -> None:
        """One beat: renew this worker's lease, then look for expired ones."""
        if self.renew():
            self.look_for_expired()

    def renew(self) -> bool:
        name = self.runtime.worker_name
        try:
            leases.renew(self.runtime.engine, name, datetime.now(UTC), liveness.LEASE_TTL)
        except Exception as exc:  # noqa: BLE001 - the database away: the next beat tries again
            if not self.failing:
                self.failing = True
                log_line(
                    logging.WARNING,
                    "worker lease not renewed; its liveness key in redis still counts",
                    worker=name,
                    error=store.describe_error(exc),
                )
            return False
        if self.failing:
            self.failing = False
            log_line(logging.INFO, "worker lease renewed again", worker=name)
        return True

    def look_for_expired(self) -> None:
        """Other workers whose lease expired are dead unless Redis still has their key:
        housekeeping asks Redis, and one worker reconciles (and deletes those leases)."""
        name = self.runtime.worker_name
        try:
            expired = leases.expired(self.runtime.engine, datetime.now(UTC), other_than=name)
        except Exception as exc:  # noqa: BLE001 - the database away: the next beat asks again
            if not self.reading_failing:
                self.reading_failing = True
                log_line(
                    logging.WARNING, "expired leases not read", worker=name, error=store.describe_error(exc)
                )
            return
        self.reading_failing = False
        if expired:
            self.urgency.raise_(WORKERS_GONE, expired)

    def run(self) -> None:
        while not self.stopping.wait(HEARTBEAT_SECONDS):
            self.step()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)

    def release(self) -> None:
        """A clean stop: the worker holds no claim any more (a lease left expires on its own)."""
        try:
            leases.release(self.runtime.engine, self.runtime.worker_name)
        except Exception:  # noqa: BLE001 - the database away: the lease expires on its own
            pass


class Housekeeping(threading.Thread):
    """Spool flush and reconcile, off the job thread (and off the heartbeat's)."""

    def __init__(
        self, runtime: Runtime, reconcile_every: int = RECONCILE_EVERY_SECONDS, urgency: Urgency | None = None
    ) -> None:
        super().__init__(name="dispatcher-housekeeping", daemon=True)
        self.runtime = runtime
        self.reconcile_every = reconcile_every
        self.urgency = urgency or Urgency()
        self.stopping = threading.Event()
        self.alerted_at: float | None = None

    def flush(self) -> None:
        try:
            flush_spool(self.runtime)
        except Exception as exc:  # noqa: BLE001 - the disk or the database away: the next round tries again
            log_line(logging.WARNING, "spool flush failed", error=f"{type(exc).__name__}: {exc}")

    def maybe_reconcile(self, reasons: list[str] | None = None, dead: set[str] | None = None) -> None:
        """Reconcile when it is due (about once a minute), or now for ``reasons``; the workers in
        ``dead`` that are dead indeed leave the registry and the leases once their claims are
        recovered."""
        runtime = self.runtime
        try:
            if reasons:
                reasons, gone = self._without_living(reasons, dead or set())
                if not reasons:
                    return
                report = reconcile.reconcile_now(runtime, runtime.worker_name, gone)
            else:
                report = reconcile.reconcile_if_due(runtime, runtime.worker_name, self.reconcile_every)
        except Exception as exc:  # noqa: BLE001 - Redis or the database away: next round
            log_line(logging.WARNING, "reconcile failed", error=f"{type(exc).__name__}: {exc}")
            if reasons:
                for reason in reasons:  # still a reason: try again at the next beat, not at once
                    self.urgency.raise_(reason, sorted(dead or ()), wake=False)
            return
        if report and (report.abandoned or report.requeued or report.overdue or reasons):
            log_line(
                logging.WARNING,
                "reconcile",
                reason=", ".join(reasons) if reasons else "due",
                checked=report.checked,
                abandoned=len(report.abandoned),
                requeued=len(report.requeued),
                overdue=len(report.overdue),
            )

    def _without_living(self, reasons: list[str], dead: set[str]) -> tuple[list[str], set[str]]:
        """Of the workers reported dead, those whose liveness key is in Redis or whose lease
        still runs are alive (Redis lost their key: a flush, a failover, a partition from Redis
        alone; or their lease was not renewed: the database failing them): no reason to
        reconcile, and kept in the registry and the leases, so they are looked at again."""
        if not dead:
            return reasons, dead
        alive, leased = reconcile.living(self.runtime, set(dead))
        gone = dead - alive - leased
        if not gone:
            reasons = [reason for reason in reasons if reason != WORKERS_GONE]
        return reasons, gone

    def apply_retention(self) -> None:
        """The retention policy, when due (once an hour, one worker at a time)."""
        try:
            report = retention.apply_if_due(self.runtime)
        except Exception as exc:  # noqa: BLE001 - Redis or the database away: next round
            log_line(logging.WARNING, "retention failed", error=f"{type(exc).__name__}: {exc}")
            return
        if report is not None and report.done():
            log_line(logging.INFO, "retention", **report.done())

    def recover_own(self) -> None:
        try:
            report = reconcile.recover_own_claims(self.runtime)
        except Exception as exc:  # noqa: BLE001 - the database away: next round
            log_line(logging.WARNING, "own claims check failed", error=f"{type(exc).__name__}: {exc}")
            return
        if report.abandoned:
            log_line(logging.WARNING, "own claims recovered", abandoned=len(report.abandoned))

    def maybe_alert(self) -> None:
        """The alerts pass (:mod:`dispatcher.alerts`), when :data:`ALERTS_EVERY_SECONDS` passed
        since the last one and alerts are configured; a failure is logged and tried next time."""
        alerts = self.runtime.settings.alerts
        now = time.monotonic()
        if not (alerts.channels and alerts.rules) or (
            self.alerted_at is not None and now - self.alerted_at < ALERTS_EVERY_SECONDS
        ):
            return
        self.alerted_at = now
        try:
            report = run_alerts(self.runtime, datetime.now(UTC))
        except Exception as exc:  # noqa: BLE001 - Redis, the database or a channel away: next pass
            log_line(logging.WARNING, "alerts pass failed", error=f"{type(exc).__name__}: {exc}")
            return
        if report is not None and report.changed():
            log_line(logging.INFO, "alerts", **report.counts())

    def run(self) -> None:
        ticks = 0
        every = max(1, self.reconcile_every // HEARTBEAT_SECONDS)
        while not self.stopping.is_set():
            reasons, dead = self.urgency.take()
            if reasons:
                self.maybe_reconcile(reasons, dead)
            else:
                self.flush()
                if ticks % every == 1:
                    self.maybe_reconcile()
                if ticks % every == every // 2:
                    self.recover_own()
                self.apply_retention()
                self.maybe_alert()
                ticks += 1
            self.urgency.wake.wait(HEARTBEAT_SECONDS)

    def stop(self) -> None:
        self.stopping.set()
        self.urgency.wake.set()
        self.join(timeout=10)
