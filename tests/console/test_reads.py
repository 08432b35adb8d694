"""What the console reads through the store, on SQLite and PostgreSQL: a page newest first from
a cursor, the patient keys filter, and attempts per hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dispatcher import store
from dispatcher.store import browsing
from dispatcher.times import utcnow

from .conftest import console_section, endpoints, seed


def test_pages_newest_first_and_attempts_per_hour(make_runtime, database_url):
    runtime = make_runtime(database_url=database_url, endpoints=endpoints(), console=console_section())
    now = utcnow().replace(minute=30, second=0, microsecond=0)
    ids = [seed(runtime, status="delivered", created_at=now - timedelta(minutes=10 * i)) for i in range(7)]
    failed = seed(
        runtime, status="failed", endpoint="lab", created_at=now - timedelta(hours=3), patient_id="p-2"
    )
    seen, cursor = [], None
    while True:
        rows, cursor = browsing.newest_first(runtime.engine, store.Selection(), cursor, limit=3)
        seen += [r["request_id"] for r in rows]
        if cursor is None:
            break
    assert seen == [*ids, failed]
    keys = tuple(runtime.keyring.candidates("p-2"))
    rows, cursor = browsing.newest_first(runtime.engine, store.Selection(patient_keys=keys))
    assert [r["request_id"] for r in rows] == [failed] and cursor is None
    start = now - timedelta(hours=24)
    hours = {
        (h.endpoint, h.hour): (h.attempts, h.delivered)
        for h in browsing.hourly_attempts(runtime.engine, start, now + timedelta(minutes=1))
    }
    # hour n holds [start + n h, start + n + 1 h): now is hour 24, -10 min .. -60 min hour 23
    assert hours[("pharmacy", 24)] == (1, 1)
    assert hours[("pharmacy", 23)] == (6, 6)
    assert hours[("lab", 21)] == (1, 0)
    assert len(hours) == 3


def test_an_attempt_on_an_hours_edge_is_counted_in_the_hour_it_opens(make_runtime, database_url):
    """Each of 48 hours' edges, on both databases: none falls into the hour before (SQLite's
    fractional days did that now and then, depending on the date)."""
    runtime = make_runtime(database_url=database_url, endpoints=endpoints(), console=console_section())
    start = datetime(2026, 12, 4, 23, 0, tzinfo=UTC)
    for n in range(48):
        seed(runtime, status="delivered", created_at=start + timedelta(hours=n))
    hours = browsing.hourly_attempts(runtime.engine, start, start + timedelta(hours=48))
    assert sorted((h.hour, h.attempts) for h in hours) == [(n, 1) for n in range(48)]


def test_an_attempt_just_before_the_window_ends_is_in_its_last_hour(make_runtime, database_url):
    """The endpoints page's window starts 24 h before the request, to the microsecond: an attempt
    made a fraction of a second before the request is in hour 23, whatever the fractions."""
    runtime = make_runtime(database_url=database_url, endpoints=endpoints(), console=console_section())
    start = datetime(2026, 12, 4, 0, 30, 0, 900_000, tzinfo=UTC)
    seed(runtime, status="delivered", created_at=start + timedelta(hours=24, seconds=-0.4))
    hours = browsing.hourly_attempts(runtime.engine, start, start + timedelta(hours=24))
    assert [(h.hour, h.attempts) for h in hours] == [(23, 1)]
