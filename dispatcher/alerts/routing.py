"""The alerts raised as they happen, elsewhere -- ``endpoint.disabled`` and
``endpoint.recovered`` by the store when an endpoint is disabled or enabled,
``endpoint.breaker_opened`` and ``endpoint.recovered`` by the circuit breaker -- get their send
rows here: one per channel the rules name for their kind, inserted once (an alert that has any
send row is routed already). The alerts this room derives itself are routed as they are raised
(:mod:`.evaluate`).

Only alerts of the last :data:`ROUTE_WITHIN_SECONDS` are routed: one raised before alerts were
configured, or long before any pass ran, is recorded but not sent (``dispatcher alerts list``
shows it).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from ..config.alert_settings import AlertSettings
from ..store import alerts as stored
from ..vocabulary import AlertKind

ROUTED_KINDS = (AlertKind.ENDPOINT_DISABLED, AlertKind.ENDPOINT_BREAKER_OPENED, AlertKind.ENDPOINT_RECOVERED)
"""The kinds raised outside this room."""
ROUTE_WITHIN_SECONDS = 3600


def route_new(engine: Engine, alerts: AlertSettings, now: datetime) -> int:
    """Adds the send rows of the alerts raised elsewhere since the last pass; how many rows."""
    kinds = [kind.value for kind in ROUTED_KINDS if alerts.channels_for(kind)]
    if not kinds:
        return 0
    since = now - timedelta(seconds=ROUTE_WITHIN_SECONDS)
    added = 0
    for alert in stored.unrouted(engine, since, kinds):
        added += stored.add_sends(engine, alert.id, alerts.channels_for(alert.kind), now)
    return added
