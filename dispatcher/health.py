"""Endpoint health: which endpoints are disabled, and when a failure disables one.

A ``410 Gone`` disables an endpoint at once (Standard Webhooks); so do ``disable_after:
{failed_deliveries: N, window: 5d}`` failed deliveries with no success in the window. A
disabled endpoint gets no new jobs: ``dispatch()`` still returns an id for each of its
deliveries, recorded ``failed`` with reason ``endpoint_disabled``, so nothing silently
vanishes, and ``dispatcher endpoints enable NAME`` offers to re-send them. The state lives in
the database, shared by every worker; each process caches it for a few seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from sqlalchemy.engine import Engine

from . import store
from .config import Endpoint
from .logs import log_line

DISABLED_REASON = "endpoint_disabled"
CACHE_SECONDS = 5.0


class DisabledCache:
    """The set of disabled endpoints, re-read at most every ``CACHE_SECONDS``."""

    def __init__(self, engine: Engine, ttl: float = CACHE_SECONDS) -> None:
        self.engine = engine
        self.ttl = ttl
        self._value: dict[str, str | None] = {}
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def get(self) -> dict[str, str | None]:
        with self._lock:
            if time.monotonic() - self._read_at >= self.ttl:
                self._value = store.disabled_endpoints(self.engine)
                self._read_at = time.monotonic()
            return self._value

    def invalidate(self) -> None:
        with self._lock:
            self._read_at = float("-inf")


def disable(engine: Engine, name: str, reason: str) -> bool:
    changed = store.set_endpoint_disabled(engine, name, True, reason)
    if changed:
        log_line(logging.ERROR, "endpoint disabled", endpoint=name, reason=reason)
    return changed


def enable(engine: Engine, name: str) -> bool:
    changed = store.set_endpoint_disabled(engine, name, False, None)
    if changed:
        log_line(logging.WARNING, "endpoint enabled", endpoint=name)
    return changed


def after_failure(engine: Engine, endpoint: Endpoint, http_status: int | None) -> str | None:
    """Disables the endpoint when this final failure calls for it; returns the reason, if so."""
    if http_status == 410:
        reason = "410 Gone"
    elif endpoint.disable_after is not None:
        since = store.utcnow() - timedelta(seconds=endpoint.disable_after.window_seconds)
        failures = store.failures_without_success(engine, endpoint.name, since)
        if failures < endpoint.disable_after.failed_deliveries:
            return None
        reason = f"{failures} failed deliveries and no success in {endpoint.disable_after.window_seconds} s"
    else:
        return None
    return reason if disable(engine, endpoint.name, reason) else None
